//! Member and stream identities (spec §2): consumer ids and thread ids, formatted and ordered
//! exactly as the Java consumer does, since every member sorts them the same way to compute the
//! same assignment. Pure, apart from reading the host name and clock for a generated id.
//! Never talks to ZooKeeper.

use std::cmp::Ordering;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Java's `String.compareTo`: lexicographic over UTF-16 code units. Equal to byte order for
/// ASCII; differs only between supplementary characters and U+E000..U+FFFF.
pub fn java_string_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A member's id: `<group>_<host>-<millis>-<8 hex>` or `<group>_<consumer.id>`.
/// Ordered as Java orders strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerId(String);

impl Ord for ConsumerId {
    fn cmp(&self, other: &Self) -> Ordering {
        java_string_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for ConsumerId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl ConsumerId {
    /// The Java consumer's generated id: the first 8 characters of
    /// `Long.toHexString(uuid.getMostSignificantBits)` (no leading zeros, as Java prints it).
    pub fn generate(group: &str, hostname: &str, epoch_ms: u64, uuid: uuid::Uuid) -> Self {
        let high = (uuid.as_u128() >> 64) as u64;
        let hex = format!("{high:x}");
        let short: String = hex.chars().take(8).collect();
        ConsumerId(format!("{group}_{hostname}-{epoch_ms}-{short}"))
    }

    /// The id for a configuration: `<group>_<consumer.id>` when set, else a generated one.
    pub fn for_config(group: &str, consumer_id: Option<&str>) -> Self {
        match consumer_id {
            Some(id) => ConsumerId(format!("{group}_{id}")),
            None => {
                let host = gethostname::gethostname().to_string_lossy().into_owned();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                Self::generate(group, &host, now, uuid::Uuid::new_v4())
            }
        }
    }

    /// Wraps an id read from ZooKeeper (a child of `/consumers/<group>/ids`). Any text is
    /// accepted: ids written by other clients are used as they are.
    pub fn parse(s: &str) -> Self {
        ConsumerId(s.to_string())
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stream number `n` when `thread` is exactly this member's thread id
    /// `<consumerId>-<n>` (`n` in decimal as Java writes it); `None` for anything else, such
    /// as a thread of member `<consumerId>-1` (`<consumerId>-1-0`).
    pub fn thread_number(&self, thread: &str) -> Option<u32> {
        let n = thread.strip_prefix(self.0.as_str())?.strip_prefix('-')?;
        canonical_number(n)
    }
}

/// `text` as a `u32` when it is exactly the decimal Java writes for it (digits only, no sign,
/// no leading zero).
fn canonical_number(text: &str) -> Option<u32> {
    let value: u32 = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

impl fmt::Display for ConsumerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream's id, `<consumerId>-<n>`; ordered as Java orders the strings (`…-10` before
/// `…-2`), which is the order every member deals partitions out in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThreadId(String);

impl Ord for ThreadId {
    fn cmp(&self, other: &Self) -> Ordering {
        java_string_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for ThreadId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl ThreadId {
    /// Thread `n` of a consumer.
    pub fn new(consumer: &ConsumerId, n: u32) -> Self {
        ThreadId(format!("{}-{n}", consumer.0))
    }

    /// Wraps a thread id read from an owner node.
    pub fn from_string(s: String) -> Self {
        ThreadId(s)
    }

    /// The id text (also the owner node's data).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The consumer id part (before the last `-`).
    pub fn consumer_id(&self) -> &str {
        self.0.rsplit_once('-').map_or(&self.0, |(c, _)| c)
    }

    /// The stream number (after the last `-`), if it is one.
    pub fn stream_number(&self) -> Option<u32> {
        self.0
            .rsplit_once('-')
            .and_then(|(_, n)| canonical_number(n))
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The thread ids of a consumer with `streams` streams.
pub fn thread_ids(consumer: &ConsumerId, streams: u32) -> Vec<ThreadId> {
    (0..streams).map(|n| ThreadId::new(consumer, n)).collect()
}

/// Checks the `group.id` / `client.id` charset: ASCII letters, digits, `.`, `_`, `-`; the
/// error names the key, the value and the first offending character.
pub fn validate_name(key: &str, value: &str) -> Result<(), crate::config::ConfigError> {
    let expected = |found: String| crate::config::ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: format!("only ASCII letters, digits, '.', '_' and '-' ({found})"),
    };
    if value.is_empty() {
        return Err(expected("found an empty name".to_string()));
    }
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(expected(format!("found {c:?}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_id_matches_java_format() {
        let uuid = uuid::Uuid::from_u128(0x1a2b3c4d_5e6f_7081_9293_a4b5c6d7e8f9);
        let id = ConsumerId::generate("grp", "web-3", 1_700_000_000_000, uuid);
        assert_eq!(id.as_str(), "grp_web-3-1700000000000-1a2b3c4d");
        // Long.toHexString drops leading zeros.
        let uuid = uuid::Uuid::from_u128(0x0000_0abc_dead_beef_0000_0000_0000_0000);
        let id = ConsumerId::generate("g", "h", 1, uuid);
        assert_eq!(id.as_str(), "g_h-1-abcdeadb");
        assert_eq!(ConsumerId::for_config("g", Some("c1")).as_str(), "g_c1");
    }

    #[test]
    fn thread_ids_sort_as_strings() {
        let c = ConsumerId::parse("c");
        let mut ids = thread_ids(&c, 12);
        ids.sort();
        let names: Vec<&str> = ids.iter().map(ThreadId::as_str).collect();
        assert_eq!(
            names,
            [
                "c-0", "c-1", "c-10", "c-11", "c-2", "c-3", "c-4", "c-5", "c-6", "c-7", "c-8",
                "c-9"
            ]
        );
        assert_eq!(
            ThreadId::new(&ConsumerId::parse("g_h-1-ab"), 3).consumer_id(),
            "g_h-1-ab"
        );
    }

    #[test]
    fn order_is_java_string_order() {
        // U+FF61 (one UTF-16 unit 0xFF61) sorts after U+1F600 (surrogates 0xD83D 0xDE00) in
        // Java, before it in byte/code point order.
        let a = ThreadId::from_string("g_\u{1F600}-0".to_string());
        let b = ThreadId::from_string("g_\u{FF61}-0".to_string());
        assert!(a < b);
        assert_eq!(
            java_string_cmp("g_\u{FF61}", "g_\u{1F600}"),
            Ordering::Greater
        );
        assert!(ConsumerId::parse("a\u{1F600}") < ConsumerId::parse("a\u{FF61}"));
        assert_eq!(java_string_cmp("c-10", "c-2"), Ordering::Less);
        assert_eq!(java_string_cmp("c-1", "c-10"), Ordering::Less);
        assert_eq!(
            ThreadId::from_string("g_c-12".into()).stream_number(),
            Some(12)
        );
    }

    #[test]
    fn thread_ids_are_parsed_exactly() {
        let a = ConsumerId::parse("g_a");
        assert_eq!(a.thread_number("g_a-0"), Some(0));
        assert_eq!(a.thread_number("g_a-12"), Some(12));
        // member g_a-1's thread 0, and g_a-1-0's: not g_a's
        assert_eq!(a.thread_number("g_a-1-0"), None);
        assert_eq!(a.thread_number("g_a-1-0-0"), None);
        for not_a_thread in [
            "g_a",
            "g_a-",
            "g_a-+1",
            "g_a-01",
            "g_a- 1",
            "g_ab-0",
            "g_a-99999999999",
        ] {
            assert_eq!(a.thread_number(not_a_thread), None, "{not_a_thread}");
        }
        let java = ConsumerId::parse("g_host-1700000000000-1a2b3c4d");
        assert_eq!(
            java.thread_number("g_host-1700000000000-1a2b3c4d-3"),
            Some(3)
        );
        assert_eq!(ThreadId::from_string("g_a-+1".into()).stream_number(), None);
        assert_eq!(ThreadId::from_string("g_a-07".into()).stream_number(), None);
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("group.id", "ok.name_1-x").is_ok());
        let err = validate_name("group.id", "bad name")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid value \"bad name\" for group.id: expected only ASCII letters, digits, '.', '_' and '-' (found ' ')"
        );
        assert!(validate_name("group.id", "grüppe").is_err());
        assert!(validate_name("client.id", "").is_err());
    }
}
