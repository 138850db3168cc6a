//! chronokv's reliability harness (see `../shared/RELIABILITY.md` for the oracle and goals).
//!
//! Built so far: [`crash`], simulated power loss at every mutating file-system call of a
//! seeded workload, in three modes, each crash state reopened and checked against the
//! oracle. [`workload`] holds the script, configuration and oracle. The `chronokv-harness`
//! binary runs it and prints its figures.

pub mod crash;
mod rng;
pub mod workload;

pub use rng::Rng;
