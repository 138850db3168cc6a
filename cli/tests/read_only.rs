//! The reading commands open the store read-only: they leave a closed store byte-for-byte
//! unchanged and work while another process holds it open. Writes that create a store say
//! so.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Every file of the store directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn assert_unchanged(before: &BTreeMap<String, Vec<u8>>, dir: &Path, what: &str) {
    let after = snapshot(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{what} changed the file names"
    );
    for (name, bytes) in before {
        assert!(after[name] == *bytes, "{what} changed {name}");
    }
}

#[test]
fn read_commands_leave_a_closed_store_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    // A history window, so that the change feed has something to read.
    ok(
        d,
        &[
            "--history-retention",
            "1h",
            "--db",
            "db",
            "put",
            "extra",
            "1",
        ],
    );
    let db = d.join("db");
    let before = snapshot(&db);
    assert!(before.keys().any(|n| n.ends_with(".wal")), "{before:?}");
    let wal = files(&db, ".wal")[0].clone();
    let run = files(&db, ".arrow")[0].clone();
    let shown = ok(d, &["--json", "--db", "db", "retention", "show"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let oldest = shown["oldest_readable_version"]
        .as_u64()
        .unwrap()
        .to_string();
    let changes = ok(d, &["--db", "db", "changes", "--since", &oldest]);
    assert!(changes.contains("extra"), "{changes}");
    let commands: Vec<Vec<&str>> = vec![
        vec!["get", "zebra"],
        vec!["scan"],
        vec!["scan", "--prefix", "fruit:1"],
        vec!["history", "zebra"],
        vec!["changes", "--since", &oldest],
        vec!["inspect"],
        vec!["verify"],
        vec!["retention", "show"],
        vec!["dump-manifest"],
        vec!["export", "--arrow", "out.arrow"],
        vec!["checkpoint", "cp"],
    ];
    for args in &commands {
        let mut full = vec!["--db", "db"];
        full.extend_from_slice(args);
        ok(d, &full);
        assert_unchanged(&before, &db, &format!("{args:?}"));
    }
    assert_eq!(ok(d, &["--db", "db", "get", "zebra"]), "last\n");
    ok(d, &["dump-wal", wal.to_str().unwrap()]);
    ok(d, &["dump-run", run.to_str().unwrap()]);
    assert_unchanged(&before, &db, "the dump commands");
    // The checkpoint, made read-only, holds what the store holds.
    assert_eq!(
        ok(d, &["--db", "cp", "scan"]),
        ok(d, &["--db", "db", "scan"])
    );
}

#[test]
fn reads_work_while_another_process_holds_the_store_open() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    // This test process is the writer; every chronokv command is another process.
    let db = chronokv::Db::open(
        d.join("db"),
        chronokv::Options {
            create_if_missing: true,
            ..chronokv::Options::default()
        },
    )
    .unwrap();
    for i in 0..50u32 {
        db.put(format!("k{i:02}"), format!("v{i}")).unwrap();
    }
    db.flush().unwrap();
    db.put("k00", "in the WAL only").unwrap();
    assert_eq!(
        ok(d, &["--db", "db", "get", "k00"]),
        "in the WAL only\n",
        "every acknowledged commit had reached the WAL file"
    );
    assert_eq!(ok(d, &["--db", "db", "scan"]).lines().count(), 50);
    let verified = ok(d, &["--db", "db", "verify"]);
    assert!(verified.contains("OK: no problems found"), "{verified}");
    let inspected = ok(d, &["--db", "db", "inspect"]);
    assert!(inspected.contains("latest      v51"), "{inspected}");
    ok(d, &["--db", "db", "checkpoint", "cp"]);
    assert_eq!(ok(d, &["--db", "cp", "get", "k00"]), "in the WAL only\n");
    // Writes still need the lock.
    let refused = fails(d, &["--db", "db", "put", "a", "b"]);
    assert!(refused.contains("locked"), "{refused}");
    // A later read sees a later commit.
    db.put("k00", "newer").unwrap();
    assert_eq!(ok(d, &["--db", "db", "get", "k00"]), "newer\n");
    db.close().unwrap();
}

#[test]
fn a_write_that_creates_a_store_says_so_and_reads_create_nothing() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    for read in [
        &["get", "k"][..],
        &["scan"],
        &["inspect"],
        &["history", "k"],
        &["verify"],
    ] {
        let mut args = vec!["--db", "typo"];
        args.extend_from_slice(read);
        fails(d, &args);
        assert!(!d.join("typo").exists(), "{read:?} created the path");
    }
    let out = ckv(d)
        .args(["--db", "typo", "put", "k", "v"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "created a new store at typo\n"
    );
    let again = ckv(d)
        .args(["--db", "typo", "put", "k", "w"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(again.stderr.is_empty(), "only a new store is announced");
}

#[test]
fn the_help_of_every_writing_command_says_it_writes() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let help = ok(d, &["--help"]);
    for command in ["put", "delete", "compact", "restore-to", "load", "demo"] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("{command} is not in the help: {help}"));
        assert!(line.contains("Writes"), "{command}: {line}");
    }
    let long = ok(d, &["put", "--help"]);
    assert!(long.contains("creates it if missing"), "{long}");
    assert!(ok(d, &["verify", "--help"]).contains("Writes nothing"));
}
