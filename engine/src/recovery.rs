//! Opening a database: lock, manifest, runs, WAL replay, cleanup.
//!
//! The steps, each safe to repeat if a crash interrupts them (recovery is idempotent):
//! 1. Lock the directory.
//! 2. Read CURRENT and the manifest it names (a new database starts empty).
//! 3. Open every run the manifest names; a missing or resized run is corruption.
//! 4. Replay WAL segments not older than the manifest's `min_log_number`, skipping versions
//!    already flushed; versions must continue without a gap.
//! 5. Settle the history contract (stored, or grown by the options; see `retention`), write
//!    a fresh manifest (a snapshot of the tree and the contract) and point CURRENT at it.
//! 6. Flush the replayed entries to a level-0 run and start a new WAL segment, so the old
//!    segments are no longer needed.
//! 7. Delete every chronokv file the new manifest does not name (old manifests and WAL
//!    segments, runs of flushes that crashed before their manifest edit, temporary files).
//!
//! Steps 2 to 4 only read ([`read_state`], [`load`]); a read-only open (`read_only`) runs
//! them alone and keeps the replayed records in memory.

use crate::apply::insert_entries;
use crate::error::{Error, Result};
use crate::files::{self, FileKind};
use crate::inner::Inner;
use crate::manifest::{self, ManifestWriter, TreeState};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::retention::RetentionState;
use crate::tree::{Manifest, Recorded, Tree};
use crate::view::{LiveRun, View};
use crate::writer::WalState;
use chronokv_runs::{BlockCache, RunReader};
use chronokv_snapshot::{to_commit_time, TimeIndex, Version};
use chronokv_vfs::Vfs;
use chronokv_wal::RecoveryMode;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn open(dir: &Path, opts: Options) -> Result<Arc<Inner>> {
    opts.validate()?;
    let vfs = opts.vfs.clone();
    if !vfs.exists(dir) {
        if !opts.create_if_missing {
            return Err(missing_dir(dir));
        }
        vfs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let lock = files::lock_dir(vfs.as_ref(), dir)?;

    let mut state = match read_state(vfs.as_ref(), dir)? {
        Some((_, state)) => state,
        None if opts.create_if_missing => TreeState::default(),
        None => return Err(no_database(dir)),
    };
    // The contract this open records: the stored one, grown if the options ask for more
    // (a shorter one is refused before anything is written).
    let retention = crate::retention::resolve_open(state.retention, &opts)?;
    state.retention = Some(retention);

    let Loaded {
        mut state,
        times,
        cache,
        runs,
        wal_numbers,
        replayed,
        last_version,
        torn,
    } = load(&vfs, dir, state, &opts, &Held::default())?;
    // Recovery is about to start a newer segment, after which this one counts as older and
    // fully synced: cut its torn tail (or preallocated zeros) off first, or a recovery
    // interrupted from here on would leave a store the next open refuses as corrupt.
    // Planted bug (G6): keep the torn tail.
    if let Some((path, valid)) = torn.filter(|_| !chronokv_vfs::bug!("recovery-keeps-torn-tail")) {
        cut_torn_tail(vfs.as_ref(), dir, &path, valid)?;
    }
    let last_time = last_time(&times);
    // Planted bug (G6): versions restart after the flushed ones, forgetting those the WAL
    // replay recovered (a high-water mark not carried across a restart).
    let last_version = if chronokv_vfs::bug!("recovery-reuses-versions") {
        state.flushed_version
    } else {
        last_version
    };

    let manifest_number = state.next_file_number;
    state.next_file_number += 1;
    let manifest = ManifestWriter::create(vfs.as_ref(), dir, manifest_number, &state, &times)?;
    let wal_number = state.next_file_number;
    state.next_file_number += 1;
    let writer = crate::writer::create_segment(&opts, dir, wal_number)?;
    let view = View {
        active: Arc::new(Memtable::new(wal_number)),
        immutables: Vec::new(),
        levels: View::build_levels(runs),
        gc_horizon: Version(0),
    };
    let wal = WalState {
        writer: Some(writer),
        last_version: last_version.0,
        last_time,
    };
    let next_file = state.next_file_number;
    let history_horizon = state.history_horizon;
    let manifest = Manifest::Writer(manifest);
    let tree = Tree::new(Recorded { manifest, state }, view, next_file);
    let inner = Arc::new(Inner::new(
        dir.to_path_buf(),
        opts,
        cache,
        wal,
        tree,
        times,
        Some(lock),
    ));
    inner.readers().retention = RetentionState::new(retention, history_horizon);

    // Planted bug (G6): the replayed segments are deleted before the run that holds their
    // entries is durable and named by the manifest.
    if !replayed.is_empty() && chronokv_vfs::bug!("recovery-unlinks-wal-early") {
        for &n in &wal_numbers {
            let _ = vfs.remove_file(&files::wal_path(dir, n));
        }
    }
    // Persist the replayed entries as a run, and record that no older WAL is needed.
    let run = inner.write_run(&replayed)?;
    {
        let mut tree = inner.tree().lock();
        inner.record_flush(&mut tree, run, last_version, wal_number, None)?;
        // The flush's edit may have rotated the manifest: keep the live one.
        let live_manifest = tree.manifest.number();
        remove_unreferenced(vfs.as_ref(), dir, &tree.state, live_manifest, wal_number)?;
    }
    Ok(inner)
}

/// What steps 2 to 4 found, before anything is written: the tree state (its time marks
/// moved to `times`, with those of the replayed records added), the open runs, and the WAL
/// records replayed into a memtable.
pub(crate) struct Loaded {
    pub state: TreeState,
    pub times: TimeIndex,
    pub cache: Arc<BlockCache>,
    pub runs: Vec<(usize, Arc<LiveRun>)>,
    /// The segments replayed, oldest first.
    pub wal_numbers: Vec<u64>,
    pub replayed: Arc<Memtable>,
    pub last_version: Version,
    /// The newest segment's torn tail, if one was tolerated, or its preallocated zeros: its
    /// path and valid length.
    pub torn: Option<(PathBuf, u64)>,
}

/// Runs already open, by file number, and the block cache their readers fill: what a
/// read-only handle holds when it refreshes (`read_only::refresh`). [`load`] takes a run
/// from here instead of opening its file again; file numbers are never reused (a
/// persisted high-water mark), so a number names one file's contents for good.
#[derive(Default)]
pub(crate) struct Held {
    pub cache: Option<Arc<BlockCache>>,
    pub runs: HashMap<u64, Arc<LiveRun>>,
}

/// Reads CURRENT and the manifest it names: `None` if there is no CURRENT (no database).
pub(crate) fn read_state(vfs: &dyn Vfs, dir: &Path) -> Result<Option<(PathBuf, TreeState)>> {
    let Some(path) = manifest::current(vfs, dir)? else {
        return Ok(None);
    };
    let state = manifest::read(vfs, &path).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => Error::corruption(
            &path,
            0,
            "CURRENT names this manifest but the file is missing",
        ),
        e => e,
    })?;
    Ok(Some((path, state)))
}

/// Steps 2 to 4 after the manifest is read: opens its runs (those not `held` already) and
/// replays the WAL into memory. Reads only, so a read-only open shares it.
pub(crate) fn load(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    mut state: TreeState,
    opts: &Options,
    held: &Held,
) -> Result<Loaded> {
    let names = vfs.list(dir).map_err(|e| Error::io(dir, e))?;
    let listed: Vec<FileKind> = names.iter().filter_map(|n| files::classify(n)).collect();
    let highest = listed
        .iter()
        .filter_map(|k| match k {
            FileKind::Manifest(n) | FileKind::Wal(n) | FileKind::Run(n) => Some(*n),
            FileKind::Temp => None,
        })
        .max()
        .unwrap_or(0);
    state.next_file_number = state.next_file_number.max(highest + 1).max(1);

    let cache = held
        .cache
        .clone()
        .unwrap_or_else(|| BlockCache::new(opts.block_cache_bytes));
    let runs = open_runs(vfs, dir, &state, &cache, &held.runs)?;

    let wal_numbers = files::live_wal_numbers(&listed, state.min_log_number);
    let replayed = Arc::new(Memtable::new(0));
    let mut times = std::mem::take(&mut state.times);
    let (last_version, torn) = replay(
        vfs.as_ref(),
        dir,
        &wal_numbers,
        &state,
        opts.recovery_mode,
        &replayed,
        &mut times,
    )?;
    Ok(Loaded {
        state,
        times,
        cache,
        runs,
        wal_numbers,
        replayed,
        last_version,
        torn,
    })
}

/// The commit time of the newest version `times` knows (0 for none).
pub(crate) fn last_time(times: &TimeIndex) -> u64 {
    times.marks().last().map_or(0, |&(_, t)| t)
}

pub(crate) fn missing_dir(dir: &Path) -> Error {
    Error::InvalidArgument(format!("{} does not exist", dir.display()))
}

pub(crate) fn no_database(dir: &Path) -> Error {
    Error::InvalidArgument(format!("{} holds no database", dir.display()))
}

/// Opens every run the manifest names, with its level (the manifest's: a compaction may
/// move a run to another level without rewriting it). A `held` run of the recorded size is
/// taken as it is: its file was checked when it was opened, and may be gone since.
fn open_runs(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    state: &TreeState,
    cache: &Arc<BlockCache>,
    held: &HashMap<u64, Arc<LiveRun>>,
) -> Result<Vec<(usize, Arc<LiveRun>)>> {
    let mut runs = Vec::with_capacity(state.runs.len());
    for desc in state.runs.values() {
        if let Some(run) = held
            .get(&desc.file_number)
            .filter(|r| r.reader.meta().file_size == desc.file_size)
        {
            runs.push((desc.level as usize, run.clone()));
            continue;
        }
        let path = files::run_path(dir, desc.file_number);
        let size = vfs.file_size(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::corruption(
                &path,
                0,
                "the manifest names this run but the file is missing",
            ),
            _ => Error::io(&path, e),
        })?;
        if size != desc.file_size {
            return Err(Error::corruption(
                &path,
                size.min(desc.file_size),
                format!(
                    "run is {size} bytes but the manifest recorded {}",
                    desc.file_size
                ),
            ));
        }
        let reader = RunReader::open(vfs.as_ref(), &path, desc.file_number, cache.clone())?;
        runs.push((
            desc.level as usize,
            LiveRun::new(reader, vfs.clone(), cache.clone()),
        ));
    }
    Ok(runs)
}

/// Replays WAL segments into `mem` and their commit times into `times`; returns the last
/// recovered version and, if the newest segment had a torn tail that was tolerated or ends
/// in preallocated zeros, its path and the length of its valid prefix: the tail to cut
/// before a newer segment makes this one older.
fn replay(
    vfs: &dyn Vfs,
    dir: &Path,
    numbers: &[u64],
    state: &TreeState,
    mode: RecoveryMode,
    mem: &Memtable,
    times: &mut TimeIndex,
) -> Result<(Version, Option<(PathBuf, u64)>)> {
    let flushed = state.flushed_version.0;
    let mut last = flushed;
    let mut torn = None;
    for (i, &n) in numbers.iter().enumerate() {
        let path = files::wal_path(dir, n);
        let newest = i + 1 == numbers.len();
        let contents = chronokv_wal::read_segment(vfs, &path, n, newest, mode)?;
        for rec in &contents.records {
            if rec.count == 0 || rec.last_version().0 <= flushed {
                continue;
            }
            if rec.first_version.0 > last + 1 {
                return Err(Error::corruption(
                    &path,
                    rec.offset,
                    format!(
                        "version gap: expected v{} next, found v{}",
                        last + 1,
                        rec.first_version.0
                    ),
                ));
            }
            // Times are kept monotonic as the commit path keeps them (a record from a clock
            // that stepped back gets the previous time).
            let last_time = times.marks().last().map_or(0, |&(_, t)| t);
            let time = to_commit_time(rec.commit_micros).max(last_time);
            let first_new = Version(rec.first_version.0.max(flushed + 1));
            times
                .record(first_new, time)
                .map_err(|bad| Error::corruption(&path, rec.offset, bad.0))?;
            insert_entries(mem, rec.entries(), rec.first_version, time, first_new)
                .map_err(|e| Error::corruption(&path, rec.offset, e.to_string()))?;
            last = last.max(rec.last_version().0);
        }
        match &contents.damage {
            // Everything after the damage is dropped, later segments included.
            Some(_) if mode == RecoveryMode::PointInTime => break,
            // Only the newest segment's damage is tolerated in this mode.
            Some(d) if mode == RecoveryMode::TolerateTornTail => torn = Some((path, d.offset)),
            _ => {
                if let Some(at) = contents.preallocated {
                    torn = Some((path, at));
                }
            }
        }
    }
    Ok((Version(last), torn))
}

/// Replaces the segment at `path` with its first `valid` bytes (see
/// [`files::replace_durably`]). A crash in between leaves either version of the segment
/// (both recover the same records) and perhaps a temporary file, which the next open removes.
fn cut_torn_tail(vfs: &dyn Vfs, dir: &Path, path: &Path, valid: u64) -> Result<()> {
    let data = vfs.read(path).map_err(|e| Error::io(path, e))?;
    let keep = &data[..(valid as usize).min(data.len())];
    files::replace_durably(vfs, dir, path, keep)
}

fn remove_unreferenced(
    vfs: &dyn Vfs,
    dir: &Path,
    state: &TreeState,
    manifest: u64,
    wal: u64,
) -> Result<()> {
    let names = vfs.list(dir).map_err(|e| Error::io(dir, e))?;
    let mut removed = false;
    for name in names {
        let obsolete = match files::classify(&name) {
            Some(FileKind::Manifest(n)) => n != manifest,
            Some(FileKind::Wal(n)) => n < wal,
            Some(FileKind::Run(n)) => !state.runs.contains_key(&n),
            Some(FileKind::Temp) => true,
            None => false,
        };
        if obsolete {
            let path = dir.join(&name);
            vfs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed = true;
        }
    }
    if removed {
        vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}
