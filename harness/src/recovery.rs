//! Crashes and I/O faults during recovery itself (RELIABILITY.md, G1 and G2 applied to
//! `Db::open`).
//!
//! Recovery writes: it creates a new manifest and renames CURRENT to it, starts a WAL
//! segment, writes the replayed entries as a run, records that flush in the manifest and
//! deletes the files nothing references any more. A bug there (deleting a WAL before the run
//! that replaces it is durable, reusing a file number, pointing CURRENT at a manifest that
//! is not synced) bites only when recovery itself is interrupted, which G1 and G2 never do:
//! they crash or fail the workload, then recover once, undisturbed.
//!
//! Per seed, the crash stage's workload runs once with crash points recorded. Every K-th
//! crash point gives a *base image* (the three crash modes in turn), a state recovery must
//! repair. A clean recovery of the base image must pass G1's oracle and ends at some version
//! R. Everything in a base image is on disk, and recovery acknowledges nothing, so every
//! later recovery of it, however interrupted, must end at exactly R with the log's contents
//! at R:
//!
//! - **crash during recovery**: the clean recovery (open, then close) runs again with crash
//!   points recorded; the image of every point, in the three modes, is reopened and checked;
//! - **fault during recovery**: the same recovery runs with EIO or ENOSPC at its N-th
//!   mutating call, once and forever, for every N. The open must not panic and must either
//!   fail with `Error::Io` or succeed with the right contents (and then refuse writes if a
//!   call other than an unlink failed). With the fault cleared, the file system as the
//!   failed process left it and its power-loss image are both reopened and checked.
//!
//! Violations name the seed, the base image's point and mode, and the recovery's crash point
//! or fault, which reproduce them.

use crate::crash::{bounds, check_between, recover_checked, workload, Ran};
use crate::faults::{count_panics, must_stop, PANICS};
use crate::workload::{self, check_recovered, Commit, DIR};
use chronokv::vfs::{CrashMode, MemFs};
use chronokv::{Db, Error, WriteBatch};
use chronokv_vfs::{FaultFs, FaultKind, FaultMode};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Figures of a recovery run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub workloads: u64,
    /// Base images recovered.
    pub images: u64,
    /// Mutating calls of the clean recoveries (open and close), over all base images.
    pub recovery_calls: u64,
    /// Crash-during-recovery states reopened and checked.
    pub crash_states: u64,
    /// Recoveries run with a planned fault, and how many of the faults fired.
    pub fault_runs: u64,
    pub injected: u64,
    /// Faulted opens that returned an error, and that succeeded anyway.
    pub opens_failed: u64,
    pub opens_survived: u64,
    /// Reopens after a faulted recovery (the file system as left, and its power-loss image).
    pub reopens: u64,
    pub panics: u64,
    /// Checks made: clean recoveries, crash states and fault runs.
    pub checks: u64,
    /// Checks with at least one violation.
    pub failed_checks: u64,
    /// One line per violation, with what reproduces it.
    pub violations: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.workloads += other.workloads;
        self.images += other.images;
        self.recovery_calls += other.recovery_calls;
        self.crash_states += other.crash_states;
        self.fault_runs += other.fault_runs;
        self.injected += other.injected;
        self.opens_failed += other.opens_failed;
        self.opens_survived += other.opens_survived;
        self.reopens += other.reopens;
        self.panics += other.panics;
        self.checks += other.checks;
        self.failed_checks += other.failed_checks;
        self.violations.extend(other.violations);
    }

    fn check(&mut self, what: impl FnOnce() -> String, violation: Option<String>) {
        self.checks += 1;
        if let Some(v) = violation {
            self.failed_checks += 1;
            self.violations.push(format!("{}: {v}", what()));
        }
    }
}

/// A deep copy of a crash image (every byte of an image is synced, so its power-loss clone
/// is all of it).
fn copy(image: &MemFs) -> MemFs {
    image.crash_clone()
}

/// Runs the workload of `seed`, then checks recoveries of every `stride`-th crash point.
pub fn run_seed(seed: u64, ops: usize, stride: usize) -> Report {
    count_panics();
    let mut report = Report {
        workloads: 1,
        ..Report::default()
    };
    let Ran { fs, log, .. } = match workload(seed, ops) {
        Ok(r) => r,
        Err(e) => {
            report.check(|| format!("seed {seed}"), Some(e));
            return report;
        }
    };
    let modes = |salt: u64| {
        [
            CrashMode::SyncedOnly,
            CrashMode::RandomPages { seed: salt },
            CrashMode::TornWrite { seed: salt },
        ]
    };
    let points = fs.crash_points();
    for (i, point) in (0..points).step_by(stride.max(1)).enumerate() {
        let salt = seed.wrapping_mul(1_000_003) ^ point as u64;
        let mode = modes(salt)[i % 3];
        let Some(base) = fs.crash_image(point, mode) else {
            continue;
        };
        report.images += 1;
        let at = format!("seed {seed} image {point} {mode:?}");
        let (floor, ceiling) = bounds(&log, point as u64);
        // The clean recovery, with its crash points recorded.
        let probe = copy(&base);
        probe.record_crash_points();
        let recovered = recover_checked(&probe, &log, floor, ceiling);
        let r = match recovered {
            Ok(r) => {
                report.check(|| at.clone(), None);
                r
            }
            Err(v) => {
                report.check(|| format!("{at}, clean recovery"), Some(v));
                continue;
            }
        };
        report.recovery_calls += probe.mutations();
        for q in 0..probe.crash_points() {
            for m in modes(salt ^ (q as u64) << 32) {
                let Some(image) = probe.crash_image(q, m) else {
                    continue;
                };
                report.crash_states += 1;
                let v = check_between(&image, &log, r, r);
                report.check(|| format!("{at}, recovery crash point {q} {m:?}"), v);
            }
        }
        for n in 1..=probe.mutations() {
            for kind in [FaultKind::Eio, FaultKind::Enospc] {
                for mode in [FaultMode::Once, FaultMode::Forever] {
                    let v = faulted_recovery(&base, &log, r, n, kind, mode, &mut report);
                    report.check(|| format!("{at}, recovery call {n} {kind:?} {mode:?}"), v);
                }
            }
        }
    }
    report
}

/// Recovers a copy of `base` with a fault at mutating call `n`, then reopens what it left.
fn faulted_recovery(
    base: &MemFs,
    log: &[Commit],
    r: u64,
    n: u64,
    kind: FaultKind,
    mode: FaultMode,
    report: &mut Report,
) -> Option<String> {
    let mem = copy(base);
    let fs = FaultFs::new(Arc::new(mem.clone()));
    fs.inject(n, kind, mode);
    report.fault_runs += 1;
    let panics_before = PANICS.load(Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Option<String> {
        match Db::open(DIR, workload::options(Arc::new(fs.clone()), 0)) {
            Err(Error::Io { .. }) if fs.injected_count() > 0 => {
                report.opens_failed += 1;
                None
            }
            Err(e) if fs.injected_count() > 0 => {
                Some(format!("the open failed with an unclear error: {e}"))
            }
            Err(e) => Some(format!("O: the open failed without a fault: {e}")),
            Ok(db) => {
                let mut violation = check_recovered(&db, log, r, r);
                let stopped = fs.injected().iter().any(must_stop);
                if violation.is_none() && stopped {
                    // A failed create, write, sync or rename may have lost data or names:
                    // the engine must not accept writes, even with the disk working again.
                    fs.clear_fault();
                    let mut batch = WriteBatch::new();
                    batch.put(b"probe", b"x");
                    if db.write(batch).is_ok() {
                        violation = Some(
                            "fail-stop: a write was accepted after a recovery call failed".into(),
                        );
                    }
                }
                let _ = db.close();
                // Counted after the close: a fault may hit the close's WAL sync.
                report.opens_survived += u64::from(fs.injected_count() > 0);
                violation
            }
        }
    }));
    if fs.injected_count() > 0 {
        report.injected += 1;
    }
    let panicked = PANICS.load(Ordering::SeqCst) > panics_before;
    let violation = match outcome {
        Err(_) => Some("a panic escaped the open".to_string()),
        Ok(_) if panicked => Some("a thread panicked during the recovery".to_string()),
        Ok(v) => v,
    };
    if violation.is_some() {
        if panicked {
            report.panics += 1;
        }
        return violation;
    }
    // With the fault cleared: the power-loss image of what the failed process left, then
    // the file system as it left it (a process restart).
    fs.clear_fault();
    let power_loss = mem.crash_clone();
    report.reopens += 2;
    if let Some(v) = check_between(&power_loss, log, r, r) {
        return Some(format!("after a power loss: {v}"));
    }
    check_between(&mem, log, r, r).map(|v| format!("after a restart: {v}"))
}

#[cfg(test)]
mod tests {
    use super::run_seed;

    #[test]
    fn a_short_run_checks_crashes_and_faults_during_recovery() {
        let r = run_seed(1, 120, 60);
        assert!(r.violations.is_empty(), "{:#?}", r.violations);
        assert!(r.images >= 2, "{r:?}");
        assert!(r.crash_states > 0 && r.injected > 0, "{r:?}");
        assert_eq!(r.opens_failed + r.opens_survived, r.injected, "{r:?}");
    }
}
