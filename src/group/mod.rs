//! Group membership: identities, topic filters, partition assignment (pure) and the rebalance
//! state machine (I/O).

pub mod assign;
pub mod brokers;
pub mod filter;
pub mod identity;
pub(crate) mod ownership;
pub mod rebalance;
pub mod registrations;
