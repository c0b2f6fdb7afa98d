//! The Rust twin of Kafka's `ConsumerGroupExample` (the Java high-level consumer demo).
//!
//! ```text
//! cargo run --example consumer_group -- <zookeeper> <group> <topic> <streams> [seconds]
//! ```
//! Each stream prints `Thread N: <message>`; after `seconds` (default 10) — or at the first
//! SIGINT/SIGTERM — the consumer shuts down: offsets of what was printed are committed and
//! ownership is released.

use std::collections::BTreeMap;
use std::time::Duration;

use zkconsumer::{Consumer, ConsumerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [zookeeper, group, topic, streams, rest @ ..] = args.as_slice() else {
        eprintln!("usage: consumer_group <zookeeper> <group> <topic> <streams> [seconds]");
        std::process::exit(2);
    };
    let streams: u32 = streams.parse()?;
    let seconds: u64 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(10);

    // The same settings as the Java example's createConsumerConfig.
    let config = ConsumerConfig::builder(zookeeper, group)
        .set("zookeeper.session.timeout.ms", "6000")
        .set("zookeeper.sync.time.ms", "200")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "smallest")
        .build()?;
    zkconsumer::shutdown::install_signal_handlers()?;
    let consumer = Consumer::connect(config).await?;
    let mut by_topic = consumer
        .create_message_streams(BTreeMap::from([(topic.clone(), streams)]))
        .await?;

    let mut workers = Vec::new();
    for (n, mut stream) in by_topic
        .remove(topic)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        workers.push(tokio::spawn(async move {
            while let Some(next) = stream.next().await {
                match next {
                    Ok(m) => println!("Thread {n}: {}", String::from_utf8_lossy(&m.value)),
                    Err(e) => eprintln!("Thread {n}: {e}"),
                }
            }
            println!("Shutting down Thread: {n}");
        }));
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => zkconsumer::shutdown::request(),
        _ = wait_for_shutdown() => {}
    }
    for worker in workers {
        worker.await?;
    }
    consumer.shutdown().await?;
    Ok(())
}

async fn wait_for_shutdown() {
    let mut signal = zkconsumer::shutdown::subscribe();
    let _ = signal.wait_for(|requested| *requested).await;
}
