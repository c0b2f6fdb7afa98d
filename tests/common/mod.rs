//! Helpers shared by the consumer integration tests: configs for the test-bed cluster, message
//! collectors, ZooKeeper reads.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zkconsumer::config::ConsumerConfig;
use zkconsumer::zk::session::{ZkSession, ZkSettings};
use zkconsumer::{Consumer, MessageStream};

/// A consumed message reduced to what tests compare.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seen {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub value: String,
}

/// Session timeout used by the tests (the test-bed servers allow short sessions).
pub const SESSION_MS: u64 = 4000;

pub fn version_string(v: (u32, u32, u32)) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// A config for `group` on the shared cluster, fast to rebalance and commit.
pub fn config(group: &str) -> zkconsumer::config::ConsumerConfigBuilder {
    let cluster = testkit::cluster();
    ConsumerConfig::builder(&cluster.zk_connect(), group)
        .set(
            "zookeeper.server.version",
            version_string(cluster.zk_server_version()),
        )
        .set("zookeeper.session.timeout.ms", SESSION_MS)
        .set("zookeeper.sync.time.ms", 200)
        .set("rebalance.backoff.ms", 300)
        .set("rebalance.max.retries", 10)
        .set("auto.commit.interval.ms", 200)
        .set("auto.offset.reset", "smallest")
        .set("refresh.leader.backoff.ms", 100)
}

/// Logs of the library to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Subscribes `consumer` to `topic` with one stream and returns it.
pub async fn single_stream(consumer: &Consumer, topic: &str) -> MessageStream {
    consumer
        .create_message_streams(BTreeMap::from([(topic.to_string(), 1)]))
        .await
        .expect("create the stream")
        .remove(topic)
        .and_then(|mut streams| streams.pop())
        .expect("one stream for the topic")
}

pub async fn connect(group: &str) -> Consumer {
    connect_with(config(group)).await
}

/// A consumer with the configuration `builder` makes (e.g. [`config`] with a few keys set).
pub async fn connect_with(builder: zkconsumer::config::ConsumerConfigBuilder) -> Consumer {
    init_logs();
    Consumer::connect(builder.build().expect("valid config"))
        .await
        .expect("connect")
}

/// Collects everything a set of streams delivers, until the streams end.
///
/// A stream error is recorded (the collecting task stops) and fails the test wherever the test
/// next looks: [`Collector::len`] (so a `wait_until` on it fails at once instead of timing out),
/// [`Collector::snapshot`], [`Collector::wait_ended`], and when the last handle of the collector is
/// dropped at the end of the test (so a test that never looks again fails too).
#[derive(Clone, Default)]
pub struct Collector {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    errors: Arc<ErrorGuard>,
}

/// Stream errors of one collector; panics when dropped with errors nobody looked at (unless the
/// test is already failing).
#[derive(Default)]
struct ErrorGuard(Arc<Mutex<Vec<String>>>);

impl ErrorGuard {
    fn check(&self) {
        let errors = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !errors.is_empty() {
            panic!("stream error(s) while collecting: {errors:?}");
        }
    }
}

impl Drop for ErrorGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check();
        }
    }
}

impl Collector {
    /// Collects from `streams` in tasks of their own; a stream error fails the test (see above).
    pub fn spawn(&self, streams: Vec<MessageStream>) {
        let tasks = streams.into_iter().map(|mut stream| {
            let seen = self.seen.clone();
            let errors = self.errors.0.clone();
            tokio::spawn(async move {
                while let Some(next) = stream.next().await {
                    match next {
                        Ok(m) => seen.lock().unwrap().push(Seen {
                            topic: m.topic.to_string(),
                            partition: m.partition,
                            offset: m.offset,
                            value: String::from_utf8_lossy(&m.value).into_owned(),
                        }),
                        Err(e) => {
                            errors.lock().unwrap().push(e.to_string());
                            return;
                        }
                    }
                }
            })
        });
        self.tasks.lock().unwrap().extend(tasks);
    }

    /// Waits until every collected stream has ended (after a shutdown); fails on a stream error.
    pub async fn wait_ended(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        for task in tasks {
            task.await.expect("collector task");
        }
        self.errors.check();
    }

    /// How many messages arrived so far; fails on a stream error.
    pub fn len(&self) -> usize {
        self.errors.check();
        self.seen.lock().unwrap().len()
    }

    /// What arrived so far; fails on a stream error.
    pub fn snapshot(&self) -> Vec<Seen> {
        self.errors.check();
        self.seen.lock().unwrap().clone()
    }

    pub fn partitions(&self) -> BTreeSet<i32> {
        self.snapshot().iter().map(|s| s.partition).collect()
    }
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `limit` (a hang guard,
/// not a performance assertion).
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `consumer` has completed more than `after` rebalances; panics after `limit`.
///
/// A member's owned partitions (and its delivery) change before its rebalance is counted
/// complete: a test that reads or compares the count waits for it here, not for the partitions.
pub async fn wait_rebalanced(consumer: &Consumer, after: u64, limit: Duration) {
    let mut rebalances = consumer.rebalances();
    tokio::time::timeout(limit, rebalances.wait_for(|n| *n > after))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "timed out after {limit:?} waiting for rebalance {}",
                after + 1
            )
        })
        .expect("consumer alive");
}

/// Asserts no (topic, partition, offset) was delivered twice across all collectors.
pub fn assert_no_duplicates(all: &[Seen]) {
    let mut keys = BTreeMap::new();
    for s in all {
        *keys
            .entry((s.topic.clone(), s.partition, s.offset))
            .or_insert(0) += 1;
    }
    let dups: Vec<_> = keys.iter().filter(|(_, &n)| n > 1).collect();
    assert!(dups.is_empty(), "duplicates delivered: {dups:?}");
}

/// Produces `per_partition` messages to every partition; values are `<tag>-<p>-<i>`.
pub fn produce(topic: &str, partitions: i32, per_partition: usize, tag: &str) -> usize {
    let cluster = testkit::cluster();
    for p in 0..partitions {
        let values: Vec<String> = (0..per_partition)
            .map(|i| format!("{tag}-{p}-{i}"))
            .collect();
        cluster.produce_values(topic, p, &values);
    }
    partitions as usize * per_partition
}

/// A ZooKeeper session on the cluster's chroot for checking nodes.
pub async fn zk() -> ZkSession {
    let cluster = testkit::cluster();
    ZkSession::connect(ZkSettings {
        connect: cluster.zk_connect(),
        session_timeout: Duration::from_secs(10),
        connection_timeout: Duration::from_secs(10),
        server_version: cluster.zk_server_version(),
    })
    .await
    .expect("zk connect")
}

/// Committed offsets of a group's topic from ZooKeeper.
pub async fn committed(zk: &ZkSession, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let root = format!("/consumers/{group}/offsets/{topic}");
    let mut out = BTreeMap::new();
    for p in zk.children(&root).await.expect("children") {
        let data = zk
            .get_data(&format!("{root}/{p}"))
            .await
            .expect("get")
            .expect("node");
        out.insert(
            p.parse().expect("partition"),
            String::from_utf8(data)
                .expect("utf8")
                .trim()
                .parse()
                .expect("offset"),
        );
    }
    out
}

/// Owner node data per partition of a group's topic.
pub async fn owners(zk: &ZkSession, group: &str, topic: &str) -> BTreeMap<i32, String> {
    let root = format!("/consumers/{group}/owners/{topic}");
    let mut out = BTreeMap::new();
    for p in zk.children(&root).await.expect("children") {
        if let Some(data) = zk.get_data(&format!("{root}/{p}")).await.expect("get") {
            out.insert(
                p.parse().expect("partition"),
                String::from_utf8(data).expect("utf8"),
            );
        }
    }
    out
}

/// A new topic with `partitions` partitions (replication `replication`).
pub fn topic(prefix: &str, partitions: i32, replication: i32) -> String {
    let cluster = testkit::cluster();
    let name = cluster.unique(prefix);
    cluster.create_topic(&name, partitions, replication);
    name
}

/// Runs a `zkconsumer` subcommand against the cluster's ZooKeeper.
pub fn tool(args: &[&str]) -> std::process::Output {
    let cluster = testkit::cluster();
    let version = version_string(cluster.zk_server_version());
    std::process::Command::new(env!("CARGO_BIN_EXE_zkconsumer"))
        .args(args)
        .args([
            "--zookeeper",
            &cluster.zk_connect(),
            "--zookeeper-version",
            &version,
        ])
        .output()
        .expect("run zkconsumer")
}

/// Writes committed offsets of a group's topic into ZooKeeper, as the Java consumer would.
pub async fn set_offsets(group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let zk = zk().await;
    for (p, o) in offsets {
        zk.write_persistent(
            &format!("/consumers/{group}/offsets/{topic}/{p}"),
            o.to_string().as_bytes(),
        )
        .await
        .unwrap();
    }
}

/// Writes a `.properties` file for Kafka's own old consumer in `group` on the shared cluster,
/// with `extra` lines (`key=value\n`…) after `group.id` and `zookeeper.connect`.
pub fn java_consumer_properties(group: &str, extra: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{group}.properties"));
    std::fs::write(
        &path,
        format!(
            "group.id={group}\nzookeeper.connect={}\n{extra}",
            testkit::cluster().zk_connect()
        ),
    )
    .expect("write the Java consumer's properties");
    path
}

/// Creates `count` streams of `topic` on `consumer` and collects what they deliver.
pub async fn collect_streams(consumer: &Consumer, topic: &str, count: u32) -> Collector {
    let collector = Collector::default();
    collector.spawn(
        consumer
            .create_message_streams(BTreeMap::from([(topic.to_string(), count)]))
            .await
            .expect("streams")
            .remove(topic)
            .expect("streams of the topic"),
    );
    collector
}

/// A consumer with `consumer.id` `id` in `group` that reaches the shared cluster's ZooKeeper
/// only through `proxy` (a [`testkit::FaultProxy`] in front of the ZooKeeper server).
pub async fn connect_through(proxy: &testkit::FaultProxy, group: &str, id: &str) -> Consumer {
    init_logs();
    let cluster = testkit::cluster();
    let chroot = &cluster.zk_connect()[cluster.zk_hosts().len()..];
    Consumer::connect(
        config(group)
            .set("zookeeper.connect", format!("{}{chroot}", proxy.address()))
            .set("consumer.id", id)
            .build()
            .expect("valid config"),
    )
    .await
    .expect("connect through the proxy")
}

/// Records what a rebalance listener is told, in order.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<(&'static str, BTreeSet<i32>)>>,
}

impl zkconsumer::RebalanceListener for Recorder {
    fn before_releasing_partitions(&self, owned: &BTreeMap<String, BTreeSet<i32>>) {
        let all = owned.values().flatten().copied().collect();
        self.events.lock().unwrap().push(("release", all));
    }

    fn before_starting_fetchers(
        &self,
        consumer_id: &str,
        assignment: &BTreeMap<String, BTreeMap<i32, String>>,
    ) {
        let mine = assignment
            .values()
            .flatten()
            .filter(|(_, owner)| {
                zkconsumer::group::identity::ConsumerId::parse(consumer_id)
                    .thread_number(owner)
                    .is_some()
            })
            .map(|(p, _)| *p)
            .collect();
        self.events.lock().unwrap().push(("start", mine));
    }
}

/// Kafka's own old consumer (the console consumer) as a member of `group`, subscribed with
/// `subscription` flags, with the tests' session and commit settings plus `extra` properties.
pub fn spawn_java_member(group: &str, subscription: &[&str], extra: &str) -> std::process::Child {
    let cluster = testkit::cluster();
    let props = java_consumer_properties(
        group,
        &format!(
            "auto.offset.reset=smallest\nauto.commit.interval.ms=100\nzookeeper.session.timeout.ms={SESSION_MS}\n{extra}"
        ),
    );
    let zk_connect = cluster.zk_connect();
    let mut args = vec!["--zookeeper", zk_connect.as_str()];
    args.extend_from_slice(subscription);
    args.extend([
        "--consumer.config",
        props.to_str().expect("UTF-8 temp path"),
    ]);
    cluster.spawn_kafka_class("kafka.tools.ConsoleConsumer", &args)
}
