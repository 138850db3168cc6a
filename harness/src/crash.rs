//! Simulated power loss (RELIABILITY.md, G1).
//!
//! One *workload* per seed: a single writer issues puts, deletes and batches (some with
//! `Durability::Sync`), explicit flushes and manual compactions, on a `MemFs` that records a
//! crash point before every mutating call, while the engine's flusher and a compaction
//! thread work in the background with a tiny memtable, aggressive leveled compaction and a
//! tiny manifest (so flushes, compactions and manifest rotations happen all the time).
//!
//! Then, for every recorded crash point (or every `stride`-th) and each [`CrashMode`], the
//! image a power loss there would leave is reopened and checked:
//!
//! - **O** the open succeeds;
//! - **D** every write acknowledged as synced (or followed by a completed flush) before the
//!   crash point is there: the recovered version is at least that write's version;
//! - **P** the recovered version was issued before the crash point, and the contents equal
//!   the commit log applied up to that version (so no hole, no resurrected delete: **R**);
//! - **A** the recovered version is the end of a commit (no half batch).
//!
//! The background threads make the exact sequence of calls vary a little between runs of
//! the same seed; the seed reproduces the workload, and a violation prints the seed, the
//! crash point and the mode.

use crate::Rng;
use chronokv::vfs::{CrashMode, MemFs};
use chronokv::{CompactionStyle, Db, Durability, Leveled, Options, WriteBatch};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one commit did, for the oracle.
#[derive(Debug, Clone)]
struct Commit {
    /// Version of its last entry.
    last: u64,
    entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Mutating calls issued before the commit started.
    started_at: u64,
    /// Synced itself, or a completed flush followed it.
    durable_at: Option<u64>,
}

/// Figures of a crash run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub workloads: u64,
    pub ops: u64,
    /// Crash points recorded over all workloads.
    pub points: u64,
    /// Crash points whose images were checked.
    pub points_checked: u64,
    /// Crash states (images) reopened and checked.
    pub states: u64,
    /// One line per violation, with seed, point and mode.
    pub violations: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.workloads += other.workloads;
        self.ops += other.ops;
        self.points += other.points;
        self.points_checked += other.points_checked;
        self.states += other.states;
        self.violations.extend(other.violations);
    }
}

fn options(fs: &MemFs, compaction_threads: usize) -> Options {
    Options {
        vfs: Arc::new(fs.clone()),
        memtable_size: 1 << 10,
        block_size: 256,
        max_manifest_bytes: 2 << 10,
        compaction_threads,
        compaction: CompactionStyle::Leveled(Leveled {
            l0_trigger: 2,
            size_ratio: 4,
            base_level_bytes: 4 << 10,
            target_run_size: 2 << 10,
            max_levels: 4,
        }),
        ..Options::default()
    }
}

const DIR: &str = "/db";

fn key(rng: &mut Rng) -> Vec<u8> {
    format!("k{:02}", rng.below(48)).into_bytes()
}

fn value(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(120) as usize;
    let b = rng.next_u64() as u8;
    vec![b; len]
}

/// Runs the workload of `seed` with `ops` operations; returns the file system (with its
/// crash points) and the commit log.
fn workload(seed: u64, ops: usize) -> Result<(MemFs, Vec<Commit>), String> {
    let fs = MemFs::new();
    fs.record_crash_points();
    let db = Db::open(DIR, options(&fs, 1)).map_err(|e| format!("seed {seed}: open: {e}"))?;
    let mut rng = Rng::new(seed);
    let mut log: Vec<Commit> = Vec::new();
    for _ in 0..ops {
        let started_at = fs.mutations();
        let roll = rng.below(100);
        if roll < 3 {
            db.flush().map_err(|e| format!("seed {seed}: flush: {e}"))?;
            mark_durable(&mut log, fs.mutations());
            continue;
        }
        if roll < 4 {
            db.compact_range::<&[u8], _>(..)
                .map_err(|e| format!("seed {seed}: compact: {e}"))?;
            mark_durable(&mut log, fs.mutations());
            continue;
        }
        let mut batch = WriteBatch::new();
        let mut entries = Vec::new();
        let n = if roll < 15 { 1 + rng.below(5) } else { 1 };
        for _ in 0..n {
            let k = key(&mut rng);
            if rng.chance(25) {
                batch.delete(&k);
                entries.push((k, None));
            } else {
                let v = value(&mut rng);
                batch.put(&k, &v);
                entries.push((k, Some(v)));
            }
        }
        let sync = rng.chance(30);
        let durability = if sync {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        let version = db
            .write_with(batch, durability)
            .map_err(|e| format!("seed {seed}: write: {e}"))?;
        let acked_at = fs.mutations();
        log.push(Commit {
            last: version.get(),
            entries,
            started_at,
            durable_at: None,
        });
        if sync {
            mark_durable(&mut log, acked_at);
        }
    }
    db.close().map_err(|e| format!("seed {seed}: close: {e}"))?;
    Ok((fs, log))
}

/// Every commit so far is durable from mutation `at` on.
fn mark_durable(log: &mut [Commit], at: u64) {
    for c in log.iter_mut().rev() {
        if c.durable_at.is_some() {
            break;
        }
        c.durable_at = Some(at);
    }
}

/// The contents after applying every commit up to `version`.
fn model_at(log: &[Commit], version: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for c in log.iter().take_while(|c| c.last <= version) {
        for (k, v) in &c.entries {
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
    }
    m
}

/// Reopens one crash image and checks the oracle; returns the violation, if any.
fn check(image: &MemFs, log: &[Commit], point: u64) -> Option<String> {
    let db = match Db::open(DIR, options(image, 0)) {
        Ok(db) => db,
        Err(e) => return Some(format!("O: open failed: {e}")),
    };
    let v = db.latest_version().get();
    // Point `p` is recorded before mutating call `p + 1`: a commit acknowledged when
    // `mutations() == m` happened before every point `p >= m`.
    let floor = log
        .iter()
        .filter(|c| c.durable_at.is_some_and(|at| at <= point))
        .map(|c| c.last)
        .max()
        .unwrap_or(0);
    let ceiling = log
        .iter()
        .filter(|c| c.started_at <= point)
        .map(|c| c.last)
        .max()
        .unwrap_or(0);
    if v < floor {
        return Some(format!("D: recovered v{v}, but v{floor} was durable"));
    }
    if v > ceiling {
        return Some(format!("P: recovered v{v}, but only v{ceiling} was issued"));
    }
    if v != 0 && !log.iter().any(|c| c.last == v) {
        return Some(format!("A: recovered v{v} is inside a batch"));
    }
    let got: Result<BTreeMap<Vec<u8>, Vec<u8>>, _> = db
        .scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect();
    let got = match got {
        Ok(g) => g,
        Err(e) => return Some(format!("O: scan failed: {e}")),
    };
    let expect = model_at(log, v);
    if got != expect {
        let missing = expect.keys().filter(|k| !got.contains_key(*k)).count();
        let extra = got.keys().filter(|k| !expect.contains_key(*k)).count();
        return Some(format!(
            "P/R: contents differ from the log at v{v} ({missing} missing, {extra} extra, \
             others changed)"
        ));
    }
    if let Err(e) = db.close() {
        return Some(format!("O: close after recovery failed: {e}"));
    }
    None
}

/// Runs the workload of `seed` and checks every `stride`-th crash point in three modes.
pub fn run_seed(seed: u64, ops: usize, stride: usize) -> Report {
    let mut report = Report {
        workloads: 1,
        ops: ops as u64,
        ..Report::default()
    };
    let (fs, log) = match workload(seed, ops) {
        Ok(x) => x,
        Err(e) => {
            report.violations.push(e);
            return report;
        }
    };
    let points = fs.crash_points();
    report.points = points as u64;
    for point in (0..points).step_by(stride.max(1)) {
        report.points_checked += 1;
        let salt = seed.wrapping_mul(1_000_003) ^ point as u64;
        let modes = [
            CrashMode::SyncedOnly,
            CrashMode::RandomPages { seed: salt },
            CrashMode::TornWrite { seed: salt },
        ];
        for mode in modes {
            let Some(image) = fs.crash_image(point, mode) else {
                continue;
            };
            report.states += 1;
            if let Some(v) = check(&image, &log, point as u64) {
                report
                    .violations
                    .push(format!("seed {seed} point {point} {mode:?}: {v}"));
            }
        }
    }
    report
}
