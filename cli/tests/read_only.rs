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
        vec!["changes", "--since", &oldest, "--follow", "--limit", "1"],
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
    for (parent, command) in [
        ("retention", "set"),
        ("backup", "restore"),
        ("backup", "delete"),
    ] {
        let help = ok(d, &[parent, "--help"]);
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("{parent} {command} is not in the help: {help}"));
        assert!(line.contains("Writes"), "{parent} {command}: {line}");
    }
    // The reading ones say they leave the store alone.
    let backup = ok(d, &["backup", "create", "--help"]);
    assert!(backup.contains("the store is opened read-only"), "{backup}");
    let follow = ok(d, &["changes", "--help"]);
    assert!(follow.contains("Writes nothing"), "{follow}");
}

/// Restores the newest backup of `bk` into `target`, verifies it and returns its scan.
fn restore_and_scan(d: &Path, bk: &str, id: &str, target: &str) -> String {
    ok(d, &["backup", "restore", bk, id, target]);
    let verified = ok(d, &["--db", target, "verify"]);
    assert!(verified.contains("OK: no problems found"), "{verified}");
    ok(d, &["--db", target, "scan"])
}

#[test]
fn backup_create_leaves_a_closed_store_unchanged_and_restores_what_it_holds() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let db = d.join("db");
    let before = snapshot(&db);
    assert!(before.keys().any(|n| n.ends_with(".wal")), "{before:?}");
    let out = ok(d, &["--db", "db", "backup", "create", "bk"]);
    // The two runs, and the record in the WAL written into the backup as a third.
    assert!(
        out.starts_with("backup 1: every version up to v30, 3 runs"),
        "{out}"
    );
    assert_unchanged(&before, &db, "backup create");
    // Nothing new: the runs are shared, the WAL's run has the same contents and name.
    let again = ok(d, &["--json", "--db", "db", "backup", "create", "bk"]);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["copied_runs"], 1, "{again}");
    assert_unchanged(&before, &db, "a second backup create");
    let scan = ok(d, &["--db", "db", "scan"]);
    assert_eq!(restore_and_scan(d, "bk", "1", "r1"), scan);
    assert_eq!(restore_and_scan(d, "bk", "2", "r2"), scan);
    assert!(ok(d, &["backup", "verify", "bk"]).contains("OK: no problems found"));
}

#[test]
fn backup_create_of_a_store_another_process_holds_open() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    // This test process is the writer; every chronokv command is another process.
    let db = chronokv::Db::open(
        d.join("db"),
        chronokv::Options {
            create_if_missing: true,
            memtable_size: 16 << 10,
            ..chronokv::Options::default()
        },
    )
    .unwrap();
    for i in 0..400u32 {
        db.put(format!("k{:03}", i % 100), format!("v{i}")).unwrap();
    }
    db.put("k000", "in the WAL only").unwrap();
    // No background work may write while the source is compared.
    db.wait_for_compactions().unwrap();
    let before = snapshot(&d.join("db"));
    let out = ok(d, &["--json", "--db", "db", "backup", "create", "bk"]);
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["version"], db.latest_version().get(), "{info}");
    assert_unchanged(&before, &d.join("db"), "backup create beside a writer");
    let scan = restore_and_scan(d, "bk", "1", "r1");
    assert_eq!(scan.lines().count(), 100);
    assert!(scan.contains("k000\tin the WAL only"), "{scan}");
    assert_eq!(
        ok(d, &["--db", "r1", "get", "k099"]),
        "v399\n",
        "every acknowledged commit is in the backup"
    );
    // The writer goes on; a second backup sees the later commits.
    db.put("k001", "later").unwrap();
    ok(d, &["--db", "db", "backup", "create", "bk"]);
    ok(d, &["backup", "restore", "bk", "2", "r2"]);
    assert_eq!(ok(d, &["--db", "r2", "get", "k001"]), "later\n");
    db.close().unwrap();
}

#[test]
fn changes_follow_reads_a_live_store_through_refreshes() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let db = chronokv::Db::open(
        d.join("db"),
        chronokv::Options {
            create_if_missing: true,
            history_retention: Some(std::time::Duration::from_secs(3600)),
            ..chronokv::Options::default()
        },
    )
    .unwrap();
    db.put("a", "1").unwrap();
    // 1 change, then 14 batches of 2.
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_chronokv"))
        .current_dir(d)
        .args(["--db", "db", "changes", "--since", "1", "--follow"])
        .args(["--limit", "29", "--interval-ms", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    // A follower that misses a commit never reaches its limit: bounded waits.
    let next = || lines.recv_timeout(std::time::Duration::from_secs(60));
    let mut got = vec![next().expect("the follower printed v1")];
    // Every later commit is made after the follower opened: it sees them only through
    // refreshes, each batch of two whole.
    for i in 2..=15u32 {
        let mut b = chronokv::WriteBatch::new();
        b.put(format!("k{i:02}a"), "x");
        b.put(format!("k{i:02}b"), "y");
        db.write(b).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    while got.len() < 29 {
        match next() {
            Ok(line) => got.push(line),
            Err(_) => break,
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while follower.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = follower.kill(); // only if it is still running
    let status = follower.wait().unwrap();
    let versions: Vec<&str> = got.iter().map(|l| l.split('\t').next().unwrap()).collect();
    let expected: Vec<String> = (1..=29).map(|v| format!("v{v}")).collect();
    assert_eq!(versions, expected, "{got:?}");
    assert!(got[28].contains("k15b"), "{got:?}");
    assert!(
        status.success(),
        "the follower ended at its limit: {status:?}"
    );
    db.close().unwrap();
}
