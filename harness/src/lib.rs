//! chronokv's reliability harness (see `../shared/RELIABILITY.md` for the oracle and goals).
//!
//! Built so far:
//! - [`crash`] (G1): simulated power loss at every mutating file-system call of a seeded
//!   workload, in three modes, each crash state reopened and checked against the oracle;
//! - [`faults`] (G2): EIO and ENOSPC injected at every N-th mutating call of the same
//!   workload, once or forever, checking fail-stop and recovery;
//! - [`bank`] (G7): optimistic transactions moving money on 4 threads, with simulated
//!   power losses between which the recovered store carries on;
//! - [`killloop`] (G3): the real kill -9 loop: a stress process (four writers, a
//!   checkpointer, the engine's flusher and compactors on a real directory) killed with
//!   SIGKILL after 20-500 ms, again and again on the same database, each recovery checked
//!   against the writers' acknowledgement logs, each kill filed by the work it interrupted;
//! - [`model`] (G4): one seeded op log on a dozen engine configurations, every read checked
//!   against a versioned `BTreeMap` oracle and the configurations against each other;
//! - [`fuzz_targets`] (G5): the bodies of the cargo-fuzz targets in `fuzz/`, shared with
//!   the stable corpus replay test.
//!
//! [`workload`] holds what G1 and G2 share. The `chronokv-harness` binary runs the stages
//! and prints their figures (and is, with its `stress` subcommand, G3's stress process).

pub mod bank;
pub mod crash;
pub mod faults;
pub mod fuzz_targets;
pub mod killloop;
pub mod model;
mod rng;
pub mod workload;

pub use rng::Rng;
