//! Test harness for zkconsumer (see README).
