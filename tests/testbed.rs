//! The harness itself is real: what testkit creates is seen by independent clients (kcat,
//! Kafka's own old console consumer), broker control moves leadership, retention deletes old
//! offsets, and the fault proxy's corruption reaches the `kafka` crate as a CRC error.

use std::process::Command;
use std::time::{Duration, Instant};

use kafka::client::{FetchPartition, KafkaClient};
use kafka::error::{Error as KafkaError, KafkaCode};

/// The broker-kill test disturbs every other test of this binary (a produce retried after a
/// leader change may be written twice): take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn a_topic_created_through_testkit_is_seen_by_kcat_and_the_java_console_consumer() {
    let _turn = turn();
    let cluster = testkit::cluster();
    let topic = cluster.unique("seen");
    cluster.create_topic(&topic, 2, 2);
    cluster.produce_values(&topic, 0, &values("zero", 5));
    cluster.produce_values(&topic, 1, &values("one", 5));
    assert_eq!(
        cluster
            .log_end_offsets(&topic)
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(0, 5), (1, 5)]
    );

    let out = Command::new("kcat")
        .args([
            "-X",
            "broker.version.fallback=0.8.2.2",
            "-X",
            "api.version.request=false",
        ])
        .args([
            "-b",
            &cluster.brokers().join(","),
            "-C",
            "-t",
            &topic,
            "-e",
            "-q",
        ])
        .output()
        .expect("kcat (scripts/testbed install)");
    let mut seen: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    seen.sort();
    let mut expected = [values("zero", 5), values("one", 5)].concat();
    expected.sort();
    assert_eq!(
        seen,
        expected,
        "kcat stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cluster.run_console_consumer(&topic, &["--from-beginning", "--max-messages", "10"]);
    let mut seen: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        expected,
        "java stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shrunk_retention_makes_offset_zero_out_of_range() {
    let _turn = turn();
    let cluster = testkit::cluster();
    let topic = cluster.unique("retention");
    cluster.create_topic(&topic, 1, 1);
    cluster.produce_values(&topic, 0, &values("old", 20));
    cluster.shrink_retention(&topic, 0, 0);
    assert!(cluster.earliest_offsets(&topic)[&0] > 0);
    let mut client = KafkaClient::new(cluster.brokers());
    client.load_metadata(&[&topic]).unwrap();
    let responses = client
        .fetch_messages(&[FetchPartition::new(&topic, 0, 0)])
        .unwrap();
    let partition = &responses[0].topics()[0].partitions()[0];
    match partition.data() {
        Err(e) => assert!(
            matches!(&*e, KafkaError::Kafka(KafkaCode::OffsetOutOfRange)),
            "{e:?}"
        ),
        Ok(data) => panic!("offset 0 still served: {} messages", data.messages().len()),
    }
}

#[test]
fn proxy_corruption_reaches_the_kafka_crate_as_a_crc_error_of_its_partition() {
    let _turn = turn();
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("crc");
    broker.create_topic(&topic, 1);
    broker.produce_values(&topic, 0, &["healthy", "poison-value-xyz"]);
    let mut client = KafkaClient::new(vec![broker.address()]);
    client.set_fetch_crc_validation(true);
    client.load_metadata(&[&topic]).unwrap();
    // Healthy first.
    let ok = client.fetch_messages(&[FetchPartition::new(&topic, 0, 0)]);
    assert!(ok.is_ok(), "{:?}", ok.err());
    broker
        .proxy
        .corrupt_next_answer_containing(b"poison-value-xyz");
    // The patched kafka crate keeps the damage to its partition: the healthy message before
    // the corrupt one is delivered and the partition names the offset that failed its CRC.
    let responses = client
        .fetch_messages(&[FetchPartition::new(&topic, 0, 0)])
        .expect("a CRC error fails its partition, not the whole answer");
    let data = responses[0].topics()[0].partitions()[0]
        .data()
        .expect("partition data");
    let values: Vec<&[u8]> = data.messages().iter().map(|m| m.value).collect();
    assert_eq!(values, vec![&b"healthy"[..]]);
    let error = data
        .decode_error()
        .expect("the corrupt message is reported");
    assert_eq!(error.offset, 1);
    assert!(
        matches!(error.error, KafkaError::Kafka(KafkaCode::CorruptMessage)),
        "{error:?}"
    );
    assert_eq!(broker.proxy.corrupted(), 1);
}

#[test]
#[ignore = "needs broker control and Kafka's tools (a self-started cluster or ZKC_TEST_STATE); scripts/test's testbed lanes run it with --include-ignored"]
fn a_broker_kill_moves_leadership_and_testkit_observes_it() {
    let _turn = turn();
    let cluster = testkit::cluster();
    cluster.require_control();
    let topic = cluster.unique("leader");
    cluster.create_topic(&topic, 1, 3);
    let before = cluster.leader(&topic, 0).expect("leader");
    cluster.kill_broker(before);
    let start = Instant::now();
    let after = loop {
        match cluster.leader(&topic, 0) {
            Some(l) if l != before => break l,
            _ => {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "leadership did not move"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_ne!(after, before);
    cluster.start_broker(before);
    cluster.produce_values(&topic, 0, &values("after", 3));
    // Right after a restart a broker's metadata may lag: poll the leader's answer.
    let start = Instant::now();
    loop {
        let end = cluster.log_end_offsets(&topic).get(&0).copied();
        if end == Some(3) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "log end of {topic}-0 is {end:?}, expected 3"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn one_fetch_decodes_every_compressed_batch_of_the_answer() {
    // The vendored kafka crate's patch: upstream returned after the first compressed wrapper
    // message of an answer, so each fetch yielded a single producer batch.
    let _turn = turn();
    let cluster = testkit::cluster();
    for compression in [testkit::Compression::GZIP, testkit::Compression::SNAPPY] {
        let topic = cluster.unique("batches");
        cluster.create_topic(&topic, 1, 1);
        for batch in 0..3 {
            let values = values(&format!("batch{batch}"), 4);
            let messages: Vec<(Option<&[u8]>, &[u8])> =
                values.iter().map(|v| (None, v.as_bytes())).collect();
            cluster.produce(&topic, 0, &messages, compression);
        }
        let mut client = KafkaClient::new(cluster.brokers());
        client.load_metadata(&[&topic]).unwrap();
        // From offset 1: the part of the first batch below it is skipped, the rest all comes.
        let answer = client
            .fetch_messages(&[FetchPartition::new(&topic, 0, 1)])
            .unwrap();
        let got: Vec<(i64, String)> = answer
            .iter()
            .flat_map(|r| r.topics())
            .flat_map(|t| t.partitions())
            .flat_map(|p| p.data().unwrap().messages().iter())
            .map(|m| (m.offset, String::from_utf8_lossy(m.value).into_owned()))
            .collect();
        let expected: Vec<(i64, String)> = (1..12)
            .map(|o| (o, format!("batch{}-{}", o / 4, o % 4)))
            .collect();
        assert_eq!(got, expected, "{compression:?}");
    }
}
