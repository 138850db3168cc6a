//! One adapter per engine, each in its own file. The peers compile only with the
//! `peers` feature.

pub mod chronokv;
#[cfg(feature = "peers")]
pub mod fjall;
#[cfg(feature = "peers")]
pub mod rocksdb;
