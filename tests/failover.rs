//! Broker failures under a running consumer: a leader killed and restarted, leadership moved back
//! by preferred-replica election, a corrupt message set, a connection that goes silent —
//! nothing lost, nothing repeated, no hang. Also a blacklist, on the proxied broker whose own
//! chroot holds only that test's topics.
//! One test per concern, run one at a time (they disturb the shared brokers).

mod common;

use std::time::Duration;

use common::*;
use zkconsumer::StreamError;

/// Broker control disturbs every test of this binary: take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs broker control and Kafka's tools (a self-started cluster or ZKC_TEST_STATE); scripts/test's testbed lanes run it with --include-ignored"]
async fn leader_kill_restart_and_preferred_election_lose_nothing() {
    let _turn = SERIAL.lock().await;
    let cluster = testkit::cluster();
    cluster.require_control();
    let topic = topic("failover", 3, 3);
    let group = cluster.unique("failover-group");
    let consumer = connect(&group).await;
    let seen = collect_streams(&consumer, &topic, 2).await;
    let mut total = produce(&topic, 3, 20, "before");
    wait_until("first batch", LIMIT, || seen.len() >= total).await;

    let victim = cluster.leader(&topic, 0).expect("leader of partition 0");
    cluster.kill_broker(victim);
    total += produce(&topic, 3, 20, "during");
    wait_until("messages produced while a broker is down", LIMIT, || {
        seen.len() >= total
    })
    .await;

    cluster.start_broker(victim);
    cluster.elect_preferred_leaders();
    total += produce(&topic, 3, 20, "after");
    // A produce retried across the leader change may have been written twice: what the log
    // holds is the reference, every offset delivered exactly once. The brokers report the
    // high watermark, which reaches the log's end only once the followers have fetched the
    // last writes (the produce waits for the leader only): read until it covers them.
    let mut in_log: i64 = 0;
    let start = std::time::Instant::now();
    while (in_log as usize) < total {
        assert!(
            start.elapsed() < LIMIT,
            "the high watermarks stay at {in_log} of {total} produced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        in_log = cluster.log_end_offsets(&topic).values().sum();
    }
    wait_until("messages after restart and leader move", LIMIT, || {
        seen.len() >= in_log as usize
    })
    .await;
    consumer.shutdown().await.unwrap();
    seen.wait_ended().await;
    let all = seen.snapshot();
    assert_no_duplicates(&all);
    assert_eq!(all.len() as i64, in_log, "every offset exactly once");
    let values: std::collections::BTreeSet<&str> = all.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(values.len(), total, "every produced value delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_message_set_is_reported_not_delivered() {
    let _turn = SERIAL.lock().await;
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("corrupt-set");
    broker.create_topic(&topic, 1);
    broker.produce_values(&topic, 0, &["fine-1", "fine-2"]);
    let group = cluster.unique("corrupt-set-group");
    let consumer = connect_with(config(&group).set("zookeeper.connect", &broker.zk_connect)).await;
    let mut stream = single_stream(&consumer, &topic).await;
    for expected in ["fine-1", "fine-2"] {
        let m = tokio::time::timeout(LIMIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(m.value, expected.as_bytes());
    }
    // Every answer carrying the next message is corrupted from now on.
    broker
        .proxy
        .corrupt_answers_containing(b"poisoned-message", 1000);
    broker.produce_values(&topic, 0, &["poisoned-message"]);
    let err = tokio::time::timeout(LIMIT, stream.next())
        .await
        .expect("an error, not a stall")
        .expect("stream open")
        .expect_err("corrupt data must not be delivered");
    assert!(matches!(err, StreamError::Fetch(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains(&topic) && text.contains("offset 2"), "{text}");
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_broker_connection_times_out_and_a_stalled_broker_does_not_block_shutdown() {
    let _turn = SERIAL.lock().await;
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("silent");
    broker.create_topic(&topic, 2);
    let batch = |tag: &str| -> Vec<String> { (0..10).map(|i| format!("{tag}-{i}")).collect() };
    for p in 0..2 {
        broker.produce_values(&topic, p, &batch("before"));
    }
    let group = cluster.unique("silent-group");
    let consumer = connect_with(
        config(&group)
            .set("zookeeper.connect", &broker.zk_connect)
            .set("socket.timeout.ms", 1500),
    )
    .await;
    let seen = collect_streams(&consumer, &topic, 1).await;
    wait_until("first batch", LIMIT, || seen.len() >= 20).await;

    // The fetcher's connection goes silent mid-fetch (its long poll never answers). Only
    // socket.timeout.ms gets it out (the kafka crate's own timeout is 120 s): a fresh
    // connection then reads what was produced meanwhile.
    broker.proxy.blackhole_open_connections();
    for p in 0..2 {
        broker.produce_values(&topic, p, &batch("after"));
    }
    wait_until(
        "messages after the connection went silent (well before 120 s)",
        Duration::from_secs(45),
        || seen.len() >= 40,
    )
    .await;

    // The whole broker stops answering: shutdown still completes promptly.
    broker.proxy.stall();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::time::timeout(Duration::from_secs(20), consumer.shutdown())
        .await
        .expect("shutdown is not held up by a stalled broker")
        .unwrap();
    broker.proxy.resume();
    // Streams ended: the counts are final.
    seen.wait_ended().await;
    let all = seen.snapshot();
    assert_no_duplicates(&all);
    assert_eq!(all.len(), 40, "every message exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blacklist_consumes_every_other_topic_including_one_created_later() {
    // The proxied broker has a chroot of its own: the blacklist sees only this test's topics.
    let _turn = SERIAL.lock().await;
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    for topic in ["keep.a", "skip.b"] {
        broker.create_topic(topic, 1);
        broker.produce_values(topic, 0, &[format!("{topic}-1"), format!("{topic}-2")]);
    }
    let group = cluster.unique("blacklist-group");
    let consumer = connect_with(config(&group).set("zookeeper.connect", &broker.zk_connect)).await;
    let seen = Collector::default();
    seen.spawn(
        consumer
            .create_message_streams_by_filter(
                zkconsumer::TopicFilter::blacklist("skip.*").unwrap(),
                1,
            )
            .await
            .unwrap(),
    );
    wait_until("the kept topic", LIMIT, || seen.len() >= 2).await;
    broker.create_topic("keep.c", 1);
    broker.produce_values("keep.c", 0, &["keep.c-1"]);
    wait_until("a kept topic created later", LIMIT, || seen.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let values: std::collections::BTreeSet<String> =
        seen.snapshot().into_iter().map(|s| s.value).collect();
    assert_eq!(
        values,
        ["keep.a-1", "keep.a-2", "keep.c-1"]
            .into_iter()
            .map(String::from)
            .collect(),
        "nothing of the blacklisted topic, everything else"
    );
    consumer.shutdown().await.unwrap();
}
