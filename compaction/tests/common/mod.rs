//! Helpers shared by the integration tests: building runs and trees tersely.
#![allow(dead_code)]

use chronokv_compaction::{Levels, RunInfo};
use chronokv_snapshot::Version;

/// A run with keys `lo..=hi` (single bytes) and `size` bytes.
pub fn run(id: u64, lo: u8, hi: u8, size: u64) -> RunInfo {
    RunInfo {
        id,
        size,
        min_key: vec![lo],
        max_key: vec![hi],
        min_version: Version(id),
        max_version: Version(id),
        entries: size,
        tombstones: 0,
    }
}

/// A tree from its levels.
pub fn tree(levels: Vec<Vec<RunInfo>>) -> Levels {
    Levels { levels }
}

/// `count` level-0 runs over the whole key space, ids from `first`.
pub fn l0(first: u64, count: u64) -> Vec<RunInfo> {
    (first..first + count)
        .map(|id| run(id, 0, 255, 10))
        .collect()
}
