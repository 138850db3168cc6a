//! Running compactions: the background loop, manual `compact_range`, and installing a
//! result with one atomic manifest edit.
//!
//! A task's input runs are marked busy (in `Bg`) while it runs, so no other task takes
//! them; the merge itself runs without any lock. Installing takes the tree lock, appends one
//! manifest edit (outputs added, inputs deleted) and fsyncs it, then swaps the view. Input
//! files are deleted only after that, and only when the last view (or iterator) holding
//! them lets go (`LiveRun`). A crash before the edit leaves orphan outputs, a crash after it
//! leaves orphan inputs; the next open deletes both.

use crate::error::{Error, Result};
use crate::files;
use crate::inner::Inner;
use crate::invariants::{invariant, run_meta_problem};
use crate::manifest::{RunDesc, VersionEdit};
use crate::stats::Counters;
use crate::view::{LiveRun, View};
use chronokv_compaction::{ExecError, KeyRange, MergeJob, OutputFile, Task, TaskKind};
use chronokv_runs::RunReader;
use chronokv_snapshot::Version;
use std::collections::HashMap;
use std::sync::Arc;

/// A task with its input runs, taken from the view it was picked in.
struct Picked {
    task: Task,
    inputs: Vec<Arc<LiveRun>>,
}

impl Inner {
    /// Looks up a task's input runs in `view`; None if one is missing (a stale task).
    fn resolve(view: &View, task: Task) -> Option<Picked> {
        let by_id: HashMap<u64, &Arc<LiveRun>> = view.runs().map(|(_, r)| (r.id(), r)).collect();
        let inputs = task
            .inputs
            .iter()
            .map(|(_, id)| by_id.get(id).map(|r| Arc::clone(r)))
            .collect::<Option<Vec<_>>>()?;
        Some(Picked { task, inputs })
    }

    /// One background compaction thread: pick, run, install, until shutdown.
    pub fn compaction_loop(self: &Arc<Self>) {
        loop {
            let picked = {
                let mut bg = self.background().lock();
                loop {
                    if bg.shutdown || self.check_writable().is_err() {
                        return;
                    }
                    let view = self.current_view();
                    let task = self.strategy().pick(&view.policy_levels(), &bg.busy);
                    if let Some(picked) = task.and_then(|t| Self::resolve(&view, t)) {
                        bg.busy.extend(picked.inputs.iter().map(|r| r.id()));
                        break picked;
                    }
                    self.background().wait_for_work(&mut bg);
                }
            };
            let result = self.run_task(&picked);
            // Stop writes as soon as the failure is known: `release` may wait for the bg
            // lock, and writers would be acknowledged meanwhile.
            if let Err(e) = &result {
                if !matches!(e, Error::Closed) {
                    self.mark_poisoned(e);
                }
            }
            self.release(&picked);
            match result {
                Ok(()) => {}
                Err(Error::Closed) => return,
                Err(e) => {
                    self.poison(&e);
                    return;
                }
            }
        }
    }

    fn release(&self, picked: &Picked) {
        let mut bg = self.background().lock();
        for r in &picked.inputs {
            bg.busy.remove(&r.id());
        }
        // Finished work may enable more work, and wakes writers and manual compactions.
        self.background().wake_everyone_holding(&bg);
    }

    /// Runs one task and installs its result. A merge cancelled by shutdown changes nothing
    /// and returns `Error::Closed`.
    fn run_task(&self, picked: &Picked) -> Result<()> {
        let task = &picked.task;
        if task.kind == TaskKind::TrivialMove {
            let edit = VersionEdit {
                deleted: task.inputs.iter().map(|&(l, id)| (l as u32, id)).collect(),
                added: picked
                    .inputs
                    .iter()
                    .map(|r| RunDesc::new(task.output_level as u32, r.id(), r.reader.meta()))
                    .collect(),
                ..VersionEdit::default()
            };
            self.install(picked, edit, Vec::new())?;
            Counters::add(&self.counters().trivial_moves, 1);
            return Ok(());
        }
        let readers: Vec<Arc<RunReader>> = picked.inputs.iter().map(|r| r.reader.clone()).collect();
        // After the inputs were picked, never before (see `history`).
        let gc = self.gc_rules();
        let history_horizon = gc.retain_from;
        let job = MergeJob {
            vfs: self.vfs().clone(),
            inputs: readers,
            writer_options: self.run_options(task.output_level),
            target_run_size: task.target_run_size,
            bottommost: task.bottommost,
            grandparents: &task.grandparents,
            max_grandparent_overlap: task.max_grandparent_overlap,
            gc,
            cancel: Some(self.background().cancel_flag()),
        };
        let mut next_output = || {
            let id = self.alloc_file_number();
            OutputFile {
                id,
                path: files::run_path(self.dir(), id),
            }
        };
        let outcome = match job.run(&mut next_output) {
            Ok(o) => o,
            Err(ExecError::Cancelled) => return Err(Error::Closed),
            Err(ExecError::Run(e)) => return Err(e.into()),
        };
        let mut outputs = Vec::with_capacity(outcome.outputs.len());
        let mut added = Vec::with_capacity(outcome.outputs.len());
        for out in &outcome.outputs {
            let reader =
                RunReader::open(self.vfs().as_ref(), &out.path, out.id, self.cache().clone());
            match reader {
                Ok(reader) => {
                    invariant!(
                        run_meta_problem(&out.meta, reader.meta()).is_none(),
                        "compaction output {}: {}",
                        out.id,
                        run_meta_problem(&out.meta, reader.meta()).unwrap_or_default()
                    );
                    outputs.push(self.live_run(reader));
                }
                Err(e) => {
                    for o in &outcome.outputs {
                        let _ = self.vfs().remove_file(&o.path);
                    }
                    return Err(e.into());
                }
            }
            added.push(RunDesc::new(task.output_level as u32, out.id, &out.meta));
        }
        let edit = VersionEdit {
            deleted: task.inputs.iter().map(|&(l, id)| (l as u32, id)).collect(),
            added,
            history_horizon,
            ..VersionEdit::default()
        };
        // A failed install may have written the edit naming the outputs (a failed fsync
        // does not say whether it is durable), so they stay; the next open removes them if
        // the manifest it reads does not name them.
        self.install(picked, edit, outputs)?;
        let c = self.counters();
        Counters::add(&c.compactions, 1);
        Counters::add(&c.compaction_read, outcome.bytes_read);
        Counters::add(&c.compaction_written, outcome.bytes_written);
        Counters::add(&c.versions_dropped, outcome.gc.versions_dropped);
        Counters::add(&c.tombstones_dropped, outcome.gc.tombstones_dropped);
        Ok(())
    }

    /// Makes a task's result durable (one manifest edit) and visible (one view swap), then
    /// lets go of the inputs. For a trivial move `outputs` is empty and the input runs
    /// themselves change level.
    fn install(
        &self,
        picked: &Picked,
        mut edit: VersionEdit,
        outputs: Vec<Arc<LiveRun>>,
    ) -> Result<()> {
        let task = &picked.task;
        let moved = task.kind == TaskKind::TrivialMove;
        let mut tree = self.tree().lock();
        edit.next_file_number = Some(self.tree().next_file_number());
        self.append_edit(&mut tree, &edit)?;
        let horizon = picked
            .inputs
            .iter()
            .map(|r| r.reader.meta().max_version)
            .max()
            .unwrap_or(Version(0));
        self.tree().swap_runs(&tree, self.is_leveled(), |current| {
            let leaving: Vec<u64> = task.inputs.iter().map(|&(_, id)| id).collect();
            let mut runs: Vec<(usize, Arc<LiveRun>)> = current
                .runs()
                .filter(|(_, r)| !leaving.contains(&r.id()))
                .map(|(l, r)| (l, r.clone()))
                .collect();
            let arriving = if moved {
                picked.inputs.clone()
            } else {
                outputs
            };
            runs.extend(arriving.into_iter().map(|r| (task.output_level, r)));
            View {
                levels: View::build_levels(runs),
                gc_horizon: if moved {
                    current.gc_horizon
                } else {
                    current.gc_horizon.max(horizon)
                },
                ..current.clone()
            }
        });
        drop(tree);
        if !moved {
            for r in &picked.inputs {
                r.mark_obsolete();
            }
        }
        self.refresh_stall();
        Ok(())
    }

    /// Waits until no flush is pending and the strategy has no compaction left to run (with
    /// automatic compaction off: until flushes are done).
    pub fn wait_for_compactions(&self) -> Result<()> {
        self.wait_for_flushes()?;
        let mut bg = self.background().lock();
        loop {
            self.check_waitable(&bg)?;
            let view = self.current_view();
            let idle = view.immutables.is_empty()
                && (self.opts().compaction_threads == 0
                    || (bg.busy.is_empty()
                        && self
                            .strategy()
                            .pick(&view.policy_levels(), &bg.busy)
                            .is_none()));
            if idle {
                return Ok(());
            }
            // The timeout re-checks in case a wake-up raced with this check.
            self.background()
                .wait_until_done_for(&mut bg, std::time::Duration::from_millis(50));
        }
    }

    /// Flushes, then compacts every run overlapping `lo..=hi` (`None`: unbounded) in one
    /// merge chosen by the strategy's `manual` rule, in the calling thread. Waits while
    /// another compaction holds any of the runs it needs.
    pub fn compact_range(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Result<()> {
        let picked = {
            let mut bg = self.background().lock();
            loop {
                self.check_waitable(&bg)?;
                let view = self.current_view();
                let levels = view.policy_levels();
                let max_key = levels
                    .levels
                    .iter()
                    .flatten()
                    .map(|r| r.max_key.clone())
                    .max();
                let Some(max_key) = max_key else {
                    return Ok(());
                };
                let min = lo.unwrap_or(&[]);
                let max = hi.unwrap_or(&max_key);
                if min > max {
                    return Ok(());
                }
                let range = KeyRange { min, max };
                let Some(task) = self.strategy().manual(&levels, Some(range)) else {
                    return Ok(());
                };
                if task.inputs.iter().any(|(_, id)| bg.busy.contains(id)) {
                    self.background().wait_until_done(&mut bg);
                    continue;
                }
                let Some(picked) = Self::resolve(&view, task) else {
                    continue;
                };
                bg.busy.extend(picked.inputs.iter().map(|r| r.id()));
                break picked;
            }
        };
        let result = self.run_task(&picked);
        self.release(&picked);
        match &result {
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => self.poison(e),
        }
        result
    }
}
