//! The shared state of an open database, and the operations that change its shape:
//! sealing a memtable, flushing one to a run, recording manifest edits, poisoning after a
//! failure. Compaction lives in `compactor`, write stalls in `stall`.
//!
//! Each piece of state has one owner with private fields: the writer state (`writer`:
//! commit queue, WAL, visible version), the tree (`tree`: manifest, view, file numbers),
//! background signalling (`background`), write stalls (`stall`), open transactions
//! (`txns`), the health flags (`health`), and the readers and time index of time travel.
//! The lock order is [`crate::lock_order::Level`]'s, checked in debug builds.

use crate::background::{Background, Bg};
use crate::error::{Error, Result};
use crate::files;
use crate::health::Health;
use crate::invariants::{invariant, run_meta_problem};
use crate::lock_order::{Guard, Level, OrderedMutex};
use crate::manifest::{ManifestWriter, RunDesc, VersionEdit};
use crate::memtable::Memtable;
use crate::options::{CompactionStyle, Options};
use crate::retention::Readers;
use crate::stall::Stall;
use crate::stats::Counters;
use crate::tree::{Manifest, Recorded, Tree};
use crate::txns::OpenTxns;
use crate::view::{LiveRun, View};
use crate::writer::{WalState, Writer};
use chronokv_compaction::Strategy;
use chronokv_runs::{BlockCache, Compression, RunMeta, RunReader, RunWriter, RunWriterOptions};
use chronokv_snapshot::{TimeIndex, Version};
use chronokv_vfs::{DirLock, Vfs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The shared state of an open database: the owners of each piece of state, and the
/// settings every part reads. Fields are private; each owner's API is the only way to its
/// state.
pub struct Inner {
    dir: PathBuf,
    opts: Options,
    vfs: Arc<dyn Vfs>,
    cache: Arc<BlockCache>,
    counters: Counters,
    health: Health,
    writer: Writer,
    tree: Tree,
    background: Background,
    stall: Stall,
    txns: OpenTxns,
    /// The version <-> commit-time index of every committed version since its pruning point.
    times: OrderedMutex<TimeIndex>,
    /// Live snapshots, history readers, the history contract and the horizon (see
    /// `history` and `retention`).
    readers: OrderedMutex<Readers>,
    /// The directory's LOCK; `None` for a read-only store, which takes no lock.
    _lock: Option<Box<dyn DirLock>>,
}

impl Inner {
    /// `lock: None` makes a read-only store: every write is refused (`Error::ReadOnly`).
    pub fn new(
        dir: PathBuf,
        opts: Options,
        cache: Arc<BlockCache>,
        wal: WalState,
        tree: Tree,
        times: TimeIndex,
        lock: Option<Box<dyn DirLock>>,
    ) -> Inner {
        let health = Health::default();
        if lock.is_none() {
            health.mark_read_only();
        }
        Inner {
            dir,
            txns: OpenTxns::new(opts.transaction_conflict_memory),
            vfs: opts.vfs.clone(),
            opts,
            cache,
            counters: Counters::default(),
            health,
            writer: Writer::new(wal),
            tree,
            background: Background::default(),
            stall: Stall::default(),
            times: OrderedMutex::new(Level::Times, times),
            readers: OrderedMutex::new(Level::Readers, Readers::default()),
            _lock: lock,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn opts(&self) -> &Options {
        &self.opts
    }

    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.vfs
    }

    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.cache
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn background(&self) -> &Background {
        &self.background
    }

    #[cfg(test)]
    pub fn stall(&self) -> &Stall {
        &self.stall
    }

    pub fn txns(&self) -> &OpenTxns {
        &self.txns
    }

    pub fn times(&self) -> Guard<'_, TimeIndex> {
        self.times.lock()
    }

    pub fn readers(&self) -> Guard<'_, Readers> {
        self.readers.lock()
    }

    pub fn alloc_file_number(&self) -> u64 {
        self.tree.alloc_file_number()
    }

    pub fn snapshot_version(&self) -> Version {
        self.writer.visible()
    }

    pub fn current_view(&self) -> Arc<View> {
        self.tree.current_view()
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

    /// Leveled compaction keeps every level below 0 disjoint (an invariant the view checks).
    pub fn is_leveled(&self) -> bool {
        matches!(self.opts.compaction, CompactionStyle::Leveled(_))
    }

    pub fn strategy(&self) -> &dyn Strategy {
        self.opts.compaction.strategy()
    }

    /// Stops all writes after a failed write or sync: the kernel may have dropped the data,
    /// so nothing written since the last good sync may be acknowledged.
    pub fn poison(&self, err: &Error) {
        self.mark_poisoned(err);
        self.background.wake_everyone();
    }

    /// Sets the poisoned state without waking anyone (so it can be called under any lock;
    /// the caller then calls [`Inner::poison`] once it holds no lock).
    pub fn mark_poisoned(&self, err: &Error) {
        self.health.mark_poisoned(err);
    }

    /// What a caller waiting on background work must return instead of waiting (on).
    pub fn check_waitable(&self, bg: &Bg) -> Result<()> {
        bg.check_waitable(&self.health)
    }

    /// Recomputes the write-stall state after a view change (see `stall`).
    pub fn refresh_stall(&self) {
        self.stall.refresh(&self.tree, &self.opts, &self.background);
    }

    /// Slows or stops the commit leader while compaction is behind (see `stall`).
    pub fn throttle(&self, bytes: usize) -> Result<()> {
        self.stall.throttle(
            bytes,
            &self.opts,
            &self.counters,
            &self.background,
            &self.health,
        )
    }

    /// `Error::Closed` once `Db::close` began.
    pub fn check_open(&self) -> Result<()> {
        self.health.check_open()
    }

    pub fn check_writable(&self) -> Result<()> {
        self.health.check_writable()
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
            let mut bg = self.background.lock();
            while self.current_view().immutables.len() >= self.opts.max_immutable_memtables.max(1) {
                self.check_waitable(&bg)?;
                self.background.wait_until_done(&mut bg);
            }
        }
        self.check_writable()?;
        // Segment n must be durable before n+1 is written, or a crash could keep a later
        // segment and lose an earlier one (a hole in the commit order).
        // Planted bug (G6): start segment n+1 without syncing segment n.
        let synced = if chronokv_vfs::bug!("rotate-skips-wal-sync") {
            Ok(())
        } else {
            wal.segment()?.finish()
        };
        if let Err(e) = synced {
            let e = Error::from(e);
            self.poison(&e);
            return Err(e);
        }
        let number = self.alloc_file_number();
        let writer = crate::writer::create_segment(&self.opts, &self.dir, number)
            .inspect_err(|e| self.poison(e))?;
        wal.writer = Some(writer);
        self.tree.swap_memtables(|current| {
            let mut next = current.clone();
            next.immutables.insert(0, next.active.clone());
            next.active = Arc::new(Memtable::new(number));
            next
        });
        self.background.wake_workers();
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
        let meta = self.write_run_file(&path, mem)?;
        let reader = RunReader::open(self.vfs.as_ref(), &path, number, self.cache.clone())?;
        invariant!(
            run_meta_problem(&meta, reader.meta()).is_none(),
            "flushed run {number}: {}",
            run_meta_problem(&meta, reader.meta()).unwrap_or_default()
        );
        Counters::add(&self.counters.flushes, 1);
        Counters::add(&self.counters.flush_bytes, meta.file_size);
        Ok(Some((
            RunDesc::new(0, number, &meta),
            self.live_run(reader),
        )))
    }

    /// Writes every entry of `mem` to a new level-0 run file at `path` (durable when this
    /// returns).
    pub fn write_run_file(&self, path: &Path, mem: &Arc<Memtable>) -> Result<RunMeta> {
        self.write_run_file_on(self.vfs.clone(), path, mem)
    }

    /// [`Inner::write_run_file`] on another file system (a backup directory's).
    pub fn write_run_file_on(
        &self,
        vfs: Arc<dyn Vfs>,
        path: &Path,
        mem: &Arc<Memtable>,
    ) -> Result<RunMeta> {
        let mut writer = RunWriter::create(vfs, path, self.run_options(0))?;
        for e in mem.entries() {
            writer.add(e.key, e.version, e.time, e.kind, e.value)?;
        }
        Ok(writer.finish()?)
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
        tree: &mut Recorded,
        run: Option<(RunDesc, Arc<LiveRun>)>,
        flushed_version: Version,
        min_log_number: u64,
        retire: Option<&Arc<Memtable>>,
    ) -> Result<()> {
        self.prune_times();
        let (time_marks, times_pruned_below) = {
            let times = self.times();
            let marks = times.marks_covering(tree.state.flushed_version, flushed_version);
            (marks.to_vec(), times.pruned_below())
        };
        let edit = VersionEdit {
            next_file_number: Some(self.tree.next_file_number()),
            flushed_version: Some(flushed_version),
            min_log_number: Some(min_log_number),
            added: run.iter().map(|(d, _)| d.clone()).collect(),
            time_marks,
            times_pruned_below,
            ..VersionEdit::default()
        };
        self.append_edit(tree, &edit)?;
        self.tree.swap_runs(tree, self.is_leveled(), |current| {
            let mut next = current.clone();
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
            next
        });
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
    pub fn append_edit(&self, tree: &mut Recorded, edit: &VersionEdit) -> Result<()> {
        // Planted bug (G6): the fix for G2's first finding undone: a failed append does not
        // stop the other background thread from appending behind it.
        if chronokv_vfs::bug!("manifest-failure-not-poisoned") {
            return self.append_edit_unchecked(tree, edit);
        }
        self.check_writable()?;
        for &(level, number) in &edit.deleted {
            invariant!(
                tree.state.runs.get(&number).map(|r| r.level) == Some(level),
                "a manifest edit removes run {number} from level {level}, which the tree does \
                 not hold there"
            );
        }
        let appended = self.append_edit_unchecked(tree, edit);
        if let Err(e) = &appended {
            self.mark_poisoned(e);
        }
        appended
    }

    fn append_edit_unchecked(&self, tree: &mut Recorded, edit: &VersionEdit) -> Result<()> {
        tree.manifest.writer()?.append(edit)?;
        tree.state.apply(edit);
        if tree.manifest.writer()?.delta_len() > self.opts.max_manifest_bytes {
            let number = self.alloc_file_number();
            tree.state.next_file_number = self.tree.next_file_number();
            let times = self.times().clone();
            // Planted bug (G6): delete the old manifest before CURRENT names the new one.
            if chronokv_vfs::bug!("manifest-unlinks-old-early") {
                let _ = self.vfs.remove_file(tree.manifest.path());
            }
            let fresh =
                ManifestWriter::create(self.vfs.as_ref(), &self.dir, number, &tree.state, &times)?;
            let old = std::mem::replace(&mut tree.manifest, Manifest::Writer(fresh));
            let _ = self.vfs.remove_file(old.path());
        }
        Ok(())
    }

    /// The flusher thread's loop: flush sealed memtables oldest first until shutdown.
    pub fn flusher_loop(self: &Arc<Self>) {
        loop {
            let mem = {
                let mut bg = self.background.lock();
                loop {
                    if bg.shutdown {
                        return;
                    }
                    if let Some(m) = self.current_view().immutables.last().cloned() {
                        break m;
                    }
                    self.background.wait_for_work(&mut bg);
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
            // Waiters learn the flush is done; a new level-0 run may be work for the
            // compaction threads.
            self.background.wake_everyone();
        }
    }

    /// Waits until no sealed memtable remains.
    pub fn wait_for_flushes(&self) -> Result<()> {
        let mut bg = self.background.lock();
        while !self.current_view().immutables.is_empty() {
            self.check_waitable(&bg)?;
            self.background.wait_until_done(&mut bg);
        }
        Ok(())
    }
}
