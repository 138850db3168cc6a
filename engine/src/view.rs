//! The read view: which memtables and runs a read consults, swapped atomically as a whole
//! when a memtable is sealed or flushed.
//!
//! A reader takes the visible version first, then the view; both only grow, and a flush
//! moves a memtable into a run in one swap, so every version `<=` the one taken is found in
//! exactly the view taken (possibly in two places, which the merge deduplicates).

use crate::error::{Error, Result};
use crate::memtable::Memtable;
use bytes::Bytes;
use chronokv_runs::RunReader;
use chronokv_snapshot::{Kind, Source, Version};
use std::ops::Bound;
use std::sync::Arc;

#[derive(Clone)]
pub struct View {
    pub active: Arc<Memtable>,
    /// Sealed memtables awaiting flush, newest first.
    pub immutables: Vec<Arc<Memtable>>,
    /// Runs, newest first (level 0 only until compaction lands).
    pub runs: Vec<Arc<RunReader>>,
}

impl View {
    fn memtables(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.active).chain(self.immutables.iter())
    }

    /// The value of `key` at `snapshot`: the first source (newest first) holding a version
    /// `<=` the snapshot decides.
    pub fn get(&self, key: &[u8], snapshot: Version) -> Result<Option<Bytes>> {
        for mem in self.memtables() {
            if let Some((_, kind, value)) = mem.get(key, snapshot) {
                return Ok((kind == Kind::Put).then_some(value));
            }
        }
        for run in &self.runs {
            if let Some((_, kind, value)) = run.get(key, snapshot)? {
                return Ok((kind == Kind::Put).then_some(value));
            }
        }
        Ok(None)
    }

    /// Sources over a user-key range, newest first, for the merging scan.
    pub fn sources(&self, lo: &Bound<Bytes>, hi: &Bound<Bytes>) -> Vec<Source<Error>> {
        let mut out: Vec<Source<Error>> =
            Vec::with_capacity(1 + self.immutables.len() + self.runs.len());
        for mem in self.memtables() {
            out.push(Box::new(mem.range(lo.clone(), hi.clone()).map(Ok)));
        }
        for run in &self.runs {
            out.push(Box::new(
                run.range(lo.clone(), hi.clone())
                    .map(|r| r.map_err(Error::from)),
            ));
        }
        out
    }
}
