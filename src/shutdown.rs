//! One way to stop: a tree of cancellation tokens, process -> consumer -> its tasks.
//!
//! The process holds a root token. Every [`crate::Consumer`] takes a child of it when it is
//! created, and gives children of its own to its coordinator, session prober and auto-commit
//! timer; the coordinator stops the fetchers and ends the streams when its token is cancelled.
//! So a SIGINT/SIGTERM ([`install_signal_handlers`]) or [`request`] (from any thread, with or
//! without a runtime) stops every consumer that exists at that moment, and
//! [`crate::Consumer::shutdown`] stops one alone; the application then calls `shutdown` on each,
//! which commits what was processed and releases ownership.
//!
//! [`request`] replaces the root after cancelling it: a consumer created after a signal is not
//! born stopped (an embedding application, e.g. the Python package, may start new consumers
//! after stopping the old ones). A second signal exits the process at once with status 130.
//! Nothing here touches ZooKeeper or Kafka.

use std::sync::{Mutex, MutexGuard, OnceLock};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn root() -> MutexGuard<'static, CancellationToken> {
    static ROOT: OnceLock<Mutex<CancellationToken>> = OnceLock::new();
    let root = ROOT.get_or_init(|| Mutex::new(CancellationToken::new()));
    match root.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn requests() -> &'static watch::Sender<bool> {
    static REQUESTED: OnceLock<watch::Sender<bool>> = OnceLock::new();
    REQUESTED.get_or_init(|| watch::channel(false).0)
}

/// A token for something created now: cancelled by the next [`request`] (or signal), or by
/// cancelling it (or a parent it is given to as child).
pub fn token() -> CancellationToken {
    root().child_token()
}

/// A receiver that turns `true` at the first [`request`] (or signal) of the process, for
/// applications that want to learn of it; consumers do not use it.
pub fn subscribe() -> watch::Receiver<bool> {
    requests().subscribe()
}

/// Whether a process-wide shutdown has been requested at least once.
pub fn requested() -> bool {
    *requests().borrow()
}

/// Stops every consumer that exists now, as a signal would; callable from any thread.
/// Consumers created afterwards are not affected.
pub fn request() {
    let old = std::mem::replace(&mut *root(), CancellationToken::new());
    requests().send_replace(true);
    old.cancel();
}

/// Installs the SIGINT/SIGTERM handler on the current tokio runtime: the first signal requests
/// shutdown, a second one exits the process immediately with status 130.
pub fn install_signal_handlers() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                tracing::info!(
                    "shutdown signal received: stopping all consumers (again to force exit)"
                );
                request();
            } else {
                tracing::warn!("second shutdown signal: exiting now");
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_stops_what_exists_and_not_what_comes_after() {
        let before = token();
        let child = before.child_token();
        request();
        assert!(before.is_cancelled() && child.is_cancelled());
        assert!(requested());
        let after = token();
        assert!(!after.is_cancelled());
        // One stopped alone leaves the others running.
        let other = token();
        after.cancel();
        assert!(!other.is_cancelled());
    }
}
