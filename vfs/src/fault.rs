//! [`FaultFs`]: wraps another [`Vfs`] and injects I/O errors into file writes and syncs on
//! demand, counting the calls it sees. A failing write first writes half of its buffer, as a
//! real short write followed by EIO would.

use crate::{DirLock, MappedFile, Vfs, WritableFile};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
struct Controls {
    fail_writes: AtomicBool,
    fail_syncs: AtomicBool,
    writes: AtomicU64,
    syncs: AtomicU64,
}

/// A fault-injecting wrapper around a [`Vfs`]; clones share the switches and counters.
#[derive(Debug, Clone)]
pub struct FaultFs {
    inner: Arc<dyn Vfs>,
    ctl: Arc<Controls>,
}

impl FaultFs {
    /// Wraps `inner`; no fault is injected until a switch is turned on.
    pub fn new(inner: Arc<dyn Vfs>) -> Self {
        FaultFs {
            inner,
            ctl: Arc::default(),
        }
    }

    /// While on, every file write fails with EIO after writing half its buffer.
    pub fn fail_writes(&self, on: bool) {
        self.ctl.fail_writes.store(on, Ordering::SeqCst);
    }

    /// While on, every file sync fails with EIO.
    pub fn fail_syncs(&self, on: bool) {
        self.ctl.fail_syncs.store(on, Ordering::SeqCst);
    }

    /// File `write_all` calls seen so far (failed ones included).
    pub fn writes(&self) -> u64 {
        self.ctl.writes.load(Ordering::SeqCst)
    }

    /// File `sync` calls seen so far (failed ones included).
    pub fn syncs(&self) -> u64 {
        self.ctl.syncs.load(Ordering::SeqCst)
    }
}

fn injected() -> io::Error {
    io::Error::other("injected EIO")
}

#[derive(Debug)]
struct FaultFile {
    inner: Box<dyn WritableFile>,
    ctl: Arc<Controls>,
}

impl WritableFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.ctl.writes.fetch_add(1, Ordering::SeqCst);
        if self.ctl.fail_writes.load(Ordering::SeqCst) {
            self.inner.write_all(&buf[..buf.len() / 2])?;
            return Err(injected());
        }
        self.inner.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.ctl.syncs.fetch_add(1, Ordering::SeqCst);
        if self.ctl.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.sync()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl Vfs for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inner = self.inner.create(path)?;
        Ok(Box::new(FaultFile {
            inner,
            ctl: self.ctl.clone(),
        }))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        self.inner.map(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_size(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.inner.lock(path)
    }
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.link(from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemFs;

    #[test]
    fn failing_writes_are_half_applied_and_counted() {
        let mem = MemFs::new();
        let fs = FaultFs::new(Arc::new(mem.clone()));
        fs.create_dir_all(Path::new("/d")).unwrap();
        let mut f = fs.create(Path::new("/d/f")).unwrap();
        f.write_all(b"abcd").unwrap();
        fs.fail_writes(true);
        assert!(f.write_all(b"efgh").is_err());
        fs.fail_syncs(true);
        assert!(f.sync().is_err());
        assert_eq!(mem.read(Path::new("/d/f")).unwrap(), b"abcdef");
        assert_eq!((fs.writes(), fs.syncs()), (2, 1));
    }
}
