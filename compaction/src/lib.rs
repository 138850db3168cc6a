//! chronokv-compaction: the *policy* half of compaction.
//!
//! Everything here is a pure function of a description of the tree ([`Levels`]): a
//! [`Strategy`] looks at the levels and returns a [`Task`] (or nothing), and [`apply`] returns
//! the tree as it looks after a task ran. No I/O, no locks, no dependency on the engine, the
//! WAL or the run format; the engine (a later step) turns a [`Task`] into a merge of real run
//! files and calls [`apply`] on its own description of the tree.
//!
//! Two strategies are provided:
//!
//! * [`Leveled`]: RocksDB-style leveled compaction with dynamic level sizing.
//! * [`Tiered`]: size-tiered (universal-style) compaction of runs of similar size.
//!
//! [`sim`] runs a strategy against a modelled write workload, without I/O, and reports write
//! and space amplification; the `compaction-sim` binary is its command line. The rules and
//! the simulator's model are written up in `docs/compaction.md`.
//!
//! Thread-safety: all types are plain data; strategies are `Send + Sync` and stateless, so one
//! instance can be asked from any thread.

mod apply;
pub mod gc;
mod leveled;
pub mod sim;
mod tiered;
mod types;

pub use apply::apply;
pub use gc::{GcFilter, GcRules, GcStats};
pub use leveled::Leveled;
pub use tiered::Tiered;
pub use types::{KeyRange, Levels, RunInfo, Strategy, Task, TaskKind};
