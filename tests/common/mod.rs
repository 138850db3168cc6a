//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chronokv::vfs::MemFs;
use chronokv::{Db, Options};
use std::path::Path;
use std::sync::Arc;

/// Options on an in-memory file system with a tiny memtable, so flushes happen often.
pub fn mem_options(fs: &MemFs, memtable_size: usize) -> Options {
    Options {
        vfs: Arc::new(fs.clone()),
        memtable_size,
        block_size: 512,
        ..Options::default()
    }
}

pub fn open_mem(fs: &MemFs, memtable_size: usize) -> Db {
    Db::open(Path::new("/db"), mem_options(fs, memtable_size)).expect("open")
}

/// Every live pair, front to back.
pub fn all(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("scan"))
        .collect()
}

/// The names of the files in the database directory of an in-memory store.
pub fn files(fs: &MemFs) -> Vec<String> {
    use chronokv::vfs::Vfs;
    let mut v = fs.list(Path::new("/db")).unwrap_or_default();
    v.sort();
    v
}
