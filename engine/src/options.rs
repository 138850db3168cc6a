//! Database options and durability modes.

use chronokv_vfs::{RealFs, Vfs};
use std::sync::Arc;

pub use chronokv_runs::Compression;
pub use chronokv_wal::RecoveryMode;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The write is handed to the operating system before the acknowledgement: it survives
    /// a crash of the process, not a power loss or kernel crash.
    #[default]
    Buffered,
    /// The WAL is fsynced before the acknowledgement: the write survives a power loss.
    /// Concurrent writers share one fsync (group commit).
    Sync,
}

/// How to open and run a database. `Options::default()` suits a laptop.
#[derive(Debug, Clone)]
pub struct Options {
    /// Create the directory and an empty database if none exists (default true).
    pub create_if_missing: bool,
    /// The default durability of writes (default [`Durability::Buffered`]).
    pub durability: Durability,
    /// A memtable becomes immutable and is flushed once it holds this many bytes
    /// (default 64 MiB).
    pub memtable_size: usize,
    /// Writers wait while this many immutable memtables await flushing (default 2).
    pub max_immutable_memtables: usize,
    /// Bytes of decoded run blocks kept in memory, shared by all runs (default 64 MiB).
    pub block_cache_bytes: u64,
    /// Target uncompressed bytes of one run block (default 32 KiB).
    pub block_size: usize,
    /// Compression of newly flushed runs (default none: level-0 runs are read in place).
    pub compression: Compression,
    /// Bloom filter false-positive rate per run (default 1%).
    pub bloom_fp_rate: f64,
    /// How WAL damage found at open is handled (default: a torn tail is cut, damage in
    /// synced data is an error).
    pub recovery_mode: RecoveryMode,
    /// The file system (default: the real one). Tests use `chronokv_vfs::MemFs`.
    pub vfs: Arc<dyn Vfs>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            durability: Durability::Buffered,
            memtable_size: 64 << 20,
            max_immutable_memtables: 2,
            block_cache_bytes: 64 << 20,
            block_size: 32 << 10,
            compression: Compression::None,
            bloom_fp_rate: 0.01,
            recovery_mode: RecoveryMode::default(),
            vfs: Arc::new(RealFs),
        }
    }
}
