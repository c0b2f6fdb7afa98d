//! Rebalance benchmark (run by `scripts/bench-rebalance`; prints figures, asserts nothing).
//!
//! On the test-bed cluster (`ZKC_TEST_*` variables, or a cluster of its own started by
//! `testkit`), with the Java defaults (`zookeeper.session.timeout.ms=6000`,
//! `rebalance.backoff.ms=2000`):
//! - join: a 10th member joins 9 on a 100-partition topic; time from its registration until
//!   the group is valid (median of three joins);
//! - cold: 50 members created together (20 ms apart, as processes started together register)
//!   on 200 partitions; time from the last registration until valid;
//! - kill: 10 of 50 members (a child process) are killed with SIGKILL; time from ZooKeeper
//!   dropping their registrations until the 40 others own all 200 partitions;
//! - cold200 / kill40: the same at 200 members on 1,000 partitions (40 killed);
//! - ZooKeeper requests per member per completed rebalance, in each scenario;
//! - pause: the delivery pause of members whose partitions do not move, under a steady produce
//!   load (one message per partition every 20 ms), while a 10th member joins 9: (a) the 10th
//!   subscribes to another topic, so no partition of the 9 moves: the longest gap in each
//!   member's deliveries; (b) the 10th joins the same topic (range: most members keep most of
//!   their partitions): the longest gap of the partitions whose owner did not change. Both
//!   next to the longest gap of the same members in the 2 s before the join (median of three
//!   joins each).
//!
//! "Valid": every partition owned by exactly one member, every member owning some. Members
//! run in this process (one runtime), except the 10 killed ones; with `ZKC_BENCH_PROCS=1`,
//! cold, cold200, kill and kill40 run each member in a process of its own (as separate
//! `zkconsumer consume` processes would), which reports its owned partitions on stdout when
//! they change (the runtime lateness below is then the bench's own, the CPU the bench's
//! and the members'). The group is polled every `ZKC_BENCH_POLL_MS` (default 2) ms.
//!
//! cold, cold200, kill, kill40 also print, for the idle second before and for the storm (first
//! change until valid): the round-trip time of a getData of a probe client (its own session,
//! thread and runtime; every 10 ms), the lateness of a 10 ms sleep in the members' runtime,
//! and the CPU used by this process and by the ZooKeeper server (from /proc, when its pid is
//! found by its port). `RUST_LOG=zkconsumer::timeline=debug,bench=info` logs each member's
//! attempt steps and the bench's marks (`scripts/rebalance-timeline` summarises them).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zkconsumer::{Consumer, ConsumerConfig};

const LIMIT: Duration = Duration::from_secs(120);

/// How often the bench polls the group's state (`ZKC_BENCH_POLL_MS`, default 2 ms).
fn poll_interval() -> Duration {
    let ms = std::env::var("ZKC_BENCH_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    Duration::from_millis(ms)
}

/// Samples taken while a scenario runs: (when, value).
type Samples = Arc<Mutex<Vec<(Instant, Duration)>>>;

/// The probes of a scenario (see the module doc); stopped when dropped.
struct Probes {
    zk_rtt: Samples,
    runtime_lag: Samples,
    stop: Arc<AtomicBool>,
    zk_pid: Option<u32>,
}

impl Probes {
    async fn start() -> Probes {
        let cluster = testkit::cluster();
        let stop = Arc::new(AtomicBool::new(false));
        let zk_rtt: Samples = Arc::default();
        let runtime_lag: Samples = Arc::default();
        {
            let (stop, samples) = (stop.clone(), zk_rtt.clone());
            let settings = zkconsumer::zk::session::ZkSettings {
                connect: cluster.zk_connect(),
                session_timeout: Duration::from_secs(10),
                connection_timeout: Duration::from_secs(10),
                server_version: cluster.zk_server_version(),
            };
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("probe runtime");
                rt.block_on(async move {
                    let zk = zkconsumer::zk::session::ZkSession::connect(settings)
                        .await
                        .expect("probe zk");
                    while !stop.load(Ordering::Acquire) {
                        let sent = Instant::now();
                        if zk.get_data("/brokers").await.is_ok() {
                            if let Ok(mut s) = samples.lock() {
                                s.push((sent, sent.elapsed()));
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
            });
        }
        {
            let (stop, samples) = (stop.clone(), runtime_lag.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    let before = Instant::now();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let late = before.elapsed().saturating_sub(Duration::from_millis(10));
                    if let Ok(mut s) = samples.lock() {
                        s.push((before, late));
                    }
                }
            });
        }
        let zk_pid = zk_server_pid(&cluster.zk_connect());
        Probes {
            zk_rtt,
            runtime_lag,
            stop,
            zk_pid,
        }
    }

    /// CPU ticks so far of (this process, the ZooKeeper server).
    fn cpu(&self) -> (Option<u64>, Option<u64>) {
        self.cpu_with(&[])
    }

    /// CPU ticks so far of (this process and the member processes `members`, the ZooKeeper
    /// server).
    fn cpu_with(&self, members: &[u32]) -> (Option<u64>, Option<u64>) {
        let ours = cpu_ticks(std::process::id())
            .map(|own| own + members.iter().filter_map(|p| cpu_ticks(*p)).sum::<u64>());
        (ours, self.zk_pid.and_then(cpu_ticks))
    }

    /// The probe's getData round trip in `[from, to]` by half second: the slowest of each.
    fn series(&self, from: Instant, to: Instant) -> String {
        let samples = self.zk_rtt.lock().map(|s| s.clone()).unwrap_or_default();
        let mut buckets: BTreeMap<u64, Duration> = BTreeMap::new();
        for (t, d) in samples {
            if t >= from && t <= to {
                let b = (t - from).as_millis() as u64 / 500;
                let e = buckets.entry(b).or_default();
                *e = (*e).max(d);
            }
        }
        buckets
            .values()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One line: the probes' figures in `[from, to]`, and the CPU between two `cpu()` reads.
    fn summary(
        &self,
        label: &str,
        from: Instant,
        to: Instant,
        cpu_from: (Option<u64>, Option<u64>),
        cpu_to: (Option<u64>, Option<u64>),
    ) -> String {
        let secs = (to - from).as_secs_f64().max(1e-3);
        let share = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.0}%", (b - a) as f64 / 100.0 / secs * 100.0),
            _ => "?".to_string(),
        };
        format!(
            "{label} ({:.2} s): ZooKeeper getData {}; runtime 10 ms sleep late by {}; CPU of a core: bench {}, ZooKeeper {}",
            secs,
            percentiles(&self.zk_rtt, from, to),
            percentiles(&self.runtime_lag, from, to),
            share(cpu_from.0, cpu_to.0),
            share(cpu_from.1, cpu_to.1),
        )
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// p50 / p90 / p99 / max of the samples taken in `[from, to]`.
fn percentiles(samples: &Samples, from: Instant, to: Instant) -> String {
    let mut v: Vec<Duration> = samples
        .lock()
        .map(|s| {
            s.iter()
                .filter(|(t, _)| *t >= from && *t <= to)
                .map(|(_, d)| *d)
                .collect()
        })
        .unwrap_or_default();
    if v.is_empty() {
        return "no samples".to_string();
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    format!(
        "p50 {:.1} / p90 {:.1} / p99 {:.1} / max {:.1} ms ({} samples)",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        v.len()
    )
}

/// utime + stime of process `pid` in clock ticks (100 per second), from /proc.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The pid of the process listening on the port of `connect` (host:port[,...]), from
/// /proc/net/tcp and the processes' fd links (only our own processes are readable).
fn zk_server_pid(connect: &str) -> Option<u32> {
    let port: u16 = connect
        .split(',')
        .next()?
        .rsplit_once(':')?
        .1
        .split('/')
        .next()?
        .parse()
        .ok()?;
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, state 0A = LISTEN, inode
            if f.len() > 9 && f[3] == "0A" {
                if let Some((_, p)) = f[1].rsplit_once(':') {
                    if u16::from_str_radix(p, 16).ok() == Some(port) {
                        inodes.insert(format!("socket:[{}]", f[9]));
                    }
                }
            }
        }
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.contains(link.to_string_lossy().as_ref()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

fn config(group: &str) -> ConsumerConfig {
    let cluster = testkit::cluster();
    let (a, b, c) = cluster.zk_server_version();
    ConsumerConfig::builder(&cluster.zk_connect(), group)
        .set("zookeeper.server.version", format!("{a}.{b}.{c}"))
        .set("auto.offset.reset", "smallest")
        .build()
        .expect("valid config")
}

async fn member(group: &str, topic: &str) -> Consumer {
    let consumer = Consumer::connect(config(group)).await.expect("connect");
    let streams = consumer
        .create_message_streams(BTreeMap::from([(topic.to_string(), 1)]))
        .await
        .expect("streams");
    // Drain the streams so fetchers never block on full queues.
    for stream in streams.into_values().flatten() {
        let mut stream = stream;
        tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    }
    consumer
}

/// When each message of a member was delivered: (time, partition).
type Deliveries = Arc<Mutex<Vec<(Instant, i32)>>>;

/// A member whose streams record when they deliver.
async fn timed_member(group: &str, topic: &str) -> (Consumer, Deliveries) {
    let consumer = Consumer::connect(config(group)).await.expect("connect");
    let streams = consumer
        .create_message_streams(BTreeMap::from([(topic.to_string(), 1)]))
        .await
        .expect("streams");
    let deliveries: Deliveries = Arc::default();
    for stream in streams.into_values().flatten() {
        let mut stream = stream;
        let deliveries = deliveries.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let now = Instant::now();
                if let Ok(mut d) = deliveries.lock() {
                    d.push((now, m.partition));
                }
            }
        });
    }
    (consumer, deliveries)
}

/// Longest time in `[from, to]` without a delivery among `times` (sorted or not).
fn longest_gap(mut times: Vec<Instant>, from: Instant, to: Instant) -> Duration {
    times.retain(|t| *t >= from && *t <= to);
    times.sort();
    let mut last = from;
    let mut longest = Duration::ZERO;
    for t in times.into_iter().chain(std::iter::once(to)) {
        longest = longest.max(t - last);
        last = t;
    }
    longest
}

/// Longest gap of one member's deliveries (of `partitions` only, when given) in the window.
fn member_gap(
    deliveries: &Deliveries,
    partitions: Option<&HashSet<i32>>,
    from: Instant,
    to: Instant,
) -> Duration {
    let times = deliveries
        .lock()
        .map(|d| {
            d.iter()
                .filter(|(_, p)| partitions.is_none_or(|ps| ps.contains(p)))
                .map(|(t, _)| *t)
                .collect()
        })
        .unwrap_or_default();
    longest_gap(times, from, to)
}

/// Sends one message to every partition of `topic` every 20 ms until `stop`.
fn steady_load(
    topic: String,
    partitions: i32,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let brokers = testkit::cluster().brokers();
    std::thread::spawn(move || {
        let mut producer = kafka::producer::Producer::from_hosts(brokers)
            .with_required_acks(kafka::producer::RequiredAcks::One)
            .create()
            .expect("producer");
        let value = [b'x'; 100];
        while !stop.load(Ordering::Acquire) {
            let records: Vec<_> = (0..partitions)
                .map(|p| kafka::producer::Record::from_value(&topic, &value[..]).with_partition(p))
                .collect();
            if let Err(e) = producer.send_all(&records) {
                eprintln!("steady load: {e}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The delivery pause of members whose partitions do not move (see the module doc).
async fn pause() {
    let cluster = testkit::cluster();
    let topic = cluster.unique("bench-pause");
    let other = cluster.unique("bench-pause-other");
    cluster.create_topic(&topic, 90, 1);
    cluster.create_topic(&other, 10, 1);
    for same_topic in [false, true] {
        let group = cluster.unique("bench-pause-group");
        let mut nine = Vec::new();
        for _ in 0..9 {
            nine.push(timed_member(&group, &topic).await);
        }
        let refs: Vec<&Consumer> = nine.iter().map(|(c, _)| c).collect();
        wait_valid(&refs, 90).await;
        let stop = Arc::new(AtomicBool::new(false));
        let load = steady_load(topic.clone(), 90, stop.clone());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (mut baseline, mut during, mut kept_counts) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            let owners_before: Vec<HashSet<i32>> = refs
                .iter()
                .map(|c| {
                    c.owned_partitions()
                        .into_keys()
                        .map(|tp| tp.partition)
                        .collect()
                })
                .collect();
            let rebalances: Vec<u64> = refs.iter().map(|c| *c.rebalances().borrow()).collect();
            let joined = Instant::now();
            let (tenth, _) = timed_member(&group, if same_topic { &topic } else { &other }).await;
            // Settled: every one of the nine rebalanced, and the topic is fully owned.
            let start = Instant::now();
            loop {
                let all_rebalanced = refs
                    .iter()
                    .zip(&rebalances)
                    .all(|(c, n)| *c.rebalances().borrow() > *n);
                let settled = if same_topic {
                    let mut all = refs.clone();
                    all.push(&tenth);
                    valid(&all, 90)
                } else {
                    tenth.owned_partitions().len() == 10 && valid(&refs, 90)
                };
                if all_rebalanced && settled {
                    break;
                }
                assert!(start.elapsed() < LIMIT, "group never settled");
                tokio::time::sleep(poll_interval()).await;
            }
            // Time for the moved partitions' first fetches to arrive.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let end = Instant::now();
            let mut worst_before = Duration::ZERO;
            let mut worst_during = Duration::ZERO;
            let mut kept_total = 0;
            for ((c, deliveries), before) in nine.iter().zip(&owners_before) {
                let after: HashSet<i32> = c
                    .owned_partitions()
                    .into_keys()
                    .map(|tp| tp.partition)
                    .collect();
                let kept: HashSet<i32> = before.intersection(&after).copied().collect();
                kept_total += kept.len();
                if kept.is_empty() {
                    continue;
                }
                let pre = joined - Duration::from_secs(2);
                worst_before = worst_before.max(member_gap(deliveries, Some(&kept), pre, joined));
                worst_during = worst_during.max(member_gap(deliveries, Some(&kept), joined, end));
            }
            baseline.push(worst_before);
            during.push(worst_during);
            kept_counts.push(kept_total);
            tenth.shutdown().await.expect("shutdown");
            wait_valid(&refs, 90).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        stop.store(true, Ordering::Release);
        let _ = load.join();
        println!(
            "pause of unmoved partitions, 10th member joins 9 on {}: longest gap median {} (runs: {}); \
             in the 2 s before: {} ({} partitions kept of 90, per run: {:?})",
            if same_topic {
                "the same 90-partition topic"
            } else {
                "another topic (none of the 90 moves)"
            },
            ms(median(during.clone())),
            during.iter().map(|t| ms(*t)).collect::<Vec<_>>().join(", "),
            ms(median(baseline)),
            kept_counts.iter().sum::<usize>() / kept_counts.len().max(1),
            kept_counts,
        );
        for (c, _) in nine {
            c.shutdown().await.expect("shutdown");
        }
    }
}

/// Every partition owned by exactly one of `members`, each owning some.
fn valid(members: &[&Consumer], partitions: usize) -> bool {
    let mut seen = HashSet::new();
    for m in members {
        let owned = m.owned_partitions();
        if owned.is_empty() {
            return false;
        }
        for tp in owned.into_keys() {
            if !seen.insert(tp) {
                return false;
            }
        }
    }
    seen.len() == partitions
}

/// Whether members run in processes of their own (`ZKC_BENCH_PROCS=1`).
fn separate_processes() -> bool {
    std::env::var("ZKC_BENCH_PROCS").is_ok_and(|v| v == "1")
}

/// What a member in a process of its own last reported.
#[derive(Clone, Default)]
struct Report {
    registered: bool,
    requests: u64,
    rebalances: u64,
    owned: Vec<String>,
}

/// The members of a scenario: in this process, or one per child process (`--member`).
enum Members {
    Local(Vec<Consumer>),
    Remote {
        children: Vec<std::process::Child>,
        reports: Arc<Mutex<Vec<Report>>>,
    },
}

/// A child process running one member of `group` on `topic` in the bench's cluster.
fn child_process(args: &[&str]) -> std::process::Command {
    let cluster = testkit::cluster();
    let version = cluster.zk_server_version();
    let mut command = std::process::Command::new(std::env::current_exe().expect("own path"));
    command
        .args(args)
        // The child joins this cluster rather than starting one of its own.
        .env("ZKC_TEST_ZK", cluster.zk_connect())
        .env("ZKC_TEST_BROKERS", cluster.brokers().join(","))
        .env(
            "ZKC_TEST_ZK_VERSION",
            format!("{}.{}.{}", version.0, version.1, version.2),
        );
    command
}

impl Members {
    /// `n` members created `apart` from each other; returns once all have registered.
    async fn create(n: usize, apart: Duration, group: &str, topic: &str) -> Members {
        if !separate_processes() {
            let created = futures::future::join_all((0..n as u32).map(|i| async move {
                tokio::time::sleep(apart * i).await;
                member(group, topic).await
            }))
            .await;
            return Members::Local(created);
        }
        let reports: Arc<Mutex<Vec<Report>>> = Arc::new(Mutex::new(vec![Report::default(); n]));
        let mut children = Vec::new();
        for i in 0..n {
            if i > 0 {
                tokio::time::sleep(apart).await;
            }
            let mut child = child_process(&["--member", group, topic])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("member process");
            let stdout = child.stdout.take().expect("member stdout");
            let reports = reports.clone();
            std::thread::spawn(move || read_reports(stdout, i, &reports));
            children.push(child);
        }
        let start = Instant::now();
        while !reports
            .lock()
            .expect("reports")
            .iter()
            .all(|r| r.registered)
        {
            assert!(start.elapsed() < LIMIT, "member processes did not register");
            tokio::time::sleep(poll_interval()).await;
        }
        Members::Remote { children, reports }
    }

    /// Every partition owned by exactly one member, each owning some.
    fn valid(&self, partitions: usize) -> bool {
        match self {
            Members::Local(members) => valid(&members.iter().collect::<Vec<_>>(), partitions),
            Members::Remote { reports, .. } => {
                let reports = reports.lock().expect("reports");
                let mut seen = HashSet::new();
                for r in reports.iter() {
                    if r.owned.is_empty() || !r.owned.iter().all(|tp| seen.insert(tp.clone())) {
                        return false;
                    }
                }
                seen.len() == partitions
            }
        }
    }

    /// (ZooKeeper requests, completed rebalances) summed over members (a member in a process
    /// of its own: as of its last change of owned partitions or completed rebalance).
    fn counters(&self) -> (u64, u64) {
        match self {
            Members::Local(members) => counters(&members.iter().collect::<Vec<_>>()),
            Members::Remote { reports, .. } => reports
                .lock()
                .expect("reports")
                .iter()
                .fold((0, 0), |(q, n), r| (q + r.requests, n + r.rebalances)),
        }
    }

    /// Process ids of the members' processes (none when they run in this one).
    fn pids(&self) -> Vec<u32> {
        match self {
            Members::Local(_) => Vec::new(),
            Members::Remote { children, .. } => children.iter().map(|c| c.id()).collect(),
        }
    }

    async fn wait_valid(&self, partitions: usize) -> Duration {
        let start = Instant::now();
        while !self.valid(partitions) {
            assert!(start.elapsed() < LIMIT, "group never became valid");
            tokio::time::sleep(poll_interval()).await;
        }
        start.elapsed()
    }

    async fn shutdown(self) {
        match self {
            Members::Local(members) => {
                futures::future::join_all(members.iter().map(|m| m.shutdown())).await;
            }
            Members::Remote { mut children, .. } => {
                // The scenario is over: killed (ZooKeeper drops their sessions later).
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }
}

/// Reads the reports of the member process `index` (see [`member_process`]) into `reports`.
fn read_reports(stdout: std::process::ChildStdout, index: usize, reports: &Mutex<Vec<Report>>) {
    use std::io::BufRead;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let mut words = line.split(' ');
        let Ok(mut all) = reports.lock() else { break };
        let report = &mut all[index];
        match words.next() {
            Some("registered") => report.registered = true,
            Some("state") => {
                report.requests = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                report.rebalances = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                report.owned = words
                    .next()
                    .filter(|w| !w.is_empty())
                    .map(|w| w.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
}

/// A member in a process of its own: prints `registered` once it is, then `state REQUESTS
/// REBALANCES TOPIC:PARTITION,...` whenever its owned partitions or completed rebalances
/// change (checked every 2 ms). Ends when its parent does.
async fn member_process(group: &str, topic: &str) {
    use std::io::Write;
    let consumer = member(group, topic).await;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "registered");
    let _ = out.flush();
    let mut last: Option<(u64, Vec<String>)> = None;
    let parent = std::os::unix::process::parent_id();
    let mut rebalances = consumer.rebalances();
    while std::os::unix::process::parent_id() == parent {
        let owned: Vec<String> = consumer
            .owned_partitions()
            .into_keys()
            .map(|tp| format!("{}:{}", tp.topic, tp.partition))
            .collect();
        let now = (*consumer.rebalances().borrow(), owned);
        if last.as_ref() != Some(&now) {
            let _ = writeln!(
                out,
                "state {} {} {}",
                consumer.zookeeper_requests(),
                now.0,
                now.1.join(",")
            );
            let _ = out.flush();
            last = Some(now);
        }
        // Woken at once when a rebalance completes; the slow poll catches releases (which
        // shrink what a member owns before its rebalance completes) and the parent's exit.
        // Polling every 2 ms instead, 200 member processes spent about a core doing it.
        tokio::select! {
            Ok(()) = rebalances.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

async fn wait_valid(members: &[&Consumer], partitions: usize) -> Duration {
    let start = Instant::now();
    while !valid(members, partitions) {
        assert!(start.elapsed() < LIMIT, "group never became valid");
        tokio::time::sleep(poll_interval()).await;
    }
    start.elapsed()
}

/// (ZooKeeper requests, completed rebalances) summed over members.
fn counters(members: &[&Consumer]) -> (u64, u64) {
    members.iter().fold((0, 0), |(r, n), m| {
        (r + m.zookeeper_requests(), n + *m.rebalances().borrow())
    })
}

fn per_rebalance(before: (u64, u64), after: (u64, u64)) -> String {
    let requests = after.0 - before.0;
    let rebalances = after.1 - before.1;
    format!(
        "{requests} ZooKeeper requests over {rebalances} completed member rebalances = {:.1} per member per rebalance",
        requests as f64 / rebalances.max(1) as f64
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn join() {
    let cluster = testkit::cluster();
    let topic = cluster.unique("bench-join");
    cluster.create_topic(&topic, 100, 1);
    let group = cluster.unique("bench-join-group");
    let mut nine = Vec::new();
    for _ in 0..9 {
        nine.push(member(&group, &topic).await);
    }
    let refs: Vec<&Consumer> = nine.iter().collect();
    wait_valid(&refs, 100).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut times = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..3 {
        let before = counters(&refs);
        let tenth = member(&group, &topic).await;
        let mut all = refs.clone();
        all.push(&tenth);
        let took = wait_valid(&all, 100).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut after = counters(&refs);
        after.0 += tenth.zookeeper_requests();
        after.1 += *tenth.rebalances().borrow();
        counts.push(per_rebalance(before, after));
        times.push(took);
        tenth.shutdown().await.expect("shutdown");
        wait_valid(&refs, 100).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut sorted = times.clone();
    sorted.sort();
    println!(
        "join of a 10th member to 9 on 100 partitions: median {} (runs: {})",
        ms(sorted[1]),
        times.iter().map(|t| ms(*t)).collect::<Vec<_>>().join(", ")
    );
    for c in counts {
        println!("  join: {c}");
    }
    for m in nine {
        m.shutdown().await.expect("shutdown");
    }
}

/// `members` created together on a topic of `partitions`: time from the last registration
/// until valid.
async fn cold(members: usize, partitions: i32) {
    let cluster = testkit::cluster();
    let topic = cluster.unique("bench-cold");
    cluster.create_topic(&topic, partitions, 1);
    let group = cluster.unique("bench-cold-group");
    let probes = Probes::start().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_cpu = probes.cpu();
    let started = Instant::now();
    let storm_cpu = probes.cpu();
    tracing::info!(target: "bench", members, "cold: first member starts");
    // Started 20 ms apart, as processes started together register over a few seconds.
    let created = Members::create(members, Duration::from_millis(20), &group, &topic).await;
    let registered = started.elapsed();
    tracing::info!(target: "bench", "cold: last registration");
    let at_last = created.counters();
    let took = created.wait_valid(partitions as usize).await;
    tracing::info!(target: "bench", "cold: valid");
    let valid_at = Instant::now();
    let valid_cpu = probes.cpu_with(&created.pids());
    println!(
        "  {}",
        probes.summary(
            "idle",
            started - Duration::from_secs(1),
            started,
            idle_cpu,
            storm_cpu
        )
    );
    println!(
        "  {}",
        probes.summary("storm", started, valid_at, storm_cpu, valid_cpu)
    );
    let at_valid = created.counters();
    println!(
        "  after the last registration: {} ZooKeeper requests, {} member rebalances completed; \
         slowest probe getData per 0.5 s from the first registration (ms): {}",
        at_valid.0 - at_last.0,
        at_valid.1 - at_last.1,
        probes.series(started, valid_at)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{members} members cold on {partitions} partitions{}: valid {} after the last \
         registration (registering took {})",
        where_members(),
        ms(took),
        ms(registered)
    );
    println!(
        "  cold{members}: {}",
        per_rebalance((0, 0), created.counters())
    );
    created.shutdown().await;
}

/// How the result lines say where the members ran.
fn where_members() -> &'static str {
    if separate_processes() {
        " (a process per member)"
    } else {
        ""
    }
}

/// `killed` of `members` (a child process) killed with SIGKILL: time from ZooKeeper dropping
/// their registrations until the others own all `partitions`.
async fn kill(members: usize, killed: usize, partitions: i32) {
    let cluster = testkit::cluster();
    let topic = cluster.unique("bench-kill");
    cluster.create_topic(&topic, partitions, 1);
    let group = cluster.unique("bench-kill-group");
    let mut child = child_process(&["--child", &group, &topic, &killed.to_string()])
        .spawn()
        .expect("child process");
    let zk = zkconsumer::zk::session::ZkSession::connect(zkconsumer::zk::session::ZkSettings {
        connect: cluster.zk_connect(),
        session_timeout: Duration::from_secs(10),
        connection_timeout: Duration::from_secs(10),
        server_version: cluster.zk_server_version(),
    })
    .await
    .expect("zk");
    let ids = format!("/consumers/{group}/ids");
    let start = Instant::now();
    while zk.children(&ids).await.expect("ids").len() < killed {
        assert!(start.elapsed() < LIMIT, "child members did not register");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let survivors = members - killed;
    let created = Members::create(survivors, Duration::ZERO, &group, &topic).await;
    // Valid with all members: every partition owned, by `members` distinct thread ids.
    let owners_root = format!("/consumers/{group}/owners/{topic}");
    let start = Instant::now();
    loop {
        let children = zk.children(&owners_root).await.expect("owners");
        let zk = &zk;
        let datas = futures::future::join_all(children.iter().map(|p| {
            let path = format!("{owners_root}/{p}");
            async move { zk.get_data(&path).await }
        }))
        .await;
        let owners: HashSet<Vec<u8>> = datas
            .into_iter()
            .filter_map(|d| d.expect("owner"))
            .collect();
        if children.len() == partitions as usize && owners.len() == members {
            break;
        }
        assert!(start.elapsed() < LIMIT, "{members} members never valid");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let probes = Probes::start().await;
    let idle_from = Instant::now();
    let pids = created.pids();
    let idle_cpu = probes.cpu_with(&pids);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kill_cpu = probes.cpu_with(&pids);
    let before = created.counters();
    let _ = child.kill();
    let _ = child.wait();
    let killed_at = Instant::now();
    while zk.children(&ids).await.expect("ids").len() > survivors {
        assert!(killed_at.elapsed() < LIMIT, "killed members never expired");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let expired = killed_at.elapsed();
    let storm_cpu = probes.cpu_with(&pids);
    let dropped_at = Instant::now();
    tracing::info!(target: "bench", "kill: registrations dropped");
    let took = created.wait_valid(partitions as usize).await;
    tracing::info!(target: "bench", "kill: valid");
    let valid_at = Instant::now();
    let valid_cpu = probes.cpu_with(&pids);
    println!(
        "  {}",
        probes.summary(
            "idle (before the kill)",
            idle_from,
            killed_at,
            idle_cpu,
            kill_cpu
        )
    );
    println!(
        "  {}",
        probes.summary(
            "storm (dropped until valid)",
            dropped_at,
            valid_at,
            storm_cpu,
            valid_cpu
        )
    );
    println!(
        "  slowest probe getData per 0.5 s from the kill (ms): {}",
        probes.series(killed_at, valid_at)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "kill -9 of {killed} of {members} on {partitions} partitions{}: valid {} after ZooKeeper \
         dropped their registrations ({} after the kill)",
        where_members(),
        ms(took),
        ms(expired)
    );
    println!(
        "  kill{killed}: {}",
        per_rebalance(before, created.counters())
    );
    created.shutdown().await;
}

#[tokio::main]
async fn main() {
    // RUST_LOG=zkconsumer=debug shows what each member's rebalances did (stderr).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (group, topic) = (&args[2], &args[3]);
        let n: usize = args[4].parse().expect("member count");
        let mut members = Vec::new();
        for _ in 0..n {
            members.push(member(group, topic).await);
        }
        // Killed by the parent.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("--member") {
        member_process(&args[2], &args[3]).await;
        return;
    }
    let only = args.get(1).cloned().unwrap_or_default();
    if only.is_empty() || only == "join" {
        join().await;
    }
    if only.is_empty() || only == "cold" {
        cold(50, 200).await;
        kill(50, 10, 200).await;
    }
    if only.is_empty() || only == "cold200" {
        cold(200, 1000).await;
    }
    if only.is_empty() || only == "kill40" {
        kill(200, 40, 1000).await;
    }
    if only.is_empty() || only == "pause" {
        pause().await;
    }
}
