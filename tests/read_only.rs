//! Read-only opens (`Db::open_read_only`): they change no file, see exactly what the next
//! writable open recovers, work beside a writer (in this process and in a child process
//! that writes continuously), and refuse every write with `Error::ReadOnly`.

mod common;

use chronokv::vfs::{CrashMode, MemFs, Vfs};
use chronokv::{At, Db, Error, Options, Version, WriteBatch};
use common::{all, mem_options};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every file of a (flat) store directory with its bytes.
type Files = BTreeMap<String, Vec<u8>>;

fn files_of(vfs: &dyn Vfs, dir: &Path) -> Files {
    let mut names = vfs.list(dir).expect("list");
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = vfs.read(&dir.join(&n)).expect("read");
            (n, bytes)
        })
        .collect()
}

fn real_files(dir: &Path) -> Files {
    files_of(&chronokv::vfs::RealFs, dir)
}

/// Fails naming the first file that differs.
fn assert_same_files(before: &Files, after: &Files, what: &str) {
    let names = |f: &Files| f.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(before),
        names(after),
        "{what}: the file names changed"
    );
    for (name, bytes) in before {
        assert!(after[name] == *bytes, "{what}: {name} changed");
    }
}

/// The live pairs, the latest version, and every retained (version, value) of them.
type Observed = (
    Vec<(Vec<u8>, Vec<u8>)>,
    Version,
    Vec<(Version, Option<Vec<u8>>)>,
);

/// Everything a reader can observe that recovery decides: the live pairs, the latest
/// version, and the history of every key.
fn observed(db: &Db) -> Observed {
    let pairs = all(db);
    let mut history = Vec::new();
    for (k, _) in &pairs {
        for e in db.history(k).expect("history") {
            history.push((e.version, e.value.map(|v| v.to_vec())));
        }
    }
    (pairs, db.latest_version(), history)
}

/// A store with runs on every path recovery takes: flushed runs, a compaction, commits only
/// in the WAL, a delete.
fn build_store(opts: Options, dir: &Path) {
    let db = Db::open(dir, opts).expect("open");
    for i in 0..300u32 {
        db.put(format!("k{:03}", i % 40), format!("v{i}")).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    for i in 0..25u32 {
        db.put(format!("k{:03}", i), format!("late{i}")).unwrap();
    }
    db.delete("k039").unwrap();
    db.close().unwrap();
}

fn history_options(opts: Options) -> Options {
    Options {
        history_retention: Some(Duration::from_secs(3600)),
        ..opts
    }
}

#[test]
fn a_closed_store_is_left_unchanged_and_read_as_a_writable_open_recovers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let opts = Options {
        memtable_size: 4 << 10,
        ..history_options(Options::default())
    };
    build_store(opts.clone(), &dir);
    let before = real_files(&dir);
    assert!(before.keys().any(|n| n.ends_with(".wal")), "{before:?}");

    let ro = Db::open_read_only(&dir, opts.clone()).expect("read-only open");
    assert!(ro.is_read_only());
    let seen = observed(&ro);
    // Every read API, so none of them writes either.
    assert_eq!(ro.get("k000").unwrap().as_deref(), Some(&b"late0"[..]));
    assert_eq!(ro.get("k039").unwrap(), None);
    let old = ro.snapshot_at(Version(10)).unwrap();
    assert_eq!(old.get("k009").unwrap().as_deref(), Some(&b"v9"[..]));
    assert!(ro.snapshot_as_of(std::time::SystemTime::now()).is_ok());
    assert_eq!(ro.changes(..).unwrap().count(), 326);
    assert!(ro.history_scan::<&[u8], _>(..).unwrap().count() > 40);
    assert!(ro.begin_read_only().get("k001").unwrap().is_some());
    let report = ro.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.runs > 0 && report.wal_records > 0, "{report:?}");
    assert!(ro.stats().levels.iter().any(|l| l.runs > 0));
    assert!(ro.space_usage().unwrap().live_keys == 39);
    ro.close().unwrap();
    assert_same_files(&before, &real_files(&dir), "after a read-only open");

    let db = Db::open(&dir, opts).expect("writable open");
    assert_eq!(observed(&db), seen);
}

#[test]
fn a_torn_wal_tail_ends_the_view_and_stays_on_disk() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = mem_options(&fs, 1 << 20);
    build_store(opts.clone(), dir);
    let wal = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .max()
        .expect("a WAL segment");
    // Half a frame of garbage, as a crash in the middle of a write leaves.
    let path = dir.join(&wal);
    let mut bytes = fs.read(&path).unwrap();
    bytes.extend_from_slice(&[0x5a; 23]);
    let mut f = fs.create(&path).unwrap();
    f.write_all(&bytes).unwrap();
    f.sync().unwrap();
    drop(f);
    let before = files_of(&fs, dir);
    let mutations = fs.mutations();

    let ro = Db::open_read_only(dir, opts.clone()).expect("a torn tail is no error");
    let seen = observed(&ro);
    drop(ro);
    assert_eq!(fs.mutations(), mutations, "the read-only open wrote");
    assert_same_files(&before, &files_of(&fs, dir), "after a read-only open");

    // The writable open cuts the tail off and recovers the same.
    let db = Db::open(dir, opts).unwrap();
    assert_eq!(observed(&db), seen);
}

#[test]
fn every_write_is_refused_with_read_only_and_changes_nothing() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = history_options(mem_options(&fs, 4 << 10));
    build_store(opts.clone(), dir);
    let mutations = fs.mutations();
    let ro = Db::open_read_only(dir, opts).unwrap();
    let refused = |r: chronokv::Result<()>, what: &str| {
        assert!(matches!(r, Err(Error::ReadOnly)), "{what}: {r:?}");
    };
    refused(ro.put("a", "1").map(drop), "put");
    refused(ro.delete("a").map(drop), "delete");
    let mut batch = WriteBatch::new();
    batch.put("a", "1");
    refused(ro.write(batch).map(drop), "write");
    refused(ro.write(WriteBatch::new()).map(drop), "an empty batch");
    let mut txn = ro.begin();
    txn.put("a", "1").unwrap();
    refused(txn.commit().map(drop), "a transaction");
    refused(ro.flush(), "flush");
    refused(ro.compact_range::<&[u8], _>(..), "compact_range");
    refused(ro.sync_wal(), "sync_wal");
    refused(
        ro.set_history_retention(chronokv::Retention::default())
            .map(drop),
        "set_history_retention",
    );
    refused(
        ro.restore_to(At::Version(Version(5))).map(drop),
        "restore_to",
    );
    assert!(ro.wait_for_compactions().is_ok(), "nothing to wait for");
    assert!(Error::ReadOnly.to_string().contains("read-only"));
    // Reads still work after the refusals.
    assert_eq!(ro.get("k000").unwrap().as_deref(), Some(&b"late0"[..]));
    drop(ro);
    assert_eq!(fs.mutations(), mutations, "a refused write wrote");
}

#[test]
fn a_missing_path_or_an_empty_directory_fails_and_nothing_is_created() {
    let fs = MemFs::new();
    let opts = Options {
        create_if_missing: true,
        ..mem_options(&fs, 4 << 10)
    };
    let err = Db::open_read_only("/nope", opts.clone()).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("/nope") && m.contains("does not exist")),
        "{err}"
    );
    assert!(!fs.exists(Path::new("/nope")));
    fs.create_dir_all(Path::new("/empty")).unwrap();
    let err = Db::open_read_only("/empty", opts).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("holds no database")),
        "{err}"
    );
    assert!(fs.list(Path::new("/empty")).unwrap().is_empty());

    // On a real file system too.
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("typo");
    assert!(Db::open_read_only(&missing, Options::default()).is_err());
    assert!(!missing.exists());
}

#[test]
fn a_read_only_open_beside_a_writable_db_sees_what_was_committed_before_it() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = mem_options(&fs, 4 << 10);
    let db = Db::open(dir, opts.clone()).unwrap();
    for i in 0..200u32 {
        db.put(format!("k{:03}", i % 50), format!("v{i}")).unwrap();
    }
    let ro = Db::open_read_only(dir, opts.clone()).expect("no lock is needed");
    assert_eq!(ro.latest_version(), db.latest_version());
    assert_eq!(all(&ro), all(&db));
    // The handle does not follow: later commits need a new open.
    db.put("k000", "after").unwrap();
    assert_eq!(ro.get("k000").unwrap().as_deref(), Some(&b"v150"[..]));
    let again = Db::open_read_only(dir, opts).unwrap();
    assert_eq!(again.get("k000").unwrap().as_deref(), Some(&b"after"[..]));
    // A writer still cannot open it twice.
    assert!(matches!(
        Db::open(dir, mem_options(&fs, 4 << 10)),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn refresh_swaps_in_the_writers_later_state_and_old_snapshots_keep_theirs() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = history_options(mem_options(&fs, 4 << 10));
    let db = Db::open(dir, opts.clone()).unwrap();
    for i in 0..100u32 {
        db.put(format!("k{:02}", i % 30), format!("a{i}")).unwrap();
    }
    db.flush().unwrap(); // the read-only handle below must hold runs
    let runs = |fs: &MemFs| -> Vec<String> {
        let names = fs.list(dir).unwrap();
        names
            .into_iter()
            .filter(|n| n.ends_with(".arrow"))
            .collect()
    };
    let mut ro = Db::open_read_only(dir, opts.clone()).unwrap();
    let held_runs = runs(&fs);
    assert!(!held_runs.is_empty());
    let old = ro.snapshot();
    let old_pairs: Vec<_> = old.iter().map(|r| r.unwrap()).collect();
    let sub = ro
        .subscribe(Version(ro.latest_version().get() + 1))
        .unwrap();
    let waiter = std::thread::spawn(move || sub.count());
    // The writer moves on: new commits, flushes and a compaction that deletes every run the
    // read-only handle holds.
    for i in 0..100u32 {
        db.put(format!("k{:02}", i % 30), format!("b{i}")).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    db.put("k00", "in the WAL").unwrap();
    // An obsolete run is deleted when the last view holding it drops, which a background
    // thread may still do after `compact_range` returns: wait for it (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while held_runs.iter().any(|r| runs(&fs).contains(r)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let now = runs(&fs);
    assert!(
        held_runs.iter().all(|r| !now.contains(r)),
        "{held_runs:?} {now:?}"
    );
    assert_eq!(
        ro.get("k00").unwrap().as_deref(),
        Some(&b"a90"[..]),
        "no refresh yet"
    );
    // The writer's background work must not write while the refresh is counted.
    db.wait_for_compactions().unwrap();
    let mutations = fs.mutations();
    assert!(ro.refresh().unwrap());
    assert_eq!(fs.mutations(), mutations, "refresh wrote");
    assert_eq!(ro.latest_version(), db.latest_version());
    assert_eq!(all(&ro), all(&db));
    assert_eq!(ro.get("k00").unwrap().as_deref(), Some(&b"in the WAL"[..]));
    // The snapshot taken before reads its state, from runs the writer has deleted.
    let again: Vec<_> = old.iter().map(|r| r.unwrap()).collect();
    assert_eq!(again, old_pairs);
    assert_eq!(waiter.join().unwrap(), 0, "the old subscription ended");
    assert!(!ro.refresh().unwrap(), "nothing new");
    let mut writable = db;
    assert!(matches!(writable.refresh(), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_read_only_checkpoint_holds_every_version_it_sees() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = history_options(mem_options(&fs, 4 << 10));
    build_store(opts.clone(), dir);
    let before = files_of(&fs, dir);
    let ro = Db::open_read_only(dir, opts.clone()).unwrap();
    let info = ro.checkpoint("/cp").unwrap();
    assert_eq!(info.version, ro.latest_version());
    let seen = observed(&ro);
    drop(ro);
    assert_same_files(&before, &files_of(&fs, dir), "after a checkpoint");
    let cp = Db::open("/cp", opts).unwrap();
    assert_eq!(observed(&cp), seen);
    assert!(cp.verify().unwrap().is_ok());
}

/// The `.arrow` files of `dir`.
fn run_files(fs: &MemFs, dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".arrow"))
        .collect();
    names.sort();
    names
}

/// The writer moves on past a read-only handle `ro` opened: new commits, then a compaction
/// of everything, which deletes every run `ro` holds (waited for: an obsolete run goes
/// when the last view holding it drops, perhaps on a background thread, bounded here).
fn compact_away_what_it_holds(fs: &MemFs, dir: &Path, db: &Db, held: &[String]) {
    for i in 0..60u32 {
        db.put(format!("k{:02}", i % 30), format!("new{i}"))
            .unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while held.iter().any(|r| run_files(fs, dir).contains(r)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let now = run_files(fs, dir);
    assert!(held.iter().all(|r| !now.contains(r)), "{held:?} {now:?}");
}

/// A store whose read-only handle holds runs and WAL records, beside its open writer.
fn writer_and_follower(fs: &MemFs, dir: &Path, opts: &Options) -> (Db, Db, Vec<String>) {
    let db = Db::open(dir, opts.clone()).unwrap();
    for i in 0..90u32 {
        db.put(format!("k{:02}", i % 30), format!("old{i}"))
            .unwrap();
    }
    db.flush().unwrap();
    db.put("k00", "old in the WAL").unwrap();
    db.wait_for_compactions().unwrap();
    let ro = Db::open_read_only(dir, opts.clone()).unwrap();
    let held = run_files(fs, dir);
    assert!(!held.is_empty());
    (db, ro, held)
}

#[test]
fn a_snapshot_from_before_a_refresh_reads_old_values_from_deleted_runs() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = history_options(mem_options(&fs, 4 << 10));
    let (db, mut ro, held) = writer_and_follower(&fs, dir, &opts);
    let old = ro.snapshot();
    let old_version = ro.latest_version();
    compact_away_what_it_holds(&fs, dir, &db, &held);
    assert!(ro.refresh().unwrap());
    assert_eq!(ro.latest_version(), db.latest_version());
    assert_eq!(ro.get("k00").unwrap().as_deref(), Some(&b"new30"[..]));
    // The snapshot reads its own view, whose runs are gone from the directory.
    assert_eq!(old.version(), old_version);
    assert_eq!(
        old.get("k00").unwrap().as_deref(),
        Some(&b"old in the WAL"[..])
    );
    assert_eq!(old.get("k29").unwrap().as_deref(), Some(&b"old89"[..]));
    assert_eq!(old.iter().count(), 30);
    // A refresh with nothing new keeps everything it holds.
    assert!(!ro.refresh().unwrap());
    assert_eq!(all(&ro), all(&db));
}

#[test]
fn a_checkpoint_and_a_backup_of_a_handle_whose_runs_the_writer_deleted() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = history_options(mem_options(&fs, 4 << 10));
    let (db, ro, held) = writer_and_follower(&fs, dir, &opts);
    let seen = observed(&ro);
    compact_away_what_it_holds(&fs, dir, &db, &held);
    // No refresh: the handle's runs exist only as the readers it holds open.
    let info = ro.checkpoint("/cp").unwrap();
    assert_eq!(info.version, seen.1);
    let cp = Db::open("/cp", opts.clone()).unwrap();
    assert_eq!(observed(&cp), seen);
    assert!(cp.verify().unwrap().is_ok());
    let backups =
        chronokv::backup::BackupEngine::open_with_vfs("/bk", Arc::new(fs.clone())).unwrap();
    let b = backups.create(&ro).unwrap();
    assert_eq!(b.version, seen.1);
    assert!(backups.verify(b.id).unwrap().is_ok());
    backups.restore(b.id, "/restored").unwrap();
    let restored = Db::open("/restored", opts).unwrap();
    assert_eq!(observed(&restored), seen);
}

#[test]
fn a_subscription_on_a_read_only_handle_ends_when_it_closes() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = history_options(mem_options(&fs, 4 << 10));
    build_store(opts.clone(), dir);
    let ro = Db::open_read_only(dir, opts).unwrap();
    let sub = ro
        .subscribe(Version(ro.latest_version().get() + 1))
        .unwrap();
    let waiter = std::thread::spawn(move || sub.count());
    std::thread::sleep(Duration::from_millis(50));
    ro.close().unwrap();
    assert_eq!(waiter.join().unwrap(), 0);
}

/// Power loss at every crash point of a workload: on each image, a read-only open writes
/// nothing and sees exactly what the next writable open recovers.
#[test]
fn on_every_crash_image_a_read_only_open_writes_nothing_and_agrees_with_recovery() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    let opts = |fs: &MemFs| history_options(mem_options(fs, 2 << 10));
    fs.record_crash_points();
    {
        let db = Db::open(dir, opts(&fs)).unwrap();
        for i in 0..120u32 {
            let mut b = WriteBatch::new();
            b.put(format!("a{:02}", i % 20), format!("{i}"));
            b.put(format!("b{:02}", i % 20), format!("{i}"));
            db.write(b).unwrap();
        }
    }
    let points = fs.crash_points();
    assert!(points > 50, "{points} crash points");
    let mut opened = 0;
    for point in (0..points).step_by(3) {
        for mode in [
            CrashMode::SyncedOnly,
            CrashMode::TornWrite { seed: point as u64 },
        ] {
            let image = fs.crash_image(point, mode).unwrap();
            if !image.exists(dir) {
                continue;
            }
            let before = files_of(&image, dir);
            let mutations = image.mutations();
            let ro = Db::open_read_only(dir, opts(&image));
            assert_eq!(image.mutations(), mutations, "point {point}: it wrote");
            assert_same_files(&before, &files_of(&image, dir), "a crash image");
            let rw = Db::open(
                dir,
                Options {
                    create_if_missing: false,
                    ..opts(&image)
                },
            );
            match (ro, rw) {
                (Ok(ro), Ok(rw)) => {
                    assert_eq!(observed(&ro), observed(&rw), "point {point} {mode:?}");
                    opened += 1;
                }
                // No database yet (CURRENT not durable): both refuse.
                (Err(_), Err(_)) => {}
                (ro, rw) => panic!("point {point} {mode:?}: read-only {ro:?}, writable {rw:?}"),
            }
        }
    }
    assert!(opened > 20, "only {opened} images opened");
}

/// The child of `beside_a_writer_in_another_process`: writes batches of 16 keys, all set to
/// the batch number, and prints `ack N` once batch N is committed. Ignored: the parent runs
/// it (`--ignored --exact`), with the store's directory in `CHRONOKV_RO_WRITER`.
#[test]
#[ignore = "run by beside_a_writer_in_another_process"]
fn writer_child() {
    let Some(dir) = std::env::var_os("CHRONOKV_RO_WRITER") else {
        return;
    };
    let db = Db::open(
        &dir,
        Options {
            memtable_size: 8 << 10,
            ..history_options(Options::default())
        },
    )
    .unwrap();
    for i in 1..=1_000_000u64 {
        let mut b = WriteBatch::new();
        for k in 0..KEYS {
            b.put(format!("k{k:02}"), format!("{i}:{}", "x".repeat(40)));
        }
        db.write(b).unwrap();
        // The parent reads this line only after the commit returned.
        println!("ack {i}");
    }
}

const KEYS: u64 = 16;

/// The batch number every key of `db` holds; fails on a half-applied batch.
fn batch_seen(db: &Db) -> u64 {
    let pairs = all(db);
    assert_eq!(pairs.len() as u64, KEYS, "{pairs:?}");
    let batch = |v: &[u8]| -> u64 {
        let s = std::str::from_utf8(v).unwrap();
        s.split(':').next().unwrap().parse().unwrap()
    };
    let first = batch(&pairs[0].1);
    for (k, v) in &pairs {
        assert_eq!(batch(v), first, "half a batch: {k:?} differs");
    }
    // Each batch takes KEYS versions, from version 1 on.
    assert_eq!(db.latest_version(), Version(first * KEYS));
    first
}

#[test]
fn beside_a_writer_in_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "writer_child", "--nocapture"])
        .env("CHRONOKV_RO_WRITER", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let acked = acked.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    acked.store(n.parse().unwrap(), Ordering::SeqCst);
                }
            }
        })
    };
    let wait_for = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the writer stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(20);
    let mut last = 0;
    // Every other round refreshes one follower instead of opening anew.
    let mut follower = Db::open_read_only(&dir, Options::default()).unwrap();
    for round in 0..30 {
        let before = acked.load(Ordering::SeqCst);
        let fresh;
        let ro = if round % 2 == 0 {
            fresh = Db::open_read_only(&dir, Options::default())
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            &fresh
        } else {
            let held = follower.snapshot();
            let held_batch = batch_seen(&follower);
            follower
                .refresh()
                .unwrap_or_else(|e| panic!("round {round}: refresh: {e}"));
            // What the follower saw before still reads whole, its files deleted or not.
            let pairs: Vec<_> = held.iter().map(|r| r.unwrap()).collect();
            assert_eq!(pairs.len() as u64, KEYS);
            let prefix = format!("{held_batch}:");
            assert!(pairs.iter().all(|(_, v)| v.starts_with(prefix.as_bytes())));
            &follower
        };
        let seen = batch_seen(ro);
        assert!(
            seen >= before,
            "round {round}: saw batch {seen}, {before} was acknowledged"
        );
        assert!(
            seen >= last,
            "round {round}: went back from {last} to {seen}"
        );
        // The history of a key is the whole prefix, newest first.
        let history: Vec<u64> = ro
            .history("k00")
            .unwrap()
            .iter()
            .map(|e| {
                let v = e.value.as_ref().unwrap();
                std::str::from_utf8(v)
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            history,
            (1..=seen).rev().collect::<Vec<_>>(),
            "round {round}"
        );
        let report = ro.verify().unwrap();
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.kind == chronokv::ProblemKind::WalTornTail),
            "round {round}: {:?}",
            report.problems
        );
        last = seen;
        wait_for(before + 5);
    }
    // A crash of the writer: the read-only view of what it left is what recovery finds.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let before = real_files(&dir);
    let ro = Db::open_read_only(&dir, Options::default()).unwrap();
    let seen = (batch_seen(&ro), observed(&ro));
    drop(ro);
    assert_same_files(&before, &real_files(&dir), "after the writer was killed");
    let db = Db::open(&dir, Options::default()).unwrap();
    assert_eq!((batch_seen(&db), observed(&db)), seen);
    assert!(seen.0 >= acked.load(Ordering::SeqCst));
}
