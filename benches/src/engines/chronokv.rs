//! The chronokv adapter: the public `chronokv` API with default options, except the
//! benchmark's durability and cache size.

use crate::engine::{BenchResult, Durability, Engine, EngineConfig};
use chronokv::{Db, Options, WriteBatch};
use std::path::Path;

/// A chronokv database.
pub struct Chronokv {
    db: Db,
    durability: chronokv::Durability,
}

impl Chronokv {
    /// Opens (creating) a database at `path`.
    pub fn open(path: &Path, config: EngineConfig) -> BenchResult<Self> {
        let durability = match config.durability {
            Durability::Buffered => chronokv::Durability::Buffered,
            Durability::Sync => chronokv::Durability::Sync,
        };
        let options = Options {
            durability,
            block_cache_bytes: config.cache_bytes,
            memtable_size: config.memtable_bytes as usize,
            ..Options::default()
        };
        Ok(Chronokv {
            db: Db::open(path, options)?,
            durability,
        })
    }

    /// The underlying database (for engine-specific statistics).
    pub fn db(&self) -> &Db {
        &self.db
    }
}

impl Engine for Chronokv {
    fn name(&self) -> &'static str {
        "chronokv"
    }

    fn put(&self, key: &[u8], value: &[u8]) -> BenchResult<()> {
        self.db.put(key, value)?;
        Ok(())
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> BenchResult<()> {
        let mut batch = WriteBatch::new();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        self.db.write_with(batch, self.durability)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<usize>> {
        Ok(self.db.get(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> BenchResult<()> {
        self.db.delete(key)?;
        Ok(())
    }

    fn seek_next(&self, key: &[u8], n: usize) -> BenchResult<usize> {
        let mut read = 0;
        for pair in self.db.scan(key..).take(n) {
            let (_, v) = pair?;
            std::hint::black_box(v.len());
            read += 1;
        }
        Ok(read)
    }

    fn scan_all(&self) -> BenchResult<u64> {
        let mut read = 0;
        for pair in self.db.scan::<&[u8], _>(..) {
            let (_, v) = pair?;
            std::hint::black_box(v.len());
            read += 1;
        }
        Ok(read)
    }

    fn settle(&self) -> BenchResult<()> {
        self.db.flush()?;
        self.db.wait_for_compactions()?;
        Ok(())
    }

    fn table_bytes_written(&self) -> Option<u64> {
        let s = self.db.stats();
        Some(s.flush_bytes_written + s.compaction_bytes_written)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.close()?;
        Ok(())
    }
}
