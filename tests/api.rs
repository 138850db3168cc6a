//! Behaviour of the public API on a real directory.

mod common;

use chronokv::{Db, Error, Options, WriteBatch};

fn open(dir: &std::path::Path) -> Db {
    Db::open(dir, Options::default()).expect("open")
}

#[test]
fn a_second_open_of_the_same_directory_fails_with_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let err = Db::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("LOCK"));
    drop(db);
    open(dir.path());
}

#[test]
fn versions_grow_by_one_per_entry_and_batches_share_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let v1 = db.put("a", "1").unwrap();
    let mut b = WriteBatch::new();
    b.put("b", "2").put("c", "3").delete("a");
    let v2 = db.write(b).unwrap();
    assert_eq!(v2.get(), v1.get() + 3);
    assert_eq!(db.latest_version(), v2);
    assert_eq!(
        db.write(WriteBatch::new()).unwrap(),
        v2,
        "an empty batch commits nothing"
    );
}

#[test]
fn empty_values_are_values_not_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.put("empty", "").unwrap();
    db.put("gone", "x").unwrap();
    db.delete("gone").unwrap();
    for round in 0..2 {
        assert_eq!(
            db.get("empty").unwrap().as_deref(),
            Some(&b""[..]),
            "round {round}"
        );
        assert_eq!(db.get("gone").unwrap(), None);
        let keys: Vec<_> = db.scan::<&str, _>(..).map(|r| r.unwrap().0).collect();
        assert_eq!(keys, vec!["empty"]);
        db.flush().unwrap();
    }
}

#[test]
fn large_values_and_keys_round_trip_through_flush_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let huge: Vec<u8> = (0..(9 << 20) as u32).map(|i| (i % 241) as u8).collect();
    let max_key = vec![7u8; 64 << 10];
    {
        let db = open(dir.path());
        db.put("big", &big).unwrap();
        db.put("huge", &huge).unwrap();
        db.put(&max_key, "k").unwrap();
        assert_eq!(db.get("huge").unwrap().unwrap(), huge);
    }
    let db = open(dir.path());
    assert_eq!(db.get("big").unwrap().unwrap(), big);
    assert_eq!(db.get("huge").unwrap().unwrap(), huge);
    assert_eq!(db.get(&max_key).unwrap().unwrap(), "k");
    db.flush().unwrap();
    assert_eq!(db.get("huge").unwrap().unwrap(), huge);
}

#[test]
fn oversized_keys_are_rejected_and_nothing_of_the_batch_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = WriteBatch::new();
    b.put("ok", "1").put(vec![0u8; (64 << 10) + 1], "x");
    let err = db.write(b).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(db.get("ok").unwrap(), None);
}

#[test]
fn scans_are_double_ended_and_respect_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for k in ["a", "b", "c", "d", "e"] {
        db.put(k, k.to_uppercase()).unwrap();
    }
    db.flush().unwrap();
    db.put("c", "C2").unwrap();
    db.delete("d").unwrap();
    let mut it = db.scan("b"..="e");
    assert_eq!(it.next().unwrap().unwrap().0, "b");
    assert_eq!(it.next_back().unwrap().unwrap().0, "e");
    assert_eq!(it.next_back().unwrap().unwrap(), ("c".into(), "C2".into()));
    assert!(it.next().is_none());
    assert!(it.next_back().is_none());
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = db.scan("d".."b").count();
    assert_eq!(inverted, 0);
    let pre: Vec<_> = db.prefix("").map(|r| r.unwrap().0).collect();
    assert_eq!(pre, vec!["a", "b", "c", "e"]);
}

#[test]
fn a_scan_sees_the_store_as_of_its_creation() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.put("a", "1").unwrap();
    db.put("b", "1").unwrap();
    let it = db.scan::<&str, _>(..);
    db.put("a", "2").unwrap();
    db.delete("b").unwrap();
    db.put("c", "new").unwrap();
    db.flush().unwrap();
    let seen: Vec<_> = it.map(|r| r.unwrap()).collect();
    assert_eq!(
        seen,
        vec![("a".into(), "1".into()), ("b".into(), "1".into())]
    );
}

#[test]
fn concurrent_writers_all_commit_with_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(
        Db::open(
            dir.path(),
            Options {
                memtable_size: 64 << 10,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                (0..2000)
                    .map(|i| {
                        db.put(format!("t{t}-{i:05}"), format!("{i}"))
                            .unwrap()
                            .get()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut versions: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 8000);
    assert_eq!(db.scan::<&str, _>(..).count(), 8000);
    for t in 0..4 {
        assert_eq!(db.get(format!("t{t}-01999")).unwrap().unwrap(), "1999");
    }
}

#[test]
fn iter_is_a_full_scan_of_the_db_and_of_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for k in ["b", "a", "c"] {
        db.put(k, k.to_uppercase()).unwrap();
    }
    let snap = db.snapshot();
    db.delete("b").unwrap();
    fn keys(
        it: impl Iterator<Item = chronokv::Result<(chronokv::Bytes, chronokv::Bytes)>>,
    ) -> Vec<String> {
        it.map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
            .collect()
    }
    assert_eq!(keys(db.iter()), ["a", "c"]);
    assert_eq!(keys(db.iter().rev()), ["c", "a"]);
    assert_eq!(keys(snap.iter()), ["a", "b", "c"]);
}
