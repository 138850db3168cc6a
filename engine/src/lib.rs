//! The chronokv engine: [`Db`], its options, write batches and errors.
//!
//! Layers, top to bottom: `db` (public API) -> `commit` (group commit) and `recovery`
//! (open) -> `inner` (shared state; sealing and flushing memtables) -> `view` (what a read
//! consults) -> `memtable`, `manifest`, and the `chronokv-wal` / `chronokv-runs` crates.
//! All file I/O goes through the `Vfs` in [`Options::vfs`].

mod batch;
mod commit;
mod db;
mod error;
mod files;
mod inner;
mod manifest;
mod memtable;
mod options;
mod recovery;
mod view;

pub use batch::WriteBatch;
pub use bytes::Bytes;
pub use chronokv_snapshot::Version;
pub use db::{Db, Iter};
pub use error::{Error, Result};
pub use options::{Compression, Durability, Options, RecoveryMode};
