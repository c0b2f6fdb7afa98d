//! Consumer configuration: every key of the Java old consumer with its default (spec §8), read
//! from Java `.properties` text or set through a builder, validated with errors that name the
//! key, the value and what was expected. Pure apart from reading a properties file.

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

/// Every key zkconsumer understands: the Java consumer's, plus `zookeeper.server.version`.
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

    /// Reads and validates a Java `.properties` file.
    pub fn from_properties_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_properties_str(&text)
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

    fn opt_millis(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(|ms| Some(Duration::from_millis(ms)))
                .map_err(|_| invalid(key, v, "a non-negative integer (milliseconds)")),
        }
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
    let expected = "host:port[,host:port...][/chroot]";
    let (hosts, chroot) = split_chroot(value);
    if let Some(chroot) = chroot {
        if chroot.ends_with('/') || chroot.contains("//") {
            return Err(invalid("zookeeper.connect", value, expected));
        }
    }
    for host in hosts.split(',') {
        let ok = match host.trim().rsplit_once(':') {
            Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok(),
            None => false,
        };
        if !ok {
            return Err(invalid("zookeeper.connect", value, expected));
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

    /// Validates every key and returns the configuration; unknown keys are logged as warnings.
    pub fn build(self) -> Result<ConsumerConfig, ConfigError> {
        for key in self.unknown_keys() {
            tracing::warn!(key = %key, "unknown consumer configuration key ignored");
        }
        let r = Reader {
            values: &self.values,
        };
        let zookeeper_connect = r.required("zookeeper.connect")?;
        validate_connect(&zookeeper_connect)?;
        let group_id = r.required("group.id")?;
        validate_name("group.id", &group_id).map_err(|e| invalid("group.id", &group_id, &e))?;
        let client_id = r.raw("client.id").unwrap_or(&group_id).to_string();
        validate_name("client.id", &client_id).map_err(|e| invalid("client.id", &client_id, &e))?;
        let consumer_id = r
            .raw("consumer.id")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
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
        let _ = r.opt_millis("consumer.timeout.ms").ok();
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

/// Parses Java `.properties` text: `#`/`!` comments, `key=value`, `key: value`, `key value`,
/// line continuations, and `\t \n \r \f \\ \uXXXX` escapes.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let start_line = index + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut current = trimmed.to_string();
        loop {
            let trailing = current.chars().rev().take_while(|&c| c == '\\').count();
            if trailing % 2 == 1 {
                current.pop();
                logical.push_str(&current);
                match lines.next() {
                    Some((_, next)) => current = next.trim_start().to_string(),
                    None => break,
                }
            } else {
                logical.push_str(&current);
                break;
            }
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(key, start_line)?;
        let value = unescape(value, start_line)?;
        out.push((key, value));
    }
    Ok(out)
}

fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&line[..i], line[i + 1..].trim_start()),
            ' ' | '\t' | '\x0c' => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .map(str::trim_start)
                    .unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str, line: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4);
                match code.and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(ConfigError::Syntax {
                            line,
                            message: format!("malformed \\u escape \\u{hex}"),
                        })
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
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
    fn unknown_keys_are_reported() {
        let b = base().set("auto.comit.enable", "true");
        assert_eq!(b.unknown_keys(), vec!["auto.comit.enable".to_string()]);
        assert!(b.build().is_ok());
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
