//! Database options and durability modes.

use chronokv_compaction::Strategy;
use chronokv_vfs::{RealFs, Vfs};
use std::sync::Arc;
use std::time::Duration;

pub use chronokv_compaction::{Leveled, Tiered};
pub use chronokv_runs::Compression;

/// How background compaction shapes the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactionStyle {
    /// Leveled compaction with dynamic level sizing (the default): low space and read
    /// amplification.
    Leveled(Leveled),
    /// Size-tiered compaction: lower write amplification for ingest-heavy use, more space.
    Tiered(Tiered),
}

impl Default for CompactionStyle {
    fn default() -> Self {
        CompactionStyle::Leveled(Leveled::default())
    }
}

impl CompactionStyle {
    pub(crate) fn strategy(&self) -> &dyn Strategy {
        match self {
            CompactionStyle::Leveled(l) => l,
            CompactionStyle::Tiered(t) => t,
        }
    }
}
pub use chronokv_wal::RecoveryMode;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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
    /// A memtable becomes immutable and is flushed once it holds this many bytes of heap
    /// memory: its arena of keys and values plus its skiplist nodes, not only the payload
    /// (default 64 MiB; about 206 bytes an entry for a 16-byte key and 100-byte value).
    pub memtable_size: usize,
    /// Writers wait while this many immutable memtables await flushing (default 1: with the
    /// active one, at most two memtables, as RocksDB's default `max_write_buffer_number`).
    pub max_immutable_memtables: usize,
    /// Bytes of decoded run blocks kept in memory, shared by all runs (default 64 MiB).
    pub block_cache_bytes: u64,
    /// Target uncompressed bytes of one run block (default 8 KiB: see docs/benchmarks.md,
    /// "Block size", for the measured trade of read speed against space).
    pub block_size: usize,
    /// Compression of newly flushed runs (default none: level-0 runs are read in place).
    pub compression: Compression,
    /// Bloom filter false-positive rate per run (default 1%).
    pub bloom_fp_rate: f64,
    /// How WAL damage found at open is handled (default: a torn tail is cut, damage in
    /// synced data is an error).
    pub recovery_mode: RecoveryMode,
    /// Compression of runs that compaction writes to level 2 and below (default none).
    /// Zstd there trades read CPU for space on the bulk of the data.
    pub deep_compression: Compression,
    /// The compaction strategy (default leveled).
    pub compaction: CompactionStyle,
    /// Background compaction threads (default 2). 0 turns automatic compaction off (and
    /// with it the write stalls below); [`crate::Db::compact_range`] still works.
    pub compaction_threads: usize,
    /// Writes are slowed down while level 0 holds this many runs (default 20).
    pub l0_slowdown_runs: usize,
    /// Writes wait while level 0 holds this many runs (default 36).
    pub l0_stop_runs: usize,
    /// Writes are slowed down while the compaction debt (bytes the strategy still wants to
    /// rewrite) is at least this (default 64 GiB).
    pub pending_compaction_slowdown_bytes: u64,
    /// Writes wait while the compaction debt is at least this (default 256 GiB).
    pub pending_compaction_stop_bytes: u64,
    /// While slowed down, writes proceed at about this many bytes per second
    /// (default 16 MiB/s).
    pub slowdown_write_rate: u64,
    /// A manifest is rewritten as a fresh snapshot once this many bytes were appended to it
    /// (default 8 MiB).
    pub max_manifest_bytes: u64,
    /// How far back time travel reaches, *if this open is to change it*. Retention is part
    /// of the store, recorded in its manifest (see [`crate::Retention`]), so `None` (the
    /// default) means "as the store records it" (a new store then records no window: only
    /// the current state and live snapshots can be read). `Some(d)` asks that every version
    /// committed in the last `d` stay readable: `Db::snapshot_as_of` and `Db::snapshot_at`
    /// work back to `d` ago, `Db::changes` can be read from there, and compaction keeps
    /// every version of that window (plus, per key, the newest older one).
    /// `Some(Duration::ZERO)` names "no window". A new store records what its first open
    /// names; a longer window than recorded is recorded (growing never loses data); a
    /// shorter one fails the open with `Error::InvalidArgument`: shrink the window with
    /// `Db::set_history_retention`, the one call that may drop history.
    pub history_retention: Option<Duration>,
    /// Every key's newest this many versions are kept whatever their age, and `Db::history`
    /// shows them. `None` (the default): as the store records it (a new store: 0, no
    /// per-key history beyond the window). Like `history_retention`, a larger number than
    /// recorded is recorded and a smaller one is refused. Unlike the window this does not
    /// make old *states* readable.
    pub history_versions_per_key: Option<usize>,
    /// Memory for detecting transaction conflicts: the keys written since the oldest open
    /// transaction began (default 64 MiB). Past it the oldest writes are forgotten, and a
    /// transaction that began before them fails to commit with `Error::Conflict` (retry
    /// it). Freed as transactions finish; unused while none is open.
    pub transaction_conflict_memory: usize,
    /// The file system (default: the real one). Tests use `chronokv_vfs::MemFs`.
    pub vfs: Arc<dyn Vfs>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            durability: Durability::Buffered,
            memtable_size: 64 << 20,
            max_immutable_memtables: 1,
            block_cache_bytes: 64 << 20,
            block_size: 8 << 10,
            compression: Compression::None,
            bloom_fp_rate: 0.01,
            recovery_mode: RecoveryMode::default(),
            deep_compression: Compression::None,
            compaction: CompactionStyle::default(),
            compaction_threads: 2,
            l0_slowdown_runs: 20,
            l0_stop_runs: 36,
            pending_compaction_slowdown_bytes: 64 << 30,
            pending_compaction_stop_bytes: 256 << 30,
            slowdown_write_rate: 16 << 20,
            max_manifest_bytes: 8 << 20,
            history_retention: None,
            history_versions_per_key: None,
            transaction_conflict_memory: 64 << 20,
            vfs: Arc::new(RealFs),
        }
    }
}

impl Options {
    /// Rejects settings the engine cannot work with.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |why: &str| Err(crate::Error::InvalidArgument(format!("options: {why}")));
        if self.memtable_size == 0 || self.block_size == 0 {
            return bad("memtable_size and block_size must be positive");
        }
        if !(self.bloom_fp_rate > 0.0 && self.bloom_fp_rate < 1.0) {
            return bad("bloom_fp_rate must be in (0, 1)");
        }
        if self.l0_stop_runs == 0 || self.slowdown_write_rate == 0 {
            return bad("l0_stop_runs and slowdown_write_rate must be positive");
        }
        if self.max_manifest_bytes == 0 {
            return bad("max_manifest_bytes must be positive");
        }
        Ok(())
    }
}
