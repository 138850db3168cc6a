//! The RocksDB adapter (crate `rocksdb`, feature `peers`): default options except the
//! benchmark's settings: no compression, a 64 MiB LRU block cache, a 10 bits/key bloom
//! filter (chronokv's default 1% false-positive rate needs about 9.6), two background jobs
//! (chronokv's two compaction threads), statistics tickers for write amplification.

use crate::engine::{BenchResult, Durability, Engine, EngineConfig};
use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::time::Duration;

/// A RocksDB database.
pub struct Rocks {
    db: DB,
    options: Options,
    write: WriteOptions,
}

impl Rocks {
    /// Opens (creating) a database at `path`.
    pub fn open(path: &Path, config: EngineConfig) -> BenchResult<Self> {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(config.cache_bytes as usize));
        table.set_bloom_filter(10.0, false);
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::None);
        options.set_write_buffer_size(config.memtable_bytes as usize);
        options.set_max_background_jobs(2);
        options.set_level_compaction_dynamic_level_bytes(true);
        options.set_block_based_table_factory(&table);
        options.enable_statistics();
        options.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
        let mut write = WriteOptions::default();
        write.set_sync(config.durability == Durability::Sync);
        write.disable_wal(false);
        let db = DB::open(&options, path)?;
        Ok(Rocks { db, options, write })
    }

    fn busy(&self) -> BenchResult<bool> {
        let prop =
            |name: &str| -> BenchResult<u64> { Ok(self.db.property_int_value(name)?.unwrap_or(0)) };
        Ok(prop("rocksdb.num-running-flushes")? > 0
            || prop("rocksdb.num-running-compactions")? > 0
            || prop("rocksdb.compaction-pending")? > 0
            || prop("rocksdb.mem-table-flush-pending")? > 0)
    }
}

impl Engine for Rocks {
    fn name(&self) -> &'static str {
        "rocksdb"
    }

    fn put(&self, key: &[u8], value: &[u8]) -> BenchResult<()> {
        self.db.put_opt(key, value, &self.write)?;
        Ok(())
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> BenchResult<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        self.db.write_opt(batch, &self.write)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<usize>> {
        Ok(self.db.get_pinned(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> BenchResult<()> {
        self.db.delete_opt(key, &self.write)?;
        Ok(())
    }

    fn seek_next(&self, key: &[u8], n: usize) -> BenchResult<usize> {
        let mut it = self.db.raw_iterator();
        it.seek(key);
        let mut read = 0;
        while read < n && it.valid() {
            std::hint::black_box(it.value().map(<[u8]>::len));
            read += 1;
            it.next();
        }
        it.status()?;
        Ok(read)
    }

    fn scan_all(&self) -> BenchResult<u64> {
        let mut it = self.db.raw_iterator();
        it.seek_to_first();
        let mut read = 0;
        while it.valid() {
            std::hint::black_box(it.value().map(<[u8]>::len));
            read += 1;
            it.next();
        }
        it.status()?;
        Ok(read)
    }

    fn settle(&self) -> BenchResult<()> {
        self.db.flush()?;
        // Quiet for three polls in a row: a compaction may be scheduled just after a flush.
        let mut quiet = 0;
        while quiet < 3 {
            if self.busy()? {
                quiet = 0;
            } else {
                quiet += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn table_bytes_written(&self) -> Option<u64> {
        Some(
            self.options.get_ticker_count(Ticker::FlushWriteBytes)
                + self.options.get_ticker_count(Ticker::CompactWriteBytes),
        )
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.flush_wal(true)?;
        drop(self);
        Ok(())
    }
}
