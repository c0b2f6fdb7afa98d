//! One signal stops everything: the process-wide shutdown broadcast.
//!
//! Every consumer created in the process listens to one `watch` channel. The first SIGINT or
//! SIGTERM flips it: every stream of every consumer ends promptly (also when no message is
//! arriving) and the fetchers stop; the application then calls [`crate::Consumer::shutdown`],
//! which commits what was processed and releases ownership. A second signal exits the process
//! at once with status 130. Nothing here touches ZooKeeper or Kafka.

use std::sync::OnceLock;

use tokio::sync::watch;

fn channel() -> &'static watch::Sender<bool> {
    static SIGNAL: OnceLock<watch::Sender<bool>> = OnceLock::new();
    SIGNAL.get_or_init(|| watch::channel(false).0)
}

/// A receiver that turns `true` when the process is asked to shut down.
pub fn subscribe() -> watch::Receiver<bool> {
    channel().subscribe()
}

/// Whether a process-wide shutdown has been requested.
pub fn requested() -> bool {
    *channel().borrow()
}

/// Requests a process-wide shutdown, as a signal would (useful in tests and embedding code).
pub fn request() {
    channel().send_replace(true);
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
