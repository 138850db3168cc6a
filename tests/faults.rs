//! Failure behaviour: backpressure instead of errors, and fail-stop after an I/O error.

mod common;

use chronokv::vfs::{FaultFs, MemFs};
use chronokv::{Db, Error, Options};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[test]
fn a_failed_wal_write_poisons_writes_but_not_reads_and_reopen_recovers() {
    let fs = FaultFs::new(Arc::new(MemFs::new()));
    let opts = || Options {
        vfs: Arc::new(fs.clone()),
        ..Options::default()
    };
    let db = Db::open("/db", opts()).unwrap();
    db.put("before", "1").unwrap();
    fs.fail_writes(true);
    let err = db.put("during", "2").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    fs.fail_writes(false);
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
    // Count flushes, not run files: compaction merges the runs as they arrive.
    let flushes = db.stats().flushes;
    assert!(flushes > 10, "expected many flushes, saw {flushes}");
}

/// A `MemFs` wrapper for the tests below: it can fail the next manifest write or sync (a
/// write leaves half its buffer, like `FaultFs`), and it can hold the compaction thread
/// before it creates its first output, until released.
mod rigged {
    use chronokv::vfs::{DirLock, MappedFile, MemFs, Vfs, WritableFile};
    use std::io;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Condvar, Mutex};

    #[derive(Debug, Default)]
    pub struct Controls {
        pub fail_manifest_write: AtomicBool,
        pub fail_manifest_sync: AtomicBool,
        /// While true, the compaction thread waits before creating an output.
        pub hold_compaction: Mutex<bool>,
        pub released: Condvar,
        /// Directory syncs by the compaction thread (one per finished output).
        pub compaction_dir_syncs: AtomicU64,
        /// Files the compaction thread asked to create (held or not).
        pub compaction_creates: AtomicU64,
    }

    #[derive(Debug, Clone)]
    pub struct Rigged {
        pub mem: MemFs,
        pub ctl: Arc<Controls>,
    }

    impl Rigged {
        pub fn new() -> Rigged {
            Rigged {
                mem: MemFs::new(),
                ctl: Arc::default(),
            }
        }

        pub fn hold_compaction(&self, on: bool) {
            *self.ctl.hold_compaction.lock().unwrap() = on;
            self.ctl.released.notify_all();
        }
    }

    /// Lets the compaction thread go when dropped.
    pub struct Release(pub Rigged);

    impl Drop for Release {
        fn drop(&mut self) {
            if let Ok(mut held) = self.0.ctl.hold_compaction.lock() {
                *held = false;
            }
            self.0.ctl.released.notify_all();
        }
    }

    fn in_compaction_thread() -> bool {
        std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("chronokv-compact"))
    }

    #[derive(Debug)]
    struct File {
        inner: Box<dyn WritableFile>,
        manifest: bool,
        ctl: Arc<Controls>,
    }

    impl WritableFile for File {
        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            if self.manifest && self.ctl.fail_manifest_write.swap(false, Ordering::SeqCst) {
                self.inner.write_all(&buf[..buf.len() / 2])?;
                return Err(io::Error::from_raw_os_error(28));
            }
            self.inner.write_all(buf)
        }
        fn sync(&mut self) -> io::Result<()> {
            if self.manifest && self.ctl.fail_manifest_sync.swap(false, Ordering::SeqCst) {
                return Err(io::Error::from_raw_os_error(5));
            }
            self.inner.sync()
        }
        fn len(&self) -> u64 {
            self.inner.len()
        }
    }

    impl Vfs for Rigged {
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            self.mem.create_dir_all(dir)
        }
        fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
            if in_compaction_thread() {
                self.ctl.compaction_creates.fetch_add(1, Ordering::SeqCst);
                let mut held = self.ctl.hold_compaction.lock().unwrap();
                while *held {
                    held = self.ctl.released.wait(held).unwrap();
                }
            }
            let manifest = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("MANIFEST-"));
            Ok(Box::new(File {
                inner: self.mem.create(path)?,
                manifest,
                ctl: self.ctl.clone(),
            }))
        }
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.mem.read(path)
        }
        fn map(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
            self.mem.map(path)
        }
        fn file_size(&self, path: &Path) -> io::Result<u64> {
            self.mem.file_size(path)
        }
        fn exists(&self, path: &Path) -> bool {
            self.mem.exists(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.mem.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            self.mem.remove_file(path)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            self.mem.list(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            if in_compaction_thread() {
                self.ctl.compaction_dir_syncs.fetch_add(1, Ordering::SeqCst);
            }
            self.mem.sync_dir(dir)
        }
        fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
            self.mem.lock(path)
        }
    }
}

fn rigged_options(fs: &rigged::Rigged, compaction_threads: usize) -> Options {
    Options {
        compaction_threads,
        ..common::compacting_options(&fs.mem, 1 << 10, common::aggressive_leveled())
    }
    .with_vfs(fs)
}

trait WithVfs {
    fn with_vfs(self, fs: &rigged::Rigged) -> Self;
}

impl WithVfs for Options {
    fn with_vfs(self, fs: &rigged::Rigged) -> Self {
        Options {
            vfs: Arc::new(fs.clone()),
            ..self
        }
    }
}

/// Writes `n` synced keys starting at `from`, then flushes (one level-0 run).
fn synced_run(db: &Db, from: u32, n: u32) {
    for i in from..from + n {
        let mut b = chronokv::WriteBatch::new();
        b.put(format!("k{i:04}"), [b'v'; 40]);
        db.write_with(b, chronokv::Durability::Sync).unwrap();
    }
    db.flush().unwrap();
}

fn reopened_keys(mem: &MemFs) -> Result<usize, Error> {
    let db = Db::open("/db", common::mem_options(mem, 1 << 10))?;
    let n = db.scan::<&[u8], _>(..).count();
    db.close()?;
    Ok(n)
}

/// Found by the G2 fault loop (`chronokv-harness faults`): a manual compaction whose
/// manifest fsync failed deleted its output runs, but the edit naming them had been written
/// (and may be durable), so the next open found the manifest naming missing runs.
#[test]
fn a_compaction_whose_manifest_sync_failed_keeps_its_outputs_for_the_next_open() {
    let fs = rigged::Rigged::new();
    let db = Db::open("/db", rigged_options(&fs, 0)).unwrap();
    synced_run(&db, 0, 20);
    synced_run(&db, 20, 20);
    fs.ctl.fail_manifest_sync.store(true, Ordering::SeqCst);
    let err = db.compact_range::<&[u8], _>(..).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    drop(db);
    // A process restart sees the written (unsynced) edit; a power loss may or may not.
    assert_eq!(reopened_keys(&fs.mem).unwrap(), 40);
}

/// Found by the G2 fault loop: after a manifest append failed half-way in one thread, another
/// background thread appended a whole edit behind the torn one, and the next open rejected
/// the manifest (damage followed by a valid frame is corruption).
#[test]
fn no_manifest_edit_is_appended_after_a_failed_one() {
    let fs = rigged::Rigged::new();
    let db = Db::open("/db", rigged_options(&fs, 1)).unwrap();
    // The compaction thread waits before writing its output (the runs overlap, so it is a
    // merge, not a trivial move)...
    fs.hold_compaction(true);
    // Released when the test ends, even by a panic (else dropping `db` would wait forever).
    let _release = rigged::Release(fs.clone());
    synced_run(&db, 0, 20);
    synced_run(&db, 10, 20);
    for i in 40..60 {
        let mut b = chronokv::WriteBatch::new();
        b.put(format!("k{i:04}"), [b'v'; 40]);
        db.write_with(b, chronokv::Durability::Sync).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fs.ctl.compaction_creates.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the compaction never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // ...while the flusher's manifest edit fails half-way, which stops the engine.
    fs.ctl.fail_manifest_write.store(true, Ordering::SeqCst);
    assert!(db.flush().is_err());
    // Now the compaction goes on; closing waits for it to finish.
    fs.hold_compaction(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fs.ctl.compaction_dir_syncs.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the compaction never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(db);
    assert_eq!(reopened_keys(&fs.mem).unwrap(), 50);
}

/// A compaction's manifest edit that was appended but whose manifest rotation then failed
/// poisons the engine and leaves the recorded tree ahead of the read view; a checkpoint must
/// then be refused as `Poisoned`, like a write. (G2 found the racy form of this, once
/// checkpoints joined its workload: a background compaction failing between the
/// checkpoint's flush, which checks for poison, and its pin of the tree, which did not, gave
/// an "internal: the manifest names run N but the read view lacks it" error. The pin now
/// checks for poison under the tree lock; the race itself is not reproducible from here.)
#[test]
fn a_checkpoint_of_a_poisoned_engine_is_refused_as_poisoned() {
    use chronokv::vfs::{FaultKind, FaultMode, MutatingOp};
    let start = |fault_at: Option<u64>| {
        let fs = FaultFs::new(Arc::new(MemFs::new()));
        let db = Db::open(
            "/db",
            Options {
                vfs: Arc::new(fs.clone()),
                // Every edit rotates the manifest; no background compaction.
                max_manifest_bytes: 1,
                compaction_threads: 0,
                ..Options::default()
            },
        )
        .unwrap();
        for k in ["a", "b"] {
            db.put(k, "v").unwrap();
            db.flush().unwrap();
        }
        fs.record_calls();
        if let Some(at) = fault_at {
            fs.inject(at, FaultKind::Eio, FaultMode::Once);
        }
        (fs, db)
    };
    // Where the compaction's manifest rotation creates the new manifest.
    let (fs, db) = start(None);
    db.compact_range::<&str, _>(..).unwrap();
    let rotation = fs
        .calls()
        .into_iter()
        .find(|c| c.op == MutatingOp::Create && c.path.to_string_lossy().contains("MANIFEST-"))
        .expect("the compaction rotates the manifest")
        .call;
    drop(db);
    let (fs, db) = start(Some(rotation));
    assert!(db.compact_range::<&str, _>(..).is_err());
    assert_eq!(fs.injected_count(), 1);
    let err = db.checkpoint("/checkpoint").unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    assert_eq!(db.get("a").unwrap().unwrap(), "v", "reads go on");
}
