//! Everything ZooKeeper: the data layout (pure), the session wrapper (I/O) and the liveness
//! gate that keeps a possibly-expired member from delivering.

pub mod layout;
pub mod liveness;
pub mod session;

use layout::BrokerInfo;
use session::{ZkError, ZkSession};

/// Every live broker registered under `/brokers/ids` (nodes that vanish meanwhile are skipped;
/// an unreadable one is an error naming its path).
pub async fn live_brokers(zk: &ZkSession) -> Result<Vec<BrokerInfo>, ZkError> {
    let mut out = Vec::new();
    for id in zk.children(layout::BROKER_IDS_PATH).await? {
        let Ok(numeric) = id.parse::<i32>() else {
            tracing::warn!(id = %id, "ignoring a broker node with a non-numeric id");
            continue;
        };
        let path = layout::broker_path(numeric);
        if let Some(data) = zk.get_data(&path).await? {
            out.push(BrokerInfo::parse(numeric, &path, &data)?);
        }
    }
    Ok(out)
}
