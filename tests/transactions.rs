//! Transactions: read-your-writes, rollback, the classic anomalies under both isolation
//! levels, phantoms, conflicts with plain writes, bounded conflict tracking, a concurrent
//! bank workload across reopen, and atomicity after simulated power loss.

mod common;

use chronokv::vfs::{CrashMode, MemFs};
use chronokv::{
    Bytes, Db, Durability, Error, Isolation, Options, Transaction, TransactionOptions, Version,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

fn mem_db() -> (MemFs, Db) {
    let fs = MemFs::new();
    let db = common::open_mem(&fs, 64 << 10);
    (fs, db)
}

fn si(db: &Db) -> Transaction {
    db.begin_with(TransactionOptions {
        isolation: Isolation::Snapshot,
        ..TransactionOptions::default()
    })
}

fn pairs(it: impl Iterator<Item = chronokv::Result<(Bytes, Bytes)>>) -> Vec<(String, String)> {
    it.map(|r| {
        let (k, v) = r.expect("scan");
        (
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        )
    })
    .collect()
}

fn int(v: Option<Bytes>) -> i64 {
    v.map_or(0, |b| std::str::from_utf8(&b).unwrap().parse().unwrap())
}

fn is_conflict<T: std::fmt::Debug>(r: chronokv::Result<T>) -> bool {
    match r {
        Err(e @ Error::Conflict { .. }) => {
            assert!(e.is_retryable());
            true
        }
        Ok(_) => false,
        Err(e) => panic!("expected a conflict or success, got {e}"),
    }
}

#[test]
fn a_transaction_reads_its_own_writes_and_others_see_them_only_after_commit() {
    let (_fs, db) = mem_db();
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        db.put(k, v).unwrap();
    }
    // Snapshot isolation, so the concurrent write of "a" below (which a serializable scan
    // of everything would conflict with) lets this transaction commit.
    let mut tx = si(&db);
    tx.put("b", "20").unwrap();
    tx.delete("c").unwrap();
    tx.put("bb", "new").unwrap();
    tx.put("e", "").unwrap();
    db.put("a", "outside").unwrap(); // after the snapshot: invisible to tx
    assert_eq!(tx.get("b").unwrap().as_deref(), Some(&b"20"[..]));
    assert_eq!(tx.get("c").unwrap(), None);
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    let want = [
        ("a", "1"),
        ("b", "20"),
        ("bb", "new"),
        ("d", "4"),
        ("e", ""),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(pairs(tx.scan::<&str, _>(..)), want);
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(pairs(tx.scan::<&str, _>(..).rev()), rev);
    assert_eq!(pairs(tx.prefix("b")), want[1..3].to_vec());
    assert_eq!(pairs(tx.scan("b".."d")), want[1..3].to_vec());
    // Both ends at once meet in the middle without repeating or losing a pair.
    let mut it = tx.scan::<&str, _>(..);
    let mut mixed = Vec::new();
    let mut back = Vec::new();
    loop {
        match (it.next(), it.next_back()) {
            (Some(f), Some(b)) => {
                mixed.push(f.unwrap());
                back.push(b.unwrap());
            }
            (Some(f), None) => mixed.push(f.unwrap()),
            (None, Some(b)) => back.push(b.unwrap()),
            (None, None) => break,
        }
    }
    back.reverse();
    mixed.extend(back);
    assert_eq!(pairs(mixed.into_iter().map(Ok)), want);
    drop(it);
    // Nothing is visible outside before the commit.
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"2"[..]));
    let prev = db.latest_version();
    let v = tx.commit().unwrap();
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"20"[..]));
    assert_eq!(db.get("c").unwrap(), None);
    // One batch: four entries with consecutive versions ending at v.
    assert_eq!((db.latest_version(), v), (v, Version(prev.get() + 4)));
}

#[test]
fn rollback_drop_and_read_only_apply_nothing() {
    let (_fs, db) = mem_db();
    db.put("k", "0").unwrap();
    let before = db.latest_version();
    let mut tx = db.begin();
    tx.put("k", "1").unwrap();
    tx.rollback();
    {
        let mut tx = db.begin();
        tx.put("k", "2").unwrap();
    }
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"0"[..]));
    assert_eq!(db.latest_version(), before);
    let mut ro = db.begin_read_only();
    assert!(ro.is_read_only());
    assert!(matches!(ro.put("k", "3"), Err(Error::InvalidArgument(_))));
    assert!(matches!(ro.delete("k"), Err(Error::InvalidArgument(_))));
    db.put("k", "4").unwrap();
    assert_eq!(ro.get("k").unwrap().as_deref(), Some(&b"0"[..]));
    assert_eq!(ro.commit().unwrap(), before);
    // A transaction that wrote nothing commits at its snapshot, whatever changed.
    let tx = db.begin();
    assert_eq!(tx.get("k").unwrap().as_deref(), Some(&b"4"[..]));
    db.put("k", "5").unwrap();
    let at = tx.version();
    assert_eq!(tx.commit().unwrap(), at);
    // Oversized keys are refused when buffered.
    let mut tx = db.begin();
    assert!(matches!(
        tx.put(vec![0u8; 70_000], "v"),
        Err(Error::InvalidArgument(_))
    ));
}

/// A transaction holds the store's shared state, as a snapshot does: it is `'static` and
/// `Send`, so it can move to another thread; one that outlives its `Db` reads its snapshot
/// but commits nothing.
#[test]
fn a_transaction_moves_across_threads_and_outliving_its_db_commits_nothing() {
    fn static_send<T: Send + 'static>(t: T) -> T {
        t
    }
    let (fs, db) = mem_db();
    db.put("k", "0").unwrap();
    let mut tx = static_send(db.begin());
    tx = std::thread::spawn(move || {
        tx.put("k", "1").unwrap();
        tx
    })
    .join()
    .unwrap();
    assert_eq!(tx.commit().unwrap(), db.latest_version());
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"1"[..]));

    let mut late = db.begin();
    late.put("k", "2").unwrap();
    db.close().unwrap();
    assert_eq!(late.get("k").unwrap().as_deref(), Some(&b"2"[..]));
    assert!(matches!(late.commit(), Err(Error::Closed)));
    let db = common::open_mem(&fs, 64 << 10);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn lost_updates_are_prevented_under_both_isolation_levels() {
    for isolation in [Isolation::Serializable, Isolation::Snapshot] {
        let (_fs, db) = mem_db();
        db.put("counter", "0").unwrap();
        let opts = TransactionOptions {
            isolation,
            ..TransactionOptions::default()
        };
        let mut t1 = db.begin_with(opts);
        let mut t2 = db.begin_with(opts);
        let c1 = int(t1.get("counter").unwrap());
        let c2 = int(t2.get("counter").unwrap());
        t1.put("counter", (c1 + 1).to_string()).unwrap();
        t2.put("counter", (c2 + 1).to_string()).unwrap();
        t1.commit().unwrap();
        let err = t2.commit().unwrap_err();
        assert!(
            err.to_string().contains("\"counter\" was written"),
            "{isolation:?}: {err}"
        );
        assert_eq!(int(db.get("counter").unwrap()), 1);
    }
}

/// Two doctors on call; each may go off call if the other is still on (x + y >= 1).
#[test]
fn write_skew_is_prevented_when_serializable_and_allowed_under_snapshot_isolation() {
    for isolation in [Isolation::Serializable, Isolation::Snapshot] {
        let (_fs, db) = mem_db();
        db.put("alice", "1").unwrap();
        db.put("bob", "1").unwrap();
        let opts = TransactionOptions {
            isolation,
            ..TransactionOptions::default()
        };
        let mut t1 = db.begin_with(opts);
        let mut t2 = db.begin_with(opts);
        for (t, me) in [(&mut t1, "alice"), (&mut t2, "bob")] {
            let on_call = int(t.get("alice").unwrap()) + int(t.get("bob").unwrap());
            assert_eq!(on_call, 2);
            t.put(me, "0").unwrap();
        }
        t1.commit().unwrap();
        let second = t2.commit();
        let on_call = int(db.get("alice").unwrap()) + int(db.get("bob").unwrap());
        match isolation {
            Isolation::Serializable => {
                assert!(is_conflict(second));
                assert_eq!(on_call, 1);
            }
            Isolation::Snapshot => {
                second.unwrap();
                assert_eq!(on_call, 0, "snapshot isolation allows write skew");
            }
            other => panic!("no expectation for {other:?}"),
        }
    }
}

/// Fekete, O'Neil and O'Neil's read-only anomaly: checking `x` and savings `y`, both 0.
/// T2 withdraws 10 from savings, charging 1 more if x + y would go negative; T1 deposits 20
/// into checking; read-only T3 reads both between T1's commit and T2's.
#[test]
fn the_read_only_anomaly_is_prevented_when_serializable() {
    for isolation in [Isolation::Serializable, Isolation::Snapshot] {
        let (_fs, db) = mem_db();
        db.put("x", "0").unwrap();
        db.put("y", "0").unwrap();
        let opts = TransactionOptions {
            isolation,
            ..TransactionOptions::default()
        };
        let mut t2 = db.begin_with(opts);
        let (x, y) = (int(t2.get("x").unwrap()), int(t2.get("y").unwrap()));
        let mut t1 = db.begin_with(opts);
        let x1 = int(t1.get("x").unwrap());
        t1.put("x", (x1 + 20).to_string()).unwrap();
        t1.commit().unwrap();
        let t3 = db.begin_with(TransactionOptions {
            read_only: true,
            ..opts
        });
        let seen = (int(t3.get("x").unwrap()), int(t3.get("y").unwrap()));
        t3.commit().unwrap();
        assert_eq!(seen, (20, 0));
        let charge = if x + y - 10 < 0 { 11 } else { 10 };
        t2.put("y", (y - charge).to_string()).unwrap();
        let t2_result = t2.commit();
        match isolation {
            // T2 read x, which T1 changed: refused, so T3's view is the serial order T1, T3.
            Isolation::Serializable => assert!(is_conflict(t2_result)),
            // Under snapshot isolation T2 commits with y = -11: no serial order of T1, T2
            // lets T3 see x = 20 with y = 0 and still charge the penalty.
            Isolation::Snapshot => {
                t2_result.unwrap();
                assert_eq!(int(db.get("y").unwrap()), -11);
            }
            other => panic!("no expectation for {other:?}"),
        }
    }
}

#[test]
fn scans_conflict_with_writes_inside_the_part_they_read() {
    let (_fs, db) = mem_db();
    for k in ["b", "d", "f", "h"] {
        db.put(k, "1").unwrap();
    }
    // (how many pairs to read, from which end; the key written meanwhile; conflict?)
    let cases = [
        // A full scan reads the whole range, the gaps too.
        (None, false, "g0", true),
        (None, false, "z", false), // outside a..i
        // Two pairs from the front read a..=d.
        (Some(2), false, "c", true),
        (Some(2), false, "e", false),
        // Two pairs from the back read f..i.
        (Some(2), true, "g", true),
        (Some(2), true, "e", false),
        // Nothing read, nothing to conflict with.
        (Some(0), false, "c", false),
    ];
    for (take, back, write, conflicts) in cases {
        let mut tx = db.begin();
        let mut it = tx.scan("a".."i");
        let n = take.unwrap_or(usize::MAX);
        let seen = if back {
            it.by_ref().rev().take(n).count()
        } else {
            it.by_ref().take(n).count()
        };
        assert_eq!(seen, take.unwrap_or(4));
        drop(it);
        tx.put("znote", "x").unwrap();
        db.put(write, "w").unwrap();
        let case = format!("take {take:?}, back {back}, write {write}");
        assert_eq!(is_conflict(tx.commit()), conflicts, "{case}");
        db.delete(write).unwrap();
    }
    // A prefix scan is a range scan: a new key under the prefix conflicts.
    let mut tx = db.begin();
    assert_eq!(tx.prefix("d").count(), 1);
    tx.put("znote", "p").unwrap();
    db.put("dd", "w").unwrap();
    assert!(is_conflict(tx.commit()));
    // Snapshot isolation tracks no reads: the phantom is allowed.
    let mut tx = si(&db);
    assert!(tx.scan("a".."i").count() > 0);
    tx.put("znote", "si").unwrap();
    db.put("c", "w").unwrap();
    tx.commit().unwrap();
}

#[test]
fn plain_writes_conflict_with_transactions_that_read_their_keys() {
    let (_fs, db) = mem_db();
    db.put("k", "1").unwrap();
    let mut tx = db.begin();
    let _ = tx.get("k").unwrap();
    tx.put("other", "x").unwrap();
    let mut batch = chronokv::WriteBatch::new();
    batch.put("unrelated", "1").delete("k");
    db.write(batch).unwrap();
    assert!(is_conflict(tx.commit()));
    assert_eq!(db.get("other").unwrap(), None);
    // Blind writes do not conflict: nothing read, serializable in commit order.
    let mut tx = db.begin();
    tx.put("k", "blind").unwrap();
    db.put("k", "plain").unwrap();
    tx.commit().unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"blind"[..]));
}

#[test]
fn conflict_tracking_memory_is_bounded_and_released() {
    let fs = MemFs::new();
    let opts = Options {
        transaction_conflict_memory: 4 << 10,
        ..common::mem_options(&fs, 64 << 10)
    };
    let db = Db::open(Path::new("/db"), opts).unwrap();
    let mut old = db.begin();
    let _ = old.get("unrelated").unwrap();
    old.put("mine", "1").unwrap();
    for i in 0..1000 {
        db.put(format!("key{i:04}"), "v").unwrap();
        let s = db.stats();
        assert!(
            s.conflict_tracking_bytes <= 4 << 10,
            "{}",
            s.conflict_tracking_bytes
        );
        assert_eq!(s.transactions_open, 1);
    }
    // The old transaction cannot be checked against forgotten writes: refused, retryable.
    let err = old.commit().unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("older than the conflict tracker"),
        "{err}"
    );
    let s = db.stats();
    assert_eq!((s.transactions_open, s.conflict_tracking_bytes), (0, 0));
    // A retry that began after the forgotten writes commits.
    let mut retry = db.begin();
    let _ = retry.get("unrelated").unwrap();
    retry.put("mine", "1").unwrap();
    retry.commit().unwrap();
    // With no transaction open, plain writes are not tracked at all.
    db.put("plain", "1").unwrap();
    assert_eq!(db.stats().conflict_tracking_bytes, 0);
}

/// Random transfers between accounts and audits, on `threads` threads; returns
/// (committed transfers, conflicts).
fn bank(db: &Db, threads: usize, accounts: u32, transfers_per_thread: u64) -> (u64, u64) {
    let committed = AtomicU64::new(0);
    let conflicts = AtomicU64::new(0);
    let total = i64::from(accounts) * 100;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (committed, conflicts) = (&committed, &conflicts);
            s.spawn(move || {
                let mut rng = common::Rng::new(t as u64 + 1);
                let mut done = 0;
                while done < transfers_per_thread {
                    if rng.below(20) == 0 {
                        // An audit: serializable or read-only, the sum is always the total.
                        let tx = if rng.below(2) == 0 {
                            db.begin()
                        } else {
                            db.begin_read_only()
                        };
                        let sum: i64 = tx.prefix("acct:").map(|r| int(Some(r.unwrap().1))).sum();
                        assert_eq!(sum, total, "audit at {}", tx.version());
                        tx.commit().unwrap();
                        continue;
                    }
                    let from = rng.below(u64::from(accounts));
                    let to = (from + 1 + rng.below(u64::from(accounts) - 1)) % u64::from(accounts);
                    let amount = 1 + rng.below(20) as i64;
                    let mut tx = db.begin();
                    let (kf, kt) = (format!("acct:{from:04}"), format!("acct:{to:04}"));
                    let (bf, bt) = (int(tx.get(&kf).unwrap()), int(tx.get(&kt).unwrap()));
                    tx.put(&kf, (bf - amount).to_string()).unwrap();
                    tx.put(&kt, (bt + amount).to_string()).unwrap();
                    if is_conflict(tx.commit()) {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    } else {
                        committed.fetch_add(1, Ordering::Relaxed);
                        done += 1;
                    }
                }
            });
        }
    });
    (committed.into_inner(), conflicts.into_inner())
}

fn total(db: &Db) -> i64 {
    db.prefix("acct:").map(|r| int(Some(r.unwrap().1))).sum()
}

#[test]
fn a_bank_workload_on_four_threads_keeps_the_total_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = 50;
    let opts = || Options {
        memtable_size: 32 << 10, // flushes and compactions run during the transfers
        ..Options::default()
    };
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let mut tx = db.begin();
        for a in 0..accounts {
            tx.put(format!("acct:{a:04}"), "100").unwrap();
        }
        tx.commit().unwrap();
        let (committed, conflicts) = bank(&db, 4, accounts, 500);
        assert_eq!(committed, 2000);
        eprintln!("bank: {committed} transfers, {conflicts} conflicts");
        assert_eq!(total(&db), i64::from(accounts) * 100);
        assert_eq!(db.stats().transactions_open, 0);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(total(&db), i64::from(accounts) * 100);
    let (committed, _) = bank(&db, 4, accounts, 100);
    assert_eq!(committed, 400);
    assert_eq!(total(&db), i64::from(accounts) * 100);
}

/// Transfers on a simulated disk, crashed at every 7th mutating call in every mode: each
/// recovered store holds whole transfers only (the total never changes), and every transfer
/// acknowledged as synced before the crash.
#[test]
fn a_transaction_is_never_half_visible_after_a_power_loss() {
    let fs = MemFs::new();
    let accounts = 8u64;
    let opts = |fs: &MemFs| Options {
        durability: Durability::Sync,
        ..common::compacting_options(fs, 1 << 10, common::aggressive_leveled())
    };
    let mut synced_at_point = Vec::new(); // (crash points before the ack, transfers acked)
    {
        let db = Db::open(Path::new("/db"), opts(&fs)).unwrap();
        let mut tx = db.begin();
        for a in 0..accounts {
            tx.put(format!("acct:{a:04}"), "100").unwrap();
        }
        tx.commit().unwrap();
        fs.record_crash_points();
        let mut rng = common::Rng::new(7);
        for n in 1..=150u64 {
            let from = rng.below(accounts);
            let to = (from + 1 + rng.below(accounts - 1)) % accounts;
            let mut tx = db.begin();
            let (kf, kt) = (format!("acct:{from:04}"), format!("acct:{to:04}"));
            let (bf, bt) = (int(tx.get(&kf).unwrap()), int(tx.get(&kt).unwrap()));
            tx.put(&kf, (bf - 3).to_string()).unwrap();
            tx.put(&kt, (bt + 3).to_string()).unwrap();
            tx.put("transfers", n.to_string()).unwrap();
            tx.commit().unwrap();
            synced_at_point.push((fs.crash_points(), n));
        }
    }
    let points = fs.crash_points();
    let mut states = 0;
    for point in (0..points).step_by(7) {
        let acked = synced_at_point
            .iter()
            .take_while(|(p, _)| *p <= point)
            .last()
            .map_or(0, |(_, n)| *n);
        for mode in [
            CrashMode::SyncedOnly,
            CrashMode::RandomPages { seed: point as u64 },
            CrashMode::TornWrite { seed: point as u64 },
        ] {
            let image = fs.crash_image(point, mode).unwrap();
            let db = Db::open(Path::new("/db"), opts(&image))
                .unwrap_or_else(|e| panic!("point {point} {mode:?}: open failed: {e}"));
            assert_eq!(total(&db), 100 * accounts as i64, "point {point} {mode:?}");
            let recovered = int(db.get("transfers").unwrap()) as u64;
            assert!(
                recovered >= acked,
                "point {point} {mode:?}: {recovered} < acked {acked}"
            );
            states += 1;
        }
    }
    assert!(states > 300, "{states} crash states");
}

/// Four threads read the same counter, wait for each other, then all commit an increment:
/// in every round exactly one commit wins and three are refused, whatever the order the
/// group commit takes them in; the counter ends equal to the commits.
#[test]
fn concurrent_increments_of_one_key_commit_exactly_once_per_round() {
    let (_fs, db) = mem_db();
    db.put("counter", "0").unwrap();
    let rounds = 50;
    let barrier = std::sync::Barrier::new(4);
    let wins = AtomicU64::new(0);
    let losses = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..rounds {
                    let mut tx = db.begin();
                    let c = int(tx.get("counter").unwrap());
                    barrier.wait(); // everyone has read before anyone commits
                    tx.put("counter", (c + 1).to_string()).unwrap();
                    if is_conflict(tx.commit()) {
                        losses.fetch_add(1, Ordering::Relaxed);
                    } else {
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                    barrier.wait(); // the round is over before anyone begins again
                }
            });
        }
    });
    assert_eq!(wins.into_inner(), rounds);
    assert_eq!(losses.into_inner(), 3 * rounds);
    assert_eq!(int(db.get("counter").unwrap()), rounds as i64);
}
