//! The ZooKeeper data layout shared with Kafka and the Java consumer: node paths and the JSON
//! in them (spec §1). Pure: parses and formats bytes, never talks to ZooKeeper.
//!
//! Readers accept what Kafka's own (Scala) JSON reader accepts. That matters for interop:
//! Kafka 0.8/0.9's `Json.encode` does not escape strings, so a Java member subscribed to the
//! whitelist `orders\..*` writes `{"orders\..*":1}`, which strict JSON rejects. Kafka's reader
//! keeps an unknown escape as a literal backslash, and so does [`lenient_json`]. Writers here
//! emit proper JSON, which Kafka's reader decodes to the same strings.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Children are the ids of live brokers.
pub const BROKER_IDS_PATH: &str = "/brokers/ids";
/// Children are the topics.
pub const BROKER_TOPICS_PATH: &str = "/brokers/topics";
/// Children are the consumer groups.
pub const CONSUMERS_PATH: &str = "/consumers";
/// Children are topics marked for deletion.
pub const DELETE_TOPICS_PATH: &str = "/admin/delete_topics";

/// Errors reading a node's data; each names the node.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The node does not hold the JSON expected there.
    #[error("cannot parse {path}: {source} (data: {data:?})")]
    Json {
        /// Node path.
        path: String,
        /// The data, lossily decoded.
        data: String,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// The node holds a value that is not valid there.
    #[error("invalid data in {path}: {message}")]
    Invalid {
        /// Node path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn json_error(path: &str, data: &[u8], source: serde_json::Error) -> LayoutError {
    LayoutError::Json {
        path: path.to_string(),
        data: String::from_utf8_lossy(data).into_owned(),
        source,
    }
}

fn invalid(path: &str, message: String) -> LayoutError {
    LayoutError::Invalid {
        path: path.to_string(),
        message,
    }
}

/// Rewrites JSON text so that strict parsing yields what Kafka's Scala JSON reader yields:
/// inside strings, a backslash that does not start a valid escape (`\"` `\\` `\/` `\b` `\f`
/// `\n` `\r` `\t` `\uXXXX`) is a literal backslash, and raw control characters are kept.
/// Valid JSON is returned unchanged (borrowed).
pub fn lenient_json(data: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let mut in_string = false;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if in_string {
            match b {
                b'"' => {
                    in_string = false;
                    out.push(b);
                }
                b'\\' if valid_escape(&data[i + 1..]) => {
                    out.extend_from_slice(&data[i..i + 2]);
                    i += 1;
                }
                b'\\' => out.extend_from_slice(br"\\"),
                0x00..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => out.push(b),
            }
        } else {
            in_string = b == b'"';
            out.push(b);
        }
        i += 1;
    }
    // ZooKeeper nodes are small: one pass that always copies beats a second scanner.
    if out == data {
        Cow::Borrowed(data)
    } else {
        Cow::Owned(out)
    }
}

/// Whether the bytes after a backslash form an escape Kafka's reader decodes.
fn valid_escape(rest: &[u8]) -> bool {
    match rest.first() {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => rest.len() >= 5 && rest[1..5].iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

/// Parses node data with the tolerance of Kafka's reader (see [`lenient_json`]).
fn from_json<T: DeserializeOwned>(path: &str, data: &[u8]) -> Result<T, LayoutError> {
    serde_json::from_slice(&lenient_json(data)).map_err(|e| json_error(path, data, e))
}

/// `/brokers/ids/<id>`.
pub fn broker_path(id: i32) -> String {
    format!("{BROKER_IDS_PATH}/{id}")
}

/// `/brokers/topics/<topic>`.
pub fn topic_path(topic: &str) -> String {
    format!("{BROKER_TOPICS_PATH}/{topic}")
}

/// `/brokers/topics/<topic>/partitions/<p>/state`.
pub fn partition_state_path(topic: &str, partition: i32) -> String {
    format!("{BROKER_TOPICS_PATH}/{topic}/partitions/{partition}/state")
}

/// `/admin/delete_topics/<topic>`.
pub fn delete_topic_path(topic: &str) -> String {
    format!("{DELETE_TOPICS_PATH}/{topic}")
}

/// `/consumers/<group>`.
pub fn group_path(group: &str) -> String {
    format!("{CONSUMERS_PATH}/{group}")
}

/// `/consumers/<group>/ids`.
pub fn consumer_ids_path(group: &str) -> String {
    format!("{CONSUMERS_PATH}/{group}/ids")
}

/// `/consumers/<group>/ids/<consumerId>`.
pub fn consumer_registration_path(group: &str, consumer_id: &str) -> String {
    format!("{CONSUMERS_PATH}/{group}/ids/{consumer_id}")
}

/// `/consumers/<group>/owners`.
pub fn owners_path(group: &str) -> String {
    format!("{CONSUMERS_PATH}/{group}/owners")
}

/// `/consumers/<group>/owners/<topic>`.
pub fn owner_topic_path(group: &str, topic: &str) -> String {
    format!("{CONSUMERS_PATH}/{group}/owners/{topic}")
}

/// `/consumers/<group>/owners/<topic>/<p>`.
pub fn owner_path(group: &str, topic: &str, partition: i32) -> String {
    format!("{CONSUMERS_PATH}/{group}/owners/{topic}/{partition}")
}

/// `/consumers/<group>/offsets`.
pub fn offsets_path(group: &str) -> String {
    format!("{CONSUMERS_PATH}/{group}/offsets")
}

/// `/consumers/<group>/offsets/<topic>`.
pub fn offset_topic_path(group: &str, topic: &str) -> String {
    format!("{CONSUMERS_PATH}/{group}/offsets/{topic}")
}

/// `/consumers/<group>/offsets/<topic>/<p>`.
pub fn offset_path(group: &str, topic: &str, partition: i32) -> String {
    format!("{CONSUMERS_PATH}/{group}/offsets/{topic}/{partition}")
}

/// A live broker as registered under `/brokers/ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: i32,
    /// Host clients connect to (an IPv6 address without brackets).
    pub host: String,
    /// Plaintext port.
    pub port: u16,
}

#[derive(Deserialize)]
struct BrokerJson {
    host: Option<String>,
    port: Option<i64>,
    #[serde(default)]
    endpoints: Vec<String>,
    /// Kafka 0.10.2+: listener name -> security protocol.
    #[serde(default)]
    listener_security_protocol_map: BTreeMap<String, String>,
}

impl BrokerInfo {
    /// Parses broker JSON version 1 (`host`/`port`) or 2+ (`endpoints`; the `PLAINTEXT`
    /// endpoint is preferred, also under a listener name that
    /// `listener_security_protocol_map` maps to `PLAINTEXT`). Unknown fields are ignored.
    pub fn parse(id: i32, path: &str, data: &[u8]) -> Result<Self, LayoutError> {
        let json: BrokerJson = from_json(path, data)?;
        for endpoint in &json.endpoints {
            let Some((listener, rest)) = endpoint.split_once("://") else {
                return Err(invalid(
                    path,
                    format!("endpoint {endpoint:?} has no protocol"),
                ));
            };
            let protocol = json
                .listener_security_protocol_map
                .get(listener)
                .map_or(listener, String::as_str);
            if protocol != "PLAINTEXT" {
                continue;
            }
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid(path, format!("endpoint {endpoint:?} has no port")))?;
            let port =
                port.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
                    invalid(path, format!("endpoint {endpoint:?} has a bad port"))
                })?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(invalid(path, format!("endpoint {endpoint:?} has no host")));
            }
            return Ok(BrokerInfo {
                id,
                host: host.to_string(),
                port,
            });
        }
        match (json.host, json.port) {
            (Some(host), Some(port)) if !host.is_empty() => Ok(BrokerInfo {
                id,
                host,
                port: u16::try_from(port)
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| invalid(path, format!("port {port} out of range")))?,
            }),
            _ => Err(invalid(
                path,
                "no PLAINTEXT endpoint and no host/port fields".to_string(),
            )),
        }
    }

    /// `host:port` (`[v6addr]:port` for an IPv6 host), ready for a socket connect.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `/brokers/topics/<topic>`: replica lists per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReplicaAssignment {
    /// Partition id -> replica broker ids (first = preferred leader).
    pub partitions: BTreeMap<i32, Vec<i32>>,
}

#[derive(Deserialize)]
struct TopicJson {
    #[serde(default)]
    partitions: BTreeMap<String, Vec<i32>>,
}

impl TopicReplicaAssignment {
    /// Parses `{"version":1,"partitions":{"0":[2,1]}}`. A node without a `partitions` field
    /// is a topic without partitions (as Java reads it). Data that is not JSON at all is an
    /// error here; Java treats that topic as having no partitions too, so a caller that must
    /// assign exactly like Java should do the same after logging the error.
    pub fn parse(path: &str, data: &[u8]) -> Result<Self, LayoutError> {
        let json: TopicJson = from_json(path, data)?;
        let mut partitions = BTreeMap::new();
        for (p, replicas) in json.partitions {
            let id = p
                .parse::<i32>()
                .map_err(|_| invalid(path, format!("partition id {p:?} is not a number")))?;
            partitions.insert(id, replicas);
        }
        Ok(TopicReplicaAssignment { partitions })
    }

    /// Partition ids in numeric order.
    pub fn partition_ids(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }
}

/// `/brokers/topics/<t>/partitions/<p>/state`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PartitionState {
    /// Leader broker id, -1 when none.
    pub leader: i32,
    /// Leader epoch.
    #[serde(default)]
    pub leader_epoch: i32,
    /// In-sync replicas.
    #[serde(default)]
    pub isr: Vec<i32>,
    /// Controller epoch.
    #[serde(default)]
    pub controller_epoch: i32,
}

impl PartitionState {
    /// Parses the controller's partition state JSON.
    pub fn parse(path: &str, data: &[u8]) -> Result<Self, LayoutError> {
        from_json(path, data)
    }

    /// The leader broker id, `None` when the partition has no leader (`-1`).
    pub fn leader(&self) -> Option<i32> {
        (self.leader >= 0).then_some(self.leader)
    }
}

/// How a member's subscription map is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubscriptionPattern {
    /// Topic -> stream count.
    #[serde(rename = "static")]
    Static,
    /// One regex -> stream count; topics matching it.
    #[serde(rename = "white_list")]
    WhiteList,
    /// One regex -> stream count; topics not matching it.
    #[serde(rename = "black_list")]
    BlackList,
}

impl SubscriptionPattern {
    /// The JSON name: `static`, `white_list` or `black_list`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionPattern::Static => "static",
            SubscriptionPattern::WhiteList => "white_list",
            SubscriptionPattern::BlackList => "black_list",
        }
    }
}

impl fmt::Display for SubscriptionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's registration node, `/consumers/<group>/ids/<consumerId>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// Always 1.
    pub version: i32,
    /// Topic (or, for a filter, the one regex) -> stream count.
    pub subscription: BTreeMap<String, u32>,
    /// How to read `subscription`.
    pub pattern: SubscriptionPattern,
    /// Registration time, epoch millis as a string.
    pub timestamp: String,
}

/// A JSON object's entries in document order; a repeated key keeps its first position and
/// takes the last value (as Scala's `Map(pairs: _*)` in Kafka's reader does).
struct OrderedObject(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    match entries.iter_mut().find(|(key, _)| *key == k) {
                        Some(entry) => entry.1 = v,
                        None => entries.push((k, v)),
                    }
                }
                Ok(OrderedObject(entries))
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct RegistrationJson {
    #[serde(default)]
    version: Option<serde_json::Value>,
    subscription: Option<OrderedObject>,
    pattern: Option<serde_json::Value>,
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
}

impl Registration {
    /// A static subscription registered at `now_ms`.
    pub fn new_static(subscription: BTreeMap<String, u32>, now_ms: u64) -> Self {
        Registration {
            version: 1,
            subscription,
            pattern: SubscriptionPattern::Static,
            timestamp: now_ms.to_string(),
        }
    }

    /// A whitelist/blacklist subscription: one regex shared by `streams` streams.
    pub fn new_filter(
        pattern: SubscriptionPattern,
        regex: &str,
        streams: u32,
        now_ms: u64,
    ) -> Self {
        Registration {
            version: 1,
            subscription: BTreeMap::from([(regex.to_string(), streams)]),
            pattern,
            timestamp: now_ms.to_string(),
        }
    }

    /// The JSON written to ZooKeeper, fields in the Java consumer's order:
    /// `{"version":1,"subscription":{…},"pattern":"static","timestamp":"1700000000000"}`.
    /// Strings are JSON-escaped (Kafka's reader decodes the escapes to the same regex).
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a registration as the Java consumer's `TopicCount.constructTopicCount` reads it:
    /// field order, extra fields and a numeric timestamp are tolerated; `pattern` and
    /// `subscription` are required; a `white_list`/`black_list` registration uses the first
    /// entry of its subscription (document order); any other pattern, or a filter pattern with
    /// an empty subscription, is a static subscription. A negative stream count gives no
    /// streams (as in Java); a count that is not an integer in Java's `Int` range is an error.
    pub fn parse(path: &str, data: &[u8]) -> Result<Self, LayoutError> {
        let json: RegistrationJson = from_json(path, data)?;
        let pattern = match json.pattern {
            Some(serde_json::Value::String(p)) => p,
            Some(other) => return Err(invalid(path, format!("pattern {other} is not a string"))),
            None => return Err(invalid(path, "no pattern field".to_string())),
        };
        let Some(OrderedObject(entries)) = json.subscription else {
            return Err(invalid(path, "no subscription field".to_string()));
        };
        let mut counted = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let count = value
                .as_i64()
                .filter(|n| i32::try_from(*n).is_ok())
                .ok_or_else(|| {
                    invalid(
                        path,
                        format!("stream count {value} for {key:?} is not a 32-bit integer"),
                    )
                })?;
            counted.push((key, u32::try_from(count).unwrap_or(0)));
        }
        let pattern = match pattern.as_str() {
            "white_list" if !counted.is_empty() => SubscriptionPattern::WhiteList,
            "black_list" if !counted.is_empty() => SubscriptionPattern::BlackList,
            _ => SubscriptionPattern::Static,
        };
        if pattern != SubscriptionPattern::Static {
            counted.truncate(1);
        }
        let version = json
            .version
            .and_then(|v| v.as_i64())
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(1);
        let timestamp = match json.timestamp {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        Ok(Registration {
            version,
            subscription: counted.into_iter().collect(),
            pattern,
            timestamp,
        })
    }
}

/// The keys of a registration's `subscription` in document order (a repeated key counts at
/// its first position): the order a Java member reads its own static subscription in, which
/// decides roundrobin hash ties (see `group::assign::assign_with_topic_order`).
pub fn subscription_document_order(path: &str, data: &[u8]) -> Result<Vec<String>, LayoutError> {
    let json: RegistrationJson = from_json(path, data)?;
    match json.subscription {
        Some(OrderedObject(entries)) => Ok(entries.into_iter().map(|(k, _)| k).collect()),
        None => Err(invalid(path, "no subscription field".to_string())),
    }
}

/// Parses an offset node: decimal ASCII (surrounding whitespace allowed). The error names the
/// path and shows the data.
pub fn parse_offset(path: &str, data: &[u8]) -> Result<i64, LayoutError> {
    let text = String::from_utf8_lossy(data);
    text.trim()
        .parse::<i64>()
        .map_err(|_| invalid(path, format!("expected a decimal offset, found {:?}", text)))
}

/// Formats an offset as the Java consumer writes it (`1234`).
pub fn format_offset(offset: i64) -> String {
    offset.to_string()
}

/// Parses an owner node: the owning thread id as plain text.
pub fn parse_owner(path: &str, data: &[u8]) -> Result<String, LayoutError> {
    let text = std::str::from_utf8(data).map_err(|_| {
        invalid(
            path,
            format!("owner is not UTF-8: {:?}", String::from_utf8_lossy(data)),
        )
    })?;
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(broker_path(3), "/brokers/ids/3");
        assert_eq!(topic_path("t"), "/brokers/topics/t");
        assert_eq!(
            partition_state_path("t", 4),
            "/brokers/topics/t/partitions/4/state"
        );
        assert_eq!(delete_topic_path("t"), "/admin/delete_topics/t");
        assert_eq!(group_path("g"), "/consumers/g");
        assert_eq!(consumer_ids_path("g"), "/consumers/g/ids");
        assert_eq!(
            consumer_registration_path("g", "g_c1"),
            "/consumers/g/ids/g_c1"
        );
        assert_eq!(owners_path("g"), "/consumers/g/owners");
        assert_eq!(owner_topic_path("g", "t"), "/consumers/g/owners/t");
        assert_eq!(owner_path("g", "t", 3), "/consumers/g/owners/t/3");
        assert_eq!(offsets_path("g"), "/consumers/g/offsets");
        assert_eq!(offset_topic_path("g", "t"), "/consumers/g/offsets/t");
        assert_eq!(offset_path("g", "t", 3), "/consumers/g/offsets/t/3");
    }

    #[test]
    fn broker_json_v1_and_v2() {
        let v1 = br#"{"jmx_port":-1,"timestamp":"1700000000000","host":"10.0.0.5","version":1,"port":9092}"#;
        let b = BrokerInfo::parse(1, "/brokers/ids/1", v1).unwrap();
        assert_eq!(
            b,
            BrokerInfo {
                id: 1,
                host: "10.0.0.5".into(),
                port: 9092
            }
        );
        assert_eq!(b.address(), "10.0.0.5:9092");
        let v2 = br#"{"jmx_port":-1,"timestamp":"1","endpoints":["PLAINTEXT://10.0.0.6:9093"],"host":"10.0.0.6","version":2,"port":9093}"#;
        assert_eq!(
            BrokerInfo::parse(2, "/p", v2).unwrap().address(),
            "10.0.0.6:9093"
        );
        // The endpoint wins over host/port; SSL endpoints are skipped.
        let v2 = br#"{"endpoints":["SSL://h:9094","PLAINTEXT://h2:9095"],"host":null,"port":-1,"version":2}"#;
        assert_eq!(BrokerInfo::parse(2, "/p", v2).unwrap().address(), "h2:9095");
        // Named listeners (0.10.2+).
        let v4 = br#"{"listener_security_protocol_map":{"CLIENT":"PLAINTEXT","REPL":"SSL"},"endpoints":["REPL://r:1","CLIENT://c:2"],"version":4}"#;
        assert_eq!(BrokerInfo::parse(4, "/p", v4).unwrap().address(), "c:2");
        // IPv6 in brackets: stored bare, bracketed again for connecting.
        let v6 = br#"{"endpoints":["PLAINTEXT://[::1]:9092"],"version":2}"#;
        let b = BrokerInfo::parse(5, "/p", v6).unwrap();
        assert_eq!(b.host, "::1");
        assert_eq!(b.address(), "[::1]:9092");
        for bad in [
            &b"{}"[..],
            b"garbage",
            br#"{"endpoints":["SSL://h:1"],"version":2}"#,
            br#"{"host":"h","port":70000,"version":1}"#,
        ] {
            let err = BrokerInfo::parse(3, "/brokers/ids/3", bad).unwrap_err();
            assert!(err.to_string().contains("/brokers/ids/3"), "{err}");
        }
    }

    #[test]
    fn registration_golden_json() {
        let reg = Registration::new_static(
            BTreeMap::from([("orders".to_string(), 2), ("clicks".to_string(), 2)]),
            1_700_000_000_000,
        );
        assert_eq!(
            reg.to_json(),
            r#"{"version":1,"subscription":{"clicks":2,"orders":2},"pattern":"static","timestamp":"1700000000000"}"#
        );
        assert_eq!(
            Registration::parse("/p", reg.to_json().as_bytes()).unwrap(),
            reg
        );
        let parsed = Registration::parse(
            "/p",
            br#"{"pattern":"white_list","subscription":{"orders.*":1},"timestamp":1700000000000,"version":1,"extra":true}"#,
        )
        .unwrap();
        assert_eq!(parsed.pattern, SubscriptionPattern::WhiteList);
        assert_eq!(parsed.timestamp, "1700000000000");
        let filter = Registration::new_filter(SubscriptionPattern::BlackList, "a|b", 3, 5);
        assert_eq!(
            filter.to_json(),
            r#"{"version":1,"subscription":{"a|b":3},"pattern":"black_list","timestamp":"5"}"#
        );
    }

    #[test]
    fn registration_written_by_java_with_unescaped_regex() {
        // Kafka 0.9.0.1 `Json.encode(Map("orders\\.eu.*" -> 1))` gives exactly this (checked
        // on the real jar); its reader decodes the key back to `orders\.eu.*`.
        let java = br#"{"version":1,"subscription":{"orders\.eu.*":1},"pattern":"white_list","timestamp":"1700000000000"}"#;
        let reg = Registration::parse("/consumers/g/ids/x", java).unwrap();
        assert_eq!(
            reg.subscription,
            BTreeMap::from([(r"orders\.eu.*".to_string(), 1)])
        );
        // What we write for the same regex is valid JSON that decodes to the same string.
        let ours = Registration::new_filter(SubscriptionPattern::WhiteList, r"orders\.eu.*", 1, 0);
        assert!(ours.to_json().contains(r#""orders\\.eu.*":1"#));
        assert_eq!(
            Registration::parse("/p", ours.to_json().as_bytes())
                .unwrap()
                .subscription,
            reg.subscription
        );
        // Valid escapes keep their meaning, raw control characters are kept.
        assert_eq!(
            lenient_json(br#"{"a\\.b\u0041":1}"#),
            Cow::Borrowed(&br#"{"a\\.b\u0041":1}"#[..])
        );
        assert_eq!(
            &*lenient_json(b"[\"a\\d\tb\"]"),
            &b"[\"a\\\\d\\u0009b\"]"[..]
        );
        assert_eq!(&*lenient_json(br#"["\uZZ"]"#), &br#"["\\uZZ"]"#[..]);
    }

    #[test]
    fn registration_read_like_java_topic_count() {
        // Unknown pattern, or a filter with nothing in it: static.
        let r =
            Registration::parse("/p", br#"{"pattern":"other","subscription":{"t":2}}"#).unwrap();
        assert_eq!(r.pattern, SubscriptionPattern::Static);
        assert_eq!(r.subscription, BTreeMap::from([("t".to_string(), 2)]));
        let r =
            Registration::parse("/p", br#"{"pattern":"black_list","subscription":{}}"#).unwrap();
        assert_eq!(r.pattern, SubscriptionPattern::Static);
        assert!(r.subscription.is_empty());
        // A filter uses the first entry in document order (`topMap.head`).
        let r = Registration::parse(
            "/p",
            br#"{"pattern":"white_list","subscription":{"z.*":2,"a.*":1}}"#,
        )
        .unwrap();
        assert_eq!(r.subscription, BTreeMap::from([("z.*".to_string(), 2)]));
        assert_eq!(
            subscription_document_order(
                "/p",
                br#"{"pattern":"static","subscription":{"z":2,"a":1,"m":1,"a":3}}"#
            )
            .unwrap(),
            ["z", "a", "m"]
        );
        // Repeated key: first position, last value.
        let r = Registration::parse(
            "/p",
            br#"{"pattern":"white_list","subscription":{"z.*":2,"a.*":1,"z.*":5}}"#,
        )
        .unwrap();
        assert_eq!(r.subscription, BTreeMap::from([("z.*".to_string(), 5)]));
        // Negative count: no streams.
        let r =
            Registration::parse("/p", br#"{"pattern":"static","subscription":{"t":-1}}"#).unwrap();
        assert_eq!(r.subscription["t"], 0);
        for bad in [
            &br#"{"subscription":{"t":1}}"#[..],
            br#"{"pattern":"static"}"#,
            br#"{"pattern":1,"subscription":{"t":1}}"#,
            br#"{"pattern":"static","subscription":{"t":1.5}}"#,
            br#"{"pattern":"static","subscription":{"t":3000000000}}"#,
            br#"{"pattern":"static","subscription":{"t":"2"}}"#,
            b"not json",
        ] {
            let err = Registration::parse("/consumers/g/ids/c", bad).unwrap_err();
            assert!(err.to_string().contains("/consumers/g/ids/c"), "{err}");
        }
    }

    #[test]
    fn topic_and_state() {
        let t = TopicReplicaAssignment::parse(
            "/brokers/topics/t",
            br#"{"version":1,"partitions":{"10":[1],"2":[2,1],"0":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(t.partition_ids(), vec![0, 2, 10]);
        assert_eq!(t.partitions[&2], vec![2, 1]);
        let empty =
            TopicReplicaAssignment::parse("/brokers/topics/t", br#"{"version":1}"#).unwrap();
        assert!(empty.partition_ids().is_empty());
        let err =
            TopicReplicaAssignment::parse("/brokers/topics/t", br#"{"partitions":{"x":[1]}}"#)
                .unwrap_err();
        assert!(err.to_string().contains("/brokers/topics/t"));
        let s = PartitionState::parse(
            "/s",
            br#"{"controller_epoch":1,"leader":2,"version":1,"leader_epoch":0,"isr":[2,1]}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            PartitionState {
                leader: 2,
                leader_epoch: 0,
                isr: vec![2, 1],
                controller_epoch: 1
            }
        );
        assert_eq!(s.leader(), Some(2));
        let none = PartitionState::parse("/s", br#"{"leader":-1,"isr":[]}"#).unwrap();
        assert_eq!(none.leader(), None);
        assert!(PartitionState::parse("/s", b"{}").is_err());
    }

    #[test]
    fn offsets_and_owners() {
        assert_eq!(parse_offset("/o", b"1234").unwrap(), 1234);
        assert_eq!(parse_offset("/o", b" 7\n").unwrap(), 7);
        let err = parse_offset("/consumers/g/offsets/t/0", b"abc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/consumers/g/offsets/t/0") && err.contains("abc"));
        assert!(parse_offset("/o", b"").is_err());
        assert_eq!(format_offset(42), "42");
        assert_eq!(format_offset(-1), "-1");
        assert_eq!(
            parse_owner("/o", b"grp_host-1700000000000-1a2b3c4d-0").unwrap(),
            "grp_host-1700000000000-1a2b3c4d-0"
        );
        let err = parse_owner("/consumers/g/owners/t/0", &[0xff]).unwrap_err();
        assert!(err.to_string().contains("/consumers/g/owners/t/0"));
    }
}
