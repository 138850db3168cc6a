//! Read-only views of the tree for inspection tools: the runs with their properties
//! ([`RunInfo`]).

use crate::inner::Inner;
use chronokv_snapshot::Version;
use std::path::PathBuf;

/// One run of the tree, as [`crate::Db::runs`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInfo {
    /// The level the run is in (0 = freshly flushed).
    pub level: usize,
    /// The run's file number (its file is `{number:06}.arrow`).
    pub file_number: u64,
    /// The run's file.
    pub path: PathBuf,
    /// Bytes on disk.
    pub file_size: u64,
    /// Entries: every version and tombstone.
    pub entries: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// Blocks (Arrow record batches).
    pub blocks: u32,
    /// Smallest and largest user key.
    pub min_key: Vec<u8>,
    /// Largest user key.
    pub max_key: Vec<u8>,
    /// Smallest version.
    pub min_version: Version,
    /// Largest version.
    pub max_version: Version,
}

impl Inner {
    /// Every run of the current view, level by level (each level in its read order).
    pub(crate) fn run_infos(&self) -> Vec<RunInfo> {
        let view = self.current_view();
        view.runs()
            .map(|(level, run)| {
                let m = run.reader.meta();
                RunInfo {
                    level,
                    file_number: run.id(),
                    path: run.reader.path().to_path_buf(),
                    file_size: m.file_size,
                    entries: m.entry_count,
                    tombstones: m.tombstone_count,
                    blocks: m.block_count,
                    min_key: m.min_key.clone(),
                    max_key: m.max_key.clone(),
                    min_version: m.min_version,
                    max_version: m.max_version,
                }
            })
            .collect()
    }
}
