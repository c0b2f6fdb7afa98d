//! What the application sees: message streams with at-least-once, processed-offset semantics.
//!
//! Each stream drains one bounded queue fed by the fetchers. A message counts as *processed*
//! — and its offset becomes committable — when the application takes the next message from the
//! same stream, or acknowledges it through an [`Acker`]. So a crash never loses a message that
//! was handed out but not finished (the Java consumer commits on hand-out; spec §6).
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

/// Marks messages as processed from anywhere (another task, after asynchronous work).
///
/// Acknowledgement is cumulative per partition: acknowledging offset `n` declares every
/// earlier message of that partition processed too.
#[derive(Debug, Clone, Default)]
pub struct Acker {
    partitions: Arc<Mutex<HashMap<PartitionKey, Arc<PartitionTopicInfo>>>>,
}

impl Acker {
    /// Declares `message` (and every earlier message of its partition) processed. Has no effect
    /// when the partition is no longer owned by this member.
    pub fn ack(&self, message: &Message) {
        let key = (message.topic.clone(), message.partition);
        let guard = match self.partitions.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(info) = guard.get(&key) {
            if info.is_current() {
                info.mark_consumed(message.offset + 1);
            }
        }
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
    current: Option<(Arc<PartitionTopicInfo>, std::vec::IntoIter<Message>)>,
    handed_out: Option<(Arc<PartitionTopicInfo>, i64)>,
    liveness: Arc<Liveness>,
    stop: watch::Receiver<bool>,
    consumer_timeout: Option<Duration>,
    acker: Acker,
    holding: Arc<HoldCount>,
    metrics: Arc<Metrics>,
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
        if self.handed_out.take().is_some() {
            self.holding.release();
        }
    }
}

impl MessageStream {
    pub(crate) fn new(
        thread: String,
        queue: mpsc::Receiver<StreamItem>,
        liveness: Arc<Liveness>,
        stop: watch::Receiver<bool>,
        consumer_timeout: Option<Duration>,
        holding: Arc<HoldCount>,
        metrics: Arc<Metrics>,
    ) -> Self {
        MessageStream {
            thread,
            queue,
            current: None,
            handed_out: None,
            liveness,
            stop,
            consumer_timeout,
            acker: Acker::default(),
            holding,
            metrics,
        }
    }

    /// The consumer thread id this stream stands for (`<consumerId>-<n>`).
    pub fn thread_id(&self) -> &str {
        &self.thread
    }

    /// A handle that acknowledges messages of this stream from elsewhere.
    pub fn acker(&self) -> Acker {
        self.acker.clone()
    }

    /// Declares `message` processed (see [`Acker::ack`]).
    pub fn ack(&self, message: &Message) {
        self.acker.ack(message);
    }

    /// The next message. Taking it declares the previously returned message processed.
    ///
    /// Returns `None` once the consumer shuts down (or the process received its shutdown
    /// signal): the stream has ended. `Some(Err(..))` reports a partition problem or a
    /// `consumer.timeout.ms` timeout; the stream may be polled again after it.
    pub async fn next(&mut self) -> Option<Result<Message, StreamError>> {
        if let Some((info, offset)) = self.handed_out.take() {
            if info.is_current() {
                info.mark_consumed(offset + 1);
            }
            self.holding.release();
        }
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if let Some(message) = self.next_buffered() {
                if !self.liveness.may_deliver() && !self.wait_deliverable().await {
                    return None;
                }
                // Ownership may have been lost while we waited (session expired).
                match &self.current {
                    Some((info, _)) if info.is_current() => {
                        self.handed_out = Some((info.clone(), message.offset));
                        self.holding.hold();
                        self.metrics.record_delivered(1, message.value.len() as u64);
                        return Some(Ok(message));
                    }
                    _ => {
                        self.current = None;
                        continue;
                    }
                }
            }
            match self.receive().await {
                Received::Item(StreamItem::Chunk(chunk)) => {
                    if chunk.info.is_current() {
                        self.acker.track(&chunk.info);
                        self.current = Some((chunk.info, chunk.messages.into_iter()));
                    }
                }
                Received::Item(StreamItem::Error(e)) => return Some(Err(StreamError::Fetch(e))),
                Received::Item(StreamItem::Undecodable {
                    info,
                    error,
                    resume_at,
                }) => {
                    if !info.is_current() {
                        continue;
                    }
                    // Taking the next item skips the set, like taking the next message
                    // declares the previous one processed.
                    self.acker.track(&info);
                    self.handed_out = Some((info, resume_at - 1));
                    self.holding.hold();
                    return Some(Err(StreamError::Fetch(error)));
                }
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
        let mut last = first.offset;
        batch.push(first);
        if let Some((info, messages)) = self.current.as_mut() {
            let mut bytes = 0;
            while batch.len() < max {
                let Some(message) = messages.next() else {
                    break;
                };
                last = message.offset;
                bytes += message.value.len() as u64;
                batch.push(message);
            }
            self.metrics.record_delivered(batch.len() as u64 - 1, bytes);
            self.handed_out = Some((info.clone(), last));
        }
        Some(Ok(batch))
    }

    /// Turns the stream into a [`futures::Stream`] of results.
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<Message, StreamError>> + Send + 'static {
        futures::stream::unfold(self, |mut s| async move { s.next().await.map(|m| (m, s)) })
    }

    fn next_buffered(&mut self) -> Option<Message> {
        let (info, messages) = self.current.as_mut()?;
        if !info.is_current() {
            self.current = None;
            return None;
        }
        let next = messages.next();
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
    TimedOut(Duration),
    Ended,
}
