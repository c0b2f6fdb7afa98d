//! The `zkconsumer consume` binary as a process: one-signal shutdown, crash takeover (session
//! expiry), a paused zombie member, bad configuration, and a group shared with Kafka's own
//! Java consumer.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(90);

/// A running `zkconsumer consume --format json` whose output lines are collected.
struct Member {
    child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    stderr: Arc<Mutex<String>>,
    /// A stdout line the reader could not take (not JSON): fails the test where it looks next.
    bad_line: Arc<Mutex<Option<String>>>,
    /// Readers of stdout and stderr: done once the process exited and they read to the end.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(group: &str, topic: &str, threads: u32, extra: &[&str]) -> Member {
        Member::start_subscribed(group, &["--topic", topic], threads, extra)
    }

    /// A member whose subscription is given as CLI flags (`--topic T` or `--whitelist R`).
    fn start_subscribed(
        group: &str,
        subscription: &[&str],
        threads: u32,
        extra: &[&str],
    ) -> Member {
        let cluster = testkit::cluster();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkconsumer"));
        cmd.args([
            "consume",
            "--zookeeper",
            &cluster.zk_connect(),
            "--group",
            group,
        ])
        .args(subscription)
        .args(["--threads", &threads.to_string(), "--format", "json"])
        .args([
            "--property",
            &format!(
                "zookeeper.server.version={}",
                version_string(cluster.zk_server_version())
            ),
            "--property",
            &format!("zookeeper.session.timeout.ms={SESSION_MS}"),
            "--property",
            "auto.offset.reset=smallest",
            "--property",
            "rebalance.backoff.ms=300",
            "--property",
            "auto.commit.interval.ms=100",
        ])
        .args(extra)
        .env("RUST_LOG", "zkconsumer=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn zkconsumer");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        let bad_line = Arc::new(Mutex::new(None));
        let bad = bad_line.clone();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str(&line) {
                    Ok(value) => sink.lock().unwrap().push(value),
                    Err(e) => {
                        *bad.lock().unwrap() = Some(format!("{e}: {line:?}"));
                        break;
                    }
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Member {
            child,
            lines,
            stderr,
            bad_line,
            readers: vec![stdout_reader, stderr_reader],
        }
    }

    /// Fails the test when stdout had a line that is not JSON.
    fn check_output(&self) {
        if let Some(bad) = self.bad_line.lock().unwrap().as_ref() {
            panic!("zkconsumer printed a line that is not JSON: {bad}");
        }
    }

    fn count(&self) -> usize {
        self.check_output();
        self.lines.lock().unwrap().len()
    }

    fn seen(&self) -> Vec<Seen> {
        self.check_output();
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|v| Seen {
                topic: v["topic"].as_str().unwrap().to_string(),
                partition: v["partition"].as_i64().unwrap() as i32,
                offset: v["offset"].as_i64().unwrap(),
                value: v["value"].as_str().unwrap().to_string(),
            })
            .collect()
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let elapsed = start.elapsed();
                // Everything the process wrote is collected before anyone looks at it.
                for reader in self.readers.drain(..) {
                    if let Err(panic) = reader.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
                self.check_output();
                return (status, elapsed);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "zkconsumer did not exit within {limit:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn registered_members(group: &str) -> Vec<String> {
    zk().await
        .children(&format!("/consumers/{group}/ids"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_all_streams_commits_and_removes_nodes() {
    let topic = topic("sigterm", 4, 1);
    let group = testkit::cluster().unique("sigterm-group");
    let total = produce(&topic, 4, 50, "s");
    let mut member = Member::start(&group, &topic, 3, &[]);
    wait_until("all messages printed", LIMIT, || member.count() >= total).await;
    // Idle now: no message is arriving, the streams are parked.
    member.signal("TERM");
    let (status, took) = member.wait_exit(Duration::from_secs(20));
    println!("SIGTERM to exit: {took:?}");
    assert!(status.success(), "exit status {status:?}");
    let zk = zk().await;
    assert_eq!(
        committed(&zk, &group, &topic).await,
        testkit::cluster().log_end_offsets(&topic),
        "offsets committed up to what was printed"
    );
    assert!(owners(&zk, &group, &topic).await.is_empty());
    assert!(registered_members(&group).await.is_empty());
    assert_no_duplicates(&member.seen());
    assert_eq!(member.count(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_ack_false_printed_messages_are_committed() {
    let topic = topic("noack", 2, 1);
    let group = testkit::cluster().unique("noack-group");
    let total = produce(&topic, 2, 20, "n");
    let mut member = Member::start(&group, &topic, 1, &["--property", "auto.ack=false"]);
    wait_until("all messages printed", LIMIT, || member.count() >= total).await;
    // Each printed message is acknowledged: auto-commit moves to the log end.
    let zk = zk().await;
    let log_end = testkit::cluster().log_end_offsets(&topic);
    wait_until_async("everything printed committed", LIMIT, || async {
        committed(&zk, &group, &topic).await == log_end
    })
    .await;
    member.signal("TERM");
    let (status, _) = member.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(committed(&zk, &group, &topic).await, log_end);
    assert_no_duplicates(&member.seen());
    assert_eq!(member.count(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_member_partitions_are_taken_over_after_session_timeout() {
    let topic = topic("crash", 4, 1);
    let group = testkit::cluster().unique("crash-group");
    let first = produce(&topic, 4, 10, "one");
    let mut a = Member::start(&group, &topic, 1, &[]);
    wait_until("a consumed the first batch", LIMIT, || a.count() >= first).await;
    let b = Member::start(&group, &topic, 1, &[]);
    let zk = zk().await;
    wait_until_async("two owners", LIMIT, || async {
        owners(&zk, &group, &topic)
            .await
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .len()
            == 2
    })
    .await;
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(10));
    let crashed_at = Instant::now();
    let second = produce(&topic, 4, 10, "two");
    wait_until(
        "b consumes everything produced after the crash",
        LIMIT,
        || {
            b.seen()
                .iter()
                .filter(|s| s.value.starts_with("two-"))
                .count()
                >= second
        },
    )
    .await;
    println!(
        "takeover after crash: {:?} (session timeout {SESSION_MS} ms)",
        crashed_at.elapsed()
    );
    let owners_now: BTreeSet<String> = owners(&zk, &group, &topic).await.into_values().collect();
    assert_eq!(owners_now.len(), 1, "b owns all: {owners_now:?}");
}

/// Polls an async condition (hang guard, not a timing assertion).
async fn wait_until_async<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_member_past_its_session_delivers_no_duplicates_and_rejoins() {
    let topic = topic("zombie", 4, 1);
    let group = testkit::cluster().unique("zombie-group");
    let first = produce(&topic, 4, 10, "one");
    let a = Member::start(&group, &topic, 1, &[]);
    let b = Member::start(&group, &topic, 1, &[]);
    let zk = zk().await;
    wait_until("first batch consumed", LIMIT, || {
        a.count() + b.count() >= first
    })
    .await;
    wait_until_async("two owners", LIMIT, || async {
        owners(&zk, &group, &topic)
            .await
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .len()
            == 2
    })
    .await;
    // Auto-commit (100 ms) recorded everything processed before the pause.
    let log_end = testkit::cluster().log_end_offsets(&topic);
    wait_until_async("the first batch committed", LIMIT, || async {
        committed(&zk, &group, &topic).await == log_end
    })
    .await;

    a.signal("STOP");
    // Past the session timeout: A's session expires, B takes over A's partitions.
    wait_until_async("b owns all partitions", LIMIT, || async {
        let owners = owners(&zk, &group, &topic).await;
        owners.len() == 4 && owners.values().cloned().collect::<BTreeSet<_>>().len() == 1
    })
    .await;
    let second = produce(&topic, 4, 25, "two");
    wait_until("b consumes the second batch", LIMIT, || {
        b.seen()
            .iter()
            .filter(|s| s.value.starts_with("two-"))
            .count()
            >= second
    })
    .await;
    let a_before = a.count();
    a.signal("CONT");
    // A notices the expiry, re-registers and rebalances; meanwhile it must not deliver data of
    // partitions it lost.
    let start = Instant::now();
    while owners(&zk, &group, &topic)
        .await
        .values()
        .cloned()
        .collect::<BTreeSet<_>>()
        .len()
        != 2
    {
        assert!(
            start.elapsed() < LIMIT,
            "a did not rejoin; a's log:\n{}\nb's log:\n{}",
            a.stderr.lock().unwrap(),
            b.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let third = produce(&topic, 4, 5, "three");
    wait_until("third batch consumed", LIMIT, || {
        a.seen()
            .iter()
            .chain(b.seen().iter())
            .filter(|s| s.value.starts_with("three-"))
            .count()
            >= third
    })
    .await;
    let all: Vec<Seen> = a.seen().into_iter().chain(b.seen()).collect();
    println!(
        "a printed {} before the pause, {} in total",
        a_before,
        a.count()
    );
    assert_no_duplicates(&all);
    let values: BTreeSet<&str> = all.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(values.len(), first + second + third, "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_2_naming_the_key() {
    let topic = topic("badcfg", 1, 1);
    let mut member = Member::start(
        "bad-cfg",
        &topic,
        1,
        &["--property", "auto.offset.reset=sometimes"],
    );
    let (status, _) = member.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2));
    let err = member.stderr.lock().unwrap().clone();
    assert!(
        err.contains("auto.offset.reset") && err.contains("sometimes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs broker control and Kafka's tools (a self-started cluster or ZKC_TEST_STATE); scripts/test's testbed lanes run it with --include-ignored"]
async fn shares_a_group_with_the_java_high_level_consumer() {
    let cluster = testkit::cluster();
    cluster.require_control();
    let topic = topic("interop", 6, 1);
    let group = cluster.unique("interop-group");
    // Kafka's own old consumer in the group (range assignment, like ours).
    let mut java = spawn_java_member(&group, &["--topic", &topic], "");
    let zk = zk().await;
    wait_until_async("java member registered and owning", LIMIT, || async {
        owners(&zk, &group, &topic).await.len() == 6
    })
    .await;
    let mut rust = Member::start(
        &group,
        &topic,
        1,
        &["--property", "consumer.id=rust-member"],
    );
    let rust_thread = format!("{group}_rust-member-0");
    wait_until_async("partitions split between java and rust", LIMIT, || async {
        let o = owners(&zk, &group, &topic).await;
        o.len() == 6 && o.values().filter(|owner| **owner == rust_thread).count() == 3
    })
    .await;
    let members = registered_members(&group).await;
    assert_eq!(members.len(), 2, "{members:?}");
    let o = owners(&zk, &group, &topic).await;
    let rust_partitions: BTreeSet<i32> = o
        .iter()
        .filter(|(_, owner)| **owner == rust_thread)
        .map(|(p, _)| *p)
        .collect();
    // Range over sorted thread ids: both members compute the same split.
    let java_partitions: BTreeSet<i32> = (0..6).filter(|p| !rust_partitions.contains(p)).collect();
    assert!(
        rust_partitions == (0..3).collect() || rust_partitions == (3..6).collect(),
        "range gives contiguous halves: {o:?}"
    );
    assert!(o
        .iter()
        .filter(|(p, _)| java_partitions.contains(p))
        .all(|(_, owner)| owner != &rust_thread));
    let total = produce(&topic, 6, 10, "x");
    wait_until("rust consumes its share", LIMIT, || rust.count() >= 30).await;
    // Stopped and its output read to the end: the counts below are final.
    rust.signal("TERM");
    rust.wait_exit(LIMIT);
    let got: BTreeSet<i32> = rust.seen().iter().map(|s| s.partition).collect();
    assert_eq!(
        got, rust_partitions,
        "rust reads only the partitions it owns"
    );
    assert_eq!(rust.count(), total / 2);
    let _ = java.kill();
    let _ = java.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_consumption_and_lag() {
    let topic = topic("metrics", 2, 1);
    let group = testkit::cluster().unique("metrics-group");
    let total = produce(&topic, 2, 30, "m");
    let port = testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let member = Member::start(&group, &topic, 1, &["--metrics-addr", &addr]);
    wait_until("all consumed", LIMIT, || member.count() >= total).await;
    let scrape = || -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).expect("metrics endpoint");
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    // Lag = log end (from the last fetch answer) minus processed offset, per owned partition:
    // 0 once everything was printed.
    let mut text = scrape();
    for _ in 0..100 {
        if text.contains("partition=\"0\"} 0") && text.contains("partition=\"1\"} 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape();
    }
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    assert!(
        text.contains(&format!(
            "zkconsumer_messages_consumed_total{{group=\"{group}\"}} {total}"
        )),
        "{text}"
    );
    for p in 0..2 {
        assert!(
            text.contains(&format!(
                "zkconsumer_partition_lag{{group=\"{group}\",topic=\"{topic}\",partition=\"{p}\"}} 0"
            )),
            "{text}"
        );
    }
    assert!(text.contains(&format!(
        "zkconsumer_rebalances_total{{group=\"{group}\"}} 1"
    )));
    assert!(text.contains("zkconsumer_commit_failures_total"));
    // The offset checker agrees once the processed offsets are committed (auto-commit 100 ms).
    let mut lags = Vec::new();
    for _ in 0..100 {
        let out = tool(&["offsets", "check", "--group", &group, "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        lags = rows
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["lag"].as_i64())
            .collect();
        if lags == [Some(0), Some(0)] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lags, [Some(0), Some(0)], "offsets check lag per partition");
}

/// (topic, partition, owner thread) for every owned partition of `topics`.
async fn owners_of(
    zk: &zkconsumer::zk::session::ZkSession,
    group: &str,
    topics: &[String],
) -> Vec<(String, i32, String)> {
    let mut all = Vec::new();
    for t in topics {
        for (p, owner) in owners(zk, group, t).await {
            all.push((t.clone(), p, owner));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs broker control and Kafka's tools (a self-started cluster or ZKC_TEST_STATE); scripts/test's testbed lanes run it with --include-ignored"]
async fn shares_a_roundrobin_whitelist_group_with_the_java_high_level_consumer() {
    let cluster = testkit::cluster();
    cluster.require_control();
    let base = cluster.unique("rr");
    let topics = [format!("{base}-a"), format!("{base}-b")];
    for t in &topics {
        cluster.create_topic(t, 3, 1);
    }
    let whitelist = format!("{base}-.*");
    let group = cluster.unique("rr-group");
    let mut java = spawn_java_member(
        &group,
        &["--whitelist", &whitelist],
        "partition.assignment.strategy=roundrobin\n",
    );
    let zk = zk().await;
    wait_until_async("java member owns both topics", LIMIT, || async {
        owners_of(&zk, &group, &topics).await.len() == 6
    })
    .await;
    let mut rust = Member::start_subscribed(
        &group,
        &["--whitelist", &whitelist],
        1,
        &[
            "--property",
            "consumer.id=rust-member",
            "--property",
            "partition.assignment.strategy=roundrobin",
        ],
    );
    let rust_thread = format!("{group}_rust-member-0");
    // The claims only settle if both members computed the same roundrobin map.
    wait_until_async("roundrobin split between java and rust", LIMIT, || async {
        let o = owners_of(&zk, &group, &topics).await;
        o.len() == 6
            && o.iter()
                .filter(|(_, _, owner)| *owner == rust_thread)
                .count()
                == 3
    })
    .await;
    assert_eq!(registered_members(&group).await.len(), 2);
    let mine: BTreeSet<(String, i32)> = owners_of(&zk, &group, &topics)
        .await
        .into_iter()
        .filter(|(_, _, owner)| *owner == rust_thread)
        .map(|(t, p, _)| (t, p))
        .collect();
    let mut total = 0;
    for t in &topics {
        total += produce(t, 3, 10, "rr");
    }
    wait_until("rust consumes its share", LIMIT, || {
        rust.count() >= total / 2
    })
    .await;
    // Stopped and its output read to the end: the counts below are final.
    rust.signal("TERM");
    rust.wait_exit(LIMIT);
    let got: BTreeSet<(String, i32)> = rust
        .seen()
        .iter()
        .map(|s| (s.topic.clone(), s.partition))
        .collect();
    assert_eq!(got, mine, "rust reads exactly the partitions it owns");
    assert_eq!(rust.count(), total / 2);
    let _ = java.kill();
    let _ = java.wait();
}
