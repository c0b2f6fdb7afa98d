//! The fetch layer: finds partition leaders and runs one fetcher thread per leader broker on
//! the blocking `kafka` crate, feeding each partition's messages into its stream's bounded
//! queue (spec §7).
//!
//! Threads, not async tasks: the `kafka` crate blocks on sockets, and must never stall the
//! tokio executor. A *manager* thread owns leader lookup: partitions without a usable leader
//! (at start, after NotLeaderForPartition, a dead broker, a socket error) come back to it, and
//! after `refresh.leader.backoff.ms` it reloads metadata and hands them to the fetcher of their
//! new leader, at the same offset — nothing lost, nothing repeated. A full queue blocks its
//! fetcher (back-pressure) but never blocks stop. This module knows nothing of ZooKeeper or
//! of the group: it is given broker addresses and partitions with their positions.
//!
//! The partition set of a running [`FetcherManager`] can change without a stop: partitions are
//! added with [`FetcherManager::add`]; a partition is removed by revoking its info
//! ([`crate::partition::PartitionTopicInfo::revoke`]), after which nothing more of it is sent
//! (the fetcher drops it before its next request or send), while the other partitions keep
//! their positions and their data already queued.
//!
//! `fetch.message.max.bytes` bounds a partition's bytes *on the wire*, and a compressed set
//! can decompress to many times that. So the client hands each partition's set over with its
//! compressed wrappers undecoded (`KafkaClient::set_fetch_decompression(false)`, a patch of
//! the vendored `kafka` crate), and the fetcher decompresses one wrapper at a time, queueing
//! the messages in chunks of at most about `fetch.message.max.bytes` counted as an
//! uncompressed set (`ChunkBuilder`). What a stream's queue holds is then bounded alike for
//! every codec (`queued.max.message.chunks` chunks of that size), and a fetcher holds at most
//! its compressed answer and one decompressed wrapper besides the chunk it is sending. (Java's
//! consumer queues compressed chunks and decompresses in the stream; decompressing here keeps
//! every decoding decision in the fetcher, where a partition is isolated and retried.)
//!
//! A message set that cannot be decoded (unknown codec, corrupt compressed payload,
//! decompressed set that does not parse) concerns its partition only: the messages before it
//! are delivered, then one [`StreamItem::Undecodable`] goes to the partition's stream and
//! fetching goes on after the set; the other partitions of the answer are not held up. It is
//! never retried as if the broker were at fault (a CRC mismatch is: up to three fetches).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kafka::client::fetch::{Data, DecodeError, Entry};
use kafka::client::{FetchOffset, FetchPartition, KafkaClient};
use kafka::error::{Error as KafkaError, KafkaCode};

use crate::config::{ConsumerConfig, OffsetReset};
pub use crate::partition::Message;
use crate::partition::PartitionTopicInfo;

mod timed;
use timed::TimedClient;
pub(crate) use timed::{call_detached, CallError};

/// What a fetcher puts into a stream's queue.
#[derive(Debug)]
pub enum StreamItem {
    /// Messages of one partition, in offset order, none below the requested offset.
    Chunk(FetchedChunk),
    /// A partition cannot make progress; the stream hands the error to the application.
    Error(FetchError),
    /// A message set of a partition cannot be decoded ([`FetchError::Undecodable`]). The
    /// fetcher has moved past it; the stream hands the error to the application, and the
    /// partition's processed position moves to `resume_at` only once the application takes
    /// the next item of the stream (it chose to skip the set).
    Undecodable {
        /// The partition's state.
        info: Arc<PartitionTopicInfo>,
        /// The partition's epoch when the set was fetched.
        epoch: u64,
        /// What cannot be decoded, and why.
        error: FetchError,
        /// First offset after the undecodable set.
        resume_at: i64,
    },
}

/// A batch of messages of one partition.
#[derive(Debug)]
pub struct FetchedChunk {
    /// The partition's state (also tells whether it is still owned).
    pub info: Arc<PartitionTopicInfo>,
    /// The partition's epoch when the messages were fetched (see
    /// [`PartitionTopicInfo::epoch`]): after an offset reset they are not delivered.
    pub epoch: u64,
    /// The messages.
    pub messages: Vec<Message>,
}

/// The sending side of a stream's queue.
pub type ChunkSender = tokio::sync::mpsc::Sender<StreamItem>;

/// A partition to fetch and where its data goes.
#[derive(Debug, Clone)]
pub struct FetchTarget {
    /// Position and ownership state.
    pub info: Arc<PartitionTopicInfo>,
    /// The stream queue.
    pub sink: ChunkSender,
}

/// Errors of the fetch layer, naming the partition and offset concerned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The message at `offset` does not fit in `fetch.message.max.bytes`.
    #[error(
        "message at offset {offset} of {topic}-{partition} is larger than fetch.message.max.bytes \
         ({max_bytes} bytes): raise fetch.message.max.bytes to consume it"
    )]
    MessageTooLarge {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset of the oversized message.
        offset: i64,
        /// The configured limit.
        max_bytes: i32,
    },
    /// The data of a partition failed its CRC check repeatedly.
    #[error("corrupt message (CRC mismatch) in {topic}-{partition} at offset {offset}, after {attempts} attempts")]
    Corrupt {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset requested.
        offset: i64,
        /// How many fetches failed.
        attempts: u32,
    },
    /// The committed offset of a partition cannot be used (e.g. a corrupt offset node).
    #[error("{0}")]
    BadOffset(String),
    /// The assignment gave this member a partition for a thread id it has no stream for: the
    /// partition is owned but not consumed.
    #[error(
        "{topic}-{partition} was assigned to thread {thread}, which has no stream here: the \
         partition is not consumed"
    )]
    NoStream {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The assigned thread id.
        thread: String,
    },
    /// A message set cannot be decoded: unknown compression codec, corrupt compressed payload,
    /// or a decompressed set that does not parse. Only this partition is affected.
    #[error(
        "cannot decode the message set of {topic}-{partition} at offset {offset} \
         (through offset {last_offset}): {reason}"
    )]
    Undecodable {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// First offset that could not be delivered (the fetch position).
        offset: i64,
        /// Last offset the undecodable set covers (a compressed wrapper's own offset).
        last_offset: i64,
        /// Why it cannot be decoded.
        reason: String,
    },
}

impl FetchError {
    /// The topic, partition and offset the error is about, when it names one.
    pub fn position(&self) -> Option<(&str, i32, i64)> {
        match self {
            FetchError::MessageTooLarge {
                topic,
                partition,
                offset,
                ..
            }
            | FetchError::Corrupt {
                topic,
                partition,
                offset,
                ..
            }
            | FetchError::Undecodable {
                topic,
                partition,
                offset,
                ..
            } => Some((topic, *partition, *offset)),
            FetchError::BadOffset(_) | FetchError::NoStream { .. } => None,
        }
    }
}

/// Fetch settings (from the consumer config).
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// `client.id`.
    pub client_id: String,
    /// `fetch.message.max.bytes`.
    pub fetch_message_max_bytes: i32,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `fetch.wait.max.ms`.
    pub fetch_wait_max: Duration,
    /// `socket.timeout.ms`.
    pub socket_timeout: Duration,
    /// `refresh.leader.backoff.ms`.
    pub refresh_leader_backoff: Duration,
    /// `num.consumer.fetchers`.
    pub num_consumer_fetchers: u32,
    /// `auto.offset.reset`.
    pub auto_offset_reset: OffsetReset,
}

impl FetchConfig {
    /// The fetch settings of a consumer configuration.
    pub fn from_consumer_config(c: &ConsumerConfig) -> Self {
        FetchConfig {
            client_id: c.client_id.clone(),
            fetch_message_max_bytes: c.fetch_message_max_bytes,
            fetch_min_bytes: c.fetch_min_bytes,
            fetch_wait_max: c.fetch_wait_max,
            socket_timeout: c.socket_timeout,
            refresh_leader_backoff: c.refresh_leader_backoff,
            num_consumer_fetchers: c.num_consumer_fetchers,
            auto_offset_reset: c.auto_offset_reset,
        }
    }
}

/// Stop flag plus a wake-up for threads blocked on a full queue.
#[derive(Debug, Default)]
struct Stop {
    flag: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Stop {
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }
}

/// What the manager thread is handed: a partition back from a fetcher (no usable leader), or
/// a partition newly added to the running assignment.
#[derive(Debug)]
enum ToManager {
    Returned(FetchTarget),
    Added(FetchTarget),
}

/// The running fetchers of one assignment.
#[derive(Debug)]
pub struct FetcherManager {
    stop: Arc<Stop>,
    manager: Option<JoinHandle<()>>,
    /// Hands added partitions to the manager thread.
    adds: std_mpsc::Sender<ToManager>,
}

impl FetcherManager {
    /// Starts fetching every target from its fetch position (INVALID_OFFSET: reset per
    /// `auto.offset.reset`). Returns at once; the work runs on OS threads.
    pub fn start(config: FetchConfig, brokers: Vec<String>, targets: Vec<FetchTarget>) -> Self {
        let stop = Arc::new(Stop::default());
        let thread_stop = stop.clone();
        let (adds, to_manager) = std_mpsc::channel();
        let returned_tx = adds.clone();
        let manager = std::thread::Builder::new()
            .name("zkc-fetch-manager".into())
            .spawn(move || {
                Manager::new(config, brokers, thread_stop, returned_tx, to_manager).run(targets)
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the fetch manager thread"))
            .ok();
        FetcherManager {
            stop,
            manager,
            adds,
        }
    }

    /// Adds partitions to the running assignment, each fetched from its fetch position; the
    /// partitions already fetched are not disturbed. Returns the targets back when the manager
    /// is gone (stopped), for the caller to start a new one.
    pub fn add(&self, targets: Vec<FetchTarget>) -> Result<(), Vec<FetchTarget>> {
        if self.stop.is_set() || self.manager.as_ref().is_none_or(|m| m.is_finished()) {
            return Err(targets);
        }
        let mut refused = Vec::new();
        for target in targets {
            if let Err(std_mpsc::SendError(ToManager::Added(t) | ToManager::Returned(t))) =
                self.adds.send(ToManager::Added(target))
            {
                refused.push(t);
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(refused)
        }
    }

    /// Signals every fetcher to stop, without waiting.
    pub fn stop_signal(&self) {
        self.stop.set();
    }

    /// Stops every fetcher and waits for them; nothing is sent after it returns.
    pub async fn shutdown(mut self) {
        self.stop.set();
        if let Some(handle) = self.manager.take() {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

impl Drop for FetcherManager {
    fn drop(&mut self) {
        self.stop.set();
    }
}

impl ToManager {
    fn into_target(self) -> FetchTarget {
        match self {
            ToManager::Returned(t) | ToManager::Added(t) => t,
        }
    }
}

struct Worker {
    adds: std_mpsc::Sender<FetchTarget>,
    handle: JoinHandle<()>,
}

struct Manager {
    config: FetchConfig,
    brokers: Vec<String>,
    client: TimedClient,
    stop: Arc<Stop>,
    returned_tx: std_mpsc::Sender<ToManager>,
    returned: std_mpsc::Receiver<ToManager>,
    workers: HashMap<(String, u32), Worker>,
}

impl Manager {
    fn new(
        config: FetchConfig,
        brokers: Vec<String>,
        stop: Arc<Stop>,
        returned_tx: std_mpsc::Sender<ToManager>,
        returned: std_mpsc::Receiver<ToManager>,
    ) -> Self {
        Manager {
            client: TimedClient::new(&config, &brokers, "leaders"),
            config,
            brokers,
            stop,
            returned_tx,
            returned,
            workers: HashMap::new(),
        }
    }

    fn run(mut self, targets: Vec<FetchTarget>) {
        let mut waiting = targets;
        while !self.stop.is_set() {
            waiting.retain(|t| t.info.is_current());
            if !waiting.is_empty() {
                waiting = self.place(waiting);
            }
            let wait = if waiting.is_empty() {
                Duration::from_millis(100)
            } else {
                self.config.refresh_leader_backoff
            };
            match self.returned.recv_timeout(wait) {
                // A new partition of the assignment: placed at once.
                Ok(ToManager::Added(target)) => {
                    waiting.push(target);
                    waiting.extend(self.returned.try_iter().map(ToManager::into_target));
                }
                Ok(ToManager::Returned(target)) => {
                    waiting.push(target);
                    // Let the cluster settle before looking the leader up again.
                    sleep_unless_stopped(&self.stop, self.config.refresh_leader_backoff);
                    waiting.extend(self.returned.try_iter().map(ToManager::into_target));
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.workers.retain(|_, w| !w.handle.is_finished());
        }
        for (_, worker) in self.workers.drain() {
            drop(worker.adds);
            let _ = worker.handle.join();
        }
    }

    /// Hands every target whose leader is known to that leader's fetcher; returns the rest.
    fn place(&mut self, targets: Vec<FetchTarget>) -> Vec<FetchTarget> {
        let topics: Vec<String> = {
            let mut t: Vec<String> = targets.iter().map(|t| t.info.topic.to_string()).collect();
            t.sort();
            t.dedup();
            t
        };
        let leaders = match self.client.call(&self.stop, move |client| {
            client
                .load_metadata(&topics)
                .map(|()| leaders_of(client, &topics))
        }) {
            Ok(leaders) => leaders,
            Err(e) => {
                tracing::warn!(error = %e, brokers = ?self.brokers, "cannot load topic metadata; retrying");
                self.client.abandon();
                return targets;
            }
        };
        let mut left = Vec::new();
        for target in targets {
            let leader = leaders
                .get(&(target.info.topic.to_string(), target.info.partition))
                .cloned();
            let Some(leader) = leader else {
                tracing::warn!(topic = %target.info.topic, partition = target.info.partition, "no leader available; retrying");
                left.push(target);
                continue;
            };
            let slot = (target.info.partition as u32) % self.config.num_consumer_fetchers.max(1);
            let key = (leader.clone(), slot);
            let target = match self.workers.get(&key) {
                Some(worker) => match worker.adds.send(target) {
                    Ok(()) => continue,
                    Err(std_mpsc::SendError(target)) => target,
                },
                None => target,
            };
            match self.spawn_worker(&leader, slot) {
                Some(worker) => {
                    if let Err(std_mpsc::SendError(target)) = worker.adds.send(target) {
                        left.push(target);
                    }
                    self.workers.insert(key, worker);
                }
                None => left.push(target),
            }
        }
        left
    }

    fn spawn_worker(&self, leader: &str, slot: u32) -> Option<Worker> {
        let (adds, receiver) = std_mpsc::channel();
        let fetcher = Fetcher {
            config: self.config.clone(),
            client: TimedClient::new(&self.config, &self.brokers, &format!("{leader}-{slot}")),
            leader: leader.to_string(),
            partitions: Vec::new(),
            adds: receiver,
            returned: self.returned_tx.clone(),
            stop: self.stop.clone(),
            needs_metadata: true,
        };
        let handle = std::thread::Builder::new()
            .name(format!("zkc-fetch-{leader}-{slot}"))
            .spawn(move || fetcher.run())
            .map_err(|e| tracing::error!(error = %e, "cannot start a fetcher thread"))
            .ok()?;
        Some(Worker { adds, handle })
    }
}

/// Leader host per (topic, partition) of `topics`, from the client's loaded metadata.
fn leaders_of(client: &KafkaClient, topics: &[String]) -> HashMap<(String, i32), String> {
    let mut leaders = HashMap::new();
    let metadata = client.topics();
    for topic in topics {
        let Some(partitions) = metadata.partitions(topic) else {
            continue;
        };
        for partition in partitions.iter() {
            if let Some(leader) = partition.leader() {
                leaders.insert((topic.clone(), partition.id()), leader.host().to_string());
            }
        }
    }
    leaders
}

fn new_client(config: &FetchConfig, brokers: &[String]) -> KafkaClient {
    let mut client = KafkaClient::new(brokers.to_vec());
    client.set_client_id(config.client_id.clone());
    if let Err(e) = client.set_fetch_max_wait_time(config.fetch_wait_max) {
        tracing::warn!(error = %e, "invalid fetch.wait.max.ms for the kafka client");
    }
    client.set_fetch_min_bytes(config.fetch_min_bytes);
    client.set_fetch_max_bytes_per_partition(config.fetch_message_max_bytes);
    client.set_fetch_crc_validation(true);
    // Compressed wrappers are decoded one at a time by the fetcher (see `Fetcher::deliver`).
    client.set_fetch_decompression(false);
    client.set_retry_max_attempts(1);
    client
}

fn sleep_unless_stopped(stop: &Stop, total: Duration) {
    let step = Duration::from_millis(20);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.is_set() {
        std::thread::sleep(step.min(total - slept));
        slept += step;
    }
}

/// A fetched message as delivered to the application.
fn message_of(info: &PartitionTopicInfo, m: &kafka::client::fetch::Message<'_>) -> Message {
    Message {
        topic: info.topic.clone(),
        partition: info.partition,
        offset: m.offset,
        key: (!m.key.is_empty()).then(|| m.key.to_vec()),
        value: m.value.to_vec(),
        epoch: info.epoch(),
    }
}

/// Gathers one partition's messages into chunks of at most about `budget` bytes
/// (`fetch.message.max.bytes`), counted as the messages would take in an uncompressed message
/// set (the message that reaches the budget is the last of its chunk). An uncompressed fetch
/// answer never fills more than one chunk (the broker sends at most that many bytes per
/// partition); a compressed one, whose bytes on the wire are bounded but may decompress to
/// several times as many, fills several instead of one big chunk, so what a stream's queue
/// holds stays bounded by the same figure for every codec.
#[derive(Debug)]
struct ChunkBuilder {
    messages: Vec<Message>,
    bytes: usize,
    budget: usize,
}

impl ChunkBuilder {
    fn new(budget: i32) -> Self {
        ChunkBuilder {
            messages: Vec::new(),
            bytes: 0,
            budget: usize::try_from(budget).unwrap_or(0).max(1),
        }
    }

    /// Adds `message`; `true` when the chunk is full and must be taken.
    fn push(&mut self, message: Message) -> bool {
        self.bytes +=
            MESSAGE_OVERHEAD + message.value.len() + message.key.as_ref().map_or(0, Vec::len);
        self.messages.push(message);
        self.bytes >= self.budget
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages gathered so far; the builder starts a new chunk.
    fn take(&mut self) -> Vec<Message> {
        self.bytes = 0;
        std::mem::take(&mut self.messages)
    }
}

struct Owned {
    target: FetchTarget,
    /// Consecutive answers with a corrupt message at the fetch offset.
    crc_failures: u32,
    /// Consecutive answers with no complete message although the high watermark is past the
    /// fetch offset. One such answer is a benign race (a 0.9 broker reads the high watermark
    /// after the log, so messages appended meanwhile are counted but not sent); several in a
    /// row mean the next message does not fit in `fetch.message.max.bytes`.
    empty_answers: u32,
    /// What the current fetch round decided for this partition (`None`: no answer named it).
    next: Option<Next>,
    /// The offset and epoch of the request in flight: an answer is for that epoch only (a
    /// seek meanwhile makes it stale).
    requested: Option<(i64, u64)>,
}

impl Owned {
    fn new(target: FetchTarget) -> Self {
        Owned {
            target,
            crc_failures: 0,
            empty_answers: 0,
            next: None,
            requested: None,
        }
    }
}

/// Bytes a message takes in an uncompressed message set besides its key and value: offset
/// (8), size (4), CRC (4), magic byte, attributes, key and value lengths (4 each).
const MESSAGE_OVERHEAD: usize = 26;

/// Consecutive empty answers below the high watermark that mean "message too large".
const EMPTY_ANSWERS_FOR_TOO_LARGE: u32 = 3;

struct Fetcher {
    config: FetchConfig,
    client: TimedClient,
    leader: String,
    partitions: Vec<Owned>,
    adds: std_mpsc::Receiver<FetchTarget>,
    returned: std_mpsc::Sender<ToManager>,
    stop: Arc<Stop>,
    needs_metadata: bool,
}

/// What [`Fetcher::queue_set`] came to.
#[derive(Debug)]
enum Queued {
    /// At least one chunk was queued.
    Chunks,
    /// Nothing was queued; `failed` is the compressed wrapper the set ended at, if any.
    Nothing { failed: Option<DecodeError> },
    /// Stopped, or the partition is no longer owned: the rest was dropped.
    Stopped,
    /// The partition's offsets were reset (a seek) while the answer was on its way: the rest
    /// was dropped, and the partition is fetched from its new position.
    Superseded,
}

/// What to do with a partition after one fetch answer.
#[derive(Debug, Clone, Copy)]
enum Next {
    Keep,
    Return,
    Drop,
}

impl Fetcher {
    fn run(mut self) {
        loop {
            if self.stop.is_set() {
                return;
            }
            let mut added = false;
            loop {
                match self.adds.try_recv() {
                    Ok(target) => {
                        self.partitions.push(Owned::new(target));
                        added = true;
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => {
                        if self.partitions.is_empty() {
                            return;
                        }
                        break;
                    }
                }
            }
            self.partitions.retain(|p| p.target.info.is_current());
            if self.partitions.is_empty() {
                match self.adds.recv_timeout(Duration::from_millis(100)) {
                    Ok(target) => {
                        self.partitions.push(Owned::new(target));
                        self.needs_metadata = true;
                    }
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
                continue;
            }
            self.needs_metadata |= added;
            if self.needs_metadata {
                if !self.refresh_metadata() {
                    continue;
                }
                self.needs_metadata = false;
            }
            self.resolve_offsets();
            self.fetch_once();
        }
    }

    fn return_all(&mut self) {
        for owned in self.partitions.drain(..) {
            let _ = self.returned.send(ToManager::Returned(owned.target));
        }
    }

    fn refresh_metadata(&mut self) -> bool {
        let mut topics: Vec<String> = self
            .partitions
            .iter()
            .map(|p| p.target.info.topic.to_string())
            .collect();
        topics.sort();
        topics.dedup();
        let Err(error) = self
            .client
            .call(&self.stop, move |client| client.load_metadata(&topics))
        else {
            return true;
        };
        tracing::warn!(broker = %self.leader, error = %error, "metadata refresh failed; returning partitions for leader lookup");
        self.client.abandon();
        self.return_all();
        false
    }

    /// Resolves INVALID positions with an Offset request per `auto.offset.reset`.
    fn resolve_offsets(&mut self) {
        let unresolved: Vec<(usize, u64)> = (0..self.partitions.len())
            .map(|i| (i, self.partitions[i].target.info.epoch()))
            .filter(|&(i, _)| self.partitions[i].target.info.fetch_offset() < 0)
            .collect();
        if unresolved.is_empty() {
            return;
        }
        let mut topics: Vec<String> = unresolved
            .iter()
            .map(|&(i, _)| self.partitions[i].target.info.topic.to_string())
            .collect();
        topics.sort();
        topics.dedup();
        let which = match self.config.auto_offset_reset {
            OffsetReset::Smallest => FetchOffset::Earliest,
            OffsetReset::Largest => FetchOffset::Latest,
        };
        let answer = self.client.call(&self.stop, move |client| {
            client.fetch_offsets(&topics, which)
        });
        match answer {
            Ok(answer) => {
                for &(i, epoch) in &unresolved {
                    let info = &self.partitions[i].target.info;
                    let found = answer.get(&*info.topic).and_then(|ps| {
                        ps.iter()
                            .find(|p| p.partition == info.partition)
                            .map(|p| p.offset)
                    });
                    // Not when a seek placed the partition meanwhile.
                    if let Some(offset) = found {
                        if info.reset_offsets_in(epoch, offset) {
                            tracing::info!(topic = %info.topic, partition = info.partition, offset, policy = ?self.config.auto_offset_reset, "no usable committed offset: reset");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(broker = %self.leader, error = %e, "offset request failed; retrying")
            }
        }
    }

    fn fetch_once(&mut self) {
        let all: Vec<usize> = (0..self.partitions.len()).collect();
        self.fetch_some(&all);
        self.settle();
    }

    /// Fetches the partitions at `indices` once and records what to do with each.
    /// Paused partitions are not fetched (kept as they are).
    fn fetch_some(&mut self, indices: &[usize]) {
        let mut requests: Vec<(Arc<str>, i32, i64)> = Vec::with_capacity(indices.len());
        for &i in indices {
            let owned = &mut self.partitions[i];
            let info = &owned.target.info;
            // The epoch before the offset: a seek in between makes the answer stale, never
            // an answer for the new offset look old.
            let epoch = info.epoch();
            let offset = info.fetch_offset();
            owned.requested = None;
            if info.is_paused() {
                owned.next = Some(Next::Keep);
            } else if offset >= 0 {
                owned.requested = Some((offset, epoch));
                requests.push((info.topic.clone(), info.partition, offset));
            }
        }
        if requests.is_empty() {
            self.record(indices, Next::Keep);
            sleep_unless_stopped(&self.stop, self.config.refresh_leader_backoff);
            return;
        }
        let max_bytes = self.config.fetch_message_max_bytes;
        let answer = self.client.call(&self.stop, move |client| {
            let requests: Vec<FetchPartition<'_>> = requests
                .iter()
                .map(|(topic, partition, offset)| {
                    FetchPartition::new(topic, *partition, *offset).with_max_bytes(max_bytes)
                })
                .collect();
            client.fetch_messages(&requests)
        });
        let responses = match answer {
            Ok(r) => r,
            // Stopping: nothing more is delivered; keep the partitions where they are.
            Err(CallError::Stopped) => return self.record(indices, Next::Keep),
            Err(e) => return self.fetch_failed(indices, &e),
        };
        for response in &responses {
            for topic in response.topics() {
                for partition in topic.partitions() {
                    let Some(index) = self.partitions.iter().position(|p| {
                        &*p.target.info.topic == topic.topic()
                            && p.target.info.partition == partition.partition()
                    }) else {
                        continue;
                    };
                    let next = match partition.data() {
                        Ok(data) => self.deliver(index, data),
                        Err(e) => self.handle_error(index, &e),
                    };
                    self.partitions[index].next = Some(next);
                }
            }
        }
    }

    /// A fetch without an answer (socket error, timeout): the connection may be dead, so start
    /// over with a fresh client, and send the partitions back for a leader lookup.
    fn fetch_failed(&mut self, indices: &[usize], error: &CallError) {
        tracing::warn!(broker = %self.leader, error = %error, "fetch failed; looking leaders up again");
        self.client.abandon();
        self.record(indices, Next::Return);
    }

    /// Records the same outcome for every partition at `indices`.
    fn record(&mut self, indices: &[usize], next: Next) {
        for &i in indices {
            self.partitions[i].next = Some(next);
        }
    }

    /// Applies the recorded outcomes. Partitions the answers did not mention have no leader in
    /// our metadata: they go back for a leader lookup.
    fn settle(&mut self) {
        let mut kept = Vec::with_capacity(self.partitions.len());
        for mut owned in std::mem::take(&mut self.partitions) {
            match owned.next.take() {
                Some(Next::Keep) => kept.push(owned),
                None if owned.target.info.fetch_offset() < 0 => kept.push(owned),
                Some(Next::Drop) => {}
                None => {
                    tracing::debug!(partition = %owned.target.info.topic_partition(), broker = %self.leader, "no leader for partition in this fetcher's metadata; looking it up again");
                    self.needs_metadata = true;
                    let _ = self.returned.send(ToManager::Returned(owned.target));
                }
                Some(Next::Return) => {
                    let _ = self.returned.send(ToManager::Returned(owned.target));
                }
            }
        }
        self.partitions = kept;
    }

    /// Queues a partition's fetched set (see [`queue_set`](Self::queue_set)); when nothing
    /// of it can be queued, reports a message set that cannot be decoded, or counts the
    /// answer as empty.
    fn deliver(&mut self, index: usize, data: &Data<'_>) -> Next {
        let info = self.partitions[index].target.info.clone();
        let high_watermark = data.highwatermark_offset();
        info.set_high_watermark(high_watermark);
        let Some((requested, epoch)) = self.partitions[index].requested else {
            return Next::Keep;
        };
        if info.epoch() != epoch {
            return Next::Keep;
        }
        match self.queue_set(index, data, requested, epoch) {
            Queued::Stopped => Next::Drop,
            Queued::Superseded => Next::Keep,
            Queued::Chunks => {
                let owned = &mut self.partitions[index];
                owned.empty_answers = 0;
                owned.crc_failures = 0;
                Next::Keep
            }
            Queued::Nothing { failed } => {
                let error = failed.as_ref().or(data.decode_error());
                match error.filter(|e| e.offset >= requested) {
                    Some(error) => self.undecodable(index, requested, epoch, error),
                    None if high_watermark > requested => {
                        self.empty_answer(index, requested, high_watermark)
                    }
                    None => Next::Keep,
                }
            }
        }
    }

    /// Queues the messages of a partition's fetched set from `requested` on, in chunks of at
    /// most about `fetch.message.max.bytes` (see [`ChunkBuilder`]), decompressing one
    /// compressed wrapper at a time, so a compressed answer is never held decompressed as a
    /// whole. The set ends at a wrapper that cannot be decoded: what comes before it is
    /// queued, and the next fetch starts at it (and reports it, see [`deliver`](Self::deliver)).
    fn queue_set(&self, index: usize, data: &Data<'_>, requested: i64, epoch: u64) -> Queued {
        let info = &self.partitions[index].target.info;
        let mut chunk = ChunkBuilder::new(self.config.fetch_message_max_bytes);
        let mut sent = false;
        let mut failed = None;
        for entry in data.entries() {
            let decoded;
            let messages = match entry {
                Entry::Message(m) => std::slice::from_ref(m),
                Entry::Compressed(c) => match c.decode(requested, true) {
                    Ok(d) => {
                        decoded = d;
                        decoded.messages()
                    }
                    Err(error) => {
                        failed = Some(DecodeError {
                            offset: c.offset,
                            error,
                        });
                        break;
                    }
                },
            };
            for m in messages.iter().filter(|m| m.offset >= requested) {
                if chunk.push(message_of(info, m)) {
                    match self.send_chunk(index, epoch, chunk.take()) {
                        Queued::Chunks => sent = true,
                        other => return other,
                    }
                }
            }
        }
        if !chunk.is_empty() {
            match self.send_chunk(index, epoch, chunk.take()) {
                Queued::Chunks => sent = true,
                other => return other,
            }
        }
        if sent {
            Queued::Chunks
        } else {
            Queued::Nothing { failed }
        }
    }

    /// An answer with no complete message below the high watermark. One is a benign race;
    /// [`EMPTY_ANSWERS_FOR_TOO_LARGE`] in a row mean the next message does not fit in
    /// `fetch.message.max.bytes`: reported, and the partition stops.
    fn empty_answer(&mut self, index: usize, requested: i64, high_watermark: i64) -> Next {
        let owned = &mut self.partitions[index];
        let info = owned.target.info.clone();
        owned.empty_answers += 1;
        if owned.empty_answers < EMPTY_ANSWERS_FOR_TOO_LARGE {
            tracing::debug!(partition = %info.topic_partition(), offset = requested, high_watermark, "no complete message below the high watermark; fetching again");
            return Next::Keep;
        }
        let error = FetchError::MessageTooLarge {
            topic: info.topic.to_string(),
            partition: info.partition,
            offset: requested,
            max_bytes: self.config.fetch_message_max_bytes,
        };
        tracing::error!(%error, "partition stalled");
        self.send(index, StreamItem::Error(error));
        Next::Drop
    }

    /// Queues `messages` (not empty, ascending) of the partition at `index`, fetched in
    /// `epoch`, and moves its fetch position past them: [`Queued::Chunks`], or
    /// [`Queued::Stopped`] when stopped or the partition is no longer owned, or
    /// [`Queued::Superseded`] when a seek ended `epoch` (nothing is queued or moved).
    fn send_chunk(&self, index: usize, epoch: u64, messages: Vec<Message>) -> Queued {
        let info = self.partitions[index].target.info.clone();
        if let Some(last) = messages.last() {
            if !info.mark_fetched(epoch, last.offset + 1) {
                return Queued::Superseded;
            }
        }
        let chunk = StreamItem::Chunk(FetchedChunk {
            epoch,
            info,
            messages,
        });
        if self.send(index, chunk) {
            Queued::Chunks
        } else {
            Queued::Stopped
        }
    }

    /// Blocks until the stream queue takes `item`; `false` when stopped or the partition is
    /// no longer owned (the item is dropped).
    fn send(&self, index: usize, item: StreamItem) -> bool {
        let target = &self.partitions[index].target;
        let mut item = item;
        loop {
            if self.stop.is_set() || !target.info.is_current() {
                return false;
            }
            match target.sink.try_send(item) {
                Ok(()) => return true,
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return false,
                Err(tokio::sync::mpsc::error::TrySendError::Full(back)) => {
                    item = back;
                    let stop = &self.stop;
                    let sink = &target.sink;
                    // Wait for room, a stop or the partition's revocation, whichever comes
                    // first (no busy loop): a released partition whose stream nobody reads
                    // must not hold up the fetcher's other partitions.
                    let revoked = target.info.revoked();
                    futures::executor::block_on(async {
                        let reserve = sink.reserve();
                        let stopped = stop.wake.notified();
                        futures::pin_mut!(reserve, stopped, revoked);
                        if stop.is_set() {
                            return;
                        }
                        // A permit, if any, is released at once: `try_send` takes the room.
                        let _ = futures::future::select(
                            futures::future::select(reserve, stopped),
                            revoked,
                        )
                        .await;
                    });
                }
            }
        }
    }

    /// A message set at `requested` that cannot be decoded. A CRC mismatch may be damage in
    /// transit: fetched again up to three times, then reported and the partition stopped. Any
    /// other decoding failure is in the data itself: reported once, and fetching goes on after
    /// the set (the application decides whether to skip it, see [`StreamItem::Undecodable`]).
    fn undecodable(
        &mut self,
        index: usize,
        requested: i64,
        epoch: u64,
        error: &DecodeError,
    ) -> Next {
        if let KafkaError::Kafka(KafkaCode::CorruptMessage) = error.error {
            return self.handle_error(index, &error.error);
        }
        let info = self.partitions[index].target.info.clone();
        let resume_at = error.offset + 1;
        let error = FetchError::Undecodable {
            topic: info.topic.to_string(),
            partition: info.partition,
            offset: requested,
            last_offset: error.offset,
            reason: error.error.to_string(),
        };
        if !info.mark_fetched(epoch, resume_at) {
            return Next::Keep;
        }
        tracing::error!(%error, "undecodable message set");
        let item = StreamItem::Undecodable {
            epoch,
            info,
            error,
            resume_at,
        };
        if self.send(index, item) {
            Next::Keep
        } else {
            Next::Drop
        }
    }

    fn handle_error(&mut self, index: usize, error: &KafkaError) -> Next {
        let owned = &mut self.partitions[index];
        let info = owned.target.info.clone();
        match error {
            KafkaError::Kafka(KafkaCode::OffsetOutOfRange) => {
                // Out of range at the offset requested; not when a seek moved it meanwhile.
                let Some((offset, epoch)) = owned.requested else {
                    return Next::Keep;
                };
                if info.reset_offsets_in(epoch, crate::partition::INVALID_OFFSET) {
                    tracing::warn!(topic = %info.topic, partition = info.partition, offset, policy = ?self.config.auto_offset_reset, "offset out of range: resetting");
                }
                Next::Keep
            }
            KafkaError::Kafka(KafkaCode::CorruptMessage) | KafkaError::InvalidSnappy(_) => {
                owned.crc_failures += 1;
                if owned.crc_failures >= 3 {
                    let error = FetchError::Corrupt {
                        topic: info.topic.to_string(),
                        partition: info.partition,
                        offset: info.fetch_offset(),
                        attempts: owned.crc_failures,
                    };
                    tracing::error!(%error, "partition stalled");
                    self.send(index, StreamItem::Error(error));
                    return Next::Drop;
                }
                tracing::warn!(topic = %info.topic, partition = info.partition, "corrupt data; fetching again");
                Next::Keep
            }
            other => {
                tracing::warn!(broker = %self.leader, topic = %info.topic, partition = info.partition, error = %other, "partition error; looking its leader up again");
                Next::Return
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64, key: Option<&[u8]>, value_len: usize) -> Message {
        Message {
            topic: Arc::from("t"),
            partition: 0,
            offset,
            key: key.map(<[u8]>::to_vec),
            value: vec![b'v'; value_len],
            epoch: 0,
        }
    }

    fn offsets(chunk: &[Message]) -> Vec<i64> {
        chunk.iter().map(|m| m.offset).collect()
    }

    #[test]
    fn a_chunk_is_full_at_its_budget_of_message_set_bytes() {
        // each message counts 26 bytes besides its key and value, as in a message set
        let mut chunk = ChunkBuilder::new(200);
        assert!(chunk.is_empty());
        assert!(!chunk.push(message(0, None, 40)), "66 bytes");
        assert!(
            !chunk.push(message(1, Some(b"0123456789"), 40)),
            "142 bytes"
        );
        assert!(
            chunk.push(message(2, None, 40)),
            "208 bytes: the last message passes it"
        );
        assert_eq!(offsets(&chunk.take()), [0, 1, 2]);
        assert!(chunk.is_empty(), "taking starts a new chunk");
        assert!(
            !chunk.push(message(3, None, 148)),
            "the count starts again: 174 bytes"
        );
        assert!(
            chunk.push(message(4, None, 0)),
            "an empty message counts too: 200 bytes"
        );
        assert_eq!(offsets(&chunk.take()), [3, 4]);
    }

    #[test]
    fn a_message_larger_than_the_budget_is_a_chunk_of_its_own() {
        let mut chunk = ChunkBuilder::new(10);
        assert!(chunk.push(message(7, None, 1000)));
        assert_eq!(offsets(&chunk.take()), [7]);
        // a non-positive budget (refused by the configuration anyway) cuts after every message
        let mut chunk = ChunkBuilder::new(0);
        assert!(chunk.push(message(8, None, 0)));
    }
}
