//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chronokv::vfs::MemFs;
use chronokv::{CompactionStyle, Db, Leveled, Options, Tiered};
use std::path::Path;
use std::sync::Arc;

/// Options on an in-memory file system with a tiny memtable, so flushes happen often.
pub fn mem_options(fs: &MemFs, memtable_size: usize) -> Options {
    Options {
        vfs: Arc::new(fs.clone()),
        memtable_size,
        block_size: 512,
        ..Options::default()
    }
}

/// Leveled compaction that triggers constantly: level 0 at 2 runs, a 4 KiB base level,
/// size ratio 4, 2 KiB output runs, so small tests go through many levels.
pub fn aggressive_leveled() -> CompactionStyle {
    CompactionStyle::Leveled(Leveled {
        l0_trigger: 2,
        size_ratio: 4,
        base_level_bytes: 4 << 10,
        target_run_size: 2 << 10,
        max_levels: 5,
    })
}

/// Tiered compaction merging as few as 2 similar runs.
pub fn aggressive_tiered() -> CompactionStyle {
    CompactionStyle::Tiered(Tiered {
        min_merge: 2,
        max_merge: 4,
        size_ratio_percent: 200,
        target_run_size: u64::MAX,
    })
}

/// `mem_options` with a compaction style.
pub fn compacting_options(fs: &MemFs, memtable_size: usize, style: CompactionStyle) -> Options {
    Options {
        compaction: style,
        ..mem_options(fs, memtable_size)
    }
}

pub fn open_mem(fs: &MemFs, memtable_size: usize) -> Db {
    Db::open(Path::new("/db"), mem_options(fs, memtable_size)).expect("open")
}

/// Every live pair, front to back.
pub fn all(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("scan"))
        .collect()
}

/// The names of the files in the database directory of an in-memory store.
pub fn files(fs: &MemFs) -> Vec<String> {
    use chronokv::vfs::Vfs;
    let mut v = fs.list(Path::new("/db")).unwrap_or_default();
    v.sort();
    v
}

/// A small seeded generator (splitmix64) for tests that need reproducible randomness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
