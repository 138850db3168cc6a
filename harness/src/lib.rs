//! chronokv's reliability harness (see `../shared/RELIABILITY.md` for the oracle and goals).
//!
//! Built so far:
//! - [`crash`] (G1): simulated power loss at every mutating file-system call of a seeded
//!   workload, in three modes, each crash state reopened and checked against the oracle;
//! - [`faults`] (G2): EIO and ENOSPC injected at every N-th mutating call of the same
//!   workload, once or forever, checking fail-stop and recovery;
//! - [`model`] (G4): one seeded op log on a dozen engine configurations, every read checked
//!   against a versioned `BTreeMap` oracle and the configurations against each other;
//! - [`fuzz_targets`] (G5): the bodies of the cargo-fuzz targets in `fuzz/`, shared with
//!   the stable corpus replay test.
//!
//! [`workload`] holds what both share. The `chronokv-harness` binary runs the stages and
//! prints their figures.

pub mod crash;
pub mod faults;
pub mod fuzz_targets;
pub mod model;
mod rng;
pub mod workload;

pub use rng::Rng;
