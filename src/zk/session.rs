//! The ZooKeeper session: a thin wrapper over `zookeeper-client` that owns connecting (chroot,
//! timeouts, the server version that decides which requests may be sent), replacing an expired
//! session, and the handful of operations the coordinator and tools need, each returning errors
//! that name the path and the operation.
//!
//! It knows nothing of groups or assignment: callers pass paths from [`crate::zk::layout`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use zookeeper_client::{
    Acls, Client, CreateMode, CreateOptions, EventType, OneshotWatcher, SessionState, StateWatcher,
};

/// Errors of the ZooKeeper layer. Every variant names the operation and the path (or the
/// connect string) it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The session could not be established.
    #[error("cannot connect to ZooKeeper at {connect}: {source}")]
    Connect {
        /// The connect string used.
        connect: String,
        /// What the client reported.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A request on one path failed.
    #[error("ZooKeeper {op} of {path} failed: {source}")]
    Request {
        /// The operation (`get`, `create`, `set`, `delete`, `children`, `exists`).
        op: &'static str,
        /// The path, relative to the chroot.
        path: String,
        /// What the server or client reported.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A node holds data that cannot be understood.
    #[error(transparent)]
    Layout(#[from] crate::zk::layout::LayoutError),
}

impl ZkError {
    fn request(op: &'static str, path: &str, source: zookeeper_client::Error) -> Self {
        ZkError::Request {
            op,
            path: path.to_string(),
            source,
        }
    }

    /// Whether the failure was caused by the session having expired (or the client having been
    /// closed): only a new session can recover from it.
    pub fn is_session_expired(&self) -> bool {
        matches!(
            self,
            ZkError::Request {
                source: zookeeper_client::Error::SessionExpired
                    | zookeeper_client::Error::ClientClosed,
                ..
            }
        )
    }
}

/// Connection settings of a session (from `zookeeper.*` keys of the consumer config).
#[derive(Debug, Clone)]
pub struct ZkSettings {
    /// `host:port[,host:port…][/chroot]`.
    pub connect: String,
    /// `zookeeper.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `zookeeper.connection.timeout.ms`.
    pub connection_timeout: Duration,
    /// Version of the oldest server of the ensemble: 3.4 servers reject requests added in 3.5.
    pub server_version: (u32, u32, u32),
}

impl ZkSettings {
    fn hosts_and_chroot(&self) -> (&str, Option<&str>) {
        match self.connect.find('/') {
            Some(i) if i + 1 < self.connect.len() => (&self.connect[..i], Some(&self.connect[i..])),
            Some(i) => (&self.connect[..i], None),
            None => (&self.connect, None),
        }
    }
}

/// Result of creating an ephemeral node that may already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EphemeralOutcome {
    /// The node was created.
    Created,
    /// The node existed with exactly the requested data (a retry after connection loss, or
    /// another session that wrote the same data: see `owner_session`).
    ExistsSame {
        /// The session that owns the node (its `ephemeralOwner`).
        owner_session: i64,
    },
    /// The node exists with other data.
    ExistsOther {
        /// The node's data.
        data: String,
        /// The session that owns the node (its `ephemeralOwner`).
        owner_session: i64,
    },
}

/// What [`ZkSession::delete_own_ephemeral`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnDelete {
    /// The node was this session's and is deleted.
    Deleted,
    /// There was no node.
    Absent,
    /// The node belongs to another session (or is persistent): left alone.
    NotOurs {
        /// The node's data.
        data: String,
        /// Its `ephemeralOwner` (0: a persistent node).
        owner_session: i64,
    },
}

/// A ZooKeeper session that can be replaced after expiry.
#[derive(Debug, Clone)]
pub struct ZkSession {
    settings: ZkSettings,
    client: Arc<RwLock<Client>>,
    /// Requests sent through this session (all renewals), for benchmarks and monitoring.
    requests: Arc<AtomicU64>,
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

fn ephemeral() -> CreateOptions<'static> {
    CreateMode::Ephemeral.with_acls(Acls::anyone_all())
}

impl ZkSession {
    /// Opens a session, creating the chroot if it does not exist yet (as Kafka's tools do).
    pub async fn connect(settings: ZkSettings) -> Result<Self, ZkError> {
        let client = Self::open(&settings).await?;
        Ok(ZkSession {
            settings,
            client: Arc::new(RwLock::new(client)),
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    async fn open(settings: &ZkSettings) -> Result<Client, ZkError> {
        let (hosts, chroot) = settings.hosts_and_chroot();
        let (major, minor, patch) = settings.server_version;
        let connector = || {
            Client::connector()
                .with_session_timeout(settings.session_timeout)
                .with_connection_timeout(settings.connection_timeout)
                .with_server_version(major, minor, patch)
        };
        let connect_err = |source| ZkError::Connect {
            connect: settings.connect.clone(),
            source,
        };
        let root = connector().connect(hosts).await.map_err(connect_err)?;
        let Some(chroot) = chroot else {
            return Ok(root);
        };
        match root.mkdir(chroot, &persistent()).await {
            Ok(()) => {}
            Err(source) => return Err(ZkError::request("create", chroot, source)),
        }
        drop(root);
        connector()
            .connect(&settings.connect)
            .await
            .map_err(connect_err)
    }

    /// The settings this session was opened with.
    pub fn settings(&self) -> &ZkSettings {
        &self.settings
    }

    /// The current client (cheap clone sharing the session).
    pub fn client(&self) -> Client {
        match self.client.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many requests were sent to ZooKeeper through this session so far (pings of the
    /// client library itself not counted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The current client, counting one request about to be sent with it.
    fn counted(&self) -> Client {
        self.count();
        self.client()
    }

    /// Watches session state changes of the current client.
    pub fn state_watcher(&self) -> StateWatcher {
        self.client().state_watcher()
    }

    /// Replaces the (expired) session with a new one. Ephemeral nodes of the old session are
    /// gone; the caller re-creates what it needs.
    pub async fn renew(&self) -> Result<(), ZkError> {
        let client = Self::open(&self.settings).await?;
        match self.client.write() {
            Ok(mut guard) => *guard = client,
            Err(poisoned) => *poisoned.into_inner() = client,
        }
        Ok(())
    }

    /// The session timeout the server granted the current session. Servers clamp the requested
    /// `zookeeper.session.timeout.ms` to `[2, 20] x tickTime` (their `min`/`maxSessionTimeout`),
    /// so this can be much shorter than asked for; it changes with each renewal.
    pub fn negotiated_session_timeout(&self) -> Duration {
        let granted = self.client().session_timeout();
        if granted.is_zero() {
            self.settings.session_timeout
        } else {
            // The client may round its own deadline up; the request is an upper bound too.
            granted.min(self.settings.session_timeout)
        }
    }

    /// Whether the current session is usable (not expired or closed).
    pub fn is_alive(&self) -> bool {
        !matches!(
            self.client().state(),
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
        )
    }

    /// Id of the current session (owner of the ephemeral nodes this member creates).
    pub fn session_id(&self) -> i64 {
        self.client().session_id().0
    }

    /// The session owning an ephemeral node (`None`: the node does not exist; `Some(0)`: a
    /// persistent node).
    pub async fn ephemeral_owner(&self, path: &str) -> Result<Option<i64>, ZkError> {
        match self.counted().check_stat(path).await {
            Ok(stat) => Ok(stat.map(|s| s.ephemeral_owner)),
            Err(e) => Err(ZkError::request("exists", path, e)),
        }
    }

    /// Whether a node exists, and a watch that fires on its next creation, deletion or data
    /// change.
    pub async fn exists_watch(&self, path: &str) -> Result<(bool, OneshotWatcher), ZkError> {
        match self.counted().check_and_watch_stat(path).await {
            Ok((stat, watcher)) => Ok((stat.is_some(), watcher)),
            Err(e) => Err(ZkError::request("exists", path, e)),
        }
    }

    /// One round trip to the server: confirms the session is alive right now.
    pub async fn ping(&self) -> Result<(), ZkError> {
        self.client()
            .check_stat("/")
            .await
            .map(|_| ())
            .map_err(|e| ZkError::request("exists", "/", e))
    }

    /// Data of a node, `None` when it does not exist.
    pub async fn get_data(&self, path: &str) -> Result<Option<Vec<u8>>, ZkError> {
        match self.counted().get_data(path).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(ZkError::request("get", path, e)),
        }
    }

    /// Data of a node and a watch on its next change, `None` when it does not exist.
    pub async fn get_data_watch(
        &self,
        path: &str,
    ) -> Result<Option<(Vec<u8>, OneshotWatcher)>, ZkError> {
        match self.counted().get_and_watch_data(path).await {
            Ok((data, _, watcher)) => Ok(Some((data, watcher))),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(ZkError::request("get", path, e)),
        }
    }

    /// Data of a node, the transaction id that created it (czxid: a node deleted and created
    /// again under the same path has another) and a watch on its next change; `None` when it
    /// does not exist (no watch is set then).
    pub async fn get_data_watch_created(
        &self,
        path: &str,
    ) -> Result<Option<(Vec<u8>, i64, OneshotWatcher)>, ZkError> {
        match self.counted().get_and_watch_data(path).await {
            Ok((data, stat, watcher)) => Ok(Some((data, stat.czxid, watcher))),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(ZkError::request("get", path, e)),
        }
    }

    /// Children of a node (unsorted), empty when the node does not exist.
    pub async fn children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        match self.counted().list_children(path).await {
            Ok(children) => Ok(children),
            Err(zookeeper_client::Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(ZkError::request("children", path, e)),
        }
    }

    /// Children of a node and a watch that fires when they change. A missing node is created
    /// (persistent, empty) first so that the watch is always set.
    pub async fn children_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, OneshotWatcher), ZkError> {
        let client = self.client();
        loop {
            self.count();
            match client.list_and_watch_children(path).await {
                Ok((children, watcher)) => return Ok((children, watcher)),
                Err(zookeeper_client::Error::NoNode) => {
                    client
                        .mkdir(path, &persistent())
                        .await
                        .map_err(|e| ZkError::request("create", path, e))?;
                }
                Err(e) => return Err(ZkError::request("children", path, e)),
            }
        }
    }

    /// Creates the parents of `path` as persistent empty nodes where missing.
    async fn ensure_parent(&self, client: &Client, path: &str) -> Result<(), ZkError> {
        match path.rfind('/') {
            Some(i) if i > 0 => client
                .mkdir(&path[..i], &persistent())
                .await
                .map_err(|e| ZkError::request("create", &path[..i], e)),
            _ => Ok(()),
        }
    }

    /// Creates an ephemeral node with `data`, creating missing parents. An existing node is
    /// reported with its data, never overwritten.
    pub async fn create_ephemeral(
        &self,
        path: &str,
        data: &[u8],
    ) -> Result<EphemeralOutcome, ZkError> {
        Ok(self.create_ephemeral_settled(path, data).await?.0)
    }

    /// [`create_ephemeral`](Self::create_ephemeral), telling whether the outcome is that of
    /// the first create sent (`false`: a parent was created, or the node vanished between the
    /// create and the read of its data, and a create was sent again). The first create is
    /// sent before the returned future first waits, so requests made after one poll of it
    /// reach the server behind it.
    pub async fn create_ephemeral_settled(
        &self,
        path: &str,
        data: &[u8],
    ) -> Result<(EphemeralOutcome, bool), ZkError> {
        let client = self.client();
        let mut first = true;
        loop {
            self.count();
            match client.create(path, data, &ephemeral()).await {
                Ok(_) => return Ok((EphemeralOutcome::Created, first)),
                Err(zookeeper_client::Error::NoNode) => self.ensure_parent(&client, path).await?,
                Err(zookeeper_client::Error::NodeExists) => {
                    self.count();
                    match client.get_data(path).await {
                        Ok((existing, stat)) if existing == data => {
                            return Ok((
                                EphemeralOutcome::ExistsSame {
                                    owner_session: stat.ephemeral_owner,
                                },
                                first,
                            ))
                        }
                        Ok((existing, stat)) => {
                            return Ok((
                                EphemeralOutcome::ExistsOther {
                                    data: String::from_utf8_lossy(&existing).into_owned(),
                                    owner_session: stat.ephemeral_owner,
                                },
                                first,
                            ))
                        }
                        // Deleted between our create and read: try again.
                        Err(zookeeper_client::Error::NoNode) => {}
                        Err(e) => return Err(ZkError::request("get", path, e)),
                    }
                }
                Err(e) => return Err(ZkError::request("create", path, e)),
            }
            first = false;
        }
    }

    /// Writes `data` to a persistent node, creating it (and its parents) when missing.
    pub async fn write_persistent(&self, path: &str, data: &[u8]) -> Result<(), ZkError> {
        let client = self.client();
        loop {
            self.count();
            match client.set_data(path, data, None).await {
                Ok(_) => return Ok(()),
                Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => return Err(ZkError::request("set", path, e)),
            }
            self.count();
            match client.create(path, data, &persistent()).await {
                Ok(_) => return Ok(()),
                Err(zookeeper_client::Error::NoNode) => self.ensure_parent(&client, path).await?,
                // Created concurrently: loop to overwrite it with our value.
                Err(zookeeper_client::Error::NodeExists) => {}
                Err(e) => return Err(ZkError::request("create", path, e)),
            }
        }
    }

    /// Deletes a node; a node that is already gone is not an error.
    pub async fn delete(&self, path: &str) -> Result<(), ZkError> {
        match self.counted().delete(path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
            Err(e) => Err(ZkError::request("delete", path, e)),
        }
    }

    /// Deletes a node and everything below it.
    pub async fn delete_recursive(&self, path: &str) -> Result<(), ZkError> {
        let mut stack = vec![path.to_string()];
        let mut order = Vec::new();
        while let Some(p) = stack.pop() {
            for child in self.children(&p).await? {
                stack.push(format!("{}/{}", p.trim_end_matches('/'), child));
            }
            order.push(p);
        }
        for p in order.iter().rev() {
            self.delete(p).await?;
        }
        Ok(())
    }

    /// The first half of [`delete_own_ephemeral`](Self::delete_own_ephemeral): `Ok(version)`
    /// when the node at `path` is this session's, else what the delete would have found
    /// ([`OwnDelete::Absent`] or [`OwnDelete::NotOurs`]). Lets a caller read before other work
    /// and delete with [`delete_own_version`](Self::delete_own_version) after it.
    pub async fn own_ephemeral_version(
        &self,
        path: &str,
    ) -> Result<Result<i32, OwnDelete>, ZkError> {
        let client = self.counted();
        let session = client.session_id().0;
        match client.get_data(path).await {
            Ok((_, stat)) if stat.ephemeral_owner == session => Ok(Ok(stat.version)),
            Ok((data, stat)) => Ok(Err(OwnDelete::NotOurs {
                data: String::from_utf8_lossy(&data).into_owned(),
                owner_session: stat.ephemeral_owner,
            })),
            Err(zookeeper_client::Error::NoNode) => Ok(Err(OwnDelete::Absent)),
            Err(e) => Err(ZkError::request("get", path, e)),
        }
    }

    /// The second half of [`delete_own_ephemeral`](Self::delete_own_ephemeral): deletes the
    /// node at `path` if it still has `version` (read by
    /// [`own_ephemeral_version`](Self::own_ephemeral_version) while it was ours). A node
    /// changed since is not deleted: an error naming it.
    pub async fn delete_own_version(&self, path: &str, version: i32) -> Result<OwnDelete, ZkError> {
        match self.counted().delete(path, Some(version)).await {
            Ok(()) => Ok(OwnDelete::Deleted),
            Err(zookeeper_client::Error::NoNode) => Ok(OwnDelete::Absent),
            Err(e) => Err(ZkError::request("delete", path, e)),
        }
    }

    /// Deletes every node of `nodes` (path, the version read while it was ours, see
    /// [`own_ephemeral_version`](Self::own_ephemeral_version)) in one request, all or none
    /// (ZooKeeper's `multi`, 3.4.0 and later; a server configured older gets `None`).
    /// `Some(Err)` when one node changed or went meanwhile, or the request failed: nothing was
    /// deleted then, the caller deletes them one by one to learn which.
    pub async fn delete_versions_together(
        &self,
        nodes: &[(String, i32)],
    ) -> Option<Result<(), ZkError>> {
        if self.settings.server_version < (3, 4, 0) {
            return None;
        }
        let client = self.counted();
        let mut writer = client.new_multi_writer();
        for (path, version) in nodes {
            if let Err(e) = writer.add_delete(path, Some(*version)) {
                return Some(Err(ZkError::request("delete", path, e)));
            }
        }
        let first = nodes.first().map(|(p, _)| p.as_str()).unwrap_or("");
        Some(match writer.commit().await {
            Ok(_) => Ok(()),
            Err(zookeeper_client::MultiWriteError::RequestFailed { source }) => {
                Err(ZkError::request("multi delete", first, source))
            }
            Err(zookeeper_client::MultiWriteError::OperationFailed { index, source }) => {
                let path = nodes.get(index).map(|(p, _)| p.as_str()).unwrap_or(first);
                Err(ZkError::request("multi delete", path, source))
            }
        })
    }

    /// Deletes the ephemeral node `path` if this session created it: its `ephemeralOwner`
    /// is our session id, read in the same request as the version the delete is conditioned
    /// on. Owner nodes are never rewritten, and only the owning session (or its expiry, which
    /// fails our delete too) removes one, so a node read as ours is the node deleted. Never
    /// deletes another session's node, whatever data it holds.
    pub async fn delete_own_ephemeral(&self, path: &str) -> Result<OwnDelete, ZkError> {
        let client = self.counted();
        let session = client.session_id().0;
        match client.get_data(path).await {
            Ok((_, stat)) if stat.ephemeral_owner == session => {
                self.count();
                match client.delete(path, Some(stat.version)).await {
                    Ok(()) => Ok(OwnDelete::Deleted),
                    Err(zookeeper_client::Error::NoNode) => Ok(OwnDelete::Absent),
                    Err(e) => Err(ZkError::request("delete", path, e)),
                }
            }
            Ok((data, stat)) => Ok(OwnDelete::NotOurs {
                data: String::from_utf8_lossy(&data).into_owned(),
                owner_session: stat.ephemeral_owner,
            }),
            Err(zookeeper_client::Error::NoNode) => Ok(OwnDelete::Absent),
            Err(e) => Err(ZkError::request("get", path, e)),
        }
    }
}

/// Whether a fired watch event means "look again" (node events) rather than only a session
/// state change, which is handled by the session watcher.
pub fn is_node_event(event_type: EventType) -> bool {
    !matches!(event_type, EventType::Session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(connect: &str) -> ZkSettings {
        ZkSettings {
            connect: connect.to_string(),
            session_timeout: Duration::from_secs(6),
            connection_timeout: Duration::from_secs(6),
            server_version: (3, 4, 6),
        }
    }

    #[test]
    fn chroot_is_split_from_hosts() {
        assert_eq!(
            settings("a:1,b:2/kafka/x").hosts_and_chroot(),
            ("a:1,b:2", Some("/kafka/x"))
        );
        assert_eq!(settings("a:1").hosts_and_chroot(), ("a:1", None));
        assert_eq!(settings("a:1/").hosts_and_chroot(), ("a:1", None));
    }
}
