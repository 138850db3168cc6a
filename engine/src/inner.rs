//! The shared state of an open database, and the operations that change its shape:
//! sealing a memtable, flushing one to a run, recording manifest edits, poisoning after a
//! failure. Compaction lives in `compactor`, write stalls in `stall`.
//!
//! Lock order (never taken the other way round): `wal` -> `bg` -> `tree` -> `view`, and
//! `readers` -> `times` (each of `readers` and `times` may also be taken while holding
//! `wal`, `bg` or `tree`, but never the other way round). `commit` (the queue) is never
//! held while any other lock is taken.

use crate::error::{Error, Result};
use crate::files;
use crate::history::Readers;
use crate::manifest::{ManifestWriter, RunDesc, TreeState, VersionEdit};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::stats::Counters;
use crate::view::{LiveRun, View};
use chronokv_compaction::Strategy;
use chronokv_runs::{BlockCache, Compression, RunReader, RunWriter, RunWriterOptions};
use chronokv_snapshot::{ConflictTracker, TimeIndex, Version};
use chronokv_vfs::{DirLock, Vfs};
use chronokv_wal::SegmentWriter;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashSet;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// The WAL segment being written and the last version handed out. Held by the commit
/// leader for the whole group, and by `flush` to seal the memtable.
pub struct WalState {
    pub writer: SegmentWriter,
    pub last_version: u64,
    /// The last commit's time (µs); the next commit's is never smaller.
    pub last_time: u64,
}

/// The manifest writer and the tree it has recorded.
pub struct Tree {
    pub manifest: ManifestWriter,
    pub state: TreeState,
}

/// Background-work signalling and bookkeeping.
#[derive(Default)]
pub struct Bg {
    pub shutdown: bool,
    /// Runs that a compaction (automatic or manual) has taken as input.
    pub busy: HashSet<u64>,
}

pub struct Inner {
    pub dir: PathBuf,
    pub opts: Options,
    pub vfs: Arc<dyn Vfs>,
    pub cache: Arc<BlockCache>,
    pub counters: Counters,
    /// The write-stall state (`stall::NONE`, `SLOW`, `STOP`), refreshed on every tree change.
    pub stall: AtomicU8,
    /// Serialises stall refreshes, each computed from the view current under it, so the last
    /// refresh stored is computed from the newest view (see `stall::refresh_stall`).
    pub stall_refresh: Mutex<()>,
    /// Delay owed by slowed-down writes, in nanoseconds, paid in sleeps of at least 1 ms.
    pub stall_debt: Mutex<u64>,
    /// Set on shutdown: running compactions stop early and discard their output.
    pub cancel: AtomicBool,
    /// Every version up to this one is committed and readable.
    pub visible: AtomicU64,
    pub view: RwLock<Arc<View>>,
    /// The version <-> commit-time index of every committed version since its pruning point.
    pub times: Mutex<TimeIndex>,
    /// Live snapshots, history readers, the history contract and the horizon (see
    /// `history` and `retention`).
    pub readers: Mutex<Readers>,
    /// Open transactions and the keys written since the oldest began (see `txn`). Taken
    /// after `wal` by the commit leader, before `readers` by `Db::begin`.
    pub txns: Mutex<ConflictTracker>,
    /// Wakes transactions waiting to begin until an unrecorded commit is visible.
    pub txn_begin: Condvar,
    pub wal: Mutex<WalState>,
    pub tree: Mutex<Tree>,
    pub bg: Mutex<Bg>,
    /// Wakes the flusher (a memtable was sealed, or shutdown).
    pub bg_work: Condvar,
    /// Wakes writers and `flush` callers waiting for a flush to finish.
    pub bg_done: Condvar,
    pub next_file: AtomicU64,
    poisoned: AtomicBool,
    poison_reason: Mutex<Option<String>>,
    pub _lock: Box<dyn DirLock>,
}

impl Inner {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dir: PathBuf,
        opts: Options,
        cache: Arc<BlockCache>,
        view: View,
        wal: WalState,
        tree: Tree,
        next_file: u64,
        times: TimeIndex,
        lock: Box<dyn DirLock>,
    ) -> Inner {
        Inner {
            dir,
            txns: Mutex::new(ConflictTracker::new(opts.transaction_conflict_memory)),
            vfs: opts.vfs.clone(),
            opts,
            cache,
            counters: Counters::default(),
            stall: AtomicU8::new(0),
            stall_refresh: Mutex::new(()),
            stall_debt: Mutex::new(0),
            cancel: AtomicBool::new(false),
            visible: AtomicU64::new(wal.last_version),
            view: RwLock::new(Arc::new(view)),
            times: Mutex::new(times),
            readers: Mutex::new(Readers::default()),
            txn_begin: Condvar::new(),
            wal: Mutex::new(wal),
            tree: Mutex::new(tree),
            bg: Mutex::new(Bg::default()),
            bg_work: Condvar::new(),
            bg_done: Condvar::new(),
            next_file: AtomicU64::new(next_file),
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(None),
            _lock: lock,
        }
    }

    pub fn alloc_file_number(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::SeqCst)
    }

    pub fn snapshot_version(&self) -> Version {
        Version(self.visible.load(Ordering::Acquire))
    }

    pub fn current_view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    /// A version to read at and the view to read it from, such that no compaction in the
    /// view dropped a version the reader could need (see `view`'s module documentation).
    pub fn read_point(&self) -> (Version, Arc<View>) {
        loop {
            let version = self.snapshot_version();
            let view = self.current_view();
            if version >= view.gc_horizon {
                return (version, view);
            }
        }
    }

    pub fn strategy(&self) -> &dyn Strategy {
        self.opts.compaction.strategy()
    }

    /// Stops all writes after a failed write or sync: the kernel may have dropped the data,
    /// so nothing written since the last good sync may be acknowledged.
    pub fn poison(&self, err: &Error) {
        self.mark_poisoned(err);
        let _bg = self.bg.lock();
        self.bg_done.notify_all();
        self.bg_work.notify_all();
    }

    /// Sets the poisoned state without waking anyone (so it can be called under any lock;
    /// the caller then calls [`Inner::poison`] once it holds no lock).
    pub fn mark_poisoned(&self, err: &Error) {
        let mut reason = self.poison_reason.lock();
        if reason.is_none() {
            *reason = Some(err.to_string());
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// What a caller waiting on background work must return instead of waiting (on).
    pub fn check_waitable(&self, bg: &Bg) -> Result<()> {
        self.check_writable()?;
        if bg.shutdown {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.poison_reason.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned { reason });
        }
        Ok(())
    }

    /// How runs of `level` are written.
    pub fn run_options(&self, level: usize) -> RunWriterOptions {
        let compression: Compression = if level >= 2 {
            self.opts.deep_compression
        } else {
            self.opts.compression
        };
        RunWriterOptions {
            block_target_bytes: self.opts.block_size,
            compression,
            bloom_fp_rate: self.opts.bloom_fp_rate,
            ..RunWriterOptions::default()
        }
    }

    /// Wraps a freshly written or opened run for the view.
    pub fn live_run(&self, reader: Arc<RunReader>) -> Arc<LiveRun> {
        LiveRun::new(reader, self.vfs.clone(), self.cache.clone())
    }

    /// Seals the active memtable and starts a new one with a new WAL segment. Waits first
    /// while too many sealed memtables await flushing (backpressure, never failure).
    pub fn seal_memtable(&self, wal: &mut WalState) -> Result<()> {
        {
            let mut bg = self.bg.lock();
            while self.current_view().immutables.len() >= self.opts.max_immutable_memtables.max(1) {
                self.check_waitable(&bg)?;
                self.bg_done.wait(&mut bg);
            }
        }
        self.check_writable()?;
        // Segment n must be durable before n+1 is written, or a crash could keep a later
        // segment and lose an earlier one (a hole in the commit order).
        // Planted bug (G6): start segment n+1 without syncing segment n.
        let synced = if chronokv_vfs::bug!("rotate-skips-wal-sync") {
            Ok(())
        } else {
            wal.writer.sync()
        };
        if let Err(e) = synced {
            let e = Error::from(e);
            self.poison(&e);
            return Err(e);
        }
        let number = self.alloc_file_number();
        let writer = SegmentWriter::create(self.vfs.as_ref(), &self.dir, number).map_err(|e| {
            let e = Error::from(e);
            self.poison(&e);
            e
        })?;
        wal.writer = writer;
        {
            let mut view = self.view.write();
            let mut next = View::clone(&view);
            next.immutables.insert(0, next.active.clone());
            next.active = Arc::new(Memtable::new(number));
            *view = Arc::new(next);
        }
        let _bg = self.bg.lock();
        self.bg_work.notify_all();
        Ok(())
    }

    /// Writes a memtable as a level-0 run (if it holds anything). The run is durable and
    /// named when this returns; nothing references it yet.
    pub fn write_run(&self, mem: &Arc<Memtable>) -> Result<Option<(RunDesc, Arc<LiveRun>)>> {
        if mem.is_empty() {
            return Ok(None);
        }
        let number = self.alloc_file_number();
        let path = files::run_path(&self.dir, number);
        let mut writer = RunWriter::create(self.vfs.clone(), &path, self.run_options(0))?;
        for e in mem.range(Bound::Unbounded, Bound::Unbounded) {
            writer.add(&e.key, e.version, e.time, e.kind, &e.value)?;
        }
        let meta = writer.finish()?;
        let reader = RunReader::open(self.vfs.as_ref(), &path, number, self.cache.clone())?;
        Counters::add(&self.counters.flushes, 1);
        Counters::add(&self.counters.flush_bytes, meta.file_size);
        Ok(Some((
            RunDesc::new(0, number, &meta),
            self.live_run(reader),
        )))
    }

    /// Flushes the oldest sealed memtable: run, manifest edit, view swap, WAL removal.
    pub fn flush_memtable(&self, mem: &Arc<Memtable>) -> Result<()> {
        let run = self.write_run(mem)?;
        // Planted bug (G6): delete the WAL segment before the edit that makes it obsolete.
        if chronokv_vfs::bug!("flush-unlinks-wal-early") {
            let _ = self
                .vfs
                .remove_file(&files::wal_path(&self.dir, mem.log_number()));
        }
        let mut tree = self.tree.lock();
        let remaining_min_log = {
            let view = self.current_view();
            std::iter::once(&view.active)
                .chain(view.immutables.iter())
                .filter(|m| !Arc::ptr_eq(m, mem))
                .map(|m| m.log_number())
                .min()
                .unwrap_or(mem.log_number() + 1)
        };
        let flushed = tree.state.flushed_version.max(mem.max_version());
        self.record_flush(&mut tree, run, flushed, remaining_min_log, Some(mem))?;
        drop(tree);
        // The manifest no longer needs the segment; a failed removal leaves an obsolete file
        // that the next open deletes.
        let _ = self
            .vfs
            .remove_file(&files::wal_path(&self.dir, mem.log_number()));
        Ok(())
    }

    /// Makes a flush durable and visible: one manifest edit (the run, if any, the flushed
    /// version, the oldest WAL segment still needed), then one view swap that adds the run
    /// and retires the flushed memtable. Used by the flusher and by recovery.
    pub fn record_flush(
        &self,
        tree: &mut Tree,
        run: Option<(RunDesc, Arc<LiveRun>)>,
        flushed_version: Version,
        min_log_number: u64,
        retire: Option<&Arc<Memtable>>,
    ) -> Result<()> {
        self.prune_times();
        let (time_marks, times_pruned_below) = {
            let times = self.times.lock();
            let marks = times.marks_covering(tree.state.flushed_version, flushed_version);
            (marks.to_vec(), times.pruned_below())
        };
        let edit = VersionEdit {
            next_file_number: Some(self.next_file.load(Ordering::SeqCst)),
            flushed_version: Some(flushed_version),
            min_log_number: Some(min_log_number),
            added: run.iter().map(|(d, _)| d.clone()).collect(),
            time_marks,
            times_pruned_below,
            ..VersionEdit::default()
        };
        self.append_edit(tree, &edit)?;
        let mut view = self.view.write();
        let mut next = View::clone(&view);
        if let Some(mem) = retire {
            next.immutables.retain(|m| !Arc::ptr_eq(m, mem));
        }
        if let Some((_, run)) = run {
            let mut level0 = next
                .levels
                .first()
                .map(|l| l.runs.clone())
                .unwrap_or_default();
            level0.push(run);
            next.levels[0] = crate::view::Level::new(0, level0);
        }
        *view = Arc::new(next);
        Ok(())
    }

    /// Makes `edit` durable in the manifest and applies it to the tree state. A manifest
    /// past `max_manifest_bytes` is then replaced by a fresh one holding a snapshot of the
    /// state (CURRENT is switched atomically; the old file is deleted afterwards, or by the
    /// next open if a crash intervenes).
    ///
    /// After a failed append the manifest's tail is unknown (half a frame, or a frame that
    /// may or may not be durable), so nothing may follow it: a whole frame behind a torn one
    /// makes the next open see corruption. The failure therefore poisons the database before
    /// the tree lock is released, and every append checks for poisoning first (a flush or a
    /// compaction in another thread may be about to append).
    pub fn append_edit(&self, tree: &mut Tree, edit: &VersionEdit) -> Result<()> {
        // Planted bug (G6): the fix for G2's first finding undone: a failed append does not
        // stop the other background thread from appending behind it.
        if chronokv_vfs::bug!("manifest-failure-not-poisoned") {
            return self.append_edit_unchecked(tree, edit);
        }
        self.check_writable()?;
        let appended = self.append_edit_unchecked(tree, edit);
        if let Err(e) = &appended {
            self.mark_poisoned(e);
        }
        appended
    }

    fn append_edit_unchecked(&self, tree: &mut Tree, edit: &VersionEdit) -> Result<()> {
        tree.manifest.append(edit)?;
        tree.state.apply(edit);
        if tree.manifest.delta_len() > self.opts.max_manifest_bytes {
            let number = self.alloc_file_number();
            tree.state.next_file_number = self.next_file.load(Ordering::SeqCst);
            let times = self.times.lock().clone();
            // Planted bug (G6): delete the old manifest before CURRENT names the new one.
            if chronokv_vfs::bug!("manifest-unlinks-old-early") {
                let _ = self.vfs.remove_file(tree.manifest.path());
            }
            let fresh =
                ManifestWriter::create(self.vfs.as_ref(), &self.dir, number, &tree.state, &times)?;
            let old = std::mem::replace(&mut tree.manifest, fresh);
            let _ = self.vfs.remove_file(old.path());
        }
        Ok(())
    }

    /// The flusher thread's loop: flush sealed memtables oldest first until shutdown.
    pub fn flusher_loop(self: &Arc<Self>) {
        loop {
            let mem = {
                let mut bg = self.bg.lock();
                loop {
                    if bg.shutdown {
                        return;
                    }
                    if let Some(m) = self.current_view().immutables.last().cloned() {
                        break m;
                    }
                    self.bg_work.wait(&mut bg);
                }
            };
            if let Err(e) = self.flush_memtable(&mem) {
                // Planted bug (G6): retry a failed flush once instead of stopping the engine.
                let retried = chronokv_vfs::bug!("flush-retries-after-error")
                    && self.flush_memtable(&mem).is_ok();
                if !retried {
                    self.poison(&e);
                    return;
                }
            }
            self.refresh_stall();
            let _bg = self.bg.lock();
            self.bg_done.notify_all();
            // A new level-0 run may be work for the compaction threads.
            self.bg_work.notify_all();
        }
    }

    /// Waits until no sealed memtable remains.
    pub fn wait_for_flushes(&self) -> Result<()> {
        let mut bg = self.bg.lock();
        while !self.current_view().immutables.is_empty() {
            self.check_waitable(&bg)?;
            self.bg_done.wait(&mut bg);
        }
        Ok(())
    }
}
