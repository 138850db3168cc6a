//! The fjall adapter (crate `fjall` 3.x, feature `peers`): one keyspace, default options
//! except the benchmark's settings: no compression, a 64 MiB cache, a 64 MiB memtable.
//! Buffered writes use fjall's default (the journal is flushed to the OS on every write);
//! synced writes are one-item batches committed with `PersistMode::SyncData`.
//! fjall keeps no flush/compaction byte counters without its `metrics` feature, so its
//! write amplification comes only from the runner's process I/O counter.

use crate::engine::{BenchResult, Durability, Engine, EngineConfig};
use fjall::config::CompressionPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::Path;
use std::time::Duration;

/// A fjall database with one keyspace.
pub struct Fjall {
    db: Database,
    ks: Keyspace,
    persist: PersistMode,
}

impl Fjall {
    /// Opens (creating) a database at `path`.
    pub fn open(path: &Path, config: EngineConfig) -> BenchResult<Self> {
        let db = Database::builder(path)
            .cache_size(config.cache_bytes)
            .open()?;
        let memtable = config.memtable_bytes;
        let ks = db.keyspace("bench", move || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(CompressionPolicy::disabled())
                .index_block_compression_policy(CompressionPolicy::disabled())
                .max_memtable_size(memtable)
        })?;
        let persist = match config.durability {
            Durability::Buffered => PersistMode::Buffer,
            Durability::Sync => PersistMode::SyncData,
        };
        Ok(Fjall { db, ks, persist })
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall"
    }

    fn put(&self, key: &[u8], value: &[u8]) -> BenchResult<()> {
        if self.persist == PersistMode::Buffer {
            self.ks.insert(key, value)?;
        } else {
            let mut batch = self.db.batch().durability(Some(self.persist));
            batch.insert(&self.ks, key, value);
            batch.commit()?;
        }
        Ok(())
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> BenchResult<()> {
        let mut batch = self.db.batch().durability(Some(self.persist));
        for (k, v) in pairs {
            batch.insert(&self.ks, *k, *v);
        }
        batch.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<usize>> {
        Ok(self.ks.get(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> BenchResult<()> {
        if self.persist == PersistMode::Buffer {
            self.ks.remove(key)?;
        } else {
            let mut batch = self.db.batch().durability(Some(self.persist));
            batch.remove(&self.ks, key);
            batch.commit()?;
        }
        Ok(())
    }

    fn seek_next(&self, key: &[u8], n: usize) -> BenchResult<usize> {
        let mut read = 0;
        for guard in self.ks.range(key..).take(n) {
            let (_, v) = guard.into_inner()?;
            std::hint::black_box(v.len());
            read += 1;
        }
        Ok(read)
    }

    fn scan_all(&self) -> BenchResult<u64> {
        let mut read = 0;
        for guard in self.ks.iter() {
            let (_, v) = guard.into_inner()?;
            std::hint::black_box(v.len());
            read += 1;
        }
        Ok(read)
    }

    fn settle(&self) -> BenchResult<()> {
        self.ks.rotate_memtable_and_wait()?;
        let mut quiet = 0;
        while quiet < 3 {
            if self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0 {
                quiet = 0;
            } else {
                quiet += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn table_bytes_written(&self) -> Option<u64> {
        None
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}
