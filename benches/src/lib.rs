//! chronokv's benchmark kit: db_bench- and YCSB-style workloads that run on chronokv and,
//! with the cargo feature `peers`, on RocksDB and fjall behind one small [`Engine`] trait,
//! plus the report writers (markdown, CSV, SVG) the `chronokv-bench` runner uses.
//!
//! Everything here is deterministic: keys, values and key choosers come from a seeded
//! splitmix64 ([`keys::Rng`]), never from the clock. Timing is measured, never asserted.

pub mod engine;
pub mod engines;
pub mod keys;
pub mod report;
pub mod sys;
pub mod workload;
pub mod zipf;

pub use engine::{BenchError, BenchResult, Durability, Engine, EngineConfig};
