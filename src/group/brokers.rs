//! The live brokers as last read, so that a rebalance does not read `/brokers/ids` and every
//! broker's node each time (four requests of every attempt of every member, for a list that
//! changes when a broker starts or stops).
//!
//! The list is read with a watch on the children of `/brokers/ids` and used until that watch
//! fires; then the next attempt reads it again. A broker registers by creating its ephemeral
//! node and goes by losing it, so the watch sees every change that matters. What the list is
//! used for is the fetchers' bootstrap addresses: the fetchers follow partition leaders
//! themselves (from the brokers' metadata), so a list one notification behind costs nothing.
//! Whether a change starts a rebalance is not this module's business (the coordinator asks
//! for that only while no broker is registered, as Java does).
//!
//! Watches are never dropped unfired while the session lives (ZooKeeper 3.4 answers the
//! RemoveWatches that would send by closing the connection): a watch whose read failed is
//! kept until it fires.

use std::future::Future;

use futures::FutureExt;

use crate::group::registrations::Gone;
use crate::zk::layout::BrokerInfo;
use crate::zk::session::{ZkError, ZkSession};

/// The brokers of the last read and the watch that says they are stale (see the module doc).
/// Owned by the coordinator task; cleared when the session that holds its watch is lost.
#[derive(Default)]
pub struct BrokerCache {
    current: Option<(Vec<BrokerInfo>, Gone)>,
    /// Watches of reads that failed or went stale before they fired.
    retired: Vec<Gone>,
}

impl BrokerCache {
    /// The live brokers: the cached list while its watch has not fired, else a new read (two
    /// round trips). An empty list is never cached: the coordinator waits for a broker with a
    /// watch of its own.
    pub async fn get(&mut self, zk: &ZkSession) -> Result<Vec<BrokerInfo>, ZkError> {
        self.retired
            .retain_mut(|gone| gone.now_or_never().is_none());
        if let Some((brokers, gone)) = &mut self.current {
            if gone.now_or_never().is_none() {
                return Ok(brokers.clone());
            }
        }
        self.current = None;
        let (read, watcher) = crate::zk::live_brokers_watching(zk).await?;
        let gone: Gone = Box::pin(watcher.changed());
        match read {
            Ok(brokers) if !brokers.is_empty() => {
                self.current = Some((brokers.clone(), gone));
                Ok(brokers)
            }
            other => {
                self.retired.push(gone);
                other
            }
        }
    }

    /// Forgets everything: the session holding the watches expired (its watches are gone with
    /// it, so dropping them sends nothing).
    pub fn clear(&mut self) {
        self.current = None;
        self.retired.clear();
    }

    /// The pending watches, to be kept until the session closes (shutdown).
    pub fn into_pending(self) -> impl Future<Output = ()> + Send {
        let all: Vec<Gone> = self
            .current
            .map(|(_, gone)| gone)
            .into_iter()
            .chain(self.retired)
            .collect();
        async move {
            futures::future::join_all(all).await;
        }
    }
}
