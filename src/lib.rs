//! chronokv: an embeddable, LSM-based, key-versioned storage engine.
//!
//! ```
//! use chronokv::{Db, Options, WriteBatch};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Options::default())?;
//! let v1 = db.put("greeting", "hello")?;
//! let mut batch = WriteBatch::new();
//! batch.put("a", "1").put("b", "2").delete("greeting");
//! let v2 = db.write(batch)?; // atomic: all three or none
//! assert!(v2 > v1);
//! assert_eq!(db.get("a")?.as_deref(), Some(&b"1"[..]));
//! assert_eq!(db.get("greeting")?, None);
//! let keys: Vec<_> = db.scan("a".."z").map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec!["a", "b"]);
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `README.md` for the design and `docs/format/` for every on-disk layout.

#![warn(missing_docs)]

pub use chronokv_engine::{
    change_batches, export_schema_with, At, ChangeBatches, ChangeFeed, FeedOptions, FeedPeak,
    HistoryScan, Received, RestoreOptions, RestoreReport, Subscription,
};
pub use chronokv_engine::{
    changes_batch, export_schema, format_duration, history_batch, ArrowBatches, Bytes, Change,
    CompactionStyle, Compression, Db, Durability, Error, HistoryEntry, Isolation, Iter, LevelStats,
    Leveled, Options, RecordBatch, RecoveryMode, Result, Retention, Snapshot, SpaceUsage, Stats,
    Tiered, Transaction, TransactionIter, TransactionOptions, Version, WriteBatch,
};
pub use chronokv_engine::{
    verify_dir, verify_dir_with_progress, CheckpointInfo, Problem, ProblemKind, Progress, RunInfo,
    VerifyReport,
};

/// Incremental backups: [`backup::BackupEngine`] keeps numbered backups of a database in a
/// backup directory, copying only the run files earlier backups do not hold; it lists,
/// verifies, restores and deletes them. Metadata layout: `docs/format/backup.md`.
pub mod backup {
    pub use chronokv_engine::backup::{BackupEngine, BackupInfo, DeleteInfo};
}

/// The file-system seam: implement [`vfs::Vfs`] to run chronokv on other storage, or use
/// [`vfs::MemFs`] in tests (it can simulate a power loss with `crash_clone`).
pub mod vfs {
    pub use chronokv_vfs::{
        CrashMode, DirLock, FaultFs, FaultKind, FaultMode, MappedFile, MemFs, MutatingOp, RealFs,
        Vfs, WritableFile,
    };
}
