//! The public consumer handle (Java's `ZookeeperConsumerConnector`): connect, register, create
//! streams, commit, shut down.
//!
//! It wires the pieces together — session, registration, the coordinator task, the session
//! prober, the auto-commit timer and the streams — and owns the shutdown order. It holds no
//! assignment logic of its own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{Admin, AdminError, ResetLine, ResetTo};
use crate::config::ConsumerConfig;
use crate::group::filter::TopicFilter;
use crate::group::identity::ConsumerId;
use crate::group::ownership::Ownership;
use crate::group::rebalance::{
    self, Coordinator, RebalanceListener, Shared, StreamRouting, Subscription, Trigger,
};
use crate::metrics::{Metrics, PartitionLag};
use crate::offsets::{GroupOffsets, OffsetStoreError};
use crate::partition::{PartitionTopicInfo, TopicPartition};
use crate::stream::{HoldCount, MessageStream, PendingErrors};
use crate::zk::layout;
use crate::zk::liveness::Liveness;
use crate::zk::session::{ZkError, ZkSession, ZkSettings};

/// Errors of the consumer API.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// ZooKeeper failed (connect, registration).
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// Committing offsets failed.
    #[error(transparent)]
    Offsets(#[from] OffsetStoreError),
    /// Streams can be created once per consumer, as with the Java connector.
    #[error("message streams were already created for consumer {0}")]
    StreamsAlreadyCreated(String),
    /// A subscription asked for no streams or no topics.
    #[error("invalid subscription: {0}")]
    InvalidSubscription(String),
    /// Registration failed (e.g. a live member already uses this `consumer.id`).
    #[error(transparent)]
    Register(#[from] rebalance::RegisterError),
    /// The consumer was shut down.
    #[error("consumer {0} is shut down")]
    ShutDown(String),
    /// An operation on one partition (seek, pause, a commit of given offsets) for a
    /// partition this member does not own now.
    #[error(
        "{topic}-{partition} is not owned by consumer {consumer}: seek, pause, resume, position \
         and commits of given offsets work on the partitions it owns now (owned_partitions)"
    )]
    NotOwned {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// This member.
        consumer: String,
    },
    /// An offset that cannot be used (negative).
    #[error("invalid offset {offset} for {topic}-{partition}: offsets are >= 0")]
    InvalidOffset {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset given.
        offset: i64,
    },
    /// [`Consumer::reset_offsets`] after the streams were created: the member already
    /// owns partitions and fetches from the old offsets (use [`Consumer::seek`] then).
    #[error(
        "reset_offsets is for before the streams are created (consumer {0} already has them): \
         seek the owned partitions instead"
    )]
    ResetAfterStart(String),
    /// Reading the log's offsets or resetting the group's offsets failed (also: the group
    /// has live members, see [`Consumer::reset_offsets`]).
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Where [`Consumer::seek`] moves a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// The earliest offset still in the log.
    Earliest,
    /// The log end (only messages produced from now on).
    Latest,
    /// This offset (one out of the log's range is reset per `auto.offset.reset` when fetched).
    Offset(i64),
}

struct Tasks {
    coordinator: JoinHandle<()>,
    prober: JoinHandle<()>,
    committer: Option<JoinHandle<()>>,
}

/// A member of a ZooKeeper-coordinated consumer group.
pub struct Consumer {
    shared: Arc<Shared>,
    /// This consumer's branch of the stop tree: a child of the process's (see
    /// [`crate::shutdown`]), parent of its coordinator's, prober's and committer's.
    stop: CancellationToken,
    tasks: tokio::sync::Mutex<Option<Tasks>>,
    shut_down: tokio::sync::Mutex<bool>,
    streams_created: Mutex<bool>,
    holding: Arc<HoldCount>,
    /// Set when shutdown starts: calls that need a running member fail from then on.
    closed: AtomicBool,
    /// Bumped by [`Consumer::resume`], to wake streams holding back a paused partition.
    resumes: watch::Sender<u64>,
    /// The runtime the consumer was connected in (for [`Committer::commit_blocking`]).
    runtime: tokio::runtime::Handle,
}

/// Commits a consumer's processed offsets from anywhere, including from inside a
/// [`RebalanceListener`] callback (Java's `commitOffsets()` in `beforeReleasingPartitions`).
/// It does not keep the consumer alive: once the consumer is dropped it fails with
/// [`ConsumerError::ShutDown`].
#[derive(Clone)]
pub struct Committer {
    shared: Weak<Shared>,
    consumer_id: String,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("consumer_id", &self.consumer_id)
            .finish()
    }
}

impl Committer {
    /// Commits the processed offset of every owned partition whose offset changed, and of the
    /// partitions being released while a listener's `before_releasing_partitions` runs (see
    /// [`Consumer::commit_offsets`]).
    pub async fn commit(&self) -> Result<(), ConsumerError> {
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| ConsumerError::ShutDown(self.consumer_id.clone()))?;
        shared.commit_with_retries(&shared.committable()).await?;
        Ok(())
    }

    /// [`commit`](Self::commit), blocking the calling thread until it is done: for rebalance
    /// listener callbacks (they run on the runtime's blocking pool) and threads outside the
    /// runtime. Never from async code (it would block a runtime worker; tokio panics).
    pub fn commit_blocking(&self) -> Result<(), ConsumerError> {
        self.runtime.block_on(self.commit())
    }
}

/// How long shutdown waits for the application to finish the messages it holds.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.shared.config.group_id)
            .field("consumer_id", &self.shared.consumer_id)
            .finish()
    }
}

impl Drop for Consumer {
    /// A consumer dropped without [`Consumer::shutdown`] stops its tasks and fetchers; its
    /// session then closes, so its registration and owner nodes vanish (nothing is committed).
    fn drop(&mut self) {
        self.stop.cancel();
        self.shared.stop_streams.send_replace(true);
    }
}

impl Consumer {
    /// Connects to ZooKeeper (creating the chroot if needed). The member registers when its
    /// streams are created.
    pub async fn connect(config: ConsumerConfig) -> Result<Self, ConsumerError> {
        // Taken first: a shutdown request (signal) while the connect waits on ZooKeeper stops
        // this consumer too (it replaces the root, so a token taken afterwards would not be).
        let stop = crate::shutdown::token();
        let zk = ZkSession::connect(ZkSettings {
            connect: config.zookeeper_connect.clone(),
            session_timeout: config.zookeeper_session_timeout,
            connection_timeout: config.zookeeper_connection_timeout,
            server_version: config.zookeeper_server_version,
        })
        .await?;
        let consumer_id = ConsumerId::for_config(&config.group_id, config.consumer_id.as_deref());
        tracing::info!(consumer = %consumer_id, group = %config.group_id, "connected to ZooKeeper");
        let offsets = GroupOffsets::for_config(zk.clone(), &config);
        let granted = zk.negotiated_session_timeout();
        if granted < config.zookeeper_session_timeout {
            tracing::info!(
                requested_ms = config.zookeeper_session_timeout.as_millis() as u64,
                granted_ms = granted.as_millis() as u64,
                "ZooKeeper granted a shorter session than zookeeper.session.timeout.ms asks for"
            );
        }
        let liveness = Arc::new(Liveness::new(granted));
        let shared = Arc::new(Shared {
            consumer_id,
            ownership: Ownership::new(zk.clone(), &config.group_id),
            zk,
            offsets,
            liveness,
            stop_streams: watch::channel(false).0,
            owned: Mutex::new(Vec::new()),
            releasing: Mutex::new(Vec::new()),
            checkpoints: tokio::sync::Mutex::new(Default::default()),
            listener: Mutex::new(None),
            rebalances: watch::channel(0).0,
            metrics: Arc::new(Metrics::default()),
            leftover: Mutex::new(Vec::new()),
            config,
        });
        Ok(Consumer {
            shared,
            runtime: tokio::runtime::Handle::current(),
            stop,
            tasks: tokio::sync::Mutex::new(None),
            shut_down: tokio::sync::Mutex::new(false),
            streams_created: Mutex::new(false),
            holding: Arc::new(HoldCount::default()),
            closed: AtomicBool::new(false),
            resumes: watch::channel(0).0,
        })
    }

    /// This member's consumer id (`<group>_<host>-<millis>-<random>` or `<group>_<consumer.id>`).
    pub fn consumer_id(&self) -> &str {
        self.shared.consumer_id.as_str()
    }

    /// The configuration in use.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    /// Sets the rebalance listener; call before creating streams to see the first assignment.
    pub fn set_rebalance_listener(&self, listener: Arc<dyn RebalanceListener>) {
        match self.shared.listener.lock() {
            Ok(mut g) => *g = Some(listener),
            Err(p) => *p.into_inner() = Some(listener),
        }
    }

    /// Subscribes to topics with a number of streams each; returns the streams per topic.
    pub async fn create_message_streams(
        &self,
        topic_counts: BTreeMap<String, u32>,
    ) -> Result<BTreeMap<String, Vec<MessageStream>>, ConsumerError> {
        if topic_counts.is_empty() || topic_counts.values().any(|&n| n == 0) {
            return Err(ConsumerError::InvalidSubscription(
                "every topic needs at least one stream, and at least one topic is needed".into(),
            ));
        }
        let mut routing = StreamRouting::new(true);
        let mut result: BTreeMap<String, Vec<MessageStream>> = BTreeMap::new();
        let mut index = 0;
        for (topic, &count) in &topic_counts {
            for n in 0..count {
                let (tx, pending, stream) = self.new_stream(n);
                routing.insert(Some(topic), n, index, tx, pending);
                result.entry(topic.clone()).or_default().push(stream);
                index += 1;
            }
        }
        self.start(Subscription::Static(topic_counts), routing)
            .await?;
        Ok(result)
    }

    /// Subscribes to every topic the filter allows, shared by `streams` streams.
    pub async fn create_message_streams_by_filter(
        &self,
        filter: TopicFilter,
        streams: u32,
    ) -> Result<Vec<MessageStream>, ConsumerError> {
        if streams == 0 {
            return Err(ConsumerError::InvalidSubscription(
                "a filter subscription needs at least one stream".into(),
            ));
        }
        let mut routing = StreamRouting::new(false);
        let mut result = Vec::new();
        for n in 0..streams {
            let (tx, pending, stream) = self.new_stream(n);
            routing.insert(None, n, n as usize, tx, pending);
            result.push(stream);
        }
        self.start(Subscription::Filter { filter, streams }, routing)
            .await?;
        Ok(result)
    }

    fn new_stream(&self, n: u32) -> (crate::fetch::ChunkSender, Arc<PendingErrors>, MessageStream) {
        let (tx, rx) = mpsc::channel(self.shared.config.queued_max_message_chunks.max(1));
        let pending = Arc::new(PendingErrors::default());
        let thread = format!("{}-{n}", self.shared.consumer_id);
        let stream = MessageStream::new(
            thread,
            rx,
            pending.clone(),
            self.shared.liveness.clone(),
            self.shared.stop_streams.subscribe(),
            self.shared.config.consumer_timeout,
            self.holding.clone(),
            self.shared.metrics.clone(),
        )
        .with_explicit_ack(!self.shared.config.auto_ack)
        .with_resumes(self.resumes.subscribe());
        (tx, pending, stream)
    }

    async fn start(
        &self,
        subscription: Subscription,
        routing: StreamRouting,
    ) -> Result<(), ConsumerError> {
        if *self.shut_down.lock().await {
            return Err(ConsumerError::ShutDown(self.consumer_id().to_string()));
        }
        {
            let mut created = match self.streams_created.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if *created {
                return Err(ConsumerError::StreamsAlreadyCreated(
                    self.consumer_id().to_string(),
                ));
            }
            *created = true;
        }
        let caches = self.shared.warm_up().await;
        self.shared.register(&subscription).await?;
        tracing::info!(path = %self.shared.registration_path(), "registered consumer");
        let (trigger_tx, triggers) = mpsc::unbounded_channel();
        let _ = trigger_tx.send(Trigger::Start);
        let coordinator = Coordinator::new(
            self.shared.clone(),
            subscription,
            routing,
            triggers,
            trigger_tx.clone(),
            self.stop.child_token(),
        )
        .with_caches(caches);
        let tasks = Tasks {
            coordinator: tokio::spawn(coordinator.run()),
            prober: tokio::spawn(rebalance::probe_session(
                self.shared.clone(),
                trigger_tx,
                self.stop.child_token(),
            )),
            committer: self.shared.config.auto_commit_enable.then(|| {
                tokio::spawn(rebalance::auto_commit(
                    self.shared.clone(),
                    self.stop.child_token(),
                ))
            }),
        };
        *self.tasks.lock().await = Some(tasks);
        Ok(())
    }

    /// Commits the processed offset of every owned partition whose offset changed. Fails with
    /// [`ConsumerError::ShutDown`] once [`shutdown`](Self::shutdown) started (its own final
    /// commit is the last one).
    ///
    /// While a rebalance listener's `before_releasing_partitions` runs, the partitions being
    /// released are still owned and committed too (Java's order: commit, then release).
    pub async fn commit_offsets(&self) -> Result<(), ConsumerError> {
        self.ensure_open()?;
        self.committer().commit().await
    }

    /// A handle that commits this consumer's offsets from elsewhere (a rebalance listener:
    /// see [`Committer`]).
    pub fn committer(&self) -> Committer {
        Committer {
            shared: Arc::downgrade(&self.shared),
            consumer_id: self.consumer_id().to_string(),
            runtime: self.runtime.clone(),
        }
    }

    /// Commits the given offsets of owned partitions now, with Java's meaning: the offset
    /// committed for a partition is the *next* offset to read, so to commit a message `m`
    /// give `m.offset + 1`. Each partition also counts as processed up to there, so no later
    /// commit (automatic or at shutdown) goes below it; a lower offset than already processed
    /// leaves the processed one. Other owned partitions are committed as
    /// [`commit_offsets`](Self::commit_offsets) does. Fails, committing nothing, for a
    /// partition this member does not own ([`ConsumerError::NotOwned`]) or a negative offset.
    pub async fn commit_offsets_at(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ConsumerError> {
        self.ensure_open()?;
        let mut infos = Vec::with_capacity(offsets.len());
        for (tp, &offset) in offsets {
            let info = self.owned_info(tp)?;
            if offset < 0 {
                return Err(ConsumerError::InvalidOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset,
                });
            }
            infos.push((info, offset));
        }
        for (info, offset) in &infos {
            info.mark_consumed(*offset);
        }
        self.commit_offsets().await
    }

    /// The offset committed for a partition of the group (`None`: none), read from the
    /// offset store now: any partition, owned or not.
    pub async fn committed(&self, tp: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
        Ok(self.shared.offsets.fetch(tp).await?)
    }

    /// The offset of the next message this member hands out for an owned partition (`None`
    /// while a partition without a committed offset waits for its `auto.offset.reset`).
    pub fn position(&self, tp: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
        let position = self.owned_info(tp)?.position();
        Ok((position >= 0).then_some(position))
    }

    /// Moves an owned partition to `to`; returns the offset it moved to. The next message
    /// handed out for it is the one at that offset: messages of it already fetched, or held
    /// by the application, are dropped, and acknowledging them has no effect. The processed
    /// position moves there too (the next commit writes it), so seeking back replays and
    /// seeking forward skips. Fails for a partition this member does not own now (a
    /// rebalance starts it again from the committed offset).
    pub async fn seek(&self, tp: &TopicPartition, to: SeekTo) -> Result<i64, ConsumerError> {
        self.ensure_open()?;
        let info = self.owned_info(tp)?;
        let offset = match to {
            SeekTo::Offset(offset) if offset < 0 => {
                return Err(ConsumerError::InvalidOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset,
                })
            }
            SeekTo::Offset(offset) => offset,
            SeekTo::Earliest | SeekTo::Latest => {
                let admin = Admin::from_session(self.shared.zk.clone());
                let ends = admin.log_offsets(&tp.topic, to == SeekTo::Latest).await?;
                match ends.get(&tp.partition) {
                    Some(&offset) => offset,
                    None => {
                        return Err(AdminError::Broker {
                            topic: tp.topic.clone(),
                            brokers: String::new(),
                            message: format!("no offset for partition {}", tp.partition),
                        }
                        .into())
                    }
                }
            }
        };
        info.reset_offsets(offset);
        tracing::info!(partition = %tp, offset, "seek");
        Ok(offset)
    }

    /// Sets the group's committed offsets of `topics` (all its topics when empty) before this
    /// member starts: "replay this group from the start" is
    /// `reset_offsets(&[topic], ResetTo::Earliest)`. The same reset as the CLI's
    /// `offsets reset --execute`: refused while the group has live members
    /// ([`AdminError::GroupActive`]), and after this member's streams were created. Returns
    /// the plan it wrote.
    pub async fn reset_offsets(
        &self,
        topics: &[String],
        to: ResetTo,
    ) -> Result<Vec<ResetLine>, ConsumerError> {
        self.ensure_open()?;
        if self.streams_were_created() {
            return Err(ConsumerError::ResetAfterStart(
                self.consumer_id().to_string(),
            ));
        }
        let admin = Admin::from_session(self.shared.zk.clone());
        Ok(admin
            .reset(&self.shared.config.group_id, topics, to, true, false)
            .await?)
    }

    /// Pauses owned partitions: they are not fetched, and their messages already fetched are
    /// held back by their streams, until [`resume`](Self::resume). Their positions and commits
    /// do not change. Fails, pausing none, when one is not owned. A pause ends with ownership
    /// (a partition that comes back after a rebalance is not paused).
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        self.set_paused(partitions, true)
    }

    /// Resumes paused partitions (see [`pause`](Self::pause)); resuming one that is not paused
    /// does nothing.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        self.set_paused(partitions, false)?;
        self.resumes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// The owned partitions that are paused now.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.shared
            .owned_snapshot()
            .iter()
            .filter(|i| i.is_current() && i.is_paused())
            .map(|i| i.topic_partition())
            .collect()
    }

    fn set_paused(&self, partitions: &[TopicPartition], paused: bool) -> Result<(), ConsumerError> {
        self.ensure_open()?;
        let infos = partitions
            .iter()
            .map(|tp| self.owned_info(tp))
            .collect::<Result<Vec<_>, _>>()?;
        for info in infos {
            info.set_paused(paused);
        }
        Ok(())
    }

    /// The state of a partition owned now.
    fn owned_info(&self, tp: &TopicPartition) -> Result<Arc<PartitionTopicInfo>, ConsumerError> {
        self.shared
            .owned_snapshot()
            .into_iter()
            .find(|i| i.is_current() && *i.topic == *tp.topic && i.partition == tp.partition)
            .ok_or_else(|| ConsumerError::NotOwned {
                topic: tp.topic.clone(),
                partition: tp.partition,
                consumer: self.consumer_id().to_string(),
            })
    }

    fn ensure_open(&self) -> Result<(), ConsumerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ConsumerError::ShutDown(self.consumer_id().to_string()));
        }
        Ok(())
    }

    fn streams_were_created(&self) -> bool {
        match self.streams_created.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// Partitions this member owns now, with the processed offset of each (-1: none yet).
    pub fn owned_partitions(&self) -> BTreeMap<TopicPartition, i64> {
        self.shared
            .owned_snapshot()
            .iter()
            .filter(|i| i.is_current())
            .map(|i| (i.topic_partition(), i.consumed_offset()))
            .collect()
    }

    /// Whether the group has any committed offset in ZooKeeper.
    pub async fn group_has_offsets(&self) -> Result<bool, ConsumerError> {
        let root = layout::offsets_path(&self.shared.config.group_id);
        for topic in self.shared.zk.children(&root).await? {
            let path = format!("{root}/{topic}");
            if !self.shared.zk.children(&path).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The topics of `topics` that do not exist in the cluster (no `/brokers/topics/<topic>`).
    ///
    /// Subscribing to a missing topic is allowed, as in Java (the member waits for it to be
    /// created); callers that want to fail fast on a typo ask this first.
    pub async fn missing_topics<'a>(
        &self,
        topics: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, ConsumerError> {
        let mut missing = Vec::new();
        for topic in topics {
            if self
                .shared
                .zk
                .get_data(&layout::topic_path(topic))
                .await?
                .is_none()
            {
                missing.push(topic.to_string());
            }
        }
        Ok(missing)
    }

    /// Deletes every committed offset of the group (the console consumer's
    /// `--delete-consumer-offsets`). Call before creating streams.
    pub async fn delete_group_offsets(&self) -> Result<(), ConsumerError> {
        let root = layout::offsets_path(&self.shared.config.group_id);
        self.shared.zk.delete_recursive(&root).await?;
        Ok(())
    }

    /// The consumer's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Lag of every owned partition (log end from the last fetch minus processed offset).
    pub fn lags(&self) -> Vec<PartitionLag> {
        self.shared
            .owned_snapshot()
            .iter()
            .filter(|i| i.is_current())
            .map(|i| PartitionLag {
                topic: i.topic.to_string(),
                partition: i.partition,
                lag: i.lag(),
            })
            .collect()
    }

    /// The Prometheus text of this consumer's metrics.
    pub fn render_metrics(&self) -> String {
        crate::metrics::render(
            &self.shared.config.group_id,
            &self.shared.metrics,
            &self.lags(),
        )
    }

    /// How many requests this member sent to ZooKeeper so far (registration, rebalances,
    /// commits; not the session's pings), for benchmarks and monitoring.
    pub fn zookeeper_requests(&self) -> u64 {
        self.shared.zk.requests()
    }

    /// A receiver of the number of completed rebalances (changes after each one).
    ///
    /// A rebalance is counted once it has fully finished: its partitions show in
    /// [`owned_partitions`](Self::owned_partitions), and may already deliver, a moment before.
    /// To know that a rebalance is over, wait for this count, not for the partitions.
    pub fn rebalances(&self) -> watch::Receiver<u64> {
        self.shared.rebalances.subscribe()
    }

    /// Stops the streams and fetchers, commits what was processed (when
    /// `auto.commit.enable`), deletes this member's owner and registration nodes. Idempotent.
    ///
    /// A message counts as processed once the application took the next one from its stream
    /// (a final `next()` returning `None` counts) or acknowledged it. Shutdown ends the streams
    /// and waits up to two seconds for the application to come back to `next()` before the
    /// final commit.
    pub async fn shutdown(&self) -> Result<(), ConsumerError> {
        let mut done = self.shut_down.lock().await;
        if *done {
            return Ok(());
        }
        *done = true;
        self.closed.store(true, Ordering::Release);
        tracing::info!(consumer = %self.shared.consumer_id, "shutting down");
        self.stop.cancel();
        if let Some(tasks) = self.tasks.lock().await.take() {
            // The coordinator stops the fetchers and ends the streams before returning.
            let _ = tasks.coordinator.await;
            tasks.prober.abort();
            if let Some(committer) = tasks.committer {
                committer.abort();
            }
        }
        self.shared.stop_streams.send_replace(true);
        let held = self.holding.wait_released(SHUTDOWN_GRACE).await;
        if held > 0 {
            tracing::warn!(
                streams = held,
                "streams still hold unfinished messages; those are not committed"
            );
        }
        let owned = self.shared.owned_snapshot();
        let mut result = Ok(());
        if self.shared.config.auto_commit_enable && !owned.is_empty() {
            if let Err(e) = self.shared.commit_with_retries(&owned).await {
                tracing::error!(error = %e, "final offset commit failed");
                result = Err(e.into());
            }
        }
        for info in &owned {
            info.revoke();
        }
        let partitions: Vec<TopicPartition> = owned.iter().map(|i| i.topic_partition()).collect();
        self.shared.ownership.release(&partitions).await;
        // Any other node of ours left by a failed delete or an errored create.
        self.shared.ownership.delete_all().await;
        self.shared.ownership.stop_retries();
        if let Err(e) = self
            .shared
            .zk
            .delete(&self.shared.registration_path())
            .await
        {
            tracing::warn!(error = %e, "cannot delete registration node");
        }
        for task in self.shared.leftover_tasks().drain(..) {
            task.abort();
        }
        tracing::info!(consumer = %self.shared.consumer_id, "shut down");
        result
    }
}
