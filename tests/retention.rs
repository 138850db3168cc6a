//! The history contract lives in the store: an open that does not name retention keeps
//! what the store's owner asked for, through writes, flushes, compactions, checkpoints,
//! backups and restarts; shrinking takes an explicit call; old-format stores open.

mod common;

use chronokv::backup::BackupEngine;
use chronokv::vfs::{MemFs, Vfs};
use chronokv::{Db, Error, Options, Retention, Version};
use common::{aggressive_leveled, compacting_options};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const HOUR: Duration = Duration::from_secs(3600);

/// Options that name no retention at all (as `Options::default()`), on `fs`, with
/// compaction that runs constantly.
fn plain(fs: &MemFs) -> Options {
    compacting_options(fs, 1024, aggressive_leveled())
}

fn with(fs: &MemFs, window: Option<Duration>, versions: Option<usize>) -> Options {
    Options {
        history_retention: window,
        history_versions_per_key: versions,
        ..plain(fs)
    }
}

fn open(opts: Options) -> chronokv::Result<Db> {
    Db::open(Path::new("/db"), opts)
}

/// Writes `k` = "v1", then many other keys, waiting a few milliseconds between so commit
/// times differ; returns v1's version and a time between v1 and the next write of `k`.
fn write_v1_then_v2(db: &Db) -> (Version, SystemTime) {
    let v1 = db.put("k", "v1").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let between = SystemTime::now();
    std::thread::sleep(Duration::from_millis(5));
    db.put("k", "v2").unwrap();
    (v1, between)
}

/// Enough writes, flushes and compactions that every old version not kept is dropped.
fn churn_and_compact(db: &Db) {
    for i in 0..400u32 {
        db.put(format!("filler{i:04}"), vec![b'x'; 64]).unwrap();
        if i % 7 == 0 {
            db.put("k", format!("later{i}")).unwrap();
        }
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
}

fn value_at(db: &Db, v: Version) -> chronokv::Result<Option<Vec<u8>>> {
    Ok(db.snapshot_at(v)?.get("k")?.map(|b| b.to_vec()))
}

#[test]
fn an_open_without_retention_keeps_the_stored_history() {
    let fs = MemFs::new();
    let db = open(with(&fs, Some(HOUR), None)).unwrap();
    let (v1, between) = write_v1_then_v2(&db);
    db.close().unwrap();

    // A second program (or a debug run) that names no retention.
    let db = open(plain(&fs)).unwrap();
    assert_eq!(db.history_retention(), Retention::new(Some(HOUR), 0));
    churn_and_compact(&db);
    assert_eq!(value_at(&db, v1).unwrap().as_deref(), Some(&b"v1"[..]));
    let as_of = db.snapshot_as_of(between).unwrap();
    assert_eq!(as_of.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    let history = db.history("k").unwrap();
    assert!(history.iter().any(|e| e.version == v1), "{history:?}");
    drop(as_of);
    db.close().unwrap();

    // And once more after a restart, with the compactions' horizons recorded.
    let db = open(default_on(&fs)).unwrap();
    assert_eq!(value_at(&db, v1).unwrap().as_deref(), Some(&b"v1"[..]));
}

/// `Options::default()` on `fs`: nothing else named.
fn default_on(fs: &MemFs) -> Options {
    Options {
        vfs: Arc::new(fs.clone()),
        ..Options::default()
    }
}

#[test]
fn shrinking_on_open_is_refused_and_changes_nothing() {
    let fs = MemFs::new();
    open(with(&fs, Some(HOUR), Some(3)))
        .unwrap()
        .close()
        .unwrap();
    let err = open(with(&fs, Some(Duration::from_secs(60)), None)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidArgument(_)), "{msg}");
    assert!(msg.contains("1m") && msg.contains("1h"), "{msg}");
    assert!(msg.contains("set_history_retention"), "{msg}");
    let err = open(with(&fs, Some(Duration::ZERO), None)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let err = open(with(&fs, None, Some(2))).unwrap_err();
    assert!(
        err.to_string().contains("history_versions_per_key 2"),
        "{err}"
    );
    let db = open(plain(&fs)).unwrap();
    assert_eq!(db.history_retention(), Retention::new(Some(HOUR), 3));
}

#[test]
fn growth_on_open_is_recorded() {
    let fs = MemFs::new();
    open(with(&fs, Some(HOUR), None)).unwrap().close().unwrap();
    let db = open(with(&fs, Some(2 * HOUR), Some(4))).unwrap();
    assert_eq!(db.history_retention(), Retention::new(Some(2 * HOUR), 4));
    db.close().unwrap();
    let db = open(plain(&fs)).unwrap();
    assert_eq!(db.history_retention(), Retention::new(Some(2 * HOUR), 4));
    // Naming the recorded values again, or only one of them, is not a change.
    db.close().unwrap();
    let db = open(with(&fs, Some(2 * HOUR), None)).unwrap();
    assert_eq!(db.history_retention(), Retention::new(Some(2 * HOUR), 4));
}

#[test]
fn an_explicit_shrink_is_durable_and_lets_compaction_drop_the_past() {
    let fs = MemFs::new();
    let db = open(with(&fs, Some(HOUR), None)).unwrap();
    let (v1, _) = write_v1_then_v2(&db);
    let before = db.set_history_retention(Retention::default()).unwrap();
    assert_eq!(before, Retention::new(Some(HOUR), 0));
    assert_eq!(db.history_retention(), Retention::default());
    db.close().unwrap();

    let db = open(plain(&fs)).unwrap();
    assert_eq!(
        db.history_retention(),
        Retention::default(),
        "survives reopen"
    );
    churn_and_compact(&db);
    assert!(matches!(
        value_at(&db, v1),
        Err(Error::VersionNotRetained { requested, .. }) if requested == v1
    ));
    let history = db.history("k").unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    // Growing it again keeps more from now on; it does not bring v1 back.
    db.set_history_retention(Retention::new(Some(HOUR), 1))
        .unwrap();
    assert!(value_at(&db, v1).is_err());
}

#[test]
fn a_time_not_retained_names_both_times_in_rfc3339() {
    let fs = MemFs::new();
    let db = open(with(&fs, Some(Duration::from_millis(50)), None)).unwrap();
    db.put("k", "old").unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let v = db.put("k", "new").unwrap();
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let err = db.snapshot_as_of(long_ago).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("2023-11-14T22:13:20Z is older"), "{msg}");
    let Error::TimeNotRetained {
        oldest,
        oldest_time,
        ..
    } = err
    else {
        panic!("{msg}")
    };
    assert!(oldest <= v);
    let oldest_time = oldest_time.expect("the index covers the oldest readable version");
    assert!(msg.contains("committed at 20"), "{msg}");
    assert!(db.snapshot_as_of(oldest_time).is_ok(), "{msg}");
}

#[test]
fn checkpoints_backups_and_restores_keep_the_contract() {
    let fs = MemFs::new();
    let vfs: Arc<dyn Vfs> = Arc::new(fs.clone());
    let contract = Retention::new(Some(HOUR), 2);
    let db = open(with(&fs, contract.window, Some(2))).unwrap();
    let (v1, _) = write_v1_then_v2(&db);
    db.checkpoint("/checkpoint").unwrap();
    let backups = BackupEngine::open_with_vfs("/backups", vfs.clone()).unwrap();
    let info = backups.create(&db).unwrap();
    db.close().unwrap();
    backups.restore(info.id, "/restored").unwrap();
    for dir in ["/checkpoint", "/restored"] {
        let copy = Db::open(dir, plain(&fs)).unwrap();
        assert_eq!(copy.history_retention(), contract, "{dir}");
        churn_and_compact(&copy);
        assert_eq!(
            value_at(&copy, v1).unwrap().as_deref(),
            Some(&b"v1"[..]),
            "{dir}"
        );
    }
}

/// Copies the committed format-1 store (`tests/fixtures/v1-store`, written by the code
/// before the contract was stored) into `fs` at `/db`.
fn load_v1_fixture(fs: &MemFs) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store");
    fs.create_dir_all(Path::new("/db")).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        let mut f = fs
            .create(&Path::new("/db").join(entry.file_name()))
            .unwrap();
        f.write_all(&bytes).unwrap();
        f.sync().unwrap();
    }
}

#[test]
fn a_format_1_store_opens_reads_and_records_the_contract() {
    let fs = MemFs::new();
    load_v1_fixture(&fs);
    let manifest = |fs: &MemFs| {
        let current = fs.read(Path::new("/db/CURRENT")).unwrap();
        let name = String::from_utf8(current).unwrap();
        fs.read(&Path::new("/db").join(name.trim_end())).unwrap()
    };
    assert_eq!(&manifest(&fs)[..8], b"CKVMANI1");
    let ten_years = Duration::from_secs(3650 * 86_400);
    let db = open(with(&fs, Some(ten_years), Some(2))).unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"x"[..]));
    let history = db.history("a").unwrap();
    let values: Vec<_> = history.iter().map(|e| e.value.clone().unwrap()).collect();
    assert_eq!(values, vec!["2", "1"]);
    let snap = db.snapshot_at(Version(1)).unwrap();
    assert_eq!(snap.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("b").unwrap(), None);
    drop(snap);
    db.close().unwrap();
    // The open rewrote the manifest in format 2 with the contract it was given.
    assert_eq!(&manifest(&fs)[..8], b"CKVMANI2");
    let db = open(plain(&fs)).unwrap();
    assert_eq!(db.history_retention(), Retention::new(Some(ten_years), 2));
    assert_eq!(value_at_key(&db, Version(1), "a"), Some(b"1".to_vec()));
}

fn value_at_key(db: &Db, v: Version, key: &str) -> Option<Vec<u8>> {
    db.snapshot_at(v)
        .unwrap()
        .get(key)
        .unwrap()
        .map(|b| b.to_vec())
}

#[test]
fn a_format_1_store_opened_without_retention_records_none() {
    // A format-1 manifest holds no contract; like a new store, the first open records what
    // it names (documented in docs/time-travel.md).
    let fs = MemFs::new();
    load_v1_fixture(&fs);
    let db = open(plain(&fs)).unwrap();
    assert_eq!(db.history_retention(), Retention::default());
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn a_changed_contract_survives_manifest_rotations() {
    // With a 1 KiB manifest limit every few flushes start a new manifest from a snapshot
    // of the tree: the contract set by a delta edit must be in each snapshot.
    let fs = MemFs::new();
    let small = |o: Options| Options {
        max_manifest_bytes: 1 << 10,
        ..o
    };
    let db = open(small(with(&fs, Some(HOUR), None))).unwrap();
    let set = Retention::new(Some(2 * HOUR), 5);
    db.set_history_retention(set).unwrap();
    let first = String::from_utf8(fs.read(Path::new("/db/CURRENT")).unwrap()).unwrap();
    for i in 0..60u32 {
        db.put(format!("k{i}"), "v").unwrap();
        db.flush().unwrap();
    }
    let last = String::from_utf8(fs.read(Path::new("/db/CURRENT")).unwrap()).unwrap();
    assert_ne!(first, last, "the manifest rotated");
    db.close().unwrap();
    let db = open(small(plain(&fs))).unwrap();
    assert_eq!(db.history_retention(), set);
}
