//! The fetch layer: leader lookup and one fetcher per leader broker on the `kafka` crate.
