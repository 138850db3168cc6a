//! The merge executor: the I/O half of compaction.
//!
//! A [`MergeJob`] reads its input runs, merges them into internal order
//! ([`chronokv_snapshot::merge::Merge`]), drops what no reader can see ([`GcFilter`]) and
//! writes the rest into one or more new run files ([`RunWriter`]). It decides nothing about
//! *what* to compact (that is the policy's [`crate::Task`]) and changes no tree description:
//! the caller installs the outputs (and [`crate::apply`]) once `run` returns.
//!
//! # Outputs
//!
//! Outputs are cut only where the key changes: all versions of a key land in one output, so
//! the outputs have disjoint, ascending key ranges. A new output starts before a key when
//! (see [`Cutter`]):
//!
//! * the current output's file holds `target_run_size` bytes, counted as the bytes the
//!   writer has written (whole blocks: real run bytes, about 153 per entry of a 16-byte key
//!   and a 100-byte value, not an estimate from key and value lengths); or
//! * the key passes the end of one of the task's `grandparents` (runs of the level below the
//!   output level) and either the output's size plus the grandparent bytes it would overlap
//!   passes `max_grandparent_overlap`, or the key skips a whole grandparent run of more than
//!   an eighth of the target (the output need not overlap it at all), or the output already
//!   holds 50% of the target (plus 5% for each grandparent end it has passed, at most 90%).
//!
//! The grandparent rules are RocksDB's (`CompactionOutputs::ShouldStopBefore` with
//! `level_compaction_dynamic_file_size`): an output whose range ends where a grandparent
//! run ends overlaps only the grandparent runs its keys fall in, so pushing it down later
//! rewrites about its share of the level below instead of a run more at each end.
//!
//! Every output is published durably by [`RunWriter`] (temp file, sync, rename, directory
//! sync).
//!
//! # Failure
//!
//! On an input error, a write error or cancellation, `run` removes the outputs it already
//! finished (best effort; an unfinished writer removes its own temp file) and returns the
//! error: the caller sees all of the outputs or none of them. A removal that fails leaves an
//! orphan file that no manifest names.
//!
//! # Cancellation
//!
//! `cancel` is read every [`CANCEL_CHECK_INTERVAL`] input entries (the first time before the
//! first entry), so a job over a few entries checks it once.
//!
//! Thread-safety: a `MergeJob` is `Send + Sync`; `run` takes `&self` and can run on any thread.

use crate::gc::{GcFilter, GcRules, GcStats};
use crate::types::Grandparent;
use bytes::Bytes;
use chronokv_runs::{RunMeta, RunReader, RunWriter, RunWriterOptions};
use chronokv_snapshot::merge::Merge;
use chronokv_snapshot::{Entry, Source};
use chronokv_vfs::Vfs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The cancellation flag is read once per this many input entries.
pub const CANCEL_CHECK_INTERVAL: u64 = 4096;

/// Where the next output goes: its file number and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// The output's file number (its run id).
    pub id: u64,
    /// The path the run is published at.
    pub path: PathBuf,
}

/// One merge of run files into new run files. See the module documentation.
#[derive(Debug)]
pub struct MergeJob<'a> {
    /// The file system inputs and outputs live on.
    pub vfs: Arc<dyn Vfs>,
    /// Input runs; any order (the merge orders by version).
    pub inputs: Vec<Arc<RunReader>>,
    /// Options of every output's writer.
    pub writer_options: RunWriterOptions,
    /// Start a new output once the current one holds about this many bytes (`u64::MAX` = one
    /// output). Never split the versions of one key across outputs.
    pub target_run_size: u64,
    /// No older data of these keys exists below this merge: trailing tombstones may go.
    pub bottommost: bool,
    /// The runs of the level below the output level that overlap the inputs, in key order
    /// ([`crate::Task::grandparents`]); outputs are cut at their ends (module docs).
    pub grandparents: &'a [Grandparent],
    /// [`crate::Task::max_grandparent_overlap`] (`u64::MAX`: no bound).
    pub max_grandparent_overlap: u64,
    /// Which versions must survive.
    pub gc: GcRules,
    /// Checked every few thousand entries; when set, stop and return [`ExecError::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
}

/// One finished output run.
#[derive(Debug, Clone)]
pub struct MergeOutput {
    /// The id `next_output` gave it.
    pub id: u64,
    /// Where it was published.
    pub path: PathBuf,
    /// What the writer reported.
    pub meta: RunMeta,
}

/// What a successful [`MergeJob::run`] produced.
#[derive(Debug, Clone, Default)]
pub struct MergeOutcome {
    /// The outputs, in key order (ascending, disjoint key ranges). Empty if every entry was
    /// dropped.
    pub outputs: Vec<MergeOutput>,
    /// Sum of the input file sizes.
    pub bytes_read: u64,
    /// Sum of the output file sizes.
    pub bytes_written: u64,
    /// What garbage collection did.
    pub gc: GcStats,
}

/// Why a merge failed. No output of a failed merge is left behind (best effort).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Reading an input or writing an output failed.
    #[error(transparent)]
    Run(#[from] chronokv_runs::Error),
    /// The cancellation flag was set.
    #[error("compaction cancelled")]
    Cancelled,
}

impl MergeJob<'_> {
    /// Merges the inputs through [`Merge::forward`] (sources from
    /// `RunReader::range(Unbounded, Unbounded)`), filters through [`GcFilter`], and writes
    /// outputs with `RunWriter::create(vfs, &out.path, writer_options)`, asking `next_output()`
    /// for each new output's id and path. If every entry is dropped, there are no outputs.
    ///
    /// # Errors
    ///
    /// [`ExecError::Run`] when an input fails to read (corruption, I/O) or an output fails to
    /// write; [`ExecError::Cancelled`] when `cancel` was seen set. Either way every output
    /// already finished is removed (best effort) before returning.
    pub fn run(
        &self,
        next_output: &mut dyn FnMut() -> OutputFile,
    ) -> Result<MergeOutcome, ExecError> {
        let bytes_read = self.inputs.iter().map(|r| r.meta().file_size).sum();
        let mut filter = GcFilter::new(self.entries(), &self.gc, self.bottommost);
        let mut outputs = Outputs {
            vfs: &self.vfs,
            writer_options: &self.writer_options,
            cutter: Cutter::new(
                self.grandparents,
                self.target_run_size,
                self.max_grandparent_overlap,
            ),
            next_output,
            current: None,
            finished: Vec::new(),
            committed: false,
        };
        for entry in filter.by_ref() {
            outputs.add(&entry?)?;
        }
        let outputs = outputs.commit()?;
        let stats = filter.stats();
        debug_assert_eq!(
            stats.entries_out,
            outputs.iter().map(|o| o.meta.entry_count).sum::<u64>(),
            "every entry the filter kept is in exactly one output"
        );
        Ok(MergeOutcome {
            bytes_written: outputs.iter().map(|o| o.meta.file_size).sum(),
            outputs,
            bytes_read,
            gc: stats,
        })
    }

    /// The inputs merged into internal order, checking the cancellation flag on the way.
    fn entries(&self) -> Cancellable<'_> {
        let mut inputs = self.inputs.clone();
        // Newest run first: on a duplicate (key, version) the merge keeps the first source's.
        inputs.sort_by_key(|r| std::cmp::Reverse(r.meta().max_version));
        let sources: Vec<Source<chronokv_runs::Error>> = inputs
            .iter()
            .map(|r| Box::new(r.scan_uncached()) as Source<_>)
            .collect();
        Cancellable {
            inner: Merge::forward(sources),
            cancel: self.cancel,
            seen: 0,
            done: false,
        }
    }
}

/// The merged input with errors lifted into [`ExecError`] and cancellation as an error item.
/// Fuses after the first error.
struct Cancellable<'a> {
    inner: Merge<chronokv_runs::Error>,
    cancel: Option<&'a AtomicBool>,
    seen: u64,
    done: bool,
}

impl Iterator for Cancellable<'_> {
    type Item = Result<Entry, ExecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let check = self.seen.is_multiple_of(CANCEL_CHECK_INTERVAL);
        self.seen += 1;
        if check && self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            self.done = true;
            return Some(Err(ExecError::Cancelled));
        }
        let item = self.inner.next().map(|r| r.map_err(ExecError::from));
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}

/// The output currently being written.
struct Current {
    file: OutputFile,
    writer: RunWriter,
    last_key: Bytes,
}

/// What the key about to be added did to the grandparent cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Crossing {
    /// Grandparent runs whose end the key passed.
    ends: u64,
    /// Bytes of the largest grandparent run lying wholly between the previous key and this
    /// one (the output would overlap it without holding any of its keys).
    largest_skipped: u64,
}

/// Decides where outputs are cut (module docs): the size rule and the grandparent rules,
/// with a cursor over the grandparents that moves forward with the keys.
#[derive(Debug)]
struct Cutter<'g> {
    grandparents: &'g [Grandparent],
    target: u64,
    max_overlap: u64,
    /// The first grandparent whose `max_key` is at or after the last key seen.
    next: usize,
    /// Grandparents before this index are counted in `overlap` (or lie before the open
    /// output).
    counted: usize,
    /// Bytes of the grandparents the open output overlaps.
    overlap: u64,
    /// Grandparent ends the open output's keys have passed.
    ends_passed: u64,
}

impl<'g> Cutter<'g> {
    fn new(grandparents: &'g [Grandparent], target: u64, max_overlap: u64) -> Self {
        Cutter {
            grandparents,
            target,
            max_overlap,
            next: 0,
            counted: 0,
            overlap: 0,
            ends_passed: 0,
        }
    }

    /// Moves the cursor to `key` (the first entry of a new key; keys ascend) and counts the
    /// grandparents the open output now reaches into.
    fn advance(&mut self, key: &[u8]) -> Crossing {
        let mut crossing = Crossing::default();
        while let Some(g) = self.grandparents.get(self.next) {
            if g.max_key.as_slice() >= key {
                break;
            }
            self.next += 1;
            crossing.ends += 1;
        }
        while let Some(g) = self.grandparents.get(self.counted) {
            if g.min_key.as_slice() > key {
                break;
            }
            self.overlap = self.overlap.saturating_add(g.size);
            if self.counted < self.next {
                crossing.largest_skipped = crossing.largest_skipped.max(g.size);
            }
            self.counted += 1;
        }
        crossing
    }

    /// A new output starts at `key`, where the cursor stands: it overlaps only the
    /// grandparent holding `key`, if any.
    fn start_output(&mut self, key: &[u8]) {
        self.counted = self.next;
        self.overlap = 0;
        self.ends_passed = 0;
        self.advance(key);
    }

    /// True if the output holding `size` bytes should end before the key that made
    /// `crossing`.
    fn should_cut(&mut self, size: u64, crossing: Crossing) -> bool {
        if size >= self.target {
            return true;
        }
        if crossing.ends == 0 {
            return false;
        }
        let ends_before = self.ends_passed;
        self.ends_passed += crossing.ends;
        size.saturating_add(self.overlap) > self.max_overlap
            || crossing.largest_skipped > self.target / 8
            || size >= self.precut_size(ends_before)
    }

    /// The size from which an output is cut at a grandparent end: half the target, 5% more
    /// for every end already passed (more ends passed, more chances ahead), at most 90%.
    fn precut_size(&self, ends_before: u64) -> u64 {
        let percent = 50 + ends_before.saturating_mul(5).min(40);
        (self.target / 100).saturating_mul(percent)
    }
}

/// The outputs of one run: the open one and the finished ones. Unless committed, dropping it
/// removes the finished outputs (the open writer removes its own temp file).
struct Outputs<'j, 'f> {
    vfs: &'j Arc<dyn Vfs>,
    writer_options: &'j RunWriterOptions,
    cutter: Cutter<'j>,
    next_output: &'f mut dyn FnMut() -> OutputFile,
    current: Option<Current>,
    finished: Vec<MergeOutput>,
    committed: bool,
}

impl Outputs<'_, '_> {
    fn add(&mut self, e: &Entry) -> Result<(), ExecError> {
        let new_key = self.current.as_ref().is_none_or(|c| c.last_key != e.key);
        if new_key {
            self.before_key(&e.key)?;
        }
        let c = match self.current.as_mut() {
            Some(c) => c,
            None => {
                let file = (self.next_output)();
                let writer =
                    RunWriter::create(self.vfs.clone(), &file.path, self.writer_options.clone())?;
                self.current.insert(Current {
                    file,
                    writer,
                    last_key: Bytes::new(),
                })
            }
        };
        c.writer.add(&e.key, e.version, e.time, e.kind, &e.value)?;
        if new_key {
            c.last_key = e.key.clone();
        }
        Ok(())
    }

    /// Before the first entry of `key`: closes the open output if the cutting rules say so
    /// and tells the cutter where the next output starts.
    fn before_key(&mut self, key: &[u8]) -> Result<(), ExecError> {
        let crossing = self.cutter.advance(key);
        if let Some(c) = &self.current {
            if self.cutter.should_cut(c.writer.bytes_written(), crossing) {
                self.close()?;
            }
        }
        if self.current.is_none() {
            self.cutter.start_output(key);
        }
        Ok(())
    }

    /// Finishes the open output, if any.
    fn close(&mut self) -> Result<(), ExecError> {
        let Some(Current { file, writer, .. }) = self.current.take() else {
            return Ok(());
        };
        match writer.finish() {
            Ok(meta) => {
                debug_assert!(
                    self.finished
                        .last()
                        .is_none_or(|prev| prev.meta.max_key < meta.min_key),
                    "outputs must have ascending, disjoint key ranges"
                );
                self.finished.push(MergeOutput {
                    id: file.id,
                    path: file.path,
                    meta,
                });
                Ok(())
            }
            Err(e) => {
                // The writer removed its temp file; if it failed after the rename (syncing the
                // directory), the published file must go too.
                let _ = self.vfs.remove_file(&file.path);
                Err(e.into())
            }
        }
    }

    /// Finishes the open output and hands over every output.
    fn commit(mut self) -> Result<Vec<MergeOutput>, ExecError> {
        self.close()?;
        self.committed = true;
        Ok(std::mem::take(&mut self.finished))
    }
}

impl Drop for Outputs<'_, '_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for out in &self.finished {
            let _ = self.vfs.remove_file(&out.path);
        }
    }
}
