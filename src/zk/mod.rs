//! Everything ZooKeeper: the data layout (pure), the session wrapper (I/O) and the liveness
//! gate that keeps a possibly-expired member from delivering.

pub mod layout;
pub mod liveness;
pub mod session;
