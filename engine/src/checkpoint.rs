//! Checkpoints: a consistent, openable copy of a database in another directory, made with
//! hard links where the file system allows (run files are immutable) and copies otherwise.
//!
//! What a checkpoint contains: [`crate::Db::checkpoint`] first flushes, so every commit
//! acknowledged before the call is in a run; then it pins the tree the manifest describes
//! (under the tree lock, which every manifest edit and view swap holds, so the runs and the
//! manifest state agree) and holds the runs (`Arc<LiveRun>`) so that no compaction can delete
//! their files while they are linked or copied. The checkpoint holds exactly the versions up
//! to the pinned state's `flushed_version` (a prefix of the commit order: flushes happen in
//! commit order and a batch never spans two memtables), no WAL, and a fresh manifest that
//! carries the history horizon and the commit-time marks of those versions (so
//! `snapshot_as_of` and `history` answer on the copy as on the original).
//!
//! A read-only handle's runs may have been compacted away by the writer since it opened
//! them: such a run is written again from the open reader (`Inner::rewrite_run`), and its
//! memtable (the WAL records it replayed) becomes one more run (`checkpoint_memtable`).
//!
//! Durability: every copied file is fsynced, and the directory is fsynced after the links and
//! copies; the manifest and CURRENT are written last (`ManifestWriter::create`: manifest,
//! fsync, directory fsync, CURRENT.tmp, fsync, rename, directory fsync). A crash before
//! CURRENT exists leaves a directory that holds no database (opening it with
//! `create_if_missing` starts empty and deletes the stray runs).

use crate::error::{Error, Result};
use crate::files;
use crate::inner::Inner;
use crate::manifest::{ManifestWriter, RunDesc, TreeState};
use crate::view::LiveRun;
use chronokv_runs::RunWriter;
use chronokv_snapshot::{TimeIndex, Version};
use chronokv_vfs::Vfs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What [`crate::Db::checkpoint`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointInfo {
    /// The checkpoint's directory.
    pub dir: PathBuf,
    /// Every version up to this one (and none after it) is in the checkpoint.
    pub version: Version,
    /// Run files in the checkpoint.
    pub runs: usize,
    /// How many of them are hard links to the database's files.
    pub linked: usize,
    /// How many were copied (the file system refused a link).
    pub copied: usize,
    /// Bytes of the run files.
    pub bytes: u64,
}

/// The tree as the manifest records it, with its runs held open so their files stay.
pub(crate) struct PinnedTree {
    pub state: TreeState,
    /// The version <-> commit-time index at the same moment (a manifest written from the
    /// pin keeps the marks of versions up to `state.flushed_version`).
    pub times: TimeIndex,
    /// Every run of `state`, in file-number order, with its descriptor.
    pub runs: Vec<(RunDesc, Arc<LiveRun>)>,
}

impl Inner {
    /// Pins the manifest's tree. Takes the tree lock, under which manifest edits are applied
    /// and the view is swapped, so the view's runs are exactly the state's.
    /// A poisoned engine refuses: a manifest edit that failed half-way (appended, then the
    /// manifest rotation failed) leaves the state ahead of the view, and the poison mark is
    /// set under the same lock.
    pub(crate) fn pin_tree(&self) -> Result<PinnedTree> {
        let tree = self.tree().lock();
        // A read-only store never edits its manifest, so its state and view always agree.
        self.health().check_not_poisoned()?;
        let view = self.current_view();
        let state = tree.state.clone();
        // `times` may be taken while `tree` is held (see inner.rs's lock order).
        let times = self.times().clone();
        drop(tree);
        let mut runs = Vec::with_capacity(state.runs.len());
        for desc in state.runs.values() {
            let run = view
                .runs()
                .find(|(_, r)| r.id() == desc.file_number)
                .map(|(_, r)| r.clone())
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "internal: the manifest names run {} but the read view lacks it",
                        desc.file_number
                    ))
                })?;
            runs.push((desc.clone(), run));
        }
        Ok(PinnedTree { state, times, runs })
    }

    pub(crate) fn checkpoint(&self, dir: &Path) -> Result<CheckpointInfo> {
        let vfs = self.vfs().as_ref();
        prepare_empty_dir(vfs, dir)?;
        let mut pinned = self.pin_tree()?;
        let mut info = CheckpointInfo {
            dir: dir.to_path_buf(),
            version: pinned.state.flushed_version,
            runs: pinned.runs.len(),
            linked: 0,
            copied: 0,
            bytes: 0,
        };
        for (desc, run) in &mut pinned.runs {
            let to = files::run_path(dir, desc.file_number);
            if self.health().is_read_only() && !vfs.exists(run.reader.path()) {
                *desc = self.rewrite_run(self.vfs().clone(), run, desc.level, &to)?;
                pinned.state.runs.insert(desc.file_number, desc.clone());
                info.copied += 1;
            } else if vfs.link(run.reader.path(), &to).is_ok() {
                info.linked += 1;
            } else {
                copy_file(vfs, run.reader.path(), &to)?;
                info.copied += 1;
            }
            let size = vfs.file_size(&to).map_err(|e| Error::io(&to, e))?;
            if size != desc.file_size {
                return Err(Error::corruption(
                    &to,
                    size.min(desc.file_size),
                    format!(
                        "checkpoint copy is {size} bytes but the manifest records {}",
                        desc.file_size
                    ),
                ));
            }
            info.bytes += size;
        }
        if self.health().is_read_only() {
            self.checkpoint_memtable(dir, &mut pinned, &mut info)?;
        }
        vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        write_manifest(vfs, dir, &pinned.state, &pinned.times)?;
        Ok(info)
    }

    /// Writes the entries of `run` into a new file at `to` on `vfs`, at `level`: for a
    /// read-only handle's run that the writer deleted (compacted away) after the handle
    /// opened it. The open reader still reads the file (Unix keeps a deleted file's data
    /// while a descriptor holds it), where a link or a copy by path cannot. The same entries
    /// in the same order, so only the file's size and layout may differ from the original;
    /// the returned descriptor records the new file.
    pub(crate) fn rewrite_run(
        &self,
        vfs: Arc<dyn Vfs>,
        run: &LiveRun,
        level: u32,
        to: &Path,
    ) -> Result<RunDesc> {
        let options = self.run_options(level as usize);
        let mut writer = RunWriter::create(vfs, to, options)?;
        for e in run.reader.scan_uncached() {
            let e = e?;
            writer.add(&e.key, e.version, e.time, e.kind, &e.value)?;
        }
        let meta = writer.finish()?;
        Ok(RunDesc::new(level, run.id(), &meta))
    }

    /// A read-only store cannot flush, and its memtable holds the commits it replayed from
    /// the WAL: they go into the checkpoint as one more level-0 run (newer than every run
    /// linked, as its file number is), so the copy holds every version the store sees.
    /// Nothing commits to a read-only store, so the memtable and the visible version are
    /// those of the open.
    fn checkpoint_memtable(
        &self,
        dir: &Path,
        pinned: &mut PinnedTree,
        info: &mut CheckpointInfo,
    ) -> Result<()> {
        let mem = self.current_view().active.clone();
        if mem.is_empty() {
            return Ok(());
        }
        let state = &mut pinned.state;
        let number = memtable_run_number(state);
        let path = files::run_path(dir, number);
        let meta = self.write_run_file(&path, &mem)?;
        info.runs += 1;
        info.bytes += meta.file_size;
        state.runs.insert(number, RunDesc::new(0, number, &meta));
        state.next_file_number = number + 1;
        state.flushed_version = self.snapshot_version();
        info.version = state.flushed_version;
        Ok(())
    }
}

/// The file number of the run a read-only handle's memtable becomes in a copy of `state`
/// (a checkpoint or a backup): after every number `state` names or has handed out, so the
/// run is newer than every run copied with it.
pub(crate) fn memtable_run_number(state: &TreeState) -> u64 {
    let highest_run = state.runs.keys().next_back().copied().unwrap_or(0);
    state.next_file_number.max(highest_run + 1).max(1)
}

/// Creates `dir` (and its parents) if missing, refuses a directory that holds anything, and
/// makes the new directory's entry durable.
pub(crate) fn prepare_empty_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    if vfs.exists(dir) {
        let names = vfs.list(dir).map_err(|e| Error::io(dir, e))?;
        if !names.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} is not empty",
                dir.display()
            )));
        }
    } else {
        vfs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            vfs.sync_dir(parent).map_err(|e| Error::io(parent, e))?;
        }
    }
    Ok(())
}

/// Copies a file and fsyncs the copy. Returns the CRC-32 of the bytes copied.
pub(crate) fn copy_file(vfs: &dyn Vfs, from: &Path, to: &Path) -> Result<u32> {
    copy_file_with(vfs, from, to, &mut |_| {})
}

/// [`copy_file`], reporting the bytes written as it goes (in chunks of up to 1 MiB).
pub(crate) fn copy_file_with(
    vfs: &dyn Vfs,
    from: &Path,
    to: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<u32> {
    const CHUNK: usize = 1 << 20;
    let map = vfs.map(from).map_err(|e| Error::io(from, e))?;
    let bytes = map.bytes();
    let mut out = vfs.create(to).map_err(|e| Error::io(to, e))?;
    let mut crc = crc32fast::Hasher::new();
    for chunk in bytes.chunks(CHUNK) {
        crc.update(chunk);
        out.write_all(chunk).map_err(|e| Error::io(to, e))?;
        progress(chunk.len() as u64);
    }
    out.sync().map_err(|e| Error::io(to, e))?;
    Ok(crc.finalize())
}

/// Writes a manifest holding `state` and the commit-time marks of `times` (and nothing to
/// replay from a WAL) into `dir` and points CURRENT at it: the last step of a checkpoint or a
/// restore. The history horizon and contract travel with `state`.
pub(crate) fn write_manifest(
    vfs: &dyn Vfs,
    dir: &Path,
    state: &TreeState,
    times: &TimeIndex,
) -> Result<()> {
    let highest_run = state.runs.keys().next_back().copied().unwrap_or(0);
    let number = state.next_file_number.max(highest_run + 1).max(1);
    let state = TreeState {
        runs: state.runs.clone(),
        flushed_version: state.flushed_version,
        // No WAL segment of the source belongs here: replay starts after the manifest.
        min_log_number: number + 1,
        next_file_number: number + 1,
        history_horizon: state.history_horizon,
        // The copy keeps the store's history contract, as it keeps its horizon.
        retention: state.retention,
        times: TimeIndex::new(),
    };
    ManifestWriter::create(vfs, dir, number, &state, times)?;
    Ok(())
}
