//! Golden output of `inspect`, `dump-run`, `dump-wal`, `dump-manifest`, `verify` and `scan`
//! on a fixed, deterministic store (see `common::fixed_store`). Commit times, and the block
//! CRCs that cover them, are normalized; paths are relative to the test's working directory.
//! Regenerate with CHRONOKV_BLESS=1 and review the diff.

mod common;

use common::*;

#[test]
fn golden_scan() {
    let dir = tempfile::tempdir().unwrap();
    fixed_store(dir.path());
    golden("scan.txt", &ok(dir.path(), &["--db", "db", "scan"]));
}

#[test]
fn golden_dump_manifest() {
    let dir = tempfile::tempdir().unwrap();
    fixed_store(dir.path());
    golden(
        "dump-manifest.txt",
        &normalize_times(&ok(dir.path(), &["--db", "db", "dump-manifest"])),
    );
}

#[test]
fn golden_dump_run_of_each_run() {
    let dir = tempfile::tempdir().unwrap();
    fixed_store(dir.path());
    let runs = files(&dir.path().join("db"), ".arrow");
    assert_eq!(runs.len(), 2);
    let mut all = String::new();
    for r in &runs {
        let rel = format!("db/{}", r.file_name().unwrap().to_string_lossy());
        all.push_str(&format!("$ chronokv dump-run {rel}\n"));
        all.push_str(&ok(dir.path(), &["dump-run", &rel]));
    }
    golden("dump-run.txt", &normalize_crcs(&normalize_times(&all)));
}

#[test]
fn golden_dump_wal() {
    let dir = tempfile::tempdir().unwrap();
    fixed_store(dir.path());
    let wals = files(&dir.path().join("db"), ".wal");
    assert_eq!(wals.len(), 1);
    let rel = format!("db/{}", wals[0].file_name().unwrap().to_string_lossy());
    golden(
        "dump-wal.txt",
        &normalize_times(&ok(dir.path(), &["dump-wal", &rel])),
    );
}

#[test]
fn golden_verify() {
    let dir = tempfile::tempdir().unwrap();
    fixed_store(dir.path());
    golden("verify.txt", &ok(dir.path(), &["--db", "db", "verify"]));
}

#[test]
fn golden_inspect() {
    let dir = tempfile::tempdir().unwrap();
    fixed_store(dir.path());
    // Opening replays the WAL record into a third run.
    golden("inspect.txt", &ok(dir.path(), &["--db", "db", "inspect"]));
}
