//! A `kafka` crate client on a thread of its own, so that a call can be given up: after
//! `socket.timeout.ms` (the crate's own socket timeout is fixed at 120 s and cannot be set) or
//! at once when the fetch layer is told to stop. A given-up call's thread is abandoned: it
//! finishes its blocked socket call on its own, drops the answer and exits; the next call
//! starts a fresh client (fresh connections).
//!
//! [`call_detached`] does the same for one-off async callers (offset storage, tools): the call
//! runs on a detached thread, so neither a timeout nor process exit waits for a stuck socket.
//!
//! This module owns only the client and its thread; it never retries and keeps no partition
//! state.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use kafka::client::KafkaClient;

use super::{new_client, FetchConfig, Stop};

type Job = Box<dyn FnOnce(&mut KafkaClient) + Send>;

/// How often a waiting call looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(25);

/// Why a call has no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No answer within the timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// The fetch layer is stopping.
    #[error("stopping")]
    Stopped,
    /// The client thread could not be started or died.
    #[error("the Kafka client thread is gone")]
    Gone,
    /// The broker answered with an error, or the request failed in the client.
    #[error(transparent)]
    Kafka(#[from] kafka::Error),
}

/// A [`KafkaClient`] whose every call is bounded by `socket.timeout.ms` and by stop.
pub(super) struct TimedClient {
    config: FetchConfig,
    brokers: Vec<String>,
    name: String,
    jobs: Option<std_mpsc::Sender<Job>>,
}

impl TimedClient {
    /// A client for `brokers`; its thread (named after `name`) starts with the first call.
    pub(super) fn new(config: &FetchConfig, brokers: &[String], name: &str) -> Self {
        TimedClient {
            config: config.clone(),
            brokers: brokers.to_vec(),
            name: name.to_string(),
            jobs: None,
        }
    }

    /// Runs `f` on the client and waits for its answer, at most `socket.timeout.ms`, and not
    /// past `stop`. Without an answer the client is abandoned (see the module docs); an error
    /// answer leaves it to the caller.
    pub(super) fn call<R, F>(&mut self, stop: &Stop, f: F) -> Result<R, CallError>
    where
        R: Send + 'static,
        F: FnOnce(&mut KafkaClient) -> kafka::Result<R> + Send + 'static,
    {
        let (answer_tx, answer) = std_mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let _ = answer_tx.send(f(client));
        });
        let sent = self.jobs().and_then(|jobs| jobs.send(job).ok());
        if sent.is_none() {
            self.abandon();
            return Err(CallError::Gone);
        }
        let timeout = self.config.socket_timeout;
        let started = Instant::now();
        loop {
            if stop.is_set() {
                self.abandon();
                return Err(CallError::Stopped);
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                self.abandon();
                return Err(CallError::TimedOut(timeout));
            }
            match answer.recv_timeout(left.min(STOP_CHECK)) {
                Ok(value) => return value.map_err(CallError::Kafka),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    self.abandon();
                    return Err(CallError::Gone);
                }
            }
        }
    }

    /// Drops the current client and its connections; the next call starts afresh.
    pub(super) fn abandon(&mut self) {
        self.jobs = None;
    }

    fn jobs(&mut self) -> Option<&std_mpsc::Sender<Job>> {
        if self.jobs.is_none() {
            let (jobs, receiver) = std_mpsc::channel::<Job>();
            let mut client = new_client(&self.config, &self.brokers);
            std::thread::Builder::new()
                .name(format!("zkc-io-{}", self.name))
                .spawn(move || {
                    while let Ok(job) = receiver.recv() {
                        job(&mut client);
                    }
                })
                .map_err(|e| tracing::error!(error = %e, "cannot start a Kafka client thread"))
                .ok()?;
            self.jobs = Some(jobs);
        }
        self.jobs.as_ref()
    }
}

/// Runs one blocking `kafka` crate job on a detached thread and waits at most `timeout` for
/// it. On a timeout the thread is left to finish its socket call on its own.
pub(crate) async fn call_detached<T, F>(timeout: Duration, f: F) -> Result<T, CallError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (answer_tx, answer) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("zkc-kafka-call".into())
        .spawn(move || {
            let _ = answer_tx.send(f());
        })
        .map_err(|_| CallError::Gone)?;
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(CallError::Gone),
        Err(_) => Err(CallError::TimedOut(timeout)),
    }
}
