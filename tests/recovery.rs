//! Crash recovery: acknowledged writes survive, torn WAL tails are cut, damage in synced
//! data is reported with the file and offset, atomic batches are never half visible.

mod common;

use chronokv::vfs::{FaultFs, FaultKind, FaultMode, MemFs, Vfs};
use chronokv::{Db, Durability, Error, Options, RecoveryMode, WriteBatch};
use std::path::Path;
use std::sync::Arc;

fn wal_files(fs: &MemFs) -> Vec<String> {
    common::files(fs)
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .collect()
}

#[test]
fn dropping_mid_stream_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options {
        memtable_size: 256 << 10,
        ..Options::default()
    };
    let mut expected = std::collections::BTreeMap::new();
    for round in 0..4u32 {
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in 0..5_000u32 {
            let k = format!("k{:05}", (i * 7919 + round) % 20_000);
            let v = format!("r{round}-{i}");
            db.put(&k, &v).unwrap();
            expected.insert(k, v);
        }
        // No close: the Db is dropped in the middle of its life, memtables unflushed.
        drop(db);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    for (k, v) in &expected {
        assert_eq!(db.get(k).unwrap().unwrap(), v.as_str(), "key {k}");
    }
    assert_eq!(db.scan::<&str, _>(..).count(), expected.len());
}

#[test]
fn sync_writes_survive_power_loss_and_recovery_is_a_prefix() {
    let fs = MemFs::new();
    let db = common::open_mem(&fs, 4 << 10);
    let mut synced = Vec::new();
    for i in 0..300u32 {
        let durability = if i % 10 == 0 {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        let mut b = WriteBatch::new();
        b.put(format!("k{i:04}"), format!("{i}"));
        db.write_with(b, durability).unwrap();
        if durability == Durability::Sync {
            synced.push(i);
        }
    }
    let crashed = fs.crash_clone();
    drop(db);
    let db = common::open_mem(&crashed, 4 << 10);
    let present: Vec<u32> = (0..300)
        .filter(|i| db.get(format!("k{i:04}")).unwrap().is_some())
        .collect();
    // Every synced write is there, and what is there is a prefix of the commit order.
    let last_synced = *synced.last().unwrap();
    assert!(
        present.len() as u32 > last_synced,
        "lost synced writes: {present:?}"
    );
    assert_eq!(present, (0..present.len() as u32).collect::<Vec<_>>());
}

/// A store whose 50 puts (k00..k49) are all in its one WAL segment: the file system, the
/// segment's path and its length.
fn fifty_puts_in_one_segment() -> (MemFs, std::path::PathBuf, usize) {
    let fs = MemFs::new();
    {
        let db = common::open_mem(&fs, 1 << 20);
        for i in 0..50u32 {
            db.put(format!("k{i:02}"), format!("v{i}")).unwrap();
        }
    }
    let wal = Path::new("/db").join(&wal_files(&fs)[0]);
    let len = fs.file_size(&wal).unwrap() as usize;
    (fs, wal, len)
}

#[test]
fn a_torn_wal_tail_is_cut_and_the_rest_recovered() {
    let (fs, wal, len) = fifty_puts_in_one_segment();
    for cut in [len - 1, len - 5, len - 30, len / 2, 3] {
        let f = fs.crash_clone();
        f.truncate(&wal, cut).unwrap();
        let db = common::open_mem(&f, 1 << 20);
        let present: Vec<u32> = (0..50)
            .filter(|i| db.get(format!("k{i:02}")).unwrap().is_some())
            .collect();
        assert_eq!(
            present,
            (0..present.len() as u32).collect::<Vec<_>>(),
            "cut {cut}: not a prefix"
        );
        assert!(present.len() < 50, "cut {cut} lost nothing?");
        drop(db);
        // Recovery is idempotent: a second open sees the same state.
        let again = common::open_mem(&f, 1 << 20);
        assert_eq!(again.scan::<&str, _>(..).count(), present.len());
    }
}

/// The WAL preallocates its newest segment (docs/format/wal.md, "Preallocated segments"):
/// after a power loss it ends in zeros and the synced commits survive; recovery cuts the
/// zeros before it starts a new segment, and a closed store's segments end at their last
/// frame, so even `AbsoluteConsistency`, which takes zeros for damage, opens it. In that
/// mode the engine does not preallocate, so a crash leaves no zeros to refuse.
#[test]
fn a_preallocated_segment_recovers_and_a_closed_store_ends_in_frames() {
    let absolute = |fs: &MemFs| Options {
        recovery_mode: RecoveryMode::AbsoluteConsistency,
        ..common::mem_options(fs, 1 << 20)
    };
    let fs = MemFs::new();
    let db = common::open_mem(&fs, 1 << 20);
    for i in 0..50u32 {
        let mut b = WriteBatch::new();
        b.put(format!("k{i:02}"), format!("v{i}"));
        db.write_with(b, Durability::Sync).unwrap();
    }
    let crashed = fs.crash_clone();
    drop(db);
    let wal = Path::new("/db").join(&wal_files(&crashed)[0]);
    assert_eq!(
        crashed.file_size(&wal).unwrap(),
        256 << 10,
        "a quarter memtable"
    );
    assert!(Db::open("/db", absolute(&crashed.crash_clone())).is_err());
    let db = common::open_mem(&crashed, 1 << 20);
    assert_eq!(common::all(&db).len(), 50);
    db.close().unwrap();
    let db = Db::open("/db", absolute(&crashed)).expect("no segment ends in zeros");
    assert_eq!(common::all(&db).len(), 50);
    for i in 50..60u32 {
        let mut b = WriteBatch::new();
        b.put(format!("k{i:02}"), format!("v{i}"));
        db.write_with(b, Durability::Sync).unwrap();
    }
    let crashed = crashed.crash_clone();
    drop(db);
    let db = Db::open("/db", absolute(&crashed)).expect("nothing preallocated");
    assert_eq!(common::all(&db).len(), 60);
}

/// Found by the harness's recovery stage: recovery starts a new WAL segment, so if it was
/// interrupted, the next open read the torn segment as an older one, "fully synced", and
/// refused to open. Recovery now cuts the torn tail off (atomically) before it starts the
/// new segment.
#[test]
fn a_recovery_interrupted_after_a_torn_tail_recovers_again() {
    let (fs, wal, len) = fifty_puts_in_one_segment();
    let torn = fs.crash_clone();
    torn.truncate(&wal, len - 5).unwrap();
    // A clean recovery: what every interrupted one must come back to.
    let expected = common::all(&common::open_mem(&torn.crash_clone(), 1 << 20));
    assert!(!expected.is_empty() && expected.len() < 50);
    let on = |vfs: FaultFs| Options {
        vfs: Arc::new(vfs),
        ..common::mem_options(&MemFs::new(), 1 << 20)
    };
    let counting = FaultFs::new(Arc::new(torn.crash_clone()));
    drop(Db::open("/db", on(counting.clone())).unwrap());
    let calls = counting.mutations();
    assert!(calls > 5, "{calls} mutating calls");
    for at in 1..=calls {
        let mem = torn.crash_clone();
        let faulty = FaultFs::new(Arc::new(mem.clone()));
        faulty.inject(at, FaultKind::Eio, FaultMode::Forever);
        // The open fails (or, for a late call, the close does); either way, no data lost.
        if let Ok(db) = Db::open("/db", on(faulty.clone())) {
            drop(db);
        }
        for (what, image) in [("power loss", mem.crash_clone()), ("restart", mem)] {
            let db = Db::open("/db", common::mem_options(&image, 1 << 20))
                .unwrap_or_else(|e| panic!("call {at}, after a {what}: {e}"));
            assert_eq!(common::all(&db), expected, "call {at}, after a {what}");
        }
    }
}

#[test]
fn damage_before_synced_records_is_reported_with_file_and_offset() {
    let fs = MemFs::new();
    {
        let db = common::open_mem(&fs, 1 << 20);
        for i in 0..20u32 {
            let mut b = WriteBatch::new();
            b.put(format!("k{i:02}"), "x".repeat(50));
            db.write_with(b, Durability::Sync).unwrap();
        }
    }
    let name = wal_files(&fs)[0].clone();
    let wal = Path::new("/db").join(&name);
    let f = fs.crash_clone();
    f.corrupt_byte(&wal, 200, 0x01).unwrap();
    let err = Db::open("/db", common::mem_options(&f, 1 << 20)).unwrap_err();
    match &err {
        Error::Corruption { file, offset, .. } => {
            assert!(file.ends_with(&name), "{err}");
            assert!(*offset <= 200, "{err}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    // PointInTime recovery opens and keeps the records before the damage.
    let opts = Options {
        recovery_mode: RecoveryMode::PointInTime,
        ..common::mem_options(&f, 1 << 20)
    };
    let db = Db::open("/db", opts).unwrap();
    let n = db.scan::<&str, _>(..).count();
    assert!(n > 0 && n < 20, "{n}");
}

#[test]
fn a_batch_is_never_half_visible_after_a_crash() {
    let fs = MemFs::new();
    let db = common::open_mem(&fs, 1 << 20);
    db.put("seed", "1").unwrap();
    db.sync_wal().unwrap();
    let wal = Path::new("/db").join(&wal_files(&fs)[0]);
    let before = fs.file_size(&wal).unwrap() as usize;
    let mut b = WriteBatch::new();
    for i in 0..100u32 {
        b.put(format!("b{i:03}"), "y".repeat(100));
    }
    db.write(b).unwrap();
    let full = fs.file_size(&wal).unwrap() as usize;
    drop(db); // close syncs the WAL, so the clone below holds every byte
    let crashed = fs.crash_clone();
    // Cut the batch's record at many points: each recovery has all of the batch or none.
    for cut in (before..=full).step_by(97) {
        let f = crashed.crash_clone();
        f.truncate(&wal, cut).unwrap();
        let db = common::open_mem(&f, 1 << 20);
        let n = db.prefix("b").count();
        assert_eq!(n == 100, cut == full, "cut {cut} of {full}");
        assert!(
            n == 0 || n == 100,
            "cut {cut}: {n} of 100 batch entries visible"
        );
        assert!(db.get("seed").unwrap().is_some());
    }
}

#[test]
fn a_run_missing_from_disk_is_reported() {
    let fs = MemFs::new();
    {
        let db = common::open_mem(&fs, 1 << 20);
        db.put("a", "1").unwrap();
        db.flush().unwrap();
    }
    let run = common::files(&fs)
        .into_iter()
        .find(|n| n.ends_with(".arrow"))
        .unwrap();
    fs.remove_file(&Path::new("/db").join(&run)).unwrap();
    let err = Db::open("/db", common::mem_options(&fs, 1 << 20)).unwrap_err();
    assert!(
        err.is_corruption() && err.to_string().contains(&run),
        "{err}"
    );
}

#[test]
fn a_manifest_missing_from_disk_is_corruption() {
    // CURRENT naming a missing manifest is damage, like the manifest naming a missing run
    // (it was an I/O error, "no such file", until the planted bugs of G6 showed it).
    let fs = MemFs::new();
    {
        let db = common::open_mem(&fs, 1 << 20);
        db.put("a", "1").unwrap();
    }
    let current = fs.read(Path::new("/db/CURRENT")).unwrap();
    let manifest = String::from_utf8(current).unwrap().trim_end().to_string();
    fs.remove_file(&Path::new("/db").join(&manifest)).unwrap();
    let err = Db::open("/db", common::mem_options(&fs, 1 << 20)).unwrap_err();
    assert!(
        err.is_corruption() && err.to_string().contains(&manifest),
        "{err}"
    );
}

#[test]
fn obsolete_files_are_removed_and_file_numbers_never_repeat() {
    let fs = MemFs::new();
    let number = |n: &str| {
        n.trim_start_matches("MANIFEST-")
            .split('.')
            .next()
            .unwrap()
            .parse::<u64>()
            .ok()
    };
    let mut highest_before = 0u64;
    for round in 0..3 {
        let before: std::collections::BTreeSet<String> = common::files(&fs).into_iter().collect();
        let db = common::open_mem(&fs, 2 << 10);
        for i in 0..200u32 {
            db.put(format!("r{round}-{i:04}"), "v".repeat(40)).unwrap();
        }
        db.flush().unwrap();
        let now = common::files(&fs);
        // Every file created in this round has a number above every earlier file's.
        for name in now.iter().filter(|n| !before.contains(*n)) {
            if let Some(n) = number(name) {
                assert!(
                    n > highest_before,
                    "round {round}: {name} reuses a number <= {highest_before}"
                );
            }
        }
        highest_before = now
            .iter()
            .filter_map(|n| number(n))
            .max()
            .unwrap_or(0)
            .max(highest_before);
    }
    let db = common::open_mem(&fs, 2 << 10);
    assert_eq!(db.scan::<&str, _>(..).count(), 600);
    let now = common::files(&fs);
    assert_eq!(
        now.iter().filter(|n| n.starts_with("MANIFEST-")).count(),
        1,
        "{now:?}"
    );
    assert_eq!(
        now.iter().filter(|n| n.ends_with(".wal")).count(),
        1,
        "{now:?}"
    );
    assert!(now.iter().all(|n| !n.ends_with(".tmp")), "{now:?}");
}
