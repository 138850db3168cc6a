//! I/O-error injection (RELIABILITY.md, G2).
//!
//! Per seed, the workload of the crash stage (`workload::Script`) runs once on a
//! `FaultFs` over a `MemFs` without a fault, to count its mutating calls (create, write,
//! fsync, rename, unlink, link, directory sync; `Vfs` has no `set_len`). Then, for every
//! `stride`-th call number N and each of EIO and ENOSPC, once and forever, it runs again
//! with call N failing, and checks:
//!
//! - **no panic**, in the caller (`catch_unwind`) or in a background thread (a panic hook
//!   counts them);
//! - **no ack after a failure**: once a write, fsync, create, rename or directory sync has
//!   failed in the writer's own thread, or the writer has seen any error, no later write or
//!   flush returns `Ok`. (Two kinds of failure the engine may shrug off: an unlink, which
//!   only leaves an obsolete file behind, and any call on a checkpoint's own files, which
//!   fails that checkpoint and leaves the database as it was.) A failure in a background thread (flush, compaction)
//!   reaches the writer only when that thread has stopped the engine; commits acknowledged
//!   in between are counted apart as *acks racing a background failure*: their own WAL
//!   write and fsync succeeded, and the reopen checks below hold them to the oracle like any
//!   other acknowledged commit;
//! - **fail-stop**: an error the caller sees is `Error::Poisoned` or `Error::Io`; reads
//!   still show exactly the acknowledged commits; and with the fault cleared (the disk works
//!   again) a write still fails with `Error::Poisoned`;
//! - **reopen passes**, with the fault cleared, twice: on the file system as the process
//!   left it (every acknowledged commit present) and on its `crash_clone()`, the image a
//!   power loss would leave (every commit acknowledged as synced, or followed by a completed
//!   flush, present); both against the crash stage's oracle (prefix, whole batches, contents).
//!
//! A failed write leaves half its buffer; a failed fsync makes nothing durable (see
//! `chronokv_vfs::FaultFs`). The background threads make the call numbering vary a little
//! between runs of one seed (as in the crash stage): a fault planned near the end may not
//! fire, and such runs are counted apart.

use crate::workload::{self, apply, check_recovered, contents, mark_durable, Commit, Script};
use crate::workload::{Step, DIR};
use chronokv::{Db, Error};
use chronokv_vfs::{FaultFs, FaultKind, FaultMode, InjectedFailure, MemFs, MutatingOp};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

/// The fault of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The mutating call that fails (1 = the first).
    pub at: u64,
    pub kind: FaultKind,
    pub mode: FaultMode,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call {} {:?} {:?}", self.at, self.kind, self.mode)
    }
}

/// Figures of a fault run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub workloads: u64,
    /// Mutating calls of the fault-free runs.
    pub calls: u64,
    /// Runs with a planned fault.
    pub runs: u64,
    /// Runs whose fault fired (an injected fault each).
    pub injected: u64,
    /// Calls failed by the injected faults (a fault that lasts forever fails many).
    pub failed_calls: u64,
    /// Injected faults by the kind of call they hit first.
    pub by_op: BTreeMap<String, u64>,
    /// Writes or flushes acknowledged after a failure in the writer's thread, or after the
    /// writer saw an error.
    pub acks_after_failure: u64,
    /// Writes or flushes acknowledged after a failure in a background thread, before the
    /// engine stopped (not violations; see the module documentation).
    pub acks_racing_background: u64,
    /// The most such acks in one run.
    pub longest_race: u64,
    pub panics: u64,
    /// Runs whose engine accepted a write after a failure, with the fault cleared.
    pub not_fail_stop: u64,
    /// Reopens (process restart and power-loss image) tried, and how many failed to open.
    pub reopens: u64,
    pub failed_reopens: u64,
    /// Runs with at least one violation.
    pub failed_runs: u64,
    /// One line per violation, with the seed and the fault that reproduce it.
    pub violations: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.workloads += other.workloads;
        self.calls += other.calls;
        self.runs += other.runs;
        self.injected += other.injected;
        self.failed_calls += other.failed_calls;
        for (op, n) in other.by_op {
            *self.by_op.entry(op).or_default() += n;
        }
        self.acks_after_failure += other.acks_after_failure;
        self.acks_racing_background += other.acks_racing_background;
        self.longest_race = self.longest_race.max(other.longest_race);
        self.panics += other.panics;
        self.not_fail_stop += other.not_fail_stop;
        self.reopens += other.reopens;
        self.failed_reopens += other.failed_reopens;
        self.failed_runs += other.failed_runs;
        self.violations.extend(other.violations);
    }
}

pub(crate) static PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts every panic in the process, in any thread (background threads' panics never reach
/// a `catch_unwind`), then lets the previous hook print it.
pub(crate) fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// What one run saw.
#[derive(Debug, Default)]
struct Run {
    calls: u64,
    failures: Vec<InjectedFailure>,
    acks_after_failure: u64,
    acks_racing_background: u64,
    not_fail_stop: bool,
    reopens: u64,
    failed_reopens: u64,
    violations: Vec<String>,
}

/// A failure of this call means the database's data or names may be lost: the engine must
/// stop writing. An unlink only leaves an obsolete file behind, and a call outside the
/// database directory (a checkpoint's own files) leaves the database as it was: the
/// checkpoint fails, and the engine may go on.
pub(crate) fn must_stop(f: &InjectedFailure) -> bool {
    f.op != MutatingOp::Remove && f.path.starts_with(DIR)
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Flush => "flush",
        Step::Compact => "compact",
        Step::Checkpoint { .. } => "checkpoint",
        Step::Write { sync: true, .. } => "sync write",
        Step::Write { sync: false, .. } => "write",
    }
}

/// Runs the workload of `seed` with `fault` (none: the counting run) and checks it.
fn run_once(seed: u64, ops: usize, fault: Option<Fault>) -> Run {
    let mut run = Run::default();
    let mem = MemFs::new();
    let fs = FaultFs::new(Arc::new(mem.clone()));
    if let Some(f) = fault {
        fs.inject(f.at, f.kind, f.mode);
    }
    // CHRONOKV_FAULT_TRACE=1 prints, with each failed run, the mutating calls and the
    // writer's steps from shortly before the first failure on.
    let tracing = std::env::var_os("CHRONOKV_FAULT_TRACE").is_some();
    if tracing {
        fs.record_calls();
    }
    let mut steps: Vec<(u64, String)> = Vec::new();
    // The first failure after which the engine must stop writing.
    let stop_failure = |fs: &FaultFs| fs.injected().into_iter().find(must_stop);
    let me = std::thread::current().name().map(str::to_owned);
    let mut log: Vec<Commit> = Vec::new();
    // The index in `log` of the commit that failed, if one did.
    let mut failed_commit: Option<usize> = None;
    match Db::open(DIR, workload::options(Arc::new(fs.clone()), 1)) {
        Err(e) => {
            if fs.injected_count() == 0 {
                run.violations
                    .push(format!("open failed without a fault: {e}"));
            } else if !matches!(e, Error::Io { .. }) {
                run.violations
                    .push(format!("open failed with an unclear error: {e}"));
            }
        }
        Ok(db) => {
            let mut script = Script::new(seed);
            let mut last_acked = db.latest_version().get();
            let mut saw_error = false;
            for i in 0..ops {
                let step = script.next_step();
                let stopped_before = stop_failure(&fs);
                let started_at = fs.mutations();
                let result = apply(&db, &step);
                let done_at = fs.mutations();
                if tracing {
                    let r = match &result {
                        Ok(_) => "ok".to_string(),
                        Err(e) => format!("error: {e}"),
                    };
                    steps.push((started_at, format!("step {i} {}: {r}", step_name(&step))));
                }
                match result {
                    Ok(version) => {
                        match &stopped_before {
                            Some(f) if saw_error || f.thread == me => {
                                run.acks_after_failure += 1;
                                run.violations.push(format!(
                                    "step {i} ({}) acknowledged after {:?} failed at call {} in \
                                     thread {:?}{}",
                                    step_name(&step),
                                    f.op,
                                    f.call,
                                    f.thread,
                                    if saw_error {
                                        " and after an earlier step returned an error"
                                    } else {
                                        ""
                                    }
                                ));
                            }
                            Some(_) => run.acks_racing_background += 1,
                            None => {}
                        }
                        match (step, version) {
                            (Step::Write { changes, sync }, Some(v)) => {
                                last_acked = v.get();
                                log.push(Commit {
                                    last: v.get(),
                                    changes,
                                    started_at,
                                    durable_at: None,
                                });
                                if sync {
                                    mark_durable(&mut log, done_at);
                                }
                            }
                            _ => mark_durable(&mut log, done_at),
                        }
                    }
                    Err(e) => {
                        if fs.injected_count() == 0 {
                            run.violations.push(format!(
                                "step {i} ({}) failed without a fault: {e}",
                                step_name(&step)
                            ));
                        } else if !matches!(e, Error::Io { .. } | Error::Poisoned { .. }) {
                            run.violations.push(format!(
                                "step {i} ({}) failed with an unclear error: {e}",
                                step_name(&step)
                            ));
                        }
                        // A checkpoint that failed on its own files left the database as it
                        // was, and tells the writer nothing of the engine: the engine may go
                        // on acknowledging. (Judged by the error's own path: a background
                        // failure elsewhere at the same moment is no reason for this error.)
                        let checkpoint_only = matches!(step, Step::Checkpoint { .. })
                            && matches!(&e, Error::Io { path, .. } if !path.starts_with(DIR));
                        if !saw_error && !checkpoint_only {
                            saw_error = true;
                            // The failed commit may or may not have reached the log: its
                            // versions would have followed the last acknowledged one.
                            if let Step::Write { changes, .. } = step {
                                failed_commit = Some(log.len());
                                log.push(Commit {
                                    last: last_acked + changes.len() as u64,
                                    changes,
                                    started_at,
                                    durable_at: None,
                                });
                            }
                            // Reads go on, and show exactly the acknowledged commits.
                            let visible = db.latest_version().get();
                            if visible != last_acked {
                                run.violations.push(format!(
                                    "after the first error reads see v{visible}, but v{last_acked} \
                                     was the last acknowledged commit"
                                ));
                            } else {
                                match contents(&db) {
                                    Ok(got) if got == workload::model_at(&log, last_acked) => {}
                                    Ok(_) => run.violations.push(format!(
                                        "after the first error reads differ from the log at \
                                         v{last_acked}"
                                    )),
                                    Err(e) => run
                                        .violations
                                        .push(format!("after the first error a scan failed: {e}")),
                                }
                            }
                        }
                    }
                }
            }
            if stop_failure(&fs).is_some() {
                // The disk works again; the engine must still refuse writes. A failure in a
                // background thread reaches the engine's state when that thread gets to it:
                // wait for background work, which reports it. A background thread stops the
                // engine before it lets go of its work (the flush's memtable, the
                // compaction's inputs), so once this wait returns `Ok` no failure is on its
                // way. (It used to poll for up to a second, from before compactions stopped
                // the engine that early; a run that missed fail-stop spent the whole second,
                // which made the planted-bug stage, G6, slow.)
                fs.clear_fault();
                let _ = db.wait_for_compactions();
                let started_at = fs.mutations();
                match db.put("probe", "after the fault") {
                    Err(Error::Poisoned { .. }) => {}
                    Err(e) => run.violations.push(format!(
                        "with the fault cleared a write failed, but not as Poisoned: {e}"
                    )),
                    Ok(v) => {
                        run.not_fail_stop = true;
                        run.violations.push(
                            "with the fault cleared a write was acknowledged: no fail-stop"
                                .to_string(),
                        );
                        log.push(Commit {
                            last: v.get(),
                            changes: vec![(b"probe".to_vec(), Some(b"after the fault".to_vec()))],
                            started_at,
                            durable_at: None,
                        });
                    }
                }
            }
            // Closing syncs the WAL, which may fail while the fault lasts; it must not panic.
            let _ = db.close();
        }
    }
    run.calls = fs.mutations();
    run.failures = fs.injected();
    fs.clear_fault();
    let trace = |run: &mut Run| {
        let from = run
            .failures
            .first()
            .map_or(0, |f| f.call.saturating_sub(12));
        let mut lines: Vec<(u64, String)> = fs
            .calls()
            .into_iter()
            .filter(|c| c.call >= from)
            .map(|c| {
                let failed = c
                    .failed
                    .map(|k| format!(" FAILED {k:?}"))
                    .unwrap_or_default();
                (
                    c.call,
                    format!(
                        "call {} {:?} {} {:?}{failed}",
                        c.call,
                        c.op,
                        c.path.display(),
                        c.thread
                    ),
                )
            })
            .collect();
        lines.extend(steps.iter().filter(|(at, _)| *at + 1 >= from).cloned());
        lines.sort_by_key(|(at, _)| *at);
        run.violations
            .extend(lines.into_iter().map(|(_, l)| format!("  trace: {l}")));
    };

    // Reopen: first the power-loss image, then the file system as the process left it.
    let image = mem.crash_clone();
    let max = |durable_only: bool| {
        log.iter()
            .filter(|c| !durable_only || c.durable_at.is_some())
            .map(|c| c.last)
            .max()
            .unwrap_or(0)
    };
    // Every acknowledged commit (not the failed one) survives a process restart.
    let floor_all = log
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != failed_commit)
        .map(|(_, c)| c.last)
        .max()
        .unwrap_or(0);
    let ceiling = max(false);
    for (what, fs, floor) in [
        ("power-loss image", image, max(true)),
        ("process restart", mem, floor_all),
    ] {
        run.reopens += 1;
        match Db::open(DIR, workload::options(Arc::new(fs), 0)) {
            Err(e) => {
                run.failed_reopens += 1;
                run.violations.push(format!("reopen ({what}) failed: {e}"));
            }
            Ok(db) => {
                if let Some(v) = check_recovered(&db, &log, floor, ceiling) {
                    run.violations.push(format!("reopen ({what}): {v}"));
                }
                if let Err(e) = db.close() {
                    run.violations
                        .push(format!("reopen ({what}): close failed: {e}"));
                }
            }
        }
    }
    if tracing && !run.violations.is_empty() {
        trace(&mut run);
    }
    run
}

/// Runs one case under `catch_unwind` and counts panics anywhere in the process.
fn guarded(seed: u64, ops: usize, fault: Option<Fault>) -> Result<Run, String> {
    count_panics();
    let before = PANICS.load(Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(|| run_once(seed, ops, fault)));
    let panics = PANICS.load(Ordering::SeqCst) - before;
    match result {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panic: {msg}"))
        }
        Ok(_) if panics > 0 => Err(format!("{panics} panic(s) in a background thread")),
        Ok(run) => Ok(run),
    }
}

/// Runs the workload of `seed` with one fault and returns its violations (a panic is one):
/// the reproducer for a line the stage printed.
pub fn check_case(seed: u64, ops: usize, fault: Fault) -> Vec<String> {
    match guarded(seed, ops, Some(fault)) {
        Ok(run) => run.violations,
        Err(e) => vec![e],
    }
}

/// Runs the workload of `seed` once to count its mutating calls, then again with a fault at
/// every `stride`-th call, for EIO and ENOSPC, once and forever.
pub fn run_seed(seed: u64, ops: usize, stride: usize) -> Report {
    let mut report = Report {
        workloads: 1,
        ..Report::default()
    };
    let base = match guarded(seed, ops, None) {
        Ok(run) => run,
        Err(e) => {
            report.panics += 1;
            report.failed_runs += 1;
            report.violations.push(format!("seed {seed} no fault: {e}"));
            return report;
        }
    };
    report.calls = base.calls;
    report.reopens += base.reopens;
    report.failed_reopens += base.failed_reopens;
    if !base.violations.is_empty() {
        report.failed_runs += 1;
        for v in base.violations {
            report.violations.push(format!("seed {seed} no fault: {v}"));
        }
    }
    for at in (1..=base.calls).step_by(stride.max(1)) {
        for kind in [FaultKind::Eio, FaultKind::Enospc] {
            for mode in [FaultMode::Once, FaultMode::Forever] {
                let fault = Fault { at, kind, mode };
                report.runs += 1;
                let run = match guarded(seed, ops, Some(fault)) {
                    Ok(run) => run,
                    Err(e) => {
                        report.panics += 1;
                        report.failed_runs += 1;
                        report.violations.push(format!("seed {seed} {fault}: {e}"));
                        continue;
                    }
                };
                if let Some(first) = run.failures.first() {
                    report.injected += 1;
                    *report.by_op.entry(format!("{:?}", first.op)).or_default() += 1;
                }
                report.failed_calls += run.failures.len() as u64;
                report.acks_after_failure += run.acks_after_failure;
                report.acks_racing_background += run.acks_racing_background;
                report.longest_race = report.longest_race.max(run.acks_racing_background);
                report.not_fail_stop += u64::from(run.not_fail_stop);
                report.reopens += run.reopens;
                report.failed_reopens += run.failed_reopens;
                if !run.violations.is_empty() {
                    report.failed_runs += 1;
                    let first = run
                        .failures
                        .first()
                        .map(|f| format!(" (first failed: {:?} in {:?})", f.op, f.thread))
                        .unwrap_or_default();
                    for v in run.violations {
                        report
                            .violations
                            .push(format!("seed {seed} {fault}{first}: {v}"));
                    }
                }
            }
        }
    }
    report
}
