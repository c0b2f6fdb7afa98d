//! Kafka-stored offsets (`offsets.storage=kafka`) over a broker whose answers are held back by
//! a fault proxy: `offsets.channel.socket.timeout.ms` bounds every offset fetch and commit (an
//! error naming the key, never a hang), and a commit abandoned by that timeout never lands
//! after a newer one (the stored offset never moves back).
//!
//! Each test uses a broker of its own behind a proxy ([`testkit::Cluster::proxied_broker`]),
//! so the group coordinator and the offsets topic are that broker's.

mod common;

use std::time::{Duration, Instant};

use common::*;
use zkconsumer::config::ConsumerConfig;
use zkconsumer::offsets::GroupOffsets;
use zkconsumer::partition::TopicPartition;
use zkconsumer::zk::session::{ZkSession, ZkSettings};

/// Hang guard only (the configured timeout is 1.5 s).
const LIMIT: Duration = Duration::from_secs(60);

/// Kafka API keys of the requests held back.
const OFFSET_COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 9;

const TIMEOUT_KEY: &str = "offsets.channel.socket.timeout.ms";

/// The offset store of `group` on `broker` (Kafka storage, 1.5 s channel timeout), after a
/// first commit of `first` went through (the broker creates its offsets topic then).
async fn kafka_store(
    broker: &testkit::ProxiedBroker,
    group: &str,
    tp: &TopicPartition,
    first: i64,
) -> GroupOffsets {
    init_logs();
    let config: ConsumerConfig = config(group)
        .set("zookeeper.connect", &broker.zk_connect)
        .set("offsets.storage", "kafka")
        .set(TIMEOUT_KEY, 1500)
        .build()
        .expect("valid config");
    let zk = ZkSession::connect(ZkSettings {
        connect: broker.zk_connect.clone(),
        session_timeout: Duration::from_secs(10),
        connection_timeout: Duration::from_secs(10),
        server_version: testkit::cluster().zk_server_version(),
    })
    .await
    .expect("zk connect");
    let offsets = GroupOffsets::for_config(zk, &config);
    commit_until_ok(&offsets, tp, first).await;
    assert_eq!(fetch(&offsets, tp).await.expect("fetch"), Some(first));
    offsets
}

/// Commits `offset`, again while it fails (the offsets topic is still being created, or an
/// earlier commit is still out): as the automatic commit does on its next round.
async fn commit_until_ok(offsets: &GroupOffsets, tp: &TopicPartition, offset: i64) {
    let start = Instant::now();
    loop {
        match commit(offsets, tp, offset).await {
            Ok(()) => return,
            Err(e) => assert!(
                start.elapsed() < LIMIT,
                "commit of {offset} still failing: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn commit(offsets: &GroupOffsets, tp: &TopicPartition, offset: i64) -> Result<(), String> {
    tokio::time::timeout(LIMIT, offsets.commit_many(&[(tp.clone(), offset)]))
        .await
        .expect("the commit returns (no hang)")
        .map_err(|e| e.to_string())
}

async fn fetch(offsets: &GroupOffsets, tp: &TopicPartition) -> Result<Option<i64>, String> {
    tokio::time::timeout(LIMIT, offsets.fetch(tp))
        .await
        .expect("the fetch returns (no hang)")
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offset_fetch_and_commit_without_an_answer_fail_naming_offsets_channel_socket_timeout() {
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("kstall");
    broker.create_topic(&topic, 1);
    let group = cluster.unique("kstall-group");
    let tp = TopicPartition::new(&topic, 0);
    let offsets = kafka_store(&broker, &group, &tp, 3).await;

    // The broker never answers the offset fetch: an error naming the key, not a hang.
    broker.proxy.hold_next_kafka_request(OFFSET_FETCH);
    let error = fetch(&offsets, &tp).await.expect_err("no answer: an error");
    assert!(broker.proxy.holding(), "the fetch request was held");
    assert!(
        error.contains(TIMEOUT_KEY) && error.contains(&group) && error.contains("fetch"),
        "{error}"
    );
    broker.proxy.release_held();

    // Same for a commit.
    broker.proxy.hold_next_kafka_request(OFFSET_COMMIT);
    let error = commit(&offsets, &tp, 7)
        .await
        .expect_err("no answer: an error");
    assert!(broker.proxy.holding(), "the commit request was held");
    assert!(
        error.contains(TIMEOUT_KEY) && error.contains(&group) && error.contains("commit"),
        "{error}"
    );
    broker.proxy.release_held();

    // The store works again once the broker answers.
    commit_until_ok(&offsets, &tp, 9).await;
    assert_eq!(fetch(&offsets, &tp).await.expect("fetch"), Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kafka_commit_given_up_on_never_lands_after_a_newer_one() {
    let cluster = testkit::cluster();
    let broker = cluster.proxied_broker();
    let topic = cluster.unique("klate");
    broker.create_topic(&topic, 1);
    let group = cluster.unique("klate-group");
    let tp = TopicPartition::new(&topic, 0);
    let offsets = kafka_store(&broker, &group, &tp, 5).await;

    // The commit of 10 gets no answer in time: given up on, but its request is on its way.
    broker.proxy.hold_next_kafka_request(OFFSET_COMMIT);
    let error = commit(&offsets, &tp, 10)
        .await
        .expect_err("no answer: an error");
    assert!(broker.proxy.holding(), "the commit of 10 was held: {error}");
    // A newer commit, while the old one is still out.
    let newer = commit(&offsets, &tp, 20).await;
    // The old request reaches the broker now, late.
    broker.proxy.release_held();
    if let Err(e) = &newer {
        assert!(e.contains(TIMEOUT_KEY), "{e}");
        commit_until_ok(&offsets, &tp, 20).await;
    }
    wait_until("the broker answered the late commit", LIMIT, || {
        broker.proxy.held_answers() >= 1
    })
    .await;
    // The order the commits reached the broker in: the one given up on (held) must not be
    // the last. Before the fix it was: the commit of 20 went out on a fresh connection while
    // the commit of 10 was still on its way, and 10 reached the broker after it.
    let held = broker.proxy.held_connection().expect("a held connection");
    let order = broker.proxy.forwarded_kafka_requests(OFFSET_COMMIT);
    assert_ne!(
        order.last(),
        Some(&held),
        "the commit of 10 (connection {held}) reached the broker after the newer commit \
         (commits by connection: {order:?}; first try of 20: {newer:?})"
    );
    assert_eq!(fetch(&offsets, &tp).await.expect("fetch"), Some(20));
}
