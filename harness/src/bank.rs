//! G7: a bank of optimistic transactions on 4 threads, with simulated power losses.
//!
//! Per seed, on a `MemFs` with small memtables and aggressive compaction: 16 accounts
//! hold 1,000 each. Four threads loop; one iteration in 20 is an audit (a read-only or a
//! serializable transaction sums every account), the others a transfer: a serializable
//! transaction reads two accounts and the thread's own sequence key `seq:T`, moves a random
//! amount and writes all three; 30% commit with `Durability::Sync`. A conflict is retried.
//!
//! A run is cut into phases. In each, at a random moment while the threads work, the
//! driver notes every thread's highest synced acknowledged sequence number and takes the
//! image a power loss would leave (`MemFs::crash_clone`: synced data and directory entries
//! only). After the phase the image is opened, checked and becomes the next phase's store,
//! so recovery is exercised again and again on a store that keeps growing.
//!
//! Checked: every audit sees the total; every recovered store opens, holds the total, and
//! holds every thread's synced acknowledged transfers (`seq:T` at least the noted number,
//! and never beyond what the thread committed).

use crate::workload;
use crate::Rng;
use chronokv::vfs::MemFs;
use chronokv::{Bytes, Db, Durability, Error, Isolation, Options, TransactionOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

const ACCOUNTS: u64 = 16;
const THREADS: u64 = 4;
const START_BALANCE: i64 = 1000;
const TOTAL: i64 = START_BALANCE * ACCOUNTS as i64;

/// What one seed did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub transfers: u64,
    pub conflicts: u64,
    pub audits: u64,
    pub synced_acks: u64,
    pub recoveries: u64,
    pub violations: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.transfers += other.transfers;
        self.conflicts += other.conflicts;
        self.audits += other.audits;
        self.synced_acks += other.synced_acks;
        self.recoveries += other.recoveries;
        self.violations.extend(other.violations);
    }
}

fn options(fs: &MemFs) -> Options {
    Options {
        memtable_size: 16 << 10,
        ..workload::options(Arc::new(fs.clone()), 1)
    }
}

fn account(i: u64) -> String {
    format!("acct:{i:02}")
}

fn seq_key(t: u64) -> String {
    format!("seq:{t}")
}

fn number(v: Option<Bytes>) -> Result<i64, String> {
    let Some(v) = v else { return Ok(0) };
    std::str::from_utf8(&v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not a number: {v:?}"))
}

fn sum(db: &Db, read_only: bool) -> Result<i64, String> {
    let tx = db.begin_with(TransactionOptions {
        read_only,
        ..TransactionOptions::default()
    });
    let mut total = 0;
    for pair in tx.prefix("acct:") {
        total += number(Some(pair.map_err(|e| e.to_string())?.1))?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(total)
}

/// Shared between the driver and the threads of one phase.
struct Phase {
    /// Transfers still to commit in this phase.
    left: AtomicU64,
    /// Per thread: the highest sequence number acknowledged with `Durability::Sync`.
    synced: Vec<AtomicU64>,
    /// Per thread: the highest sequence number committed at all.
    committed: Vec<AtomicU64>,
    conflicts: AtomicU64,
    audits: AtomicU64,
    synced_acks: AtomicU64,
    failed: AtomicBool,
    violations: Mutex<Vec<String>>,
}

impl Phase {
    fn violation(&self, v: String) {
        self.failed.store(true, Ordering::Relaxed);
        self.violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(v);
    }
}

fn worker(db: &Db, phase: &Phase, t: u64, seed: u64) {
    let mut rng = Rng::new(seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut seq = match db
        .get(seq_key(t))
        .map_err(|e| e.to_string())
        .and_then(number)
    {
        Ok(n) => n as u64,
        Err(e) => return phase.violation(format!("thread {t}: reading seq: {e}")),
    };
    while !phase.failed.load(Ordering::Relaxed) {
        if rng.below(20) == 0 {
            match sum(db, rng.below(2) == 0) {
                Ok(TOTAL) => phase.audits.fetch_add(1, Ordering::Relaxed),
                Ok(other) => return phase.violation(format!("audit: sum {other}, want {TOTAL}")),
                Err(e) => return phase.violation(format!("audit failed: {e}")),
            };
            continue;
        }
        if phase
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_err()
        {
            return;
        }
        let from = rng.below(ACCOUNTS);
        let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
        let amount = 1 + rng.below(50) as i64;
        let sync = rng.below(10) < 3;
        loop {
            let mut tx = db.begin_with(TransactionOptions {
                isolation: Isolation::Serializable,
                durability: Some(if sync {
                    Durability::Sync
                } else {
                    Durability::Buffered
                }),
                ..TransactionOptions::default()
            });
            let read = |k: &str| tx.get(k).map_err(|e| e.to_string()).and_then(number);
            let balances = read(&account(from)).and_then(|a| Ok((a, read(&account(to))?)));
            let (a, b) = match balances {
                Ok(ab) => ab,
                Err(e) => return phase.violation(format!("thread {t}: read: {e}")),
            };
            let writes = [
                (account(from), a - amount),
                (account(to), b + amount),
                (seq_key(t), seq as i64 + 1),
            ];
            for (k, v) in writes {
                if let Err(e) = tx.put(k, v.to_string()) {
                    return phase.violation(format!("thread {t}: put: {e}"));
                }
            }
            match tx.commit() {
                Ok(_) => break,
                Err(Error::Conflict { .. }) => {
                    phase.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return phase.violation(format!("thread {t}: commit: {e}")),
            }
        }
        seq += 1;
        phase.committed[t as usize].store(seq, Ordering::Release);
        if sync {
            phase.synced[t as usize].store(seq, Ordering::Release);
            phase.synced_acks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Opens a recovered image and checks it against what was acknowledged before the crash.
fn check_recovered(image: &MemFs, synced: &[u64], committed: &[u64]) -> Result<Db, String> {
    let db = Db::open(Path::new(workload::DIR), options(image))
        .map_err(|e| format!("open failed: {e}"))?;
    let total = sum(&db, true)?;
    if total != TOTAL {
        return Err(format!("recovered sum {total}, want {TOTAL}"));
    }
    for t in 0..THREADS as usize {
        let seq = number(db.get(seq_key(t as u64)).map_err(|e| e.to_string())?)? as u64;
        if seq < synced[t] {
            return Err(format!(
                "thread {t}: synced transfer {} acknowledged, recovered only {seq}",
                synced[t]
            ));
        }
        if seq > committed[t] {
            return Err(format!(
                "thread {t}: recovered {seq}, but only {} were committed",
                committed[t]
            ));
        }
    }
    Ok(db)
}

/// Runs one seed: `transfers` transfers in `crashes + 1` phases.
pub fn run_seed(seed: u64, transfers: u64, crashes: u64) -> Report {
    let mut report = Report::default();
    let mut fs = MemFs::new();
    let setup = (|| -> chronokv::Result<Db> {
        let db = Db::open(Path::new(workload::DIR), options(&fs))?;
        let mut tx = db.begin();
        for a in 0..ACCOUNTS {
            tx.put(account(a), START_BALANCE.to_string())?;
        }
        tx.commit()?;
        db.sync_wal()?;
        Ok(db)
    })();
    let mut db = match setup {
        Ok(db) => db,
        Err(e) => {
            report.violations.push(format!("seed {seed}: setup: {e}"));
            return report;
        }
    };
    let mut rng = Rng::new(seed);
    let phases = crashes + 1;
    for p in 0..phases {
        let quota = transfers / phases + u64::from(p < transfers % phases);
        let phase = Phase {
            left: AtomicU64::new(quota),
            synced: (0..THREADS).map(|_| AtomicU64::new(0)).collect(),
            committed: (0..THREADS).map(|_| AtomicU64::new(0)).collect(),
            conflicts: AtomicU64::new(0),
            audits: AtomicU64::new(0),
            synced_acks: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            violations: Mutex::new(Vec::new()),
        };
        // The sequence numbers the recovered store starts from count as acknowledged.
        for t in 0..THREADS {
            let start = db.get(seq_key(t)).ok().flatten();
            let n = number(start).unwrap_or(0) as u64;
            phase.synced[t as usize].store(n, Ordering::Relaxed);
            phase.committed[t as usize].store(n, Ordering::Relaxed);
        }
        let crash_after = quota - rng.below(quota.max(1));
        let mut crash = None;
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (db, phase) = (&db, &phase);
                s.spawn(move || worker(db, phase, t, seed.wrapping_add(p * 1000)));
            }
            // At a random moment of the phase: note the synced acks, then lose power.
            while phase.left.load(Ordering::Acquire) > quota - crash_after
                && !phase.failed.load(Ordering::Relaxed)
            {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            if p + 1 < phases {
                let synced: Vec<u64> = phase
                    .synced
                    .iter()
                    .map(|a| a.load(Ordering::Acquire))
                    .collect();
                crash = Some((fs.crash_clone(), synced));
            }
        });
        let committed: Vec<u64> = phase
            .committed
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .collect();
        report.transfers += quota - phase.left.load(Ordering::Acquire);
        report.conflicts += phase.conflicts.load(Ordering::Relaxed);
        report.audits += phase.audits.load(Ordering::Relaxed);
        report.synced_acks += phase.synced_acks.load(Ordering::Relaxed);
        let mut violations = std::mem::take(
            &mut *phase
                .violations
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        match sum(&db, false) {
            Ok(TOTAL) => {}
            Ok(other) => violations.push(format!("live sum {other}, want {TOTAL}")),
            Err(e) => violations.push(format!("live audit: {e}")),
        }
        drop(db);
        let tag = |v: String| format!("seed {seed}, phase {p}: {v}");
        let Some((image, synced)) = crash else {
            report.violations.extend(violations.into_iter().map(tag));
            break;
        };
        match check_recovered(&image, &synced, &committed) {
            Ok(recovered) => {
                report.recoveries += 1;
                db = recovered;
                fs = image;
            }
            Err(e) => {
                violations.push(format!("after the power loss: {e}"));
                report.violations.extend(violations.into_iter().map(tag));
                break;
            }
        }
        if !violations.is_empty() {
            report.violations.extend(violations.into_iter().map(tag));
            break;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_commits_every_transfer_and_recovers_each_phase() {
        let r = run_seed(3, 3000, 3);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.transfers, r.recoveries), (3000, 3));
        assert!(r.synced_acks > 0 && r.audits > 0);
    }

    #[test]
    fn the_checks_catch_a_broken_total_and_a_lost_synced_transfer() {
        let fs = MemFs::new();
        {
            let db = Db::open(Path::new(workload::DIR), options(&fs)).unwrap();
            for a in 0..ACCOUNTS {
                db.put(account(a), START_BALANCE.to_string()).unwrap();
            }
            db.put(seq_key(0), "5").unwrap();
            db.sync_wal().unwrap();
        }
        let image = fs.crash_clone();
        let (synced, committed) = ([5, 0, 0, 0], [5, 0, 0, 0]);
        assert!(check_recovered(&image, &synced, &committed).is_ok());
        let lost = check_recovered(&image, &[6, 0, 0, 0], &[6, 0, 0, 0]).unwrap_err();
        assert!(lost.contains("synced transfer 6 acknowledged"), "{lost}");
        let invented = check_recovered(&image, &[0; 4], &[4, 0, 0, 0]).unwrap_err();
        assert!(invented.contains("only 4 were committed"), "{invented}");
        {
            let db = Db::open(Path::new(workload::DIR), options(&image)).unwrap();
            db.put(account(3), "999").unwrap();
        }
        let broken = check_recovered(&image, &synced, &committed).unwrap_err();
        assert!(broken.contains("recovered sum 15999"), "{broken}");
    }
}
