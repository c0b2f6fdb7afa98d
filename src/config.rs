//! Consumer configuration: every key of the Java old consumer with its default (spec §8), read
//! from Java `.properties` text (parsed as `java.util.Properties.load` does) or set through a
//! builder, validated with errors that name the key, the value and what was expected. Pure
//! apart from reading a properties file; never connects to anything.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::group::identity::validate_name;

/// What to do when there is no committed offset or it is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The earliest offset still in the log.
    Smallest,
    /// The log end: only new messages.
    Largest,
}

/// How partitions are split among the group's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentStrategy {
    /// Consecutive ranges per topic (Java default).
    Range,
    /// Hash-ordered round robin over all topics.
    RoundRobin,
}

/// Where committed offsets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetsStorage {
    /// `/consumers/<group>/offsets` in ZooKeeper.
    Zookeeper,
    /// The brokers' `__consumer_offsets` topic.
    Kafka,
}

/// Invalid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required key is absent.
    #[error("missing required configuration {key}")]
    Missing {
        /// The key.
        key: String,
    },
    /// A key has a value that cannot be used.
    #[error("invalid value {value:?} for {key}: expected {expected}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// A properties file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A properties text is malformed.
    #[error("properties line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Every key zkconsumer understands: the Java consumer's, plus `zookeeper.server.version` and
/// `auto.ack` (zkconsumer's own).
pub fn known_keys() -> &'static [&'static str] {
    &[
        "zookeeper.connect",
        "group.id",
        "consumer.id",
        "client.id",
        "zookeeper.session.timeout.ms",
        "zookeeper.connection.timeout.ms",
        "zookeeper.sync.time.ms",
        "zookeeper.server.version",
        "auto.commit.enable",
        "auto.ack",
        "auto.commit.interval.ms",
        "auto.offset.reset",
        "rebalance.max.retries",
        "rebalance.backoff.ms",
        "refresh.leader.backoff.ms",
        "fetch.message.max.bytes",
        "fetch.min.bytes",
        "fetch.wait.max.ms",
        "socket.timeout.ms",
        "socket.receive.buffer.bytes",
        "num.consumer.fetchers",
        "queued.max.message.chunks",
        "consumer.timeout.ms",
        "exclude.internal.topics",
        "partition.assignment.strategy",
        "offsets.storage",
        "dual.commit.enabled",
        "offsets.channel.backoff.ms",
        "offsets.channel.socket.timeout.ms",
        "offsets.commit.max.retries",
    ]
}

/// Names other clients give to settings the old Java consumer has (normalized as
/// [`suggest_key`] normalizes: lower case, `_` and `-` as `.`), with the key zkconsumer reads and
/// whose name it is. A name whose normalized form already is a known key (pykafka's
/// `auto_commit_enable`) needs no entry.
const OTHER_CLIENTS_KEYS: &[(&str, &str, &str)] = &[
    ("enable.auto.commit", "auto.commit.enable", "kafka-python's and the new Java consumer's"),
    ("bootstrap.servers", "zookeeper.connect", "kafka-python's and the new Java consumer's (the old consumer finds brokers through ZooKeeper)"),
    ("fetch.max.wait.ms", "fetch.wait.max.ms", "kafka-python's and the new Java consumer's"),
    ("max.partition.fetch.bytes", "fetch.message.max.bytes", "kafka-python's and the new Java consumer's"),
    ("session.timeout.ms", "zookeeper.session.timeout.ms", "kafka-python's and the new Java consumer's"),
    ("receive.buffer.bytes", "socket.receive.buffer.bytes", "kafka-python's and the new Java consumer's"),
    ("request.timeout.ms", "socket.timeout.ms", "kafka-python's and the new Java consumer's"),
    ("retry.backoff.ms", "refresh.leader.backoff.ms", "kafka-python's and the new Java consumer's"),
    ("consumer.group", "group.id", "pykafka's"),
    ("zookeeper.hosts", "zookeeper.connect", "pykafka's"),
    ("zookeeper.connection.string", "zookeeper.connect", "a common"),
    ("queued.max.messages", "queued.max.message.chunks", "pykafka's"),
];

/// The known key an unknown one may stand for, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySuggestion {
    /// The key zkconsumer knows (one of [`known_keys`]).
    pub key: &'static str,
    /// Whose name the unknown key is (e.g. "kafka-python's and the new Java consumer's"), or
    /// `None` for a near spelling of `key`.
    pub other_client: Option<&'static str>,
}

/// A configuration key zkconsumer does not know (ignored), with what it may mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The key as given.
    pub key: String,
    /// The known key it may stand for, if any is close.
    pub suggestion: Option<KeySuggestion>,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown consumer configuration key {:?} ignored",
            self.key
        )?;
        match self.suggestion {
            Some(KeySuggestion {
                key,
                other_client: Some(whose),
            }) => write!(
                f,
                ": it is {whose} name, zkconsumer (like the old Java consumer) reads {key:?}"
            ),
            Some(KeySuggestion {
                key,
                other_client: None,
            }) => write!(f, ": did you mean {key:?}?"),
            None => Ok(()),
        }
    }
}

/// The known key that `key` (unknown) may stand for: another client's name for the same setting
/// (kafka-python, pykafka, the new Java consumer), the key spelled with `_` or `-` for `.`, or the
/// known key nearest in spelling when it is close enough (at most one edit in five characters,
/// and at most three: `auto.comit.enable`, `group.ld`). `None` when nothing is close. Pure.
pub fn suggest_key(key: &str) -> Option<KeySuggestion> {
    let normalized: String = key
        .trim()
        .chars()
        .map(|c| match c {
            '_' | '-' => '.',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    if let Some((_, known, whose)) = OTHER_CLIENTS_KEYS
        .iter()
        .find(|(name, _, _)| *name == normalized)
    {
        return Some(KeySuggestion {
            key: known,
            other_client: Some(whose),
        });
    }
    let spelling = |known: &'static str| KeySuggestion {
        key: known,
        other_client: None,
    };
    if let Some(known) = known_keys().iter().find(|k| **k == normalized) {
        return Some(spelling(known));
    }
    let (distance, nearest) = known_keys()
        .iter()
        .map(|known| (edit_distance(&normalized, known), *known))
        .min_by_key(|(d, _)| *d)?;
    (distance <= 3 && distance * 5 <= normalized.chars().count()).then(|| spelling(nearest))
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// The configuration of one consumer. Build it with [`ConsumerConfig::builder`] or from
/// properties; fields are the validated values.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `zookeeper.connect`: `host:port[,host:port…][/chroot]`.
    pub zookeeper_connect: String,
    /// `group.id`.
    pub group_id: String,
    /// `consumer.id` (replaces the generated part of the consumer id).
    pub consumer_id: Option<String>,
    /// `client.id` (default: the group id).
    pub client_id: String,
    /// `zookeeper.session.timeout.ms` (6000).
    pub zookeeper_session_timeout: Duration,
    /// `zookeeper.connection.timeout.ms` (the session timeout).
    pub zookeeper_connection_timeout: Duration,
    /// `zookeeper.sync.time.ms` (2000).
    pub zookeeper_sync_time: Duration,
    /// `zookeeper.server.version` (3.4.6): the oldest server of the ensemble; 3.4 servers
    /// reject requests added in 3.5.
    pub zookeeper_server_version: (u32, u32, u32),
    /// `auto.commit.enable` (true).
    pub auto_commit_enable: bool,
    /// `auto.commit.interval.ms` (60000).
    pub auto_commit_interval: Duration,
    /// `auto.offset.reset` (largest).
    pub auto_offset_reset: OffsetReset,
    /// `rebalance.max.retries` (4).
    pub rebalance_max_retries: u32,
    /// `rebalance.backoff.ms` (= zookeeper.sync.time.ms).
    pub rebalance_backoff: Duration,
    /// `refresh.leader.backoff.ms` (200).
    pub refresh_leader_backoff: Duration,
    /// `fetch.message.max.bytes` (1048576).
    pub fetch_message_max_bytes: i32,
    /// `fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `fetch.wait.max.ms` (100).
    pub fetch_wait_max: Duration,
    /// `socket.timeout.ms` (30000).
    pub socket_timeout: Duration,
    /// `socket.receive.buffer.bytes` (65536).
    pub socket_receive_buffer_bytes: i32,
    /// `num.consumer.fetchers` (1).
    pub num_consumer_fetchers: u32,
    /// `queued.max.message.chunks` (2).
    pub queued_max_message_chunks: usize,
    /// `consumer.timeout.ms` (-1: none).
    pub consumer_timeout: Option<Duration>,
    /// `auto.ack` (true), zkconsumer's own key: taking the next message of a stream declares
    /// the previous one processed. `false`: only `Acker::ack` / `MessageStream::ack` do, in
    /// any order, and commits stop at the lowest unacknowledged offset of each partition.
    pub auto_ack: bool,
    /// `exclude.internal.topics` (true).
    pub exclude_internal_topics: bool,
    /// `partition.assignment.strategy` (range).
    pub partition_assignment_strategy: AssignmentStrategy,
    /// `offsets.storage` (zookeeper).
    pub offsets_storage: OffsetsStorage,
    /// `dual.commit.enabled` (true when storage is kafka).
    pub dual_commit_enabled: bool,
    /// `offsets.channel.backoff.ms` (1000).
    pub offsets_channel_backoff: Duration,
    /// `offsets.channel.socket.timeout.ms` (10000).
    pub offsets_channel_socket_timeout: Duration,
    /// `offsets.commit.max.retries` (5).
    pub offsets_commit_max_retries: u32,
}

impl ConsumerConfig {
    /// A builder with the two required keys set.
    pub fn builder(zookeeper_connect: &str, group_id: &str) -> ConsumerConfigBuilder {
        ConsumerConfigBuilder::default()
            .set("zookeeper.connect", zookeeper_connect)
            .set("group.id", group_id)
    }

    /// Parses Java `.properties` text and validates it.
    pub fn from_properties_str(text: &str) -> Result<Self, ConfigError> {
        ConsumerConfigBuilder::default()
            .set_all(parse_properties(text)?)
            .build()
    }

    /// Reads and validates a Java `.properties` file (UTF-8; a file that is not UTF-8 is read
    /// as ISO-8859-1, the encoding Java's `Properties.load(InputStream)` assumes).
    pub fn from_properties_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_properties_str(&read_properties_file(path)?)
    }

    /// The host list part of `zookeeper.connect`.
    pub fn zookeeper_hosts(&self) -> &str {
        split_chroot(&self.zookeeper_connect).0
    }

    /// The chroot part of `zookeeper.connect`, if any.
    pub fn zookeeper_chroot(&self) -> Option<&str> {
        split_chroot(&self.zookeeper_connect).1
    }
}

/// Reads a properties file as text: UTF-8, or ISO-8859-1 when it is not valid UTF-8.
pub fn read_properties_file(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

fn split_chroot(connect: &str) -> (&str, Option<&str>) {
    match connect.find('/') {
        Some(i) if i + 1 < connect.len() => (&connect[..i], Some(&connect[i..])),
        Some(i) => (&connect[..i], None),
        None => (connect, None),
    }
}

/// Collects `key = value` settings and validates them all at [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct ConsumerConfigBuilder {
    values: BTreeMap<String, String>,
}

struct Reader<'a> {
    values: &'a BTreeMap<String, String>,
}

fn invalid(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

impl Reader<'_> {
    fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|v| v.trim())
    }

    fn required(&self, key: &str) -> Result<String, ConfigError> {
        match self.raw(key) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(ConfigError::Missing { key: key.into() }),
        }
    }

    fn int<T: std::str::FromStr + PartialOrd + Copy>(
        &self,
        key: &str,
        default: T,
        min: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.parse::<T>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(invalid(key, v, expected)),
            },
        }
    }

    fn millis(&self, key: &str, default: u64) -> Result<Duration, ConfigError> {
        self.int(key, default, 0, "a non-negative integer (milliseconds)")
            .map(Duration::from_millis)
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(invalid(key, v, "true or false")),
        }
    }

    fn choice<T: Copy>(
        &self,
        key: &str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(v) = self.raw(key) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                invalid(key, v, &format!("one of {}", names.join(", ")))
            })
    }
}

fn validate_connect(value: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        invalid(
            "zookeeper.connect",
            value,
            &format!("host:port[,host:port...][/chroot] ({why})"),
        )
    };
    let (hosts, chroot) = split_chroot(value);
    if hosts.is_empty() {
        return Err(bad("no host"));
    }
    for host in hosts.split(',') {
        let Some((h, port)) = host.rsplit_once(':') else {
            return Err(bad(&format!("{host:?} has no port")));
        };
        if h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(&format!("bad host in {host:?}")));
        }
        let port_ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !port_ok {
            return Err(bad(&format!("bad port in {host:?}")));
        }
    }
    if let Some(chroot) = chroot {
        // ZooKeeper's PathUtils.validatePath rules.
        let segments_ok = chroot[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
        if !segments_ok || chroot.chars().any(char::is_control) {
            return Err(bad(&format!("invalid chroot path {chroot:?}")));
        }
    }
    Ok(())
}

fn parse_version(key: &str, value: &str) -> Result<(u32, u32, u32), ConfigError> {
    let parts: Vec<&str> = value.split('.').collect();
    let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_deref() {
        Some([a, b, c]) => Ok((*a, *b, *c)),
        Some([a, b]) => Ok((*a, *b, 0)),
        _ => Err(invalid(key, value, "a version like 3.4.6")),
    }
}

impl ConsumerConfigBuilder {
    /// Sets a key (Java name); a later value replaces an earlier one.
    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.values
            .insert(key.trim().to_string(), value.to_string());
        self
    }

    /// Sets many keys, in order.
    pub fn set_all(mut self, props: impl IntoIterator<Item = (String, String)>) -> Self {
        for (k, v) in props {
            self.values.insert(k.trim().to_string(), v);
        }
        self
    }

    /// Keys that zkconsumer does not know (typos are visible this way).
    pub fn unknown_keys(&self) -> Vec<String> {
        self.values
            .keys()
            .filter(|k| !known_keys().contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// Removes the keys zkconsumer does not know and returns them, each with the known key it
    /// may stand for ([`suggest_key`]), for a caller that reports them its own way (the Python
    /// binding turns them into `warnings.warn`); [`build`](Self::build) then logs nothing about
    /// them.
    pub fn take_unknown_keys(&mut self) -> Vec<UnknownKey> {
        let unknown = self.unknown_keys();
        unknown
            .into_iter()
            .map(|key| {
                self.values.remove(&key);
                UnknownKey {
                    suggestion: suggest_key(&key),
                    key,
                }
            })
            .collect()
    }

    /// Validates every key and returns the configuration; unknown keys are logged as warnings
    /// (with the known key each may stand for).
    pub fn build(mut self) -> Result<ConsumerConfig, ConfigError> {
        for unknown in self.take_unknown_keys() {
            tracing::warn!(key = %unknown.key, "{unknown}");
        }
        let r = Reader {
            values: &self.values,
        };
        let zookeeper_connect = r.required("zookeeper.connect")?;
        validate_connect(&zookeeper_connect)?;
        let group_id = r.required("group.id")?;
        validate_name("group.id", &group_id)?;
        // Java: client.id defaults to group.id; an explicitly empty client.id stays empty.
        let client_id = r.raw("client.id").unwrap_or(&group_id).to_string();
        if !client_id.is_empty() {
            validate_name("client.id", &client_id)?;
        }
        let consumer_id = match r.raw("consumer.id").filter(|v| !v.is_empty()) {
            Some(id) if id.contains('/') || id.chars().any(char::is_control) => {
                return Err(invalid(
                    "consumer.id",
                    id,
                    "a name without '/' or control characters (it is part of ZooKeeper paths)",
                ))
            }
            id => id.map(str::to_string),
        };
        let session = r.millis("zookeeper.session.timeout.ms", 6000)?;
        let sync = r.millis("zookeeper.sync.time.ms", 2000)?;
        let server_version = match r.raw("zookeeper.server.version") {
            Some(v) => parse_version("zookeeper.server.version", v)?,
            None => (3, 4, 6),
        };
        let socket_timeout = r.millis("socket.timeout.ms", 30000)?;
        let fetch_wait_max = r.millis("fetch.wait.max.ms", 100)?;
        if fetch_wait_max > socket_timeout {
            return Err(invalid(
                "fetch.wait.max.ms",
                r.raw("fetch.wait.max.ms").unwrap_or("100"),
                &format!("at most socket.timeout.ms ({})", socket_timeout.as_millis()),
            ));
        }
        let offsets_storage = r.choice(
            "offsets.storage",
            OffsetsStorage::Zookeeper,
            &[
                ("zookeeper", OffsetsStorage::Zookeeper),
                ("kafka", OffsetsStorage::Kafka),
            ],
        )?;
        let consumer_timeout = match r.raw("consumer.timeout.ms") {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n < 0 => None,
                Ok(n) => Some(Duration::from_millis(n as u64)),
                Err(_) => {
                    return Err(invalid(
                        "consumer.timeout.ms",
                        v,
                        "an integer (milliseconds, -1 for none)",
                    ))
                }
            },
        };
        Ok(ConsumerConfig {
            zookeeper_connection_timeout: r.millis(
                "zookeeper.connection.timeout.ms",
                session.as_millis() as u64,
            )?,
            zookeeper_session_timeout: session,
            zookeeper_sync_time: sync,
            zookeeper_server_version: server_version,
            auto_commit_enable: r.bool("auto.commit.enable", true)?,
            auto_commit_interval: r.millis("auto.commit.interval.ms", 60000)?,
            auto_offset_reset: r.choice(
                "auto.offset.reset",
                OffsetReset::Largest,
                &[
                    ("smallest", OffsetReset::Smallest),
                    ("largest", OffsetReset::Largest),
                ],
            )?,
            rebalance_max_retries: r.int(
                "rebalance.max.retries",
                4u32,
                0,
                "a non-negative integer",
            )?,
            rebalance_backoff: r.millis("rebalance.backoff.ms", sync.as_millis() as u64)?,
            refresh_leader_backoff: r.millis("refresh.leader.backoff.ms", 200)?,
            fetch_message_max_bytes: r.int(
                "fetch.message.max.bytes",
                1_048_576i32,
                1,
                "a positive integer (bytes)",
            )?,
            fetch_min_bytes: r.int("fetch.min.bytes", 1i32, 0, "a non-negative integer (bytes)")?,
            fetch_wait_max,
            socket_timeout,
            socket_receive_buffer_bytes: r.int(
                "socket.receive.buffer.bytes",
                65536i32,
                1,
                "a positive integer (bytes)",
            )?,
            num_consumer_fetchers: r.int("num.consumer.fetchers", 1u32, 1, "a positive integer")?,
            queued_max_message_chunks: r.int(
                "queued.max.message.chunks",
                2usize,
                1,
                "a positive integer",
            )?,
            consumer_timeout,
            auto_ack: r.bool("auto.ack", true)?,
            exclude_internal_topics: r.bool("exclude.internal.topics", true)?,
            partition_assignment_strategy: r.choice(
                "partition.assignment.strategy",
                AssignmentStrategy::Range,
                &[
                    ("range", AssignmentStrategy::Range),
                    ("roundrobin", AssignmentStrategy::RoundRobin),
                ],
            )?,
            dual_commit_enabled: r.bool(
                "dual.commit.enabled",
                offsets_storage == OffsetsStorage::Kafka,
            )?,
            offsets_storage,
            offsets_channel_backoff: r.millis("offsets.channel.backoff.ms", 1000)?,
            offsets_channel_socket_timeout: r.millis("offsets.channel.socket.timeout.ms", 10000)?,
            offsets_commit_max_retries: r.int(
                "offsets.commit.max.retries",
                5u32,
                0,
                "a non-negative integer",
            )?,
            zookeeper_connect,
            group_id,
            consumer_id,
            client_id,
        })
    }
}

/// Parses Java `.properties` text exactly as `java.util.Properties.load` does: `#` and `!`
/// comment lines, `key=value`, `key: value` and `key value`, leading whitespace (space, tab,
/// form feed) skipped, logical lines continued by an odd number of trailing backslashes (the
/// next line's leading whitespace is dropped), `\n`, `\r` and `\r\n` line ends, escapes
/// `\t \n \r \f \uXXXX` (surrogate pairs combine) and `\x` = `x` for any other `x`. Values keep
/// trailing whitespace, as in Java. Pairs come in file order; a later duplicate wins when they
/// are applied in order.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let chars: Vec<char> = text.chars().collect();
    let mut reader = LineReader {
        chars: &chars,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while let Some((line, number)) = reader.next_logical_line() {
        let (key, value) = split_key_value(&line);
        out.push((unescape(key, number)?, unescape(value, number)?));
    }
    Ok(out)
}

fn is_properties_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Java's `Properties.LineReader`.
struct LineReader<'a> {
    chars: &'a [char],
    pos: usize,
    /// Physical line number of `pos` (1-based).
    line: usize,
}

impl LineReader<'_> {
    fn next_char(&mut self) -> Option<char> {
        let c = *self.chars.get(self.pos)?;
        self.pos += 1;
        if c == '\n' || (c == '\r' && self.chars.get(self.pos) != Some(&'\n')) {
            self.line += 1;
        }
        Some(c)
    }

    /// The next logical line (comments and blank lines skipped, continuations joined, escapes
    /// not yet decoded) and the physical line it starts on.
    fn next_logical_line(&mut self) -> Option<(Vec<char>, usize)> {
        let mut buf: Vec<char> = Vec::new();
        let mut start_line = self.line;
        let mut skip_white_space = true;
        let mut is_comment = false;
        let mut is_new_line = true;
        let mut appended_line_begin = false;
        let mut preceding_backslash = false;
        let mut skip_lf = false;
        loop {
            let line_before = self.line;
            let Some(c) = self.next_char() else {
                if buf.is_empty() || is_comment {
                    return None;
                }
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start_line));
            };
            if skip_lf {
                skip_lf = false;
                if c == '\n' {
                    continue;
                }
            }
            if skip_white_space {
                if is_properties_space(c) {
                    continue;
                }
                if !appended_line_begin && (c == '\r' || c == '\n') {
                    continue;
                }
                skip_white_space = false;
                appended_line_begin = false;
            }
            if is_new_line {
                is_new_line = false;
                start_line = line_before;
                if c == '#' || c == '!' {
                    is_comment = true;
                    continue;
                }
            }
            if c != '\n' && c != '\r' {
                buf.push(c);
                preceding_backslash = c == '\\' && !preceding_backslash;
                continue;
            }
            // End of a physical line.
            if is_comment || buf.is_empty() {
                is_comment = false;
                is_new_line = true;
                skip_white_space = true;
                buf.clear();
                continue;
            }
            if self.pos >= self.chars.len() {
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start_line));
            }
            if preceding_backslash {
                buf.pop();
                skip_white_space = true;
                appended_line_begin = true;
                preceding_backslash = false;
                if c == '\r' {
                    skip_lf = true;
                }
            } else {
                return Some((buf, start_line));
            }
        }
    }
}

/// Java's `Properties.load0` split of a logical line into raw key and raw value.
fn split_key_value(line: &[char]) -> (&[char], &[char]) {
    let limit = line.len();
    let mut key_len = 0;
    let mut value_start = limit;
    let mut has_sep = false;
    let mut preceding_backslash = false;
    while key_len < limit {
        let c = line[key_len];
        if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_sep = true;
            break;
        } else if is_properties_space(c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < limit {
        let c = line[value_start];
        if !is_properties_space(c) {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (&line[..key_len], &line[value_start..])
}

/// Java's `Properties.loadConvert`.
fn unescape(s: &[char], line: usize) -> Result<String, ConfigError> {
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != '\\' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let Some(&escaped) = s.get(i) else {
            break;
        };
        i += 1;
        let decoded = match escaped {
            'u' => {
                let hex: String = s
                    .get(i..i + 4)
                    .map(|h| h.iter().collect())
                    .unwrap_or_default();
                let value = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u16::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| ConfigError::Syntax {
                        line,
                        message: format!(
                            "malformed \\uxxxx encoding: \\u{}",
                            s[i..].iter().take(4).collect::<String>()
                        ),
                    })?;
                i += 4;
                units.push(value);
                continue;
            }
            't' => '\t',
            'r' => '\r',
            'n' => '\n',
            'f' => '\x0c',
            other => other,
        };
        let mut buf = [0u16; 2];
        units.extend_from_slice(decoded.encode_utf16(&mut buf));
    }
    String::from_utf16(&units).map_err(|_| ConfigError::Syntax {
        line,
        message: "\\u escapes form an unpaired UTF-16 surrogate".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConsumerConfigBuilder {
        ConsumerConfig::builder("127.0.0.1:2181/kafka", "grp")
    }

    #[test]
    fn defaults_follow_the_java_consumer() {
        let c = base().build().unwrap();
        assert_eq!(c.client_id, "grp");
        assert_eq!(c.zookeeper_session_timeout, Duration::from_millis(6000));
        assert_eq!(c.zookeeper_connection_timeout, Duration::from_millis(6000));
        assert_eq!(c.rebalance_backoff, Duration::from_millis(2000));
        assert_eq!(c.auto_commit_interval, Duration::from_millis(60000));
        assert_eq!(c.auto_offset_reset, OffsetReset::Largest);
        assert_eq!(c.rebalance_max_retries, 4);
        assert_eq!(c.fetch_message_max_bytes, 1_048_576);
        assert_eq!(c.queued_max_message_chunks, 2);
        assert_eq!(c.consumer_timeout, None);
        assert_eq!(c.partition_assignment_strategy, AssignmentStrategy::Range);
        assert_eq!(c.offsets_storage, OffsetsStorage::Zookeeper);
        assert!(!c.dual_commit_enabled);
        assert_eq!(c.zookeeper_server_version, (3, 4, 6));
        assert_eq!(c.zookeeper_hosts(), "127.0.0.1:2181");
        assert_eq!(c.zookeeper_chroot(), Some("/kafka"));
    }

    #[test]
    fn derived_defaults() {
        let c = base()
            .set("zookeeper.session.timeout.ms", "400")
            .set("zookeeper.sync.time.ms", "200")
            .set("offsets.storage", "kafka")
            .build()
            .unwrap();
        assert_eq!(c.zookeeper_connection_timeout, Duration::from_millis(400));
        assert_eq!(c.rebalance_backoff, Duration::from_millis(200));
        assert!(c.dual_commit_enabled);
    }

    #[test]
    fn invalid_values_name_key_value_and_expectation() {
        for (key, value, needle) in [
            ("auto.offset.reset", "sometimes", "smallest, largest"),
            ("auto.commit.interval.ms", "abc", "milliseconds"),
            ("auto.commit.enable", "yes", "true or false"),
            (
                "partition.assignment.strategy",
                "sticky",
                "range, roundrobin",
            ),
            ("offsets.storage", "disk", "zookeeper, kafka"),
            ("group.id", "bad group", "only ASCII"),
            ("zookeeper.connect", "host-without-port", "host:port"),
            ("fetch.wait.max.ms", "40000", "socket.timeout.ms"),
            ("queued.max.message.chunks", "0", "positive"),
        ] {
            let err = base().set(key, value).build().unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(value) && err.contains(needle),
                "{err}"
            );
        }
        let err = ConsumerConfigBuilder::default()
            .set("group.id", "g")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("zookeeper.connect"));
    }

    #[test]
    fn error_messages_are_exact() {
        let err = base()
            .set("auto.commit.interval.ms", "abc")
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"abc\" for auto.commit.interval.ms: expected a non-negative integer (milliseconds)"
        );
        let err = base()
            .set("auto.offset.reset", "earliest")
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"earliest\" for auto.offset.reset: expected one of smallest, largest"
        );
        let err = base()
            .set("fetch.wait.max.ms", "500")
            .set("socket.timeout.ms", "400")
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"500\" for fetch.wait.max.ms: expected at most socket.timeout.ms (400)"
        );
        let err = ConsumerConfigBuilder::default()
            .set("zookeeper.connect", "h:1")
            .build()
            .unwrap_err();
        assert_eq!(err.to_string(), "missing required configuration group.id");
        let err = base().set("group.id", "  ").build().unwrap_err();
        assert_eq!(err.to_string(), "missing required configuration group.id");
    }

    #[test]
    fn every_numeric_key_rejects_garbage() {
        for key in [
            "zookeeper.session.timeout.ms",
            "zookeeper.connection.timeout.ms",
            "zookeeper.sync.time.ms",
            "auto.commit.interval.ms",
            "rebalance.max.retries",
            "rebalance.backoff.ms",
            "refresh.leader.backoff.ms",
            "fetch.message.max.bytes",
            "fetch.min.bytes",
            "fetch.wait.max.ms",
            "socket.timeout.ms",
            "socket.receive.buffer.bytes",
            "num.consumer.fetchers",
            "queued.max.message.chunks",
            "consumer.timeout.ms",
            "offsets.channel.backoff.ms",
            "offsets.channel.socket.timeout.ms",
            "offsets.commit.max.retries",
            "zookeeper.server.version",
        ] {
            for bad in ["x", "1.5.x", "-5x"] {
                let err = base().set(key, bad).build().unwrap_err().to_string();
                assert!(err.contains(key) && err.contains(bad), "{key}={bad}: {err}");
            }
        }
        for key in [
            "auto.commit.enable",
            "exclude.internal.topics",
            "dual.commit.enabled",
        ] {
            let err = base().set(key, "1").build().unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("true or false"), "{err}");
        }
        for key in [
            "num.consumer.fetchers",
            "queued.max.message.chunks",
            "fetch.message.max.bytes",
        ] {
            assert!(base().set(key, "0").build().is_err(), "{key}=0");
        }
        assert!(base().set("auto.commit.interval.ms", "-1").build().is_err());
    }

    #[test]
    fn typed_values() {
        let c = base()
            .set("auto.commit.enable", "FALSE")
            .set("consumer.timeout.ms", 250)
            .set("partition.assignment.strategy", "roundrobin")
            .set("offsets.storage", "kafka")
            .set("dual.commit.enabled", "false")
            .set("zookeeper.server.version", "3.5")
            .set("auto.offset.reset", "smallest")
            .set("num.consumer.fetchers", 3)
            .set("exclude.internal.topics", "false")
            .build()
            .unwrap();
        assert!(!c.auto_commit_enable);
        assert_eq!(c.consumer_timeout, Some(Duration::from_millis(250)));
        assert_eq!(
            c.partition_assignment_strategy,
            AssignmentStrategy::RoundRobin
        );
        assert_eq!(c.offsets_storage, OffsetsStorage::Kafka);
        assert!(!c.dual_commit_enabled);
        assert_eq!(c.zookeeper_server_version, (3, 5, 0));
        assert_eq!(c.auto_offset_reset, OffsetReset::Smallest);
        assert_eq!(c.num_consumer_fetchers, 3);
        assert!(!c.exclude_internal_topics);
        // Any negative consumer.timeout.ms means "no timeout", as in Java.
        let c = base().set("consumer.timeout.ms", "-7").build().unwrap();
        assert_eq!(c.consumer_timeout, None);
        let c = base().set("consumer.timeout.ms", "0").build().unwrap();
        assert_eq!(c.consumer_timeout, Some(Duration::ZERO));
    }

    #[test]
    fn zookeeper_connect_is_strict() {
        for ok in [
            "h:2181",
            "h1:2181,h2:2182,10.0.0.1:2183/kafka",
            "h:1/a/b-c.d",
            "[::1]:2181",
            "h:2181/",
        ] {
            assert!(
                base().set("zookeeper.connect", ok).build().is_ok(),
                "{ok} should be accepted"
            );
        }
        for bad in [
            "h",
            "h:",
            ":2181",
            "h:x",
            "h:+1",
            "h:0",
            "h:70000",
            "h:1,",
            "h:1,,h:2",
            "h:1/kafka/",
            "h:1//kafka",
            "h:1/a/../b",
            "h:1/a/.",
            "h 1:2181",
            "/kafka",
            "h:1, h2:2",
        ] {
            let err = base()
                .set("zookeeper.connect", bad)
                .build()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("zookeeper.connect") && err.contains("host:port"),
                "{bad}: {err}"
            );
        }
        let c = base().set("zookeeper.connect", "a:1,b:2/").build().unwrap();
        assert_eq!(c.zookeeper_hosts(), "a:1,b:2");
        assert_eq!(c.zookeeper_chroot(), None);
        let c = base()
            .set("zookeeper.connect", " a:1/x/y ")
            .build()
            .unwrap();
        assert_eq!(c.zookeeper_hosts(), "a:1");
        assert_eq!(c.zookeeper_chroot(), Some("/x/y"));
    }

    #[test]
    fn client_and_consumer_ids() {
        let c = base().set("client.id", "").build().unwrap();
        assert_eq!(c.client_id, "");
        let err = base()
            .set("client.id", "a/b")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("client.id") && err.contains("'/'"), "{err}");
        let c = base().set("consumer.id", "worker-1").build().unwrap();
        assert_eq!(c.consumer_id.as_deref(), Some("worker-1"));
        let c = base().set("consumer.id", "").build().unwrap();
        assert_eq!(c.consumer_id, None);
        let err = base()
            .set("consumer.id", "a/b")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("consumer.id") && err.contains("a/b"), "{err}");
    }

    #[test]
    fn properties_files() {
        let dir = std::env::temp_dir().join(format!("zkc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.properties");
        let err = ConsumerConfig::from_properties_file(&missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.properties"), "{err}");
        // Not UTF-8: read as ISO-8859-1, like Java's Properties.load(InputStream).
        let latin1 = dir.join("latin1.properties");
        std::fs::write(
            &latin1,
            b"zookeeper.connect=h:1\ngroup.id=g\nx.note=caf\xe9\n",
        )
        .unwrap();
        let text = read_properties_file(&latin1).unwrap();
        assert!(text.contains("caf\u{e9}"));
        let c = ConsumerConfig::from_properties_file(&latin1).unwrap();
        assert_eq!(c.group_id, "g");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_are_reported() {
        let b = base().set("auto.comit.enable", "true");
        assert_eq!(b.unknown_keys(), vec!["auto.comit.enable".to_string()]);
        assert!(b.build().is_ok());
    }

    #[test]
    fn unknown_keys_suggest_the_java_key() {
        let other = |key, whose| {
            Some(KeySuggestion {
                key,
                other_client: Some(whose),
            })
        };
        let spelling = |key| {
            Some(KeySuggestion {
                key,
                other_client: None,
            })
        };
        let kafka_python = "kafka-python's and the new Java consumer's";
        let cases = [
            // kafka-python / new Java consumer names
            (
                "enable.auto.commit",
                other("auto.commit.enable", kafka_python),
            ),
            (
                "enable_auto_commit",
                other("auto.commit.enable", kafka_python),
            ),
            (
                "fetch_max_wait_ms",
                other("fetch.wait.max.ms", kafka_python),
            ),
            (
                "max.partition.fetch.bytes",
                other("fetch.message.max.bytes", kafka_python),
            ),
            (
                "session.timeout.ms",
                other("zookeeper.session.timeout.ms", kafka_python),
            ),
            // pykafka's names
            ("consumer_group", other("group.id", "pykafka's")),
            (
                "queued_max_messages",
                other("queued.max.message.chunks", "pykafka's"),
            ),
            // the key spelled the Python way, or nearly right
            (
                "auto_commit_interval_ms",
                spelling("auto.commit.interval.ms"),
            ),
            ("group_id", spelling("group.id")),
            ("Group.Id", spelling("group.id")),
            ("auto.comit.enable", spelling("auto.commit.enable")),
            ("auto.commit.enabel", spelling("auto.commit.enable")),
            ("zookeeper.conect", spelling("zookeeper.connect")),
            ("offset.storage", spelling("offsets.storage")),
            // nothing close: no guess
            ("heartbeat.interval.ms", None),
            ("x.note", None),
            ("gruop", None),
        ];
        for (key, expected) in cases {
            assert_eq!(suggest_key(key), expected, "{key}");
        }
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abcd", "abdc"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_keys_are_taken_out_with_their_suggestions() {
        let mut b = base()
            .set("enable.auto.commit", "false")
            .set("auto.commit.enable", "false")
            .set("x.note", "1");
        let unknown = b.take_unknown_keys();
        assert_eq!(
            unknown,
            vec![
                UnknownKey {
                    key: "enable.auto.commit".into(),
                    suggestion: suggest_key("enable.auto.commit"),
                },
                UnknownKey {
                    key: "x.note".into(),
                    suggestion: None,
                },
            ]
        );
        assert_eq!(
            unknown[0].to_string(),
            "unknown consumer configuration key \"enable.auto.commit\" ignored: it is kafka-python's \
             and the new Java consumer's name, zkconsumer (like the old Java consumer) reads \
             \"auto.commit.enable\""
        );
        assert_eq!(
            UnknownKey {
                key: "group_id".into(),
                suggestion: suggest_key("group_id"),
            }
            .to_string(),
            "unknown consumer configuration key \"group_id\" ignored: did you mean \"group.id\"?"
        );
        assert!(b.unknown_keys().is_empty());
        let c = b.build().unwrap();
        assert!(!c.auto_commit_enable);
    }

    /// Golden values: `java.util.Properties.load` on Java 17 for each text (keys sorted).
    #[test]
    fn properties_match_java_properties_load() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("a=b\n", &[("a", "b")]),
            (
                "  key   =   value with trailing   \n",
                &[("key", "value with trailing   ")],
            ),
            (
                "key:value\nkey2 value2\nkey3\t:\tvalue3\nkey4 = = x\nkey5  :=x\n",
                &[
                    ("key", "value"),
                    ("key2", "value2"),
                    ("key3", "value3"),
                    ("key4", "= x"),
                    ("key5", "=x"),
                ],
            ),
            ("# comment \\\nnot.comment=1\n", &[("not.comment", "1")]),
            ("multi = a\\\n   b\\\n\tc\n", &[("multi", "abc")]),
            ("cont = x\\\n\nnext=y", &[("cont", "x"), ("next", "y")]),
            (
                "crlf=1\r\ncr=2\rlf=3\n",
                &[("cr", "2"), ("crlf", "1"), ("lf", "3")],
            ),
            (
                "esc = \\t\\n\\u0041\\u00e9\\uD83D\\uDE00\\z\\\\\n",
                &[("esc", "\t\nA\u{e9}\u{1f600}z\\")],
            ),
            (
                "key\\ with\\ space = v\nk\\:colon=v\nk\\=eq=v\n",
                &[("k:colon", "v"), ("k=eq", "v"), ("key with space", "v")],
            ),
            ("lonekey\n   \n\t\u{c}\n", &[("lonekey", "")]),
            ("trail=x\\", &[("trail", "x")]),
            (
                "\\#notcomment=1\n! bang comment\n  #indented comment\ndup=1\ndup=2",
                &[("#notcomment", "1"), ("dup", "2")],
            ),
            ("a=b\\\r\n  c", &[("a", "bc")]),
            ("k=\\\\\nk2=\\\\\\\n next", &[("k", "\\"), ("k2", "\\next")]),
            (
                "empty=\nempty2:\n  =novalue-key\n",
                &[("", "novalue-key"), ("empty", ""), ("empty2", "")],
            ),
            ("a=b\\\n#notcomment\n", &[("a", "b#notcomment")]),
            ("x=y\\\r  \\\nz", &[("x", "yz")]),
            ("x y z=w\n", &[("x", "y z=w")]),
        ];
        for (text, java) in cases {
            let ours: BTreeMap<String, String> =
                parse_properties(text).unwrap().into_iter().collect();
            let java: BTreeMap<String, String> = java
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(ours, java, "text {text:?}");
        }
        // Java throws "Malformed \\uxxxx encoding" for these.
        for text in ["k=\\u12", "k=\\u12zz"] {
            let e = parse_properties(text).unwrap_err().to_string();
            assert!(e.contains("line 1") && e.contains("\\u"), "{e}");
        }
        let e = parse_properties("a=1\n\n# c\nb=\\uD83D\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4") && e.contains("surrogate"), "{e}");
    }

    #[test]
    fn properties_syntax() {
        let text = "# comment\n! other\n  zookeeper.connect = a:1,b:2/kafka\ngroup.id:grp\nclient.id grp2\nlong = one \\\n   two\nesc=tab\\there\\u0041\nempty=\nkey\\=with=eq\n";
        let props = parse_properties(text).unwrap();
        let m: BTreeMap<_, _> = props.into_iter().collect();
        assert_eq!(m["zookeeper.connect"], "a:1,b:2/kafka");
        assert_eq!(m["group.id"], "grp");
        assert_eq!(m["client.id"], "grp2");
        assert_eq!(m["long"], "one two");
        assert_eq!(m["esc"], "tab\thereA");
        assert_eq!(m["empty"], "");
        assert_eq!(m["key=with"], "eq");
        let c = ConsumerConfig::from_properties_str(text).unwrap();
        assert_eq!(c.client_id, "grp2");
        let err = parse_properties("a=\\u12").unwrap_err().to_string();
        assert!(err.contains("line 1"));
    }
}
