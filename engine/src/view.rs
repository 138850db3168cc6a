//! The read view: which memtables and runs a read consults, swapped atomically as a whole
//! when a memtable is sealed or flushed or a compaction is installed.
//!
//! A reader takes the visible version first, then the view; both only grow, and a flush
//! moves a memtable into a run in one swap, so every version `<=` the one taken is found in
//! exactly the view taken (possibly in two places, which the merge deduplicates). A
//! compaction may drop versions older than its inputs' newest one (`gc_horizon`); a reader
//! whose version is below the horizon of the view it took retries with a fresh version
//! (see `Inner::read_point`), so no reader ever sees a key's history with a hole.
//!
//! Runs are reference counted ([`LiveRun`]): a view, and every iterator made from it, keeps
//! its runs' files alive; a run replaced by a compaction is deleted when the last view
//! holding it goes away.

use crate::error::{Error, Result};
use crate::memtable::Memtable;
use bytes::Bytes;
use chronokv_compaction::{Levels, RunInfo};
use chronokv_runs::{BlockCache, KeyHash, RunReader};
use chronokv_snapshot::{Kind, Source, Version};
use chronokv_vfs::Vfs;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A run of the tree. Once a manifest edit has durably removed it, it is marked obsolete
/// and its file is deleted when the last reference drops.
pub struct LiveRun {
    pub reader: Arc<RunReader>,
    obsolete: AtomicBool,
    vfs: Arc<dyn Vfs>,
    cache: Arc<BlockCache>,
}

impl LiveRun {
    pub fn new(reader: Arc<RunReader>, vfs: Arc<dyn Vfs>, cache: Arc<BlockCache>) -> Arc<Self> {
        Arc::new(LiveRun {
            reader,
            obsolete: AtomicBool::new(false),
            vfs,
            cache,
        })
    }

    pub fn id(&self) -> u64 {
        self.reader.id()
    }

    /// Deletes the file once no view holds the run any more. Call only after the manifest
    /// edit that removes the run is durable.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    fn min_key(&self) -> &[u8] {
        &self.reader.meta().min_key
    }

    fn max_key(&self) -> &[u8] {
        &self.reader.meta().max_key
    }

    /// True if the run may hold keys in `lo..hi`.
    fn overlaps(&self, lo: &Bound<Bytes>, hi: &Bound<Bytes>) -> bool {
        let above_lo = match lo {
            Bound::Included(k) => self.max_key() >= k.as_ref(),
            Bound::Excluded(k) => self.max_key() > k.as_ref(),
            Bound::Unbounded => true,
        };
        let below_hi = match hi {
            Bound::Included(k) => self.min_key() <= k.as_ref(),
            Bound::Excluded(k) => self.min_key() < k.as_ref(),
            Bound::Unbounded => true,
        };
        above_lo && below_hi
    }

    /// What the compaction policy sees of this run.
    pub fn info(&self) -> RunInfo {
        let m = self.reader.meta();
        RunInfo {
            id: self.id(),
            size: m.file_size,
            min_key: m.min_key.clone(),
            max_key: m.max_key.clone(),
            min_version: m.min_version,
            max_version: m.max_version,
            entries: m.entry_count,
            tombstones: m.tombstone_count,
        }
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            self.cache.remove_run(self.id());
            // A failure leaves an unreferenced file, which the next open deletes.
            let _ = self.vfs.remove_file(self.reader.path());
        }
    }
}

/// One level of the tree. Level 0, and any level whose runs overlap, is kept newest first
/// (by newest version); a level of disjoint runs is kept in key order.
#[derive(Clone, Default)]
pub struct Level {
    pub runs: Vec<Arc<LiveRun>>,
    pub disjoint: bool,
}

impl Level {
    /// Orders `runs` for level number `level` and records whether they are disjoint.
    pub fn new(level: usize, mut runs: Vec<Arc<LiveRun>>) -> Level {
        runs.sort_by(|a, b| {
            let (ma, mb) = (a.reader.meta(), b.reader.meta());
            mb.max_version
                .cmp(&ma.max_version)
                .then(b.id().cmp(&a.id()))
        });
        let mut by_key = runs.clone();
        by_key.sort_by(|a, b| a.min_key().cmp(b.min_key()));
        let disjoint = level > 0 && by_key.windows(2).all(|w| w[0].max_key() < w[1].min_key());
        Level {
            runs: if disjoint { by_key } else { runs },
            disjoint,
        }
    }

    /// The runs that may hold `key`, in the order they must be consulted. Whether the key
    /// is inside a run's key range is left to `RunReader::get`, which checks it first.
    fn candidates(&self, key: &[u8]) -> &[Arc<LiveRun>] {
        if self.disjoint {
            let i = self.runs.partition_point(|r| r.max_key() < key);
            &self.runs[i..(i + 1).min(self.runs.len())]
        } else {
            &self.runs
        }
    }
}

#[derive(Clone)]
pub struct View {
    pub active: Arc<Memtable>,
    /// Sealed memtables awaiting flush, newest first.
    pub immutables: Vec<Arc<Memtable>>,
    /// The tree, level 0 first.
    pub levels: Vec<Level>,
    /// Readers must read at a version `>=` this (see the module documentation).
    pub gc_horizon: Version,
}

impl View {
    /// The active memtable, then the sealed ones, newest first.
    pub fn memtables(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.active).chain(self.immutables.iter())
    }

    /// Every run, level by level.
    pub fn runs(&self) -> impl Iterator<Item = (usize, &Arc<LiveRun>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(l, level)| level.runs.iter().map(move |r| (l, r)))
    }

    /// Groups runs by level number into ordered levels.
    pub fn build_levels(runs: impl IntoIterator<Item = (usize, Arc<LiveRun>)>) -> Vec<Level> {
        let mut grouped: Vec<Vec<Arc<LiveRun>>> = vec![Vec::new()];
        for (level, run) in runs {
            if grouped.len() <= level {
                grouped.resize_with(level + 1, Vec::new);
            }
            grouped[level].push(run);
        }
        grouped
            .into_iter()
            .enumerate()
            .map(|(l, runs)| Level::new(l, runs))
            .collect()
    }

    /// The tree as the compaction policy sees it, in the same order as `levels`.
    pub fn policy_levels(&self) -> Levels {
        Levels {
            levels: self
                .levels
                .iter()
                .map(|l| l.runs.iter().map(|r| r.info()).collect())
                .collect(),
        }
    }

    /// The value of `key` at `snapshot`: the first source (newest first) holding a version
    /// `<=` the snapshot decides.
    pub fn get(&self, key: &[u8], snapshot: Version) -> Result<Option<Bytes>> {
        for mem in self.memtables() {
            if let Some((_, kind, value)) = mem.get(key, snapshot) {
                return Ok((kind == Kind::Put).then_some(value));
            }
        }
        // Hashed once for every run's bloom filter, and only if some run may hold the key.
        let mut hash = None;
        for level in &self.levels {
            for run in level.candidates(key) {
                let hash = hash.get_or_insert_with(|| KeyHash::new(key));
                if let Some((_, kind, value)) = run.reader.get_hashed(key, hash, snapshot)? {
                    return Ok((kind == Kind::Put).then_some(value));
                }
            }
        }
        Ok(None)
    }

    /// Sources over a user-key range for the merging scan: memtables, then every run that
    /// may hold keys in the range. The caller keeps this view alive while it reads them
    /// (`Db::scan` holds it in the scan's source factory), which keeps the runs' files.
    pub fn sources(&self, lo: &Bound<Bytes>, hi: &Bound<Bytes>) -> Vec<Source<Error>> {
        self.sources_at(lo, hi, None)
    }

    /// Like [`View::sources`], for a read at `snapshot`: the memtables yield only each
    /// key's newest version visible there (see `Memtable::range_at`).
    pub fn sources_at(
        &self,
        lo: &Bound<Bytes>,
        hi: &Bound<Bytes>,
        snapshot: Option<Version>,
    ) -> Vec<Source<Error>> {
        let runs = self.levels.iter().map(|l| l.runs.len()).sum::<usize>();
        let mut out: Vec<Source<Error>> = Vec::with_capacity(1 + self.immutables.len() + runs);
        for mem in self.memtables() {
            out.push(Box::new(
                mem.range_at(lo.clone(), hi.clone(), snapshot).map(Ok),
            ));
        }
        for (_, run) in self.runs().filter(|(_, r)| r.overlaps(lo, hi)) {
            out.push(Box::new(
                run.reader
                    .range(lo.clone(), hi.clone())
                    .map(|r| r.map_err(Error::from)),
            ));
        }
        out
    }

    /// Sources over every key, from the memtables and the runs that may hold versions in
    /// `since..=upto` (the change feed reads these).
    pub fn version_sources(&self, since: Version, upto: Version) -> Vec<Source<Error>> {
        let all = (Bound::Unbounded, Bound::Unbounded);
        let mut out: Vec<Source<Error>> = Vec::new();
        for mem in self.memtables() {
            out.push(Box::new(mem.range(all.0.clone(), all.1.clone()).map(Ok)));
        }
        for (_, run) in self.runs() {
            let m = run.reader.meta();
            if m.max_version >= since && m.min_version <= upto {
                out.push(Box::new(
                    run.reader
                        .range(all.0.clone(), all.1.clone())
                        .map(|r| r.map_err(Error::from)),
                ));
            }
        }
        out
    }
}
