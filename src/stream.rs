//! What the application sees: message streams with at-least-once, processed-offset semantics.
//!
//! Each stream drains one bounded queue fed by the fetchers. A message counts as *processed*
//! — and its offset becomes committable — when the application takes the next message from the
//! same stream, or acknowledges it through an [`Acker`]. So a crash never loses a message that
//! was handed out but not finished (the Java consumer commits on hand-out; spec §6). With
//! explicit acknowledgement (`auto.ack=false`) only [`Acker::ack`] / [`MessageStream::ack`]
//! mark a message processed, in any order; commits stop at the lowest unfinished offset of
//! each partition.
//!
//! Before every hand-out the stream checks two things: the partition is still owned by this
//! member in the current assignment (data of released partitions is dropped), and the ZooKeeper
//! session is confirmed alive ([`Liveness`]); otherwise it waits. A stream never talks to
//! ZooKeeper or Kafka itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::fetch::{FetchError, StreamItem};
use crate::metrics::Metrics;
use crate::partition::{Message, PartitionTopicInfo};
use crate::zk::liveness::Liveness;

/// Errors a stream hands to the application. The stream stays usable after one.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A partition of this stream cannot make progress (e.g. a message larger than
    /// `fetch.message.max.bytes`, or a corrupt committed offset).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// No message arrived within `consumer.timeout.ms`.
    #[error("no message within consumer.timeout.ms ({0:?})")]
    Timeout(Duration),
}

impl StreamError {
    /// Whether the stream can go on past this error by skipping data: a message set that
    /// cannot be decoded ([`FetchError::Undecodable`]). Taking the next item of the stream
    /// skips it (its offsets become committable); an application that must not lose data
    /// stops instead (Java's console consumer without `--skip-message-on-error`).
    pub fn is_skippable(&self) -> bool {
        matches!(self, StreamError::Fetch(FetchError::Undecodable { .. }))
    }
}

type PartitionKey = (Arc<str>, i32);

/// Problems of partitions that are owned but not fetched (an unusable committed offset, no
/// stream for the assigned thread id), kept for one stream until its application takes them
/// from [`MessageStream::next`]: unlike an item of the bounded queue, a full queue cannot lose
/// them.
#[derive(Debug, Default)]
pub(crate) struct PendingErrors {
    errors: Mutex<std::collections::VecDeque<FetchError>>,
    added: tokio::sync::Notify,
}

impl PendingErrors {
    /// Keeps `error` for the stream and wakes it.
    pub(crate) fn push(&self, error: FetchError) {
        self.lock().push_back(error);
        self.added.notify_one();
    }

    fn pop(&self) -> Option<FetchError> {
        self.lock().pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<FetchError>> {
        match self.errors.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// A message given to [`Acker::ack`] that its stream never handed out: it came from another
/// stream (acknowledging it here would do nothing, and with `auto.ack=false` its partition's
/// commits would never move).
#[derive(Debug, thiserror::Error)]
#[error(
    "{topic}-{partition} offset {offset} was not handed out by stream {thread_id}: acknowledge \
     a message with the stream (or its Acker) it came from"
)]
pub struct ForeignMessage {
    /// Topic of the message.
    pub topic: String,
    /// Partition of the message.
    pub partition: i32,
    /// Offset of the message.
    pub offset: i64,
    /// The consumer thread id of the stream it was given to.
    pub thread_id: String,
}

/// Marks messages as processed from anywhere (another task, after asynchronous work).
///
/// By default acknowledgement is cumulative per partition: acknowledging offset `n` declares
/// every earlier message of that partition processed too. With `auto.ack=false` it declares
/// `message` alone processed; the partition's committable position is its lowest offset
/// handed out and not yet acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Acker {
    partitions: Arc<Mutex<HashMap<PartitionKey, Arc<PartitionTopicInfo>>>>,
    explicit: bool,
    thread_id: Arc<str>,
}

impl Acker {
    /// Declares `message` processed (and, unless `auto.ack=false`, every earlier message of
    /// its partition). Has no effect when the partition is no longer owned by this member, or
    /// for a message handed out before an offset reset of its partition; fails for a message
    /// of a partition this stream never handed out.
    pub fn ack(&self, message: &Message) -> Result<(), ForeignMessage> {
        let key = (message.topic.clone(), message.partition);
        let guard = match self.partitions.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(info) = guard.get(&key) else {
            return Err(ForeignMessage {
                topic: message.topic.to_string(),
                partition: message.partition,
                offset: message.offset,
                thread_id: self.thread_id.to_string(),
            });
        };
        if info.is_current() {
            if self.explicit {
                info.ack_one(message.epoch, message.offset);
            } else {
                info.ack_through(message.epoch, message.offset);
            }
        }
        Ok(())
    }

    fn track(&self, info: &Arc<PartitionTopicInfo>) {
        let mut guard = match self.partitions.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (info.topic.clone(), info.partition);
        let stale = guard.get(&key).is_none_or(|old| !Arc::ptr_eq(old, info));
        if stale {
            guard.insert(key, info.clone());
        }
    }
}

/// A stream of messages for one consumer thread id (Java's `KafkaStream`).
#[derive(Debug)]
pub struct MessageStream {
    thread: String,
    queue: mpsc::Receiver<StreamItem>,
    pending: Arc<PendingErrors>,
    current: Option<Current>,
    handed_out: Option<HandedOut>,
    explicit_ack: bool,
    liveness: Arc<Liveness>,
    stop: watch::Receiver<bool>,
    consumer_timeout: Option<Duration>,
    acker: Acker,
    holding: Arc<HoldCount>,
    metrics: Arc<Metrics>,
}

/// The chunk a stream is handing out.
#[derive(Debug)]
struct Current {
    info: Arc<PartitionTopicInfo>,
    epoch: u64,
    messages: std::vec::IntoIter<Message>,
}

/// What taking the next item finishes: the messages handed out last (through offset
/// `next - 1`), or an undecodable set the application skips by going on.
#[derive(Debug)]
struct HandedOut {
    info: Arc<PartitionTopicInfo>,
    epoch: u64,
    next: i64,
    skip: bool,
}

/// Counts streams whose application currently holds a message it has not finished with, so
/// shutdown can wait for them before the final commit.
#[derive(Debug, Default)]
pub(crate) struct HoldCount {
    count: AtomicUsize,
    released: tokio::sync::Notify,
}

impl HoldCount {
    fn hold(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn release(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.released.notify_waiters();
    }

    /// Waits until no stream holds a message, or `grace` has passed; returns how many still do.
    pub(crate) async fn wait_released(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let held = self.count.load(Ordering::Acquire);
            if held == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return held;
            }
        }
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        if self.handed_out.take().is_some_and(|h| !h.skip) {
            self.holding.release();
        }
    }
}

impl MessageStream {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        thread: String,
        queue: mpsc::Receiver<StreamItem>,
        pending: Arc<PendingErrors>,
        liveness: Arc<Liveness>,
        stop: watch::Receiver<bool>,
        consumer_timeout: Option<Duration>,
        holding: Arc<HoldCount>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let thread_id = thread.clone();
        MessageStream {
            thread,
            queue,
            pending,
            current: None,
            handed_out: None,
            explicit_ack: false,
            liveness,
            stop,
            consumer_timeout,
            acker: Acker {
                thread_id: Arc::from(thread_id.as_str()),
                ..Acker::default()
            },
            holding,
            metrics,
        }
    }

    /// Explicit acknowledgement (`auto.ack=false`): taking the next message no longer
    /// declares the previous one processed; only [`ack`](Self::ack) / [`Acker::ack`] do.
    pub(crate) fn with_explicit_ack(mut self, explicit: bool) -> Self {
        self.explicit_ack = explicit;
        self.acker.explicit = explicit;
        self
    }

    /// The consumer thread id this stream stands for (`<consumerId>-<n>`).
    pub fn thread_id(&self) -> &str {
        &self.thread
    }

    /// Chunks of fetched data waiting in this stream's queue (at most
    /// `queued.max.message.chunks`): a full queue holds its fetcher back.
    pub fn queued_chunks(&self) -> usize {
        self.queue.len()
    }

    /// A handle that acknowledges messages of this stream from elsewhere.
    pub fn acker(&self) -> Acker {
        self.acker.clone()
    }

    /// Declares `message` processed (see [`Acker::ack`]).
    pub fn ack(&self, message: &Message) -> Result<(), ForeignMessage> {
        self.acker.ack(message)
    }

    /// The next message. Taking it declares the previously returned message processed
    /// (unless `auto.ack=false`), and skips a message set whose error was returned last.
    ///
    /// Returns `None` once the consumer shuts down (or the process received its shutdown
    /// signal): the stream has ended. `Some(Err(..))` reports a partition problem or a
    /// `consumer.timeout.ms` timeout; the stream may be polled again after it.
    pub async fn next(&mut self) -> Option<Result<Message, StreamError>> {
        self.finish_handed_out();
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if let Some(error) = self.pending.pop() {
                return Some(Err(StreamError::Fetch(error)));
            }
            if let Some(message) = self.next_buffered() {
                if !self.liveness.may_deliver() && !self.wait_deliverable().await {
                    return None;
                }
                match self.hand_out(message) {
                    Some(message) => return Some(Ok(message)),
                    None => continue,
                }
            }
            match self.receive().await {
                Received::Item(StreamItem::Chunk(chunk)) => {
                    if chunk.info.is_current() && chunk.epoch == chunk.info.epoch() {
                        self.acker.track(&chunk.info);
                        self.current = Some(Current {
                            info: chunk.info,
                            epoch: chunk.epoch,
                            messages: chunk.messages.into_iter(),
                        });
                    }
                }
                Received::Item(StreamItem::Error(e)) => return Some(Err(StreamError::Fetch(e))),
                Received::Item(StreamItem::Undecodable {
                    info,
                    epoch,
                    error,
                    resume_at,
                }) => {
                    if !info.is_current() || epoch != info.epoch() {
                        continue;
                    }
                    // Taking the next item skips the set, like taking the next message
                    // declares the previous one processed.
                    self.acker.track(&info);
                    self.handed_out = Some(HandedOut {
                        info,
                        epoch,
                        next: resume_at,
                        skip: true,
                    });
                    return Some(Err(StreamError::Fetch(error)));
                }
                Received::Pending => {}
                Received::TimedOut(after) => return Some(Err(StreamError::Timeout(after))),
                Received::Ended => return None,
            }
        }
    }

    /// The next batch: every message of one partition that is already buffered (at most
    /// `max`, at least one), waiting for data like [`next`](Self::next). Taking a batch declares
    /// the whole previous batch (or message) processed — one commit point per batch lets an
    /// application flush its output once per batch instead of once per message.
    pub async fn next_batch(&mut self, max: usize) -> Option<Result<Vec<Message>, StreamError>> {
        let first = match self.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(e)),
        };
        let mut batch = Vec::with_capacity(max.clamp(1, 1024));
        batch.push(first);
        if let Some(c) = self.current.as_mut() {
            let mut bytes = 0;
            while batch.len() < max {
                let Some(mut message) = c.messages.next() else {
                    break;
                };
                message.epoch = c.epoch;
                bytes += message.value.len() as u64;
                batch.push(message);
            }
            let offsets: Vec<i64> = batch[1..].iter().map(|m| m.offset).collect();
            if !c.info.hand_out(c.epoch, &offsets, self.explicit_ack) {
                // The partition's offsets were reset meanwhile: the rest is from the old range.
                batch.truncate(1);
                self.current = None;
                return Some(Ok(batch));
            }
            self.metrics.record_delivered(batch.len() as u64 - 1, bytes);
            if let (Some(h), Some(last)) = (self.handed_out.as_mut(), offsets.last()) {
                h.next = last + 1;
            }
        }
        Some(Ok(batch))
    }

    /// Turns the stream into a [`futures::Stream`] of results.
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<Message, StreamError>> + Send + 'static {
        futures::stream::unfold(self, |mut s| async move { s.next().await.map(|m| (m, s)) })
    }

    /// The next message if one is buffered and may be delivered right now, without waiting:
    /// what [`next`](Self::next) returns when it does not have to wait, with the same
    /// effects: calling it declares the previous message processed, as `next()` does, even
    /// when it returns `None`. `None` means "call `next()`": nothing is buffered, the session
    /// is not confirmed, or the stream stopped.
    /// For embeddings that poll from outside an async context (the Python package).
    pub fn try_next(&mut self) -> Option<Message> {
        self.finish_handed_out();
        loop {
            if *self.stop.borrow() || !self.liveness.may_deliver() {
                return None;
            }
            let message = self.next_buffered()?;
            if let Some(message) = self.hand_out(message) {
                return Some(message);
            }
        }
    }

    /// Hands `message` (just taken from the current chunk) to the application, unless
    /// ownership was lost meanwhile (session expired) or the partition's offsets were reset
    /// (the chunk is from the old range): then the chunk is dropped and `None` returned.
    fn hand_out(&mut self, mut message: Message) -> Option<Message> {
        let c = self.current.as_ref()?;
        // Its acknowledgement counts only in this epoch (see `Acker::ack`).
        message.epoch = c.epoch;
        if !(c.info.is_current()
            && c.info
                .hand_out(c.epoch, &[message.offset], self.explicit_ack))
        {
            self.current = None;
            return None;
        }
        if !self.explicit_ack {
            self.handed_out = Some(HandedOut {
                info: c.info.clone(),
                epoch: c.epoch,
                next: message.offset + 1,
                skip: false,
            });
            self.holding.hold();
        }
        self.metrics.record_delivered(1, message.value.len() as u64);
        Some(message)
    }

    /// Finishes what the previous call handed out (see [`HandedOut`]).
    fn finish_handed_out(&mut self) {
        let Some(h) = self.handed_out.take() else {
            return;
        };
        if h.info.is_current() {
            if h.skip {
                h.info.skip_to(h.epoch, h.next);
            } else {
                h.info.mark_consumed_at(h.epoch, h.next);
            }
        }
        if !h.skip {
            self.holding.release();
        }
    }

    fn next_buffered(&mut self) -> Option<Message> {
        let c = self.current.as_mut()?;
        if !c.info.is_current() || c.epoch != c.info.epoch() {
            self.current = None;
            return None;
        }
        let next = c.messages.next();
        if next.is_none() {
            self.current = None;
        }
        next
    }

    /// Waits for the session to be confirmed; `false` when the stream was stopped meanwhile.
    async fn wait_deliverable(&mut self) -> bool {
        tracing::warn!(
            thread = %self.thread,
            "ZooKeeper session not confirmed alive: holding delivery until it is"
        );
        tokio::select! {
            _ = self.liveness.wait_deliverable() => true,
            _ = self.stop.wait_for(|stopped| *stopped) => false,
        }
    }

    async fn receive(&mut self) -> Received {
        let recv = async {
            tokio::select! {
                item = self.queue.recv() => match item {
                    Some(item) => Received::Item(item),
                    None => Received::Ended,
                },
                _ = self.stop.wait_for(|stopped| *stopped) => Received::Ended,
                _ = self.pending.added.notified() => Received::Pending,
            }
        };
        match self.consumer_timeout {
            Some(after) => match tokio::time::timeout(after, recv).await {
                Ok(received) => received,
                Err(_) => Received::TimedOut(after),
            },
            None => recv.await,
        }
    }
}

enum Received {
    Item(StreamItem),
    /// A problem was kept for the stream (see [`PendingErrors`]).
    Pending,
    TimedOut(Duration),
    Ended,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::FetchedChunk;

    fn stream(explicit: bool) -> (mpsc::Sender<StreamItem>, MessageStream, watch::Sender<bool>) {
        let (tx, rx) = mpsc::channel(8);
        let (stop_tx, stop) = watch::channel(false);
        let stream = MessageStream::new(
            "t-0".into(),
            rx,
            Arc::new(PendingErrors::default()),
            Arc::new(Liveness::new(Duration::from_secs(600))),
            stop,
            Some(Duration::from_millis(200)),
            Arc::new(HoldCount::default()),
            Arc::new(Metrics::default()),
        )
        .with_explicit_ack(explicit);
        (tx, stream, stop_tx)
    }

    fn chunk(info: &Arc<PartitionTopicInfo>, offsets: &[i64]) -> StreamItem {
        StreamItem::Chunk(FetchedChunk {
            info: info.clone(),
            epoch: info.epoch(),
            messages: offsets
                .iter()
                .map(|&offset| Message {
                    topic: info.topic.clone(),
                    partition: info.partition,
                    offset,
                    key: None,
                    value: format!("v{offset}").into_bytes(),
                    epoch: info.epoch(),
                })
                .collect(),
        })
    }

    async fn next_offset(s: &mut MessageStream) -> i64 {
        match s.next().await {
            Some(Ok(m)) => m.offset,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn try_next_hands_out_only_what_is_buffered_and_deliverable_with_next_s_effects() {
        let info = Arc::new(PartitionTopicInfo::new("t", 0, 0, 0));
        let (tx, mut s, stop) = stream(false);
        tx.send(chunk(&info, &[0, 1, 2])).await.unwrap();
        assert!(s.try_next().is_none(), "a queued chunk is not buffered yet");
        assert_eq!(next_offset(&mut s).await, 0);
        assert_eq!(s.try_next().map(|m| m.offset), Some(1));
        assert_eq!(info.consumed_offset(), 1, "taking 1 finished 0");
        tx.send(chunk(&info, &[3])).await.unwrap();
        assert_eq!(s.try_next().map(|m| m.offset), Some(2));
        assert!(s.try_next().is_none(), "the buffer is empty");
        assert_eq!(info.consumed_offset(), 3, "the failed try still finished 2");
        assert_eq!(next_offset(&mut s).await, 3);
        tx.send(chunk(&info, &[4, 5])).await.unwrap();
        assert_eq!(next_offset(&mut s).await, 4);
        info.revoke();
        assert!(
            s.try_next().is_none(),
            "5 is buffered, but its partition was released"
        );
        stop.send_replace(true);
        assert!(s.try_next().is_none());
        assert!(s.next().await.is_none(), "the stop ends the stream");
    }

    #[tokio::test]
    async fn messages_from_before_an_offset_reset_do_not_move_the_processed_position() {
        let info = Arc::new(PartitionTopicInfo::new("t", 0, 0, 480));
        let (tx, mut s, _stop) = stream(false);
        tx.send(chunk(&info, &[480, 481, 482])).await.unwrap();
        assert_eq!(next_offset(&mut s).await, 480);
        // The log was cut back below the position: the fetcher resets to 300 and fetches
        // the new range while 481 and 482 of the old one are still queued.
        info.reset_offsets(300);
        tx.send(chunk(&info, &[300, 301])).await.unwrap();
        assert_eq!(
            next_offset(&mut s).await,
            300,
            "the old range is not delivered"
        );
        assert_eq!(
            info.consumed_offset(),
            300,
            "finishing 480 does not move it to 481"
        );
        assert_eq!(next_offset(&mut s).await, 301);
        assert_eq!(info.consumed_offset(), 301);
        s.ack(&Message {
            topic: info.topic.clone(),
            partition: 0,
            offset: 481,
            key: None,
            value: Vec::new(),
            epoch: 0,
        })
        .unwrap();
        assert_eq!(
            info.consumed_offset(),
            301,
            "a late ack of the old range is ignored"
        );
    }

    #[tokio::test]
    async fn a_late_ack_from_before_a_reset_to_an_overlapping_range_is_ignored() {
        for explicit in [false, true] {
            let info = Arc::new(PartitionTopicInfo::new("t", 0, 0, 300));
            let (tx, mut s, _stop) = stream(explicit);
            let range: Vec<i64> = (300..310).collect();
            tx.send(chunk(&info, &range)).await.unwrap();
            let mut old = Vec::new();
            for _ in 0..6 {
                old.push(s.next().await.unwrap().unwrap());
            }
            // The log was cut back and refilled: reset to 300, the same offsets again.
            info.reset_offsets(300);
            tx.send(chunk(&info, &range)).await.unwrap();
            let new = s.next_batch(10).await.unwrap().unwrap();
            assert_eq!(new.first().map(|m| m.offset), Some(300));
            assert_eq!(new.len(), 10);
            if explicit {
                for m in &new[..5] {
                    s.ack(m).unwrap();
                }
            }
            let before = info.consumed_offset();
            assert_eq!(before, if explicit { 305 } else { 300 });
            // The application finishes the old 305 late: the new 305 is not processed.
            s.ack(&old[5]).unwrap();
            assert_eq!(info.consumed_offset(), before, "explicit={explicit}");
            s.ack(&new[5]).unwrap();
            assert_eq!(info.consumed_offset(), 306, "explicit={explicit}");
        }
    }

    #[tokio::test]
    async fn explicit_acks_in_any_order_commit_the_lowest_unfinished_offset() {
        let info = Arc::new(PartitionTopicInfo::new("t", 0, 0, 0));
        let (tx, mut s, _stop) = stream(true);
        tx.send(chunk(&info, &[0, 1, 2, 3])).await.unwrap();
        let mut taken = Vec::new();
        for _ in 0..4 {
            match s.next().await {
                Some(Ok(m)) => taken.push(m),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            info.consumed_offset(),
            0,
            "taking messages acknowledges nothing"
        );
        let acker = s.acker();
        acker.ack(&taken[2]).unwrap();
        acker.ack(&taken[1]).unwrap();
        assert_eq!(info.consumed_offset(), 0);
        s.ack(&taken[0]).unwrap();
        assert_eq!(info.consumed_offset(), 3);
        acker.ack(&taken[3]).unwrap();
        assert_eq!(info.consumed_offset(), 4);
        // next_batch hands out without acknowledging either
        tx.send(chunk(&info, &[4, 5, 6])).await.unwrap();
        let batch = s.next_batch(10).await.unwrap().unwrap();
        assert_eq!(batch.len(), 3);
        assert!(matches!(s.next().await, Some(Err(StreamError::Timeout(_)))));
        assert_eq!(info.consumed_offset(), 4);
        acker.ack(&batch[0]).unwrap();
        assert_eq!(info.consumed_offset(), 5);
        // a message of a partition this stream never handed out is refused, naming it
        let foreign = Message {
            topic: Arc::from("t"),
            partition: 1,
            offset: 9,
            key: None,
            value: Vec::new(),
            epoch: 0,
        };
        let err = acker.ack(&foreign).unwrap_err().to_string();
        assert!(
            err.contains("t-1 offset 9") && err.contains(s.thread_id()),
            "{err}"
        );
        assert_eq!(info.consumed_offset(), 5);
    }

    #[tokio::test]
    async fn an_undecodable_set_is_skipped_only_when_the_application_goes_on() {
        let info = Arc::new(PartitionTopicInfo::new("t", 0, 0, 0));
        let (tx, mut s, _stop) = stream(false);
        tx.send(chunk(&info, &[0])).await.unwrap();
        tx.send(StreamItem::Undecodable {
            info: info.clone(),
            epoch: info.epoch(),
            error: FetchError::Undecodable {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                last_offset: 5,
                reason: "Unsupported compression format".into(),
            },
            resume_at: 6,
        })
        .await
        .unwrap();
        tx.send(chunk(&info, &[6])).await.unwrap();
        assert_eq!(next_offset(&mut s).await, 0);
        let e = s.next().await.unwrap().unwrap_err();
        assert!(e.is_skippable());
        assert_eq!(
            e.to_string(),
            "cannot decode the message set of t-0 at offset 1 (through offset 5): \
             Unsupported compression format"
        );
        assert_eq!(info.consumed_offset(), 1, "not skipped yet");
        assert_eq!(next_offset(&mut s).await, 6);
        assert_eq!(info.consumed_offset(), 6, "skipped by going on");
    }
}
