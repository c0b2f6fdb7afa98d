//! Consumer metrics and their Prometheus text rendering.
//!
//! [`Metrics`] is a set of atomic counters updated on the hot path (streams count what they
//! hand out) and by the coordinator (rebalances, commits). [`render`] turns a snapshot into the
//! Prometheus text exposition format; [`serve`] answers `GET /metrics` on a TCP listener. The
//! endpoint has one route and no keep-alive, so a minimal HTTP/1.0 responder is used rather than
//! a web framework.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Counters of one consumer.
#[derive(Debug, Default)]
pub struct Metrics {
    messages: AtomicU64,
    bytes: AtomicU64,
    rebalances: AtomicU64,
    rebalance_attempts: AtomicU64,
    registrations_read: AtomicU64,
    last_rebalance_micros: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    commit_micros_total: AtomicU64,
    last_commit_micros: AtomicU64,
    ownership_waits: AtomicU64,
    rebalance_failures: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Metrics {
    /// Counts messages handed to the application.
    pub fn record_delivered(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records a completed rebalance and how long it took.
    pub fn record_rebalance(&self, took: Duration) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        self.last_rebalance_micros
            .store(micros(took), Ordering::Relaxed);
    }

    /// Counts a rebalance attempt: a read of the group, or a retry of a claim (completed,
    /// superseded by a newer change, or failed).
    pub fn record_rebalance_attempt(&self) {
        self.rebalance_attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets how many member registration nodes the coordinator read so far (this session
    /// and earlier ones).
    pub fn set_registrations_read(&self, total: u64) {
        self.registrations_read.store(total, Ordering::Relaxed);
    }

    /// Rebalance attempts so far (see [`Metrics::record_rebalance_attempt`]).
    pub fn rebalance_attempts(&self) -> u64 {
        self.rebalance_attempts.load(Ordering::Relaxed)
    }

    /// Member registration nodes read so far: each once while it lives, however many
    /// rebalances there are.
    pub fn registrations_read(&self) -> u64 {
        self.registrations_read.load(Ordering::Relaxed)
    }

    /// Records an offset commit round (successful or not) and its latency.
    pub fn record_commit(&self, took: Duration, ok: bool) {
        if ok {
            self.commits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.commit_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.commit_micros_total
            .fetch_add(micros(took), Ordering::Relaxed);
        self.last_commit_micros
            .store(micros(took), Ordering::Relaxed);
    }

    /// Counts a rebalance attempt that met a partition whose previous owner (another
    /// session) had not released it yet, and now waits on a watch of its owner node.
    pub fn record_ownership_wait(&self) {
        self.ownership_waits.fetch_add(1, Ordering::Relaxed);
    }

    /// Rebalance attempts so far that waited for a partition another session still owned.
    pub fn ownership_waits(&self) -> u64 {
        self.ownership_waits.load(Ordering::Relaxed)
    }

    /// Successful offset commit rounds so far (a round with nothing changed counts too).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Counts a failed rebalance attempt (it is retried).
    pub fn record_rebalance_failure(&self) {
        self.rebalance_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Failed rebalance attempts so far (each is retried until one succeeds).
    pub fn rebalance_failures(&self) -> u64 {
        self.rebalance_failures.load(Ordering::Relaxed)
    }

    /// Messages handed to the application so far.
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }
}

/// Lag of one owned partition: log end offset minus processed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// Messages between the processed position and the log end (None: not known yet).
    pub lag: Option<i64>,
}

/// Renders the counters and per-partition lag in Prometheus text format.
pub fn render(group: &str, metrics: &Metrics, lags: &[PartitionLag]) -> String {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let group = escape_label(group);
    let mut out = String::new();
    let mut counter = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{group=\"{group}\"}} {value}");
    };
    counter(
        "zkconsumer_messages_consumed_total",
        "counter",
        "Messages handed to the application.",
        load(&metrics.messages).to_string(),
    );
    counter(
        "zkconsumer_bytes_consumed_total",
        "counter",
        "Value bytes handed to the application.",
        load(&metrics.bytes).to_string(),
    );
    counter(
        "zkconsumer_rebalances_total",
        "counter",
        "Completed rebalances.",
        load(&metrics.rebalances).to_string(),
    );
    counter(
        "zkconsumer_rebalance_attempts_total",
        "counter",
        "Rebalance attempts (completed, superseded by a newer change, or failed).",
        load(&metrics.rebalance_attempts).to_string(),
    );
    counter(
        "zkconsumer_registrations_read_total",
        "counter",
        "Member registration nodes read (each once while it lives).",
        load(&metrics.registrations_read).to_string(),
    );
    counter(
        "zkconsumer_last_rebalance_seconds",
        "gauge",
        "Duration of the last completed rebalance.",
        seconds(load(&metrics.last_rebalance_micros)),
    );
    counter(
        "zkconsumer_rebalance_failures_total",
        "counter",
        "Failed rebalance attempts (each is retried).",
        load(&metrics.rebalance_failures).to_string(),
    );
    counter(
        "zkconsumer_ownership_waits_total",
        "counter",
        "Rebalance attempts that waited for a partition another member had not released yet.",
        load(&metrics.ownership_waits).to_string(),
    );
    counter(
        "zkconsumer_commits_total",
        "counter",
        "Successful offset commit rounds.",
        load(&metrics.commits).to_string(),
    );
    counter(
        "zkconsumer_commit_failures_total",
        "counter",
        "Failed offset commit rounds.",
        load(&metrics.commit_failures).to_string(),
    );
    counter(
        "zkconsumer_commit_seconds_sum",
        "counter",
        "Total time spent in offset commit rounds.",
        seconds(load(&metrics.commit_micros_total)),
    );
    counter(
        "zkconsumer_last_commit_seconds",
        "gauge",
        "Latency of the last offset commit round.",
        seconds(load(&metrics.last_commit_micros)),
    );
    let _ = writeln!(
        out,
        "# HELP zkconsumer_partition_lag Log end offset minus processed offset, per owned partition."
    );
    let _ = writeln!(out, "# TYPE zkconsumer_partition_lag gauge");
    for lag in lags {
        if let Some(value) = lag.lag {
            let _ = writeln!(
                out,
                "zkconsumer_partition_lag{{group=\"{group}\",topic=\"{}\",partition=\"{}\"}} {value}",
                escape_label(&lag.topic),
                lag.partition
            );
        }
    }
    out
}

fn seconds(micros: u64) -> String {
    format!("{:.6}", micros as f64 / 1e6)
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` (any other path: 404) until the task is dropped. `body` renders the
/// current text on each request.
pub async fn serve(
    listener: TcpListener,
    body: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<()> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut request))
                .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let head = String::from_utf8_lossy(&request[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let response = if path == "/metrics" || path.starts_with("/metrics?") {
                let text = body();
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                )
            } else {
                "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
            };
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_lag() {
        let m = Metrics::default();
        m.record_delivered(3, 300);
        m.record_rebalance(Duration::from_millis(1500));
        m.record_commit(Duration::from_millis(2), true);
        m.record_commit(Duration::from_millis(4), false);
        let text = render(
            "g",
            &m,
            &[
                PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    lag: Some(7),
                },
                PartitionLag {
                    topic: "t".into(),
                    partition: 1,
                    lag: None,
                },
            ],
        );
        assert!(text.contains("zkconsumer_messages_consumed_total{group=\"g\"} 3\n"));
        assert!(text.contains("zkconsumer_bytes_consumed_total{group=\"g\"} 300\n"));
        assert!(text.contains("zkconsumer_rebalances_total{group=\"g\"} 1\n"));
        assert!(text.contains("zkconsumer_last_rebalance_seconds{group=\"g\"} 1.500000\n"));
        assert!(text.contains("zkconsumer_commits_total{group=\"g\"} 1\n"));
        assert!(text.contains("zkconsumer_commit_failures_total{group=\"g\"} 1\n"));
        assert!(text.contains("zkconsumer_commit_seconds_sum{group=\"g\"} 0.006000\n"));
        assert!(
            text.contains("zkconsumer_partition_lag{group=\"g\",topic=\"t\",partition=\"0\"} 7\n")
        );
        assert!(!text.contains("partition=\"1\""));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
