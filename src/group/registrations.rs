//! The registrations of a group's members as last read, so that a rebalance reads only what
//! changed instead of every member's node each time (the herd that costs members x members
//! reads per change).
//!
//! A registration node's data does not change while the node lives: a member writes it once,
//! at registration. A member replaced under the same consumer id (a restart with a fixed
//! `consumer.id`, a re-registration after session expiry) deletes and re-creates its node,
//! which then has a new czxid. So each node is read once, with a data watch; the watch firing
//! (deleted, or rewritten by some other tool) marks the entry stale, and the next update reads
//! the node again and records its new czxid.
//!
//! What makes this exact rather than eventually right: ZooKeeper sends a watch notification
//! before the answer to any later request of the same session, and the client hands the
//! notification to its watcher before it completes that request. Once the member list has
//! been read, every node deleted before that read has its watch fired already, and one poll of
//! the watcher tells. The watches cost no requests (they ride on the reads the cache does
//! anyway) and are never dropped unfired while the session lives (ZooKeeper 3.4 answers the
//! RemoveWatches that would send by closing the connection).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use zookeeper_client::WatchedEvent;

use crate::zk::layout::{self, Registration};
use crate::zk::session::{ZkError, ZkSession};

/// A pending watch: ready once it fired (polled with `now_or_never` to tell a stale entry).
pub type Gone = Pin<Box<dyn Future<Output = WatchedEvent> + Send + Sync>>;

/// One member's registration as read from its node.
#[derive(Debug)]
pub struct Registered {
    /// The node's path (for error messages).
    pub path: String,
    /// The transaction that created the node: a new node under the same id has another.
    pub czxid: i64,
    /// The parsed registration, or why it cannot be understood.
    pub registration: Result<Registration, String>,
    /// The keys of its subscription in document order (roundrobin tie order), when readable.
    pub document_order: Option<Vec<String>>,
}

struct Entry {
    registered: Arc<Registered>,
    /// Fires when the node is deleted or its data changes: the entry is then stale.
    gone: Gone,
}

/// The registrations of one group's members (see the module doc). Owned by the coordinator
/// task; cleared when the session that holds its watches is lost.
#[derive(Default)]
pub struct RegistrationCache {
    entries: BTreeMap<String, Entry>,
    /// Watches of entries dropped from the cache that had not fired yet (not expected, see
    /// the module doc): kept until they fire, never dropped pending.
    retired: Vec<Gone>,
    /// Registration nodes read so far.
    reads: u64,
}

impl RegistrationCache {
    /// Brings the cache to the member list `ids` (the children of `ids_path`, just read):
    /// reads, in one pipelined batch, the registrations of members not cached yet and of
    /// those whose node changed since it was read; forgets the members that left. A node that
    /// is gone by the time it is read is left out (that member left meanwhile).
    pub async fn update(
        &mut self,
        zk: &ZkSession,
        ids_path: &str,
        ids: &[String],
    ) -> Result<(), ZkError> {
        // Stale entries first: a fired watch means the node we read is gone or rewritten.
        let mut stale: BTreeMap<String, i64> = BTreeMap::new();
        self.entries.retain(|id, entry| {
            let fired = (&mut entry.gone).now_or_never().is_some();
            if fired {
                stale.insert(id.clone(), entry.registered.czxid);
            }
            !fired
        });
        self.retired
            .retain_mut(|gone| gone.now_or_never().is_none());
        let current: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let left: Vec<String> = self
            .entries
            .keys()
            .filter(|id| !current.contains(id.as_str()))
            .cloned()
            .collect();
        for id in left {
            if let Some(entry) = self.entries.remove(&id) {
                self.retired.push(entry.gone);
            }
        }
        let missing: Vec<(&String, String)> = ids
            .iter()
            .filter(|id| !self.entries.contains_key(*id))
            .map(|id| (id, format!("{ids_path}/{id}")))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // Pipelined on the session's connection: one round trip for all of them.
        let reads = futures::future::join_all(
            missing
                .iter()
                .map(|(_, path)| zk.get_data_watch_created(path)),
        )
        .await;
        self.reads += missing.len() as u64;
        let mut failure = None;
        for ((id, path), read) in missing.into_iter().zip(reads) {
            match read {
                Ok(Some((data, czxid, watcher))) => {
                    if stale.get(id).is_some_and(|before| *before != czxid) {
                        tracing::debug!(path = %path, "member replaced under the same id");
                    }
                    let registered = Arc::new(parse(path, czxid, &data));
                    let gone: Gone = Box::pin(watcher.changed());
                    self.entries.insert(id.clone(), Entry { registered, gone });
                }
                Ok(None) => {} // left meanwhile: no watch was set
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The registration of member `id` as last read (`None`: not a member at the last update).
    pub fn get(&self, id: &str) -> Option<Arc<Registered>> {
        self.entries.get(id).map(|e| e.registered.clone())
    }

    /// How many registration nodes were read so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Forgets everything: the session holding the watches expired (its watches are gone with
    /// it, so dropping them sends nothing).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.retired.clear();
    }

    /// The pending watches, to be kept until the session closes (shutdown).
    pub fn into_pending(self) -> impl Future<Output = ()> + Send {
        let all: Vec<Gone> = self
            .entries
            .into_values()
            .map(|e| e.gone)
            .chain(self.retired)
            .collect();
        async move {
            futures::future::join_all(all).await;
        }
    }
}

/// Parses a registration once, for as long as its node lives.
fn parse(path: String, czxid: i64, data: &[u8]) -> Registered {
    let registration = Registration::parse(&path, data).map_err(|e| e.to_string());
    let document_order = registration
        .is_ok()
        .then(|| layout::subscription_document_order(&path, data).ok())
        .flatten();
    Registered {
        path,
        czxid,
        registration,
        document_order,
    }
}
