//! Test harness for zkconsumer: real ZooKeeper and real Kafka brokers on loopback.
//!
//! [`cluster`] gives every test binary one shared cluster: ZooKeeper plus three brokers
//! registered under a chroot. It reuses a running one when the environment names it (see
//! below; `scripts/testbed` starts one and prints the variables), else it starts its own on
//! free ports and tears it down when the test process exits (each server is watched by a shell
//! loop that kills it once the test process is gone, so nothing leaks even on a panic).
//! Tests get unique topic and group names from [`Cluster::unique`], so they run in parallel.
//!
//! Environment:
//! - `ZKC_TEST_ZK_LANE` = `3.8` (default; Debian's ZooKeeper) or `3.4` (ZooKeeper 3.4.6 from
//!   `../shared/zookeeper-3.4`): which ZooKeeper server a self-started cluster runs.
//! - `ZKC_TEST_ZK` + `ZKC_TEST_BROKERS` (+ `ZKC_TEST_ZK_VERSION`, e.g. `3.4.6`): use an existing
//!   cluster (ZooKeeper connect string with the brokers' chroot, comma-separated brokers).
//!   With `ZKC_TEST_STATE` (a directory written by `scripts/testbed`) brokers can still be
//!   stopped and restarted; without it, tests needing broker control fail
//!   ([`Cluster::require_control`]): they are `#[ignore]`d, run with `--include-ignored` only
//!   where brokers can be controlled.
//! - `ZKC_TEST_KAFKA` = `0.8.2` (default; Apache Kafka 0.8.2.2 from `../shared/kafka-0.8.2`, what
//!   legacy clusters run) or `0.9` (0.9.0.1 from `../shared/kafka-0.9`): the brokers a
//!   self-started cluster runs, and the admin tools and Java consumer every test uses.
//! - `KAFKA_HOME`: a Kafka distribution (the shared runner layout, or an Apache tarball layout)
//!   used instead of the shared one when it holds the version `ZKC_TEST_KAFKA` asks for (or
//!   `ZKC_TEST_KAFKA` is unset). Its version is read from its `libs/kafka_2.*-VERSION.jar`.
//!
//! Servers' logs are kept under `target/testbed/<pid>/` and named in panic messages.

mod proxy;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafka::client::{FetchOffset, KafkaClient, RequiredAcks};
use kafka::producer::{Producer, Record};

pub use kafka::client::Compression;
pub use proxy::FaultProxy;

/// How long server start-up and topic creation may take before the harness gives up.
const START_LIMIT: Duration = Duration::from_secs(90);

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `../shared` next to the repository, when present (CI and the developers' machines).
pub fn shared_dir() -> Option<PathBuf> {
    let dir = repo_root().join("..").join("shared");
    dir.is_dir().then_some(dir)
}

/// The Kafka version asked for by `ZKC_TEST_KAFKA` (`0.8.2` when unset), as the prefix the
/// distribution's version must start with.
fn wanted_kafka() -> &'static str {
    match std::env::var("ZKC_TEST_KAFKA").as_deref() {
        Ok("0.9") | Ok("0.9.0.1") => "0.9",
        Ok("0.8.2") | Ok("0.8.2.2") | Err(_) => "0.8.2",
        Ok(other) => panic!("ZKC_TEST_KAFKA={other}: unknown Kafka version (0.8.2 or 0.9)"),
    }
}

/// The Kafka distribution used for brokers and admin tools (see the crate docs).
pub fn kafka_home() -> Option<PathBuf> {
    let wanted = wanted_kafka();
    if let Ok(home) = std::env::var("KAFKA_HOME") {
        let home = PathBuf::from(home);
        let explicit = std::env::var("ZKC_TEST_KAFKA").is_ok();
        if !explicit || version_of_kafka(&home).is_some_and(|v| v.starts_with(wanted)) {
            return Some(home);
        }
    }
    let dir = if wanted == "0.9" {
        "kafka-0.9"
    } else {
        "kafka-0.8.2"
    };
    shared_dir().map(|s| s.join(dir)).filter(|p| p.is_dir())
}

/// The version of a Kafka distribution (e.g. `0.8.2.2`), from its `libs/kafka_2.*-VERSION.jar`.
pub fn version_of_kafka(home: &Path) -> Option<String> {
    std::fs::read_dir(home.join("libs"))
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let rest = name.strip_prefix("kafka_2.")?.strip_suffix(".jar")?;
            let version = rest.split_once('-')?.1;
            version
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
                .then(|| version.to_string())
        })
        .next()
}

/// The version of the Kafka that [`kafka_home`] holds (e.g. `0.8.2.2`).
pub fn kafka_version() -> String {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let home = kafka_home().unwrap_or_else(|| panic!("{}", no_kafka()));
            version_of_kafka(&home)
                .unwrap_or_else(|| panic!("{}: no libs/kafka_2.*-VERSION.jar", home.display()))
        })
        .clone()
}

/// True when the brokers and tools are Kafka 0.8.x (no `endpoints` in registrations, no 0.9
/// requests, tools with 0.8 flags).
pub fn kafka_is_08() -> bool {
    kafka_version().starts_with("0.8")
}

fn no_kafka() -> String {
    format!(
        "no Kafka {}: place ../shared/kafka-0.8.2 and ../shared/kafka-0.9 beside the repository or set KAFKA_HOME",
        wanted_kafka()
    )
}

/// The command that runs a Kafka class (`kafka-run-class` or `bin/kafka-run-class.sh`).
fn kafka_runner() -> PathBuf {
    let home = kafka_home().unwrap_or_else(|| panic!("{}", no_kafka()));
    let shared = home.join("kafka-run-class");
    if shared.exists() {
        shared
    } else {
        home.join("bin").join("kafka-run-class.sh")
    }
}

/// Whether a Kafka client error says a partition's leadership is moving (stale metadata),
/// so that asking again shortly will be answered.
fn leader_moving(error: &kafka::Error) -> bool {
    use kafka::error::KafkaCode;
    let moving = |code: &KafkaCode| {
        matches!(
            code,
            KafkaCode::NotLeaderForPartition | KafkaCode::LeaderNotAvailable
        )
    };
    match error {
        kafka::Error::Kafka(code) => moving(code),
        kafka::Error::TopicPartitionError { error_code, .. } => moving(error_code),
        _ => false,
    }
}

/// A free loopback TCP port for a server the harness starts.
///
/// Not `bind(0)`: that hands out a port of the kernel's ephemeral range, the range outgoing
/// connections take their source ports from, so a client could take the port between this
/// call and the server binding it (a proxied broker failed to start that way in CI: "Address
/// already in use"). The port comes from below that range, where no connection takes one;
/// a process-wide counter started at a pid-based offset keeps this process's servers and
/// other test processes apart, and each candidate is checked by binding it.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    const LOW: u64 = 10_000;
    let high = ephemeral_range_start().unwrap_or(32_768);
    if high > LOW + 1_000 {
        let span = high - LOW;
        let offset = u64::from(std::process::id()) * 7_919 % span;
        for _ in 0..span {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = u16::try_from(LOW + (offset + n) % span).unwrap_or(0);
            if port != 0 && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// The first port of the kernel's ephemeral range (Linux), below 65536.
fn ephemeral_range_start() -> Option<u64> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u64 = range.split_whitespace().next()?.parse().ok()?;
    (low <= 65_535).then_some(low)
}

/// A server process started by the harness, with the file holding its pid.
#[derive(Debug)]
struct Server {
    pid_file: PathBuf,
    log: PathBuf,
    command: Vec<String>,
    /// The watchdog shell (reaped when the server is replaced or the harness ends).
    watchdog: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.watchdog.take() {
            let _ = child.try_wait();
        }
    }
}

/// Starts `command` under a watchdog shell: the server dies when the test process does.
fn spawn_watched(command: &[String], log: &Path, pid_file: &Path) -> Server {
    let script = r#"
parent=$1; pidfile=$2; shift 2
"$@" & child=$!
echo $child > "$pidfile"
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
kill -9 "$child" 2>/dev/null
"#;
    let log_file = std::fs::File::create(log).expect("create server log");
    let err_file = log_file.try_clone().expect("clone log handle");
    let _ = std::fs::remove_file(pid_file);
    let watchdog = Command::new("setsid")
        .arg("bash")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(pid_file)
        .args(command)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let start = Instant::now();
    while !pid_file.exists() {
        assert!(
            start.elapsed() < START_LIMIT,
            "server did not start: {command:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        pid_file: pid_file.to_path_buf(),
        log: log.to_path_buf(),
        command: command.to_vec(),
        watchdog: Some(watchdog),
    }
}

/// Starts `command` in its own session, not tied to this process (scripts/testbed's servers).
fn spawn_detached(command: &[String], log: &Path, pid_file: &Path) {
    let script = r#"pidfile=$1; log=$2; shift 2; nohup "$@" >> "$log" 2>&1 & echo $! > "$pidfile""#;
    let status = Command::new("setsid")
        .args(["bash", "-c", script, "detached"])
        .arg(pid_file)
        .arg(log)
        .args(command)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    assert!(status.success(), "cannot start {command:?}");
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

fn signal(pid: i32, sig: &str) -> bool {
    Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn alive(pid: i32) -> bool {
    signal(pid, "0")
}

/// ZooKeeper's `ruok` four-letter command answered `imok`.
fn zookeeper_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"ruok").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer == "imok"
}

/// One broker of the cluster.
#[derive(Debug)]
struct Broker {
    id: i32,
    port: u16,
    server: Option<Server>,
    data_dir: PathBuf,
    extra: Vec<String>,
}

/// The shared cluster of a test binary.
#[derive(Debug)]
pub struct Cluster {
    zk_connect: String,
    zk_port: Option<u16>,
    zk_version: (u32, u32, u32),
    lane: String,
    brokers: Mutex<Vec<Broker>>,
    controllable: Option<String>,
    dir: PathBuf,
    counter: AtomicU64,
    _zk_server: Option<Server>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster of this test binary (started on first use).
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::from_env_or_start)
}

fn parse_version(s: &str) -> (u32, u32, u32) {
    let mut it = s.split('.').map(|p| p.parse().unwrap_or(0));
    (
        it.next().unwrap_or(3),
        it.next().unwrap_or(4),
        it.next().unwrap_or(0),
    )
}

impl Cluster {
    fn from_env_or_start() -> Cluster {
        match (
            std::env::var("ZKC_TEST_ZK"),
            std::env::var("ZKC_TEST_BROKERS"),
        ) {
            (Ok(zk), Ok(brokers)) => Self::external(zk, brokers),
            _ => Self::start_own(),
        }
    }

    fn external(zk: String, brokers: String) -> Cluster {
        let version = std::env::var("ZKC_TEST_ZK_VERSION").unwrap_or_else(|_| "3.4.6".into());
        let state = std::env::var("ZKC_TEST_STATE").ok().map(PathBuf::from);
        let mut list = Vec::new();
        for (i, address) in brokers.split(',').enumerate() {
            let port = address
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(9092);
            let id = i as i32 + 1;
            let server = state.as_ref().map(|dir| Server {
                pid_file: dir.join(format!("broker-{id}.pid")),
                log: dir.join(format!("broker-{id}.log")),
                command: std::fs::read_to_string(dir.join(format!("broker-{id}.cmd")))
                    .map(|c| c.lines().map(str::to_string).collect())
                    .unwrap_or_default(),
                watchdog: None,
            });
            list.push(Broker {
                id,
                port,
                server,
                data_dir: PathBuf::new(),
                extra: Vec::new(),
            });
        }
        let controllable = match &state {
            Some(_) => None,
            None => Some(
                "external cluster without ZKC_TEST_STATE: brokers cannot be stopped or moved"
                    .to_string(),
            ),
        };
        let lane = if version.starts_with("3.4") {
            "3.4"
        } else {
            "3.8"
        };
        println!(
            "testkit: using the cluster at {zk} (brokers {brokers}, ZooKeeper {version}, Kafka {})",
            kafka_version()
        );
        Cluster {
            zk_connect: zk,
            zk_port: None,
            zk_version: parse_version(&version),
            lane: lane.to_string(),
            brokers: Mutex::new(list),
            controllable,
            dir: state.unwrap_or_else(std::env::temp_dir),
            counter: AtomicU64::new(0),
            _zk_server: None,
        }
    }

    fn start_own() -> Cluster {
        let started = Instant::now();
        let lane = std::env::var("ZKC_TEST_ZK_LANE").unwrap_or_else(|_| "3.8".into());
        let dir = repo_root()
            .join("target")
            .join("testbed")
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create testbed dir");
        let zk_port = free_port();
        let (zk_server, version) = start_zookeeper(&lane, zk_port, &dir);
        let chroot = format!("/kafka-{}", std::process::id());
        let zk_connect = format!("127.0.0.1:{zk_port}{chroot}");
        let cluster = Cluster {
            zk_connect,
            zk_port: Some(zk_port),
            zk_version: version,
            lane,
            brokers: Mutex::new(Vec::new()),
            controllable: None,
            dir,
            counter: AtomicU64::new(0),
            _zk_server: Some(zk_server),
        };
        for id in 1..=3 {
            cluster.add_broker(id, &[]);
        }
        cluster.wait_brokers_registered(3);
        println!(
            "testkit: ZooKeeper {} on port {zk_port} and 3 brokers of Kafka {} started in {:?} (logs in {})",
            cluster.lane,
            kafka_version(),
            started.elapsed(),
            cluster.dir.display()
        );
        cluster
    }

    fn add_broker(&self, id: i32, extra: &[String]) -> u16 {
        let port = free_port();
        let data_dir = self.dir.join(format!("broker-{id}"));
        let mut broker = Broker {
            id,
            port,
            server: None,
            data_dir,
            extra: extra.to_vec(),
        };
        self.launch(&mut broker);
        self.lock_brokers().push(broker);
        port
    }

    fn launch(&self, broker: &mut Broker) {
        let runner = kafka_runner();
        let mut command: Vec<String> = if runner.ends_with("kafka-run-class") {
            vec![
                runner
                    .with_file_name("run-broker")
                    .to_string_lossy()
                    .into_owned(),
                broker.id.to_string(),
                broker.port.to_string(),
                self.zk_connect.clone(),
                broker.data_dir.to_string_lossy().into_owned(),
            ]
        } else {
            write_broker_properties(broker, &self.zk_connect);
            vec![
                runner
                    .with_file_name("kafka-server-start.sh")
                    .to_string_lossy()
                    .into_owned(),
                broker
                    .data_dir
                    .join("server.properties")
                    .to_string_lossy()
                    .into_owned(),
            ]
        };
        command.extend(broker.extra.iter().cloned());
        let log = self.dir.join(format!("broker-{}.log", broker.id));
        let pid = self.dir.join(format!("broker-{}.pid", broker.id));
        broker.server = Some(spawn_watched(&command, &log, &pid));
    }

    fn lock_brokers(&self) -> std::sync::MutexGuard<'_, Vec<Broker>> {
        match self.brokers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Waits until `n` brokers answer metadata requests.
    fn wait_brokers_registered(&self, n: usize) {
        let start = Instant::now();
        loop {
            let mut up = 0;
            for address in self.brokers() {
                let mut client = KafkaClient::new(vec![address]);
                if client.load_metadata_all().is_ok() {
                    up += 1;
                }
            }
            if up >= n {
                return;
            }
            if start.elapsed() > START_LIMIT {
                panic!(
                    "only {up} of {n} brokers came up; logs in {}",
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// ZooKeeper connect string with the chroot the brokers register under.
    pub fn zk_connect(&self) -> String {
        self.zk_connect.clone()
    }

    /// The ZooKeeper connect string without the brokers' chroot.
    pub fn zk_hosts(&self) -> String {
        self.zk_connect
            .split('/')
            .next()
            .unwrap_or(&self.zk_connect)
            .to_string()
    }

    /// Version of the ZooKeeper server (tests pass it as `zookeeper.server.version`).
    pub fn zk_server_version(&self) -> (u32, u32, u32) {
        self.zk_version
    }

    /// `3.8` or `3.4`.
    pub fn zk_lane(&self) -> &str {
        &self.lane
    }

    /// The ZooKeeper port, when this harness started the server.
    pub fn zk_port(&self) -> Option<u16> {
        self.zk_port
    }

    /// `127.0.0.1:port` of every broker.
    pub fn brokers(&self) -> Vec<String> {
        self.lock_brokers()
            .iter()
            .map(|b| format!("127.0.0.1:{}", b.port))
            .collect()
    }

    /// A name unique in this test run, for topics and groups.
    pub fn unique(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{}-{n}", std::process::id())
    }

    /// A ZooKeeper connect string with a fresh chroot, for ZooKeeper-only tests.
    pub fn new_chroot(&self) -> String {
        format!("{}/{}", self.zk_hosts(), self.unique("zk-test"))
    }

    /// Why broker control (stop, kill, leader moves) is unavailable, if it is.
    pub fn control_skip_reason(&self) -> Option<String> {
        self.controllable.clone()
    }

    /// Fails the calling test unless broker control (stop, kill, leader moves) and Kafka's tools
    /// are available. Tests that need them are `#[ignore]`d with a reason and run with
    /// `--include-ignored` where the capability exists (scripts/test's testbed lanes), so an
    /// external-cluster run reports them as ignored instead of green without having run.
    pub fn require_control(&self) {
        if let Some(reason) = &self.controllable {
            panic!("this test needs broker control, unavailable here: {reason}");
        }
    }

    /// Runs a Kafka class (admin tools, the old Java consumer) to completion.
    pub fn run_kafka_class(&self, class: &str, args: &[&str]) -> Output {
        Command::new(kafka_runner())
            .arg(class)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {class}: {e}"))
    }

    /// Kafka's own old console consumer (`ZookeeperConsumerConnector`) on `topic`, run to
    /// completion; `extra`: its other options (`--from-beginning`, `--max-messages N`, ...).
    pub fn run_console_consumer(&self, topic: &str, extra: &[&str]) -> Output {
        let zk = self.zk_connect();
        let mut args = vec!["--zookeeper", zk.as_str(), "--topic", topic];
        args.extend_from_slice(extra);
        self.run_kafka_class("kafka.tools.ConsoleConsumer", &args)
    }

    /// Runs a Kafka class to completion with `input` on its stdin (e.g. the console producer).
    pub fn run_kafka_class_with_input(&self, class: &str, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(kafka_runner())
            .arg(class)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {class}: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input)
                .unwrap_or_else(|e| panic!("cannot write to {class}: {e}"));
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot run {class}: {e}"))
    }

    /// Produces `values` (one message per value, no newlines in them) to one partition with
    /// kcat (librdkafka), compressed with `codec` (`lz4`, `gzip`, `snappy`, `none`), in the
    /// message format 0.8/0.9 brokers take (lz4: the Kafka 0.8 framing). Acknowledged by
    /// every in-sync replica.
    pub fn produce_with_kcat<S: AsRef<str>>(
        &self,
        topic: &str,
        partition: i32,
        values: &[S],
        codec: &str,
    ) {
        let mut input = String::new();
        for v in values {
            input.push_str(v.as_ref());
            input.push('\n');
        }
        let mut child = Command::new("kcat")
            .args(["-P", "-b", &self.brokers().join(","), "-t", topic])
            .args(["-p", &partition.to_string(), "-z", codec])
            .args([
                "-X",
                "broker.version.fallback=0.8.2.2",
                "-X",
                "api.version.request=false",
            ])
            .args(["-X", "request.required.acks=-1", "-X", "linger.ms=50"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run kcat (apt-get install kcat): {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("write to kcat");
        }
        let out = child.wait_with_output().expect("kcat");
        assert!(
            out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("ERROR"),
            "kcat -z {codec} to {topic}-{partition}: {out:?}"
        );
    }

    /// Starts a Kafka class in the background, stdout and stderr piped.
    pub fn spawn_kafka_class(&self, class: &str, args: &[&str]) -> Child {
        Command::new(kafka_runner())
            .arg(class)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {class}: {e}"))
    }

    fn topic_command(&self, args: &[&str]) {
        let zk = self.zk_connect();
        let mut all = vec!["--zookeeper", zk.as_str()];
        all.extend_from_slice(args);
        let out = self.run_kafka_class("kafka.admin.TopicCommand", &all);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !text.contains("Error"),
            "TopicCommand {args:?} failed: {text}"
        );
    }

    /// Creates a topic and waits until every partition has a leader.
    pub fn create_topic(&self, topic: &str, partitions: i32, replication: i32) {
        let (p, r) = (partitions.to_string(), replication.to_string());
        self.topic_command(&[
            "--create",
            "--topic",
            topic,
            "--partitions",
            &p,
            "--replication-factor",
            &r,
        ]);
        self.wait_leaders(topic, partitions);
    }

    /// Grows a topic to `total` partitions and waits for their leaders.
    pub fn add_partitions(&self, topic: &str, total: i32) {
        let t = total.to_string();
        self.topic_command(&["--alter", "--topic", topic, "--partitions", &t]);
        self.wait_leaders(topic, total);
    }

    /// Waits until the brokers report a leader for partitions `0..partitions`.
    pub fn wait_leaders(&self, topic: &str, partitions: i32) {
        let start = Instant::now();
        loop {
            if (0..partitions).all(|p| self.leader(topic, p).is_some()) {
                return;
            }
            assert!(
                start.elapsed() < START_LIMIT,
                "topic {topic}: not every partition got a leader; logs in {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn client(&self) -> KafkaClient {
        let mut client = KafkaClient::new(self.brokers());
        client.set_client_id("testkit".into());
        client
    }

    /// The leader broker id of a partition, from the brokers' metadata.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let mut client = self.client();
        client.load_metadata(&[topic]).ok()?;
        let leader = client
            .topics()
            .partitions(topic)?
            .partition(partition)?
            .leader()?
            .id();
        Some(leader)
    }

    /// Produces keyed messages to one partition, with a compression. Acknowledged by every
    /// in-sync replica, so the high watermark — the log end consumers and offset requests
    /// see — covers them soon after (with acks from the leader only it lags behind replication).
    pub fn produce(
        &self,
        topic: &str,
        partition: i32,
        messages: &[(Option<&[u8]>, &[u8])],
        compression: Compression,
    ) {
        let records: Vec<Record<'_, &[u8], &[u8]>> = messages
            .iter()
            .map(|(key, value)| {
                Record::from_key_value(topic, key.unwrap_or(&[]), *value).with_partition(partition)
            })
            .collect();
        // Up to ~30 s: a killed leader is replaced only after its ZooKeeper session expires.
        for attempt in 1..=120 {
            // A fresh producer each time: a failed one may hold a dead connection or stale
            // leaders.
            let mut producer = Producer::from_hosts(self.brokers())
                .with_required_acks(RequiredAcks::All)
                .with_ack_timeout(Duration::from_secs(10))
                .with_compression(compression)
                .create();
            let result = match producer.as_mut() {
                Ok(producer) => producer.send_all(&records).map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot create producer: {e}")),
            };
            match result {
                Ok(confirms) => {
                    let failed: Vec<_> = confirms
                        .iter()
                        .flat_map(|c| c.partition_confirms.iter())
                        .filter(|p| p.offset.is_err())
                        .collect();
                    if failed.is_empty() {
                        return;
                    }
                    assert!(
                        attempt < 120,
                        "produce to {topic}-{partition} failed: {failed:?}"
                    );
                }
                Err(e) => assert!(attempt < 120, "produce to {topic}-{partition} failed: {e}"),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Produces plain, unkeyed values to one partition.
    pub fn produce_values<S: AsRef<str>>(&self, topic: &str, partition: i32, values: &[S]) {
        let messages: Vec<(Option<&[u8]>, &[u8])> = values
            .iter()
            .map(|v| (None, v.as_ref().as_bytes()))
            .collect();
        for chunk in messages.chunks(1000) {
            self.produce(topic, partition, chunk, Compression::NONE);
        }
    }

    /// Offsets of every partition of `topic`. Right after a leader change the brokers' metadata
    /// can still name the old leader (0.8.2 propagates it more slowly than 0.9), which answers
    /// NotLeaderForPartition: the metadata is read again until the answer comes from the leader,
    /// for at most [`START_LIMIT`].
    fn offsets(&self, topic: &str, which: FetchOffset) -> BTreeMap<i32, i64> {
        let start = Instant::now();
        loop {
            let mut client = self.client();
            let answer = client
                .load_metadata(&[topic])
                .and_then(|_| client.fetch_offsets(&[topic], which));
            match answer {
                Ok(mut by_topic) => {
                    return by_topic
                        .remove(topic)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| (p.partition, p.offset))
                        .collect()
                }
                Err(e) if start.elapsed() < START_LIMIT && leader_moving(&e) => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("offsets of {topic}: {e}"),
            }
        }
    }

    /// Log end offset of every partition.
    pub fn log_end_offsets(&self, topic: &str) -> BTreeMap<i32, i64> {
        self.offsets(topic, FetchOffset::Latest)
    }

    /// Earliest offset still in the log, per partition.
    pub fn earliest_offsets(&self, topic: &str) -> BTreeMap<i32, i64> {
        self.offsets(topic, FetchOffset::Earliest)
    }

    fn broker_pid(&self, id: i32) -> Option<i32> {
        let brokers = self.lock_brokers();
        let broker = brokers.iter().find(|b| b.id == id)?;
        read_pid(&broker.server.as_ref()?.pid_file)
    }

    fn assert_controllable(&self) {
        if let Some(reason) = &self.controllable {
            panic!("broker control unavailable: {reason} (check control_skip_reason first)");
        }
    }

    /// Stops a broker cleanly (controlled shutdown: leadership moves first) and waits for it.
    pub fn stop_broker(&self, id: i32) {
        self.end_broker(id, "TERM");
    }

    /// Kills a broker (SIGKILL: no controlled shutdown) and waits for it to die.
    pub fn kill_broker(&self, id: i32) {
        self.end_broker(id, "KILL");
    }

    fn end_broker(&self, id: i32, sig: &str) {
        self.assert_controllable();
        let pid = self
            .broker_pid(id)
            .unwrap_or_else(|| panic!("broker {id} is not running"));
        signal(pid, sig);
        let start = Instant::now();
        while alive(pid) {
            assert!(start.elapsed() < START_LIMIT, "broker {id} did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a stopped broker again (same id, port and data) and waits until it serves.
    pub fn start_broker(&self, id: i32) {
        self.assert_controllable();
        {
            let mut brokers = self.lock_brokers();
            let broker = brokers
                .iter_mut()
                .find(|b| b.id == id)
                .unwrap_or_else(|| panic!("no broker {id}"));
            if broker.data_dir.as_os_str().is_empty() {
                // External cluster started by scripts/testbed: rerun its recorded command,
                // detached like the script does, so it outlives this test process.
                let server = broker.server.as_ref().expect("state");
                spawn_detached(&server.command, &server.log, &server.pid_file);
            } else {
                self.launch(broker);
            }
        }
        let address = format!(
            "127.0.0.1:{}",
            self.lock_brokers()
                .iter()
                .find(|b| b.id == id)
                .map(|b| b.port)
                .unwrap_or(0)
        );
        let start = Instant::now();
        loop {
            let mut client = KafkaClient::new(vec![address.clone()]);
            if client.load_metadata_all().is_ok() {
                return;
            }
            assert!(
                start.elapsed() < START_LIMIT,
                "broker {id} did not come back"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Moves leadership of every partition back to its preferred replica.
    pub fn elect_preferred_leaders(&self) {
        self.assert_controllable();
        let zk = self.zk_connect();
        let out = self.run_kafka_class(
            "kafka.admin.PreferredReplicaLeaderElectionCommand",
            &["--zookeeper", &zk],
        );
        assert!(
            out.status.success(),
            "preferred replica election failed: {out:?}"
        );
    }

    /// Makes old data of a topic expire quickly, so small offsets fall out of range. Waits
    /// until the earliest offset of `partition` moves past `offset`.
    pub fn shrink_retention(&self, topic: &str, partition: i32, offset: i64) {
        let zk = self.zk_connect();
        let configs = ["retention.ms=1000", "segment.ms=500", "segment.bytes=1024"];
        // Kafka 0.8 sets topic configs with TopicCommand --alter --config; 0.9 has ConfigCommand.
        let out = if kafka_is_08() {
            let mut args = vec!["--zookeeper", &zk, "--alter", "--topic", topic];
            for c in &configs {
                args.extend(["--config", c]);
            }
            self.run_kafka_class("kafka.admin.TopicCommand", &args)
        } else {
            let joined = configs.join(",");
            self.run_kafka_class(
                "kafka.admin.ConfigCommand",
                &[
                    "--zookeeper",
                    &zk,
                    "--alter",
                    "--entity-type",
                    "topics",
                    "--entity-name",
                    topic,
                    "--add-config",
                    &joined,
                ],
            )
        };
        assert!(
            out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("Error"),
            "setting {configs:?} on {topic} failed: {out:?}"
        );
        let start = Instant::now();
        loop {
            // New data rolls segments, after which old segments can be deleted.
            self.produce_values(topic, partition, &["roll".to_string()]);
            if self
                .earliest_offsets(topic)
                .get(&partition)
                .copied()
                .unwrap_or(0)
                > offset
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "retention did not delete old data of {topic}-{partition}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Starts one extra broker, alone under its own chroot of this cluster's ZooKeeper, that
    /// advertises a [`FaultProxy`] in front of it: every client connection (metadata, fetch,
    /// produce) goes through the proxy, so tests can corrupt, stall or cut broker traffic.
    pub fn proxied_broker(&self) -> ProxiedBroker {
        let real_port = free_port();
        let proxy = FaultProxy::start(&format!("127.0.0.1:{real_port}"));
        let chroot = format!("/{}", self.unique("proxied"));
        let zk_connect = format!("{}{chroot}", self.zk_hosts());
        let id = 100 + (self.counter.fetch_add(1, Ordering::Relaxed) % 800) as i32;
        // Beside the cluster's own logs, so scripts/broker-log-check reads this broker's too.
        let dir = self
            .dir
            .join(format!("proxied-{}-{id}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let mut broker = Broker {
            id,
            port: real_port,
            server: None,
            data_dir: dir.join("broker"),
            extra: vec![format!("advertised.port={}", proxy.port())],
        };
        let tmp = Cluster {
            zk_connect: zk_connect.clone(),
            zk_port: self.zk_port,
            zk_version: self.zk_version,
            lane: self.lane.clone(),
            brokers: Mutex::new(Vec::new()),
            controllable: None,
            dir,
            counter: AtomicU64::new(0),
            _zk_server: None,
        };
        tmp.launch(&mut broker);
        let server = broker.server.take();
        let start = Instant::now();
        loop {
            let mut client = KafkaClient::new(vec![proxy.address()]);
            if client.load_metadata_all().is_ok() {
                break;
            }
            assert!(
                start.elapsed() < START_LIMIT,
                "proxied broker did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        ProxiedBroker {
            proxy,
            zk_connect,
            data_dir: broker.data_dir.join("data"),
            _server: server,
        }
    }

    /// Directory of this cluster's logs.
    pub fn log_dir(&self) -> &Path {
        &self.dir
    }
}

/// A broker reached only through a [`FaultProxy`] (see [`Cluster::proxied_broker`]).
#[derive(Debug)]
pub struct ProxiedBroker {
    /// The proxy clients connect to.
    pub proxy: FaultProxy,
    /// ZooKeeper connect string (with this broker's own chroot).
    pub zk_connect: String,
    data_dir: PathBuf,
    _server: Option<Server>,
}

impl ProxiedBroker {
    /// The first log segment of a partition on this broker (tests damage data in it).
    pub fn log_segment(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir
            .join(format!("{topic}-{partition}"))
            .join("00000000000000000000.log")
    }

    /// The address clients are given (the proxy).
    pub fn address(&self) -> String {
        self.proxy.address()
    }

    /// Creates a topic on this broker (replication 1) and waits for its leaders.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let p = partitions.to_string();
        let out = Command::new(kafka_runner())
            .args(["kafka.admin.TopicCommand", "--zookeeper", &self.zk_connect])
            .args(["--create", "--topic", topic, "--partitions", &p])
            .args(["--replication-factor", "1"])
            .output()
            .expect("TopicCommand");
        assert!(out.status.success(), "create {topic}: {out:?}");
        let start = Instant::now();
        loop {
            let mut client = KafkaClient::new(vec![self.address()]);
            let ready = client.load_metadata(&[topic]).is_ok()
                && (0..partitions).all(|i| {
                    client
                        .topics()
                        .partitions(topic)
                        .and_then(|ps| ps.partition(i))
                        .and_then(|pt| pt.leader())
                        .is_some()
                });
            if ready {
                return;
            }
            assert!(start.elapsed() < START_LIMIT, "{topic} got no leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Produces values to one partition through the proxy.
    pub fn produce_values<S: AsRef<str>>(&self, topic: &str, partition: i32, values: &[S]) {
        let mut producer = Producer::from_hosts(vec![self.address()])
            .with_required_acks(RequiredAcks::All)
            .create()
            .expect("producer");
        for v in values {
            producer
                .send(&Record::from_value(topic, v.as_ref().as_bytes()).with_partition(partition))
                .expect("produce through proxy");
        }
    }
}

fn write_broker_properties(broker: &Broker, zk: &str) {
    let _ = std::fs::create_dir_all(&broker.data_dir);
    let text = format!(
        "broker.id={}\nport={}\nhost.name=127.0.0.1\nadvertised.host.name=127.0.0.1\nlog.dirs={}\nzookeeper.connect={zk}\nnum.partitions=1\ndelete.topic.enable=true\ncontrolled.shutdown.enable=true\noffsets.topic.replication.factor=1\nlog.retention.check.interval.ms=1000\n",
        broker.id,
        broker.port,
        broker.data_dir.join("data").display()
    );
    let _ = std::fs::write(broker.data_dir.join("server.properties"), text);
}

/// Starts ZooKeeper of a lane on `port`; returns the server and its version.
fn start_zookeeper(lane: &str, port: u16, dir: &Path) -> (Server, (u32, u32, u32)) {
    start_zookeeper_with(lane, port, dir, (500, 60_000))
}

/// A ZooKeeper server of its own (no brokers), with session limits of its own; it dies with
/// the test process or when dropped.
#[derive(Debug)]
pub struct ExtraZooKeeper {
    /// `127.0.0.1:port`.
    pub address: String,
    /// The server version (of the cluster's lane).
    pub version: (u32, u32, u32),
    _server: Server,
}

impl Drop for ExtraZooKeeper {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self._server.pid_file) {
            signal(pid, "KILL");
        }
    }
}

impl Cluster {
    /// Starts another ZooKeeper of this cluster's lane with `tickTime=tick_ms` and
    /// `maxSessionTimeout=max_session_ms` (sessions asking for more are granted that).
    pub fn extra_zookeeper(&self, tick_ms: u64, max_session_ms: u64) -> ExtraZooKeeper {
        self.extra_zookeeper_of_lane(&self.lane.clone(), tick_ms, max_session_ms)
    }

    /// Like [`extra_zookeeper`](Self::extra_zookeeper), of the lane `lane` (`3.4`: 3.4.6 from
    /// `../shared/zookeeper-3.4`, `3.8`) whatever this cluster's lane is.
    pub fn extra_zookeeper_of_lane(
        &self,
        lane: &str,
        tick_ms: u64,
        max_session_ms: u64,
    ) -> ExtraZooKeeper {
        let port = free_port();
        let dir = self.dir.join(format!("extra-zookeeper-{port}"));
        std::fs::create_dir_all(&dir).expect("extra zookeeper dir");
        let (server, version) = start_zookeeper_with(lane, port, &dir, (tick_ms, max_session_ms));
        ExtraZooKeeper {
            address: format!("127.0.0.1:{port}"),
            version,
            _server: server,
        }
    }
}

fn start_zookeeper_with(
    lane: &str,
    port: u16,
    dir: &Path,
    (tick_ms, max_session_ms): (u64, u64),
) -> (Server, (u32, u32, u32)) {
    let data = dir.join("zookeeper");
    std::fs::create_dir_all(&data).expect("zookeeper dir");
    // Short ticks so tests can use sessions of a few seconds (minimum session = 2 ticks).
    let cfg = data.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime={tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout={}\nmaxSessionTimeout={max_session_ms}\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
            data.display(),
            (2 * tick_ms).max(1000.min(max_session_ms))
        ),
    )
    .expect("write zoo.cfg");
    let (classpath, main, version) = match lane {
        "3.4" => {
            let shared = shared_dir()
                .map(|s| s.join("zookeeper-3.4"))
                .filter(|p| p.is_dir())
                .unwrap_or_else(|| {
                    panic!("the 3.4 lane needs ../shared/zookeeper-3.4 beside the repository")
                });
            let jars: Vec<String> = [
                "zookeeper-3.4.6.jar",
                "slf4j-api-1.7.6.jar",
                "slf4j-log4j12-1.7.6.jar",
                "log4j-1.2.17.jar",
            ]
            .iter()
            .map(|j| shared.join(j).to_string_lossy().into_owned())
            .collect();
            (
                jars.join(":"),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                (3, 4, 6),
            )
        }
        _ => (
            "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar".to_string(),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            (3, 8, 0),
        ),
    };
    let log4j = data.join("log4j.properties");
    let _ = std::fs::write(
        &log4j,
        "log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n",
    );
    let command = vec![
        "java".to_string(),
        "-Xmx256m".to_string(),
        format!("-Dlog4j.configuration=file:{}", log4j.display()),
        format!("-Dzookeeper.log.dir={}", data.display()),
        "-cp".to_string(),
        classpath,
        main.to_string(),
        cfg.to_string_lossy().into_owned(),
    ];
    let server = spawn_watched(
        &command,
        &dir.join("zookeeper.log"),
        &dir.join("zookeeper.pid"),
    );
    let start = Instant::now();
    while !zookeeper_ok(port) {
        assert!(
            start.elapsed() < START_LIMIT,
            "ZooKeeper {lane} did not start; log: {}",
            dir.join("zookeeper.log").display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, version)
}
