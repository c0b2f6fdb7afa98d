//! Kafka-stored offsets (`offsets.storage=kafka`, Kafka 0.8.2+): the group coordinator found
//! with a ConsumerMetadata (GroupCoordinator) request, OffsetCommit v1 and OffsetFetch v1, as
//! the Java consumer uses them. The `kafka` crate is blocking, so every call runs on the
//! blocking pool with a fresh client; broker addresses are read from ZooKeeper each time, so
//! the store follows broker changes.
//!
//! Every call is bounded by `offsets.channel.socket.timeout.ms` (`call_detached`): a call
//! without an answer by then fails with an error naming that key, but its thread is left to
//! finish its socket call, so its request may still reach the broker later. For a fetch that
//! is harmless; for a commit it is not: an abandoned commit landing after a newer one would
//! move the stored offsets back. So commits of one store (one consumer: its clones share the
//! turn) take turns, and a commit's turn ends only when its thread has ended, answered or
//! not: a newer commit waits for an older one still in flight (within the same timeout) and
//! fails, sending nothing, when that one is still out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka::client::{CommitOffset, FetchGroupOffset, GroupOffsetStorage, KafkaClient};

use crate::fetch::{call_detached, CallError};
use crate::partition::TopicPartition;
use crate::zk::layout::BrokerInfo;
use crate::zk::session::{ZkError, ZkSession};

/// Errors of the Kafka offset store; each names the group.
#[derive(Debug, thiserror::Error)]
pub enum KafkaOffsetError {
    /// Broker addresses could not be read.
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// A broker request failed.
    #[error("Kafka-stored offsets of group {group} ({operation}) failed via brokers {brokers}: {message}")]
    Request {
        /// The group.
        group: String,
        /// `commit` or `fetch`.
        operation: &'static str,
        /// Brokers tried.
        brokers: String,
        /// What failed.
        message: String,
    },
    /// No answer within `offsets.channel.socket.timeout.ms`.
    #[error("Kafka-stored offsets of group {group} ({operation}): no answer from brokers {brokers} within {} ms (offsets.channel.socket.timeout.ms)", .timeout.as_millis())]
    TimedOut {
        /// The group.
        group: String,
        /// `commit` or `fetch`.
        operation: &'static str,
        /// Brokers tried.
        brokers: String,
        /// `offsets.channel.socket.timeout.ms`.
        timeout: Duration,
    },
    /// A commit not sent because an earlier one of this consumer is still without an answer
    /// (it could land after this one and move the offsets back).
    #[error("Kafka offset commit of group {group} not sent: an earlier commit still has no answer after {} ms (offsets.channel.socket.timeout.ms); sent now, the earlier one could land last and move the offsets back", .timeout.as_millis())]
    EarlierCommitInFlight {
        /// The group.
        group: String,
        /// `offsets.channel.socket.timeout.ms`.
        timeout: Duration,
    },
}

/// Offsets of one group kept by the brokers.
#[derive(Debug, Clone)]
pub struct KafkaOffsetStore {
    zk: ZkSession,
    group: String,
    client_id: String,
    timeout: Duration,
    /// Held by a commit until its thread ends (see the module docs).
    commit_turn: Arc<tokio::sync::Mutex<()>>,
}

impl KafkaOffsetStore {
    /// A store for `group`; brokers are found through `zk`. A request without an answer
    /// within `timeout` (`offsets.channel.socket.timeout.ms`) fails.
    pub fn new(zk: ZkSession, group: &str, client_id: &str, timeout: Duration) -> Self {
        KafkaOffsetStore {
            zk,
            group: group.to_string(),
            client_id: client_id.to_string(),
            timeout,
            commit_turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    async fn brokers(&self) -> Result<Vec<String>, KafkaOffsetError> {
        Ok(crate::zk::live_brokers(&self.zk)
            .await?
            .iter()
            .map(BrokerInfo::address)
            .collect())
    }

    /// Runs `f` on a fresh client on a detached thread, waiting at most `timeout`.
    async fn with_client<T, F>(
        &self,
        operation: &'static str,
        topics: Vec<String>,
        timeout: Duration,
        f: F,
    ) -> Result<T, KafkaOffsetError>
    where
        T: Send + 'static,
        F: FnOnce(&mut KafkaClient, &str) -> kafka::Result<T> + Send + 'static,
    {
        let brokers = self.brokers().await?;
        let joined = brokers.join(",");
        let group = self.group.clone();
        let client_id = self.client_id.clone();
        let result = call_detached(timeout, move || {
            let mut client = KafkaClient::new(brokers);
            client.set_client_id(client_id);
            client.set_group_offset_storage(Some(GroupOffsetStorage::Kafka));
            client.load_metadata(&topics)?;
            f(&mut client, &group)
        })
        .await;
        let message = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e.to_string(),
            Err(CallError::TimedOut(_)) => {
                return Err(KafkaOffsetError::TimedOut {
                    group: self.group.clone(),
                    operation,
                    brokers: joined,
                    timeout: self.timeout,
                })
            }
            Err(e) => e.to_string(),
        };
        Err(KafkaOffsetError::Request {
            group: self.group.clone(),
            operation,
            brokers: joined,
            message,
        })
    }

    /// Committed offsets of the given partitions (`None`: none committed).
    pub async fn fetch_many(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, KafkaOffsetError> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let wanted = partitions.to_vec();
        let mut topics: Vec<String> = wanted.iter().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        self.with_client("fetch", topics, self.timeout, move |client, group| {
            let requests: Vec<FetchGroupOffset<'_>> = wanted
                .iter()
                .map(|tp| FetchGroupOffset::new(&tp.topic, tp.partition))
                .collect();
            let answer = client.fetch_group_offsets(group, &requests)?;
            let mut out = BTreeMap::new();
            for tp in &wanted {
                let offset = answer
                    .get(&tp.topic)
                    .and_then(|ps| ps.iter().find(|p| p.partition == tp.partition))
                    .map(|p| p.offset)
                    .filter(|&o| o >= 0);
                out.insert(tp.clone(), offset);
            }
            Ok(out)
        })
        .await
    }

    /// The committed offset of one partition.
    pub async fn fetch(&self, tp: &TopicPartition) -> Result<Option<i64>, KafkaOffsetError> {
        Ok(self
            .fetch_many(std::slice::from_ref(tp))
            .await?
            .remove(tp)
            .flatten())
    }

    /// Commits offsets (the next offset to consume) for the given partitions, after any
    /// earlier commit of this store has ended (see the module docs); the wait and the call
    /// share one `offsets.channel.socket.timeout.ms`.
    pub async fn commit_many(
        &self,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), KafkaOffsetError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let offsets = offsets.to_vec();
        let mut topics: Vec<String> = offsets.iter().map(|(tp, _)| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let started = Instant::now();
        let Ok(turn) =
            tokio::time::timeout(self.timeout, self.commit_turn.clone().lock_owned()).await
        else {
            return Err(KafkaOffsetError::EarlierCommitInFlight {
                group: self.group.clone(),
                timeout: self.timeout,
            });
        };
        let left = self.timeout.saturating_sub(started.elapsed());
        self.with_client("commit", topics, left, move |client, group| {
            // The turn ends with this thread, not with the caller's wait.
            let _turn = turn;
            let commits: Vec<CommitOffset<'_>> = offsets
                .iter()
                .map(|(tp, o)| CommitOffset::new(&tp.topic, tp.partition, *o))
                .collect();
            client.commit_offsets(group, &commits)
        })
        .await
    }
}
