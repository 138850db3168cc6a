//! The bank workload: concurrent money transfers as serializable transactions, with audits.
//!
//! Each thread loops: 1 in 20 iterations is an audit (a read-only transaction sums every
//! balance and checks the total); the others move a random amount between two random
//! accounts in a serializable read-write transaction (read both balances, write both). A
//! conflict is retried as a new transaction. The total is checked again after a reopen.
//!
//! `cargo run --release --example bank [ACCOUNTS] [TRANSFERS_PER_THREAD] [DIR]` (defaults:
//! 1,000 accounts, 20,000 transfers per thread, `./bank-data`, wiped first). Runs with 2 and
//! then 4 threads and prints one markdown row each: committed transfers per second, conflict
//! rate (refused commits / commit attempts), how many attempts overlapped another commit
//! (some commit was published between their begin and their commit: only those can
//! conflict) and audits.

use chronokv::{Db, Error, Options};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

mod common;
use common::next;

fn balance(v: Option<chronokv::Bytes>) -> i64 {
    v.map_or(0, |b| {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("a balance")
    })
}

fn account(i: u64) -> String {
    format!("acct:{i:06}")
}

fn total(db: &Db) -> chronokv::Result<i64> {
    db.prefix("acct:")
        .try_fold(0, |sum, r| Ok(sum + balance(Some(r?.1))))
}

struct Counts {
    committed: AtomicU64,
    conflicts: AtomicU64,
    audits: AtomicU64,
    /// Transfers that saw another commit published between their begin and their commit.
    overlapped: AtomicU64,
}

fn worker(db: &Db, seed: u64, accounts: u64, transfers: u64, want: i64, c: &Counts) {
    let mut rng = seed;
    let mut done = 0;
    while done < transfers {
        if next(&mut rng).is_multiple_of(20) {
            let tx = db.begin_read_only();
            let sum: i64 = tx
                .prefix("acct:")
                .map(|r| balance(Some(r.expect("audit").1)))
                .sum();
            assert_eq!(sum, want, "audit at {}", tx.version());
            c.audits.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let from = next(&mut rng) % accounts;
        let to = (from + 1 + next(&mut rng) % (accounts - 1)) % accounts;
        let amount = 1 + (next(&mut rng) % 100) as i64;
        let mut tx = db.begin();
        let (a, b) = (account(from), account(to));
        let (ba, bb) = (
            balance(tx.get(&a).expect("get")),
            balance(tx.get(&b).expect("get")),
        );
        tx.put(&a, (ba - amount).to_string()).expect("put");
        tx.put(&b, (bb + amount).to_string()).expect("put");
        if db.latest_version() > tx.version() {
            c.overlapped.fetch_add(1, Ordering::Relaxed);
        }
        match tx.commit() {
            Ok(_) => {
                c.committed.fetch_add(1, Ordering::Relaxed);
                done += 1;
            }
            Err(Error::Conflict { .. }) => {
                c.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => panic!("transfer failed: {e}"),
        }
    }
}

fn run(dir: &std::path::Path, threads: u64, accounts: u64, transfers: u64) -> chronokv::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let db = Db::open(dir, Options::default())?;
    let mut tx = db.begin();
    for i in 0..accounts {
        tx.put(account(i), "1000")?;
    }
    tx.commit()?;
    let want = 1000 * accounts as i64;
    let c = Counts {
        committed: AtomicU64::new(0),
        conflicts: AtomicU64::new(0),
        audits: AtomicU64::new(0),
        overlapped: AtomicU64::new(0),
    };
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (db, c) = (&db, &c);
            s.spawn(move || worker(db, t + 1, accounts, transfers, want, c));
        }
    });
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(total(&db)?, want);
    db.close()?;
    let db = Db::open(dir, Options::default())?;
    assert_eq!(total(&db)?, want, "the total after reopen");
    let committed = c.committed.into_inner();
    let conflicts = c.conflicts.into_inner();
    let attempts = (committed + conflicts) as f64;
    println!(
        "| {threads} | {accounts} | {committed} | {:.0} | {:.2}% | {:.1}% | {} | {secs:.1} |",
        committed as f64 / secs,
        100.0 * conflicts as f64 / attempts,
        100.0 * c.overlapped.into_inner() as f64 / attempts,
        c.audits.into_inner(),
    );
    Ok(())
}

fn main() -> chronokv::Result<()> {
    let mut args = std::env::args().skip(1);
    let accounts: u64 = args.next().map_or(1000, |a| a.parse().expect("ACCOUNTS"));
    let transfers: u64 = args
        .next()
        .map_or(20_000, |a| a.parse().expect("TRANSFERS"));
    let dir = args.next().unwrap_or_else(|| "bank-data".into());
    assert!(accounts >= 2, "at least 2 accounts");
    println!(
        "| threads | accounts | committed transfers | transfers/s | conflict rate | overlapped | audits (all balanced) | seconds |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for threads in [2, 4] {
        run(dir.as_ref(), threads, accounts, transfers)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
