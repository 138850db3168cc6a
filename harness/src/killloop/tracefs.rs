//! [`TracingFs`]: a `Vfs` that passes every call to the real file system and keeps the
//! [`Status`] file up to date with the work in progress, so a kill can be filed under flush,
//! compaction, manifest write or WAL rotation without any hook in the engine.
//!
//! It recognises the engine's work from what reaches the file system and from which thread
//! (the engine names its threads `chronokv-flush` and `chronokv-compact-N`):
//!
//! - **flush**: in the flusher thread, from the first run-file create (`*.arrow.tmp`) or
//!   manifest write until a WAL segment is removed (the last step of a flush);
//! - **compaction**: in a compaction thread, from the first run-file create or manifest write
//!   until a manifest append's fsync returns (the install);
//! - **manifest write**: in any thread, on the database's own manifest: a write to the open
//!   manifest until its fsync returns; a new `MANIFEST-*` from its create until, after the
//!   rename of `CURRENT.tmp` to `CURRENT`, the directory fsync returns;
//! - **WAL rotation**: in any thread, an fsync of a WAL segment the thread has not written in
//!   its current call (sealing a full memtable syncs the old segment first; a commit syncs
//!   what it just wrote) until the directory fsync after the next segment's create returns.
//!   Telling the two fsyncs apart needs to know where a call starts and ends: the stress
//!   process calls [`begin_call`] before each write or checkpoint and [`end_call`] after it
//!   (the fsync in `Db::close`, outside any call, is no rotation).
//!
//! The database's files are recognised by name (`engine/src/files.rs`): `MANIFEST-NNNNNN`,
//! `CURRENT`, `NNNNNN.wal`, `NNNNNN.arrow.tmp`, and only inside the database directory (a
//! checkpoint's manifest is the checkpoint's business, filed under checkpoint).

use super::status::{Category, Status};
use chronokv::vfs::{DirLock, MappedFile, Vfs, WritableFile};
use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manifest {
    Idle,
    /// An edit is being appended (until its fsync returns).
    Appending,
    /// A new manifest is being made live; `renamed` once CURRENT was replaced.
    Creating {
        renamed: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rotation {
    Idle,
    /// The old segment's fsync started; `created` once the new segment exists.
    Running {
        created: bool,
    },
}

/// What this thread is doing, as far as the file system shows.
#[derive(Debug)]
struct ThreadState {
    /// The thread is inside a write or checkpoint call.
    in_call: bool,
    /// The thread wrote a WAL segment since its current call began.
    wal_written: bool,
    flush: bool,
    compaction: bool,
    manifest: Manifest,
    rotation: Rotation,
}

impl Default for ThreadState {
    fn default() -> Self {
        ThreadState {
            in_call: false,
            wal_written: false,
            flush: false,
            compaction: false,
            manifest: Manifest::Idle,
            rotation: Rotation::Idle,
        }
    }
}

thread_local! {
    static STATE: RefCell<ThreadState> = RefCell::new(ThreadState::default());
}

fn with_state<R>(f: impl FnOnce(&mut ThreadState) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Marks the start of a write or checkpoint call in this thread (see the module docs).
pub fn begin_call() {
    with_state(|s| {
        s.in_call = true;
        s.wal_written = false;
    });
}

/// Marks the end of the call [`begin_call`] started.
pub fn end_call() {
    with_state(|s| s.in_call = false);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Flusher,
    Compactor,
    Other,
}

fn role() -> Role {
    match std::thread::current().name() {
        Some("chronokv-flush") => Role::Flusher,
        Some(n) if n.starts_with("chronokv-compact") => Role::Compactor,
        _ => Role::Other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Current,
    Wal,
    RunTmp,
    Other,
}

/// The real file system, reporting the engine's work to a [`Status`].
#[derive(Debug)]
pub struct TracingFs {
    inner: Arc<dyn Vfs>,
    dir: PathBuf,
    status: Arc<Status>,
}

impl TracingFs {
    /// Traces the work on the database in `dir` (the path exactly as given to `Db::open`).
    pub fn new(inner: Arc<dyn Vfs>, dir: &Path, status: Arc<Status>) -> TracingFs {
        TracingFs {
            inner,
            dir: dir.to_path_buf(),
            status,
        }
    }

    fn kind(&self, path: &Path) -> Kind {
        if path.parent() != Some(self.dir.as_path()) {
            return Kind::Other;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Kind::Other;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if name.strip_prefix("MANIFEST-").is_some_and(digits) {
            Kind::Manifest
        } else if name == "CURRENT" {
            Kind::Current
        } else if name.strip_suffix(".wal").is_some_and(digits) {
            Kind::Wal
        } else if name.strip_suffix(".arrow.tmp").is_some_and(digits) {
            Kind::RunTmp
        } else {
            Kind::Other
        }
    }
}

/// The thread starts writing a run file or a manifest: the start of a flush or a compaction,
/// if the thread is the flusher or a compactor and was idle.
fn job_step(status: &Status, s: &mut ThreadState) {
    match role() {
        Role::Flusher if !s.flush => {
            s.flush = true;
            status.enter(Category::Flush);
        }
        Role::Compactor if !s.compaction => {
            s.compaction = true;
            status.enter(Category::Compaction);
        }
        _ => {}
    }
}

/// A file being written, with what the tracer needs to know about it.
#[derive(Debug)]
struct TracedFile {
    inner: Box<dyn WritableFile>,
    kind: Kind,
    status: Arc<Status>,
}

impl WritableFile for TracedFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.kind {
            Kind::Manifest => with_state(|s| {
                if s.manifest == Manifest::Idle {
                    // An append to the live manifest (a new one was entered at its create).
                    s.manifest = Manifest::Appending;
                    self.status.enter(Category::Manifest);
                    // A trivial move's only step is this edit; an empty flush's first.
                    job_step(&self.status, s);
                }
            }),
            Kind::Wal => with_state(|s| s.wal_written = true),
            _ => {}
        }
        self.inner.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.kind == Kind::Wal {
            with_state(|s| {
                if s.in_call && !s.wal_written && s.rotation == Rotation::Idle {
                    s.rotation = Rotation::Running { created: false };
                    self.status.enter(Category::WalRotation);
                }
            });
        }
        let r = self.inner.sync();
        if self.kind == Kind::Manifest {
            with_state(|s| {
                if s.manifest == Manifest::Appending {
                    s.manifest = Manifest::Idle;
                    self.status.leave(Category::Manifest);
                    if s.compaction {
                        s.compaction = false;
                        self.status.leave(Category::Compaction);
                    }
                }
            });
        }
        r
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl Vfs for TracingFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let kind = self.kind(path);
        with_state(|s| match kind {
            Kind::Manifest if s.manifest == Manifest::Idle => {
                s.manifest = Manifest::Creating { renamed: false };
                self.status.enter(Category::Manifest);
            }
            Kind::Wal => {
                if let Rotation::Running { created } = &mut s.rotation {
                    *created = true;
                }
            }
            Kind::RunTmp => job_step(&self.status, s),
            _ => {}
        });
        let inner = self.inner.create(path)?;
        Ok(Box::new(TracedFile {
            inner,
            kind,
            status: self.status.clone(),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn map(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        self.inner.map(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn chronokv_vfs::RandomAccessFile>> {
        self.inner.open_read(path)
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_size(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let r = self.inner.rename(from, to);
        if r.is_ok() && self.kind(to) == Kind::Current {
            with_state(|s| {
                if let Manifest::Creating { renamed } = &mut s.manifest {
                    *renamed = true;
                }
            });
        }
        r
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let kind = self.kind(path);
        let r = self.inner.remove_file(path);
        if kind == Kind::Wal && role() == Role::Flusher {
            with_state(|s| {
                if s.flush {
                    s.flush = false;
                    self.status.leave(Category::Flush);
                }
            });
        }
        r
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let r = self.inner.sync_dir(dir);
        if dir == self.dir {
            with_state(|s| {
                if s.manifest == (Manifest::Creating { renamed: true }) {
                    s.manifest = Manifest::Idle;
                    self.status.leave(Category::Manifest);
                }
                if s.rotation == (Rotation::Running { created: true }) {
                    s.rotation = Rotation::Idle;
                    self.status.leave(Category::WalRotation);
                }
            });
        }
        r
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
    use super::super::{options, status};
    use super::*;
    use chronokv::vfs::MemFs;
    use chronokv::{Db, WriteBatch};

    /// Every kind of work the tracer recognises happens in a small workload on `MemFs`, and
    /// every start is matched by an end once the database is idle and closed.
    #[test]
    fn recognises_the_engines_work_and_balances_every_start() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("status");
        let st = Arc::new(Status::create(&path).unwrap());
        let dir = Path::new("/db");
        let vfs = Arc::new(TracingFs::new(Arc::new(MemFs::new()), dir, st.clone()));
        let db = Db::open(dir, options(vfs, 1)).unwrap();
        for i in 0..3000u32 {
            begin_call();
            let mut b = WriteBatch::new();
            b.put(
                format!("k{:04}", i % 700),
                vec![b'v'; 100 + (i % 50) as usize],
            );
            if i % 3 == 0 {
                b.delete(format!("k{:04}", (i * 7) % 700));
            }
            db.write(b).unwrap();
            end_call();
        }
        db.wait_for_compactions().unwrap();
        db.close().unwrap();
        let snap = status::read(&path);
        assert!(snap.active.is_empty(), "still active: {:?}", snap.active);
        for cat in [
            Category::Flush,
            Category::Compaction,
            Category::Manifest,
            Category::WalRotation,
        ] {
            assert!(
                snap.started_ops[cat as usize] > 0,
                "no {}: {:?}",
                cat.name(),
                snap.started_ops
            );
        }
        // Opening wrote a manifest too, but no rotation came from the close's WAL fsync.
        assert_eq!(
            snap.started_ops[Category::WalRotation as usize],
            snap.started_ops[Category::Flush as usize],
            "one rotation per flushed memtable"
        );
    }
}
