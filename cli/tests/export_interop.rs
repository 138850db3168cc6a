//! Interop: `chronokv export --arrow` files of a state (now, `--at-version`, `--as-of`,
//! `--prefix`), of every retained version (`--history`) and of the change feed
//! (`--changes --since`) are read by pyarrow, polars and DuckDB, row for row
//! (`tests/interop/check_export.py`). Expected rows come from an oracle of the writes.
//!
//! Without the Python modules the test is skipped with a printed reason, unless `CI=true`,
//! where it fails (CI installs them: `.ci/run`).

mod common;

use chronokv::{Db, Options, Version, WriteBatch};
use common::ckv;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

const MODULES: [&str; 3] = ["pyarrow", "polars", "duckdb"];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/check_export.py")
}

/// The modules `python3` cannot import.
fn missing_modules() -> Vec<&'static str> {
    MODULES
        .into_iter()
        .filter(|m| {
            !Command::new("python3")
                .args(["-c", &format!("import {m}")])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .collect()
}

fn available() -> bool {
    let missing = missing_modules();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "python3 cannot import {} (pip install {})",
        missing.join(", "),
        missing.join(" ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the export interop test needs them in CI: {why}");
    }
    eprintln!("SKIPPED export interop test: {why}");
    false
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// One committed entry as the oracle keeps it.
#[derive(Clone)]
struct Op {
    version: u64,
    time: u64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

fn row(op: &Op) -> Value {
    json!({"key": hex(&op.key), "value": op.value.as_deref().map(hex),
        "version": op.version, "time": op.time, "deleted": op.value.is_none()})
}

/// Writes three rounds of puts, deletes and batches; returns every entry with its time.
fn build(path: &Path) -> Vec<Op> {
    let db = Db::open(
        path,
        Options {
            create_if_missing: true,
            history_retention: Some(Duration::from_secs(24 * 3600)),
            memtable_size: 4096,
            ..Options::default()
        },
    )
    .unwrap();
    let mut ops: Vec<(u64, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for round in 0..3u64 {
        for i in 0..40u64 {
            let mut b = WriteBatch::new();
            let user = format!("user:{:02}", (i * 7 + round) % 25).into_bytes();
            let item = format!("item:{:02}", i % 9).into_bytes();
            let value = format!("r{round}-{i}").into_bytes();
            b.put(&user, &value);
            let deleted = (i + round) % 4 == 0;
            if deleted {
                b.delete(&item);
            } else {
                b.put(&item, b"\x00\xffbinary");
            }
            let last = db.write(b).unwrap().0;
            ops.push((last - 1, user, Some(value)));
            ops.push((last, item, (!deleted).then(|| b"\x00\xffbinary".to_vec())));
        }
        db.put(b"\x00raw\xff", format!("round {round}")).unwrap();
        ops.push((
            db.latest_version().0,
            b"\x00raw\xff".to_vec(),
            Some(format!("round {round}").into_bytes()),
        ));
        db.flush().unwrap();
    }
    // Each version's commit time, from the time index (`Snapshot::time`).
    let ops = ops
        .into_iter()
        .map(|(version, key, value)| {
            let t = db.snapshot_at(Version(version)).unwrap().time().unwrap();
            let time = t.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64;
            Op {
                version,
                time,
                key,
                value,
            }
        })
        .collect();
    db.close().unwrap();
    ops
}

/// The live state after every entry `keep` accepts: one row per live key, key order.
fn state(ops: &[Op], keep: impl Fn(&Op) -> bool) -> Vec<Value> {
    let mut latest: BTreeMap<&[u8], &Op> = BTreeMap::new();
    for op in ops.iter().filter(|o| keep(o)) {
        latest.insert(&op.key, op);
    }
    latest
        .values()
        .filter(|o| o.value.is_some())
        .map(|o| row(o))
        .collect()
}

fn check(dir: &Path, name: &str, args: &[&str], version: u64, kind: &str, rows: Vec<Value>) {
    let file = format!("{name}.arrow");
    let mut all = vec!["--db", "store", "export", "--arrow", &file];
    all.extend_from_slice(args);
    let out = ckv(dir).args(&all).output().unwrap();
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!rows.is_empty(), "{name}: a check of no rows proves little");
    let expected = dir.join(format!("{name}.json"));
    let doc = json!({"version": version, "export": kind, "rows": rows});
    std::fs::write(&expected, doc.to_string()).unwrap();
    let out = Command::new("python3")
        .arg(script())
        .arg(dir.join(&file))
        .arg(&expected)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: check_export.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exports_are_read_by_pyarrow_polars_and_duckdb() {
    if !available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let ops = build(&dir.join("store"));
    let latest = ops.iter().map(|o| o.version).max().unwrap();
    check(dir, "now", &[], latest, "state", state(&ops, |_| true));

    let at = ops[ops.len() / 2].version;
    let v = at.to_string();
    check(
        dir,
        "at-version",
        &["--at-version", &v],
        at,
        "state",
        state(&ops, |o| o.version <= at),
    );

    // As of a commit's time: every commit at or before it (others may share the millisecond).
    let t = ops[ops.len() / 3].time;
    let as_of = jiff::Timestamp::from_microsecond(t as i64)
        .unwrap()
        .to_string();
    let upto = ops
        .iter()
        .filter(|o| o.time <= t)
        .map(|o| o.version)
        .max()
        .unwrap();
    check(
        dir,
        "as-of",
        &["--as-of", &as_of],
        upto,
        "state",
        state(&ops, |o| o.time <= t),
    );

    let users = |o: &Op| o.key.starts_with(b"user:");
    let rows = state(&ops, |_| true)
        .into_iter()
        .filter(|r| r["key"].as_str().unwrap().starts_with(&hex(b"user:")))
        .collect();
    check(dir, "prefix", &["--prefix", "user:"], latest, "state", rows);

    // Every version of every key: key order, newest first, deletes included.
    let mut history: Vec<&Op> = ops.iter().collect();
    history.sort_by(|a, b| a.key.cmp(&b.key).then(b.version.cmp(&a.version)));
    check(
        dir,
        "history",
        &["--history"],
        latest,
        "history",
        history.into_iter().map(row).collect(),
    );
    let mut items: Vec<&Op> = ops.iter().filter(|o| users(o)).collect();
    items.sort_by(|a, b| a.key.cmp(&b.key).then(b.version.cmp(&a.version)));
    check(
        dir,
        "history-prefix",
        &["--history", "--prefix", "user:"],
        latest,
        "history",
        items.into_iter().map(row).collect(),
    );

    let since = ops[ops.len() / 4].version;
    let s = format!("v{since}");
    let mut changes: Vec<&Op> = ops.iter().filter(|o| o.version >= since).collect();
    changes.sort_by_key(|o| o.version);
    check(
        dir,
        "changes",
        &["--changes", "--since", &s],
        latest,
        "changes",
        changes.into_iter().map(row).collect(),
    );
}
