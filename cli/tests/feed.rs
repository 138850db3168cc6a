//! `chronokv changes` (with `--follow --limit`) and `chronokv restore-to`, run as a process.

mod common;

use common::*;
use serde_json::Value;

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn changes_prints_the_feed_and_follow_stops_at_its_limit() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    ok(
        d,
        &["--history-retention", "1d", "--db", "db", "put", "a", "1"],
    );
    ok(d, &["--db", "db", "put", "b", "2"]);
    ok(d, &["--db", "db", "delete", "a"]);
    let out = ok(d, &["--db", "db", "changes", "--since", "v2"]);
    let rows: Vec<Vec<&str>> = lines(&out)
        .iter()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0][0], rows[0][2], rows[0][3], rows[0][4]),
        ("v2", "put", "b", "2")
    );
    assert_eq!(
        (rows[1][0], rows[1][2], rows[1][3], rows[1][4]),
        ("v3", "delete", "a", "")
    );
    assert_eq!(
        lines(&ok(
            d,
            &["--db", "db", "changes", "--since", "1", "--until", "3"]
        ))
        .len(),
        2
    );
    // JSON lines; --follow delivers what is committed and ends at --limit.
    let out = ok(
        d,
        &[
            "--db", "db", "--json", "changes", "--since", "1", "--follow", "--limit", "3",
        ],
    );
    let v: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let versions: Vec<u64> = v.iter().map(|x| x["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(v[2]["kind"], "delete");
    assert_eq!(v[2]["value"], Value::Null);
    let err = fails(d, &["--db", "db", "changes", "--since", "v9"]);
    assert!(err.contains("not committed") || err.contains("v9"), "{err}");
}

#[test]
fn restore_to_makes_the_present_equal_the_past_and_keeps_history() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    ok(
        d,
        &["--history-retention", "1d", "--db", "db", "put", "a", "1"],
    );
    ok(d, &["--db", "db", "put", "b", "2"]);
    ok(d, &["--db", "db", "put", "a", "3"]);
    ok(d, &["--db", "db", "put", "c", "4"]);
    let out = ok(d, &["--db", "db", "restore-to", "--at-version", "v2"]);
    assert_eq!(
        out,
        "restored to v2: 1 put and 1 delete in 1 commit; latest v6\n"
    );
    assert_eq!(ok(d, &["--db", "db", "scan"]), "a\t1\nb\t2\n");
    assert_eq!(
        ok(d, &["--db", "db", "get", "a", "--at-version", "v4"]),
        "3\n"
    );
    let again = ok(
        d,
        &["--db", "db", "--json", "restore-to", "--at-version", "2"],
    );
    let v: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        (v["commits"].as_u64(), v["version"].as_u64()),
        (Some(0), Some(6))
    );
    let err = fails(d, &["--db", "db", "restore-to"]);
    assert!(err.contains("--at-version"), "{err}");
}
