//! What the crash stage (G1) and the I/O-error stage (G2) share: the engine configuration,
//! the seeded operation script, the commit log and the recovery oracle.
//!
//! The script: per step, 3% explicit flushes, 1% full manual compactions, 1% checkpoints
//! (each into a new directory), otherwise a commit of one put or delete (or, 10% of the
//! time, a batch of up to 5) over 48 keys with values of up to 119 bytes, 30% of commits
//! with `Durability::Sync`. The configuration (1 KiB
//! memtable, 256-byte blocks, leveled compaction at 2 level-0 runs, 2 KiB manifests) makes
//! WAL rotation, flushes, compactions and manifest rotations happen many times per script.

use crate::Rng;
use chronokv::vfs::Vfs;
use chronokv::{CompactionStyle, Db, Durability, Error, Leveled, Options, Version, WriteBatch};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where every workload keeps its database.
pub const DIR: &str = "/db";

/// The engine configuration of every workload, on `vfs`.
pub fn options(vfs: Arc<dyn Vfs>, compaction_threads: usize) -> Options {
    Options {
        vfs,
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

/// One key/value change: `None` deletes.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    Flush,
    Compact,
    /// `Db::checkpoint` into [`checkpoint_dir`]`(n)`, the script's n-th checkpoint.
    Checkpoint {
        n: u64,
    },
    Write {
        changes: Vec<Change>,
        sync: bool,
    },
}

/// Where a script's n-th checkpoint goes.
pub fn checkpoint_dir(n: u64) -> String {
    format!("/checkpoint-{n}")
}

/// The seeded script of a workload: an endless sequence of steps.
#[derive(Debug, Clone)]
pub struct Script {
    rng: Rng,
    checkpoints: u64,
}

impl Script {
    pub fn new(seed: u64) -> Script {
        Script {
            rng: Rng::new(seed),
            checkpoints: 0,
        }
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let rng = &mut self.rng;
        let roll = rng.below(100);
        if roll < 3 {
            return Step::Flush;
        }
        if roll < 4 {
            return Step::Compact;
        }
        if roll < 5 {
            self.checkpoints += 1;
            return Step::Checkpoint {
                n: self.checkpoints,
            };
        }
        let n = if roll < 15 { 1 + rng.below(5) } else { 1 };
        let mut changes = Vec::new();
        for _ in 0..n {
            let k = format!("k{:02}", rng.below(48)).into_bytes();
            if rng.chance(25) {
                changes.push((k, None));
            } else {
                let len = rng.below(120) as usize;
                let b = rng.next_u64() as u8;
                changes.push((k, Some(vec![b; len])));
            }
        }
        let sync = rng.chance(30);
        Step::Write { changes, sync }
    }
}

/// Runs one step. A write returns the version of its last entry, a checkpoint the version
/// it holds.
pub fn apply(db: &Db, step: &Step) -> Result<Option<Version>, Error> {
    match step {
        Step::Flush => db.flush().map(|()| None),
        Step::Compact => db.compact_range::<&[u8], _>(..).map(|()| None),
        Step::Checkpoint { n } => db.checkpoint(checkpoint_dir(*n)).map(|i| Some(i.version)),
        Step::Write { changes, sync } => {
            let mut batch = WriteBatch::new();
            for (k, v) in changes {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                };
            }
            let durability = if *sync {
                Durability::Sync
            } else {
                Durability::Buffered
            };
            db.write_with(batch, durability).map(Some)
        }
    }
}

/// What one commit did, for the oracle.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Version of its last entry.
    pub last: u64,
    pub changes: Vec<Change>,
    /// Mutating calls issued before the commit started.
    pub started_at: u64,
    /// Synced itself, or a completed flush followed it: the mutating-call count from which
    /// on it is durable.
    pub durable_at: Option<u64>,
}

/// Every commit so far is durable from mutation `at` on.
pub fn mark_durable(log: &mut [Commit], at: u64) {
    for c in log.iter_mut().rev() {
        if c.durable_at.is_some() {
            break;
        }
        c.durable_at = Some(at);
    }
}

/// The contents after applying every commit up to `version`.
pub fn model_at(log: &[Commit], version: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for c in log.iter().take_while(|c| c.last <= version) {
        for (k, v) in &c.changes {
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
    }
    m
}

/// The live pairs of `db` (a full scan).
pub fn contents(db: &Db) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Error> {
    db.scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect()
}

/// The oracle on a recovered database: the recovered version `v` satisfies
/// `floor <= v <= ceiling` (D and P), is the end of a commit (A), and the contents equal the
/// log applied up to `v` (P, and R: no resurrected delete). Returns the violation, if any.
pub fn check_recovered(db: &Db, log: &[Commit], floor: u64, ceiling: u64) -> Option<String> {
    let v = db.latest_version().get();
    if v < floor {
        return Some(format!("D: recovered v{v}, but v{floor} was durable"));
    }
    if v > ceiling {
        return Some(format!("P: recovered v{v}, but only v{ceiling} was issued"));
    }
    if v != 0 && !log.iter().any(|c| c.last == v) {
        return Some(format!("A: recovered v{v} is inside a batch"));
    }
    let got = match contents(db) {
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
    None
}
