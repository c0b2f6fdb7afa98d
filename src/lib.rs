//! zkconsumer: ZooKeeper-coordinated consumer groups for 0.8-era Kafka clusters.
//!
//! Members of one group split the partitions of their topics exactly as Kafka's old Java
//! high-level consumer (`ZookeeperConsumerConnector`) does, so Rust and Java members can share
//! a group. See `README.md` for the architecture and a runnable example.
#![warn(missing_docs)]

pub mod config;
pub mod fetch;
pub mod group;
pub mod partition;
pub mod zk;
