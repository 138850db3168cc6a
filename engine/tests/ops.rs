//! Verify, checkpoints and backups, on real directories and on MemFs (for crash images).

use chronokv_engine::backup::BackupEngine;
use chronokv_engine::{
    verify_dir, CompactionStyle, Db, Error, Leveled, Options, ProblemKind, WriteBatch,
};
use chronokv_runs::{BlockCache, RunReader};
use chronokv_vfs::{DirLock, MappedFile, MemFs, RealFs, Vfs, WritableFile};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
/// One committed batch: the version of its last entry and its (key, value or delete) pairs.
type Commit = (u64, Vec<(String, Option<String>)>);

fn opts(vfs: Arc<dyn Vfs>) -> Options {
    Options {
        vfs,
        memtable_size: 8 << 10,
        block_size: 1024,
        compaction_threads: 0,
        ..Options::default()
    }
}

fn all(db: &Db) -> Pairs {
    db.scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

/// Writes `n` keys in batches of 50, flushing after each batch, so each batch is a run.
fn fill(db: &Db, prefix: &str, n: usize) {
    for start in (0..n).step_by(50) {
        let mut b = WriteBatch::new();
        for i in start..(start + 50).min(n) {
            b.put(
                format!("{prefix}{i:05}"),
                format!("value-{i}-{}", "x".repeat(i % 40)),
            );
        }
        db.write(b).unwrap();
        db.flush().unwrap();
    }
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// The middle of a run's first block body.
fn block_body_offset(path: &Path) -> u64 {
    let r = RunReader::open(&RealFs, path, 0, BlockCache::new(0)).unwrap();
    let b = &r.layout().blocks[0];
    b.offset + u64::from(b.meta_len) + b.body_len / 2
}

#[test]
fn verify_dir_passes_a_healthy_store_and_reports_every_problem_of_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let db = Db::open(path, opts(Arc::new(RealFs))).unwrap();
    fill(&db, "k", 200);
    // Unflushed writes stay in the WAL.
    for i in 0..20 {
        db.put(format!("wal{i}"), "in the log").unwrap();
    }
    let runs = db.runs();
    assert!(runs.len() >= 4, "{}", runs.len());
    assert!(db.verify().unwrap().is_ok());
    db.close().unwrap();

    let report = verify_dir(path, &Options::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.runs, runs.len());
    assert_eq!(report.entries, 200);
    assert_eq!((report.wal_segments, report.wal_records), (1, 20));

    // Three kinds of damage at once: a flipped byte in one run, another run missing, and the
    // WAL cut in the middle of its last record.
    let flipped = &runs[0].path;
    let offset = block_body_offset(flipped);
    flip(flipped, offset);
    std::fs::remove_file(&runs[1].path).unwrap();
    let wal = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .unwrap();
    let wal_len = std::fs::metadata(&wal).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(wal_len - 5).unwrap();

    let report = verify_dir(path, &Options::default()).unwrap();
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    assert!(kinds.contains(&ProblemKind::RunCorrupt), "{kinds:?}");
    assert!(kinds.contains(&ProblemKind::MissingRun), "{kinds:?}");
    assert!(kinds.contains(&ProblemKind::WalTornTail), "{kinds:?}");
    let corrupt = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::RunCorrupt)
        .unwrap();
    assert_eq!(&corrupt.file, flipped);
    let block = &RunReader::open(&RealFs, flipped, 0, BlockCache::new(0))
        .unwrap()
        .layout()
        .blocks[0];
    assert_eq!(corrupt.offset, Some(block.offset), "{corrupt}");
    let missing = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::MissingRun)
        .unwrap();
    assert_eq!(missing.file, runs[1].path);
    let torn = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::WalTornTail)
        .unwrap();
    assert!(torn.offset.unwrap() < wal_len - 5, "{torn}");
    // The store itself refuses to open; verify still read everything else.
    assert!(Db::open(path, Options::default()).is_err());
    assert_eq!(report.runs, runs.len() - 1);
}

#[test]
fn verify_dir_without_a_readable_manifest_still_checks_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Arc::new(RealFs))).unwrap();
    fill(&db, "k", 100);
    let runs = db.runs();
    db.close().unwrap();
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = dir.path().join(current.trim());
    let len = std::fs::metadata(&manifest).unwrap().len();
    flip(&manifest, 20); // inside the first frame; later frames are valid
    flip(&runs[0].path, block_body_offset(&runs[0].path));
    let report = verify_dir(dir.path(), &Options::default()).unwrap();
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    assert!(kinds.contains(&ProblemKind::Manifest), "{kinds:?}");
    assert!(kinds.contains(&ProblemKind::RunCorrupt), "{kinds:?}");
    assert_eq!(report.runs, runs.len());
    assert!(len > 20);
}

#[test]
fn verify_dir_refuses_an_open_store_and_a_directory_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let err = verify_dir(dir.path(), &Options::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    drop(db);
    let empty = tempfile::tempdir().unwrap();
    let err = verify_dir(empty.path(), &Options::default()).unwrap_err();
    assert!(err.to_string().contains("holds no database"), "{err}");
}

#[test]
fn online_verify_sees_a_flipped_byte_in_a_live_run() {
    let fs = MemFs::new();
    let db = Db::open("/db", opts(Arc::new(fs.clone()))).unwrap();
    fill(&db, "k", 100);
    let runs = db.runs();
    let r = db.verify().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(r.runs, runs.len());
    let reader = RunReader::open(&fs, &runs[0].path, 0, BlockCache::new(0)).unwrap();
    let b = &reader.layout().blocks[0];
    fs.corrupt_byte(
        &runs[0].path,
        (b.offset + u64::from(b.meta_len)) as usize,
        1,
    )
    .unwrap();
    let r = db.verify().unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.problems[0].kind, ProblemKind::RunCorrupt);
    assert_eq!(r.problems[0].offset, Some(b.offset));
}

#[test]
fn online_verify_during_writes_and_compactions_finds_nothing() {
    let fs = MemFs::new();
    let o = Options {
        compaction_threads: 2,
        compaction: CompactionStyle::Leveled(Leveled {
            l0_trigger: 2,
            size_ratio: 4,
            base_level_bytes: 4 << 10,
            target_run_size: 2 << 10,
            max_levels: 5,
        }),
        ..opts(Arc::new(fs.clone()))
    };
    let db = Arc::new(Db::open("/db", o).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                db.put(format!("key{:04}", i % 3000), format!("v{i}"))
                    .unwrap();
                i += 1;
            }
        })
    };
    // Verify over and over until several compactions have run alongside.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut rounds = 0;
    while rounds < 20 || db.stats().compactions < 3 {
        let r = db.verify().unwrap();
        assert!(r.is_ok(), "round {rounds}: {:?}", r.problems);
        rounds += 1;
        assert!(std::time::Instant::now() < deadline, "no compactions ran");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

/// A file system that cannot make hard links (so checkpoints copy).
#[derive(Debug)]
struct NoLinks(MemFs);

impl Vfs for NoLinks {
    fn create_dir_all(&self, d: &Path) -> io::Result<()> {
        self.0.create_dir_all(d)
    }
    fn create(&self, p: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.0.create(p)
    }
    fn read(&self, p: &Path) -> io::Result<Vec<u8>> {
        self.0.read(p)
    }
    fn map(&self, p: &Path) -> io::Result<Arc<dyn MappedFile>> {
        self.0.map(p)
    }
    fn open_read(&self, p: &Path) -> io::Result<Arc<dyn chronokv_vfs::RandomAccessFile>> {
        self.0.open_read(p)
    }
    fn file_size(&self, p: &Path) -> io::Result<u64> {
        self.0.file_size(p)
    }
    fn exists(&self, p: &Path) -> bool {
        self.0.exists(p)
    }
    fn rename(&self, a: &Path, b: &Path) -> io::Result<()> {
        self.0.rename(a, b)
    }
    fn remove_file(&self, p: &Path) -> io::Result<()> {
        self.0.remove_file(p)
    }
    fn list(&self, d: &Path) -> io::Result<Vec<String>> {
        self.0.list(d)
    }
    fn sync_dir(&self, d: &Path) -> io::Result<()> {
        self.0.sync_dir(d)
    }
    fn lock(&self, p: &Path) -> io::Result<Box<dyn DirLock>> {
        self.0.lock(p)
    }
}

#[test]
fn a_checkpoint_survives_a_power_loss_right_after_it_returns_with_links_or_copies() {
    for links in [true, false] {
        let fs = MemFs::new();
        let vfs: Arc<dyn Vfs> = if links {
            Arc::new(fs.clone())
        } else {
            Arc::new(NoLinks(fs.clone()))
        };
        let db = Db::open("/db", opts(vfs.clone())).unwrap();
        fill(&db, "k", 120);
        db.put("unflushed", "still in the memtable").unwrap();
        let expected = all(&db);
        let info = db.checkpoint("/backups/cp").unwrap();
        assert_eq!(info.version, db.latest_version());
        assert_eq!(info.runs, db.runs().len());
        if links {
            assert_eq!((info.linked, info.copied), (info.runs, 0));
        } else {
            assert_eq!((info.linked, info.copied), (0, info.runs));
        }
        assert!(
            db.checkpoint("/backups/cp").is_err(),
            "the target is not empty"
        );
        let crashed = fs.crash_clone();
        drop(db);
        let cp = Db::open("/backups/cp", opts(Arc::new(crashed))).unwrap();
        assert_eq!(all(&cp), expected, "links: {links}");
        assert_eq!(cp.latest_version(), info.version);
    }
}

#[test]
fn checkpoints_during_concurrent_writes_and_compactions_open_to_a_prefix_of_the_commits() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        vfs: Arc::new(RealFs),
        memtable_size: 4 << 10,
        block_size: 512,
        compaction_threads: 2,
        compaction: CompactionStyle::Leveled(Leveled {
            l0_trigger: 2,
            size_ratio: 4,
            base_level_bytes: 4 << 10,
            target_run_size: 2 << 10,
            max_levels: 5,
        }),
        ..Options::default()
    };
    let db = Arc::new(Db::open(dir.path().join("db"), o).unwrap());
    let log: Arc<Mutex<Vec<Commit>>> = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, log, acked, stop) = (db.clone(), log.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut b = WriteBatch::new();
                let mut pairs = Vec::new();
                for j in 0..3 {
                    let key = format!("key{:03}", (i * 7 + j * 13) % 400);
                    if (i + j).is_multiple_of(5) {
                        b.delete(&key);
                        pairs.push((key, None));
                    } else {
                        let v = format!("{i}-{j}");
                        b.put(&key, &v);
                        pairs.push((key, Some(v)));
                    }
                }
                let mut l = log.lock().unwrap();
                let v = db.write(b).unwrap();
                l.push((v.get(), pairs));
                acked.store(v.get(), Ordering::SeqCst);
                i += 1;
            }
        })
    };
    let mut checkpoints = Vec::new();
    for n in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let before = acked.load(Ordering::SeqCst);
        let cp = dir.path().join(format!("cp{n}"));
        let info = db.checkpoint(&cp).unwrap();
        assert!(info.version.get() >= before, "{info:?} misses v{before}");
        assert_eq!(info.linked, info.runs, "same file system: all hard links");
        checkpoints.push((cp, info.version));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let compactions = db.stats().compactions;
    drop(db);
    assert!(compactions > 0, "the test must race with compactions");
    let log = log.lock().unwrap();
    for (cp, version) in checkpoints {
        // Batches are atomic, so the checkpoint's version is the end of some batch.
        let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut boundary = version.get() == 0;
        for (v, pairs) in log.iter() {
            if *v > version.get() {
                break;
            }
            boundary |= *v == version.get();
            for (k, val) in pairs {
                match val {
                    Some(val) => expected.insert(k.clone().into_bytes(), val.clone().into_bytes()),
                    None => expected.remove(k.as_bytes()),
                };
            }
        }
        assert!(boundary, "{version} is not the end of a batch");
        let db = Db::open(&cp, Options::default()).unwrap();
        assert_eq!(db.latest_version(), version);
        let got: BTreeMap<Vec<u8>, Vec<u8>> = all(&db).into_iter().collect();
        assert_eq!(got, expected, "checkpoint at {version}");
        assert!(db.verify().unwrap().is_ok());
    }
}

fn backup_opts(fs: &MemFs) -> Options {
    opts(Arc::new(fs.clone()))
}

#[test]
fn incremental_backups_copy_only_new_runs_and_restore_exactly() {
    let fs = MemFs::new();
    let vfs: Arc<dyn Vfs> = Arc::new(fs.clone());
    let db = Db::open("/db", backup_opts(&fs)).unwrap();
    fill(&db, "a", 150);
    let engine = BackupEngine::open_with_vfs("/backups", vfs.clone()).unwrap();
    let first = engine.create(&db).unwrap();
    assert_eq!(first.id, 1);
    assert_eq!(first.copied_runs, first.runs);
    assert_eq!(first.copied_bytes, first.bytes);
    let state1 = all(&db);

    // Nothing new: nothing copied.
    let again = engine.create(&db).unwrap();
    assert_eq!((again.id, again.copied_runs, again.copied_bytes), (2, 0, 0));
    assert_eq!(again.runs, first.runs);

    fill(&db, "b", 100);
    db.put("memtable-only", "flushed by the backup").unwrap();
    let third = engine.create(&db).unwrap();
    assert_eq!(third.version, db.latest_version());
    let new_runs = db.runs().len() - first.runs;
    assert_eq!(third.copied_runs, new_runs, "only the new runs are copied");
    assert_eq!(third.runs, db.runs().len());
    let state3 = all(&db);
    let list = engine.list().unwrap();
    assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    for b in &list {
        assert!(engine.verify(b.id).unwrap().is_ok());
    }

    // Restores reproduce each backup's contents, also after a power loss.
    engine.restore(1, "/restore/one").unwrap();
    engine.restore(3, "/restore/three").unwrap();
    assert!(engine.restore(3, "/restore/three").is_err(), "not empty");
    let crashed = fs.crash_clone();
    for (dir, state) in [("/restore/one", &state1), ("/restore/three", &state3)] {
        let r = Db::open(dir, opts(Arc::new(crashed.clone()))).unwrap();
        assert_eq!(&all(&r), state, "{dir}");
    }

    // Deleting backups 1 and 2 frees nothing backup 3 still needs.
    assert_eq!(engine.delete(1).unwrap().removed_runs, 0);
    assert_eq!(engine.delete(2).unwrap().removed_runs, 0);
    assert!(engine.verify(3).unwrap().is_ok());
    engine.restore(3, "/restore/again").unwrap();
    let r = Db::open("/restore/again", backup_opts(&fs)).unwrap();
    assert_eq!(all(&r), state3);
    let err = engine.verify(1).unwrap_err();
    assert!(err.to_string().contains("no backup 1"), "{err}");
}

/// A metadata file named with the largest id leaves no id for the next backup: a clear
/// error, not an overflow (a panic in a debug build, a wrapped id in a release build).
#[test]
fn a_backup_after_the_largest_id_is_refused() {
    let fs = MemFs::new();
    let vfs: Arc<dyn Vfs> = Arc::new(fs.clone());
    let db = Db::open("/db", backup_opts(&fs)).unwrap();
    fill(&db, "a", 20);
    let engine = BackupEngine::open_with_vfs("/backups", vfs.clone()).unwrap();
    let mut f = vfs
        .create(Path::new(&format!("/backups/BACKUP-{}", u64::MAX)))
        .unwrap();
    f.write_all(b"not a backup").unwrap();
    f.sync().unwrap();
    drop(f);
    let err = engine.create(&db).unwrap_err();
    assert!(err.to_string().contains("no backup id is left"), "{err}");
    assert!(err.to_string().contains(&u64::MAX.to_string()), "{err}");
}

#[test]
fn deleting_a_backup_collects_the_runs_only_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path().join("db"),
        Options {
            compaction_threads: 0,
            memtable_size: 8 << 10,
            ..Options::default()
        },
    )
    .unwrap();
    fill(&db, "a", 100);
    let engine = BackupEngine::open(dir.path().join("bk")).unwrap();
    let one = engine.create(&db).unwrap();
    // Compaction replaces every run: backup 2 shares nothing with backup 1.
    db.compact_range::<&[u8], _>(..).unwrap();
    let two = engine.create(&db).unwrap();
    assert_eq!(two.copied_runs, two.runs);
    let deleted = engine.delete(1).unwrap();
    assert_eq!(deleted.removed_runs, one.runs);
    assert_eq!(deleted.removed_bytes, one.bytes);
    let left = std::fs::read_dir(dir.path().join("bk/runs"))
        .unwrap()
        .count();
    assert_eq!(left, two.runs);
    assert!(engine.verify(2).unwrap().is_ok());
    // A second engine on the same directory is refused while this one lives.
    assert!(matches!(
        BackupEngine::open(dir.path().join("bk")).unwrap_err(),
        Error::Locked { .. }
    ));
}

#[test]
fn backup_survives_a_corrupted_live_store_and_damaged_backups_are_reported_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let dbp = dir.path().join("db");
    let db = Db::open(&dbp, opts(Arc::new(RealFs))).unwrap();
    fill(&db, "k", 150);
    let expected = all(&db);
    let runs = db.runs();
    let engine = BackupEngine::open(dir.path().join("bk")).unwrap();
    engine.create(&db).unwrap();
    db.close().unwrap();

    // The live store breaks...
    flip(&runs[0].path, block_body_offset(&runs[0].path));
    assert!(!verify_dir(&dbp, &Options::default()).unwrap().is_ok());
    // ...the backup brings the data back.
    let restored = dir.path().join("restored");
    engine.restore(1, &restored).unwrap();
    let r = Db::open(&restored, Options::default()).unwrap();
    assert_eq!(all(&r), expected);
    assert!(r.verify().unwrap().is_ok());
    drop(r);

    // Damage inside the backup: verify names the file, restore refuses and leaves nothing.
    let copies: Vec<PathBuf> = std::fs::read_dir(dir.path().join("bk/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let victim = &copies[0];
    flip(victim, block_body_offset(victim));
    let report = engine.verify(1).unwrap();
    assert!(
        report.problems.iter().all(|p| &p.file == victim),
        "{:?}",
        report.problems
    );
    assert!(report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::RunCorrupt));
    let target = dir.path().join("restore2");
    let err = engine.restore(1, &target).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // Damaged metadata: a typed error with the file and the offset, never a panic.
    let meta = dir.path().join("bk/BACKUP-000001");
    let len = std::fs::metadata(&meta).unwrap().len();
    flip(&meta, 30);
    let err = engine.list().unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, offset, .. } if file == &meta && *offset == len - 4),
        "{err}"
    );
    let report = engine.verify(1).unwrap();
    assert_eq!(report.problems[0].kind, ProblemKind::Backup);
    // It can still be deleted.
    engine.delete(1).unwrap();
    assert!(engine.list().unwrap().is_empty());
}

#[test]
fn checkpoints_and_restored_backups_keep_the_time_index_and_runs_describe_themselves() {
    let fs = MemFs::new();
    let o = Options {
        history_retention: Some(std::time::Duration::from_secs(3600)),
        ..backup_opts(&fs)
    };
    let db = Db::open("/db", o.clone()).unwrap();
    let v1 = db.put("k", "one").unwrap();
    db.put("other", "x").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    db.put("k", "two").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    db.put("k", "three").unwrap();
    let history = db.history("k").unwrap();
    assert_eq!(history.len(), 3);
    let t2 = history[1].time; // newest first: three, two, one
    let at = |db: &Db| {
        db.snapshot_as_of(t2)
            .unwrap()
            .get("k")
            .unwrap()
            .map(|v| v.to_vec())
    };
    assert_eq!(at(&db), Some(b"two".to_vec()));
    db.checkpoint("/cp").unwrap();
    let engine = BackupEngine::open_with_vfs("/bk", Arc::new(fs.clone())).unwrap();
    engine.create(&db).unwrap();
    engine.restore(1, "/restored").unwrap();
    let runs = db.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].entries, runs[0].min_version), (4, v1));
    assert_eq!(runs[0].max_version, db.latest_version());
    drop(db);
    for dir in ["/cp", "/restored"] {
        let copy = Db::open(dir, o.clone()).unwrap();
        assert_eq!(at(&copy), Some(b"two".to_vec()), "{dir}");
        assert_eq!(copy.history("k").unwrap(), history, "{dir}");
        assert!(copy.verify().unwrap().is_ok());
    }
}

/// Every file of a flat directory with its bytes.
fn files_of(fs: &MemFs, dir: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = Path::new(dir);
    let mut names = fs.list(dir).unwrap();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = fs.read(&dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

#[test]
fn a_read_only_backup_writes_nothing_to_the_store_and_holds_every_version_it_sees() {
    let fs = MemFs::new();
    let vfs: Arc<dyn Vfs> = Arc::new(fs.clone());
    // The writer stays open beside the read-only handle (compaction_threads is 0, and the
    // flush below leaves nothing for the flusher, so it writes nothing while compared).
    let db = Db::open("/db", backup_opts(&fs)).unwrap();
    fill(&db, "a", 150);
    db.flush().unwrap();
    db.put("wal-only", "in the WAL only").unwrap();
    let before = files_of(&fs, "/db");
    let ro = Db::open_read_only("/db", backup_opts(&fs)).unwrap();
    let engine = BackupEngine::open_with_vfs("/backups", vfs.clone()).unwrap();
    let info = engine.create(&ro).unwrap();
    assert_eq!(info.version, db.latest_version());
    assert_eq!(
        info.runs,
        db.runs().len() + 1,
        "the WAL records are one more run"
    );
    assert_eq!(info.copied_runs, info.runs);
    assert_eq!(
        files_of(&fs, "/db"),
        before,
        "the backup wrote into the store"
    );
    assert!(engine.verify(info.id).unwrap().is_ok());
    engine.restore(info.id, "/restored").unwrap();
    let restored = Db::open("/restored", backup_opts(&fs)).unwrap();
    assert_eq!(all(&restored), all(&db));
    assert_eq!(restored.latest_version(), db.latest_version());
    // The writable handle's backup next to it shares the runs but not the WAL's run.
    let writable = engine.create(&db).unwrap();
    assert_eq!(
        writable.copied_runs, 1,
        "only the flush of the WAL record is new"
    );
}
