//! Offset stores: where a group's positions live.
//!
//! [`ZkOffsetStore`] reads and writes `/consumers/<group>/offsets/<topic>/<partition>` exactly as
//! the Java consumer does: the *next* offset to consume as decimal ASCII.
//! [`kafka_store::KafkaOffsetStore`] keeps them in the brokers (`offsets.storage=kafka`), and
//! [`GroupOffsets`] applies the Java semantics of `offsets.storage` and `dual.commit.enabled`.
//! Deciding *what* to commit (processed positions, unchanged offsets skipped) is the
//! coordinator's job, not this module's.

pub mod kafka_store;

use std::collections::BTreeMap;

use crate::config::{ConsumerConfig, OffsetsStorage};
use kafka_store::{KafkaOffsetError, KafkaOffsetStore};

use crate::partition::TopicPartition;
use crate::zk::layout::{self, LayoutError};
use crate::zk::session::{ZkError, ZkSession};

/// Offsets of one group in ZooKeeper.
#[derive(Debug, Clone)]
pub struct ZkOffsetStore {
    zk: ZkSession,
    group: String,
}

impl ZkOffsetStore {
    /// A store for `group` over an open session.
    pub fn new(zk: ZkSession, group: &str) -> Self {
        ZkOffsetStore {
            zk,
            group: group.to_string(),
        }
    }

    /// The committed offset of a partition; `None` when none was ever committed. A node that
    /// does not hold a decimal offset is an error naming the path and its data.
    pub async fn fetch(&self, tp: &TopicPartition) -> Result<Option<i64>, ZkError> {
        let path = layout::offset_path(&self.group, &tp.topic, tp.partition);
        match self.zk.get_data(&path).await? {
            None => Ok(None),
            Some(data) => Ok(Some(layout::parse_offset(&path, &data)?)),
        }
    }

    /// Writes the next offset to consume for a partition.
    pub async fn commit(&self, tp: &TopicPartition, offset: i64) -> Result<(), ZkError> {
        let path = layout::offset_path(&self.group, &tp.topic, tp.partition);
        self.zk
            .write_persistent(&path, layout::format_offset(offset).as_bytes())
            .await
    }
}

/// Errors of a group's offset storage.
#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    /// ZooKeeper storage failed, or holds an unreadable offset.
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// Kafka storage failed.
    #[error(transparent)]
    Kafka(#[from] KafkaOffsetError),
}

/// The offset storage of a consumer, per `offsets.storage` and `dual.commit.enabled` (spec §6):
/// with Kafka storage, commits go to Kafka (and ZooKeeper too when dual commit is on); reads take
/// the Kafka offset, or the larger of the two when dual commit is on — the official migration
/// path from ZooKeeper to Kafka storage.
#[derive(Debug, Clone)]
pub struct GroupOffsets {
    zk: ZkOffsetStore,
    kafka: Option<KafkaOffsetStore>,
    dual: bool,
}

impl GroupOffsets {
    /// The storage a configuration asks for.
    pub fn for_config(zk: ZkSession, config: &ConsumerConfig) -> Self {
        let kafka = (config.offsets_storage == OffsetsStorage::Kafka).then(|| {
            KafkaOffsetStore::new(
                zk.clone(),
                &config.group_id,
                &config.client_id,
                config.offsets_channel_socket_timeout,
            )
        });
        GroupOffsets {
            zk: ZkOffsetStore::new(zk, &config.group_id),
            kafka,
            dual: config.dual_commit_enabled,
        }
    }

    /// Whether offsets live in ZooKeeper only (`offsets.storage=zookeeper`): then they are read
    /// and written on the member's own ZooKeeper session, in order with its other requests.
    pub fn zookeeper_only(&self) -> bool {
        self.kafka.is_none()
    }

    /// The committed offset of a partition (`None`: none). A corrupt ZooKeeper offset is an
    /// error naming the node ([`ZkError::Layout`]).
    pub async fn fetch(&self, tp: &TopicPartition) -> Result<Option<i64>, OffsetStoreError> {
        match &self.kafka {
            None => Ok(self.zk.fetch(tp).await?),
            Some(kafka) => {
                let from_kafka = kafka.fetch(tp).await?;
                if !self.dual {
                    return Ok(from_kafka);
                }
                let from_zk = self.zk.fetch(tp).await?;
                Ok(from_kafka.max(from_zk))
            }
        }
    }

    /// The committed offsets of several partitions, as [`fetch`](Self::fetch) reads them one by
    /// one, but with Kafka storage in one OffsetFetch request (one client, one coordinator
    /// lookup) instead of one per partition. A ZooKeeper node that does not hold an offset is
    /// that partition's own error ([`crate::zk::layout::LayoutError`]); any other failure fails
    /// the whole read.
    pub async fn fetch_many(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Result<Option<i64>, LayoutError>>, OffsetStoreError> {
        let from_kafka = match &self.kafka {
            Some(kafka) => Some(kafka.fetch_many(partitions).await?),
            None => None,
        };
        let zk_offsets = if from_kafka.is_some() && !self.dual {
            Vec::new()
        } else {
            // Pipelined on the session's connection: one round trip for all of them.
            futures::future::join_all(partitions.iter().map(|tp| self.zk.fetch(tp))).await
        };
        let mut zk_offsets = zk_offsets.into_iter();
        let mut out = BTreeMap::new();
        for tp in partitions {
            let kafka_offset = from_kafka
                .as_ref()
                .and_then(|k| k.get(tp).copied().flatten());
            let offset = match zk_offsets.next() {
                None => Ok(kafka_offset),
                Some(Ok(zk_offset)) => Ok(zk_offset.max(kafka_offset)),
                Some(Err(ZkError::Layout(e))) => Err(e),
                Some(Err(e)) => return Err(e.into()),
            };
            out.insert(tp.clone(), offset);
        }
        Ok(out)
    }

    /// Writes the next offsets to consume.
    pub async fn commit_many(
        &self,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), OffsetStoreError> {
        if let Some(kafka) = &self.kafka {
            kafka.commit_many(offsets).await?;
            if !self.dual {
                return Ok(());
            }
        }
        // Pipelined on the session's connection: one round trip for all of them (a release
        // commits every partition that moves before deleting its owner node, and the members
        // waiting for those nodes wait for this).
        let written = futures::future::join_all(
            offsets
                .iter()
                .map(|(tp, offset)| self.zk.commit(tp, *offset)),
        )
        .await;
        for result in written {
            result?;
        }
        Ok(())
    }
}
