//! Everything ZooKeeper: the data layout (pure), the session wrapper (I/O) and the liveness
//! gate that keeps a possibly-expired member from delivering.

pub mod layout;
pub mod liveness;
pub mod session;

use layout::BrokerInfo;
use session::{ZkError, ZkSession};

/// Every live broker registered under `/brokers/ids` (nodes that vanish meanwhile are skipped;
/// an unreadable one is an error naming its path). Two round trips: the list, then every
/// broker's node at once (pipelined on the session's connection).
pub async fn live_brokers(zk: &ZkSession) -> Result<Vec<BrokerInfo>, ZkError> {
    let mut numeric_ids = Vec::new();
    for id in zk.children(layout::BROKER_IDS_PATH).await? {
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
