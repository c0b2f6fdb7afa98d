//! Group membership: identities, topic filters and partition assignment.

pub mod assign;
pub mod filter;
pub mod identity;
