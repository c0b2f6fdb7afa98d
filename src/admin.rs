//! Operator tools over a group's ZooKeeper state, as Kafka's old tools did them without a JVM:
//! the offset checker (committed offset, log end, lag, owner), offset export/import in the
//! `ExportZkOffsets` format, offset resets, and `kafka-consumer-groups --zookeeper` list,
//! describe and delete.
//!
//! Functions here return plain data; formatting belongs to the CLI. Writes refuse while a group
//! has live members unless forced, and imports validate every line before writing any.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka::client::{FetchOffset, KafkaClient};

use crate::fetch::call_detached;
use crate::offsets::kafka_store::{KafkaOffsetError, KafkaOffsetStore};
use crate::partition::TopicPartition;
use crate::zk::layout::{self, BrokerInfo};
use crate::zk::session::{ZkError, ZkSession, ZkSettings};

/// How long the tools wait for a broker's answer (the Java consumer's `socket.timeout.ms`
/// default); a silent broker then gives a clear error instead of a hang.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the operator tools.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// ZooKeeper failed or holds unreadable data.
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// A broker request failed.
    #[error("cannot read offsets of topic {topic} from the brokers ({brokers}): {message}")]
    Broker {
        /// The topic.
        topic: String,
        /// Broker addresses tried.
        brokers: String,
        /// What failed.
        message: String,
    },
    /// The group has live members and the operation needs it idle.
    #[error("group {group} has live members ({members}): stop them first, or pass --force")]
    GroupActive {
        /// The group.
        group: String,
        /// Live member ids.
        members: String,
    },
    /// An offsets file line is malformed; nothing was written.
    #[error("line {line}: {message}: {text:?} (nothing was written)")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// The group does not exist.
    #[error("group {0} does not exist")]
    NoSuchGroup(String),
    /// Kafka-stored offsets failed.
    #[error(transparent)]
    Kafka(#[from] KafkaOffsetError),
    /// No topic to work on.
    #[error("group {0} has no offsets in ZooKeeper to tell its topics: name them with --topic")]
    NoTopics(String),
}

/// One partition compared between the two offset stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreComparison {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in ZooKeeper (`None`: none).
    pub zookeeper: Option<i64>,
    /// Offset in Kafka (`None`: none).
    pub kafka: Option<i64>,
}

impl StoreComparison {
    /// Whether both stores hold the same position.
    pub fn agrees(&self) -> bool {
        self.zookeeper == self.kafka
    }
}

/// Which way `migrate` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateDirection {
    /// ZooKeeper offsets are written to Kafka storage.
    ToKafka,
    /// Kafka-stored offsets are written to ZooKeeper.
    ToZookeeper,
}

/// One partition as the offset checker shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionStatus {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset (`None`: never committed; the checker prints -1).
    pub offset: Option<i64>,
    /// Log end offset from the partition leader (`None`: unavailable).
    pub log_end: Option<i64>,
    /// `log_end - offset` when both are known (negative when the offset is past the end).
    pub lag: Option<i64>,
    /// Owning thread id (`None`: no owner node).
    pub owner: Option<String>,
}

/// How `offsets reset` moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The earliest offset still in the log.
    Earliest,
    /// The log end.
    Latest,
    /// A fixed offset (clamped into the log's range).
    Offset(i64),
    /// The committed offset moved by N (clamped into the log's range).
    ShiftBy(i64),
}

/// One line of a reset plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResetLine {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset before (`None`: none committed).
    pub from: Option<i64>,
    /// Offset after.
    pub to: i64,
}

/// A connection to a cluster's ZooKeeper (chroot included) for operator tools.
#[derive(Debug, Clone)]
pub struct Admin {
    zk: ZkSession,
}

impl Admin {
    /// Connects; `server_version` as for `zookeeper.server.version`.
    pub async fn connect(
        zookeeper: &str,
        server_version: (u32, u32, u32),
    ) -> Result<Self, AdminError> {
        let zk = ZkSession::connect(ZkSettings {
            connect: zookeeper.to_string(),
            session_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(10),
            server_version,
        })
        .await?;
        Ok(Admin { zk })
    }

    /// The tools over an existing session (a consumer's own).
    pub(crate) fn from_session(zk: ZkSession) -> Self {
        Admin { zk }
    }

    /// Every consumer group with a node under `/consumers`, sorted.
    pub async fn groups(&self) -> Result<Vec<String>, AdminError> {
        let mut groups = self.zk.children(layout::CONSUMERS_PATH).await?;
        groups.sort();
        Ok(groups)
    }

    /// Live members of a group (children of `/consumers/<group>/ids`), sorted.
    pub async fn members(&self, group: &str) -> Result<Vec<String>, AdminError> {
        let mut ids = self.zk.children(&layout::consumer_ids_path(group)).await?;
        ids.sort();
        Ok(ids)
    }

    async fn refuse_if_active(&self, group: &str, force: bool) -> Result<(), AdminError> {
        let members = self.members(group).await?;
        if !members.is_empty() && !force {
            return Err(AdminError::GroupActive {
                group: group.to_string(),
                members: members.join(", "),
            });
        }
        Ok(())
    }

    /// Topics with committed offsets or owners in the group.
    pub async fn group_topics(&self, group: &str) -> Result<Vec<String>, AdminError> {
        let mut topics = self.zk.children(&layout::offsets_path(group)).await?;
        topics.extend(self.zk.children(&layout::owners_path(group)).await?);
        topics.sort();
        topics.dedup();
        Ok(topics)
    }

    /// Committed offsets of a group (all its topics, or `topics`).
    pub async fn committed(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<BTreeMap<TopicPartition, i64>, AdminError> {
        let topics = if topics.is_empty() {
            self.group_topics(group).await?
        } else {
            topics.to_vec()
        };
        let mut out = BTreeMap::new();
        for topic in topics {
            let root = layout::offset_topic_path(group, &topic);
            for p in self.zk.children(&root).await? {
                let Ok(partition) = p.parse::<i32>() else {
                    continue;
                };
                let path = layout::offset_path(group, &topic, partition);
                if let Some(data) = self.zk.get_data(&path).await? {
                    out.insert(
                        TopicPartition::new(&topic, partition),
                        layout::parse_offset(&path, &data).map_err(ZkError::from)?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Partition ids of a topic from `/brokers/topics/<topic>` (empty when it does not exist).
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, AdminError> {
        let path = layout::topic_path(topic);
        match self.zk.get_data(&path).await? {
            Some(data) => Ok(layout::TopicReplicaAssignment::parse(&path, &data)
                .map_err(ZkError::from)?
                .partition_ids()),
            None => Ok(Vec::new()),
        }
    }

    /// Addresses of the live brokers.
    pub async fn brokers(&self) -> Result<Vec<String>, AdminError> {
        Ok(crate::zk::live_brokers(&self.zk)
            .await?
            .iter()
            .map(BrokerInfo::address)
            .collect())
    }

    /// Earliest or latest offsets of a topic's partitions, from the leaders.
    pub async fn log_offsets(
        &self,
        topic: &str,
        latest: bool,
    ) -> Result<BTreeMap<i32, i64>, AdminError> {
        let brokers = self.brokers().await?;
        let topic_name = topic.to_string();
        let joined = brokers.join(",");
        let result = call_detached(BROKER_TIMEOUT, move || {
            let mut client = KafkaClient::new(brokers);
            client
                .load_metadata(&[&topic_name])
                .map_err(|e| e.to_string())?;
            let which = if latest {
                FetchOffset::Latest
            } else {
                FetchOffset::Earliest
            };
            let answer = client
                .fetch_offsets(&[&topic_name], which)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(
                answer
                    .get(&topic_name)
                    .map(|ps| ps.iter().map(|p| (p.partition, p.offset)).collect())
                    .unwrap_or_default(),
            )
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        result.map_err(|message| AdminError::Broker {
            topic: topic.to_string(),
            brokers: joined,
            message,
        })
    }

    /// The offset checker: every partition of the group's topics (or `topics`).
    pub async fn check(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Vec<PartitionStatus>, AdminError> {
        let topics = if topics.is_empty() {
            self.group_topics(group).await?
        } else {
            topics.to_vec()
        };
        let committed = self.committed(group, &topics).await?;
        let mut out = Vec::new();
        for topic in &topics {
            let ends = match self.log_offsets(topic, true).await {
                Ok(ends) => ends,
                Err(e) => {
                    tracing::warn!(error = %e, "log end offsets unavailable");
                    BTreeMap::new()
                }
            };
            let mut partitions = self.partitions(topic).await?;
            for tp in committed.keys().filter(|tp| &tp.topic == topic) {
                if !partitions.contains(&tp.partition) {
                    partitions.push(tp.partition);
                }
            }
            partitions.sort_unstable();
            for partition in partitions {
                let offset = committed
                    .get(&TopicPartition::new(topic, partition))
                    .copied();
                let log_end = ends.get(&partition).copied();
                let owner_path = layout::owner_path(group, topic, partition);
                let owner = match self.zk.get_data(&owner_path).await? {
                    Some(data) => {
                        Some(layout::parse_owner(&owner_path, &data).map_err(ZkError::from)?)
                    }
                    None => None,
                };
                out.push(PartitionStatus {
                    topic: topic.clone(),
                    partition,
                    offset,
                    log_end,
                    lag: offset.zip(log_end).map(|(o, e)| e - o),
                    owner,
                });
            }
        }
        Ok(out)
    }

    /// The group's offsets as `ExportZkOffsets` lines: `/consumers/G/offsets/T/P:OFFSET`.
    pub async fn export(&self, group: &str) -> Result<Vec<(String, i64)>, AdminError> {
        Ok(self
            .committed(group, &[])
            .await?
            .into_iter()
            .map(|(tp, offset)| (layout::offset_path(group, &tp.topic, tp.partition), offset))
            .collect())
    }

    /// Writes offsets given as (path, offset) pairs (from [`parse_export`]); every path must be
    /// an offset node path. Refuses when a group named in the file has live members, unless
    /// `force`.
    pub async fn import(
        &self,
        entries: &[(String, i64)],
        force: bool,
    ) -> Result<usize, AdminError> {
        let mut groups: Vec<&str> = entries
            .iter()
            .filter_map(|(path, _)| path.strip_prefix("/consumers/")?.split('/').next())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for group in groups {
            self.refuse_if_active(group, force).await?;
        }
        for (path, offset) in entries {
            self.zk
                .write_persistent(path, layout::format_offset(*offset).as_bytes())
                .await?;
        }
        Ok(entries.len())
    }

    /// Computes (and with `execute`, writes) new offsets for a group's partitions.
    pub async fn reset(
        &self,
        group: &str,
        topics: &[String],
        to: ResetTo,
        execute: bool,
        force: bool,
    ) -> Result<Vec<ResetLine>, AdminError> {
        if execute {
            self.refuse_if_active(group, force).await?;
        }
        let topics = if topics.is_empty() {
            self.group_topics(group).await?
        } else {
            topics.to_vec()
        };
        let committed = self.committed(group, &topics).await?;
        let mut plan = Vec::new();
        for topic in &topics {
            let earliest = self.log_offsets(topic, false).await?;
            let latest = self.log_offsets(topic, true).await?;
            for (&partition, &end) in &latest {
                let start = earliest.get(&partition).copied().unwrap_or(0);
                let from = committed
                    .get(&TopicPartition::new(topic, partition))
                    .copied();
                let wanted = match to {
                    ResetTo::Earliest => start,
                    ResetTo::Latest => end,
                    ResetTo::Offset(n) => n,
                    ResetTo::ShiftBy(n) => from.unwrap_or(start).saturating_add(n),
                };
                plan.push(ResetLine {
                    topic: topic.clone(),
                    partition,
                    from,
                    to: wanted.clamp(start, end),
                });
            }
        }
        if execute {
            for line in &plan {
                let path = layout::offset_path(group, &line.topic, line.partition);
                self.zk
                    .write_persistent(&path, layout::format_offset(line.to).as_bytes())
                    .await?;
            }
        }
        Ok(plan)
    }

    async fn all_partitions(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Vec<TopicPartition>, AdminError> {
        let topics = if topics.is_empty() {
            self.group_topics(group).await?
        } else {
            topics.to_vec()
        };
        if topics.is_empty() {
            return Err(AdminError::NoTopics(group.to_string()));
        }
        let mut out = Vec::new();
        for topic in topics {
            for p in self.partitions(&topic).await? {
                out.push(TopicPartition::new(&topic, p));
            }
        }
        Ok(out)
    }

    fn kafka_store(&self, group: &str) -> KafkaOffsetStore {
        KafkaOffsetStore::new(self.zk.clone(), group, "zkconsumer-admin", BROKER_TIMEOUT)
    }

    /// Both stores' offsets of every partition of the group's topics (or `topics`).
    pub async fn compare_stores(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Vec<StoreComparison>, AdminError> {
        let partitions = self.all_partitions(group, topics).await?;
        let zk = self.committed(group, topics).await?;
        let kafka = self.kafka_store(group).fetch_many(&partitions).await?;
        Ok(partitions
            .into_iter()
            .map(|tp| StoreComparison {
                zookeeper: zk.get(&tp).copied(),
                kafka: kafka.get(&tp).copied().flatten(),
                topic: tp.topic,
                partition: tp.partition,
            })
            .collect())
    }

    /// Copies a group's positions from one store to the other; refuses while the group has live
    /// members unless `force`. Returns what was copied (partitions without a source offset are
    /// left alone).
    pub async fn migrate(
        &self,
        group: &str,
        topics: &[String],
        direction: MigrateDirection,
        force: bool,
    ) -> Result<Vec<(TopicPartition, i64)>, AdminError> {
        self.refuse_if_active(group, force).await?;
        let rows = self.compare_stores(group, topics).await?;
        let copy: Vec<(TopicPartition, i64)> = rows
            .iter()
            .filter_map(|r| {
                let source = match direction {
                    MigrateDirection::ToKafka => r.zookeeper,
                    MigrateDirection::ToZookeeper => r.kafka,
                };
                source.map(|o| (TopicPartition::new(&r.topic, r.partition), o))
            })
            .collect();
        match direction {
            MigrateDirection::ToKafka => {
                self.kafka_store(group).commit_many(&copy).await?;
            }
            MigrateDirection::ToZookeeper => {
                for (tp, offset) in &copy {
                    let path = layout::offset_path(group, &tp.topic, tp.partition);
                    self.zk
                        .write_persistent(&path, layout::format_offset(*offset).as_bytes())
                        .await?;
                }
            }
        }
        Ok(copy)
    }

    /// Deletes a group (or only its offsets of one topic); refuses while it has live members.
    pub async fn delete_group(&self, group: &str, topic: Option<&str>) -> Result<(), AdminError> {
        if self
            .zk
            .get_data(&layout::group_path(group))
            .await?
            .is_none()
        {
            return Err(AdminError::NoSuchGroup(group.to_string()));
        }
        self.refuse_if_active(group, false).await?;
        match topic {
            Some(t) => {
                self.zk
                    .delete_recursive(&layout::offset_topic_path(group, t))
                    .await?;
                self.zk
                    .delete_recursive(&layout::owner_topic_path(group, t))
                    .await?;
            }
            None => self.zk.delete_recursive(&layout::group_path(group)).await?,
        }
        Ok(())
    }
}

/// Parses an offsets file: the old tools' `path:offset` lines, or JSON (an object mapping path to
/// offset). Every line is checked before anything is returned.
pub fn parse_export(text: &str) -> Result<Vec<(String, i64)>, AdminError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let map: BTreeMap<String, i64> =
            serde_json::from_str(trimmed).map_err(|e| AdminError::BadLine {
                line: e.line(),
                text: text
                    .lines()
                    .nth(e.line().saturating_sub(1))
                    .unwrap_or("")
                    .to_string(),
                message: format!("invalid JSON: {e}"),
            })?;
        let mut out = Vec::new();
        for (i, (path, offset)) in map.into_iter().enumerate() {
            check_entry(i + 1, &format!("{path}:{offset}"), &path, offset)?;
            out.push((path, offset));
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: &str| AdminError::BadLine {
            line: i + 1,
            text: raw.to_string(),
            message: message.to_string(),
        };
        let (path, offset) = line
            .rsplit_once(':')
            .ok_or_else(|| bad("expected PATH:OFFSET"))?;
        let offset: i64 = offset
            .trim()
            .parse()
            .map_err(|_| bad("the offset is not a number"))?;
        check_entry(i + 1, raw, path.trim(), offset)?;
        out.push((path.trim().to_string(), offset));
    }
    Ok(out)
}

fn check_entry(line: usize, text: &str, path: &str, offset: i64) -> Result<(), AdminError> {
    let bad = |message: &str| AdminError::BadLine {
        line,
        text: text.to_string(),
        message: message.to_string(),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let shape_ok = parts.len() == 6
        && parts[0].is_empty()
        && parts[1] == "consumers"
        && !parts[2].is_empty()
        && parts[3] == "offsets"
        && !parts[4].is_empty()
        && parts[5].parse::<i32>().is_ok_and(|p| p >= 0);
    if !shape_ok {
        return Err(bad(
            "expected a path /consumers/GROUP/offsets/TOPIC/PARTITION",
        ));
    }
    if offset < 0 {
        return Err(bad("offsets are not negative"));
    }
    Ok(())
}

/// Formats export lines in the old tools' format.
pub fn format_export(entries: &[(String, i64)]) -> String {
    entries
        .iter()
        .map(|(path, offset)| format!("{path}:{offset}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_format_round_trips() {
        let entries = vec![
            ("/consumers/g/offsets/t/0".to_string(), 12),
            ("/consumers/g/offsets/t/1".to_string(), 0),
        ];
        let text = format_export(&entries);
        assert_eq!(
            text,
            "/consumers/g/offsets/t/0:12\n/consumers/g/offsets/t/1:0\n"
        );
        assert_eq!(parse_export(&text).unwrap(), entries);
        let json = r#"{"/consumers/g/offsets/t/0": 12, "/consumers/g/offsets/t/1": 0}"#;
        assert_eq!(parse_export(json).unwrap(), entries);
    }

    #[test]
    fn bad_lines_are_named() {
        let text = "/consumers/g/offsets/t/0:12\n/consumers/g/offsets/t/x:3\n";
        let err = parse_export(text).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("/t/x:3"), "{err}");
        let err = parse_export("/consumers/g/offsets/t/0:twelve")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("not a number"),
            "{err}"
        );
        let err = parse_export("/brokers/ids/1:3").unwrap_err().to_string();
        assert!(err.contains("/consumers/GROUP"), "{err}");
        assert!(parse_export("/consumers/g/offsets/t/0:-1").is_err());
    }
}
