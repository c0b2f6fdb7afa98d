//! Per-partition runtime state shared by the coordinator, the fetchers and the streams.
//!
//! A [`PartitionTopicInfo`] exists for each partition this member owns in the current
//! assignment. The fetcher reads and advances its *fetch* position; the stream advances its
//! *consumed* position when the application has finished with a message; the committer
//! reads the consumed position. When ownership is released the info is *revoked*, so data
//! still sitting in a stream's queue for it is dropped instead of delivered (no zombie
//! deliveries after a rebalance). This module never does I/O.
//!
//! An `auto.offset.reset` starts a new *epoch*: data fetched before it (still queued, or held
//! by the application) can no longer move the processed position, which belongs to the new
//! range. With explicit acknowledgement (`auto.ack=false`) the processed position is the
//! lowest offset handed out and not yet acknowledged (acknowledgements may come in any
//! order), or the next offset after everything handed out when all are acknowledged.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Wakes whoever waits for the revocation (a fetcher blocked on this partition's full
    /// stream queue).
    revoked_wake: tokio::sync::Notify,
    /// Paused by the application: not fetched, and what was fetched is held back.
    paused: AtomicBool,
    /// Bumped by every reset; read without the lock by the stream's per-message check.
    epoch: AtomicU64,
    /// Updates of `consumed` and `epoch` happen under this lock, so a reset and a stale
    /// acknowledgement cannot interleave.
    progress: Mutex<Progress>,
}

#[derive(Debug)]
struct Progress {
    /// Next offset after the highest one handed out in this epoch.
    handed_high: i64,
    /// Explicit acknowledgement: offsets handed out and not yet acknowledged.
    unfinished: BTreeSet<i64>,
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
            revoked_wake: tokio::sync::Notify::new(),
            paused: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            progress: Mutex::new(Progress {
                handed_high: offset,
                unfinished: BTreeSet::new(),
            }),
        }
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        match self.progress.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The current epoch (bumped by every [`reset_offsets`](Self::reset_offsets)). Data
    /// fetched in an older epoch must not be delivered or acknowledged.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records that messages at `offsets` (ascending) fetched in `epoch` were handed to the
    /// application; with `explicit`, each stays unfinished until [`ack_one`](Self::ack_one).
    /// `false` (nothing recorded) when `epoch` is over: the messages must not be delivered.
    pub fn hand_out(&self, epoch: u64, offsets: &[i64], explicit: bool) -> bool {
        let mut p = self.progress();
        if self.epoch() != epoch {
            return false;
        }
        if let Some(&last) = offsets.last() {
            p.handed_high = p.handed_high.max(last + 1);
        }
        if explicit {
            p.unfinished.extend(offsets.iter().copied());
        }
        true
    }

    /// Records that the application finished with everything before `next_offset`, for data
    /// of `epoch` (ignored when a reset ended that epoch). Never moves the position backwards.
    pub fn mark_consumed_at(&self, epoch: u64, next_offset: i64) {
        let _p = self.progress();
        if self.epoch() == epoch {
            self.consumed.fetch_max(next_offset, Ordering::AcqRel);
        }
    }

    /// Cumulative acknowledgement through `offset` (the message at `offset` and every earlier
    /// one) of a message fetched in `epoch`. Ignored for a message of an earlier epoch (from
    /// before a reset, whatever its offset) or an offset not handed out yet.
    pub fn ack_through(&self, epoch: u64, offset: i64) {
        let p = self.progress();
        if self.epoch() == epoch && offset < p.handed_high {
            self.consumed.fetch_max(offset + 1, Ordering::AcqRel);
        }
    }

    /// Explicit acknowledgement of the message at `offset` only, fetched in `epoch`. The
    /// processed position moves to the lowest offset still unfinished (or past everything
    /// handed out). Ignored for a message of an earlier epoch (the new range's message at the
    /// same offset stays unfinished), an offset not handed out, or one already acknowledged.
    pub fn ack_one(&self, epoch: u64, offset: i64) {
        let mut p = self.progress();
        if self.epoch() == epoch && p.unfinished.remove(&offset) {
            let next = p.unfinished.first().copied().unwrap_or(p.handed_high);
            self.consumed.fetch_max(next, Ordering::AcqRel);
        }
    }

    /// Skips everything of `epoch` before `next_offset` (a message set the application chose
    /// to skip): handed out and finished at once, without passing earlier unfinished offsets.
    pub fn skip_to(&self, epoch: u64, next_offset: i64) {
        let mut p = self.progress();
        if self.epoch() != epoch {
            return;
        }
        p.handed_high = p.handed_high.max(next_offset);
        let next = p.unfinished.first().copied().unwrap_or(p.handed_high);
        self.consumed.fetch_max(next, Ordering::AcqRel);
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
    /// Never moves the position backwards. (Unchecked: the stream and [`Acker`](crate::Acker)
    /// use the epoch-checked [`mark_consumed_at`](Self::mark_consumed_at) and acks.)
    pub fn mark_consumed(&self, next_offset: i64) {
        let _p = self.progress();
        self.consumed.fetch_max(next_offset, Ordering::AcqRel);
    }

    /// Records that data of `epoch` up to (not including) `next_offset` has been fetched and
    /// is being queued. `false` (nothing recorded) when a reset ended `epoch` meanwhile: the
    /// fetcher's answer is from the old range and must be dropped.
    pub fn mark_fetched(&self, epoch: u64, next_offset: i64) -> bool {
        let _p = self.progress();
        if self.epoch() != epoch {
            return false;
        }
        self.fetched.store(next_offset, Ordering::Release);
        true
    }

    /// The next offset the application will be handed in this epoch (after the highest one
    /// handed out, or where fetching starts); [`INVALID_OFFSET`] while the start of a
    /// partition without a committed offset is not resolved yet.
    pub fn position(&self) -> i64 {
        self.progress().handed_high
    }

    /// Moves the partition to `offset`: both positions (fetch and processed) go there, and a
    /// new epoch starts, so what was fetched or handed out before can no longer be delivered
    /// or move the processed position. The one way a partition's offsets are reset: an
    /// `auto.offset.reset` (no committed offset, or the committed one out of the log's range,
    /// see [`reset_offsets_in`](Self::reset_offsets_in)) and an application's seek alike.
    pub fn reset_offsets(&self, offset: i64) {
        let mut p = self.progress();
        self.reset_locked(&mut p, offset);
    }

    /// [`reset_offsets`](Self::reset_offsets) for a decision taken in `epoch` (the fetcher's
    /// `auto.offset.reset`): nothing happens, and `false`, when another reset (a seek) ended
    /// that epoch meanwhile.
    pub fn reset_offsets_in(&self, epoch: u64, offset: i64) -> bool {
        let mut p = self.progress();
        if self.epoch() != epoch {
            return false;
        }
        self.reset_locked(&mut p, offset);
        true
    }

    fn reset_locked(&self, p: &mut Progress, offset: i64) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        p.handed_high = offset;
        p.unfinished.clear();
        self.fetched.store(offset, Ordering::Release);
        self.consumed.store(offset, Ordering::Release);
    }

    /// Pauses (`true`) or resumes the partition: while paused it is not fetched and its
    /// messages already fetched are held back by the stream. Its positions do not change.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }

    /// Whether the application paused the partition.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
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

    /// Marks the partition as no longer owned: queued data for it must not be delivered, and
    /// a fetcher waiting to queue more for it goes on with its other partitions.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
        self.revoked_wake.notify_waiters();
    }

    /// Completes once the partition is revoked (at once if it is already).
    pub async fn revoked(&self) {
        loop {
            let notified = self.revoked_wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_current() {
                return;
            }
            notified.await;
        }
    }

    /// Whether this member still owns the partition in the assignment this state belongs to.
    pub fn is_current(&self) -> bool {
        !self.revoked.load(Ordering::Acquire)
    }
}

/// One message as delivered to the application. Two messages are equal when their topic,
/// partition, offset, key and value are (the epoch they were fetched in does not count).
#[derive(Debug, Clone)]
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
    /// The partition's epoch when this message was fetched (see
    /// [`PartitionTopicInfo::epoch`]): an acknowledgement of a message from before an offset
    /// reset is ignored, even when the new range has a message at the same offset.
    pub(crate) epoch: u64,
}

impl Message {
    /// A message with these fields that no stream handed out (for tests, or one rebuilt from
    /// its fields, e.g. after crossing a process boundary). Acknowledging it with a stream
    /// fails with [`ForeignMessage`](crate::stream::ForeignMessage) unless that stream handed
    /// out this offset of this partition.
    pub fn new(
        topic: impl Into<Arc<str>>,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Self {
        Message {
            topic: topic.into(),
            partition,
            offset,
            key,
            value,
            epoch: 0,
        }
    }
}

impl Message {
    /// The partition's reset epoch this message was fetched in (0 for a message built with
    /// [`Message::new`]): an acknowledgement counts only while the partition is still in it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// This message marked as fetched in `epoch`: a copy rebuilt from a delivered message's
    /// fields (e.g. after crossing a process boundary) takes the original's [`epoch`](Self::epoch)
    /// so that acknowledging it counts as acknowledging the original.
    pub fn with_epoch(mut self, epoch: u64) -> Self {
        self.epoch = epoch;
        self
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
            && self.partition == other.partition
            && self.offset == other.offset
            && self.key == other.key
            && self.value == other.value
    }
}

impl Eq for Message {}

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
    fn data_from_before_a_reset_cannot_move_the_position() {
        // processed up to 500, then the log was cut back: reset to 300
        let info = PartitionTopicInfo::new("t", 0, 0, 480);
        let old = info.epoch();
        assert!(info.hand_out(old, &[480, 481], false));
        info.mark_consumed_at(old, 481);
        info.reset_offsets(300);
        assert_eq!(info.consumed_offset(), 300);
        // the message held across the reset is finished, and acknowledged from elsewhere
        info.mark_consumed_at(old, 482);
        info.ack_through(old, 481);
        assert_eq!(info.consumed_offset(), 300);
        // a queued message of the old range is refused
        assert!(!info.hand_out(old, &[482], false));
        // the new range moves it
        let new = info.epoch();
        assert!(info.hand_out(new, &[300, 301], false));
        info.mark_consumed_at(new, 301);
        assert_eq!(info.consumed_offset(), 301);
        info.ack_through(new, 301);
        assert_eq!(info.consumed_offset(), 302);
        info.ack_through(new, 400); // never handed out
        assert_eq!(info.consumed_offset(), 302);
    }

    #[test]
    fn explicit_acks_commit_the_contiguous_prefix() {
        let info = PartitionTopicInfo::new("t", 0, 0, 10);
        let e = info.epoch();
        // a compacted partition: offsets 13 and 15 are gone
        assert!(info.hand_out(e, &[10, 11, 12, 14, 16], true));
        info.ack_one(e, 11);
        info.ack_one(e, 14);
        assert_eq!(info.consumed_offset(), 10, "10 is unfinished");
        info.ack_one(e, 10);
        assert_eq!(info.consumed_offset(), 12);
        info.ack_one(e, 12);
        assert_eq!(info.consumed_offset(), 16, "up to the unfinished 16");
        info.ack_one(e, 12); // twice: no effect
        info.ack_one(e, 99); // never handed out: no effect
        assert_eq!(info.consumed_offset(), 16);
        info.ack_one(e, 16);
        assert_eq!(info.consumed_offset(), 17);
        // a skipped set does not pass an unfinished message
        assert!(info.hand_out(e, &[17], true));
        info.skip_to(e, 25);
        assert_eq!(info.consumed_offset(), 17);
        info.ack_one(e, 17);
        assert_eq!(info.consumed_offset(), 25);
        // a reset forgets what was unfinished
        assert!(info.hand_out(e, &[25, 26], true));
        info.reset_offsets(40);
        info.ack_one(e, 25);
        assert_eq!(info.consumed_offset(), 40);
    }

    #[test]
    fn a_seek_drops_what_the_fetcher_decided_in_the_old_epoch() {
        let info = PartitionTopicInfo::new("t", 0, 0, 100);
        assert_eq!(info.position(), 100);
        let fetching = info.epoch();
        assert!(info.mark_fetched(fetching, 150));
        assert!(info.hand_out(fetching, &[100, 101], false));
        assert_eq!(info.position(), 102);
        // the application seeks back while an answer for 150.. is on its way
        info.reset_offsets(20);
        assert!(
            !info.mark_fetched(fetching, 200),
            "the old answer is dropped"
        );
        assert_eq!(info.fetch_offset(), 20);
        assert!(
            !info.reset_offsets_in(fetching, INVALID_OFFSET),
            "an out-of-range answer to the old request resets nothing"
        );
        assert_eq!(
            (info.fetch_offset(), info.consumed_offset(), info.position()),
            (20, 20, 20)
        );
        let now = info.epoch();
        assert!(info.reset_offsets_in(now, 7));
        assert_eq!(info.position(), 7);
    }

    #[test]
    fn pausing_keeps_the_positions() {
        let info = PartitionTopicInfo::new("t", 0, 0, 5);
        info.set_paused(true);
        assert!(info.is_paused());
        assert_eq!((info.fetch_offset(), info.position()), (5, 5));
        info.set_paused(false);
        assert!(!info.is_paused());
    }

    #[test]
    fn revoke_makes_info_stale() {
        let info = PartitionTopicInfo::new("t", 1, 0, INVALID_OFFSET);
        assert!(info.is_current());
        info.revoke();
        assert!(!info.is_current());
    }
}
