//! The rebalance state machine: one coordinator task per consumer that reacts to triggers
//! (members, topics, partitions, own session expiry), releases and re-claims partitions in the
//! Java consumer's order (spec §4), and starts the fetchers for what it won.
//!
//! Triggers only queue a wake-up; the task drains every queued trigger before an attempt, so a
//! burst of ZooKeeper events costs one rebalance, and an attempt that hears of a change before
//! claiming reads again at once instead of claiming a stale assignment. An attempt that meets
//! partitions their previous owners have not released yet keeps the owner nodes it created,
//! watches all the contended ones at once and claims the rest the moment they are gone
//! (`rebalance.backoff.ms`, jittered, is the upper bound); other failures back off. Attempts are retried until shutdown: unlike Java, we never stop consuming silently after
//! `rebalance.max.retries`.
//!
//! An attempt's work grows with what changed, not with the group's size: each member's
//! registration is read once while its node lives ([`crate::group::registrations`]), the reads
//! of an attempt are two round trips, and owner nodes are touched only for the partitions this
//! member claims or releases. Committed offsets are read after the claim (Java reads them
//! before), so a release commit of the previous owner is never missed.
//!
//! What does not move is not stopped (spec §4 "Beyond"): the release of steps 2-4 comes after
//! the assignment is computed and covers only the partitions that leave us or change thread
//! id (stream). A partition the new assignment gives the same thread id keeps its owner node,
//! fetch position, queued data and committed-offset checkpoint; the fetchers go on with it
//! and the new partitions join them. Java members agree: an owner node with its own thread id
//! is already claimed for them, one with ours means "not released yet", which only happens
//! while our view of the group is stale (our next attempt, already triggered, releases it).
//! When nothing stays, every partition is released the same way and the fetchers stay up for
//! what comes next (stopping them would delay our own claim); a failed attempt other than an
//! ownership conflict, and the loss of the session, still stop everything.
//!
//! Each step of an attempt is reported as a debug event of the target [`TIMELINE`] (off
//! unless that target is enabled, e.g. `RUST_LOG=zkconsumer::timeline=debug`): when a watch
//! fired, how long the read, the assignment, the release (commit, listener, deletes), the
//! claim, the offsets and the start took, how an attempt ended and how long a retry waited.
//! `scripts/rebalance-timeline` summarises them.
//!
//! Never: drop a pending ZooKeeper watch (ZooKeeper 3.4 closes the connection on the
//! RemoveWatches that sends), delete an owner or registration node that another session holds. The assignment itself is computed by the pure
//! [`crate::group::assign`]; this module owns the I/O around it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zookeeper_client::{OneshotWatcher, SessionState};

use crate::config::{AssignmentStrategy, ConsumerConfig};
use crate::fetch::{ChunkSender, FetchConfig, FetchError, FetchTarget, FetcherManager};
use crate::group::assign::{self, AssignError};
use crate::group::brokers::BrokerCache;
use crate::group::filter::TopicFilter;
use crate::group::identity::{ConsumerId, ThreadId};
use crate::group::ownership::Ownership;
use crate::group::registrations::RegistrationCache;
use crate::metrics::Metrics;
use crate::offsets::{GroupOffsets, OffsetStoreError};
use crate::partition::{PartitionTopicInfo, TopicPartition, INVALID_OFFSET};
use crate::stream::PendingErrors;
use crate::zk::layout::{
    self, BrokerInfo, Registration, SubscriptionPattern, TopicReplicaAssignment,
};
use crate::zk::liveness::Liveness;
use crate::zk::session::{is_node_event, EphemeralOutcome, ZkError, ZkSession};

/// The `tracing` target of the rebalance timeline events (see the module doc).
pub const TIMELINE: &str = "zkconsumer::timeline";

/// Milliseconds of `d`, for timeline events.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Why a rebalance attempt failed. Each is retried after `rebalance.backoff.ms`.
#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    /// A ZooKeeper read or write failed.
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// A node holds data that cannot be understood.
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    /// The offset storage failed.
    #[error(transparent)]
    Offsets(#[from] OffsetStoreError),
    /// The assignment could not be computed (e.g. roundrobin preconditions).
    #[error(transparent)]
    Assign(#[from] AssignError),
    /// Another thread still owns a partition we were assigned (it has not released yet).
    #[error("partition {partition} is still owned by {owner}")]
    OwnershipConflict {
        /// The contested partition.
        partition: TopicPartition,
        /// The owner node's data (a thread id).
        owner: String,
    },
}

/// What a member subscribes to.
#[derive(Debug, Clone)]
pub enum Subscription {
    /// Explicit topic -> stream count map.
    Static(BTreeMap<String, u32>),
    /// Every topic matching (whitelist) or not matching (blacklist) a filter, shared by
    /// `streams` streams.
    Filter {
        /// The topic filter.
        filter: TopicFilter,
        /// How many streams share all matched topics.
        streams: u32,
    },
}

impl Subscription {
    /// The registration JSON this subscription is announced with.
    pub fn registration(&self, now_ms: u64) -> Registration {
        match self {
            Subscription::Static(map) => Registration::new_static(map.clone(), now_ms),
            Subscription::Filter { filter, streams } => {
                Registration::new_filter(filter.pattern(), filter.regex_text(), *streams, now_ms)
            }
        }
    }

    fn is_filter(&self) -> bool {
        matches!(self, Subscription::Filter { .. })
    }
}

/// Callbacks around a rebalance (Java's `ConsumerRebalanceListener`), so an application can
/// flush its state before partitions go and learn what it got.
///
/// Both callbacks run on a thread of the runtime's blocking pool while the rebalance waits for
/// them: they may block (e.g. commit with [`Committer::commit_blocking`](crate::consumer::Committer)).
pub trait RebalanceListener: Send + Sync {
    /// Called after delivery of the partitions being released stopped and their processed
    /// offsets were committed (when auto-commit is on), before their ownership is released.
    /// Unlike Java, `owned` holds only the partitions that are released: a partition the new
    /// assignment leaves on the same stream is not released and keeps being delivered (Java
    /// releases and re-claims everything, and passes everything owned). Not called when
    /// nothing is released (Java passes an empty map).
    ///
    /// With `auto.commit.enable=false` this is where an application commits (as in Java): a
    /// commit made now ([`Committer::commit_blocking`](crate::consumer::Committer), or
    /// `Consumer::commit_offsets` from another task) covers the partitions being released
    /// too, with what the application processed of them.
    fn before_releasing_partitions(&self, owned: &BTreeMap<String, BTreeSet<i32>>) {
        let _ = owned;
    }

    /// Called after a new assignment was claimed, before fetching starts. `assignment` maps
    /// topic -> partition -> owning thread id for the whole group (this member's topics).
    fn before_starting_fetchers(
        &self,
        consumer_id: &str,
        assignment: &BTreeMap<String, BTreeMap<i32, String>>,
    ) {
        let _ = (consumer_id, assignment);
    }
}

/// Why the coordinator should look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Streams were just created.
    Start,
    /// A watched node changed (path).
    Changed(String),
    /// This member's own session expired.
    SessionExpired,
}

/// State shared between the public handle, the coordinator task, the committer and the streams.
pub(crate) struct Shared {
    pub config: ConsumerConfig,
    pub consumer_id: ConsumerId,
    pub zk: ZkSession,
    pub offsets: GroupOffsets,
    pub liveness: Arc<Liveness>,
    /// `true` ends every stream of this consumer.
    pub stop_streams: watch::Sender<bool>,
    /// Partitions owned in the current assignment.
    pub owned: Mutex<Vec<Arc<PartitionTopicInfo>>>,
    /// Partitions being released while the listener's `before_releasing_partitions` runs:
    /// still ours (owner nodes not deleted yet), so a commit made then covers them (Java's
    /// order: the listener commits before ownership is released).
    pub releasing: Mutex<Vec<Arc<PartitionTopicInfo>>>,
    /// Last offset written or read per partition (unchanged offsets are not rewritten); the
    /// async mutex also serialises commits.
    pub checkpoints: tokio::sync::Mutex<HashMap<TopicPartition, i64>>,
    pub listener: Mutex<Option<Arc<dyn RebalanceListener>>>,
    /// Completed rebalances, for observers and tests.
    pub rebalances: watch::Sender<u64>,
    /// This member's owner nodes (see [`crate::group::ownership`]).
    pub ownership: Ownership,
    /// Tasks holding ZooKeeper watches, ended at shutdown after the last ZooKeeper writes.
    pub leftover: Mutex<Vec<JoinHandle<()>>>,
    pub metrics: Arc<Metrics>,
}

impl Shared {
    pub(crate) fn owned_snapshot(&self) -> Vec<Arc<PartitionTopicInfo>> {
        match self.owned.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// What a commit asked for now covers: the current owned partitions and those being
    /// released while the listener runs.
    pub(crate) fn committable(&self) -> Vec<Arc<PartitionTopicInfo>> {
        let mut infos: Vec<_> = self
            .owned_snapshot()
            .into_iter()
            .filter(|i| i.is_current())
            .collect();
        infos.extend(self.lock_releasing().iter().cloned());
        infos
    }

    fn lock_releasing(&self) -> std::sync::MutexGuard<'_, Vec<Arc<PartitionTopicInfo>>> {
        match self.releasing.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Runs `call` with the listener (if any) on a blocking-pool thread and waits for it, so a
    /// listener may block (commit) without stalling the runtime's workers.
    async fn call_listener(&self, call: impl FnOnce(&dyn RebalanceListener) + Send + 'static) {
        let Some(listener) = self.listener() else {
            return;
        };
        if let Err(e) = tokio::task::spawn_blocking(move || call(listener.as_ref())).await {
            tracing::error!(error = %e, "rebalance listener panicked");
        }
    }

    fn replace_owned(&self, infos: Vec<Arc<PartitionTopicInfo>>) -> Vec<Arc<PartitionTopicInfo>> {
        match self.owned.lock() {
            Ok(mut g) => std::mem::replace(&mut *g, infos),
            Err(p) => std::mem::replace(&mut *p.into_inner(), infos),
        }
    }

    pub(crate) fn leftover_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        match self.leftover.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn listener(&self) -> Option<Arc<dyn RebalanceListener>> {
        match self.listener.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn registration_path(&self) -> String {
        layout::consumer_registration_path(&self.config.group_id, self.consumer_id.as_str())
    }

    /// Writes the processed offset of each given partition whose value changed since it was
    /// last written or read. Returns how many offsets were written.
    pub(crate) async fn commit(
        &self,
        infos: &[Arc<PartitionTopicInfo>],
    ) -> Result<usize, OffsetStoreError> {
        let started = Instant::now();
        let result = self.commit_changed(infos).await;
        self.metrics
            .record_commit(started.elapsed(), result.is_ok());
        result
    }

    async fn commit_changed(
        &self,
        infos: &[Arc<PartitionTopicInfo>],
    ) -> Result<usize, OffsetStoreError> {
        let mut checkpoints = self.checkpoints.lock().await;
        let changed: Vec<(TopicPartition, i64)> = infos
            .iter()
            .map(|info| (info.topic_partition(), info.consumed_offset()))
            .filter(|(tp, offset)| *offset >= 0 && checkpoints.get(tp) != Some(offset))
            .collect();
        if changed.is_empty() {
            return Ok(0);
        }
        self.offsets.commit_many(&changed).await?;
        for (tp, offset) in &changed {
            tracing::debug!(partition = %tp, offset, "committed offset");
            checkpoints.insert(tp.clone(), *offset);
        }
        Ok(changed.len())
    }

    /// Commits with up to `offsets.commit.max.retries` retries (shutdown and manual commits).
    pub(crate) async fn commit_with_retries(
        &self,
        infos: &[Arc<PartitionTopicInfo>],
    ) -> Result<usize, OffsetStoreError> {
        let mut attempt = 0;
        loop {
            match self.commit(infos).await {
                Ok(n) => return Ok(n),
                Err(e) if attempt < self.config.offsets_commit_max_retries => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "offset commit failed; retrying");
                    tokio::time::sleep(self.config.offsets_channel_backoff).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// What a member reads before it registers: the registrations of the members already
    /// there and the brokers, into caches its coordinator starts with. The rebalance this
    /// member's registration starts (in every member) then does not wait for its reads of
    /// every other member: at 200 members that is 199 reads on one connection, and ZooKeeper
    /// reads one request per connection per pass over its busy connections (seconds in a
    /// storm). Nothing waits for these reads but this member's own start. A failed read is
    /// only logged: the first attempt reads what is missing.
    pub(crate) async fn warm_up(&self) -> WarmCaches {
        let ids_path = layout::consumer_ids_path(&self.config.group_id);
        let mut registrations = RegistrationCache::default();
        let mut brokers = BrokerCache::default();
        let members = async {
            let ids = self.zk.children(&ids_path).await?;
            registrations.update(&self.zk, &ids_path, &ids).await
        };
        let (members, read_brokers) = futures::join!(members, brokers.get(&self.zk));
        for error in [members.err(), read_brokers.err()].into_iter().flatten() {
            tracing::debug!(%error, "reading the group before registering failed; the first rebalance reads it");
        }
        WarmCaches(Some((registrations, brokers)))
    }

    /// Creates this member's registration node (`/consumers/<group>/ids/<consumerId>`).
    ///
    /// A node of that name left by another session (a previous process with the same
    /// `consumer.id` that died without closing its session) is waited for, as Java does,
    /// until ZooKeeper expires it — never deleted: it may as well belong to a live member with
    /// a duplicate `consumer.id`, which then gets its partitions stolen. If it is still there
    /// after one and a half session timeouts, the id is taken by a live member: an error
    /// naming it.
    pub(crate) async fn register(&self, subscription: &Subscription) -> Result<(), RegisterError> {
        let json = subscription.registration(now_ms()).to_json();
        let path = self.registration_path();
        let patience = self.config.zookeeper_session_timeout * 3 / 2;
        let started = Instant::now();
        let mut logged = false;
        loop {
            let holder = match self.zk.create_ephemeral(&path, json.as_bytes()).await? {
                EphemeralOutcome::Created | EphemeralOutcome::ExistsSame { .. } => return Ok(()),
                EphemeralOutcome::ExistsOther { data, .. } => data,
            };
            // Our own session (a retry with a newer timestamp): ours to replace.
            if self.zk.ephemeral_owner(&path).await? == Some(self.zk.session_id()) {
                self.zk.delete(&path).await?;
                continue;
            }
            if started.elapsed() >= patience {
                return Err(RegisterError::DuplicateConsumerId {
                    consumer_id: self.consumer_id.as_str().to_string(),
                    path,
                    holder,
                });
            }
            if !logged {
                logged = true;
                tracing::warn!(
                    path = %path,
                    "consumer id registered by another session (a previous run's, not expired \
                     yet?): waiting for ZooKeeper to expire it"
                );
            }
            // Polled rather than watched: a watch left behind on giving up would have to be
            // dropped, and dropping one sends RemoveWatches, which ZooKeeper 3.4 cannot answer.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What [`Shared::warm_up`] read, for the coordinator to start with. Its watches must not be
/// dropped unfired while the session lives (ZooKeeper 3.4 answers the RemoveWatches that would
/// send by closing the connection): dropped unused (the registration failed, or the caller gave
/// up on it), it leaves them to a task that waits until they fire or the session closes.
pub(crate) struct WarmCaches(Option<(RegistrationCache, BrokerCache)>);

impl Drop for WarmCaches {
    fn drop(&mut self) {
        let Some((registrations, brokers)) = self.0.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                futures::join!(registrations.into_pending(), brokers.into_pending());
            });
        }
    }
}

/// Why this member could not register.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A ZooKeeper request failed.
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// Another live session holds a registration of the same consumer id.
    #[error(
        "consumer.id {consumer_id} is already registered by another live member ({path} holds \
         {holder}): give each member its own consumer.id"
    )]
    DuplicateConsumerId {
        /// The consumer id (`<group>_<consumer.id>`).
        consumer_id: String,
        /// The registration node.
        path: String,
        /// The registration the other member wrote.
        holder: String,
    },
}

/// Milliseconds since the epoch (registration timestamps).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Where the data of one (topic, thread) goes: the stream senders of this member.
#[derive(Debug, Clone)]
pub(crate) struct StreamRouting {
    /// Static subscriptions: (topic, n) -> stream; filters: ("", n) -> stream.
    senders: BTreeMap<(String, u32), (usize, ChunkSender)>,
    /// Problems kept for each stream (by stream index) that its queue must not lose.
    pending: BTreeMap<usize, Arc<PendingErrors>>,
    by_topic: bool,
}

impl StreamRouting {
    pub(crate) fn new(by_topic: bool) -> Self {
        StreamRouting {
            senders: BTreeMap::new(),
            pending: BTreeMap::new(),
            by_topic,
        }
    }

    pub(crate) fn insert(
        &mut self,
        topic: Option<&str>,
        n: u32,
        index: usize,
        sender: ChunkSender,
        pending: Arc<PendingErrors>,
    ) {
        let topic = if self.by_topic {
            topic.unwrap_or("")
        } else {
            ""
        };
        self.senders.insert((topic.to_string(), n), (index, sender));
        self.pending.insert(index, pending);
    }

    /// Keeps `error` for the stream at `index`: its next call returns it.
    fn report(&self, index: usize, error: FetchError) {
        if let Some(pending) = self.pending.get(&index) {
            pending.push(error);
        }
    }

    /// Keeps `error` for every stream that may carry `topic` (a partition no stream was
    /// found for).
    fn report_topic(&self, topic: &str, error: &FetchError) {
        for ((t, _), (index, _)) in &self.senders {
            if !self.by_topic || t == topic {
                self.report(*index, error.clone());
            }
        }
    }

    /// The stream an owned partition's data goes to (by its stream index).
    fn route_index(&self, info: &PartitionTopicInfo) -> Option<(usize, ChunkSender)> {
        self.senders
            .iter()
            .find(|((topic, _), (index, _))| {
                *index == info.stream_index && (!self.by_topic || **topic == *info.topic)
            })
            .map(|(_, sender)| sender.clone())
    }

    fn route(&self, topic: &str, thread: &ThreadId) -> Option<(usize, ChunkSender)> {
        let n = thread.stream_number()?;
        let topic = if self.by_topic { topic } else { "" };
        self.senders.get(&(topic.to_string(), n)).cloned()
    }
}

/// What one attempt read of the group (steps 1-5).
struct GroupView {
    brokers: Vec<BrokerInfo>,
    /// Every member (us included) -> topic -> stream count.
    members: BTreeMap<ConsumerId, BTreeMap<String, u32>>,
    /// Roundrobin only: each member's topics in its registration's order.
    source_orders: BTreeMap<ConsumerId, Vec<String>>,
    partitions_per_topic: BTreeMap<String, Vec<i32>>,
}

/// What [`Coordinator::read_group`] read.
struct GroupRead {
    member_ids: Vec<String>,
    /// Read only when some member subscribes with a filter (else empty).
    all_topics: Vec<String>,
    my_counts: BTreeMap<String, u32>,
    /// Our topics' nodes (`None`: the topic does not exist).
    topic_nodes: Vec<(String, Option<Vec<u8>>)>,
}

/// The value of a read that may have set a watch: the watch joins `new_watches`; an error is
/// kept in `failure` (the first one wins) and gives `None`.
fn keep_watch<T>(
    read: Result<(T, Option<(String, OneshotWatcher)>), ZkError>,
    new_watches: &mut Vec<(String, OneshotWatcher)>,
    failure: &mut Option<RebalanceError>,
) -> Option<T> {
    match read {
        Ok((value, watch)) => {
            new_watches.extend(watch);
            Some(value)
        }
        Err(e) => {
            failure.get_or_insert(e.into());
            None
        }
    }
}

/// The assignment computed from a [`GroupView`].
struct Plan {
    global: BTreeMap<TopicPartition, ThreadId>,
    mine: BTreeMap<TopicPartition, ThreadId>,
}

/// A computed assignment with the brokers it was read with, ready to claim.
struct Prepared {
    brokers: Vec<BrokerInfo>,
    plan: Plan,
}

/// How an attempt failed.
enum Failure {
    /// A trigger arrived before claiming: read again at once.
    Superseded,
    /// Other members still hold some of our partitions (owner node paths, at least one): the
    /// nodes we created are kept; the assignment is retried once these are gone.
    Conflict {
        /// The first conflict, for the log.
        error: RebalanceError,
        contended: Vec<String>,
        retry: Prepared,
    },
    /// The attempt failed otherwise.
    Error(RebalanceError, Option<Prepared>),
}

impl Failure {
    fn plain(e: impl Into<RebalanceError>) -> Self {
        Failure::Error(e.into(), None)
    }
}

/// What ended the wait before a retry.
enum Wake {
    /// The contended owner nodes went away (or one was gone already).
    OwnerGone,
    /// A watched node of the group changed: read everything again.
    Changed,
    /// `rebalance.backoff.ms` (jittered) passed.
    Backoff,
    /// Shutdown.
    Stop,
}

impl Wake {
    fn name(&self) -> &'static str {
        match self {
            Wake::OwnerGone => "owner_gone",
            Wake::Changed => "changed",
            Wake::Backoff => "backoff",
            Wake::Stop => "stop",
        }
    }
}

/// The coordinator task's private state.
pub(crate) struct Coordinator {
    shared: Arc<Shared>,
    subscription: Subscription,
    routing: StreamRouting,
    triggers: mpsc::UnboundedReceiver<Trigger>,
    trigger_tx: mpsc::UnboundedSender<Trigger>,
    /// This coordinator's branch of the stop tree (process -> consumer -> coordinator).
    stop: CancellationToken,
    fetchers: Option<FetcherManager>,
    /// One pending watch per path. A watch is never dropped before it fires while the session
    /// lives: dropping makes the client send RemoveWatches, which ZooKeeper 3.4 does not know
    /// (it answers by closing the connection).
    watch_tasks: HashMap<String, JoinHandle<()>>,
    session_task: Option<JoinHandle<()>>,
    /// Fired watches on contended owner nodes, by path (see [`Coordinator::wait_before_retry`]).
    owner_gone: mpsc::UnboundedReceiver<String>,
    owner_gone_tx: mpsc::UnboundedSender<String>,
    /// Existing topics of our subscription at the last attempt: a change of the topic list
    /// that does not change this set does not rebalance (as Java's filter consumers).
    subscribed_topics: Option<BTreeSet<String>>,
    /// Owned partitions not being fetched (their committed offset was unusable): never kept
    /// across a rebalance, so the next one reads their offset again.
    not_fetched: BTreeSet<TopicPartition>,
    /// The group's registrations as last read: an attempt reads only the new ones.
    registrations: RegistrationCache,
    /// The live brokers as last read, while their list has not changed.
    brokers: BrokerCache,
}

impl Coordinator {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Arc<Shared>,
        subscription: Subscription,
        routing: StreamRouting,
        triggers: mpsc::UnboundedReceiver<Trigger>,
        trigger_tx: mpsc::UnboundedSender<Trigger>,
        stop: CancellationToken,
    ) -> Self {
        let (owner_gone_tx, owner_gone) = mpsc::unbounded_channel();
        Coordinator {
            shared,
            subscription,
            routing,
            triggers,
            trigger_tx,
            stop,
            fetchers: None,
            watch_tasks: HashMap::new(),
            session_task: None,
            subscribed_topics: None,
            not_fetched: BTreeSet::new(),
            registrations: RegistrationCache::default(),
            brokers: BrokerCache::default(),
            owner_gone,
            owner_gone_tx,
        }
    }

    /// Starts from what [`Shared::warm_up`] read.
    pub(crate) fn with_caches(mut self, mut caches: WarmCaches) -> Self {
        let (registrations, brokers) = caches.0.take().unwrap_or_default();
        self.shared
            .metrics
            .set_registrations_read(registrations.reads());
        self.registrations = registrations;
        self.brokers = brokers;
        self
    }

    fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Runs until the consumer or the process shuts down; then stops the fetchers and ends the
    /// streams. Committing and releasing ownership is left to `Consumer::shutdown`.
    pub(crate) async fn run(mut self) {
        self.watch_session();
        loop {
            let trigger = tokio::select! {
                t = self.triggers.recv() => t,
                _ = self.stop.cancelled() => None,
            };
            let Some(first) = trigger else { break };
            let mut reasons = vec![first];
            while let Ok(t) = self.triggers.try_recv() {
                if !reasons.contains(&t) {
                    reasons.push(t);
                }
            }
            if self.stopping() {
                break;
            }
            // A fired watch's task may not count as finished yet: forget it, so the next read
            // of that path sets a new watch.
            for reason in &reasons {
                if let Trigger::Changed(path) = reason {
                    self.watch_tasks.remove(path);
                }
            }
            if reasons == [Trigger::Changed(layout::BROKER_TOPICS_PATH.to_string())]
                && !self.subscribed_topics_changed().await
            {
                tracing::debug!("topic list changed, none of ours: no rebalance");
                continue;
            }
            tracing::debug!(?reasons, "rebalance triggered");
            tracing::debug!(target: TIMELINE, consumer = %self.shared.consumer_id, triggers = reasons.len(), "rebalance triggered");
            // Expiry notices may be stale (sent before a renewal): the session state decides.
            if !self.shared.zk.is_alive() && !self.recover_session().await {
                break;
            }
            self.rebalance().await;
        }
        self.stop_fetchers().await;
        // Pending watches are ended by `Consumer::shutdown` after its last ZooKeeper writes.
        let mut leftover = self.shared.leftover_tasks();
        leftover.extend(self.watch_tasks.drain().map(|(_, task)| task));
        leftover.extend(self.session_task.take());
        let registrations = std::mem::take(&mut self.registrations);
        leftover.push(tokio::spawn(registrations.into_pending()));
        let brokers = std::mem::take(&mut self.brokers);
        leftover.push(tokio::spawn(brokers.into_pending()));
        drop(leftover);
        self.shared.stop_streams.send_replace(true);
    }

    /// The existing topics among `all_topics` this member subscribes to.
    fn relevant_topics(&self, all_topics: &[String]) -> BTreeSet<String> {
        let exclude_internal = self.shared.config.exclude_internal_topics;
        all_topics
            .iter()
            .filter(|t| match &self.subscription {
                Subscription::Static(map) => map.contains_key(*t),
                Subscription::Filter { filter, .. } => filter.is_topic_allowed(t, exclude_internal),
            })
            .cloned()
            .collect()
    }

    /// After the topic list changed: re-arms its watch and tells whether the set of topics we
    /// subscribe to changed (Java's filter consumers rebalance only then). Errors count as a
    /// change: the rebalance attempt will look properly.
    async fn subscribed_topics_changed(&mut self) -> bool {
        let mut watchers = Vec::new();
        let read = self
            .read_children(layout::BROKER_TOPICS_PATH, true, &mut watchers)
            .await;
        self.install_watches(watchers);
        match (read, &self.subscribed_topics) {
            (Ok(all), Some(before)) => self.relevant_topics(&all) != *before,
            _ => true,
        }
    }

    /// Watches this session's state; expiry wakes the coordinator.
    fn watch_session(&mut self) {
        if let Some(task) = self.session_task.take() {
            task.abort();
        }
        let mut states = self.shared.zk.state_watcher();
        let tx = self.trigger_tx.clone();
        let liveness = self.shared.liveness.clone();
        self.session_task = Some(tokio::spawn(async move {
            loop {
                match states.changed().await {
                    SessionState::Expired => {
                        tracing::warn!("ZooKeeper session expired: delivery held, re-registering");
                        liveness.mark_expired();
                        let _ = tx.send(Trigger::SessionExpired);
                        return;
                    }
                    SessionState::Closed | SessionState::AuthFailed => return,
                    SessionState::Disconnected => {
                        tracing::warn!("ZooKeeper connection lost; reconnecting")
                    }
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                        tracing::debug!("ZooKeeper connected")
                    }
                }
            }
        }));
    }

    /// After expiry: drop everything owned (the owner nodes died with the session; another
    /// member may already have these partitions, so nothing is committed for them), open a new
    /// session, register again. Returns `false` when shutdown came first.
    async fn recover_session(&mut self) -> bool {
        self.shared.liveness.mark_expired();
        for info in self.shared.replace_owned(Vec::new()) {
            info.revoke();
        }
        tracing::debug!("session recovery: stopping fetchers");
        self.stop_fetchers().await;
        tracing::debug!("session recovery: fetchers stopped");
        self.shared.checkpoints.lock().await.clear();
        // Our owner nodes died with the session.
        self.shared.ownership.forget_all();
        // Watches of the expired session are gone on the server side.
        for (_, task) in self.watch_tasks.drain() {
            task.abort();
        }
        self.registrations.clear();
        self.brokers.clear();
        let backoff = self
            .shared
            .config
            .rebalance_backoff
            .max(Duration::from_millis(100));
        loop {
            if self.stopping() {
                return false;
            }
            let sent = Instant::now();
            tracing::debug!("session recovery: opening a new session");
            let result = match self.shared.zk.renew().await {
                Ok(()) => self.shared.register(&self.subscription).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => {
                    let granted = self.shared.zk.negotiated_session_timeout();
                    self.shared.liveness.set_session_timeout(granted);
                    self.shared.liveness.confirm(sent);
                    self.watch_session();
                    tracing::info!("new ZooKeeper session established and member re-registered");
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-establish ZooKeeper session; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(jittered(backoff)) => {}
                        _ = self.stop.cancelled() => return false,
                    }
                }
            }
        }
    }

    async fn stop_fetchers(&mut self) {
        if let Some(fetchers) = self.fetchers.take() {
            fetchers.shutdown().await;
        }
    }

    /// Stops delivery of everything owned, commits it (auto-commit), tells the listener, and
    /// deletes our owner nodes.
    async fn release_partitions(&mut self) {
        let released = self.shared.replace_owned(Vec::new());
        // Revoked first (nothing of them is delivered any more, so the commit is final), as
        // for the partitions that move while others stay: the owner nodes go before the fetch
        // threads have stopped, so the members waiting for them do not wait for those too.
        if !released.is_empty() {
            self.release(&released).await;
        }
        let stopping = Instant::now();
        self.stop_fetchers().await;
        tracing::debug!(
            target: TIMELINE,
            consumer = %self.shared.consumer_id,
            stop_fetchers_ms = ms(stopping.elapsed()),
            "fetchers stopped"
        );
    }

    /// Revokes, commits (auto-commit), tells the listener about and deletes the owner nodes of
    /// `released`, which are no longer in the owned set.
    ///
    /// Without a listener, the owner nodes are read (ours?) while the offsets are committed,
    /// and deleted after the commit in one more round trip; with one, they are read after it
    /// returns, as the listener may take long.
    async fn release(&self, released: &[Arc<PartitionTopicInfo>]) {
        let began = Instant::now();
        for info in released {
            info.revoke();
        }
        let partitions: Vec<TopicPartition> =
            released.iter().map(|i| i.topic_partition()).collect();
        let commit = async {
            if self.shared.config.auto_commit_enable {
                if let Err(e) = self.shared.commit(released).await {
                    tracing::warn!(error = %e, "commit before releasing partitions failed");
                }
            }
        };
        let checked = if self.shared.listener().is_none() {
            let (_, checked) =
                futures::join!(commit, self.shared.ownership.check_release(&partitions));
            Some(checked)
        } else {
            commit.await;
            None
        };
        let mut owned: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for info in released {
            owned
                .entry(info.topic.to_string())
                .or_default()
                .insert(info.partition);
        }
        // Still ours while the listener runs: its commits cover them.
        let committed = began.elapsed();
        *self.shared.lock_releasing() = released.to_vec();
        self.shared
            .call_listener(move |l| l.before_releasing_partitions(&owned))
            .await;
        self.shared.lock_releasing().clear();
        let listened = began.elapsed();
        match checked {
            Some(checked) => self.shared.ownership.finish_release(checked).await,
            None => self.shared.ownership.release(&partitions).await,
        }
        tracing::debug!(
            target: TIMELINE,
            consumer = %self.shared.consumer_id,
            partitions = released.len(),
            commit_ms = ms(committed),
            listener_ms = ms(listened - committed),
            delete_ms = ms(began.elapsed() - listened),
            "released"
        );
    }

    async fn rebalance(&mut self) {
        let started = Instant::now();
        let max = self.shared.config.rebalance_max_retries.max(1);
        let mut attempt: u32 = 0;
        // The group as last read, while no watch says it changed: a retry after contended
        // owner nodes went away only claims again (with fresh offsets), without a full read.
        let mut prepared: Option<Prepared> = None;
        loop {
            attempt += 1;
            if self.stopping() {
                return;
            }
            // A change heard since the assignment was computed makes it stale: read again.
            if prepared.is_some() && self.superseded() {
                tracing::debug!(target: TIMELINE, consumer = %self.shared.consumer_id, attempt, "superseded before retrying the claim");
                prepared = None;
                self.drop_unstarted_claims().await;
            }
            self.shared.metrics.record_rebalance_attempt();
            let result = match prepared.take() {
                Some(p) => self.claim_and_start(p).await,
                None => self.attempt().await,
            };
            let (e, retry, contended) = match result {
                Ok(()) => {
                    tracing::debug!(
                        target: TIMELINE,
                        consumer = %self.shared.consumer_id,
                        attempt,
                        elapsed_ms = ms(started.elapsed()),
                        "rebalance complete"
                    );
                    tracing::info!(
                        consumer = %self.shared.consumer_id,
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        partitions = self.shared.owned_snapshot().len(),
                        "rebalance complete"
                    );
                    self.shared.metrics.record_rebalance(started.elapsed());
                    self.shared.rebalances.send_modify(|n| *n += 1);
                    return;
                }
                Err(Failure::Superseded) => {
                    tracing::debug!(target: TIMELINE, consumer = %self.shared.consumer_id, attempt, "superseded");
                    // What the stale assignment moved is released; the next attempt releases
                    // what the current one moves.
                    tracing::debug!(attempt, "group changed during the attempt: reading again");
                    if !self.shared.zk.is_alive() && !self.recover_session().await {
                        return;
                    }
                    continue;
                }
                Err(Failure::Conflict {
                    error,
                    contended,
                    retry,
                }) => (error, Some(retry), contended),
                Err(Failure::Error(e, retry)) => (e, retry, Vec::new()),
            };
            self.shared.metrics.record_rebalance_failure();
            let conflict = !contended.is_empty();
            if attempt >= max {
                tracing::error!(
                    consumer = %self.shared.consumer_id, attempt, error = %e,
                    "rebalance still failing after rebalance.max.retries attempts; \
                     retrying until it succeeds (not consuming meanwhile)"
                );
            } else if conflict {
                tracing::debug!(attempt, error = %e, contended = contended.len(), "partitions not released yet; waiting for them");
            } else {
                tracing::warn!(attempt, error = %e, "rebalance attempt failed; backing off");
            }
            // A conflict kept this attempt's claims and already released what moves: what
            // stays keeps flowing while we wait. Any other failure stops all.
            if !conflict {
                self.release_partitions().await;
            }
            let backoff = jittered(self.shared.config.rebalance_backoff);
            let waiting = Instant::now();
            let wake = self.wait_before_retry(backoff, contended).await;
            tracing::debug!(
                target: TIMELINE,
                consumer = %self.shared.consumer_id,
                attempt,
                conflict,
                error = %e,
                wait_ms = ms(waiting.elapsed()),
                wake = wake.name(),
                "attempt failed"
            );
            match wake {
                Wake::Stop => return,
                Wake::Changed => self.drop_unstarted_claims().await,
                Wake::OwnerGone | Wake::Backoff => prepared = retry,
            }
            if !self.shared.zk.is_alive() {
                prepared = None;
                if !self.recover_session().await {
                    return;
                }
            }
        }
    }

    /// Waits before the next attempt: until every contended owner node (`contended`, owner
    /// node paths) is gone, a watched node of the group changes, `backoff` passes (the upper
    /// bound, as `rebalance.backoff.ms` in Java) or shutdown. The contended nodes are watched
    /// together (one round trip), so members slow to release cost one watch and one
    /// notification each, not a retry per node or per interval.
    async fn wait_before_retry(&mut self, backoff: Duration, contended: Vec<String>) -> Wake {
        while self.owner_gone.try_recv().is_ok() {} // notices of earlier waits
        let mut remaining: BTreeSet<String> = BTreeSet::new();
        if !contended.is_empty() {
            remaining = self.watch_owners(&contended).await;
            if remaining.len() < contended.len() {
                // One went meanwhile: claim it (and see about the others) now.
                return Wake::OwnerGone;
            }
            // Counted once the watches are set: from here waiting costs no request.
            self.shared.metrics.record_ownership_wait();
        }
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Wake::Backoff,
                Some(path) = self.owner_gone.recv() => {
                    remaining.remove(&path);
                    if remaining.is_empty() {
                        return Wake::OwnerGone;
                    }
                }
                Some(trigger) = self.triggers.recv() => {
                    self.absorb(&trigger);
                    return Wake::Changed;
                }
                _ = self.stop.cancelled() => return Wake::Stop,
            }
        }
    }

    /// Which of the owner nodes `paths` still exist; while one does, a watch on it is pending
    /// (at most one per path) and its firing is sent to `owner_gone`. All asked in one round
    /// trip. A node that cannot be asked counts as existing (the backoff bounds the wait).
    async fn watch_owners(&mut self, paths: &[String]) -> BTreeSet<String> {
        let zk = self.shared.zk.clone();
        let asks = paths.iter().map(|path| {
            let (zk, pending) = (zk.clone(), self.watching(path));
            async move {
                if pending {
                    zk.ephemeral_owner(path).await.map(|o| (o.is_some(), None))
                } else {
                    zk.exists_watch(path).await.map(|(e, w)| (e, Some(w)))
                }
            }
        });
        let answers = futures::future::join_all(asks).await;
        let mut remaining = BTreeSet::new();
        for (path, answer) in paths.iter().zip(answers) {
            match answer {
                Ok((exists, watcher)) => {
                    if let Some(watcher) = watcher {
                        self.install_owner_watch(path, watcher);
                    }
                    if exists {
                        remaining.insert(path.clone());
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, path = %path, "cannot watch a contended owner node");
                    remaining.insert(path.clone());
                }
            }
        }
        remaining
    }

    /// The group changed while nodes kept from a conflict were not started yet: they were
    /// claimed for an assignment that is stale now, and the members the newer one gives them
    /// to would wait for them through our whole next read. Deleted now (Java's undo, only
    /// when the view changed); the next attempt creates again those it still gets.
    async fn drop_unstarted_claims(&self) {
        let owned: BTreeSet<TopicPartition> = self
            .shared
            .owned_snapshot()
            .iter()
            .map(|i| i.topic_partition())
            .collect();
        self.shared.ownership.remove_unstarted(&owned).await;
    }

    /// Keeps the watch on the owner node `path` until it fires (never dropped unfired: see
    /// `watch_tasks`); its firing is sent to `owner_gone`.
    fn install_owner_watch(&mut self, path: &str, watcher: OneshotWatcher) {
        let tx = self.owner_gone_tx.clone();
        let consumer = self.shared.consumer_id.clone();
        let key = path.to_string();
        self.watch_tasks.insert(
            path.to_string(),
            tokio::spawn(async move {
                let event = watcher.changed().await;
                if is_node_event(event.event_type) {
                    tracing::debug!(target: TIMELINE, %consumer, path = %key, "owner node watch fired");
                    let _ = tx.send(key);
                }
            }),
        );
    }

    /// Takes note of a trigger consumed outside the main loop: the next attempt reads
    /// everything again, so the trigger is served; its watch must be set again.
    fn absorb(&mut self, trigger: &Trigger) {
        if let Trigger::Changed(path) = trigger {
            self.watch_tasks.remove(path);
        }
    }

    /// Whether a trigger arrived since the attempt began (membership or topics changed, or
    /// the session expired): the assignment computed is already stale, so claiming it would
    /// only fail or be undone. Bursts of changes (many members starting or dying together)
    /// so cost one read each instead of a claim round each, with no delay added to a single
    /// change.
    fn superseded(&mut self) -> bool {
        let mut any = false;
        while let Ok(trigger) = self.triggers.try_recv() {
            self.absorb(&trigger);
            any = true;
        }
        any
    }

    /// One attempt, in the Java consumer's order (spec §4): [`read`](Self::read) the group
    /// (releasing what we own on the way), [`compute`](Self::compute) the assignment,
    /// [claim](Ownership::claim) our part, [`start`](Self::start) fetching it.
    async fn attempt(&mut self) -> Result<(), Failure> {
        let began = Instant::now();
        let requests_before = self.shared.zk.requests();
        let registrations_before = self.registrations.reads();
        let mut watchers: Vec<(String, OneshotWatcher)> = Vec::new();
        let read = self.read(&mut watchers).await;
        let read_took = began.elapsed();
        let read_requests = self.shared.zk.requests() - requests_before;
        let registrations_read = self.registrations.reads() - registrations_before;
        // Installed whatever the outcome: a watcher dropped unfired sends RemoveWatches, which
        // ZooKeeper 3.4 answers by closing the connection (and the watch would be lost).
        self.install_watches(watchers);
        let Some(view) = read.map_err(Failure::plain)? else {
            return Ok(());
        };
        let plan = self.compute(&view).map_err(Failure::plain)?;
        // Released even when the assignment is already stale: what it moves, the newer one
        // mostly moves too (a burst of joins shrinks every share), and partitions held through
        // a burst of reads would keep the members that get them waiting.
        let computed = began.elapsed();
        let superseded = self.superseded();
        self.release_moving(&plan.mine).await;
        let released = began.elapsed();
        // Asked again after the release: a change heard while it ran (its notification often
        // arrives right behind the read's answers) makes the claim stale too, and a stale claim
        // under a burst of changes costs more than reading again.
        if superseded || self.superseded() {
            tracing::debug!(
                target: TIMELINE,
                consumer = %self.shared.consumer_id,
                read_ms = ms(read_took),
                read_requests,
                compute_ms = ms(computed - read_took),
                release_ms = ms(released - computed),
                "attempt steps (superseded before claiming)"
            );
            self.drop_unstarted_claims().await;
            return Err(Failure::Superseded);
        }
        self.shared.ownership.remove_strays(&plan.mine).await;
        let result = self
            .claim_and_start(Prepared {
                brokers: view.brokers,
                plan,
            })
            .await;
        tracing::debug!(
            target: TIMELINE,
            consumer = %self.shared.consumer_id,
            read_ms = ms(read_took),
            read_requests,
            registrations_read,
            compute_ms = ms(computed - read_took),
            release_ms = ms(released - computed),
            claim_start_ms = ms(began.elapsed() - released),
            ok = result.is_ok(),
            "attempt steps"
        );
        result
    }

    /// Steps 6-8 for a computed assignment: claim, offsets, start. An ownership conflict
    /// hands the assignment back for a retry that need not read the group again.
    ///
    /// The offsets are read after the claim, unlike Java (which reads them first): a member
    /// commits before it deletes its owner nodes, so once a node is ours its offset is final.
    /// Read before the claim, it could be older than what the previous owner delivered (its
    /// release commit landing between our read and its delete), and those messages would be
    /// delivered twice. With ZooKeeper storage the read is sent right behind the creates, so
    /// it costs no round trip of its own. A failed read leaves the claims in place: the next attempt keeps or
    /// removes them (see [`Ownership::remove_strays`]).
    async fn claim_and_start(&mut self, prepared: Prepared) -> Result<(), Failure> {
        let kept = self.kept(&prepared.plan.mine);
        let kept_tps: BTreeSet<TopicPartition> = kept.iter().map(|i| i.topic_partition()).collect();
        let new: BTreeMap<TopicPartition, ThreadId> = prepared
            .plan
            .mine
            .iter()
            .filter(|(tp, _)| !kept_tps.contains(*tp))
            .map(|(tp, t)| (tp.clone(), t.clone()))
            .collect();
        let began = Instant::now();
        // With ZooKeeper storage the offsets are read in the claim's round trip, right behind
        // the creates (see `Ownership::claim_then`); Kafka storage reads them after the claim.
        let (claimed, read_with_claim) = if self.shared.offsets.zookeeper_only() {
            self.shared
                .ownership
                .claim_then(&new, || self.read_offsets(&new))
                .await
        } else {
            (self.shared.ownership.claim(&new).await, None)
        };
        let claim_took = began.elapsed();
        let conflicts = match claimed {
            Ok(conflicts) => conflicts,
            Err(e) => return Err(Failure::Error(e, None)),
        };
        if let Some((partition, owner)) = conflicts.first() {
            let group = &self.shared.config.group_id;
            let contended = conflicts
                .iter()
                .map(|(tp, _)| layout::owner_path(group, &tp.topic, tp.partition))
                .collect();
            let error = RebalanceError::OwnershipConflict {
                partition: partition.clone(),
                owner: owner.clone(),
            };
            tracing::debug!(
                target: TIMELINE,
                consumer = %self.shared.consumer_id,
                partitions = new.len(),
                conflicts = conflicts.len(),
                claim_ms = ms(claim_took),
                "claim failed"
            );
            return Err(Failure::Conflict {
                error,
                contended,
                retry: prepared,
            });
        }
        let offsets = match read_with_claim {
            Some(read) => read,
            None => self.read_offsets(&new).await,
        }
        .map_err(Failure::plain)?;
        let read_took = began.elapsed();
        let kept_count = kept.len();
        self.start(prepared.brokers, &prepared.plan, new.clone(), offsets, kept)
            .await;
        tracing::debug!(
            target: TIMELINE,
            consumer = %self.shared.consumer_id,
            partitions = new.len(),
            kept = kept_count,
            claim_ms = ms(claim_took),
            offsets_ms = ms(read_took - claim_took),
            start_ms = ms(began.elapsed() - read_took),
            "claimed"
        );
        Ok(())
    }

    /// The partitions we own that the assignment `mine` leaves where they are: same partition,
    /// same thread id (so the same stream), claimed by this session. Their owner nodes stay,
    /// and their fetch positions and queued data with them. The Java protocol allows it: a
    /// Java member treats an owner node holding its own thread id as already claimed, and one
    /// holding another's as not released yet (it waits); a node is only kept while our
    /// assignment keeps it, so nobody waits for it in a group that agrees.
    fn kept(&self, mine: &BTreeMap<TopicPartition, ThreadId>) -> Vec<Arc<PartitionTopicInfo>> {
        self.shared
            .owned_snapshot()
            .into_iter()
            .filter(|info| {
                let tp = info.topic_partition();
                let Some(thread) = mine.get(&tp) else {
                    return false;
                };
                info.is_current()
                    && !self.not_fetched.contains(&tp)
                    && self.shared.ownership.holds(&tp, thread)
                    && self
                        .routing
                        .route(&tp.topic, thread)
                        .is_some_and(|(index, _)| index == info.stream_index)
            })
            .collect()
    }

    /// Releases what the new assignment `mine` moves (step 2-4 for those partitions only):
    /// their delivery stops (revoked: the fetchers drop them, the streams drop their queued
    /// data), their offsets are committed (auto-commit), the listener hears of them, their
    /// owner nodes are deleted. What stays keeps flowing. When nothing stays, everything is
    /// released so, and the fetchers wait (empty) for the partitions claimed next.
    async fn release_moving(&mut self, mine: &BTreeMap<TopicPartition, ThreadId>) {
        let kept = self.kept(mine);
        let kept_tps: BTreeSet<TopicPartition> = kept.iter().map(|i| i.topic_partition()).collect();
        let (_, released): (Vec<_>, Vec<_>) = self
            .shared
            .replace_owned(kept)
            .into_iter()
            .partition(|info| kept_tps.contains(&info.topic_partition()));
        if released.is_empty() {
            return;
        }
        tracing::debug!(
            released = released.len(),
            kept = kept_tps.len(),
            "releasing the partitions that move; the others keep flowing"
        );
        self.release(&released).await;
    }

    /// Steps 1-5: brokers, members and their subscriptions, partitions of our topics (what we
    /// own is released after, by [`release_moving`](Self::release_moving)). `None`: no broker
    /// is registered (everything is released; we wait for one to appear).
    ///
    /// What is known already is not asked again: registrations while their nodes live (see
    /// [`RegistrationCache`]), the brokers while their list has not changed (see
    /// [`BrokerCache`]). So a static member asks for the member list and the partitions of
    /// its topics (one round trip), then for the registrations of new members, if any. The
    /// topic list is read only when some member subscribes with a filter (with a watch when
    /// that member is us), as Java reads it only for wildcard members.
    async fn read(
        &mut self,
        watchers: &mut Vec<(String, OneshotWatcher)>,
    ) -> Result<Option<GroupView>, RebalanceError> {
        let exclude_internal = self.shared.config.exclude_internal_topics;
        // Taken out for the reads below (they borrow `self`), put back whatever they return.
        let mut registrations = std::mem::take(&mut self.registrations);
        let mut broker_cache = std::mem::take(&mut self.brokers);
        // Watches set by these reads, kept even when a later read fails: a watcher dropped
        // unfired sends RemoveWatches, which ZooKeeper 3.4 answers by closing the connection.
        let mut new_watches: Vec<(String, OneshotWatcher)> = Vec::new();
        let (brokers, group_read) = futures::join!(
            broker_cache.get(&self.shared.zk),
            self.read_group(&mut registrations, watchers, &mut new_watches)
        );
        watchers.extend(new_watches);
        self.registrations = registrations;
        self.brokers = broker_cache;
        self.shared
            .metrics
            .set_registrations_read(self.registrations.reads());
        let GroupRead {
            member_ids,
            all_topics,
            my_counts,
            topic_nodes,
        } = group_read?;
        let brokers = match brokers? {
            // Like Java, broker changes matter only while there is none: the fetchers follow
            // leadership changes themselves, without a group rebalance.
            none if none.is_empty() => self.read_brokers(watchers).await?,
            brokers => brokers,
        };
        if brokers.is_empty() {
            self.release_partitions().await;
            tracing::warn!("no Kafka brokers registered in ZooKeeper; waiting for one to appear");
            return Ok(None);
        }
        // A static member did not read the topic list: its topics that exist are those whose
        // node it read.
        self.subscribed_topics = Some(if self.subscription.is_filter() {
            self.relevant_topics(&all_topics)
        } else {
            topic_nodes
                .iter()
                .filter(|(_, node)| node.is_some())
                .map(|(topic, _)| topic.clone())
                .collect()
        });

        // Members and their subscriptions.
        let mut members: BTreeMap<ConsumerId, BTreeMap<String, u32>> = BTreeMap::new();
        let round_robin =
            self.shared.config.partition_assignment_strategy == AssignmentStrategy::RoundRobin;
        let mut source_orders: BTreeMap<ConsumerId, Vec<String>> = BTreeMap::new();
        for id in member_ids {
            let Some(registered) = self.registrations.get(&id) else {
                continue; // left meanwhile
            };
            if round_robin {
                if let Some(order) = registered.registration.as_ref().ok().and_then(|reg| {
                    assign::member_topic_source_order(
                        reg,
                        registered.document_order.as_deref()?,
                        &all_topics,
                        exclude_internal,
                    )
                    .ok()
                }) {
                    source_orders.insert(ConsumerId::parse(&id), order);
                }
            }
            let counts = registered
                .registration
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|reg| {
                    assign::member_topic_counts(reg, &all_topics, exclude_internal)
                        .map_err(|e| e.to_string())
                });
            match counts {
                Ok(counts) => {
                    members.insert(ConsumerId::parse(&id), counts);
                }
                Err(e) => {
                    tracing::error!(path = %registered.path, error = %e, "unreadable member registration: treating that member as subscribing to nothing");
                    members.insert(ConsumerId::parse(&id), BTreeMap::new());
                }
            }
        }
        members.insert(self.shared.consumer_id.clone(), my_counts);
        if round_robin {
            // Our own order counts in the tie order's vote as the one we registered (our
            // registration is not read back).
            let mine = self.subscription.registration(0);
            let path = self.shared.registration_path();
            let order = layout::subscription_document_order(&path, mine.to_json().as_bytes())
                .ok()
                .and_then(|document| {
                    assign::member_topic_source_order(
                        &mine,
                        &document,
                        &all_topics,
                        exclude_internal,
                    )
                    .ok()
                });
            if let Some(order) = order {
                source_orders.insert(self.shared.consumer_id.clone(), order);
            }
        }

        // Partitions of my topics (watched: partitions may be added).
        let mut partitions_per_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, data) in topic_nodes {
            let path = layout::topic_path(&topic);
            match data {
                Some(data) => match TopicReplicaAssignment::parse(&path, &data) {
                    Ok(assignment) => {
                        partitions_per_topic.insert(topic, assignment.partition_ids());
                    }
                    // Like Java: an unreadable topic node means no partitions to assign.
                    Err(e) => {
                        tracing::error!(error = %e, "unreadable topic node: its partitions are not consumed")
                    }
                },
                None => {
                    tracing::warn!(topic = %topic, "subscribed topic does not exist (yet)");
                    self.read_children(layout::BROKER_TOPICS_PATH, true, watchers)
                        .await?;
                }
            }
        }
        Ok(Some(GroupView {
            brokers,
            members,
            source_orders,
            partitions_per_topic,
        }))
    }

    /// The member list, the registrations not cached yet, our topics and their partitions
    /// (see [`read`](Self::read)). Watches set are added to `new_watches` even when a read
    /// fails; `pending` are those set earlier in this attempt.
    async fn read_group(
        &self,
        registrations: &mut RegistrationCache,
        pending: &[(String, OneshotWatcher)],
        new_watches: &mut Vec<(String, OneshotWatcher)>,
    ) -> Result<GroupRead, RebalanceError> {
        let zk = &self.shared.zk;
        let exclude_internal = self.shared.config.exclude_internal_topics;
        let ids_path = layout::consumer_ids_path(&self.shared.config.group_id);
        let filter = self.subscription.is_filter();
        let my_registration = self.subscription.registration(0);
        // A static subscription names its topics: their nodes are read with the member list.
        let static_counts = if filter {
            BTreeMap::new()
        } else {
            assign::member_topic_counts(&my_registration, &[], exclude_internal)?
        };
        let (ids, topics, static_nodes) = futures::join!(
            self.children_watching(&ids_path, true, pending),
            async {
                if filter {
                    Some(
                        self.children_watching(layout::BROKER_TOPICS_PATH, true, pending)
                            .await,
                    )
                } else {
                    None
                }
            },
            futures::future::join_all(
                static_counts
                    .keys()
                    .map(|topic| self.topic_node(topic, pending))
            ),
        );
        let mut failure: Option<RebalanceError> = None;
        let all_topics = topics.and_then(|t| keep_watch(t, new_watches, &mut failure));
        let mut topic_nodes: Vec<(String, Option<Vec<u8>>)> = static_counts
            .keys()
            .zip(static_nodes)
            .filter_map(|(topic, node)| {
                Some((topic.clone(), keep_watch(node, new_watches, &mut failure)?))
            })
            .collect();
        let member_ids = match ids {
            Ok((ids, watch)) => {
                new_watches.extend(watch);
                ids
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(e) = failure {
            return Err(e);
        }
        let my_counts = match &all_topics {
            Some(all) => assign::member_topic_counts(&my_registration, all, exclude_internal)?,
            None => static_counts,
        };
        // Only registrations not read before (or whose node changed since), in one pipelined
        // round trip with the partitions of a filter's topics.
        let filter_topics: Vec<&String> = if filter {
            my_counts.keys().collect()
        } else {
            Vec::new()
        };
        // Our own registration is what we wrote: not read.
        let own = self.shared.consumer_id.as_str();
        let others: Vec<String> = member_ids.iter().filter(|id| *id != own).cloned().collect();
        let (updated, filter_nodes) = futures::join!(
            registrations.update(zk, &ids_path, &others),
            futures::future::join_all(filter_topics.iter().map(|t| self.topic_node(t, pending))),
        );
        let mut failure = updated.err().map(RebalanceError::from);
        for (topic, node) in filter_topics.into_iter().zip(filter_nodes) {
            if let Some(data) = keep_watch(node, new_watches, &mut failure) {
                topic_nodes.push((topic.clone(), data));
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        // Another member's filter needs the topic list (Java reads it for wildcard members).
        let all_topics = match all_topics {
            Some(all) => all,
            None if member_ids
                .iter()
                .filter_map(|id| registrations.get(id))
                .any(|r| {
                    r.registration
                        .as_ref()
                        .is_ok_and(|reg| reg.pattern != SubscriptionPattern::Static)
                }) =>
            {
                zk.children(layout::BROKER_TOPICS_PATH).await?
            }
            None => Vec::new(),
        };
        Ok(GroupRead {
            member_ids,
            all_topics,
            my_counts,
            topic_nodes,
        })
    }

    /// A topic's node (`None`: it does not exist), with a new watch on it unless one is
    /// pending already (in `watch_tasks` or `pending`).
    async fn topic_node(
        &self,
        topic: &str,
        pending: &[(String, OneshotWatcher)],
    ) -> Result<(Option<Vec<u8>>, Option<(String, OneshotWatcher)>), ZkError> {
        let path = layout::topic_path(topic);
        if self.watching(&path) || pending.iter().any(|(p, _)| *p == path) {
            return Ok((self.shared.zk.get_data(&path).await?, None));
        }
        Ok(match self.shared.zk.get_data_watch(&path).await? {
            Some((data, w)) => (Some(data), Some((path, w))),
            None => (None, None),
        })
    }

    /// Step 5: the global assignment (pure) and our part of it.
    fn compute(&self, view: &GroupView) -> Result<Plan, RebalanceError> {
        let consumers_per_topic = assign::consumers_per_topic(&view.members);
        // Roundrobin breaks hash ties by subscription order: agree with the group's Java members.
        let tie_order = assign::group_tie_order(&view.source_orders)
            .unwrap_or_else(|| view.partitions_per_topic.keys().cloned().collect());
        let global = assign::assign_with_topic_order(
            self.shared.config.partition_assignment_strategy,
            &view.partitions_per_topic,
            &consumers_per_topic,
            &tie_order,
        )?;
        let mine = assign::owned_by(&global, &self.shared.consumer_id);
        Ok(Plan { global, mine })
    }

    /// Step 6: committed offsets of what we were given, in one read per store. A node that
    /// does not hold an offset is not guessed at: the partition is claimed but not fetched,
    /// and its stream reports the problem (the operator fixes it with `offsets import/reset`).
    async fn read_offsets(
        &self,
        mine: &BTreeMap<TopicPartition, ThreadId>,
    ) -> Result<BTreeMap<TopicPartition, Result<Option<i64>, String>>, RebalanceError> {
        let partitions: Vec<TopicPartition> = mine.keys().cloned().collect();
        let read = self.shared.offsets.fetch_many(&partitions).await?;
        Ok(read
            .into_iter()
            .map(|(tp, offset)| {
                let offset = offset.map_err(|e| {
                    tracing::error!(partition = %tp, error = %e, "unusable committed offset; partition not consumed");
                    e.to_string()
                });
                (tp, offset)
            })
            .collect())
    }

    /// Step 8: installs the new partition set, tells the listener, starts the fetchers.
    async fn start(
        &mut self,
        brokers: Vec<BrokerInfo>,
        plan: &Plan,
        new: BTreeMap<TopicPartition, ThreadId>,
        offsets: BTreeMap<TopicPartition, Result<Option<i64>, String>>,
        kept: Vec<Arc<PartitionTopicInfo>>,
    ) {
        // Kept partitions are all being fetched (see `kept`).
        self.not_fetched.clear();
        let kept_count = kept.len();
        let mut infos = kept;
        let mut targets = Vec::new();
        let mut checkpoints = HashMap::new();
        for (tp, thread) in &new {
            let Some((index, sender)) = self.routing.route(&tp.topic, thread) else {
                let error = FetchError::NoStream {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    thread: thread.as_str().to_string(),
                };
                tracing::error!(%error, "no stream for assigned thread id");
                self.routing.report_topic(&tp.topic, &error);
                continue;
            };
            let offset = match offsets.get(tp) {
                Some(Ok(offset)) => *offset,
                _ => None,
            };
            if let Some(o) = offset {
                checkpoints.insert(tp.clone(), o);
            }
            let info = Arc::new(PartitionTopicInfo::new(
                &tp.topic,
                tp.partition,
                index,
                offset.unwrap_or(INVALID_OFFSET),
            ));
            infos.push(info.clone());
            if let Some(Err(problem)) = offsets.get(tp) {
                self.not_fetched.insert(tp.clone());
                // Kept for the stream, not queued: a full queue would lose it.
                self.routing
                    .report(index, FetchError::BadOffset(problem.clone()));
                continue;
            }
            targets.push(FetchTarget { info, sink: sender });
        }
        {
            // Kept partitions keep what was last written or read for them.
            let mut current = self.shared.checkpoints.lock().await;
            current.retain(|tp, _| infos.iter().any(|i| i.topic_partition() == *tp));
            current.extend(checkpoints);
        }
        self.shared.replace_owned(infos);
        let mut view: BTreeMap<String, BTreeMap<i32, String>> = BTreeMap::new();
        for (tp, thread) in &plan.global {
            view.entry(tp.topic.clone())
                .or_default()
                .insert(tp.partition, thread.as_str().to_string());
        }
        let consumer_id = self.shared.consumer_id.as_str().to_string();
        self.shared
            .call_listener(move |l| l.before_starting_fetchers(&consumer_id, &view))
            .await;
        if targets.is_empty() {
            return;
        }
        // Kept partitions are being fetched: the new ones join them.
        let targets = match &self.fetchers {
            Some(running) => match running.add(targets) {
                Ok(()) => return,
                Err(back) => back,
            },
            None => targets,
        };
        self.stop_fetchers().await;
        let addresses = brokers.iter().map(BrokerInfo::address).collect();
        let config = FetchConfig::from_consumer_config(&self.shared.config);
        // A manager that stopped by itself (not expected while kept partitions run) would
        // lose the kept ones: they are fetched again from their positions.
        let mut targets = targets;
        for info in self.shared.owned_snapshot().into_iter().take(kept_count) {
            if let Some((_, sink)) = self.routing.route_index(&info) {
                targets.push(FetchTarget { info, sink });
            }
        }
        self.fetchers = Some(FetcherManager::start(config, addresses, targets));
    }

    /// Children of `path`, setting a watch when `watch` is asked and none is pending yet.
    async fn read_children(
        &self,
        path: &str,
        watch: bool,
        watchers: &mut Vec<(String, OneshotWatcher)>,
    ) -> Result<Vec<String>, ZkError> {
        let (children, new_watch) = self.children_watching(path, watch, watchers).await?;
        watchers.extend(new_watch);
        Ok(children)
    }

    /// Children of `path` and, when `watch` is asked and no watch on it is pending yet (in
    /// `watch_tasks` or `pending`), a new watch to install.
    async fn children_watching(
        &self,
        path: &str,
        watch: bool,
        pending: &[(String, OneshotWatcher)],
    ) -> Result<(Vec<String>, Option<(String, OneshotWatcher)>), ZkError> {
        if !watch || self.watching(path) || pending.iter().any(|(p, _)| p == path) {
            return Ok((self.shared.zk.children(path).await?, None));
        }
        let (children, w) = self.shared.zk.children_watch(path).await?;
        Ok((children, Some((path.to_string(), w))))
    }

    async fn read_brokers(
        &self,
        watchers: &mut Vec<(String, OneshotWatcher)>,
    ) -> Result<Vec<BrokerInfo>, RebalanceError> {
        let brokers = crate::zk::live_brokers(&self.shared.zk).await?;
        // Like Java, broker changes matter only while there is none: the fetchers follow
        // leadership changes themselves, without a group rebalance.
        if brokers.is_empty() {
            let ids = self
                .read_children(layout::BROKER_IDS_PATH, true, watchers)
                .await?;
            // One registered between the two reads: the watch would not tell us.
            if !ids.is_empty() {
                return Ok(crate::zk::live_brokers(&self.shared.zk).await?);
            }
        }
        Ok(brokers)
    }

    /// Whether a watch on `path` is still pending (set earlier and not fired yet).
    fn watching(&self, path: &str) -> bool {
        self.watch_tasks
            .get(path)
            .is_some_and(|task| !task.is_finished())
    }

    /// Adds watch tasks for new watchers: each fired node watch queues a trigger.
    fn install_watches(&mut self, watchers: Vec<(String, OneshotWatcher)>) {
        self.watch_tasks.retain(|_, task| !task.is_finished());
        for (path, watcher) in watchers {
            let tx = self.trigger_tx.clone();
            let key = path.clone();
            let consumer = self.shared.consumer_id.clone();
            self.watch_tasks.insert(
                key,
                tokio::spawn(async move {
                    let event = watcher.changed().await;
                    if is_node_event(event.event_type) {
                        tracing::debug!(path = %path, event = ?event.event_type, "watch fired");
                        tracing::debug!(target: TIMELINE, %consumer, path = %path, "watch fired");
                        let _ = tx.send(Trigger::Changed(path));
                    }
                }),
            );
        }
    }
}

/// `base` scaled by a random factor in [0.5, 1.5), so members that failed together do not
/// retry in lock-step.
fn jittered(base: Duration) -> Duration {
    let factor = 0.5 + f64::from(uuid::Uuid::new_v4().as_u128() as u16) / 65536.0;
    base.mul_f64(factor)
}

/// The session prober: keeps [`Liveness`] confirmed while the session is healthy, and answers
/// streams that are waiting for a confirmation.
pub(crate) async fn probe_session(
    shared: Arc<Shared>,
    trigger_tx: mpsc::UnboundedSender<Trigger>,
    stop: CancellationToken,
) {
    loop {
        // Re-read each round: a renewed session may have been granted another timeout.
        let interval = shared.liveness.probe_interval();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.liveness.probe_requested() => {}
            _ = stop.cancelled() => return,
        }
        let sent = Instant::now();
        match shared.zk.ping().await {
            Ok(()) => shared.liveness.confirm(sent),
            Err(e) if e.is_session_expired() => {
                shared.liveness.mark_expired();
                let _ = trigger_tx.send(Trigger::SessionExpired);
                // The coordinator is renewing the session: do not spin on the dead one.
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.cancelled() => return,
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "session probe failed; will retry");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The auto-commit timer (`auto.commit.interval.ms`).
pub(crate) async fn auto_commit(shared: Arc<Shared>, stop: CancellationToken) {
    let interval = shared.config.auto_commit_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
        if !shared.liveness.may_deliver() {
            tracing::debug!("skipping auto-commit: session not confirmed alive");
            continue;
        }
        let owned: Vec<_> = shared
            .owned_snapshot()
            .into_iter()
            .filter(|i| i.is_current())
            .collect();
        if let Err(e) = shared.commit(&owned).await {
            tracing::warn!(error = %e, "auto-commit failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_band() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d < Duration::from_millis(1500));
        }
    }
}
