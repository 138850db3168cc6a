//! The block cache: decoded blocks of all runs of one database, bounded by bytes.
//!
//! Keys are `(run id, block number)`; run ids are file numbers, unique per database. The
//! weight of an entry is the memory its arrays reference: the message buffer the block was
//! read into, or the buffers decompression produced.

use crate::block::DecodedBlock;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
struct BlockWeighter;

impl Weighter<(u64, u32), Arc<DecodedBlock>> for BlockWeighter {
    fn weight(&self, _key: &(u64, u32), val: &Arc<DecodedBlock>) -> u64 {
        val.weight()
    }
}

/// A byte-bounded, thread-safe cache of decoded blocks shared by the runs of one database.
pub struct BlockCache {
    inner: Cache<(u64, u32), Arc<DecodedBlock>, BlockWeighter>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.inner.capacity())
            .field("weight", &self.inner.weight())
            .field("len", &self.inner.len())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most about `capacity_bytes` of decoded blocks.
    pub fn new(capacity_bytes: u64) -> Arc<Self> {
        let items = (capacity_bytes / (32 * 1024)).clamp(16, 1 << 20) as usize;
        Arc::new(BlockCache {
            inner: Cache::with_weighter(items, capacity_bytes.max(1), BlockWeighter),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub(crate) fn get(&self, run: u64, block: u32) -> Option<Arc<DecodedBlock>> {
        let r = self.inner.get(&(run, block));
        let c = if r.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        c.fetch_add(1, Ordering::Relaxed);
        r
    }

    pub(crate) fn insert(&self, run: u64, block: u32, b: Arc<DecodedBlock>) {
        self.inner.insert((run, block), b);
    }

    /// Drops every cached block of run `id` (call when a run file is deleted).
    pub fn remove_run(&self, id: u64) {
        self.inner.retain(|k, _| k.0 != id);
    }

    /// Cache hits so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Cache misses so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Bytes currently charged.
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }
}
