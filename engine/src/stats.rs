//! Statistics: counters the engine keeps as it works, and the snapshot of them that
//! [`crate::Db::stats`] returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Running counters, updated with relaxed atomics (they are statistics, not state).
#[derive(Debug, Default)]
pub struct Counters {
    pub user_bytes: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_bytes: AtomicU64,
    pub compactions: AtomicU64,
    pub trivial_moves: AtomicU64,
    pub compaction_read: AtomicU64,
    pub compaction_written: AtomicU64,
    pub versions_dropped: AtomicU64,
    pub tombstones_dropped: AtomicU64,
    pub slowdowns: AtomicU64,
    pub stops: AtomicU64,
    pub stall_micros: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One level of the tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelStats {
    /// Runs in the level.
    pub runs: usize,
    /// Bytes of those runs on disk.
    pub bytes: u64,
    /// Entries (all versions and tombstones).
    pub entries: u64,
    /// Tombstones among them.
    pub tombstones: u64,
}

/// A snapshot of the engine's statistics. Byte counts are since this `Db` was opened.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The compaction strategy ("leveled" or "tiered").
    pub strategy: &'static str,
    /// The levels, level 0 first.
    pub levels: Vec<LevelStats>,
    /// Key and value bytes of committed writes.
    pub user_bytes_written: u64,
    /// Bytes appended to the write-ahead log.
    pub wal_bytes_written: u64,
    /// Memtable flushes that wrote a run.
    pub flushes: u64,
    /// Bytes of runs written by flushes.
    pub flush_bytes_written: u64,
    /// Merge compactions finished.
    pub compactions: u64,
    /// Runs moved to another level without rewriting.
    pub trivial_moves: u64,
    /// Bytes of input runs read by compactions.
    pub compaction_bytes_read: u64,
    /// Bytes of runs written by compactions.
    pub compaction_bytes_written: u64,
    /// Versions compaction dropped because no reader can see them.
    pub versions_dropped: u64,
    /// Tombstones compaction dropped at the bottom of the tree.
    pub tombstones_dropped: u64,
    /// Bytes the strategy still wants to rewrite (compaction debt).
    pub pending_compaction_bytes: u64,
    /// Write groups delayed because level 0 or the debt passed a slowdown threshold.
    pub write_slowdowns: u64,
    /// Write groups that waited because level 0 or the debt passed a stop threshold.
    pub write_stops: u64,
    /// Total time writes spent delayed or waiting.
    pub stall_time: Duration,
    /// Bytes of the largest level of disjoint runs (levels 1+), or of the largest run of an
    /// overlapping level if that is larger: the denominator of
    /// [`Stats::estimated_space_amplification`].
    pub largest_sorted_bytes: u64,
    /// Read-write transactions open now.
    pub transactions_open: usize,
    /// Memory held for transaction conflict detection now (at most
    /// `Options::transaction_conflict_memory`).
    pub conflict_tracking_bytes: u64,
}

impl Stats {
    pub(crate) fn from_counters(c: &Counters) -> Stats {
        Stats {
            user_bytes_written: Counters::get(&c.user_bytes),
            wal_bytes_written: Counters::get(&c.wal_bytes),
            flushes: Counters::get(&c.flushes),
            flush_bytes_written: Counters::get(&c.flush_bytes),
            compactions: Counters::get(&c.compactions),
            trivial_moves: Counters::get(&c.trivial_moves),
            compaction_bytes_read: Counters::get(&c.compaction_read),
            compaction_bytes_written: Counters::get(&c.compaction_written),
            versions_dropped: Counters::get(&c.versions_dropped),
            tombstones_dropped: Counters::get(&c.tombstones_dropped),
            write_slowdowns: Counters::get(&c.slowdowns),
            write_stops: Counters::get(&c.stops),
            stall_time: Duration::from_micros(Counters::get(&c.stall_micros)),
            ..Stats::default()
        }
    }

    /// Bytes of all runs on disk.
    pub fn run_bytes(&self) -> u64 {
        self.levels.iter().map(|l| l.bytes).sum()
    }

    /// Runs in level 0.
    pub fn l0_runs(&self) -> usize {
        self.levels.first().map_or(0, |l| l.runs)
    }

    /// A cheap estimate of space amplification: run bytes / the bytes of the largest level
    /// of disjoint runs or the largest single run, on the assumption (usual for leveled
    /// trees) that it holds roughly the live data. [`crate::Db::space_usage`] measures
    /// it exactly with a scan.
    pub fn estimated_space_amplification(&self) -> f64 {
        ratio(self.run_bytes(), self.largest_sorted_bytes)
    }

    /// (flush + compaction bytes written) / user bytes written; 0 before any write. The
    /// WAL is not counted (it is `wal_bytes_written`).
    pub fn write_amplification(&self) -> f64 {
        ratio(
            self.flush_bytes_written + self.compaction_bytes_written,
            self.user_bytes_written,
        )
    }
}

/// What [`crate::Db::space_usage`] measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpaceUsage {
    /// Bytes of all runs on disk.
    pub run_bytes: u64,
    /// Bytes of WAL segments on disk.
    pub wal_bytes: u64,
    /// Key and value bytes of the live (latest, not deleted) pairs.
    pub live_bytes: u64,
    /// Number of live pairs.
    pub live_keys: u64,
}

impl SpaceUsage {
    /// Run bytes / live bytes: 1.0 would mean the runs hold nothing but live keys and
    /// values. Run files also hold a version, a kind and offsets per entry (about 17 bytes)
    /// and block framing, so even a fully compacted store is somewhat above 1.
    pub fn space_amplification(&self) -> f64 {
        ratio(self.run_bytes, self.live_bytes)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
