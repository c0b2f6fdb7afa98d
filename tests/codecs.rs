//! Compressed message sets against real brokers (Kafka 0.8.2.2 or 0.9.0.1, per the lane): lz4,
//! gzip and snappy written by kcat (librdkafka) and by Kafka's own producers of that version
//! (the old Scala producer and the Java producer of kafka-clients, through ConsoleProducer),
//! mixed with the `kafka` crate's gzip, snappy and plain sets in one
//! partition, read exactly as Kafka's own console consumer reads them; and a compressed set
//! damaged in the broker's log fails its partition only — in the library (one StreamError,
//! the other partitions flow) and in the CLI (exit 1, or skipped with
//! `--skip-message-on-error`, nothing else lost).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kafka::client::{Compression, RequiredAcks};
use kafka::producer::{Producer, Record};
use zkconsumer::StreamError;

const LIMIT: Duration = Duration::from_secs(120);

fn values(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lz4_and_mixed_codecs_read_as_the_java_console_consumer_reads_them() {
    let cluster = testkit::cluster();
    let topic = topic("codecs", 1, 1);
    let mut produced: Vec<String> = Vec::new();
    let mut add = |v: Vec<String>| {
        produced.extend(v.iter().cloned());
        v
    };
    cluster.produce_values(&topic, 0, &add(values("plain", 3)));
    cluster.produce_with_kcat(&topic, 0, &add(values("kcat-lz4", 500)), "lz4");
    let gzip = add(values("crate-gzip", 40));
    let pairs: Vec<(Option<&[u8]>, &[u8])> = gzip.iter().map(|v| (None, v.as_bytes())).collect();
    cluster.produce(&topic, 0, &pairs, Compression::GZIP);
    cluster.produce_with_kcat(&topic, 0, &add(values("kcat-snappy", 60)), "snappy");
    let snappy = add(values("crate-snappy", 40));
    let pairs: Vec<(Option<&[u8]>, &[u8])> = snappy.iter().map(|v| (None, v.as_bytes())).collect();
    cluster.produce(&topic, 0, &pairs, Compression::SNAPPY);
    cluster.produce_with_kcat(&topic, 0, &add(values("kcat-gzip", 60)), "gzip");
    // Kafka's own producers, of the cluster's version (0.8.2.2 on the legacy lane): the old
    // Scala producer one message per set (--sync) and in batches of 50, for every codec, and
    // the Java producer of kafka-clients (its own batching), for every codec.
    let brokers = cluster.brokers().join(",");
    let (old_producer, new_producer) = if testkit::kafka_is_08() {
        (None, Some("--new-producer"))
    } else {
        (Some("--old-producer"), None)
    };
    let mut runs: Vec<(String, &str, Vec<&str>)> = vec![(
        "java-lz4-sync".to_string(),
        "lz4",
        old_producer.into_iter().chain(["--sync"]).collect(),
    )];
    for codec in ["gzip", "snappy", "lz4"] {
        runs.push((
            format!("java-old-{codec}-batch"),
            codec,
            old_producer
                .into_iter()
                .chain(["--batch-size=50"])
                .collect(),
        ));
        runs.push((
            format!("java-clients-{codec}"),
            codec,
            new_producer.into_iter().collect(),
        ));
    }
    for (tag, codec, extra) in &runs {
        let lines = add(values(tag, 120)).join("\n") + "\n";
        let mut args = vec![
            "--broker-list",
            &brokers,
            "--topic",
            &topic,
            "--compression-codec",
            codec,
            "--request-required-acks",
            "-1",
        ];
        args.extend(extra.iter().copied());
        let out = cluster.run_kafka_class_with_input(
            "kafka.tools.ConsoleProducer",
            &args,
            lines.as_bytes(),
        );
        assert!(out.status.success(), "ConsoleProducer {args:?}: {out:?}");
    }
    let total = produced.len();
    let end = cluster.log_end_offsets(&topic)[&0];
    assert_eq!(end as usize, total, "every message in the log");

    let java = cluster.run_console_consumer(
        &topic,
        &["--from-beginning", "--max-messages", &total.to_string()],
    );
    let java: Vec<String> = String::from_utf8_lossy(&java.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        java.len(),
        total,
        "Kafka's console consumer read everything"
    );

    let group = cluster.unique("codecs-group");
    let consumer = connect(&group).await;
    let seen = collect_streams(&consumer, &topic, 1).await;
    wait_until("every message of every codec", LIMIT, || {
        seen.len() >= total
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ours = seen.snapshot();
    ours.sort_by_key(|s| s.offset);
    let offsets: Vec<i64> = ours.iter().map(|s| s.offset).collect();
    assert_eq!(offsets, (0..total as i64).collect::<Vec<_>>());
    let ours: Vec<String> = ours.into_iter().map(|s| s.value).collect();
    assert_eq!(
        ours, java,
        "same messages, same order as Kafka's console consumer"
    );
    let mut expected = produced.clone();
    expected.sort();
    let mut got = ours.clone();
    got.sort();
    assert_eq!(got, expected, "every produced value");
    consumer.shutdown().await.unwrap();
}

/// A compressed set is bounded by `fetch.message.max.bytes` on the wire, not once
/// decompressed: one gzip set of 3,000 messages of 100 bytes (~380 KB decompressed) within a
/// 64 KiB fetch. It reaches the stream in chunks of at most that figure (counted as an
/// uncompressed set: 26 bytes per message besides key and value), not as one chunk of the
/// whole set, so what a stream's queue holds is bounded alike for every codec. `next_batch`
/// hands out what is left of one chunk, which shows the chunks' sizes without any timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compressed_set_is_queued_in_chunks_bounded_by_fetch_message_max_bytes() {
    const MAX_BYTES: usize = 64 * 1024;
    const COUNT: usize = 3_000;
    let cluster = testkit::cluster();
    let topic = topic("bounded", 1, 1);
    let produced: Vec<String> = (0..COUNT)
        .map(|i| format!("{i:05}-{}", "x".repeat(94)))
        .collect();
    let pairs: Vec<(Option<&[u8]>, &[u8])> =
        produced.iter().map(|v| (None, v.as_bytes())).collect();
    cluster.produce(&topic, 0, &pairs, Compression::GZIP);
    let group = format!("bounded-{}", std::process::id());
    init_logs();
    let consumer = connect_with(config(&group).set("fetch.message.max.bytes", MAX_BYTES)).await;
    let mut stream = single_stream(&consumer, &topic).await;
    let mut got: Vec<String> = Vec::new();
    let mut largest = 0;
    while got.len() < COUNT {
        let batch = tokio::time::timeout(LIMIT, stream.next_batch(usize::MAX))
            .await
            .expect("messages within the limit")
            .expect("the stream goes on")
            .expect("no stream error");
        let bytes: usize = batch.iter().map(|m| 26 + m.value.len()).sum();
        largest = largest.max(bytes);
        assert!(
            bytes <= MAX_BYTES + 26 + 100,
            "a batch of {} messages, {bytes} bytes: more than one chunk's worth",
            batch.len()
        );
        got.extend(
            batch
                .iter()
                .map(|m| String::from_utf8_lossy(&m.value).into_owned()),
        );
    }
    assert_eq!(got, produced, "every message, in order");
    assert!(
        largest > MAX_BYTES / 2,
        "chunks are filled up to the limit ({largest} bytes)"
    );
    consumer.shutdown().await.unwrap();
}

/// CRC-32 (IEEE), as Kafka's message CRC.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_golden() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
}

/// Damages the compressed payload of the first compressed message of a log segment and fixes
/// its CRC, so the damage is found only by decompressing (as a writer bug or a disk fault
/// under a valid CRC would leave it). Returns the wrapper's offset.
fn damage_first_compressed_set(segment: &std::path::Path) -> i64 {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment)
        .expect("open the log segment");
    let mut log = Vec::new();
    file.read_to_end(&mut log).expect("read the log segment");
    let mut at = 0;
    while at + 12 <= log.len() {
        let offset = i64::from_be_bytes(log[at..at + 8].try_into().unwrap());
        let size = i32::from_be_bytes(log[at + 8..at + 12].try_into().unwrap()) as usize;
        let message = at + 12;
        let attr = log[message + 5];
        if attr & 0x07 != 0 {
            let key_len = i32::from_be_bytes(log[message + 6..message + 10].try_into().unwrap());
            let value = message + 10 + key_len.max(0) as usize + 4;
            let end = message + size;
            for b in &mut log[value + (end - value) / 2..end] {
                *b ^= 0x5a;
            }
            let crc = crc32(&log[message + 4..end]);
            log[message..message + 4].copy_from_slice(&crc.to_be_bytes());
            file.seek(SeekFrom::Start(message as u64)).unwrap();
            file.write_all(&log[message..end]).unwrap();
            file.sync_all().unwrap();
            return offset;
        }
        at = message + size;
    }
    panic!("no compressed message in {}", segment.display());
}

/// Produces to one partition of the proxied broker: "<tag>-before", a gzip set of five
/// "<tag>-gz-N", "<tag>-after" (offsets 0, 1..=5, 6).
fn produce_with_a_gzip_set(address: &str, topic: &str, partition: i32, tag: &str) {
    let producer = |compression, values: Vec<String>| {
        let mut p = Producer::from_hosts(vec![address.to_string()])
            .with_required_acks(RequiredAcks::All)
            .with_compression(compression)
            .create()
            .expect("producer");
        let records: Vec<_> = values
            .iter()
            .map(|v| Record::from_value(topic, v.as_bytes()).with_partition(partition))
            .collect();
        p.send_all(&records).expect("produce");
    };
    producer(Compression::NONE, vec![format!("{tag}-before")]);
    producer(Compression::GZIP, values(&format!("{tag}-gz"), 5));
    producer(Compression::NONE, vec![format!("{tag}-after")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undecodable_set_fails_its_partition_only() {
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("undecodable");
    broker.create_topic(&topic, 2);
    produce_with_a_gzip_set(&broker.address(), &topic, 0, "p0");
    broker.produce_values(&topic, 1, &values("p1", 10));
    assert_eq!(
        damage_first_compressed_set(&broker.log_segment(&topic, 0)),
        5
    );

    init_logs();
    let group = cluster.unique("undecodable-group");
    let consumer = connect_with(config(&group).set("zookeeper.connect", &broker.zk_connect)).await;
    let mut stream = single_stream(&consumer, &topic).await;
    let mut delivered: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let mut errors = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while delivered.values().map(Vec::len).sum::<usize>() < 12 {
        assert!(
            Instant::now() < deadline,
            "stalled: {delivered:?} {errors:?}"
        );
        match tokio::time::timeout(LIMIT, stream.next()).await {
            Ok(Some(Ok(m))) => delivered
                .entry(m.partition)
                .or_default()
                .push((m.offset, String::from_utf8_lossy(&m.value).into_owned())),
            Ok(Some(Err(e))) => errors.push(e),
            other => panic!("stream ended or stalled: {other:?}"),
        }
    }
    assert_eq!(errors.len(), 1, "one error for the damaged set: {errors:?}");
    let error = &errors[0];
    assert!(error.is_skippable(), "{error}");
    assert!(matches!(error, StreamError::Fetch(_)));
    let text = error.to_string();
    assert!(
        text.contains(&format!("{topic}-0 at offset 1 (through offset 5)")),
        "names topic, partition and offsets: {text}"
    );
    assert_eq!(
        delivered[&0],
        vec![(0, "p0-before".to_string()), (6, "p0-after".to_string())],
        "the damaged set is skipped once the stream is polled past its error"
    );
    let p1: Vec<String> = delivered[&1].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(p1, values("p1", 10), "the other partition flows");
    consumer.shutdown().await.unwrap();
}

/// Runs `zkconsumer consume` until it exits (killed after `limit`): (exit code, stdout lines,
/// stderr).
fn run_cli(args: &[&str], limit: Duration) -> (Option<i32>, Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkconsumer"))
        .arg("consume")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zkconsumer");
    let start = Instant::now();
    let mut timed_out = false;
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let code = if timed_out { None } else { out.status.code() };
    (
        code,
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_exits_1_on_an_undecodable_set_of_any_stream_and_skips_it_when_told() {
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("undecodable-cli");
    broker.create_topic(&topic, 2);
    broker.produce_values(&topic, 0, &values("p0", 10));
    // The damaged set is on partition 1: the second stream's (range assignment).
    produce_with_a_gzip_set(&broker.address(), &topic, 1, "p1");
    assert_eq!(
        damage_first_compressed_set(&broker.log_segment(&topic, 1)),
        5
    );

    let group = cluster.unique("undecodable-cli-group");
    let version = format!(
        "zookeeper.server.version={}",
        version_string(cluster.zk_server_version())
    );
    let common = [
        "--zookeeper",
        &broker.zk_connect,
        "--group",
        &group,
        "--topic",
        &topic,
        "--threads",
        "2",
        "--property",
        &version,
        "--property",
        "auto.offset.reset=smallest",
        "--property",
        "zookeeper.session.timeout.ms=4000",
    ];
    let (code, stdout, stderr) = run_cli(&common, Duration::from_secs(60));
    assert_eq!(
        code,
        Some(1),
        "exit 1 on the second stream's error: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "zkconsumer: cannot decode the message set of {topic}-1 at offset 1 (through offset 5)"
        )),
        "{stderr}"
    );
    assert!(!stdout.contains(&"p1-after".to_string()), "{stdout:?}");
    assert!(stdout.contains(&"p1-before".to_string()), "{stdout:?}");

    // Same group: what was printed is committed, the damaged set is not (it was not skipped);
    // told to skip, it goes on past it and prints only what it had not printed.
    let mut skipping = common.to_vec();
    skipping.extend([
        "--skip-message-on-error",
        "--property",
        "consumer.timeout.ms=3000",
    ]);
    let (code, stdout2, stderr) = run_cli(&skipping, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "skipping: cannot decode the message set of {topic}-1"
        )),
        "{stderr}"
    );
    let mut all = stdout.clone();
    all.extend(stdout2.iter().cloned());
    all.sort();
    let mut expected = values("p0", 10);
    expected.extend(["p1-after".to_string(), "p1-before".to_string()]);
    expected.sort();
    assert_eq!(
        all, expected,
        "nothing lost, nothing twice: {stdout:?} then {stdout2:?}"
    );
}
