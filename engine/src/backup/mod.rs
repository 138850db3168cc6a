//! Incremental backups: numbered backups of a database in a backup directory, sharing the
//! run files they have in common.
//!
//! ```text
//! <backup dir>/
//!   LOCK                                 held while a BackupEngine has the directory open
//!   BACKUP-000001, BACKUP-000002, ...    one metadata file per backup (docs/format/backup.md)
//!   runs/000012-40960-1a2b3c4d.arrow     run files, shared by every backup that holds them
//!   *.tmp                                files being written; removed by the next create/delete
//! ```
//!
//! Runs are immutable, so a run that an earlier backup already holds is not copied again: a
//! shared copy is named by the run's file number, its size and the checksum in its private
//! tail (which covers the block index and so every block's checksum), so runs of another
//! database, or of a restored copy whose numbers went their own way, never collide.
//!
//! A backup holds what [`crate::Db::checkpoint`] would: [`BackupEngine::create`] flushes,
//! pins the tree, and copies its runs; it contains every version up to the tree's
//! `flushed_version` (a prefix of the commit order, including every commit acknowledged
//! before the call). A read-only handle ([`crate::Db::open_read_only`]) cannot flush and
//! writes nothing into its store: the WAL records it replayed are written into the backup
//! as one more level-0 run instead, so the backup holds every version the handle sees, and
//! a run the writer compacted away since the handle opened it is written again from the
//! open reader (`Inner::rewrite_run`). Copies are written as `.tmp`, fsynced and renamed,
//! the `runs/` folder is fsynced, and the metadata is written last the same way (temp,
//! fsync, rename, directory fsync), so a crash leaves either a complete backup or none
//! (plus unreferenced copies that the next `delete` collects).

pub(crate) mod format;

use crate::checkpoint::{copy_file_with, memtable_run_number, prepare_empty_dir, write_manifest};
use crate::error::{Error, Result};
use crate::files;
use crate::manifest::{RunDesc, TreeState};
use crate::verify::{Problem, ProblemKind, Progress, VerifyReport};
use crate::Db;
use chronokv_runs::{BlockCache, RunReader};
use chronokv_snapshot::{TimeIndex, Version};
use chronokv_vfs::{DirLock, RealFs, Vfs};
use format::{BackupMeta, BackupRun};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const META_PREFIX: &str = "BACKUP-";
const RUNS_DIR: &str = "runs";

/// One backup, as [`BackupEngine::list`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupInfo {
    /// The backup's number (1, 2, ...; never reused in a directory while a later one exists).
    pub id: u64,
    /// When it was made, in microseconds since the Unix epoch.
    pub created_micros: u64,
    /// Every version up to this one, and none after it, is in the backup.
    pub version: Version,
    /// Run files it holds.
    pub runs: usize,
    /// Bytes of those runs.
    pub bytes: u64,
    /// Runs this backup copied when it was made (the others were already held).
    pub copied_runs: usize,
    /// Bytes it copied when it was made.
    pub copied_bytes: u64,
}

impl BackupInfo {
    fn of(meta: &BackupMeta) -> BackupInfo {
        BackupInfo {
            id: meta.id,
            created_micros: meta.created_micros,
            version: meta.flushed_version,
            runs: meta.runs.len(),
            bytes: meta.runs.iter().map(|r| r.desc.file_size).sum(),
            copied_runs: meta.copied_runs as usize,
            copied_bytes: meta.copied_bytes,
        }
    }
}

/// What [`BackupEngine::delete`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteInfo {
    /// Shared run copies no remaining backup holds, removed.
    pub removed_runs: usize,
    /// Their bytes.
    pub removed_bytes: u64,
}

/// A backup directory, open for creating, listing, verifying, restoring and deleting
/// backups. Holds the directory's LOCK while it lives, so two engines (in one process or
/// several) never work on one directory at once.
#[derive(Debug)]
pub struct BackupEngine {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    _lock: Box<dyn DirLock>,
}

impl BackupEngine {
    /// Opens (creating it if missing) the backup directory `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>) -> Result<BackupEngine> {
        Self::open_with_vfs(dir, Arc::new(RealFs))
    }

    /// Opens (creating it if missing) the backup directory `dir` on `vfs`. Fails with
    /// [`Error::Locked`] while another engine has it open.
    pub fn open_with_vfs(dir: impl AsRef<Path>, vfs: Arc<dyn Vfs>) -> Result<BackupEngine> {
        let dir = dir.as_ref().to_path_buf();
        let runs = dir.join(RUNS_DIR);
        if !vfs.exists(&runs) {
            vfs.create_dir_all(&runs).map_err(|e| Error::io(&runs, e))?;
            vfs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                vfs.sync_dir(parent).map_err(|e| Error::io(parent, e))?;
            }
        }
        let lock = files::lock_dir(vfs.as_ref(), &dir)?;
        Ok(BackupEngine {
            dir,
            vfs,
            _lock: lock,
        })
    }

    /// The backup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn meta_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{META_PREFIX}{id:06}"))
    }

    fn run_path(&self, run: &BackupRun) -> PathBuf {
        self.dir.join(RUNS_DIR).join(run.shared_name())
    }

    /// The ids of the metadata files present, ascending.
    fn ids(&self) -> Result<Vec<u64>> {
        let names = self
            .vfs
            .list(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        let mut ids: Vec<u64> = names
            .iter()
            .filter_map(|n| n.strip_prefix(META_PREFIX))
            .filter(|d| d.len() >= 6 && d.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|d| d.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn read_meta(&self, id: u64) -> Result<BackupMeta> {
        let path = self.meta_path(id);
        let bytes = self.vfs.read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                Error::InvalidArgument(format!("no backup {id} in {}", self.dir.display()))
            }
            _ => Error::io(&path, e),
        })?;
        let meta = BackupMeta::decode(&path, &bytes)?;
        if meta.id != id {
            return Err(Error::corruption(
                &path,
                8,
                format!("the file of backup {id} holds backup {}", meta.id),
            ));
        }
        Ok(meta)
    }

    /// Every backup, oldest first. A damaged metadata file is an error naming it.
    pub fn list(&self) -> Result<Vec<BackupInfo>> {
        self.ids()?
            .into_iter()
            .map(|id| self.read_meta(id).map(|m| BackupInfo::of(&m)))
            .collect()
    }

    /// Backs up `db`: flushes it, then copies the runs no earlier backup holds. A read-only
    /// `db` is not flushed (nothing is written to its store): its memtable is written into
    /// the backup as one more run.
    pub fn create(&self, db: &Db) -> Result<BackupInfo> {
        self.create_with_progress(db, &mut |_, _| {})
    }

    /// [`BackupEngine::create`], reporting `(bytes copied, bytes to copy)`.
    pub fn create_with_progress(&self, db: &Db, progress: Progress<'_>) -> Result<BackupInfo> {
        let vfs = self.vfs.as_ref();
        self.remove_temp_files()?;
        if !db.is_read_only() {
            db.flush()?;
        }
        let pinned = db.inner().pin_tree()?;
        let ids = self.ids()?;
        let id = match ids.last() {
            None => 1,
            Some(&last) => last.checked_add(1).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} exists, so no backup id is left in {}; delete it (and perhaps \
                     the backups before it) first",
                    self.meta_path(last).display(),
                    self.dir.display()
                ))
            })?,
        };
        // What earlier backups hold (damaged metadata just teaches nothing: such runs are
        // copied again, under the same content-derived name).
        let mut known: HashMap<String, u32> = HashMap::new();
        for old in &ids {
            if let Ok(meta) = self.read_meta(*old) {
                for r in meta.runs {
                    known.insert(r.shared_name(), r.file_crc);
                }
            }
        }
        let mut runs = Vec::with_capacity(pinned.runs.len());
        let mut to_copy = Vec::new();
        let mut to_rewrite = Vec::new();
        for (desc, live) in &pinned.runs {
            let path = live.reader.path();
            if db.is_read_only() && !vfs.exists(path) {
                // Compacted away by the writer since the handle opened it: written again
                // from the open reader below.
                to_rewrite.push((desc.level, live.clone()));
                continue;
            }
            let tail_crc = tail_crc(vfs, path)?;
            let mut run = BackupRun {
                desc: desc.clone(),
                tail_crc,
                file_crc: 0,
            };
            let copy = self.run_path(&run);
            match known.get(&run.shared_name()) {
                Some(crc) if vfs.file_size(&copy).ok() == Some(desc.file_size) => {
                    run.file_crc = *crc;
                }
                _ => to_copy.push((runs.len(), path.to_path_buf())),
            }
            runs.push(run);
        }
        let total: u64 = to_copy.iter().map(|(i, _)| runs[*i].desc.file_size).sum();
        let mut done = 0u64;
        progress(0, total);
        let runs_dir = self.dir.join(RUNS_DIR);
        for (i, from) in &to_copy {
            let run = &mut runs[*i];
            let to = self.run_path(run);
            let tmp = files::tmp_path(&to);
            run.file_crc = copy_file_with(vfs, from, &tmp, &mut |n| {
                done += n;
                progress(done, total);
            })?;
            vfs.rename(&tmp, &to).map_err(|e| Error::io(&to, e))?;
        }
        let (mut flushed_version, mut next_file_number, history_horizon, retention) = (
            pinned.state.flushed_version,
            pinned.state.next_file_number,
            pinned.state.history_horizon,
            pinned.state.retention,
        );
        let mut copied = (to_copy.len(), total);
        let mut written = Vec::new();
        for (level, live) in &to_rewrite {
            let inner = db.inner();
            written.push(self.write_run(live.id(), |p| {
                inner.rewrite_run(self.vfs.clone(), live, *level, p)
            })?);
        }
        if db.is_read_only() {
            if let Some(run) = self.write_memtable(db, &pinned.state)? {
                flushed_version = db.inner().snapshot_version();
                next_file_number = run.desc.file_number + 1;
                written.push(run);
            }
        }
        for run in written {
            copied = (copied.0 + 1, copied.1 + run.desc.file_size);
            runs.push(run);
        }
        let marks = pinned
            .times
            .marks_covering(Version(0), flushed_version)
            .to_vec();
        let times = TimeIndex::from_marks(marks, pinned.times.is_pruned())
            .map_err(|e| Error::InvalidArgument(format!("internal: time index: {}", e.0)))?;
        drop(pinned);
        vfs.sync_dir(&runs_dir)
            .map_err(|e| Error::io(&runs_dir, e))?;
        let meta = BackupMeta {
            id,
            created_micros: now_micros(),
            flushed_version,
            next_file_number,
            copied_runs: copied.0 as u32,
            copied_bytes: copied.1,
            runs,
            history_horizon,
            times,
            retention,
        };
        self.write_meta(&meta)?;
        Ok(BackupInfo::of(&meta))
    }

    /// Writes a read-only `db`'s memtable (the WAL records it replayed; nothing commits to
    /// a read-only store, so it holds exactly the versions after `state.flushed_version` up
    /// to the visible one) into `runs/` as a level-0 run numbered after every run of
    /// `state`. `None` if it is empty.
    fn write_memtable(&self, db: &Db, state: &TreeState) -> Result<Option<BackupRun>> {
        let mem = db.inner().current_view().active.clone();
        if mem.is_empty() {
            return Ok(None);
        }
        let number = memtable_run_number(state);
        let run = self.write_run(number, |path| {
            let meta = db.inner().write_run_file_on(self.vfs.clone(), path, &mem)?;
            Ok(RunDesc::new(0, number, &meta))
        })?;
        Ok(Some(run))
    }

    /// Has `write` write run `number` into `runs/` (durably, as a run writer does), then
    /// names the file by its contents like every shared copy (another store's run with
    /// that number differs in size or tail checksum). The caller syncs `runs/`. A crash
    /// leaves a `.tmp` file (removed by the next create) or an unreferenced run (collected
    /// by the next delete).
    fn write_run(
        &self,
        number: u64,
        write: impl FnOnce(&Path) -> Result<RunDesc>,
    ) -> Result<BackupRun> {
        let vfs = self.vfs.as_ref();
        let written = self
            .dir
            .join(RUNS_DIR)
            .join(format!("{number:06}-written.arrow"));
        let desc = write(&written)?;
        let file_crc = {
            let map = vfs.map(&written).map_err(|e| Error::io(&written, e))?;
            crc32fast::hash(map.bytes())
        };
        let run = BackupRun {
            desc,
            tail_crc: tail_crc(vfs, &written)?,
            file_crc,
        };
        let to = self.run_path(&run);
        vfs.rename(&written, &to).map_err(|e| Error::io(&to, e))?;
        Ok(run)
    }

    fn write_meta(&self, meta: &BackupMeta) -> Result<()> {
        let vfs = self.vfs.as_ref();
        files::replace_durably(vfs, &self.dir, &self.meta_path(meta.id), &meta.encode())
    }

    /// Reads every byte of backup `id`: its metadata's checksum, and for every run the
    /// whole-file checksum, the run's own checksums (every block), and agreement with the
    /// metadata. Returns every problem found.
    pub fn verify(&self, id: u64) -> Result<VerifyReport> {
        self.verify_with_progress(id, &mut |_, _| {})
    }

    /// [`BackupEngine::verify`], reporting `(bytes read, bytes to read)`.
    pub fn verify_with_progress(&self, id: u64, progress: Progress<'_>) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            manifest: Some(self.meta_path(id)),
            ..VerifyReport::default()
        };
        let meta = match self.read_meta(id) {
            Ok(m) => m,
            Err(e @ Error::InvalidArgument(_)) => return Err(e),
            Err(e) => {
                report.problems.push(Problem::from_error(
                    ProblemKind::Backup,
                    &self.meta_path(id),
                    e,
                ));
                return Ok(report);
            }
        };
        report.manifest_edits = 1;
        let total: u64 = meta.runs.iter().map(|r| r.desc.file_size).sum();
        let mut done = 0;
        progress(0, total);
        for run in &meta.runs {
            self.verify_run(run, &mut report);
            done += run.desc.file_size;
            progress(done, total);
        }
        Ok(report)
    }

    fn verify_run(&self, run: &BackupRun, report: &mut VerifyReport) {
        let vfs = self.vfs.as_ref();
        let path = self.run_path(run);
        let mut problem = |kind, offset, detail: String| {
            report
                .problems
                .push(Problem::new(kind, &path, offset, detail));
        };
        let bytes = match vfs.map(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                problem(
                    ProblemKind::MissingRun,
                    None,
                    "the backup holds this run but the file is missing".into(),
                );
                return;
            }
            Err(e) => {
                problem(ProblemKind::Io, None, e.to_string());
                return;
            }
        };
        let size = bytes.bytes().len() as u64;
        if size != run.desc.file_size {
            problem(
                ProblemKind::RunSize,
                Some(size.min(run.desc.file_size)),
                format!(
                    "run is {size} bytes but the backup recorded {}",
                    run.desc.file_size
                ),
            );
        }
        let crc = crc32fast::hash(bytes.bytes());
        if crc != run.file_crc {
            problem(
                ProblemKind::RunCorrupt,
                None,
                format!(
                    "file checksum {crc:08x} differs from the backup's record {:08x}",
                    run.file_crc
                ),
            );
        }
        drop(bytes);
        report.runs += 1;
        report.run_bytes += size;
        match RunReader::open(vfs, &path, run.desc.file_number, BlockCache::new(0)) {
            Err(e) => report.problems.push(Problem::from_error(
                ProblemKind::RunCorrupt,
                &path,
                e.into(),
            )),
            Ok(reader) => {
                let m = reader.meta();
                report.blocks += u64::from(m.block_count);
                report.entries += m.entry_count;
                for e in reader.verify() {
                    report.problems.push(Problem::from_error(
                        ProblemKind::RunCorrupt,
                        &path,
                        e.into(),
                    ));
                }
                let d = &run.desc;
                if (m.entry_count, m.min_version, m.max_version)
                    != (d.entry_count, d.min_version, d.max_version)
                    || (&m.min_key, &m.max_key) != (&d.min_key, &d.max_key)
                {
                    report.problems.push(Problem::new(
                        ProblemKind::RunMismatch,
                        &path,
                        None,
                        "the run's properties disagree with the backup's record of it",
                    ));
                }
            }
        }
    }

    /// Restores backup `id` into `dir`, which must be empty or missing. Every run's checksum
    /// is checked as it is copied (a damaged backup restores nothing); each copy is fsynced,
    /// then the directory, and the manifest and CURRENT are written last. The result opens
    /// with [`Db::open`] and holds exactly the backup's versions.
    pub fn restore(&self, id: u64, dir: impl AsRef<Path>) -> Result<BackupInfo> {
        self.restore_with_progress(id, dir, &mut |_, _| {})
    }

    /// [`BackupEngine::restore`], reporting `(bytes copied, bytes to copy)`.
    pub fn restore_with_progress(
        &self,
        id: u64,
        dir: impl AsRef<Path>,
        progress: Progress<'_>,
    ) -> Result<BackupInfo> {
        let vfs = self.vfs.as_ref();
        let dir = dir.as_ref();
        let meta = self.read_meta(id)?;
        prepare_empty_dir(vfs, dir)?;
        let total: u64 = meta.runs.iter().map(|r| r.desc.file_size).sum();
        let mut done = 0u64;
        progress(0, total);
        let mut written = Vec::new();
        let result = (|| {
            for run in &meta.runs {
                let from = self.run_path(run);
                let to = files::run_path(dir, run.desc.file_number);
                written.push(to.clone());
                let crc = copy_file_with(vfs, &from, &to, &mut |n| {
                    done += n;
                    progress(done, total);
                })?;
                if crc != run.file_crc {
                    return Err(Error::corruption(
                        &from,
                        0,
                        format!(
                            "file checksum {crc:08x} differs from the backup's record {:08x}; \
                             run `chronokv backup verify` for details",
                            run.file_crc
                        ),
                    ));
                }
                let size = vfs.file_size(&to).map_err(|e| Error::io(&to, e))?;
                if size != run.desc.file_size {
                    return Err(Error::corruption(
                        &from,
                        size.min(run.desc.file_size),
                        format!(
                            "run is {size} bytes but the backup recorded {}",
                            run.desc.file_size
                        ),
                    ));
                }
            }
            vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
            let state = TreeState {
                runs: meta
                    .runs
                    .iter()
                    .map(|r| (r.desc.file_number, r.desc.clone()))
                    .collect::<BTreeMap<_, _>>(),
                flushed_version: meta.flushed_version,
                next_file_number: meta.next_file_number,
                min_log_number: 0,
                history_horizon: meta.history_horizon,
                // The restored store keeps the original's history contract (none for a
                // format-1 backup: its first open records one, as for a new store).
                retention: meta.retention,
                times: TimeIndex::new(),
            };
            write_manifest(vfs, dir, &state, &meta.times)
        })();
        if let Err(e) = result {
            // Leave the directory as empty as it was; the restore did not happen.
            for p in &written {
                let _ = vfs.remove_file(p);
            }
            let _ = vfs.sync_dir(dir);
            return Err(e);
        }
        Ok(BackupInfo::of(&meta))
    }

    /// Deletes backup `id`, then every shared run copy no remaining backup holds. Refuses
    /// (changing nothing) if another backup's metadata is damaged, since what it holds is
    /// then unknown.
    pub fn delete(&self, id: u64) -> Result<DeleteInfo> {
        let vfs = self.vfs.as_ref();
        self.read_meta(id).map(|_| ()).or_else(|e| match e {
            // A damaged backup can still be deleted.
            Error::Corruption { .. } => Ok(()),
            e => Err(e),
        })?;
        let mut keep = HashSet::new();
        for other in self.ids()?.into_iter().filter(|&o| o != id) {
            for r in self.read_meta(other)?.runs {
                keep.insert(r.shared_name());
            }
        }
        let path = self.meta_path(id);
        vfs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
        vfs.sync_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        let runs_dir = self.dir.join(RUNS_DIR);
        let mut info = DeleteInfo::default();
        for name in vfs.list(&runs_dir).map_err(|e| Error::io(&runs_dir, e))? {
            if !keep.contains(&name) {
                let p = runs_dir.join(&name);
                info.removed_bytes += vfs.file_size(&p).unwrap_or(0);
                vfs.remove_file(&p).map_err(|e| Error::io(&p, e))?;
                info.removed_runs += 1;
            }
        }
        vfs.sync_dir(&runs_dir)
            .map_err(|e| Error::io(&runs_dir, e))?;
        self.remove_temp_files()?;
        Ok(info)
    }

    /// Removes `.tmp` files an interrupted create left behind.
    fn remove_temp_files(&self) -> Result<()> {
        let vfs = self.vfs.as_ref();
        for dir in [self.dir.clone(), self.dir.join(RUNS_DIR)] {
            for name in vfs.list(&dir).map_err(|e| Error::io(&dir, e))? {
                if name.ends_with(".tmp") {
                    let p = dir.join(name);
                    vfs.remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
        }
        Ok(())
    }
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The `tail_crc` of a run file (`docs/format/run.md`, private tail offset 28). The run was
/// opened, and so checked, by the database.
fn tail_crc(vfs: &dyn Vfs, path: &Path) -> Result<u32> {
    let map = vfs.map(path).map_err(|e| Error::io(path, e))?;
    let b = map.bytes();
    let bad = || Error::corruption(path, 0, "run file too short for its tail");
    let n = b.len();
    let footer_len = b
        .get(n.wrapping_sub(10)..n.wrapping_sub(6))
        .and_then(|s| s.try_into().ok())
        .map(i32::from_le_bytes)
        .ok_or_else(bad)?;
    let tail_end = usize::try_from(footer_len)
        .ok()
        .and_then(|f| (n - 10).checked_sub(f))
        .ok_or_else(bad)?;
    let crc = tail_end
        .checked_sub(12)
        .and_then(|at| b.get(at..at + 4))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(bad)?;
    Ok(crc)
}
