//! zkconsumer: ZooKeeper-coordinated consumer groups for 0.8-era Kafka clusters.
//!
//! Members of one group split the partitions of their topics exactly as Kafka's old Java
//! high-level consumer (`ZookeeperConsumerConnector`) does — same ZooKeeper nodes, same JSON,
//! same range/roundrobin assignment — so Rust and Java members can share a group.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use zkconsumer::{Consumer, ConsumerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! zkconsumer::shutdown::install_signal_handlers()?;   // one SIGINT/SIGTERM stops every stream
//! let config = ConsumerConfig::builder("127.0.0.1:2181/kafka", "orders-audit")
//!     .set("auto.offset.reset", "smallest")
//!     .build()?;
//! let consumer = Consumer::connect(config).await?;
//! let mut streams = consumer
//!     .create_message_streams(BTreeMap::from([("orders".to_string(), 2)]))
//!     .await?;
//! let mut tasks = Vec::new();
//! for mut stream in streams.remove("orders").unwrap_or_default() {
//!     tasks.push(tokio::spawn(async move {
//!         while let Some(Ok(message)) = stream.next().await {
//!             // Taking the next message marks this one processed (committable).
//!             println!("{}/{}@{}", message.topic, message.partition, message.offset);
//!         }
//!     }));
//! }
//! for task in tasks {
//!     task.await?;
//! }
//! consumer.shutdown().await?;   // commits what was processed, releases ownership
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod admin;
pub mod config;
pub mod consumer;
pub mod fetch;
pub mod group;
pub mod metrics;
pub mod offsets;
pub mod partition;
pub mod shutdown;
pub mod stream;
pub mod zk;

pub use config::ConsumerConfig;
pub use consumer::{Committer, Consumer, ConsumerError, SeekTo};
pub use group::filter::TopicFilter;
pub use group::rebalance::RebalanceListener;
pub use partition::Message;
pub use stream::{Acker, ForeignMessage, MessageStream, StreamError};

/// The README's examples, compiled by `cargo test --doc` (scripts/test) so they stay correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
