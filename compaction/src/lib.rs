//! chronokv-compaction: what to compact (policy) and how (executor).
//!
//! **Policy, pure.** Everything outside [`exec`] is a pure function of a description of the
//! tree ([`Levels`]): a [`Strategy`] looks at the levels and returns a [`Task`] (or nothing),
//! and [`apply`] returns the tree as it looks after a task ran. [`gc`] decides which versions
//! a merge keeps ([`GcFilter`] over [`GcRules`]). None of these do I/O or take locks.
//!
//! Two strategies are provided:
//!
//! * [`Leveled`]: RocksDB-style leveled compaction with dynamic level sizing.
//! * [`Tiered`]: size-tiered (universal-style) compaction of runs of similar size.
//!
//! [`sim`] runs a strategy against a modelled write workload, without I/O, and reports write
//! and space amplification; the `compaction-sim` binary is its command line.
//!
//! **Executor, I/O.** [`exec`] turns a merge into new run files: a [`MergeJob`] merges input
//! runs, filters them through [`GcFilter`] and writes the outputs through the run format and
//! the [`chronokv_vfs::Vfs`]. It does not depend on the engine or the WAL; the engine picks a
//! task, builds the job, and installs the outputs itself (manifest edit, then [`apply`]).
//!
//! The rules, the simulator's model and the executor are written up in `docs/compaction.md`.
//!
//! Thread-safety: all policy types are plain data; strategies are `Send + Sync` and
//! stateless, so one instance can be asked from any thread. A [`MergeJob`] is `Send + Sync`.

#![warn(missing_docs)]

mod apply;
pub mod exec;
pub mod gc;
mod leveled;
pub mod sim;
mod tiered;
mod types;

#[cfg(test)]
mod tests_exec;

pub use apply::apply;
pub use exec::{ExecError, MergeJob, MergeOutcome, MergeOutput, OutputFile};
pub use gc::{GcFilter, GcRules, GcStats};
pub use leveled::Leveled;
pub use tiered::Tiered;
pub use types::{manual_inputs, Grandparent, KeyRange, Levels, RunInfo, Strategy, Task, TaskKind};
