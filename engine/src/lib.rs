//! The chronokv engine: [`Db`], its options, write batches, transactions and errors.
//!
//! Modules, bottom-up (each imports only those before it; `docs/design.md` has the table,
//! the owner of every piece of shared state and the lock order): values (`error`,
//! `options`, `batch`, `files`), in-memory structures (`memtable`, `view`, `read`, `apply`),
//! on-disk state (`manifest`, `retention`), the owners of shared state (`writer`, `tree`,
//! `background`, `stall`, `txns`, `health`, with `lock_order` and `invariants`), the shared
//! state itself (`inner`), operations (`commit`, `compactor`, `history`, `feed`,
//! `checkpoint`, `verify`, `recovery`, `read_only`) and the API (`txn`, `restore`, `export`, `backup`,
//! `db`).
//! All file I/O goes through the `Vfs` in [`Options::vfs`].

#![warn(missing_docs)]

mod apply;
mod background;
pub mod backup;
mod batch;
mod checkpoint;
mod commit;
mod compactor;
mod db;
mod error;
mod export;
mod feed;
mod files;
mod health;
mod history;
mod inner;
mod inspect;
mod invariants;
mod lock_order;
mod manifest;
mod memtable;
mod options;
mod queue;
mod read;
mod read_only;
mod recovery;
mod restore;
mod retention;
mod stall;
mod stats;
mod timefmt;
mod tree;
mod txn;
mod txns;
mod verify;
mod view;
mod writer;

pub use arrow_array::RecordBatch;
pub use batch::WriteBatch;
pub use bytes::Bytes;
pub use checkpoint::CheckpointInfo;
pub use chronokv_snapshot::Version;
pub use db::Db;
pub use error::{Error, Result};
pub use export::{
    change_batches, changes_batch, export_schema, export_schema_with, history_batch, ArrowBatches,
    ChangeBatches,
};
pub use feed::{ChangeFeed, FeedOptions, FeedPeak, Received, Subscription};
pub use history::{At, Change, HistoryEntry, HistoryScan, Snapshot};
pub use inspect::RunInfo;
pub use options::{
    CompactionStyle, Compression, Durability, Leveled, Options, RecoveryMode, Tiered,
};
pub use read::Iter;
pub use restore::{RestoreOptions, RestoreReport};
pub use retention::{format_duration, Retention};
pub use stats::{LevelStats, SpaceUsage, Stats};
pub use txn::{Isolation, Transaction, TransactionIter, TransactionOptions};
pub use verify::{
    verify_dir, verify_dir_with_progress, Problem, ProblemKind, Progress, VerifyReport,
};

/// Internals exposed for the benchmarks (`chronokv-bench`) only: not part of the API, no
/// stability promise.
#[doc(hidden)]
pub mod internals {
    pub use crate::memtable::Memtable;
    // For `chronokv dump-manifest`.
    pub use crate::files::{classify, manifest_name, run_path, wal_path, FileKind, CURRENT};
    pub use crate::manifest::{
        current as current_manifest, dump as dump_manifest, ManifestDump, ManifestFrame, RunDesc,
        TreeState, VersionEdit,
    };
    // The manifest and backup metadata decoders, for the fuzz targets (`chronokv-harness`).
    pub use crate::backup::format::{BackupMeta, BackupRun};
    pub use crate::manifest::read as read_manifest;
    /// True when this build checks the engine's invariants (feature `invariants`), so a
    /// test can prove its run has them.
    pub fn invariants_checked() -> bool {
        cfg!(feature = "invariants")
    }
}
