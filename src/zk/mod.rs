//! Everything ZooKeeper: the data layout (pure) and the session wrapper (I/O).

pub mod layout;
