//! Zombie protection: the gate that stops delivery while this member's ZooKeeper session may
//! have expired.
//!
//! A process paused past its session timeout (GC, SIGSTOP, a network cut) cannot know on
//! resuming whether its session — and so its partition ownership — survived. The Java consumer
//! keeps delivering; we do not. [`Liveness`] remembers when the server last confirmed the session
//! (the *send* time of the last successful round trip, so the estimate is conservative) and
//! allows delivery only within a fraction of the session timeout after it. A prober task
//! (owned by the coordinator) refreshes the confirmation periodically and on demand.
//!
//! The window follows the timeout the server *granted* ([`Liveness::set_session_timeout`], called
//! after every new session), not the one asked for: servers cap sessions at 20 x tickTime, so a
//! member asking for 90 s may hold a 40 s session and must stop delivering well before 60 s.
//!
//! Time is the monotonic clock, which keeps running while the process is stopped. This module
//! does no I/O itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Shared session-liveness state.
#[derive(Debug)]
pub struct Liveness {
    base: Instant,
    /// Nanoseconds after `base` at which the last confirmed round trip was *sent*.
    confirmed_at: AtomicU64,
    /// Nanoseconds of delivery allowed after a confirmation (two thirds of the session timeout).
    window: AtomicU64,
    expired: AtomicBool,
    confirmed: Notify,
    probe_wanted: Notify,
}

impl Liveness {
    /// Creates the gate for a session of `session_timeout`, confirmed alive now. Delivery is
    /// allowed for two thirds of the timeout after each confirmation: the server cannot have
    /// expired the session before a full timeout has passed since it last heard from us.
    pub fn new(session_timeout: Duration) -> Self {
        Liveness {
            base: Instant::now(),
            confirmed_at: AtomicU64::new(0),
            window: AtomicU64::new(Self::window_nanos(session_timeout)),
            expired: AtomicBool::new(false),
            confirmed: Notify::new(),
            probe_wanted: Notify::new(),
        }
    }

    fn window_nanos(session_timeout: Duration) -> u64 {
        u64::try_from((session_timeout * 2 / 3).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Adopts the session timeout the server granted (after connecting and after each renewal).
    pub fn set_session_timeout(&self, session_timeout: Duration) {
        self.window
            .store(Self::window_nanos(session_timeout), Ordering::Release);
    }

    /// How long delivery stays allowed after a confirmation.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window.load(Ordering::Acquire))
    }

    /// How often the prober should confirm the session so that a healthy member never waits.
    pub fn probe_interval(&self) -> Duration {
        self.window() / 3
    }

    fn nanos_since_base(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records a successful round trip that was sent at `sent_at`, and wakes waiting streams.
    pub fn confirm(&self, sent_at: Instant) {
        self.expired.store(false, Ordering::Release);
        self.confirmed_at
            .fetch_max(self.nanos_since_base(sent_at), Ordering::AcqRel);
        self.confirmed.notify_waiters();
    }

    /// Marks the session as expired: nothing may be delivered until a new session is confirmed.
    pub fn mark_expired(&self) {
        self.expired.store(true, Ordering::Release);
    }

    /// Whether a message may be delivered right now.
    pub fn may_deliver(&self) -> bool {
        if self.expired.load(Ordering::Acquire) {
            return false;
        }
        let confirmed = Duration::from_nanos(self.confirmed_at.load(Ordering::Acquire));
        let now = Instant::now().saturating_duration_since(self.base);
        now.saturating_sub(confirmed) < self.window()
    }

    /// Waits until delivery is allowed, asking the prober for a confirmation.
    pub async fn wait_deliverable(&self) {
        loop {
            let notified = self.confirmed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.may_deliver() {
                return;
            }
            self.probe_wanted.notify_one();
            notified.await;
        }
    }

    /// Waits until someone asks for a confirmation (used by the prober between its periodic
    /// rounds).
    pub async fn probe_requested(&self) {
        self.probe_wanted.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_gate_delivers_and_expiry_closes_it() {
        let l = Liveness::new(Duration::from_secs(6));
        assert!(l.may_deliver());
        l.mark_expired();
        assert!(!l.may_deliver());
        l.confirm(Instant::now());
        assert!(l.may_deliver());
    }

    #[test]
    fn stale_confirmation_closes_gate() {
        let l = Liveness::new(Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!l.may_deliver());
        l.confirm(Instant::now());
        assert!(l.may_deliver());
    }

    #[test]
    fn granted_timeout_shortens_the_window() {
        let l = Liveness::new(Duration::from_secs(90));
        assert_eq!(l.window(), Duration::from_secs(60));
        l.set_session_timeout(Duration::from_millis(60));
        assert_eq!(l.window(), Duration::from_millis(40));
        assert_eq!(l.probe_interval(), Duration::from_nanos(13_333_333));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!l.may_deliver());
    }

    #[tokio::test]
    async fn waiter_wakes_on_confirmation() {
        let l = std::sync::Arc::new(Liveness::new(Duration::from_millis(30)));
        tokio::time::sleep(Duration::from_millis(40)).await;
        let l2 = l.clone();
        let prober = tokio::spawn(async move {
            l2.probe_requested().await;
            l2.confirm(Instant::now());
        });
        tokio::time::timeout(Duration::from_secs(5), l.wait_deliverable())
            .await
            .expect("waiter was not woken");
        prober.await.expect("prober task");
    }
}
