//! Bit rot in synced files: checksums and the torn-tail rule (an extension added for G6).
//!
//! The crash stage (G1) only ever damages data that was never synced: every image it builds
//! keeps synced bytes intact. So two promises were checked by no stage, and two bugs planted
//! for G6 went unnoticed: a WAL reader that takes *any* damage in the newest segment for a
//! torn tail (RELIABILITY.md pitfall 6: damage before data a later frame records as synced
//! is corruption, not the end of the log), and a run reader that skips its block checksums
//! (pitfall 10).
//!
//! Per seed, the G1 script (`workload::Script`) runs to the end on a `MemFs` and the
//! database is closed, so everything it wrote is synced. Then, for every file the next open
//! reads (the runs the current manifest names, the WAL segments from its `min_log_number`
//! on; files left for the next open to delete are skipped), `flips` images are made from
//! that state, each with one byte of that file changed (a seeded offset and bit pattern).
//! Each image is opened and fully scanned. The verdict:
//!
//! - **detected**: the open or the scan fails with `Error::Corruption`;
//! - **intact**: both succeed and the contents equal the log applied up to the recovered
//!   version `v`, a commit boundary no later than the last commit and, for damage in a WAL
//!   segment, no earlier than the last commit that was synced before the last commit
//!   started (that commit's frame follows the sync, so it records the synced length and a
//!   reader can tell damage before it from a torn tail); for damage in a run, `v` is the
//!   last commit (the run was named by a durable manifest edit; nothing may be lost);
//! - anything else is a **violation**: another error, a version out of range, or contents
//!   that differ from the log (a checksum that was not checked).
//!
//! Not covered: the manifest (its last frame, fsynced before it took effect, cannot be told
//! from a torn append when damaged, by design) and CURRENT.

use crate::workload::{self, apply, check_recovered, mark_durable, Commit, Script, Step, DIR};
use crate::Rng;
use chronokv::vfs::{MemFs, Vfs};
use chronokv::{Db, Error};
use chronokv_engine::internals::{classify, current_manifest, read_manifest, FileKind};
use std::path::Path;
use std::sync::Arc;

/// Figures of a bit-rot run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub workloads: u64,
    /// WAL segments and runs damaged.
    pub files: u64,
    /// Damaged images opened.
    pub images: u64,
    /// Images whose damage was reported as corruption.
    pub detected: u64,
    /// Images that recovered correct contents (damage in a torn-looking tail, or in bytes the
    /// reads do not use).
    pub intact: u64,
    /// Of the images, those with a damaged run, and how many of them were detected.
    pub run_images: u64,
    pub run_detected: u64,
    /// One line per violation, with the seed, file and offset.
    pub violations: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.workloads += other.workloads;
        self.files += other.files;
        self.images += other.images;
        self.detected += other.detected;
        self.intact += other.intact;
        self.run_images += other.run_images;
        self.run_detected += other.run_detected;
        self.violations.extend(other.violations);
    }
}

/// Runs the script of `seed` for `ops` steps and closes the database.
fn workload(seed: u64, ops: usize) -> Result<(MemFs, Vec<Commit>), String> {
    let fs = MemFs::new();
    let db = Db::open(DIR, workload::options(Arc::new(fs.clone()), 1))
        .map_err(|e| format!("seed {seed}: open: {e}"))?;
    let mut script = Script::new(seed);
    let mut log: Vec<Commit> = Vec::new();
    for _ in 0..ops {
        let started_at = fs.mutations();
        let step = script.next_step();
        let version = apply(&db, &step).map_err(|e| format!("seed {seed}: step: {e}"))?;
        let done_at = fs.mutations();
        match (step, version) {
            (Step::Write { changes, sync }, Some(v)) => {
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
    db.close().map_err(|e| format!("seed {seed}: close: {e}"))?;
    Ok((fs, log))
}

/// Opens `image` and judges it (see the module documentation): `Ok(true)` detected,
/// `Ok(false)` intact, `Err` a violation.
fn judge(image: &MemFs, log: &[Commit], floor: u64, ceiling: u64) -> Result<bool, String> {
    let db = match Db::open(DIR, workload::options(Arc::new(image.clone()), 0)) {
        Ok(db) => db,
        Err(e) if e.is_corruption() => return Ok(true),
        Err(e) => return Err(format!("open failed, but not as corruption: {e}")),
    };
    // A scan error is the reader noticing the damage (`check_recovered` scans once).
    if let Err(e) = workload::contents(&db) {
        return match e {
            Error::Corruption { .. } => Ok(true),
            e => Err(format!("scan failed, but not as corruption: {e}")),
        };
    }
    match check_recovered(&db, log, floor, ceiling) {
        Some(v) => Err(v),
        None => Ok(false),
    }
}

/// Runs the script of `seed` and damages each WAL segment and run `flips` times.
pub fn run_seed(seed: u64, ops: usize, flips: usize) -> Report {
    let mut report = Report {
        workloads: 1,
        ..Report::default()
    };
    let (fs, log) = match workload(seed, ops) {
        Ok(x) => x,
        Err(e) => {
            report.violations.push(e);
            return report;
        }
    };
    let all = log.last().map_or(0, |c| c.last);
    // Commits synced before the last commit started: its frame (or a later segment) records
    // them as synced.
    let last_started = log.last().map_or(0, |c| c.started_at);
    let wal_floor = log
        .iter()
        .filter(|c| c.durable_at.is_some_and(|at| at <= last_started))
        .map(|c| c.last)
        .max()
        .unwrap_or(0);
    let synced = fs.crash_clone();
    let dir = Path::new(DIR);
    let mut names = match synced.list(dir) {
        Ok(n) => n,
        Err(e) => {
            report.violations.push(format!("seed {seed}: list: {e}"));
            return report;
        }
    };
    names.sort();
    // The files the next open reads.
    let tree = match current_manifest(&synced, dir) {
        Ok(Some(m)) => read_manifest(&synced, &m).map_err(|e| e.to_string()),
        Ok(None) => Err("no CURRENT".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let tree = match tree {
        Ok(t) => t,
        Err(e) => {
            report
                .violations
                .push(format!("seed {seed}: reading the manifest: {e}"));
            return report;
        }
    };
    let mut rng = Rng::new(seed ^ 0x0B17_0B07);
    for name in names {
        let floor = match classify(&name) {
            Some(FileKind::Wal(n)) if n >= tree.min_log_number => wal_floor,
            Some(FileKind::Run(n)) if tree.runs.contains_key(&n) => all,
            _ => continue,
        };
        let path = dir.join(&name);
        let len = synced.file_size(&path).unwrap_or(0);
        if len == 0 {
            continue;
        }
        report.files += 1;
        for _ in 0..flips {
            let offset = rng.below(len) as usize;
            let xor = 1 + rng.below(255) as u8;
            let image = synced.crash_clone();
            if let Err(e) = image.corrupt_byte(&path, offset, xor) {
                report
                    .violations
                    .push(format!("seed {seed} {name}: damaging: {e}"));
                continue;
            }
            report.images += 1;
            let run = name.ends_with(".arrow");
            report.run_images += u64::from(run);
            match judge(&image, &log, floor, all) {
                Ok(true) => {
                    report.detected += 1;
                    report.run_detected += u64::from(run);
                }
                Ok(false) => report.intact += 1,
                Err(v) => report.violations.push(format!(
                    "seed {seed} {name} byte {offset} ^ {xor:#04x}: {v}"
                )),
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_in_synced_files_is_detected_or_harmless() {
        let r = run_seed(1, 150, 8);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert!(r.files >= 2 && r.detected > 0, "{r:?}");
    }
}
