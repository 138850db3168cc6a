//! [`Db`]: the public face of an open database.

use crate::batch::WriteBatch;
use crate::commit::CommitQueue;
use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::options::{Durability, Options};
use crate::recovery;
use bytes::Bytes;
use chronokv_snapshot::{Scan, Source, Version};
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

/// An open chronokv database. `Send + Sync`: share it between threads with an `Arc`.
///
/// Dropping a `Db` closes it like [`Db::close`] (errors are then ignored): acknowledged
/// writes are never lost, because they are in the WAL, which is synced on close.
pub struct Db {
    inner: Arc<Inner>,
    commit: CommitQueue,
    flusher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// A double-ended iterator over `(key, value)` pairs in key order, as of the moment it was
/// created. An error is yielded once and ends the iteration.
pub struct Iter {
    scan: Scan<Error>,
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.scan.next()
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.scan.next_back()
    }
}

fn owned_bound<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k.as_ref())),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k.as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// True when no key can lie within the bounds (so sources are never asked for an inverted
/// range).
fn is_empty_range(lo: &Bound<Bytes>, hi: &Bound<Bytes>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Db {
    /// Opens (or, with `create_if_missing`, creates) the database at `path`, recovering
    /// whatever a crash left. Fails with [`Error::Locked`] if another `Db` has it open.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        let inner = recovery::open(path.as_ref(), options)?;
        let bg = inner.clone();
        let flusher = std::thread::Builder::new()
            .name("chronokv-flush".into())
            .spawn(move || bg.flusher_loop())
            .map_err(|e| Error::io(path.as_ref(), e))?;
        Ok(Db {
            inner,
            commit: CommitQueue::default(),
            flusher: Some(flusher),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Sets `key` to `value` with the default durability; returns the commit's version.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<Version> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(batch)
    }

    /// Deletes `key` with the default durability; returns the commit's version.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<Version> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(batch)
    }

    /// Commits a batch atomically with the default durability. Returns the version of its
    /// last entry (for an empty batch, the latest version).
    pub fn write(&self, batch: WriteBatch) -> Result<Version> {
        self.write_with(batch, self.inner.opts.durability)
    }

    /// Commits a batch atomically with the given durability.
    pub fn write_with(&self, batch: WriteBatch, durability: Durability) -> Result<Version> {
        if self.flusher.is_none() {
            return Err(Error::Closed);
        }
        self.commit.commit(&self.inner, batch, durability)
    }

    /// The latest value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let snapshot = self.inner.snapshot_version();
        self.inner.current_view().get(key.as_ref(), snapshot)
    }

    /// The version of the latest commit visible to reads.
    pub fn latest_version(&self) -> Version {
        self.inner.snapshot_version()
    }

    /// The live `(key, value)` pairs whose keys lie in `range`, in key order (reversible).
    pub fn scan<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let lo = owned_bound(range.start_bound());
        let hi = owned_bound(range.end_bound());
        self.scan_bounds(lo, hi)
    }

    /// The live pairs whose keys start with `prefix`, in key order (reversible).
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let p = prefix.as_ref();
        let hi = match prefix_successor(p) {
            Some(end) => Bound::Excluded(Bytes::from(end)),
            None => Bound::Unbounded,
        };
        self.scan_bounds(Bound::Included(Bytes::copy_from_slice(p)), hi)
    }

    fn scan_bounds(&self, lo: Bound<Bytes>, hi: Bound<Bytes>) -> Iter {
        let snapshot = self.inner.snapshot_version();
        let view = self.inner.current_view();
        let empty = is_empty_range(&lo, &hi);
        let factory = move || -> Result<Vec<Source<Error>>> {
            if empty {
                return Ok(Vec::new());
            }
            Ok(view.sources(&lo, &hi))
        };
        Iter {
            scan: Scan::new(Box::new(factory), snapshot),
        }
    }

    /// Writes the memtable to a run and waits until every sealed memtable is flushed.
    pub fn flush(&self) -> Result<()> {
        {
            let mut wal = self.inner.wal.lock();
            self.inner.check_writable()?;
            if !self.inner.current_view().active.is_empty() {
                self.inner.seal_memtable(&mut wal)?;
            }
        }
        self.inner.wait_for_flushes()
    }

    /// Syncs the WAL so every acknowledged write survives a power loss too.
    pub fn sync_wal(&self) -> Result<()> {
        let mut wal = self.inner.wal.lock();
        self.inner.check_writable()?;
        wal.writer.sync().map_err(|e| {
            let e = Error::from(e);
            self.inner.poison(&e);
            e
        })
    }

    /// Closes the database: syncs the WAL and stops background work. Dropping the `Db` does
    /// the same but cannot report an error.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(flusher) = self.flusher.take() else {
            return Ok(());
        };
        let synced = {
            let mut wal = self.inner.wal.lock();
            match self.inner.check_writable() {
                Ok(()) => wal.writer.sync().map_err(Error::from),
                // Nothing more can be made durable; reopening recovers what is.
                Err(_) => Ok(()),
            }
        };
        {
            let mut bg = self.inner.bg.lock();
            bg.shutdown = true;
            self.inner.bg_work.notify_all();
            self.inner.bg_done.notify_all();
        }
        let _ = flusher.join();
        synced
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_handles_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn inverted_ranges_are_empty() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert!(is_empty_range(
            &Bound::Included(b("b")),
            &Bound::Included(b("a"))
        ));
        assert!(is_empty_range(
            &Bound::Included(b("a")),
            &Bound::Excluded(b("a"))
        ));
        assert!(!is_empty_range(
            &Bound::Included(b("a")),
            &Bound::Included(b("a"))
        ));
        assert!(!is_empty_range(&Bound::Unbounded, &Bound::Excluded(b("a"))));
    }
}
