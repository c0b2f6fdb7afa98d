//! The ZooKeeper data layout shared with Kafka and the Java consumer: node paths and the JSON
//! in them (spec §1). Pure: parses and formats bytes, never talks to ZooKeeper.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// Host clients connect to.
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
}

impl BrokerInfo {
    /// Parses broker JSON version 1 (host/port) or 2 (`endpoints`, PLAINTEXT preferred).
    pub fn parse(id: i32, path: &str, data: &[u8]) -> Result<Self, LayoutError> {
        let json: BrokerJson =
            serde_json::from_slice(data).map_err(|e| json_error(path, data, e))?;
        let invalid = |message: String| LayoutError::Invalid {
            path: path.to_string(),
            message,
        };
        for endpoint in &json.endpoints {
            if let Some(rest) = endpoint.strip_prefix("PLAINTEXT://") {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| invalid(format!("endpoint {endpoint:?} has no port")))?;
                let port = port
                    .parse()
                    .map_err(|_| invalid(format!("endpoint {endpoint:?} has a bad port")))?;
                return Ok(BrokerInfo {
                    id,
                    host: host.to_string(),
                    port,
                });
            }
        }
        match (json.host, json.port) {
            (Some(host), Some(port)) if !host.is_empty() => Ok(BrokerInfo {
                id,
                host,
                port: u16::try_from(port)
                    .map_err(|_| invalid(format!("port {port} out of range")))?,
            }),
            _ => Err(invalid(
                "no PLAINTEXT endpoint and no host/port fields".to_string(),
            )),
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
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
    partitions: BTreeMap<String, Vec<i32>>,
}

impl TopicReplicaAssignment {
    /// Parses `{"version":1,"partitions":{"0":[2,1]}}`.
    pub fn parse(path: &str, data: &[u8]) -> Result<Self, LayoutError> {
        let json: TopicJson =
            serde_json::from_slice(data).map_err(|e| json_error(path, data, e))?;
        let mut partitions = BTreeMap::new();
        for (p, replicas) in json.partitions {
            let id = p.parse::<i32>().map_err(|_| LayoutError::Invalid {
                path: path.to_string(),
                message: format!("partition id {p:?} is not a number"),
            })?;
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
        serde_json::from_slice(data).map_err(|e| json_error(path, data, e))
    }
}

/// How a member's subscription map is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A member's registration node, `/consumers/<group>/ids/<consumerId>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// Always 1.
    pub version: i32,
    /// Topic (or regex) -> stream count.
    pub subscription: BTreeMap<String, u32>,
    /// How to read `subscription`.
    pub pattern: SubscriptionPattern,
    /// Registration time, epoch millis as a string.
    pub timestamp: String,
}

#[derive(Deserialize)]
struct RegistrationJson {
    #[serde(default = "one")]
    version: i32,
    subscription: BTreeMap<String, u32>,
    pattern: SubscriptionPattern,
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
}

fn one() -> i32 {
    1
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

    /// The JSON written to ZooKeeper, fields in the Java consumer's order.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a registration, tolerating field order, extra fields and a numeric timestamp.
    pub fn parse(path: &str, data: &[u8]) -> Result<Self, LayoutError> {
        let json: RegistrationJson =
            serde_json::from_slice(data).map_err(|e| json_error(path, data, e))?;
        let timestamp = match json.timestamp {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        Ok(Registration {
            version: json.version,
            subscription: json.subscription,
            pattern: json.pattern,
            timestamp,
        })
    }
}

/// Parses an offset node: decimal ASCII (surrounding whitespace allowed).
pub fn parse_offset(path: &str, data: &[u8]) -> Result<i64, LayoutError> {
    let text = String::from_utf8_lossy(data);
    text.trim()
        .parse::<i64>()
        .map_err(|_| LayoutError::Invalid {
            path: path.to_string(),
            message: format!("expected a decimal offset, found {:?}", text),
        })
}

/// Formats an offset as the Java consumer writes it.
pub fn format_offset(offset: i64) -> String {
    offset.to_string()
}

/// Parses an owner node: the owning thread id as plain text.
pub fn parse_owner(path: &str, data: &[u8]) -> Result<String, LayoutError> {
    let text = std::str::from_utf8(data).map_err(|_| LayoutError::Invalid {
        path: path.to_string(),
        message: "owner is not UTF-8".to_string(),
    })?;
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_json_v1_and_v2() {
        let v1 = br#"{"jmx_port":-1,"timestamp":"1700000000000","host":"10.0.0.5","version":1,"port":9092}"#;
        let b = BrokerInfo::parse(1, "/brokers/ids/1", v1).unwrap();
        assert_eq!(b.address(), "10.0.0.5:9092");
        let v2 = br#"{"jmx_port":-1,"timestamp":"1","endpoints":["PLAINTEXT://10.0.0.6:9093"],"host":"10.0.0.6","version":2,"port":9093}"#;
        assert_eq!(
            BrokerInfo::parse(2, "/p", v2).unwrap().address(),
            "10.0.0.6:9093"
        );
        let err = BrokerInfo::parse(3, "/brokers/ids/3", b"{}").unwrap_err();
        assert!(err.to_string().contains("/brokers/ids/3"));
        let err = BrokerInfo::parse(3, "/brokers/ids/3", b"garbage").unwrap_err();
        assert!(err.to_string().contains("/brokers/ids/3"));
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
    fn topic_and_state() {
        let t = TopicReplicaAssignment::parse(
            "/brokers/topics/t",
            br#"{"version":1,"partitions":{"10":[1],"2":[2,1],"0":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(t.partition_ids(), vec![0, 2, 10]);
        let s = PartitionState::parse(
            "/s",
            br#"{"controller_epoch":1,"leader":2,"version":1,"leader_epoch":0,"isr":[2,1]}"#,
        )
        .unwrap();
        assert_eq!(s.leader, 2);
        assert_eq!(s.isr, vec![2, 1]);
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("/o", b"1234").unwrap(), 1234);
        assert_eq!(parse_offset("/o", b" 7\n").unwrap(), 7);
        let err = parse_offset("/consumers/g/offsets/t/0", b"abc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/consumers/g/offsets/t/0") && err.contains("abc"));
        assert_eq!(format_offset(42), "42");
        assert_eq!(offset_path("g", "t", 3), "/consumers/g/offsets/t/3");
        assert_eq!(owner_path("g", "t", 3), "/consumers/g/owners/t/3");
    }
}
