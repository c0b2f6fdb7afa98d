//! Per-partition runtime state shared by the coordinator, the fetchers and the streams.
//!
//! A [`PartitionTopicInfo`] exists for each partition this member owns in the current
//! assignment. The fetcher reads and advances its *fetch* position; the stream advances its
//! *consumed* position when the application has finished with a message; the committer
//! reads the consumed position. When ownership is released the info is *revoked*, so data
//! still sitting in a stream's queue for it is dropped instead of delivered (no zombie
//! deliveries after a rebalance). This module never does I/O.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// Sentinel for "no offset known" (the Java consumer's `InvalidOffset`).
pub const INVALID_OFFSET: i64 = -1;

/// A topic and partition pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
}

impl TopicPartition {
    /// Creates a topic-partition pair.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Runtime state of one owned partition (Java's `PartitionTopicInfo`).
#[derive(Debug)]
pub struct PartitionTopicInfo {
    /// Topic name, shared with every message of this partition.
    pub topic: Arc<str>,
    /// Partition id.
    pub partition: i32,
    /// Index of the stream this partition's data goes to.
    pub stream_index: usize,
    consumed: AtomicI64,
    fetched: AtomicI64,
    high_watermark: AtomicI64,
    revoked: AtomicBool,
}

impl PartitionTopicInfo {
    /// Creates the state for a partition whose next offset to consume is `offset`
    /// ([`INVALID_OFFSET`] when none is committed: the fetcher then resets it per policy).
    pub fn new(topic: &str, partition: i32, stream_index: usize, offset: i64) -> Self {
        PartitionTopicInfo {
            topic: Arc::from(topic),
            partition,
            stream_index,
            consumed: AtomicI64::new(offset),
            fetched: AtomicI64::new(offset),
            high_watermark: AtomicI64::new(INVALID_OFFSET),
            revoked: AtomicBool::new(false),
        }
    }

    /// The topic-partition pair this state belongs to.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(&*self.topic, self.partition)
    }

    /// Next offset the application has not finished with: the offset to commit.
    pub fn consumed_offset(&self) -> i64 {
        self.consumed.load(Ordering::Acquire)
    }

    /// Next offset the fetcher will request.
    pub fn fetch_offset(&self) -> i64 {
        self.fetched.load(Ordering::Acquire)
    }

    /// Records that the application has finished with every message before `next_offset`.
    /// Never moves the position backwards.
    pub fn mark_consumed(&self, next_offset: i64) {
        self.consumed.fetch_max(next_offset, Ordering::AcqRel);
    }

    /// Records that data up to (not including) `next_offset` has been fetched and queued.
    pub fn mark_fetched(&self, next_offset: i64) {
        self.fetched.store(next_offset, Ordering::Release);
    }

    /// Moves both positions to `offset` after an `auto.offset.reset` (no committed offset, or
    /// the committed one is out of the log's range).
    pub fn reset_offsets(&self, offset: i64) {
        self.fetched.store(offset, Ordering::Release);
        self.consumed.store(offset, Ordering::Release);
    }

    /// Records the log end offset (high watermark) the leader reported in its last fetch answer.
    pub fn set_high_watermark(&self, offset: i64) {
        self.high_watermark.store(offset, Ordering::Release);
    }

    /// Last reported log end offset ([`INVALID_OFFSET`] before the first fetch answer).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Messages between the processed position and the log end, when both are known.
    pub fn lag(&self) -> Option<i64> {
        let (end, consumed) = (self.high_watermark(), self.consumed_offset());
        (end >= 0 && consumed >= 0).then(|| end - consumed)
    }

    /// Marks the partition as no longer owned: queued data for it must not be delivered.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    /// Whether this member still owns the partition in the assignment this state belongs to.
    pub fn is_current(&self) -> bool {
        !self.revoked.load(Ordering::Acquire)
    }
}

/// One message as delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic the message was read from.
    pub topic: Arc<str>,
    /// Partition the message was read from.
    pub partition: i32,
    /// Offset of this message in its partition.
    pub offset: i64,
    /// Message key; `None` when the key is null or empty (the wire client does not tell them apart).
    pub key: Option<Vec<u8>>,
    /// Message payload.
    pub value: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_never_moves_backwards_but_reset_does() {
        let info = PartitionTopicInfo::new("t", 0, 0, 10);
        info.mark_consumed(15);
        info.mark_consumed(12);
        assert_eq!(info.consumed_offset(), 15);
        info.reset_offsets(3);
        assert_eq!(info.consumed_offset(), 3);
        assert_eq!(info.fetch_offset(), 3);
    }

    #[test]
    fn revoke_makes_info_stale() {
        let info = PartitionTopicInfo::new("t", 1, 0, INVALID_OFFSET);
        assert!(info.is_current());
        info.revoke();
        assert!(!info.is_current());
    }
}
