//! Compaction in the engine: bounded level 0 under sustained ingest, space reclaimed after
//! deletes, readers consistent while run sets are swapped, obsolete files deleted only when
//! unreferenced, failures and restarts.

mod common;

use chronokv::vfs::{FaultFs, MemFs, Vfs};
use chronokv::{Db, Options, WriteBatch};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

fn run_files(fs: &MemFs) -> Vec<String> {
    common::files(fs)
        .into_iter()
        .filter(|n| n.ends_with(".arrow"))
        .collect()
}

#[test]
fn sustained_ingest_keeps_level0_bounded() {
    let fs = MemFs::new();
    let opts = Options {
        l0_slowdown_runs: 4,
        l0_stop_runs: 6,
        ..common::compacting_options(&fs, 8 << 10, common::aggressive_leveled())
    };
    let max_immutable = opts.max_immutable_memtables;
    let stop = opts.l0_stop_runs;
    let db = Db::open("/db", opts).unwrap();
    let mut max_l0 = 0;
    // About 2.4 MB of writes: some 300 memtables of 8 KiB.
    for i in 0..20_000u64 {
        db.put(key(i % 5_000), vec![b'v'; 100 + (i % 20) as usize])
            .unwrap();
        if i % 100 == 0 {
            max_l0 = max_l0.max(db.stats().l0_runs());
        }
    }
    let stats = db.stats();
    assert!(stats.flushes > 100, "{stats:?}");
    assert!(stats.compactions + stats.trivial_moves > 10, "{stats:?}");
    // Writers stop at `stop` runs; flushes of memtables sealed before that may still land.
    assert!(
        max_l0 <= stop + max_immutable + 1,
        "level 0 reached {max_l0} runs"
    );
    for i in (0..5_000u64).step_by(97) {
        let v = db.get(key(i)).unwrap().expect("present");
        let last = (0..20_000u64).filter(|j| j % 5_000 == i).max().unwrap();
        assert_eq!(v.len(), 100 + (last % 20) as usize);
    }
    assert_eq!(common::all(&db).len(), 5_000);
    assert!(stats.write_amplification() > 1.0);
}

#[test]
fn deleting_most_keys_and_compacting_frees_the_space() {
    let fs = MemFs::new();
    let opts = Options {
        compaction_threads: 1,
        block_size: 32 << 10,
        ..common::compacting_options(&fs, 256 << 10, Default::default())
    };
    let db = Db::open("/db", opts).unwrap();
    let n = 1_000_000u64;
    let value = [7u8; 100];
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(key(i), value);
        }
        db.write(b).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let before = db.space_usage().unwrap();
    assert_eq!(before.live_keys, n);
    for chunk in (0..n)
        .filter(|i| i % 10 != 0)
        .collect::<Vec<_>>()
        .chunks(1_000)
    {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.delete(key(i));
        }
        db.write(b).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let after = db.space_usage().unwrap();
    assert_eq!(after.live_keys, n / 10);
    let stats = db.stats();
    assert!(stats.tombstones_dropped > 0, "{stats:?}");
    assert_eq!(
        stats.levels.iter().map(|l| l.tombstones).sum::<u64>(),
        0,
        "no tombstone survives a full compaction: {stats:?}"
    );
    // 10% of the data is left: the runs shrink to about a tenth (allow for framing).
    assert!(
        after.run_bytes * 100 <= before.run_bytes * 12,
        "runs {} -> {} bytes",
        before.run_bytes,
        after.run_bytes
    );
    assert!(after.space_amplification() < 1.5, "{after:?}");
    // The space is really gone from the file system, not just from the manifest.
    let on_disk: u64 = run_files(&fs)
        .iter()
        .map(|n| fs.file_size(&Path::new("/db").join(n)).unwrap())
        .sum();
    assert_eq!(on_disk, after.run_bytes);
}

#[test]
fn readers_see_consistent_snapshots_while_compaction_swaps_runs() {
    let fs = MemFs::new();
    let db = Arc::new(
        Db::open(
            "/db",
            common::compacting_options(&fs, 4 << 10, common::aggressive_leveled()),
        )
        .unwrap(),
    );
    const KEYS: u64 = 200;
    let write_gen = |db: &Db, g: u64| {
        let mut b = WriteBatch::new();
        for i in 0..KEYS {
            b.put(key(i), format!("gen{g:06}"));
        }
        db.write(b).unwrap();
    };
    write_gen(&db, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..2 {
        let (db, stop) = (db.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut scans = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Every batch rewrites all keys: a consistent scan sees one generation.
                let pairs: Vec<_> = if r == 0 {
                    db.scan::<&[u8], _>(..).map(|p| p.unwrap()).collect()
                } else {
                    db.scan::<&[u8], _>(..).rev().map(|p| p.unwrap()).collect()
                };
                assert_eq!(pairs.len() as u64, KEYS);
                let first = &pairs[0].1;
                assert!(pairs.iter().all(|(_, v)| v == first), "torn scan");
                let v = db.get(key(scans % KEYS)).unwrap().expect("never missing");
                assert!(v.starts_with(b"gen"));
                scans += 1;
            }
            scans
        }));
    }
    for g in 1..=300 {
        write_gen(&db, g);
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let stats = db.stats();
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(stats.versions_dropped > 0, "{stats:?}");
    assert!(common::all(&db).iter().all(|(_, v)| v == b"gen000300"));
}

#[test]
fn obsolete_runs_live_until_the_last_iterator_lets_go() {
    let fs = MemFs::new();
    let opts = Options {
        compaction_threads: 0,
        ..common::mem_options(&fs, 1 << 20)
    };
    let db = Db::open("/db", opts).unwrap();
    for round in 0..3u64 {
        for i in 0..100 {
            db.put(key(i), format!("r{round}")).unwrap();
        }
        db.flush().unwrap();
    }
    let old = run_files(&fs);
    assert_eq!(old.len(), 3);
    let mut iter = db.scan::<&[u8], _>(..);
    let first = iter.next().unwrap().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let now = run_files(&fs);
    assert_eq!(db.stats().levels.iter().map(|l| l.runs).sum::<usize>(), 1);
    assert_eq!(
        now.len(),
        4,
        "old runs stay while the iterator reads them: {now:?}"
    );
    assert_eq!(first.1.as_ref(), b"r2");
    assert_eq!(iter.count(), 99);
    let now = run_files(&fs);
    assert_eq!(
        now.len(),
        1,
        "old runs deleted after the iterator dropped: {now:?}"
    );
    assert!(!old.contains(&now[0]));
}

#[test]
fn compacted_tree_survives_reopen_and_manifest_rotation() {
    let fs = MemFs::new();
    let opts = || Options {
        max_manifest_bytes: 2 << 10,
        ..common::compacting_options(&fs, 4 << 10, common::aggressive_leveled())
    };
    let db = Db::open("/db", opts()).unwrap();
    for i in 0..6_000u64 {
        db.put(key(i % 1_500), i.to_le_bytes()).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let expect = common::all(&db);
    let levels = db.stats().levels;
    db.close().unwrap();
    let manifests: Vec<_> = common::files(&fs)
        .into_iter()
        .filter(|n| n.starts_with("MANIFEST"))
        .collect();
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    let db = Db::open("/db", opts()).unwrap();
    assert_eq!(common::all(&db), expect);
    let reopened = db.stats().levels;
    // Recovery writes no new run here (the WAL holds nothing unflushed after close+flush).
    assert_eq!(
        reopened.iter().map(|l| l.runs).collect::<Vec<_>>(),
        levels.iter().map(|l| l.runs).collect::<Vec<_>>()
    );
    // Power loss right now keeps everything too (every manifest edit is synced).
    let crashed = fs.crash_clone();
    drop(db);
    let db = Db::open("/db", common::mem_options(&crashed, 4 << 10)).unwrap();
    assert_eq!(common::all(&db), expect);
}

#[test]
fn a_failed_compaction_poisons_writes_and_reopen_recovers_everything() {
    let mem = MemFs::new();
    let fault = FaultFs::new(Arc::new(mem.clone()));
    let opts = Options {
        vfs: Arc::new(fault.clone()),
        compaction_threads: 0,
        durability: chronokv::Durability::Sync,
        ..common::mem_options(&mem, 1 << 20)
    };
    let db = Db::open("/db", opts).unwrap();
    for round in 0..3u64 {
        for i in 0..200 {
            db.put(key(i), format!("r{round}-{i}")).unwrap();
        }
        db.flush().unwrap();
    }
    let expect = common::all(&db);
    fault.fail_writes(true);
    let err = db.compact_range::<&[u8], _>(..).unwrap_err();
    assert!(!err.to_string().is_empty());
    fault.fail_writes(false);
    assert!(
        db.put("x", "y").is_err(),
        "a failed compaction stops writes"
    );
    assert_eq!(common::all(&db), expect, "reads still work");
    let crashed = mem.crash_clone();
    drop(db);
    let db = Db::open("/db", common::mem_options(&crashed, 1 << 20)).unwrap();
    assert_eq!(common::all(&db), expect);
    assert!(
        common::files(&crashed).iter().all(|n| !n.ends_with(".tmp")),
        "open removes partial outputs"
    );
}

#[test]
fn tiered_compaction_merges_runs_and_keeps_data() {
    let fs = MemFs::new();
    let db = Db::open(
        "/db",
        common::compacting_options(&fs, 4 << 10, common::aggressive_tiered()),
    )
    .unwrap();
    for i in 0..8_000u64 {
        db.put(key(i % 2_000), i.to_le_bytes()).unwrap();
    }
    db.flush().unwrap();
    let stats = db.stats();
    assert_eq!(stats.strategy, "tiered");
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(
        stats.levels.iter().skip(1).all(|l| l.runs == 0),
        "tiered keeps one level: {stats:?}"
    );
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.stats().l0_runs(), 1);
    let all = common::all(&db);
    assert_eq!(all.len(), 2_000);
    for (k, v) in all {
        let i: u64 = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
        assert_eq!(v, (6_000 + i).to_le_bytes());
    }
}

#[test]
fn writes_never_stop_for_a_tree_compaction_would_leave_alone() {
    let fs = MemFs::new();
    // Level 0 compacts at 4 runs, but writes would stop at 1: compaction cannot help there,
    // so the engine must not stop (or slow) writes at all.
    let opts = Options {
        l0_slowdown_runs: 1,
        l0_stop_runs: 1,
        compaction: chronokv::CompactionStyle::Leveled(chronokv::Leveled {
            l0_trigger: 4,
            ..Default::default()
        }),
        ..common::mem_options(&fs, 1 << 20)
    };
    let db = Db::open("/db", opts).unwrap();
    for round in 0..3u64 {
        db.put(key(round), "v").unwrap();
        db.flush().unwrap();
    }
    assert_eq!(db.stats().l0_runs(), 3);
    for i in 0..100 {
        db.put(key(i), "w").unwrap();
    }
    let s = db.stats();
    assert_eq!((s.write_stops, s.write_slowdowns), (0, 0), "{s:?}");
}

#[test]
fn a_stopped_writer_resumes_when_compaction_catches_up() {
    let fs = MemFs::new();
    // Stop at 2 level-0 runs, compact at 2: every second flush stops writers until the
    // level-0 compaction lands.
    let opts = Options {
        l0_slowdown_runs: 2,
        l0_stop_runs: 2,
        compaction_threads: 1,
        ..common::compacting_options(&fs, 2 << 10, common::aggressive_leveled())
    };
    let db = Db::open("/db", opts).unwrap();
    for i in 0..3_000u64 {
        db.put(key(i), [1u8; 64]).unwrap();
    }
    db.wait_for_compactions().unwrap();
    let s = db.stats();
    assert!(s.l0_runs() < 2, "{s:?}");
    assert_eq!(common::all(&db).len(), 3_000);
    assert!(s.compactions + s.trivial_moves > 0, "{s:?}");
    // Some hundred flushes each reach the stop threshold; a write right after one waits.
    assert!(s.write_stops > 0, "{s:?}");
}

#[test]
fn stats_count_user_bytes_exactly() {
    let fs = MemFs::new();
    let db = common::open_mem(&fs, 1 << 20);
    db.put("abc", "12345").unwrap();
    let mut b = WriteBatch::new();
    b.put("k", "").delete("gone");
    db.write(b).unwrap();
    let s = db.stats();
    assert_eq!(s.user_bytes_written, 3 + 5 + 1 + 4);
    assert!(s.wal_bytes_written > s.user_bytes_written);
    assert_eq!(s.write_amplification(), 0.0, "nothing flushed yet");
    db.flush().unwrap();
    let s = db.stats();
    assert_eq!(s.flushes, 1);
    assert_eq!(s.l0_runs(), 1);
    assert_eq!(s.levels[0].tombstones, 1);
    assert!(s.write_amplification() > 1.0);
}
