//! Which owner nodes (`/consumers/<group>/owners/<topic>/<partition>`) are this member's, and
//! the only code that creates or deletes them.
//!
//! Ownership is a fact from ZooKeeper, not a reading of the node's text: a node is ours when
//! its `ephemeralOwner` is our session ([`ZkSession::delete_own_ephemeral`] checks it in the
//! same read whose version the delete is conditioned on). A thread id that merely starts with
//! our consumer id (member `a` and the node `a-1-0` of member `a-1`'s thread 0) or equals one
//! of ours (a previous session of the same `consumer.id`) is someone else's, and never deleted.
//!
//! [`Ownership`] also remembers the nodes this session created or may have created (a create
//! can be applied although the call reports an error) until a delete is confirmed, so a node
//! whose delete failed is removed at the next attempt or at shutdown instead of blocking its
//! partition for the whole group as long as our session lives.
//!
//! A claim that meets nodes other members still hold keeps the nodes it did create (unlike
//! Java, which deletes them and starts over): the retry creates only the missing ones, and
//! the member waits for all the contended nodes at once instead of one conflict per retry. A
//! node kept so that a newer assignment does not give us is deleted by
//! [`Ownership::remove_strays`] before that assignment is claimed.
//!
//! A delete that fails is also retried on its own, with backoff ([`RETRY_FIRST`] doubling up
//! to [`RETRY_MAX`]), by a task this type owns: the group may be stable after our release (no
//! next attempt comes), and the member that gets the partition waits on our node until it
//! goes. The retry stops when the delete is confirmed, when the node turns out not to be ours
//! (or gone), when the partition is claimed again, when the session ends (its ephemeral nodes
//! go with it) and at shutdown. Claims and retried deletes take turns (one gate), so a retry
//! never deletes a node claimed again meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::group::identity::ThreadId;
use crate::group::rebalance::RebalanceError;
use crate::partition::TopicPartition;
use crate::zk::layout;
use crate::zk::session::{EphemeralOutcome, OwnDelete, ZkError, ZkSession};

/// An owner node's path and what [`ZkSession::own_ephemeral_version`] found of it.
pub(crate) type Checked = (String, Result<Result<i32, OwnDelete>, ZkError>);

/// The wait before the first retry of a failed owner-node delete.
pub(crate) const RETRY_FIRST: Duration = Duration::from_millis(100);

/// The longest wait between two retries of a failed owner-node delete.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(3);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Failed deletes waiting for a retry, and whether the retry task runs.
#[derive(Default)]
struct Undeleted {
    paths: BTreeSet<String>,
    retrying: bool,
}

/// What [`Ownership`] and its retry task share.
struct Inner {
    zk: ZkSession,
    group: String,
    /// Owner nodes this session created or may have created (path -> thread id), until a
    /// delete is confirmed.
    claims: Mutex<BTreeMap<String, Claim>>,
    /// Nodes whose delete failed, retried by the retry task.
    undeleted: Mutex<Undeleted>,
    /// Held by a claim for its whole run and by a retried delete: never both at once.
    gate: tokio::sync::Mutex<()>,
    /// Ends the retry task (shutdown, or the [`Ownership`] dropped).
    stop: CancellationToken,
}

/// This member's owner nodes: claims, the session check, delete-if-ours.
pub(crate) struct Ownership {
    inner: Arc<Inner>,
}

impl Drop for Ownership {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

/// One remembered owner node.
struct Claim {
    /// The thread id written to it.
    data: Vec<u8>,
    /// Known created by this session (a create answered, or the node read with our session
    /// as its owner), not only attempted.
    confirmed: bool,
}

impl Ownership {
    pub(crate) fn new(zk: ZkSession, group: &str) -> Self {
        Ownership {
            inner: Arc::new(Inner {
                zk,
                group: group.to_string(),
                claims: Mutex::new(BTreeMap::new()),
                undeleted: Mutex::new(Undeleted::default()),
                gate: tokio::sync::Mutex::new(()),
                stop: CancellationToken::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Claim>> {
        lock(&self.inner.claims)
    }

    fn path(&self, tp: &TopicPartition) -> String {
        layout::owner_path(&self.inner.group, &tp.topic, tp.partition)
    }

    /// Owner nodes of ours that may still exist (path, thread id).
    pub(crate) fn remembered(&self) -> Vec<(String, Vec<u8>)> {
        self.lock()
            .iter()
            .map(|(p, c)| (p.clone(), c.data.clone()))
            .collect()
    }

    /// Whether this session claimed `tp` for `thread` (and has not released it).
    pub(crate) fn holds(&self, tp: &TopicPartition, thread: &ThreadId) -> bool {
        self.holds_path(&self.path(tp), thread)
    }

    fn holds_path(&self, path: &str, thread: &ThreadId) -> bool {
        self.lock()
            .get(path)
            .is_some_and(|c| c.confirmed && c.data == thread.as_str().as_bytes())
    }

    fn confirm(&self, path: &str) {
        if let Some(claim) = self.lock().get_mut(path) {
            claim.confirmed = true;
        }
    }

    /// The session ended: every node it created is gone with it (nothing left to retry).
    pub(crate) fn forget_all(&self) {
        self.lock().clear();
        lock(&self.inner.undeleted).paths.clear();
    }

    /// Ends the retrying of failed deletes (shutdown: after [`Ownership::delete_all`]).
    pub(crate) fn stop_retries(&self) {
        self.inner.stop.cancel();
    }

    /// Step 7: creates our owner nodes for `mine` (those this session holds already for the
    /// same thread are not asked again). Returns the partitions whose node another session
    /// holds (its member has not released yet), with the owner's thread id, in partition
    /// order: the nodes created meanwhile are kept (see the module doc). A node of our own
    /// session under another thread id (an earlier assignment) is replaced. Any other failure
    /// undoes the creates of this call.
    ///
    /// The creates are pipelined (one round trip for all of them, not one per partition).
    pub(crate) async fn claim(
        &self,
        mine: &BTreeMap<TopicPartition, ThreadId>,
    ) -> Result<Vec<(TopicPartition, String)>, RebalanceError> {
        self.claim_then(mine, || std::future::ready(())).await.0
    }

    /// [`claim`](Self::claim), and the requests of `then` sent right behind the creates, in
    /// the same round trip. ZooKeeper answers a session's requests in the order it sent them,
    /// and a read sees the writes its session made before it: so a read of `then` sees the
    /// group as it was when our creates were applied. For the committed offsets of the claimed
    /// partitions, that is after their previous owners committed and deleted their nodes (a
    /// member commits before it deletes), which is what [`claim`](Self::claim) followed by a
    /// read would see, one round trip later.
    ///
    /// `then`'s outcome comes back only when every node was settled by its first create
    /// (created, found ours or found held): when a create had to be sent again (a missing
    /// parent, a node gone between create and read, our node under another thread id
    /// replaced), `then` ran before that create and its outcome is dropped (`None`); the
    /// caller reads again.
    pub(crate) async fn claim_then<F: std::future::Future>(
        &self,
        mine: &BTreeMap<TopicPartition, ThreadId>,
        then: impl FnOnce() -> F,
    ) -> (
        Result<Vec<(TopicPartition, String)>, RebalanceError>,
        Option<F::Output>,
    ) {
        // No retried delete runs meanwhile, and none starts on a node claimed again here.
        let _gate = self.inner.gate.lock().await;
        {
            let mut undeleted = lock(&self.inner.undeleted);
            for tp in mine.keys() {
                undeleted.paths.remove(&self.path(tp));
            }
        }
        let wanted: Vec<(&TopicPartition, &ThreadId, String)> = mine
            .iter()
            .map(|(tp, thread)| (tp, thread, self.path(tp)))
            .filter(|(_, thread, path)| !self.holds_path(path, thread))
            .collect();
        // Each create polled once, in order, before `then` is called: the client sends a
        // request when it is made, and each `claim_one` makes its create before it first
        // waits. (Not one poll of a `join_all`: above 30 futures it may return before it
        // polled them all.)
        let mut creates: Vec<_> = wanted
            .iter()
            .map(|(_, thread, path)| Box::pin(self.claim_one(path, thread)))
            .collect();
        let mut settled = Vec::with_capacity(creates.len());
        for create in &mut creates {
            settled.push(match futures::poll!(create.as_mut()) {
                std::task::Poll::Ready(outcome) => Some(outcome),
                std::task::Poll::Pending => None,
            });
        }
        let after = then();
        let outcomes = futures::future::join_all(creates.into_iter().zip(settled).map(
            |(create, settled)| async move {
                match settled {
                    Some(outcome) => outcome,
                    None => create.await,
                }
            },
        ));
        let (outcomes, after) = futures::join!(outcomes, after);
        let mut claimed: Vec<String> = Vec::new();
        let mut conflicts = Vec::new();
        let mut failure: Option<RebalanceError> = None;
        let mut in_order = true;
        for ((tp, _, path), outcome) in wanted.iter().zip(outcomes) {
            match outcome {
                Ok((None, first)) => {
                    in_order &= first;
                    claimed.push(path.clone());
                }
                Ok((Some(owner), first)) => {
                    in_order &= first;
                    conflicts.push(((*tp).clone(), owner));
                }
                Err(e) => failure = failure.or(Some(e.into())),
            }
        }
        match failure {
            Some(e) => {
                self.unclaim(&claimed).await;
                (Err(e), None)
            }
            None => (Ok(conflicts), in_order.then_some(after)),
        }
    }

    /// Creates one owner node; `Some(owner)` when another session holds it. The flag tells
    /// whether the first create sent settled it (see [`claim_then`](Self::claim_then)).
    async fn claim_one(
        &self,
        path: &str,
        thread: &ThreadId,
    ) -> Result<(Option<String>, bool), ZkError> {
        let data = thread.as_str().as_bytes();
        // Remembered before the call: a create can be applied although the call fails.
        self.lock().insert(
            path.to_string(),
            Claim {
                data: data.to_vec(),
                confirmed: false,
            },
        );
        let mut replaced = false;
        loop {
            // The session that holds an existing node comes with the read of its data.
            let ours = self.inner.zk.session_id();
            let (outcome, first) = self.inner.zk.create_ephemeral_settled(path, data).await?;
            let first = first && !replaced;
            match outcome {
                EphemeralOutcome::Created => {
                    self.confirm(path);
                    return Ok((None, first));
                }
                // Our thread id: ours only if our session wrote it (a retried create), not a
                // previous session of the same consumer.id that has not expired yet.
                EphemeralOutcome::ExistsSame { owner_session } if owner_session == ours => {
                    self.confirm(path);
                    return Ok((None, first));
                }
                EphemeralOutcome::ExistsOther { owner_session, .. }
                    if owner_session == ours && !replaced =>
                {
                    // Ours under another thread id (an earlier assignment): replace it, once.
                    replaced = true;
                    if let OwnDelete::NotOurs { data: owner, .. } =
                        self.inner.zk.delete_own_ephemeral(path).await?
                    {
                        self.lock().remove(path);
                        return Ok((Some(owner), false));
                    }
                }
                EphemeralOutcome::ExistsSame { .. } => {
                    self.lock().remove(path);
                    return Ok((Some(thread.as_str().to_string()), first));
                }
                EphemeralOutcome::ExistsOther { data: owner, .. } => {
                    self.lock().remove(path);
                    return Ok((Some(owner), first));
                }
            }
        }
    }

    /// Deletes the owner nodes of `claimed` (an attempt undone), pipelined.
    async fn unclaim(&self, claimed: &[String]) {
        futures::future::join_all(claimed.iter().map(|path| self.delete(path))).await;
    }

    /// Deletes the owner node at `path` if it is ours; forgets it once it is gone or known
    /// to be another session's. A failure is logged and the delete retried (see the module
    /// docs), and at the next attempt.
    async fn delete(&self, path: &str) {
        let outcome = self.inner.zk.delete_own_ephemeral(path).await;
        self.settle(path, outcome);
    }

    /// Takes note of what deleting the owner node at `path` found; a failure puts it on the
    /// retry list.
    fn settle(&self, path: &str, outcome: Result<OwnDelete, ZkError>) {
        if let Err(e) = self.inner.settle(path, outcome) {
            tracing::warn!(
                error = %e, path,
                "cannot delete owner node; retried in the background and at the next attempt"
            );
            self.retry_later(path);
        }
    }

    /// Puts `path` on the retry list and starts the retry task unless it runs.
    fn retry_later(&self, path: &str) {
        if self.inner.stop.is_cancelled() {
            return;
        }
        let mut undeleted = lock(&self.inner.undeleted);
        undeleted.paths.insert(path.to_string());
        if undeleted.retrying {
            return;
        }
        undeleted.retrying = true;
        drop(undeleted);
        tokio::spawn(Inner::retry(self.inner.clone()));
    }

    /// The reads of [`release`](Self::release), done ahead (e.g. while the offsets are being
    /// committed) so that [`finish_release`](Self::finish_release) costs one round trip.
    /// Pipelined.
    pub(crate) async fn check_release(&self, partitions: &[TopicPartition]) -> Vec<Checked> {
        let paths: Vec<String> = partitions.iter().map(|tp| self.path(tp)).collect();
        let checks =
            futures::future::join_all(paths.iter().map(|p| self.inner.zk.own_ephemeral_version(p)))
                .await;
        paths.into_iter().zip(checks).collect()
    }

    /// Deletes the nodes [`check_release`](Self::check_release) found ours (conditioned on the
    /// version read), in one request when there are several (one by one, pipelined, if that
    /// fails); forgets those absent or another session's. A failure is
    /// logged and retried (see [`settle`](Self::settle)).
    pub(crate) async fn finish_release(&self, checked: Vec<Checked>) {
        // Those found ours go in one request when there are several (one ZooKeeper request
        // instead of one per node: a 3.4 server reads a connection's pipelined requests one
        // per pass over its busy connections). If one of them changed meanwhile nothing is
        // deleted, and each is deleted on its own below, which tells them apart.
        let ours: Vec<(String, i32)> = checked
            .iter()
            .filter_map(|(path, check)| match check {
                Ok(Ok(version)) => Some((path.clone(), *version)),
                _ => None,
            })
            .collect();
        let mut checked = checked;
        if ours.len() > 1 {
            match self.inner.zk.delete_versions_together(&ours).await {
                Some(Ok(())) => {
                    for (path, _) in &ours {
                        self.settle(path, Ok(OwnDelete::Deleted));
                    }
                    checked.retain(|(_, check)| !matches!(check, Ok(Ok(_))));
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "owner nodes not deleted together; one by one");
                }
                None => {}
            }
        }
        let deletes = checked.into_iter().map(|(path, check)| async move {
            let outcome = match check {
                Ok(Ok(version)) => self.inner.zk.delete_own_version(&path, version).await,
                Ok(Err(found)) => Ok(found),
                Err(e) => Err(e),
            };
            self.settle(&path, outcome);
        });
        futures::future::join_all(deletes).await;
    }

    /// Deletes the owner nodes of `partitions` that are ours (pipelined: one round trip or two
    /// for all of them).
    pub(crate) async fn release(&self, partitions: &[TopicPartition]) {
        let paths: Vec<String> = partitions.iter().map(|tp| self.path(tp)).collect();
        futures::future::join_all(paths.iter().map(|path| self.delete(path))).await;
    }

    /// Deletes our owner nodes that are not part of `mine` (with the same thread): a node whose
    /// delete failed earlier, or whose create was applied although the call reported an
    /// error, would otherwise block that partition for the whole group as long as our session
    /// lives. Costs nothing when every earlier delete succeeded; pipelined otherwise.
    pub(crate) async fn remove_strays(&self, mine: &BTreeMap<TopicPartition, ThreadId>) {
        let keep: BTreeMap<String, &[u8]> = mine
            .iter()
            .map(|(tp, thread)| (self.path(tp), thread.as_str().as_bytes()))
            .collect();
        let strays: Vec<String> = self
            .remembered()
            .into_iter()
            .filter(|(path, data)| keep.get(path).is_none_or(|d| *d != data.as_slice()))
            .map(|(path, _)| path)
            .collect();
        for path in &strays {
            tracing::info!(path = %path, "removing a leftover owner node of ours");
        }
        futures::future::join_all(strays.iter().map(|path| self.delete(path))).await;
    }

    /// Deletes our owner nodes of partitions not in `owned` (claims kept from a conflict whose
    /// assignment is stale), pipelined. Costs nothing when there are none.
    pub(crate) async fn remove_unstarted(&self, owned: &BTreeSet<TopicPartition>) {
        let owned: BTreeSet<String> = owned.iter().map(|tp| self.path(tp)).collect();
        let paths: Vec<String> = self
            .remembered()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| !owned.contains(p))
            .collect();
        futures::future::join_all(paths.iter().map(|path| self.delete(path))).await;
    }

    /// Deletes every owner node of ours that may still exist (shutdown).
    pub(crate) async fn delete_all(&self) {
        let paths: Vec<String> = self.remembered().into_iter().map(|(p, _)| p).collect();
        futures::future::join_all(paths.iter().map(|path| self.delete(path))).await;
    }
}

impl Inner {
    /// Takes note of what deleting the owner node at `path` found: forgets it (and stops
    /// retrying it) once it is gone or known to be another session's; the error otherwise.
    fn settle(&self, path: &str, outcome: Result<OwnDelete, ZkError>) -> Result<(), ZkError> {
        if let OwnDelete::NotOurs {
            data,
            owner_session,
        } = &outcome?
        {
            tracing::debug!(
                path, owner = %data, owner_session,
                "owner node belongs to another session: left alone"
            );
        }
        lock(&self.claims).remove(path);
        lock(&self.undeleted).paths.remove(path);
        Ok(())
    }

    /// The retry task: retries the failed deletes with backoff until none is left or it is
    /// stopped.
    async fn retry(inner: Arc<Inner>) {
        let mut wait = RETRY_FIRST;
        loop {
            tokio::select! {
                _ = inner.stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let paths: Vec<String> = lock(&inner.undeleted).paths.iter().cloned().collect();
            let mut failed = 0usize;
            for path in paths {
                let _gate = inner.gate.lock().await;
                // Claimed again (or forgotten) since: not ours to delete any more.
                if !lock(&inner.undeleted).paths.contains(&path) {
                    continue;
                }
                let outcome = inner.zk.delete_own_ephemeral(&path).await;
                match inner.settle(&path, outcome) {
                    Ok(()) => tracing::info!(path = %path, "owner node deleted on retry"),
                    Err(e) => {
                        failed += 1;
                        tracing::debug!(error = %e, path = %path, "owner node delete failed again");
                    }
                }
            }
            let mut undeleted = lock(&inner.undeleted);
            if undeleted.paths.is_empty() {
                undeleted.retrying = false;
                return;
            }
            if failed > 0 {
                wait = (wait * 2).min(RETRY_MAX);
            } else {
                // Only paths added meanwhile: their first retry.
                wait = RETRY_FIRST;
            }
        }
        lock(&inner.undeleted).retrying = false;
    }
}
