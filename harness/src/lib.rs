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
//! - [`recovery`]: G1 and G2 applied to recovery itself: a crash at every mutating call of
//!   `Db::open` (and close) on a state that needs repair, and EIO or ENOSPC at every one;
//! - [`rot`]: one byte of a synced WAL segment or run changed, each image reopened and
//!   scanned: the damage must be reported as corruption, never read as data (added when two
//!   bugs planted for G6 got past every other stage);
//! - [`bugs`] (G6, testing the tester): bugs planted in the engine behind the
//!   build-time cfg `chronokv_bugs` (`CHRONOKV_PLANT_BUGS=1`), each run against the short stage that must catch it, with a
//!   control run of every stage without a bug;
//! - [`fuzz_targets`] (G5): the bodies of the cargo-fuzz targets in `fuzz/`, shared with
//!   the stable corpus replay test.
//!
//! [`workload`] holds the script, configuration and oracle that `crash`, `faults` and `rot`
//! share. The `chronokv-harness` binary runs the stages and prints their figures; planted
//! bugs exist only in a build with `CHRONOKV_PLANT_BUGS=1` (`CHRONOKV_BUG=name` selects
//! one per process).

pub mod bank;
pub mod bugs;
pub mod crash;
pub mod faults;
pub mod fuzz_targets;
pub mod killloop;
pub mod model;
pub mod parallel;
pub mod recovery;
mod rng;
pub mod rot;
pub mod workload;

pub use rng::Rng;
