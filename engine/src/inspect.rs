//! Read-only views of the tree for inspection tools: the runs with their properties
//! ([`RunInfo`]) and the live entries with the versions that wrote them ([`LiveEntries`]).

use crate::error::Error;
use crate::inner::Inner;
use crate::view::View;
use bytes::Bytes;
use chronokv_snapshot::merge::Merge;
use chronokv_snapshot::{Kind, Version};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

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

    /// The live entries at the latest visible version (see [`LiveEntries`]).
    pub(crate) fn live_entries(&self) -> LiveEntries {
        let (snapshot, view) = self.read_point();
        LiveEntries {
            merge: None,
            view,
            snapshot,
            last_key: None,
        }
    }
}

/// The live `(key, version, value)` triples of a database in key order, as of the moment
/// [`crate::Db::live_entries`] was called: for each key that is not deleted, its latest value
/// and the version that wrote it. Holds the read view (and so its runs' files) while it
/// lives. An error is yielded once and ends the iteration.
pub struct LiveEntries {
    merge: Option<Merge<Error>>,
    view: Arc<View>,
    snapshot: Version,
    last_key: Option<Bytes>,
}

impl LiveEntries {
    /// The version the entries are read at.
    pub fn snapshot(&self) -> Version {
        self.snapshot
    }
}

impl Iterator for LiveEntries {
    type Item = crate::Result<(Bytes, Version, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        let view = &self.view;
        let merge = self.merge.get_or_insert_with(|| {
            Merge::forward(view.sources(&Bound::Unbounded, &Bound::Unbounded))
        });
        loop {
            let e = match merge.next()? {
                Ok(e) => e,
                Err(err) => return Some(Err(err)),
            };
            if e.version > self.snapshot || self.last_key.as_ref() == Some(&e.key) {
                continue;
            }
            self.last_key = Some(e.key.clone());
            if e.kind == Kind::Put {
                return Some(Ok((e.key, e.version, e.value)));
            }
        }
    }
}
