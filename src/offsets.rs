//! Offset stores: where a group's positions live.
//!
//! [`ZkOffsetStore`] reads and writes `/consumers/<group>/offsets/<topic>/<partition>` exactly as
//! the Java consumer does: the *next* offset to consume as decimal ASCII. Deciding *what* to
//! commit (processed positions, unchanged offsets skipped) is the coordinator's job, not this
//! module's.

use crate::partition::TopicPartition;
use crate::zk::layout;
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
