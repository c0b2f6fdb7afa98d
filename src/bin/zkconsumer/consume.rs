//! `zkconsumer consume`: the console consumer as a coordinated group member.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::{Args, ValueEnum};
use zkconsumer::config::ConsumerConfig;
use zkconsumer::{Consumer, Message, MessageStream, StreamError, TopicFilter};

use crate::CliError;

/// Output format of consumed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The value only (with the key first when `print.key=true`).
    Value,
    /// One JSON object per line: topic, partition, offset, key, value.
    Json,
}

/// Arguments of `zkconsumer consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// ZooKeeper connect string, `host:port[,host:port…][/chroot]`.
    #[arg(long)]
    zookeeper: String,
    /// Consumer group (default: `console-consumer-<random>`).
    #[arg(long)]
    group: Option<String>,
    /// Topic to consume.
    #[arg(long, conflicts_with_all = ["whitelist", "blacklist"], required_unless_present_any = ["whitelist", "blacklist"])]
    topic: Option<String>,
    /// Consume every topic matching this regex (`,` separates alternatives).
    #[arg(long, conflicts_with = "blacklist")]
    whitelist: Option<String>,
    /// Consume every topic not matching this regex.
    #[arg(long)]
    blacklist: Option<String>,
    /// Number of streams (consumer threads) in this member.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
    /// Start from the earliest offset when the group has no committed offset
    /// (auto.offset.reset=smallest). Refused when the group already has offsets, unless
    /// --delete-consumer-offsets is given.
    #[arg(long)]
    from_beginning: bool,
    /// Delete the group's committed offsets before starting.
    #[arg(long)]
    delete_consumer_offsets: bool,
    /// Stop after this many messages (in total over all streams).
    #[arg(long)]
    max_messages: Option<u64>,
    /// Consumer properties file (Java `.properties`).
    #[arg(long = "consumer.config")]
    consumer_config: Option<PathBuf>,
    /// `key=value`: a consumer property overriding the file, or a formatter property
    /// (`print.key`, `key.separator`).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Value)]
    format: Format,
    /// Go on past a message set that cannot be decoded (logged to stderr, its offsets
    /// committed as processed) instead of exiting with status 1.
    #[arg(long)]
    skip_message_on_error: bool,
    /// Serve Prometheus metrics on `http://HOST:PORT/metrics`.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
}

/// How messages are printed.
#[derive(Debug, Clone)]
struct Formatter {
    format: Format,
    print_key: bool,
    key_separator: String,
}

impl Formatter {
    fn write(&self, out: &mut Vec<u8>, m: &Message) {
        match self.format {
            Format::Value => {
                if self.print_key {
                    out.extend_from_slice(m.key.as_deref().unwrap_or(b"null"));
                    out.extend_from_slice(self.key_separator.as_bytes());
                }
                out.extend_from_slice(&m.value);
            }
            Format::Json => {
                let line = serde_json::json!({
                    "topic": &*m.topic,
                    "partition": m.partition,
                    "offset": m.offset,
                    "key": m.key.as_deref().map(String::from_utf8_lossy),
                    "value": String::from_utf8_lossy(&m.value),
                });
                out.extend_from_slice(line.to_string().as_bytes());
            }
        }
        out.push(b'\n');
    }
}

fn split_property(raw: &str) -> Result<(String, String), CliError> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(CliError::Usage(format!(
            "--property expects key=value, got {raw:?}"
        ))),
    }
}

fn build_config(args: &ConsumeArgs, group: &str) -> Result<(ConsumerConfig, Formatter), CliError> {
    let mut props: Vec<(String, String)> = Vec::new();
    if let Some(path) = &args.consumer_config {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read --consumer.config {}: {e}",
                path.display()
            ))
        })?;
        props = zkconsumer::config::parse_properties(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    }
    let mut formatter = Formatter {
        format: args.format,
        print_key: false,
        key_separator: "\t".to_string(),
    };
    for raw in &args.properties {
        let (key, value) = split_property(raw)?;
        match key.as_str() {
            "print.key" => {
                formatter.print_key = value.trim().eq_ignore_ascii_case("true");
            }
            "key.separator" => formatter.key_separator = value,
            _ => props.push((key, value)),
        }
    }
    if args.from_beginning {
        props.push(("auto.offset.reset".into(), "smallest".into()));
    }
    let config = ConsumerConfig::builder(&args.zookeeper, group)
        .set_all(props)
        .set("zookeeper.connect", &args.zookeeper)
        .set("group.id", group)
        .build()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok((config, formatter))
}

/// Runs the console consumer until max messages, a signal, or an idle timeout.
pub async fn run(args: ConsumeArgs) -> Result<(), CliError> {
    zkconsumer::shutdown::install_signal_handlers()
        .map_err(|e| CliError::Runtime(format!("cannot install signal handlers: {e}")))?;
    let explicit_group = args.group.is_some();
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("console-consumer-{}", uuid_suffix()));
    let (config, formatter) = build_config(&args, &group)?;
    let consumer = Arc::new(
        Consumer::connect(config)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?,
    );
    let _metrics_server = match &args.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, consumer.clone()).await?),
        None => None,
    };

    if args.delete_consumer_offsets {
        consumer
            .delete_group_offsets()
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
    } else if args.from_beginning && explicit_group {
        let has_offsets = consumer
            .group_has_offsets()
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        if has_offsets {
            return Err(CliError::Usage(format!(
                "found previous offsets for group {group}: --from-beginning only applies to a \
                 group without offsets; add --delete-consumer-offsets to start over"
            )));
        }
    }

    let explicit_ack = !consumer.config().auto_ack;
    let streams = subscribe(&consumer, &args).await?;
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let printed = Arc::new(AtomicU64::new(0));
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let mut tasks = tokio::task::JoinSet::new();
    for stream in streams {
        tasks.spawn(drain_stream(
            stream,
            formatter.clone(),
            printed.clone(),
            limit,
            stdout.clone(),
            args.skip_message_on_error,
            explicit_ack,
        ));
    }
    let mut failure = None;
    // Whichever stream finishes first (limit, error, consumer.timeout.ms) ends them all.
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(CliError::Runtime(format!("stream task failed: {e}")));
            }
        }
        zkconsumer::shutdown::request();
    }
    let shutdown = consumer.shutdown().await;
    eprintln!(
        "Processed a total of {} messages",
        printed.load(Ordering::Relaxed)
    );
    if let Some(e) = failure {
        return Err(e);
    }
    shutdown.map_err(|e| CliError::Runtime(e.to_string()))
}

/// Binds the metrics endpoint; the returned task serves it until the process ends.
async fn serve_metrics(
    addr: &str,
    consumer: Arc<Consumer>,
) -> Result<tokio::task::JoinHandle<()>, CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on --metrics-addr {addr}: {e}")))?;
    let body: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(move || consumer.render_metrics());
    Ok(tokio::spawn(async move {
        if let Err(e) = zkconsumer::metrics::serve(listener, body).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    }))
}

fn uuid_suffix() -> u32 {
    (uuid::Uuid::new_v4().as_u128() % 100_000) as u32
}

async fn subscribe(
    consumer: &Consumer,
    args: &ConsumeArgs,
) -> Result<Vec<MessageStream>, CliError> {
    let filter = match (&args.topic, &args.whitelist, &args.blacklist) {
        (Some(topic), _, _) => {
            let mut streams = consumer
                .create_message_streams(BTreeMap::from([(topic.clone(), args.threads)]))
                .await
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            return Ok(streams.remove(topic).unwrap_or_default());
        }
        (None, Some(w), _) => TopicFilter::whitelist(w),
        (None, None, Some(b)) => TopicFilter::blacklist(b),
        (None, None, None) => {
            return Err(CliError::Usage(
                "one of --topic, --whitelist, --blacklist is required".into(),
            ))
        }
    }
    .map_err(|e| CliError::Usage(e.to_string()))?;
    consumer
        .create_message_streams_by_filter(filter, args.threads)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))
}

/// Prints one stream's messages a batch at a time. A batch is flushed to stdout before the next
/// one is taken, so what is committed has been written.
async fn drain_stream(
    mut stream: MessageStream,
    formatter: Formatter,
    printed: Arc<AtomicU64>,
    limit: u64,
    stdout: Arc<Mutex<std::io::Stdout>>,
    skip_message_on_error: bool,
    explicit_ack: bool,
) -> Result<(), CliError> {
    let acker = stream.acker();
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        if printed.load(Ordering::Relaxed) >= limit {
            zkconsumer::shutdown::request();
            return Ok(());
        }
        let batch = match stream.next_batch(4096).await {
            None => return Ok(()),
            Some(Ok(batch)) => batch,
            Some(Err(StreamError::Timeout(_))) => {
                tracing::info!("consumer.timeout.ms reached: stopping");
                return Ok(());
            }
            Some(Err(e)) if skip_message_on_error && e.is_skippable() => {
                eprintln!("skipping: {e}");
                continue;
            }
            Some(Err(e)) => return Err(CliError::Runtime(e.to_string())),
        };
        // Reserve our share of the message limit.
        let want = batch.len() as u64;
        let before = printed.fetch_add(want, Ordering::Relaxed);
        let take = want.min(limit.saturating_sub(before)) as usize;
        if take < batch.len() {
            printed.fetch_sub(want - take as u64, Ordering::Relaxed);
        }
        out.clear();
        for m in &batch[..take] {
            formatter.write(&mut out, m);
        }
        write_out(&stdout, &out)?;
        if explicit_ack {
            // auto.ack=false: taking the next batch acknowledges nothing; a printed message
            // is processed, so acknowledge each (its commit can move).
            for m in &batch[..take] {
                // From this stream's own batch: it cannot be foreign.
                if let Err(e) = acker.ack(m) {
                    tracing::error!(error = %e, "acknowledging a printed message");
                }
            }
        } else if before + take as u64 >= limit {
            // Limit reached: only what was printed counts as processed, and no next batch is
            // taken, so acknowledge explicitly.
            if let Some(last) = take.checked_sub(1).and_then(|i| batch.get(i)) {
                // `last` came from this stream's own batch: it cannot be foreign.
                if let Err(e) = acker.ack(last) {
                    tracing::error!(error = %e, "acknowledging the last printed message");
                }
            }
        }
        if before + take as u64 >= limit {
            // End every other stream too.
            zkconsumer::shutdown::request();
            return Ok(());
        }
    }
}

fn write_out(stdout: &Mutex<std::io::Stdout>, bytes: &[u8]) -> Result<(), CliError> {
    let stdout = match stdout.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let mut lock = stdout.lock();
    lock.write_all(bytes)
        .and_then(|_| lock.flush())
        .map_err(|e| CliError::Runtime(format!("cannot write to stdout: {e}")))
}
