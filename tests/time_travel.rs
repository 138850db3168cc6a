//! Snapshots, time travel, retention, key history, the change feed and Arrow export.

mod common;

use chronokv::vfs::MemFs;
use chronokv::{Db, Error, Options, Version, WriteBatch};
use common::{aggressive_leveled, aggressive_tiered, compacting_options};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn open(opts: &Options) -> Db {
    Db::open(Path::new("/db"), opts.clone()).expect("open")
}

fn retaining(fs: &MemFs, retention: Duration) -> Options {
    Options {
        history_retention: Some(retention),
        ..compacting_options(fs, 2048, aggressive_leveled())
    }
}

fn scan_snapshot(s: &chronokv::Snapshot) -> State {
    s.scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("scan"))
        .collect()
}

fn key(i: u64) -> Vec<u8> {
    format!("key{:04}", i % 97).into_bytes()
}

/// Applies a deterministic stream of puts and deletes; returns the state after each commit.
fn write_history(db: &Db, commits: u64, states: &mut Vec<(Version, State)>) {
    let mut state = states.last().map(|(_, s)| s.clone()).unwrap_or_default();
    for i in 0..commits {
        let k = key(i * 7 + states.len() as u64);
        let v = if i % 5 == 4 {
            state.remove(&k);
            db.delete(&k).unwrap()
        } else {
            let value = format!("value {i} {}", "x".repeat((i % 40) as usize)).into_bytes();
            state.insert(k.clone(), value.clone());
            db.put(&k, &value).unwrap()
        };
        states.push((v, state.clone()));
        if i % 97 == 0 {
            db.flush().unwrap();
        }
    }
}

#[test]
fn a_snapshot_reads_the_same_through_thousands_of_writes_and_compactions() {
    for style in [aggressive_leveled(), aggressive_tiered()] {
        let fs = MemFs::new();
        let db = open(&compacting_options(&fs, 2048, style));
        let mut states = Vec::new();
        write_history(&db, 300, &mut states);
        let snap = db.snapshot();
        let (version, expected) = states.last().cloned().unwrap();
        assert_eq!(snap.version(), version);
        let early = db
            .snapshot_at(version)
            .expect("the latest version is readable");
        write_history(&db, 3000, &mut states);
        db.compact_range::<&[u8], _>(..).unwrap();
        db.wait_for_compactions().unwrap();
        assert!(db.stats().compactions > 5, "compaction must have run");
        assert_eq!(scan_snapshot(&snap), expected);
        assert_eq!(scan_snapshot(&early), expected);
        for k in expected.keys().take(20) {
            assert_eq!(
                snap.get(k).unwrap().as_deref(),
                expected.get(k).map(|v| &v[..])
            );
        }
        let back: Vec<_> = snap
            .scan::<&[u8], _>(..)
            .rev()
            .map(|r| r.unwrap().0.to_vec())
            .collect();
        assert_eq!(back, expected.keys().rev().cloned().collect::<Vec<_>>());
        // Without retention, an older version than the latest is refused once nothing pins it.
        let latest = db.latest_version();
        match db.snapshot_at(Version(latest.0 - 1)) {
            Err(Error::VersionNotRetained { requested, oldest }) => {
                assert_eq!(requested, Version(latest.0 - 1));
                assert_eq!(oldest, latest);
            }
            other => panic!("expected VersionNotRetained, got {other:?}"),
        }
        // ... but a version a live snapshot holds is readable again.
        let again = db.snapshot_at(version).expect("pinned by `snap`");
        assert_eq!(scan_snapshot(&again), expected);
        drop((snap, early, again));
        // Released: a full compaction now drops the old versions.
        db.compact_range::<&[u8], _>(..).unwrap();
        let k = expected.keys().next().unwrap();
        assert_eq!(
            db.history(k).unwrap().len(),
            1,
            "only the latest version is left"
        );
    }
}

#[test]
fn every_retained_version_reads_as_it_was_across_flush_compaction_and_restart() {
    let fs = MemFs::new();
    let opts = retaining(&fs, Duration::from_secs(3600));
    let mut states = vec![(Version(0), State::new())];
    {
        let db = open(&opts);
        write_history(&db, 1500, &mut states);
        db.compact_range::<&[u8], _>(..).unwrap();
        for (v, expected) in states.iter().step_by(37) {
            assert_eq!(
                &scan_snapshot(&db.snapshot_at(*v).unwrap()),
                expected,
                "at {v}"
            );
        }
    }
    let db = open(&opts);
    write_history(&db, 500, &mut states);
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
    assert_eq!(db.oldest_readable_version(), Version(0));
    for (v, expected) in states.iter().step_by(23) {
        assert_eq!(
            &scan_snapshot(&db.snapshot_at(*v).unwrap()),
            expected,
            "at {v}"
        );
    }
    let future = Version(db.latest_version().0 + 1);
    assert!(matches!(
        db.snapshot_at(future),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn as_of_time_reads_exactly_the_commits_made_by_then() {
    let fs = MemFs::new();
    let opts = retaining(&fs, Duration::from_secs(3600));
    let before_all = SystemTime::now();
    std::thread::sleep(Duration::from_millis(2));
    let mut marks: Vec<(SystemTime, Version, State)> = Vec::new();
    let mut states = Vec::new();
    {
        let db = open(&opts);
        for round in 0..25 {
            write_history(&db, 10 + round, &mut states);
            let (v, s) = states.last().cloned().unwrap();
            // Commit times have millisecond resolution: step past the current millisecond
            // on both sides of the mark so no later commit shares it.
            std::thread::sleep(Duration::from_millis(2));
            marks.push((SystemTime::now(), v, s));
            std::thread::sleep(Duration::from_millis(2));
            if round % 6 == 5 {
                db.compact_range::<&[u8], _>(..).unwrap();
            }
        }
    }
    let db = open(&opts);
    for (t, v, expected) in &marks {
        let snap = db.snapshot_as_of(*t).unwrap();
        assert_eq!(snap.version(), *v);
        assert_eq!(&scan_snapshot(&snap), expected);
        let time = snap.time().expect("the index dates every retained version");
        assert!(time <= *t);
    }
    let empty = db.snapshot_as_of(before_all).unwrap();
    assert_eq!(empty.version(), Version(0));
    assert!(scan_snapshot(&empty).is_empty());
    // History carries the same commit times.
    let (k, _) = marks.last().unwrap().2.iter().next().unwrap();
    let h = db.history(k).unwrap();
    assert!(h
        .windows(2)
        .all(|w| w[0].version > w[1].version && w[0].time >= w[1].time));
}

#[test]
fn retention_boundary_oldest_is_readable_one_older_is_refused() {
    let fs = MemFs::new();
    let opts = retaining(&fs, Duration::from_millis(300));
    let old_time = SystemTime::now();
    std::thread::sleep(Duration::from_millis(2));
    let db = open(&opts);
    let mut states = Vec::new();
    write_history(&db, 200, &mut states);
    std::thread::sleep(Duration::from_millis(450));
    write_history(&db, 200, &mut states);
    db.compact_range::<&[u8], _>(..).unwrap();
    let oldest = db.oldest_readable_version();
    assert!(
        oldest.0 >= 200 && oldest.0 <= 401,
        "the window starts after the first writes: {oldest}"
    );
    let expected = &states.iter().find(|(v, _)| *v == oldest).unwrap().1;
    assert_eq!(&scan_snapshot(&db.snapshot_at(oldest).unwrap()), expected);
    let older = Version(oldest.0 - 1);
    match db.snapshot_at(older) {
        Err(Error::VersionNotRetained {
            requested,
            oldest: o,
        }) => {
            assert_eq!(requested, older);
            assert!(o >= oldest);
        }
        other => panic!("expected VersionNotRetained, got {other:?}"),
    }
    assert!(matches!(
        db.snapshot_as_of(old_time),
        Err(Error::TimeNotRetained { .. })
    ));
    assert!(matches!(
        db.changes(older..),
        Err(Error::VersionNotRetained { .. })
    ));
}

#[test]
fn per_key_history_depth_without_time_retention() {
    let fs = MemFs::new();
    let opts = Options {
        history_versions_per_key: Some(3),
        ..compacting_options(&fs, 1024, aggressive_leveled())
    };
    let db = open(&opts);
    for round in 0..20u32 {
        for k in 0..30u32 {
            db.put(format!("k{k:02}"), format!("{round}")).unwrap();
        }
    }
    db.delete("k00").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let h = db.history("k05").unwrap();
    let values: Vec<_> = h.iter().map(|e| e.value.clone().unwrap()).collect();
    assert_eq!(values, vec!["19", "18", "17"]);
    let h0 = db.history("k00").unwrap();
    assert_eq!(h0.len(), 3);
    assert_eq!(h0[0].value, None, "the delete is the newest version");
    assert_eq!(h0[1].value.as_deref(), Some(&b"19"[..]));
    assert!(db.history("nope").unwrap().is_empty());
}

#[test]
fn the_change_feed_resumes_after_a_restart_exactly_once() {
    let fs = MemFs::new();
    let opts = retaining(&fs, Duration::from_secs(3600));
    let mut consumed = Vec::new();
    let mut last = Version(0);
    let mut expected = Vec::new();
    for session in 0..3 {
        let db = open(&opts);
        for i in 0..150u64 {
            let mut b = WriteBatch::new();
            let k = format!("s{session}-{}", i % 40);
            b.put(&k, format!("{i}"));
            let with_delete = i % 3 == 0;
            if with_delete {
                b.delete(format!("s{session}-{}", (i + 7) % 40));
            }
            let v = db.write(b).unwrap();
            // The put is the batch's first entry; the delete, if any, comes right after.
            expected.push((Version(v.0 - u64::from(with_delete)), k));
            if i % 50 == 0 {
                db.flush().unwrap();
            }
            if i % 60 == 59 {
                // The consumer wakes up, processes everything new, and stores `last`.
                for c in db.changes(Version(last.0 + 1)..).unwrap() {
                    let c = c.unwrap();
                    assert!(c.version > last);
                    last = c.version;
                    consumed.push(c);
                }
            }
        }
        db.compact_range::<&[u8], _>(..).unwrap();
    }
    let db = open(&opts);
    for c in db.changes(Version(last.0 + 1)..).unwrap() {
        consumed.push(c.unwrap());
    }
    let all: Vec<_> = db.changes(..).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(consumed, all, "every change once, in order");
    assert!(all.windows(2).all(|w| w[0].version.0 + 1 == w[1].version.0));
    assert_eq!(all.len() as u64, db.latest_version().0);
    for (v, k) in expected {
        let c = &all[(v.0 - 1) as usize];
        assert_eq!(c.version, v);
        assert_eq!(c.key, k.as_bytes());
    }
    let some: Vec<_> = db
        .changes(Version(10)..=Version(20))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(some.first().unwrap().version, Version(10));
    assert_eq!(some.len(), 11);
}

#[test]
fn arrow_export_of_snapshots_history_and_changes() {
    use arrow_array::{Array, BinaryArray, TimestampMicrosecondArray, UInt64Array};
    let fs = MemFs::new();
    let db = open(&retaining(&fs, Duration::from_secs(3600)));
    let mut states = Vec::new();
    write_history(&db, 400, &mut states);
    let snap = db.snapshot();
    write_history(&db, 100, &mut states);
    let expected = scan_snapshot(&snap);
    let mut rows = Vec::new();
    for batch in snap.scan_arrow::<&[u8], _>(.., 7) {
        let batch = batch.unwrap();
        assert!(batch.num_rows() <= 7);
        assert_eq!(batch.schema(), chronokv::export_schema());
        let keys = batch
            .column(0)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap();
        let values = batch
            .column(1)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap();
        let versions = batch
            .column(2)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        let times = batch
            .column(3)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        for i in 0..batch.num_rows() {
            assert!(versions.value(i) <= snap.version().0);
            assert!(times.value(i) > 0);
            rows.push((keys.value(i).to_vec(), values.value(i).to_vec()));
        }
    }
    assert_eq!(rows, expected.into_iter().collect::<Vec<_>>());

    let h = db.history_arrow(key(3)).unwrap();
    assert_eq!(h.num_rows(), db.history(key(3)).unwrap().len());
    let c = db.changes_arrow(Version(1)..Version(51)).unwrap();
    assert_eq!(c.num_rows(), 50);
    let deletes = c.column(1).null_count();
    assert_eq!(deletes, 10, "every fifth commit is a delete");
}
