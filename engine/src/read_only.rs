//! Read-only opens ([`crate::Db::open_read_only`]): recovery's reading steps (manifest,
//! runs, WAL replay; see `recovery`), in memory only.
//!
//! Nothing is written: no LOCK (so no lock is taken, and a writer may hold the store), no
//! manifest, no WAL segment, no run, no truncation of a torn tail, no deletion, no directory
//! sync. The replayed WAL records become the active memtable; the store's health refuses
//! every write with `Error::ReadOnly`, and no flush or compaction thread runs.
//!
//! Beside a live writer, the directory changes under the load: the writer appends manifest
//! edits, rotates the manifest, starts WAL segments, and deletes the segments and runs that
//! a flush or a compaction made obsolete (always *after* the manifest edit that stops naming
//! them). A load that raced with such a change fails: a file it needed is gone, or the WAL
//! it found no longer continues the manifest state it read (a version gap). Either way the
//! manifest changed (CURRENT names another file, or the file grew), so the open starts over.
//! A load that succeeds is consistent: the runs of one manifest state (held open, so their
//! later deletion does not matter) and every complete WAL record after that state's flushed
//! version, up to the end of the newest segment it listed. The writer syncs segment n before
//! it starts n+1, so only the newest one can end in a frame still being written, and that
//! partial frame is a torn tail: where the view ends.

use crate::error::Result;
use crate::files::{self, FileKind};
use crate::inner::Inner;
use crate::manifest;
use crate::options::Options;
use crate::recovery::{self, Held, Loaded};
use crate::retention::RetentionState;
use crate::tree::{Manifest, Recorded, Tree};
use crate::view::View;
use crate::writer::WalState;
use chronokv_snapshot::Version;
use chronokv_vfs::Vfs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How many times an open starts over after a load that raced with the writer. Each retry
/// follows a manifest change, so only a writer that changes its manifest faster than the
/// store can be read exhausts them.
const ATTEMPTS: usize = 50;

/// Opens the store at `dir` read-only (see the module documentation).
pub fn open(dir: &Path, opts: Options) -> Result<Arc<Inner>> {
    open_holding(dir, opts, &Held::default())
}

/// Reads the store again for the read-only `old` (`Db::refresh`): as an open, except that
/// the runs `old` holds are taken over rather than opened again, with the block cache
/// their readers fill. What a refresh costs is then the manifest read, the runs new since,
/// and the WAL replay (from the manifest's `min_log_number`, as at an open). The new state
/// shares those runs with `old`, whose snapshots go on reading them.
pub fn refresh(old: &Inner) -> Result<Arc<Inner>> {
    let held = Held {
        cache: Some(old.cache().clone()),
        runs: old
            .current_view()
            .runs()
            .map(|(_, r)| (r.id(), r.clone()))
            .collect(),
    };
    open_holding(old.dir(), old.opts().clone(), &held)
}

fn open_holding(dir: &Path, opts: Options, held: &Held) -> Result<Arc<Inner>> {
    opts.validate()?;
    let vfs = opts.vfs.clone();
    if !vfs.exists(dir) {
        return Err(recovery::missing_dir(dir));
    }
    let mut attempt = 1;
    loop {
        let before = manifest_mark(vfs.as_ref(), dir);
        match load(dir, &opts, held) {
            Ok(inner) => return Ok(inner),
            Err(_) if attempt < ATTEMPTS && manifest_mark(vfs.as_ref(), dir) != before => {
                // A writer changed the store under the load: start over from CURRENT.
                attempt += 1;
                std::thread::sleep(Duration::from_millis(attempt as u64));
            }
            Err(e) => return Err(e),
        }
    }
}

/// What identifies the manifest state on disk: the file CURRENT names and its length (edits
/// are only appended). `None` when CURRENT or the manifest cannot be read.
fn manifest_mark(vfs: &dyn Vfs, dir: &Path) -> Option<(PathBuf, u64)> {
    let path = manifest::current(vfs, dir).ok()??;
    let len = vfs.file_size(&path).ok()?;
    Some((path, len))
}

/// One attempt: read the manifest, open its runs (or take the `held` ones), replay the
/// WAL, build the store.
fn load(dir: &Path, opts: &Options, held: &Held) -> Result<Arc<Inner>> {
    let vfs = opts.vfs.clone();
    let Some((manifest_path, mut state)) = recovery::read_state(vfs.as_ref(), dir)? else {
        return Err(recovery::no_database(dir));
    };
    // A read-only open records nothing, so it reads with the contract the store has (it
    // cannot keep more than the writer does). Options naming a shorter one are refused, as
    // `Db::open` refuses them, so a caller is not left believing they took effect.
    let asked = crate::retention::resolve_open(state.retention, opts)?;
    let retention = state.retention.unwrap_or(asked);
    state.retention = Some(retention);
    // `manifest::current` accepts only a manifest's name, so this always finds its number.
    let number = match manifest_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(files::classify)
    {
        Some(FileKind::Manifest(n)) => n,
        _ => 0,
    };
    let Loaded {
        state,
        times,
        cache,
        runs,
        replayed,
        last_version,
        ..
    } = recovery::load(&vfs, dir, state, opts, held)?;
    // The torn tail, if any, is left as it is: the view simply ends before it.
    let view = View {
        active: replayed,
        immutables: Vec::new(),
        levels: View::build_levels(runs),
        gc_horizon: Version(0),
    };
    let wal = WalState {
        writer: None,
        last_version: last_version.0,
        last_time: recovery::last_time(&times),
    };
    let next_file = state.next_file_number;
    let history_horizon = state.history_horizon;
    let manifest = Manifest::ReadOnly {
        path: manifest_path,
        number,
    };
    let tree = Tree::new(Recorded { manifest, state }, view, next_file);
    let inner = Arc::new(Inner::new(
        dir.to_path_buf(),
        opts.clone(),
        cache,
        wal,
        tree,
        times,
        None,
    ));
    inner.readers().retention = RetentionState::new(retention, history_horizon);
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Db;
    use chronokv_vfs::MemFs;

    fn options(fs: &MemFs) -> Options {
        Options {
            vfs: Arc::new(fs.clone()),
            memtable_size: 4 << 10,
            ..Options::default()
        }
    }

    #[test]
    fn the_wal_becomes_the_active_memtable_and_nothing_is_written() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        // A memtable no put here fills, so no background flush can write during the count
        // below: some commits in a run (the explicit flush), the rest in the WAL only.
        let opts = Options {
            memtable_size: 1 << 20,
            ..options(&fs)
        };
        let db = Db::open(dir, opts.clone()).unwrap();
        for i in 0..100u32 {
            db.put(format!("k{i:03}"), "v").unwrap();
            if i == 49 {
                db.flush().unwrap();
            }
        }
        db.wait_for_compactions().unwrap();
        let mutations = fs.mutations();
        let inner = open(dir, opts).unwrap();
        assert_eq!(fs.mutations(), mutations, "the open wrote");
        assert!(inner.health().is_read_only());
        assert_eq!(inner.snapshot_version(), db.latest_version());
        let view = inner.current_view();
        let flushed = inner.tree().lock().state.flushed_version;
        assert!(
            flushed < db.latest_version(),
            "some commits are in the WAL only"
        );
        assert!(!view.active.is_empty());
        assert!(view.immutables.is_empty());
        let tree = inner.tree().lock();
        assert_eq!(
            Some(tree.manifest.path().to_path_buf()),
            manifest::current(&fs, dir).unwrap()
        );
        assert!(matches!(
            tree.manifest.path().file_name().and_then(|n| n.to_str()).and_then(files::classify),
            Some(FileKind::Manifest(n)) if n == tree.manifest.number()
        ));
    }

    #[test]
    fn a_refresh_keeps_the_runs_it_holds_and_opens_only_new_ones() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        let opts = Options {
            compaction_threads: 0,
            ..options(&fs)
        };
        let db = Db::open(dir, opts.clone()).unwrap();
        db.put("a", "1").unwrap();
        db.flush().unwrap();
        let mut ro = Db::open_read_only(dir, opts.clone()).unwrap();
        let held: Vec<_> = ro
            .inner()
            .current_view()
            .runs()
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(held.len(), 1);
        let cache = ro.inner().cache().clone();
        // Damage the held run's trailing magic: opening that file again would fail.
        let path = held[0].reader.path().to_path_buf();
        let len = fs.file_size(&path).unwrap() as usize;
        fs.corrupt_byte(&path, len - 1, 0xff).unwrap();
        db.put("b", "2").unwrap();
        db.flush().unwrap();
        db.put("c", "3").unwrap();
        assert!(ro.refresh().unwrap());
        let runs: Vec<_> = ro
            .inner()
            .current_view()
            .runs()
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(runs.len(), 2, "the new run is opened");
        assert!(
            runs.iter().any(|r| Arc::ptr_eq(r, &held[0])),
            "the held one is kept"
        );
        assert!(Arc::ptr_eq(ro.inner().cache(), &cache), "and its cache");
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
            assert_eq!(ro.get(k).unwrap().as_deref(), Some(v.as_bytes()), "{k}");
        }
        // A fresh open reads every run's file, the damaged one too.
        assert!(matches!(
            Db::open_read_only(dir, opts),
            Err(crate::Error::Corruption { .. })
        ));
    }

    #[test]
    fn the_manifest_mark_changes_with_every_edit() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        assert_eq!(manifest_mark(&fs, dir), None);
        let db = Db::open(dir, options(&fs)).unwrap();
        let before = manifest_mark(&fs, dir);
        assert!(before.is_some());
        db.put("a", "1").unwrap();
        assert_eq!(
            manifest_mark(&fs, dir),
            before,
            "a commit edits no manifest"
        );
        db.flush().unwrap();
        assert_ne!(manifest_mark(&fs, dir), before, "a flush appends an edit");
    }
}
