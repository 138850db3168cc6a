//! Verification: read every byte chronokv depends on and report every problem found.
//!
//! Checked: CURRENT names a manifest; the manifest's frames (checksums, decoding); every run
//! the manifest names exists with the recorded size, opens (tail, footer and private region
//! checksums), and every block passes [`chronokv_runs::RunReader::verify`] (block checksum,
//! Arrow decoding, types, key order within and across blocks, index agreement, bloom
//! membership); the run's properties agree with the manifest's descriptor and its versions
//! are covered by the manifest's `flushed_version`; the block index's row counts add up to
//! the entry count; every WAL segment still needed reads cleanly (checksums, entries, version
//! continuity within and across segments, as recovery would replay them).
//!
//! Two entry points: [`crate::Db::verify`] on an open database (it pins the tree so that
//! compactions cannot delete runs while they are read, and reads the WAL segment being
//! written under the WAL lock) and [`verify_dir`] on a directory without opening it (so a
//! store that fails to open can still be examined). Neither changes any file; `verify_dir`
//! only takes the directory's LOCK (creating the LOCK file if it is missing). On a
//! read-only handle, `Db::verify` takes no lock: see `Inner::verify_read_only`.

use crate::error::{Error, Result};
use crate::files::{self, FileKind};
use crate::inner::Inner;
use crate::manifest::{self, RunDesc, TreeState};
use crate::options::Options;
use chronokv_runs::{BlockCache, RunReader};
use chronokv_snapshot::Version;
use chronokv_vfs::Vfs;
use chronokv_wal::RecoveryMode;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What kind of problem verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// CURRENT is missing, unreadable or does not name a manifest.
    Current,
    /// The manifest is missing, unreadable or damaged.
    Manifest,
    /// The manifest names a run whose file is missing.
    MissingRun,
    /// A run's size differs from the size the manifest recorded.
    RunSize,
    /// A run's bytes fail a check (a checksum, the Arrow encoding, key order, the index).
    RunCorrupt,
    /// A run's properties disagree with the manifest's descriptor of it.
    RunMismatch,
    /// A WAL segment is damaged in data that had been synced, or its versions do not
    /// continue the previous segment's.
    WalCorrupt,
    /// The newest WAL segment ends in a damaged frame that no later frame claims was synced:
    /// the mark of a write a crash cut short. The next open drops the bytes from there on.
    WalTornTail,
    /// A backup's metadata file is damaged.
    Backup,
    /// A file could not be read.
    Io,
}

impl ProblemKind {
    /// A short, stable name (`missing-run`, `run-corrupt`, ...), for tools.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Current => "current",
            ProblemKind::Manifest => "manifest",
            ProblemKind::MissingRun => "missing-run",
            ProblemKind::RunSize => "run-size",
            ProblemKind::RunCorrupt => "run-corrupt",
            ProblemKind::RunMismatch => "run-mismatch",
            ProblemKind::WalCorrupt => "wal-corrupt",
            ProblemKind::WalTornTail => "wal-torn-tail",
            ProblemKind::Backup => "backup-metadata",
            ProblemKind::Io => "io",
        }
    }
}

/// One problem: what, in which file, at which byte offset when known.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The file it is in.
    pub file: PathBuf,
    /// The byte offset of the damaged structure, when known.
    pub offset: Option<u64>,
    /// What exactly is wrong.
    pub detail: String,
}

impl Problem {
    pub(crate) fn new(
        kind: ProblemKind,
        file: impl Into<PathBuf>,
        offset: Option<u64>,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            file: file.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// A problem from an engine error, classified by `kind` unless it is an I/O error.
    pub(crate) fn from_error(kind: ProblemKind, file: &Path, err: Error) -> Problem {
        match err {
            Error::Corruption {
                file: f,
                offset,
                reason,
            } => {
                let f = if f.as_os_str().is_empty() {
                    file.to_path_buf()
                } else {
                    f
                };
                Problem::new(kind, f, Some(offset), reason)
            }
            Error::Io { path, source } => {
                Problem::new(ProblemKind::Io, path, None, source.to_string())
            }
            other => Problem::new(kind, file, None, other.to_string()),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.file.display())?;
        if let Some(o) = self.offset {
            write!(f, " at offset {o}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What verification read and every problem it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Every problem found, in the order found (CURRENT and manifest, runs, WAL).
    pub problems: Vec<Problem>,
    /// The live manifest, if CURRENT named one.
    pub manifest: Option<PathBuf>,
    /// Manifest frames read.
    pub manifest_edits: usize,
    /// Runs read.
    pub runs: usize,
    /// Bytes of the runs read.
    pub run_bytes: u64,
    /// Blocks of those runs.
    pub blocks: u64,
    /// Entries of those runs.
    pub entries: u64,
    /// WAL segments read.
    pub wal_segments: usize,
    /// Valid WAL records read.
    pub wal_records: u64,
    /// Bytes of the WAL segments read.
    pub wal_bytes: u64,
    /// chronokv files the manifest does not need (obsolete manifests and WAL segments, runs
    /// of an interrupted flush or compaction, temporary files): not problems, the next open
    /// deletes them. Only [`verify_dir`] and [`crate::Db::verify`] on a read-only handle
    /// report them.
    pub unreferenced: Vec<PathBuf>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reports progress as `(bytes done, bytes total)`.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Verifies the database in `dir` without opening it, through `options.vfs`. Takes the
/// directory's LOCK for the duration, so it fails with [`Error::Locked`] while a `Db` has
/// the directory open (use [`crate::Db::verify`] there). Errors only when nothing can be
/// verified (no such directory, no database, locked); damage is reported in the report.
pub fn verify_dir(dir: impl AsRef<Path>, options: &Options) -> Result<VerifyReport> {
    verify_dir_with_progress(dir, options, &mut |_, _| {})
}

/// [`verify_dir`], reporting progress over the bytes of the runs and WAL segments.
pub fn verify_dir_with_progress(
    dir: impl AsRef<Path>,
    options: &Options,
    progress: Progress<'_>,
) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let vfs = options.vfs.as_ref();
    let names = vfs.list(dir).map_err(|e| Error::io(dir, e))?;
    let kinds: Vec<(String, FileKind)> = names
        .iter()
        .filter_map(|n| files::classify(n).map(|k| (n.clone(), k)))
        .collect();
    if !names.iter().any(|n| n == files::CURRENT) && kinds.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} holds no database",
            dir.display()
        )));
    }
    let _lock = files::lock_dir(vfs, dir)?;

    let mut c = Checker::new(vfs, progress);
    let state = c.read_manifest(dir);
    let live_manifest = c.report.manifest.clone();

    // Which runs to read: the manifest's, or, without a readable manifest, every run file
    // present (so damage in them is still found).
    let mut runs: Vec<(PathBuf, Option<RunDesc>)> = match &state {
        Some(s) => s
            .runs
            .values()
            .map(|d| (files::run_path(dir, d.file_number), Some(d.clone())))
            .collect(),
        None => kinds
            .iter()
            .filter(|(_, k)| matches!(k, FileKind::Run(_)))
            .map(|(n, _)| (dir.join(n), None))
            .collect(),
    };
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    let min_log = state.as_ref().map_or(0, |s| s.min_log_number);
    let wal = files::live_wal_numbers(kinds.iter().map(|(_, k)| k), min_log);

    c.report.unreferenced = unreferenced(dir, &kinds, state.as_ref(), live_manifest.as_deref());

    c.total = runs
        .iter()
        .map(|(p, _)| vfs.file_size(p).unwrap_or(0))
        .sum::<u64>()
        + wal
            .iter()
            .map(|n| vfs.file_size(&files::wal_path(dir, *n)).unwrap_or(0))
            .sum::<u64>();
    let flushed = state.as_ref().map(|s| s.flushed_version);
    for (path, desc) in &runs {
        c.check_run(path, desc.as_ref(), flushed);
    }
    let mut expected = flushed.map(|v| v.0);
    for (i, n) in wal.iter().enumerate() {
        c.check_wal(
            &files::wal_path(dir, *n),
            *n,
            i + 1 == wal.len(),
            &mut expected,
        );
    }
    Ok(c.report)
}

/// The chronokv files of `dir` (`kinds`) that the manifest `state` (read from `live`) does
/// not need, sorted.
fn unreferenced(
    dir: &Path,
    kinds: &[(String, FileKind)],
    state: Option<&TreeState>,
    live: Option<&Path>,
) -> Vec<PathBuf> {
    let min_log = state.map_or(0, |s| s.min_log_number);
    let mut found: Vec<PathBuf> = kinds
        .iter()
        .filter(|(name, kind)| match (kind, state) {
            (FileKind::Temp, _) => true,
            (FileKind::Manifest(_), _) => live != Some(dir.join(name).as_path()),
            (FileKind::Wal(n), _) => *n < min_log,
            (FileKind::Run(n), Some(s)) => !s.runs.contains_key(n),
            (FileKind::Run(_), None) => false,
        })
        .map(|(name, _)| dir.join(name))
        .collect();
    found.sort();
    found
}

impl Inner {
    /// Verifies an open database (see the module documentation).
    pub(crate) fn verify(&self, progress: Progress<'_>) -> Result<VerifyReport> {
        if self.health().is_read_only() {
            return self.verify_read_only(progress);
        }
        let vfs = self.vfs().as_ref();
        let mut c = Checker::new(vfs, progress);
        // The manifest on disk must decode to the tree the engine holds. Both are read under
        // the tree lock, which every manifest append holds.
        let pinned = {
            let tree = self.tree().lock();
            let path = tree.manifest.path().to_path_buf();
            c.report.manifest = Some(path.clone());
            match manifest::dump(vfs, &path) {
                Ok(d) => {
                    c.report.manifest_edits = d.frames.len();
                    let (disk, mem) = (&d.state, &tree.state);
                    if disk.runs != mem.runs
                        || disk.flushed_version != mem.flushed_version
                        || disk.min_log_number != mem.min_log_number
                        || disk.history_horizon != mem.history_horizon
                    {
                        c.report.problems.push(Problem::new(
                            ProblemKind::Manifest,
                            &path,
                            None,
                            "the manifest on disk describes another tree than the open database holds",
                        ));
                    }
                }
                Err(e) => {
                    c.report
                        .problems
                        .push(Problem::from_error(ProblemKind::Manifest, &path, e))
                }
            }
            match manifest::current(vfs, self.dir()) {
                Ok(Some(p)) if p == path => {}
                Ok(_) => c.report.problems.push(Problem::new(
                    ProblemKind::Current,
                    self.dir().join(files::CURRENT),
                    None,
                    format!("CURRENT does not name the live manifest {}", path.display()),
                )),
                Err(e) => c.report.problems.push(Problem::from_error(
                    ProblemKind::Current,
                    &self.dir().join(files::CURRENT),
                    e,
                )),
            }
            drop(tree);
            self.pin_tree()?
        };
        // Segments of memtables not yet flushed, then the one being written.
        let view = self.current_view();
        let mut logs: Vec<u64> = view.immutables.iter().map(|m| m.log_number()).collect();
        logs.sort_unstable();
        drop(view);
        c.total = pinned.runs.iter().map(|(d, _)| d.file_size).sum();
        for (desc, run) in &pinned.runs {
            c.check_run(
                run.reader.path(),
                Some(desc),
                Some(pinned.state.flushed_version),
            );
        }
        drop(pinned);
        let mut expected = None;
        for n in logs {
            let path = files::wal_path(self.dir(), n);
            // A flush may retire the segment at any moment: then there is nothing to check.
            c.check_wal_if_present(&path, n, false, &mut expected);
        }
        // No commit appends to the active segment while the WAL lock is held.
        let mut wal = self.writer().lock_wal();
        let segment = wal.segment()?;
        let (n, path) = (segment.log_number(), segment.path().to_path_buf());
        let mut expected = None;
        c.check_wal(&path, n, true, &mut expected);
        drop(wal);
        Ok(c.report)
    }
}

impl Inner {
    /// Verifies a read-only store, which a writer may be changing (`read_only`): the
    /// manifest CURRENT names now (checked for damage; it may describe a newer tree than
    /// the one this store opened), the runs this store holds open, and the WAL segments
    /// that manifest still needs, as they are now. A segment the writer deleted meanwhile (it
    /// flushed it) is skipped; the newest one may end in a frame being written, which is
    /// reported as a torn tail, as `verify_dir` would. Files the manifest read now does not
    /// need are listed as `unreferenced` (beside a writer, that includes a run it is writing).
    fn verify_read_only(&self, progress: Progress<'_>) -> Result<VerifyReport> {
        let vfs = self.vfs().as_ref();
        let dir = self.dir();
        let mut c = Checker::new(vfs, progress);
        // The directory is listed before the manifest is read: a WAL segment missing from
        // the listing was flushed by then, so the manifest read after it covers its versions.
        let names = vfs.list(dir).map_err(|e| Error::io(dir, e))?;
        let current = c.read_manifest(dir);
        let pinned = self.pin_tree()?;
        let (min_log, flushed_now) = current.as_ref().map_or(
            (pinned.state.min_log_number, pinned.state.flushed_version),
            |s| (s.min_log_number, s.flushed_version),
        );
        let kinds: Vec<(String, FileKind)> = names
            .iter()
            .filter_map(|n| files::classify(n).map(|k| (n.clone(), k)))
            .collect();
        c.report.unreferenced = unreferenced(
            dir,
            &kinds,
            current.as_ref(),
            c.report.manifest.clone().as_deref(),
        );
        let wal = files::live_wal_numbers(kinds.iter().map(|(_, k)| k), min_log);
        c.total = pinned.runs.iter().map(|(d, _)| d.file_size).sum::<u64>()
            + wal
                .iter()
                .map(|n| vfs.file_size(&files::wal_path(dir, *n)).unwrap_or(0))
                .sum::<u64>();
        let flushed = pinned.state.flushed_version;
        for (desc, run) in &pinned.runs {
            c.check_run_if_named(dir, run.reader.path(), desc, flushed);
        }
        drop(pinned);
        let mut expected = Some(flushed_now.0);
        for (i, &n) in wal.iter().enumerate() {
            let path = files::wal_path(dir, n);
            if !c.check_wal_if_present(&path, n, i + 1 == wal.len(), &mut expected) {
                // Flushed by the writer: where the next segment's versions start is unknown.
                expected = None;
            }
        }
        Ok(c.report)
    }
}

struct Checker<'a> {
    vfs: &'a dyn Vfs,
    report: VerifyReport,
    progress: Progress<'a>,
    done: u64,
    total: u64,
}

impl<'a> Checker<'a> {
    fn new(vfs: &'a dyn Vfs, progress: Progress<'a>) -> Self {
        Checker {
            vfs,
            report: VerifyReport::default(),
            progress,
            done: 0,
            total: 0,
        }
    }

    fn problem(&mut self, kind: ProblemKind, file: &Path, offset: Option<u64>, detail: String) {
        self.report
            .problems
            .push(Problem::new(kind, file, offset, detail));
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        self.total = self.total.max(self.done);
        (self.progress)(self.done, self.total);
    }

    /// Reads CURRENT and the manifest; the tree state if they are readable.
    fn read_manifest(&mut self, dir: &Path) -> Option<TreeState> {
        let current = dir.join(files::CURRENT);
        let path = match manifest::current(self.vfs, dir) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.problem(
                    ProblemKind::Current,
                    &current,
                    None,
                    "CURRENT is missing".into(),
                );
                return None;
            }
            Err(e) => {
                self.report
                    .problems
                    .push(Problem::from_error(ProblemKind::Current, &current, e));
                return None;
            }
        };
        self.report.manifest = Some(path.clone());
        if !self.vfs.exists(&path) {
            self.problem(
                ProblemKind::Manifest,
                &path,
                None,
                "CURRENT names this manifest but the file is missing".into(),
            );
            return None;
        }
        match manifest::dump(self.vfs, &path) {
            Ok(d) => {
                self.report.manifest_edits = d.frames.len();
                Some(d.state)
            }
            Err(e) => {
                self.report
                    .problems
                    .push(Problem::from_error(ProblemKind::Manifest, &path, e));
                None
            }
        }
    }

    /// Checks one run file against its manifest descriptor (if known).
    fn check_run(&mut self, path: &Path, desc: Option<&RunDesc>, flushed: Option<Version>) {
        let size = match self.vfs.file_size(path) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.problem(
                    ProblemKind::MissingRun,
                    path,
                    None,
                    "the manifest names this run but the file is missing".into(),
                );
                return;
            }
            Err(e) => {
                self.problem(ProblemKind::Io, path, None, e.to_string());
                return;
            }
        };
        self.report.runs += 1;
        self.report.run_bytes += size;
        if let Some(d) = desc {
            if size != d.file_size {
                self.problem(
                    ProblemKind::RunSize,
                    path,
                    Some(size.min(d.file_size)),
                    format!(
                        "run is {size} bytes but the manifest recorded {}",
                        d.file_size
                    ),
                );
            }
        }
        let number = desc.map_or(0, |d| d.file_number);
        // A private cache: verification must read the bytes, not cached blocks.
        let reader = match RunReader::open(self.vfs, path, number, BlockCache::new(0)) {
            Ok(r) => r,
            Err(e) => {
                self.report.problems.push(Problem::from_error(
                    ProblemKind::RunCorrupt,
                    path,
                    e.into(),
                ));
                self.advance(size);
                return;
            }
        };
        let meta = reader.meta().clone();
        self.report.blocks += u64::from(meta.block_count);
        self.report.entries += meta.entry_count;
        for e in reader.verify() {
            self.report
                .problems
                .push(Problem::from_error(ProblemKind::RunCorrupt, path, e.into()));
        }
        let rows: u64 = reader
            .layout()
            .blocks
            .iter()
            .map(|b| u64::from(b.rows))
            .sum();
        if rows != meta.entry_count {
            self.problem(
                ProblemKind::RunCorrupt,
                path,
                None,
                format!(
                    "the block index holds {rows} rows but the header says {} entries",
                    meta.entry_count
                ),
            );
        }
        if let Some(d) = desc {
            let mut differs = Vec::new();
            if d.entry_count != meta.entry_count {
                differs.push(format!(
                    "entry count {} (manifest {})",
                    meta.entry_count, d.entry_count
                ));
            }
            if (d.min_version, d.max_version) != (meta.min_version, meta.max_version) {
                differs.push(format!(
                    "versions {}..{} (manifest {}..{})",
                    meta.min_version, meta.max_version, d.min_version, d.max_version
                ));
            }
            if (&d.min_key, &d.max_key) != (&meta.min_key, &meta.max_key) {
                differs.push("key range".to_string());
            }
            if !differs.is_empty() {
                self.problem(
                    ProblemKind::RunMismatch,
                    path,
                    None,
                    format!(
                        "the run disagrees with the manifest: {}",
                        differs.join(", ")
                    ),
                );
            }
        }
        if let Some(f) = flushed {
            if meta.max_version > f {
                self.problem(
                    ProblemKind::RunMismatch,
                    path,
                    None,
                    format!(
                        "the run holds {} but the manifest says only versions up to {f} were flushed",
                        meta.max_version
                    ),
                );
            }
        }
        self.advance(size);
    }

    /// [`Checker::check_wal`] for a segment that may be deleted concurrently (a sealed
    /// memtable's, which the flusher retires): a segment gone before or while it is read is
    /// skipped, not reported.
    /// [`Checker::check_run`] for a run that a writer in another process may delete once a
    /// compaction retired it (holding it open in this process does not stop that): a run
    /// that is gone and that the manifest on disk no longer names is skipped. A writer
    /// deletes a run only after the edit that stops naming it, so a run still named is
    /// really missing.
    fn check_run_if_named(&mut self, dir: &Path, path: &Path, desc: &RunDesc, flushed: Version) {
        let before = self.report.problems.len();
        let r = &self.report;
        let saved = (r.runs, r.run_bytes, r.blocks, r.entries);
        self.check_run(path, Some(desc), Some(flushed));
        if self.vfs.exists(path) {
            return;
        }
        let named = match manifest::current(self.vfs, dir) {
            Ok(Some(m)) => manifest::read(self.vfs, &m)
                .map_or(true, |state| state.runs.contains_key(&desc.file_number)),
            _ => true,
        };
        if !named {
            let r = &mut self.report;
            r.problems.truncate(before);
            (r.runs, r.run_bytes, r.blocks, r.entries) = saved;
        }
    }

    /// [`Checker::check_wal`], unless the segment is gone (a flush retired it meanwhile):
    /// then it reports nothing and returns false.
    fn check_wal_if_present(
        &mut self,
        path: &Path,
        number: u64,
        newest: bool,
        expected: &mut Option<u64>,
    ) -> bool {
        let before = self.report.problems.len();
        let saved = (
            self.report.wal_segments,
            self.report.wal_bytes,
            self.report.wal_records,
        );
        self.check_wal(path, number, newest, expected);
        let vanished = self.report.problems[before..]
            .iter()
            .any(|p| p.kind == ProblemKind::Io)
            || !self.vfs.exists(path);
        if vanished {
            self.report.problems.truncate(before);
            (
                self.report.wal_segments,
                self.report.wal_bytes,
                self.report.wal_records,
            ) = saved;
        }
        !vanished
    }

    /// Checks one WAL segment; `expected` carries the last version seen (across segments).
    fn check_wal(&mut self, path: &Path, number: u64, newest: bool, expected: &mut Option<u64>) {
        let size = self.vfs.file_size(path).unwrap_or(0);
        self.report.wal_segments += 1;
        self.report.wal_bytes += size;
        match chronokv_wal::read_segment(
            self.vfs,
            path,
            number,
            newest,
            RecoveryMode::TolerateTornTail,
        ) {
            Err(e) => {
                self.report.problems.push(Problem::from_error(
                    ProblemKind::WalCorrupt,
                    path,
                    e.into(),
                ));
            }
            Ok(contents) => {
                self.report.wal_records += contents.records.len() as u64;
                for rec in &contents.records {
                    if rec.count == 0 {
                        continue;
                    }
                    if let Some(last) = *expected {
                        if rec.last_version().0 <= last {
                            continue; // already flushed (or replayed from an older segment)
                        }
                        if rec.first_version.0 > last + 1 {
                            self.problem(
                                ProblemKind::WalCorrupt,
                                path,
                                Some(rec.offset),
                                format!(
                                    "version gap: expected v{} next, found v{}",
                                    last + 1,
                                    rec.first_version.0
                                ),
                            );
                        }
                    }
                    *expected = Some(expected.unwrap_or(0).max(rec.last_version().0));
                }
                if let Some(d) = contents.damage {
                    self.problem(
                        ProblemKind::WalTornTail,
                        path,
                        Some(d.offset),
                        format!(
                            "{}; the next open drops the {} bytes from here (a write cut short by a crash, or a truncated file)",
                            d.reason,
                            size.saturating_sub(d.offset)
                        ),
                    );
                }
            }
        }
        self.advance(size);
    }
}
