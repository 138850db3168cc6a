//! The [`Engine`] trait: the few operations the workloads need, implemented once per engine
//! (`engines/`), opened with equal settings ([`EngineConfig`]).

use std::path::Path;

/// Any engine's error, boxed: the runner only reports it.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
/// A result with a [`BenchError`].
pub type BenchResult<T> = Result<T, BenchError>;

/// When a write is acknowledged (the same choice on every engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The WAL write is handed to the OS before the write returns (survives a process crash).
    Buffered,
    /// The WAL is synced (fsync/fdatasync) before each write returns.
    Sync,
}

/// The settings every engine is opened with. The WAL is always on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Acknowledgement of every write.
    pub durability: Durability,
    /// Block cache bytes (default 64 MiB).
    pub cache_bytes: u64,
    /// Memtable (write buffer) bytes (default 64 MiB, every engine's own default).
    pub memtable_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            durability: Durability::Buffered,
            cache_bytes: 64 << 20,
            memtable_bytes: 64 << 20,
        }
    }
}

/// One open database. Implementations must be usable from several threads at once.
///
/// Reads return only what the workloads check (found or not, entry counts), but must touch
/// the value (an adapter may not skip reading it); they need not copy it out.
pub trait Engine: Send + Sync {
    /// The engine's short name (`chronokv`, `rocksdb`, `fjall`).
    fn name(&self) -> &'static str;
    /// Writes one pair.
    fn put(&self, key: &[u8], value: &[u8]) -> BenchResult<()>;
    /// Writes the pairs atomically as one batch.
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> BenchResult<()>;
    /// The length of the value of `key`, or `None` if it is absent.
    fn get(&self, key: &[u8]) -> BenchResult<Option<usize>>;
    /// Deletes `key`.
    fn delete(&self, key: &[u8]) -> BenchResult<()>;
    /// Positions at the first key `>= key` and reads up to `n` pairs from there; returns
    /// how many it read.
    fn seek_next(&self, key: &[u8], n: usize) -> BenchResult<usize>;
    /// Reads every pair in key order; returns how many.
    fn scan_all(&self) -> BenchResult<u64>;
    /// Writes the memtable out and waits until background flushes and compactions are idle.
    fn settle(&self) -> BenchResult<()>;
    /// Bytes the engine wrote to table files (flushes + compactions), from its own counters,
    /// if it keeps them.
    fn table_bytes_written(&self) -> Option<u64>;
    /// Closes the database, waiting for its background work to stop.
    fn close(self: Box<Self>) -> BenchResult<()>;
}

/// The engines this build can open.
pub fn available() -> &'static [&'static str] {
    if cfg!(feature = "peers") {
        &["chronokv", "rocksdb", "fjall"]
    } else {
        &["chronokv"]
    }
}

/// Opens engine `name` at `path` (which should be empty or absent).
///
/// # Errors
/// An unknown name, a peer name without the `peers` feature, or the engine's open error.
pub fn open(name: &str, path: &Path, config: EngineConfig) -> BenchResult<Box<dyn Engine>> {
    match name {
        "chronokv" => Ok(Box::new(crate::engines::chronokv::Chronokv::open(
            path, config,
        )?)),
        #[cfg(feature = "peers")]
        "rocksdb" => Ok(Box::new(crate::engines::rocksdb::Rocks::open(
            path, config,
        )?)),
        #[cfg(feature = "peers")]
        "fjall" => Ok(Box::new(crate::engines::fjall::Fjall::open(path, config)?)),
        #[cfg(not(feature = "peers"))]
        "rocksdb" | "fjall" => Err(format!(
            "engine {name} needs the `peers` feature (cargo run --release -p chronokv-bench --features peers)"
        )
        .into()),
        other => Err(format!("unknown engine {other} (chronokv, rocksdb, fjall)").into()),
    }
}

/// Bytes of all files under `dir`, recursively (what the engine holds on disk, WAL
/// included).
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
