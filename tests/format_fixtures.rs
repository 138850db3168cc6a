//! Committed files made by earlier code still read back: the run files of
//! `tests/fixtures/v1-store` (written before manifest format 2) byte for byte, and the
//! store `tests/fixtures/v1-wal-store`, whose WAL segment is in format v1. Their bloom filters are the
//! serialized form of the `bloomfilter` crate with its hashing (docs/format/run.md), which is
//! why the workspace pins that crate exactly: if a new release hashed differently, every key
//! of these runs would be reported missing from its filter here, and point reads of old
//! stores would miss.

use chronokv::vfs::RealFs;
use chronokv_runs::{BlockCache, RunReader};
use std::path::Path;

#[test]
fn the_committed_runs_pass_verify_with_every_key_in_its_bloom_filter() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store");
    let mut runs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "arrow") {
            continue;
        }
        let id: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let reader = RunReader::open(&RealFs, &path, id, BlockCache::new(1 << 20)).unwrap();
        assert!(reader.meta().entry_count > 0, "{}", path.display());
        let problems = reader.verify();
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
        runs += 1;
    }
    assert_eq!(runs, 3, "the fixture holds three runs");
}

/// The first bytes of a WAL segment in format v2 (docs/format/wal.md).
const WAL_V2_MAGIC: [u8; 8] = [0x89, b'C', b'K', b'V', b'W', b'A', b'L', 0xff];

fn wal_segments(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn check_v1_store_contents(db: &chronokv::Db, others: usize) {
    let get = |k: &str| db.get(k).unwrap().map(|v| v.to_vec());
    assert_eq!(get("flushed-a"), None, "deleted in the WAL after its flush");
    assert_eq!(get("flushed-b").as_deref(), Some(&b"in a run too"[..]));
    assert_eq!(get("key-00").as_deref(), Some(&b"overwritten"[..]));
    assert_eq!(get("key-03"), None, "deleted by the batch");
    for i in [1, 2, 4, 19] {
        let want = format!("value-{i}");
        assert_eq!(get(&format!("key-{i:02}")), Some(want.into_bytes()));
    }
    assert_eq!(get("batch-1").as_deref(), Some(&b"one"[..]));
    assert_eq!(
        get("batch-2").as_deref(),
        Some(&b""[..]),
        "an empty value, not a delete"
    );
    assert_eq!(get("last").as_deref(), Some(&b"synced by close"[..]));
    assert_eq!(db.scan::<&str, _>(..).count(), 1 + 19 + 2 + 1 + others);
}

/// `tests/fixtures/v1-wal-store` was written by chronokv before WAL format v2 (`34f7108`) (the
/// generator's writes are in `check_v1_store_contents`): two puts flushed into a run, then
/// 24 commits (puts, a delete, a three-entry batch) only in its WAL segment, in format v1.
/// The upgraded engine replays that segment and writes its own segments in v2.
#[test]
fn a_store_whose_wal_is_format_v1_replays_after_the_upgrade() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-wal-store");
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let before = wal_segments(tmp.path());
    assert_eq!(before.len(), 1, "{before:?}");
    let (_, v1) = &before[0];
    assert!(
        v1.len() > 1000 && !v1.starts_with(&WAL_V2_MAGIC[..1]),
        "a v1 segment"
    );

    let db = chronokv::Db::open(tmp.path(), chronokv::Options::default()).unwrap();
    check_v1_store_contents(&db, 0);
    db.put("after", "the upgrade").unwrap();
    db.close().unwrap();
    let after = wal_segments(tmp.path());
    assert!(
        after.iter().all(|(n, _)| *n != before[0].0),
        "the v1 segment was replayed"
    );
    let written: Vec<_> = after.iter().filter(|(_, b)| !b.is_empty()).collect();
    assert!(!written.is_empty());
    for (name, bytes) in written {
        assert!(bytes.starts_with(&WAL_V2_MAGIC), "{name} is not v2");
    }

    let db = chronokv::Db::open(tmp.path(), chronokv::Options::default()).unwrap();
    check_v1_store_contents(&db, 1);
    assert_eq!(
        db.get("after").unwrap().as_deref(),
        Some(&b"the upgrade"[..])
    );
}
