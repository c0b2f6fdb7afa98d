//! Everything ZooKeeper: the data layout (pure), the session wrapper (I/O) and the liveness
//! gate that keeps a possibly-expired member from delivering.

pub mod layout;
pub mod liveness;
pub mod session;

use layout::BrokerInfo;
use session::{ZkError, ZkSession};
use zookeeper_client::OneshotWatcher;

/// Every live broker registered under `/brokers/ids` (nodes that vanish meanwhile are skipped;
/// an unreadable one is an error naming its path). Two round trips: the list, then every
/// broker's node at once (pipelined on the session's connection).
pub async fn live_brokers(zk: &ZkSession) -> Result<Vec<BrokerInfo>, ZkError> {
    let ids = zk.children(layout::BROKER_IDS_PATH).await?;
    brokers_of(zk, ids).await
}

/// [`live_brokers`] with a watch on the list of `/brokers/ids` (it fires when a broker
/// registers or goes). The watch comes back even when reading the brokers' nodes fails: a
/// watch dropped unfired sends RemoveWatches, which ZooKeeper 3.4 answers by closing the
/// connection. An error of the outer result means no watch was set.
pub async fn live_brokers_watching(
    zk: &ZkSession,
) -> Result<(Result<Vec<BrokerInfo>, ZkError>, OneshotWatcher), ZkError> {
    let (ids, watcher) = zk.children_watch(layout::BROKER_IDS_PATH).await?;
    Ok((brokers_of(zk, ids).await, watcher))
}

/// The registrations of the brokers `ids` (children of `/brokers/ids`), read at once.
async fn brokers_of(zk: &ZkSession, ids: Vec<String>) -> Result<Vec<BrokerInfo>, ZkError> {
    let mut numeric_ids = Vec::new();
    for id in ids {
        match id.parse::<i32>() {
            Ok(numeric) => numeric_ids.push(numeric),
            Err(_) => tracing::warn!(id = %id, "ignoring a broker node with a non-numeric id"),
        }
    }
    let paths: Vec<String> = numeric_ids
        .iter()
        .map(|id| layout::broker_path(*id))
        .collect();
    let datas = futures::future::join_all(paths.iter().map(|path| zk.get_data(path))).await;
    let mut out = Vec::new();
    for ((numeric, path), data) in numeric_ids.into_iter().zip(&paths).zip(datas) {
        if let Some(data) = data? {
            out.push(BrokerInfo::parse(numeric, path, &data)?);
        }
    }
    Ok(out)
}
