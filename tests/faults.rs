//! Failure behaviour: backpressure instead of errors, and fail-stop after an I/O error.

mod common;

use chronokv::vfs::{DirLock, MappedFile, MemFs, Vfs, WritableFile};
use chronokv::{Db, Error, Options};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A `MemFs` whose file writes and syncs fail while `failing` is set.
#[derive(Debug, Clone)]
struct FlakyFs {
    inner: MemFs,
    failing: Arc<AtomicBool>,
}

#[derive(Debug)]
struct FlakyFile {
    inner: Box<dyn WritableFile>,
    failing: Arc<AtomicBool>,
}

fn injected() -> io::Error {
    io::Error::other("injected EIO")
}

impl WritableFile for FlakyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl Vfs for FlakyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inner = self.inner.create(path)?;
        Ok(Box::new(FlakyFile {
            inner,
            failing: self.failing.clone(),
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
}

#[test]
fn a_failed_wal_write_poisons_writes_but_not_reads_and_reopen_recovers() {
    let fs = FlakyFs {
        inner: MemFs::new(),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let opts = || Options {
        vfs: Arc::new(fs.clone()),
        ..Options::default()
    };
    let db = Db::open("/db", opts()).unwrap();
    db.put("before", "1").unwrap();
    fs.failing.store(true, Ordering::SeqCst);
    let err = db.put("during", "2").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    fs.failing.store(false, Ordering::SeqCst);
    // Fail-stop: even though the disk works again, nothing more is acknowledged.
    let err = db.put("after", "3").unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    assert!(err.to_string().contains("injected EIO"), "{err}");
    assert_eq!(db.get("before").unwrap().unwrap(), "1");
    assert_eq!(
        db.get("during").unwrap(),
        None,
        "a failed write must not become visible"
    );
    drop(db);
    let db = Db::open("/db", opts()).unwrap();
    assert_eq!(db.get("before").unwrap().unwrap(), "1");
    assert_eq!(db.get("during").unwrap(), None);
    db.put("after", "3").unwrap();
}

#[test]
fn writers_wait_for_flushes_instead_of_failing() {
    let fs = MemFs::new();
    let opts = Options {
        max_immutable_memtables: 1,
        ..common::mem_options(&fs, 2 << 10)
    };
    let db = Arc::new(Db::open("/db", opts).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..1500u32 {
                    db.put(format!("{t}-{i:05}"), [b'v'; 64]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(db.scan::<&str, _>(..).count(), 6000);
    let runs = common::files(&fs)
        .iter()
        .filter(|n| n.ends_with(".arrow"))
        .count();
    assert!(runs > 10, "expected many flushes, saw {runs} runs");
}
