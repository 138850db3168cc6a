//! [`FaultFs`]: wraps another [`Vfs`] and injects I/O errors, counting the calls it sees.
//!
//! Two ways to inject:
//!
//! - Switches ([`FaultFs::fail_writes`], [`FaultFs::fail_syncs`]): while on, every file
//!   write or sync fails with EIO.
//! - A planned fault ([`FaultFs::inject`]): the N-th *mutating* call (create_dir_all,
//!   create, write, file sync, rename, remove, directory sync, link; counted from 1 over the
//!   wrapper's life) fails with EIO or ENOSPC, either only that call ([`FaultMode::Once`]) or
//!   that call and every later mutating call ([`FaultMode::Forever`]).
//!
//! What a failed call leaves behind: a failing write first writes half of its buffer (a
//! short write followed by the error, as a full disk or a dying device may leave); a failing
//! sync does not reach the wrapped file system, so nothing it would have made durable is
//! durable (on `MemFs` the synced length stays where it was); a failing create, rename,
//! remove, link or directory sync changes nothing.

use crate::{DirLock, MappedFile, Vfs, WritableFile};
use parking_lot::Mutex;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The error a planned fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `EIO` (errno 5): the device failed.
    Eio,
    /// `ENOSPC` (errno 28): the file system is full.
    Enospc,
}

impl FaultKind {
    /// The `io::Error` this kind stands for (a real OS error code, so `kind()` is what the
    /// operating system would give: `StorageFull` for ENOSPC).
    pub fn error(self) -> io::Error {
        match self {
            FaultKind::Eio => io::Error::from_raw_os_error(5),
            FaultKind::Enospc => io::Error::from_raw_os_error(28),
        }
    }
}

/// How long a planned fault lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultMode {
    /// Only the chosen call fails.
    Once,
    /// The chosen call and every later mutating call fail.
    Forever,
}

/// A mutating call, as [`FaultFs`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MutatingOp {
    /// [`Vfs::create_dir_all`](crate::Vfs::create_dir_all).
    CreateDir,
    /// Creating (or truncating) a file.
    Create,
    /// A write to an open file.
    Write,
    /// An fsync of a file.
    Sync,
    /// A rename.
    Rename,
    /// A file removal.
    Remove,
    /// An fsync of a directory.
    SyncDir,
    /// A hard link.
    Link,
    /// A change of an open file's size ([`WritableFile::set_size`](crate::WritableFile::set_size)).
    SetSize,
}

/// A mutating call that failed because of a planned fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFailure {
    /// The call's number (1 = the first mutating call).
    pub call: u64,
    /// What the call was.
    pub op: MutatingOp,
    /// The file or directory (for a rename, the source; for a link, the new name).
    pub path: PathBuf,
    /// The error it returned.
    pub kind: FaultKind,
    /// The name of the thread that made the call, if it has one.
    pub thread: Option<String>,
}

/// One mutating call, as [`FaultFs::record_calls`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The call's number (1 = the first mutating call).
    pub call: u64,
    /// What the call was.
    pub op: MutatingOp,
    /// The file or directory (for a rename, the source).
    pub path: PathBuf,
    /// The name of the thread that made the call, if it has one.
    pub thread: Option<String>,
    /// The error a planned fault returned, if it failed.
    pub failed: Option<FaultKind>,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    at: u64,
    kind: FaultKind,
    mode: FaultMode,
}

#[derive(Debug, Default)]
struct Controls {
    fail_writes: AtomicBool,
    fail_syncs: AtomicBool,
    writes: AtomicU64,
    syncs: AtomicU64,
    mutations: AtomicU64,
    plan: Mutex<Option<Plan>>,
    failures: Mutex<Vec<InjectedFailure>>,
    recording: AtomicBool,
    records: Mutex<Vec<CallRecord>>,
}

impl Controls {
    /// Counts a mutating call on `path` and returns the planned error if it must fail.
    fn mutate(&self, op: MutatingOp, path: &Path) -> Option<io::Error> {
        let call = self.mutations.fetch_add(1, Ordering::SeqCst) + 1;
        let plan = *self.plan.lock();
        let hit = plan.filter(|p| match p.mode {
            FaultMode::Once => call == p.at,
            FaultMode::Forever => call >= p.at,
        });
        let thread = || std::thread::current().name().map(str::to_owned);
        if self.recording.load(Ordering::SeqCst) {
            self.records.lock().push(CallRecord {
                call,
                op,
                path: path.to_path_buf(),
                thread: thread(),
                failed: hit.map(|p| p.kind),
            });
        }
        let plan = hit?;
        self.failures.lock().push(InjectedFailure {
            call,
            op,
            path: path.to_path_buf(),
            kind: plan.kind,
            thread: thread(),
        });
        Some(plan.kind.error())
    }
}

/// A fault-injecting wrapper around a [`Vfs`]; clones share the switches, plan and counters.
#[derive(Debug, Clone)]
pub struct FaultFs {
    inner: Arc<dyn Vfs>,
    ctl: Arc<Controls>,
}

impl FaultFs {
    /// Wraps `inner`; no fault is injected until a switch is turned on or a fault planned.
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

    /// Mutating calls seen so far (failed ones included).
    pub fn mutations(&self) -> u64 {
        self.ctl.mutations.load(Ordering::SeqCst)
    }

    /// Plans a fault: mutating call number `at` (counted from 1 since this wrapper was
    /// made, so `mutations() + 1` is the next call) fails with `kind`, once or from then on.
    /// Replaces any earlier plan.
    pub fn inject(&self, at: u64, kind: FaultKind, mode: FaultMode) {
        *self.ctl.plan.lock() = Some(Plan { at, kind, mode });
    }

    /// Cancels the planned fault: later calls succeed (the switches are not touched).
    pub fn clear_fault(&self) {
        *self.ctl.plan.lock() = None;
    }

    /// The calls a planned fault failed so far, in order.
    pub fn injected(&self) -> Vec<InjectedFailure> {
        self.ctl.failures.lock().clone()
    }

    /// How many calls a planned fault failed so far.
    pub fn injected_count(&self) -> usize {
        self.ctl.failures.lock().len()
    }

    /// From now on, keep a record of every mutating call (for debugging a failed run).
    pub fn record_calls(&self) {
        self.ctl.recording.store(true, Ordering::SeqCst);
    }

    /// The mutating calls recorded so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.ctl.records.lock().clone()
    }
}

fn injected() -> io::Error {
    io::Error::other("injected EIO")
}

#[derive(Debug)]
struct FaultFile {
    inner: Box<dyn WritableFile>,
    ctl: Arc<Controls>,
    path: PathBuf,
}

impl WritableFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.ctl.writes.fetch_add(1, Ordering::SeqCst);
        let planned = self.ctl.mutate(MutatingOp::Write, &self.path);
        let switched = self.ctl.fail_writes.load(Ordering::SeqCst);
        if planned.is_some() || switched {
            self.inner.write_all(&buf[..buf.len() / 2])?;
            return Err(planned.unwrap_or_else(injected));
        }
        self.inner.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.ctl.syncs.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.ctl.mutate(MutatingOp::Sync, &self.path) {
            return Err(e);
        }
        if self.ctl.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.sync()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn set_size(&mut self, size: u64) -> io::Result<()> {
        if let Some(e) = self.ctl.mutate(MutatingOp::SetSize, &self.path) {
            return Err(e);
        }
        if self.ctl.fail_writes.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.set_size(size)
    }
}

impl FaultFs {
    fn check(&self, op: MutatingOp, path: &Path) -> io::Result<()> {
        match self.ctl.mutate(op, path) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Vfs for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check(MutatingOp::CreateDir, dir)?;
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.check(MutatingOp::Create, path)?;
        let inner = self.inner.create(path)?;
        Ok(Box::new(FaultFile {
            inner,
            ctl: self.ctl.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        self.inner.map(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn crate::RandomAccessFile>> {
        self.inner.open_read(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_size(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(MutatingOp::Rename, from)?;
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(MutatingOp::Remove, path)?;
        self.inner.remove_file(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(MutatingOp::SyncDir, dir)?;
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.inner.lock(path)
    }
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(MutatingOp::Link, to)?;
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

    /// Runs the same six mutating calls with a fault planned at `at`; returns which calls
    /// failed (1-based) and the errors' raw OS codes.
    fn run_plan(at: u64, kind: FaultKind, mode: FaultMode) -> (MemFs, Vec<u64>, Vec<i32>) {
        let mem = MemFs::new();
        let fs = FaultFs::new(Arc::new(mem.clone()));
        fs.inject(at, kind, mode);
        let d = Path::new("/d");
        let mut results: Vec<(u64, io::Result<()>)> = vec![(1, fs.create_dir_all(d))];
        mem.create_dir_all(d).unwrap();
        match fs.create(&d.join("f")) {
            Ok(mut f) => {
                results.push((3, f.write_all(b"abcd")));
                results.push((4, f.sync()));
            }
            Err(e) => results.push((2, Err(e))),
        }
        results.push((5, fs.sync_dir(d)));
        results.push((6, fs.rename(&d.join("f"), &d.join("g"))));
        let failed = results.iter().filter(|(_, r)| r.is_err());
        let calls = failed.clone().map(|(n, _)| *n).collect();
        let codes = failed
            .map(|(_, r)| r.as_ref().unwrap_err().raw_os_error().unwrap_or(-1))
            .collect();
        (mem, calls, codes)
    }

    #[test]
    fn a_planned_fault_fails_exactly_the_nth_call_once_or_forever() {
        let (mem, failed, codes) = run_plan(3, FaultKind::Enospc, FaultMode::Once);
        assert_eq!(failed, vec![3]);
        assert_eq!(codes, vec![28]);
        // The failed write left half its buffer; the later sync made it durable (under the
        // old name: the rename came after the directory sync).
        assert_eq!(mem.read(Path::new("/d/g")).unwrap(), b"ab");
        assert_eq!(mem.crash_clone().read(Path::new("/d/f")).unwrap(), b"ab");

        let (mem, failed, codes) = run_plan(4, FaultKind::Eio, FaultMode::Forever);
        assert_eq!(failed, vec![4, 5, 6]);
        assert_eq!(codes, vec![5, 5, 5]);
        // The failed sync made nothing durable, and the failed rename changed nothing.
        assert!(mem.exists(Path::new("/d/f")) && !mem.exists(Path::new("/d/g")));
        assert!(!mem.crash_clone().exists(Path::new("/d/f")));

        // The failed create made no file, so the rename fails too (not an injected fault).
        let (_, failed, codes) = run_plan(2, FaultKind::Eio, FaultMode::Once);
        assert_eq!(failed, vec![2, 6]);
        assert_eq!(codes, vec![5, -1]);
        let (_, failed, _) = run_plan(7, FaultKind::Eio, FaultMode::Forever);
        assert!(failed.is_empty());
    }

    #[test]
    fn injected_failures_are_recorded_and_a_cleared_plan_stops_failing() {
        let mem = MemFs::new();
        let fs = FaultFs::new(Arc::new(mem.clone()));
        let d = Path::new("/d");
        fs.create_dir_all(d).unwrap();
        fs.inject(fs.mutations() + 1, FaultKind::Enospc, FaultMode::Forever);
        let err = fs.create(&d.join("f")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(fs.remove_file(&d.join("nothing")).is_err());
        let me = std::thread::current().name().map(str::to_owned);
        assert_eq!(
            fs.injected(),
            vec![
                InjectedFailure {
                    call: 2,
                    op: MutatingOp::Create,
                    path: d.join("f"),
                    kind: FaultKind::Enospc,
                    thread: me.clone(),
                },
                InjectedFailure {
                    call: 3,
                    op: MutatingOp::Remove,
                    path: d.join("nothing"),
                    kind: FaultKind::Enospc,
                    thread: me,
                },
            ]
        );
        fs.clear_fault();
        fs.record_calls();
        let mut f = fs.create(&d.join("f")).unwrap();
        f.write_all(b"x").unwrap();
        f.sync().unwrap();
        assert_eq!(fs.mutations(), 6);
        assert_eq!(fs.injected_count(), 2);
        let calls: Vec<(u64, MutatingOp)> = fs.calls().iter().map(|c| (c.call, c.op)).collect();
        assert_eq!(
            calls,
            vec![
                (4, MutatingOp::Create),
                (5, MutatingOp::Write),
                (6, MutatingOp::Sync)
            ]
        );
        assert!(fs
            .calls()
            .iter()
            .all(|c| c.path == d.join("f") && c.failed.is_none()));
    }
}
