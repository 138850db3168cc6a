//! `Db::restore_to` against a versioned oracle: random puts, deletes and batches, random
//! restore points (by version and by time), the present compared with the oracle's past
//! state, and every version in between read back after the restores.

mod common;

use chronokv::vfs::MemFs;
use chronokv::{At, Db, Error, Options, RestoreOptions, Version, WriteBatch};
use common::{aggressive_leveled, compacting_options};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// The oracle: the state after every version (index = version).
struct Oracle {
    states: Vec<State>,
}

impl Oracle {
    fn latest(&self) -> &State {
        self.states.last().expect("version 0 is there")
    }

    /// Records a committed batch whose last entry got `version`.
    fn commit(&mut self, ops: &[(Vec<u8>, Option<Vec<u8>>)], version: Version) {
        for (k, v) in ops {
            let mut s = self.latest().clone();
            match v {
                Some(v) => s.insert(k.clone(), v.clone()),
                None => s.remove(k),
            };
            self.states.push(s);
        }
        assert_eq!(self.states.len() as u64 - 1, version.0);
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn state_at(db: &Db, v: Version) -> State {
    db.snapshot_at(v)
        .unwrap()
        .scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

fn present(db: &Db) -> State {
    state_at(db, db.latest_version())
}

fn random_writes(db: &Db, oracle: &mut Oracle, rng: &mut Rng, commits: u64) {
    for _ in 0..commits {
        let mut ops = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let k = format!("key{:03}", rng.below(60)).into_bytes();
            let v = (rng.below(4) != 0).then(|| format!("val{}", rng.below(1000)).into_bytes());
            // A batch holds a key once (its versions would otherwise tie).
            if ops.iter().all(|(o, _)| o != &k) {
                ops.push((k, v));
            }
        }
        let mut b = WriteBatch::new();
        for (k, v) in &ops {
            match v {
                Some(v) => b.put(k, v),
                None => b.delete(k),
            };
        }
        let v = db.write(b).unwrap();
        oracle.commit(&ops, v);
    }
}

/// The restore's commits as the oracle sees them: new versions, each a change of the
/// present towards `target`, read back from the change feed.
fn record_restore(db: &Db, oracle: &mut Oracle, before: Version) {
    for c in db.changes(Version(before.0 + 1)..).unwrap() {
        let c = c.unwrap();
        oracle.commit(&[(c.key.to_vec(), c.value.map(|v| v.to_vec()))], c.version);
    }
}

/// Runs one seeded log with restores; returns the most commits one restore made.
fn run(seed: u64, max_batch_bytes: usize) -> usize {
    let fs = MemFs::new();
    let db = Db::open(
        Path::new("/db"),
        Options {
            history_retention: Some(Duration::from_secs(3600)),
            ..compacting_options(&fs, 4096, aggressive_leveled())
        },
    )
    .unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut oracle = Oracle {
        states: vec![State::new()],
    };
    let opts = RestoreOptions {
        max_batch_bytes,
        ..RestoreOptions::default()
    };
    let mut most_commits = 0;
    for round in 0..8 {
        let commits = 20 + rng.below(40);
        random_writes(&db, &mut oracle, &mut rng, commits);
        let latest = db.latest_version();
        let target = Version(rng.below(latest.0 + 1));
        let report = if round % 3 == 2 {
            // By time: the state as of the target's commit time is the target's (or a later
            // version of the same millisecond).
            let t = db
                .snapshot_at(target)
                .unwrap()
                .time()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let at = db.snapshot_as_of(t).unwrap().version();
            let r = db.restore_to_with(At::Time(t), opts).unwrap();
            assert_eq!(r.restored, at);
            r
        } else {
            db.restore_to_with(At::Version(target), opts).unwrap()
        };
        most_commits = most_commits.max(report.commits);
        let expected = oracle.states[report.restored.0 as usize].clone();
        let changed = expected != *oracle.latest();
        record_restore(&db, &mut oracle, latest);
        assert_eq!(
            present(&db),
            expected,
            "seed {seed} round {round}: present = past"
        );
        assert_eq!(
            *oracle.latest(),
            expected,
            "the restore's changes lead there"
        );
        assert_eq!(
            report.commits > 0,
            changed,
            "commits only when something differed"
        );
        assert_eq!(report.version, db.latest_version());
        assert_eq!(
            (report.puts + report.deletes) as u64,
            db.latest_version().0 - latest.0
        );
        if round % 2 == 1 {
            db.flush().unwrap();
        }
    }
    db.wait_for_compactions().unwrap();
    // The history in between still reads back, restores included.
    for v in 0..=db.latest_version().0 {
        assert_eq!(state_at(&db, Version(v)), oracle.states[v as usize], "v{v}");
    }
    // Restoring to the present changes nothing.
    let latest = db.latest_version();
    assert_eq!(db.restore_to(At::Version(latest)).unwrap(), latest);
    assert_eq!(db.restore_to(At::Latest).unwrap(), latest);
    most_commits
}

#[test]
fn restores_match_the_oracle_in_one_commit() {
    for seed in 1..=6 {
        assert!(run(seed, 64 << 20) <= 1);
    }
}

#[test]
fn restores_match_the_oracle_in_many_small_commits() {
    // 40-byte commits: a restore of a few dozen keys spans many key ranges.
    let most = (7..=12).map(|seed| run(seed, 40)).max().unwrap();
    assert!(most > 1, "some restore spanned several commits ({most})");
}

#[test]
fn a_restore_that_fits_one_batch_is_one_commit() {
    let fs = MemFs::new();
    let db = Db::open(
        Path::new("/db"),
        Options {
            history_retention: Some(Duration::from_secs(3600)),
            ..compacting_options(&fs, 4096, aggressive_leveled())
        },
    )
    .unwrap();
    for i in 0..200 {
        db.put(format!("k{i:03}"), "old").unwrap();
    }
    let target = db.latest_version();
    for i in 0..200 {
        if i % 2 == 0 {
            db.put(format!("k{i:03}"), "new").unwrap();
        } else {
            db.delete(format!("k{i:03}")).unwrap();
        }
    }
    db.put("extra", "x").unwrap();
    let report = db
        .restore_to_with(At::Version(target), RestoreOptions::default())
        .unwrap();
    assert_eq!((report.commits, report.puts, report.deletes), (1, 200, 1));
    // One commit: every change of the restore has the same commit time and consecutive
    // versions ending at the returned one.
    let changes: Vec<_> = db
        .changes(Version(report.version.0 - 200)..)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(changes.len(), 201);
    assert!(changes.iter().all(|c| c.time == changes[0].time));
    assert_eq!(changes.last().unwrap().version, report.version);
}

#[test]
fn a_restore_beyond_retention_is_refused_and_writes_nothing() {
    let fs = MemFs::new();
    let db = Db::open(
        Path::new("/db"),
        compacting_options(&fs, 4096, aggressive_leveled()),
    )
    .unwrap();
    db.put("a", "1").unwrap();
    db.put("a", "2").unwrap();
    let latest = db.latest_version();
    assert!(matches!(
        db.restore_to(At::Version(Version(1))),
        Err(Error::VersionNotRetained { .. })
    ));
    assert!(matches!(
        db.restore_to(At::Version(Version(99))),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(db.latest_version(), latest);
}

#[test]
fn a_restore_racing_a_writer_still_equals_the_past_where_it_alone_writes() {
    let fs = MemFs::new();
    let db = std::sync::Arc::new(
        Db::open(
            Path::new("/db"),
            Options {
                history_retention: Some(Duration::from_secs(3600)),
                ..compacting_options(&fs, 4096, aggressive_leveled())
            },
        )
        .unwrap(),
    );
    let mut oracle = Oracle {
        states: vec![State::new()],
    };
    let mut rng = Rng(77);
    random_writes(&db, &mut oracle, &mut rng, 80);
    let target = Version(40);
    random_writes(&db, &mut oracle, &mut rng, 80);
    // The writer touches keys between the restore's keys (`key007w` between `key007` and
    // `key008`), so the restore's key ranges see its commits and are redone.
    // It writes until the restore is done, so the two overlap in time.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || i < 50 {
                db.put(format!("key{:03}w", i % 50), format!("{i}"))
                    .unwrap();
                i += 1;
            }
            i
        })
    };
    let opts = RestoreOptions {
        max_batch_bytes: 60,
        max_retries: 1_000,
    };
    let report = db.restore_to_with(At::Version(target), opts).unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    eprintln!(
        "restore: {} commits, {} ranges redone, racing {writes} writes",
        report.commits, report.retries
    );
    let past = &oracle.states[target.0 as usize];
    let now: State = present(&db)
        .into_iter()
        .filter(|(k, _)| !k.ends_with(b"w"))
        .collect();
    assert_eq!(&now, past);
    assert!(report.commits >= 1);
}
