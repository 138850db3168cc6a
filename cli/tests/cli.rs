//! Every subcommand of `chronokv` run as a process on real stores: results, JSON output,
//! damage found by verify and the dump commands, backup and restore, errors.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &a)).unwrap()
}

#[test]
fn put_get_delete_and_scan_with_ranges_prefixes_limits_and_escapes() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    assert_eq!(ok(d, &["--db", "db", "put", "user:1", "ada"]), "v1\n");
    ok(d, &["--db", "db", "put", "user:2", "grace"]);
    ok(d, &["--db", "db", "put", "user:3", "edsger"]);
    ok(d, &["--db", "db", "put", "team:1", ""]);
    assert_eq!(ok(d, &["--db", "db", "delete", "user:2"]), "v5\n");
    // Binary keys and values go in and come out in the same escapes.
    ok(d, &["--db", "db", "put", "raw\\x00\\xff", "a\\\\b\\x0a"]);
    assert_eq!(
        ok(d, &["--db", "db", "get", "raw\\x00\\xff"]),
        "a\\\\b\\x0a\n"
    );
    assert_eq!(ok(d, &["--db", "db", "get", "user:1"]), "ada\n");
    assert_eq!(ok(d, &["--db", "db", "get", "team:1"]), "\n");
    let err = fails(d, &["--db", "db", "get", "user:2"]);
    assert_eq!(err, "chronokv: key \"user:2\" not found");
    assert_eq!(
        ok(d, &["--db", "db", "scan"]),
        "raw\\x00\\xff\ta\\\\b\\x0a\nteam:1\t\nuser:1\tada\nuser:3\tedsger\n"
    );
    assert_eq!(
        ok(d, &["--db", "db", "scan", "--prefix", "user:"]),
        "user:1\tada\nuser:3\tedsger\n"
    );
    assert_eq!(
        ok(
            d,
            &["--db", "db", "scan", "--from", "team:1", "--to", "user:3"]
        ),
        "team:1\t\nuser:1\tada\n"
    );
    assert_eq!(
        ok(d, &["--db", "db", "scan", "--reverse", "--limit", "2"]),
        "user:3\tedsger\nuser:1\tada\n"
    );
    let v = json(d, &["--db", "db", "scan", "--prefix", "user:"]);
    assert_eq!(v[1]["key"], "user:3");
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(
        json(d, &["--db", "db", "scan", "--prefix", "nothing"]),
        Value::Array(vec![])
    );
    assert_eq!(json(d, &["--db", "db", "get", "user:1"])["value"], "ada");
    assert_eq!(
        json(d, &["--db", "db", "put", "k", "v", "--sync"])["version"],
        7
    );
    // Bad escapes are a usage error naming the problem.
    let out = ckv(d)
        .args(["--db", "db", "get", "bad\\q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad escape"));
}

#[test]
fn load_csv_jsonl_and_generated_keys_and_report_bad_input_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    write(d, "in.csv", "key,value\na,1\nb,\"two, quoted\"\n");
    let out = ok(d, &["--db", "db", "load", "--csv", "in.csv", "--header"]);
    assert_eq!(out, "loaded 2 puts and 0 deletes; latest version v2\n");
    write(
        d,
        "in.jsonl",
        "{\"key\":\"c\",\"value\":\"3\"}\n\n{\"key\":\"a\",\"value\":null}\n",
    );
    ok(d, &["--db", "db", "load", "--jsonl", "in.jsonl"]);
    assert_eq!(ok(d, &["--db", "db", "scan"]), "b\ttwo, quoted\nc\t3\n");
    let v = json(
        d,
        &[
            "--db",
            "db",
            "load",
            "--generate",
            "2500",
            "--value-size",
            "10",
            "--batch",
            "100",
        ],
    );
    assert_eq!(
        (v["puts"].as_u64(), v["version"].as_u64()),
        (Some(2500), Some(2504))
    );
    let scan = ok(
        d,
        &["--db", "db", "scan", "--prefix", "key", "--limit", "3"],
    );
    let lines: Vec<&str> = scan.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[2].starts_with("key000000000002\t"));
    assert_eq!(lines[0].len(), "key000000000000\t".len() + 10);
    assert_ne!(lines[0].split('\t').nth(1), lines[1].split('\t').nth(1));

    write(d, "bad.csv", "a,1\nb\n");
    let err = fails(d, &["--db", "db", "load", "--csv", "bad.csv"]);
    assert!(err.contains("bad.csv"), "{err}");
    write(
        d,
        "bad.jsonl",
        "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"a\",\"value\":7}\n",
    );
    let err = fails(d, &["--db", "db", "load", "--jsonl", "bad.jsonl"]);
    assert!(err.contains("bad.jsonl line 2"), "{err}");
    let err = fails(d, &["--db", "db", "load", "--csv", "missing.csv"]);
    assert!(err.contains("missing.csv"), "{err}");
}

#[test]
fn inspect_json_describes_levels_runs_and_amplification() {
    let d = tempfile::tempdir().unwrap();
    fixed_store(d.path());
    let v = json(d.path(), &["--db", "db", "inspect"]);
    assert_eq!(v["latest_version"], 30);
    // Read-only: the record still in the WAL stays there (a writable open would flush it).
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["levels"][0]["tombstones"], 3);
    assert_eq!(v["live"]["keys"], 19);
    assert_eq!(v["runs"][0]["min_key"], "bin\\x00\\xff");
    assert!(v["space_amplification"].as_f64().unwrap() > 1.0);
    assert!(v["write_amplification"].is_null());
}

#[test]
fn dump_commands_emit_json_and_never_open_the_store() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let run = &files(&d.join("db"), ".arrow")[1];
    let v = json(d, &["dump-run", run.to_str().unwrap(), "--limit", "2"]);
    assert_eq!(v["entries"], 9);
    assert_eq!(v["columns"][3]["name"], "value");
    assert_eq!(v["entries_shown"].as_array().unwrap().len(), 2);
    assert_eq!(v["entries_shown"][0]["version"], 29);
    assert_eq!(v["blocks"][0]["offset"], 512);
    assert_eq!(v["columns"][4]["name"], "time");
    let no_entries = ok(d, &["dump-run", run.to_str().unwrap(), "--no-entries"]);
    assert!(no_entries.contains("block index") && !no_entries.contains("block 0\n"));
    let wal = &files(&d.join("db"), ".wal")[0];
    let v = json(d, &["dump-wal", wal.to_str().unwrap()]);
    assert_eq!(v["records"][0]["entries"][0]["key"], "zebra");
    assert!(v["damage"].is_null());
    let v = json(d, &["--db", "db", "dump-manifest"]);
    assert_eq!(v["edits"].as_array().unwrap().len(), 2);
    assert_eq!(v["tree"]["flushed_version"], 29);
    // Nothing was opened: the WAL record is still there, no new manifest appeared.
    assert_eq!(files(&d.join("db"), ".wal"), vec![wal.clone()]);
    assert_eq!(files(&d.join("db"), "MANIFEST-000006").len(), 1);
    // A WAL file under another name needs its log number.
    std::fs::copy(wal, d.join("copy.bin")).unwrap();
    let err = fails(d, &["dump-wal", "copy.bin"]);
    assert!(err.contains("--log-number"), "{err}");
    let v = json(d, &["dump-wal", "copy.bin", "--log-number", "7"]);
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
}

#[test]
fn verify_finds_a_flipped_byte_in_a_run_with_its_block_offset() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let run = files(&d.join("db"), ".arrow")[0].clone();
    let (block, inside) = first_block(&run);
    flip(&run, inside);
    let out = ckv(d).args(["--db", "db", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "run-corrupt: db/000005.arrow at offset {block}: block checksum mismatch"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("1 problem found"), "{stdout}");
    assert!(out.stderr.is_empty());
    // dump-run prints what precedes the damage, then one error line with the offset.
    let out = ckv(d)
        .args(["dump-run", "db/000005.arrow"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("block index"));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!("chronokv: corrupt run file db/000005.arrow at offset {block}: block 0 checksum mismatch\n")
    );
    // Opening the store and reading the damaged block fails with the same file and offset.
    let err = fails(d, &["--db", "db", "get", "fruit:05"]);
    assert!(
        err.contains("000005.arrow") && err.contains(&format!("offset {block}")),
        "{err}"
    );
}

#[test]
fn verify_finds_a_truncated_wal_and_a_missing_run_and_reports_both() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let wal = files(&d.join("db"), ".wal")[0].clone();
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 4)
        .unwrap();
    let out = ckv(d).args(["--db", "db", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("wal-torn-tail: db/000007.wal at offset 52: frame of 28 bytes extends past the end of the file"),
        "{stdout}"
    );
    let err = fails(d, &["dump-wal", "db/000007.wal"]);
    assert!(err.contains("db/000007.wal at offset 52"), "{err}");

    std::fs::remove_file(d.join("db/000008.arrow")).unwrap();
    let out = ckv(d)
        .args(["--json", "--db", "db", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let kinds: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["missing-run", "wal-torn-tail"], "{v}");
    assert_eq!(v["problems"][0]["file"], "db/000008.arrow");
    // The torn frame starts after the 52-byte segment header.
    assert_eq!(v["problems"][1]["offset"], 52);
    // The store does not open; the error names the missing file.
    let err = fails(d, &["--db", "db", "scan"]);
    assert!(
        err.contains("db/000008.arrow") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn compact_merges_the_runs_and_drops_deleted_keys() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let before = ok(d, &["--db", "db", "scan"]);
    let out = ok(d, &["--db", "db", "compact"]);
    assert!(out.contains("after   L6: 1 run"), "{out}");
    assert!(out.contains("and 3 tombstones"), "{out}");
    assert_eq!(ok(d, &["--db", "db", "scan"]), before);
    let v = json(d, &["--db", "db", "inspect"]);
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["tombstones"], 0);
    assert_eq!(v["runs"][0]["entries"], 19);
    ok(d, &["--db", "db", "compact", "--from", "a", "--to", "b"]);
}

#[test]
fn checkpoint_makes_an_openable_copy_with_hard_links() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let out = ok(d, &["--db", "db", "checkpoint", "cp"]);
    assert_eq!(
        out,
        // The store is opened read-only: its WAL record becomes the third run, written.
        "checkpoint cp: every version up to v30, 3 runs (7782 bytes; 2 hard-linked, 0 copied)\n"
    );
    assert_eq!(
        ok(d, &["--db", "cp", "scan"]),
        ok(d, &["--db", "db", "scan"])
    );
    ok(d, &["--db", "cp", "verify"]);
    let err = fails(d, &["--db", "db", "checkpoint", "cp"]);
    assert!(err.contains("cp is not empty"), "{err}");
}

#[test]
fn backup_then_corrupt_the_live_store_then_restore_gives_the_same_content() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let out = ok(d, &["--db", "db", "backup", "create", "bk"]);
    assert!(
        out.starts_with("backup 1: every version up to v30, 3 runs"),
        "{out}"
    );
    let content1 = ok(d, &["--db", "db", "scan"]);
    // An incremental backup copies only new runs: backup create reads the store read-only,
    // so backup 1 held the WAL record as a run of its own; the writer's next open flushed
    // that record into another run, which is new to the backup directory (2 copied: it,
    // and the WAL records of the load as the read-only open's run).
    ok(d, &["--db", "db", "load", "--generate", "300"]);
    let v = json(d, &["--db", "db", "backup", "create", "bk"]);
    assert_eq!(
        (
            v["id"].as_u64(),
            v["runs"].as_u64(),
            v["copied_runs"].as_u64()
        ),
        (Some(2), Some(4), Some(2))
    );
    let content2 = ok(d, &["--db", "db", "scan"]);
    let list = json(d, &["backup", "list", "bk"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["copied_runs"], 3);
    let table = ok(d, &["backup", "list", "bk"]);
    assert!(table.starts_with("id  created"), "{table}");
    let verified = ok(d, &["backup", "verify", "bk"]);
    assert_eq!(
        verified.matches("OK: no problems found").count(),
        2,
        "{verified}"
    );

    // Break the live store: every run file gets a flipped byte.
    for run in files(&d.join("db"), ".arrow") {
        flip(&run, first_block(&run).1);
    }
    let out = ckv(d).args(["--db", "db", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));

    ok(d, &["backup", "restore", "bk", "1", "r1"]);
    ok(d, &["backup", "restore", "bk", "2", "r2"]);
    assert_eq!(ok(d, &["--db", "r1", "scan"]), content1);
    assert_eq!(ok(d, &["--db", "r2", "scan"]), content2);
    ok(d, &["--db", "r2", "verify"]);
    let err = fails(d, &["backup", "restore", "bk", "2", "r2"]);
    assert!(err.contains("r2 is not empty"), "{err}");
    let err = fails(d, &["backup", "restore", "bk", "9", "r9"]);
    assert!(err.contains("no backup 9"), "{err}");

    // Deleting backup 1 keeps every run backup 2 needs, and removes the copy of the WAL
    // record only backup 1 held.
    let out = ok(d, &["backup", "delete", "bk", "1"]);
    assert!(
        out.starts_with("deleted backup 1; removed 1 run copy no other backup holds ("),
        "{out}"
    );
    ok(d, &["backup", "verify", "bk", "2"]);

    // Damage inside the backup is found and named; restore refuses.
    let copy = files(&d.join("bk/runs"), ".arrow")[0].clone();
    flip(&copy, first_block(&copy).1);
    let out = ckv(d).args(["backup", "verify", "bk"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let name = copy.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        stdout.contains(&format!("run-corrupt: bk/runs/{name}")),
        "{stdout}"
    );
    let err = fails(d, &["backup", "restore", "bk", "2", "r3"]);
    assert!(err.contains(&name) && err.contains("checksum"), "{err}");
    let err = fails(d, &["backup", "list", "nowhere"]);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn export_writes_an_arrow_file_of_the_live_keys_with_versions() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fixed_store(d);
    let out = ok(d, &["--db", "db", "export", "--arrow", "out.arrow"]);
    assert_eq!(
        out,
        "exported 19 live keys as of v30 to out.arrow (columns key, value, version, time, deleted)\n"
    );
    let file = std::fs::File::open(d.join("out.arrow")).unwrap();
    let reader = arrow_ipc::reader::FileReader::try_new(file, None).unwrap();
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, vec!["key", "value", "version", "time", "deleted"]);
    // The store's version and what was exported, in the schema metadata.
    let meta = reader.schema().metadata().clone();
    assert_eq!(meta.get("chronokv.version").map(String::as_str), Some("30"));
    assert_eq!(
        meta.get("chronokv.export").map(String::as_str),
        Some("state")
    );
    let mut rows = Vec::new();
    let mut times = Vec::new();
    for batch in reader {
        use arrow_array::cast::AsArray;
        let b = batch.unwrap();
        let (k, v) = (
            b.column(0).as_binary::<i32>(),
            b.column(1).as_binary::<i32>(),
        );
        let ver = b.column(2).as_primitive::<arrow_array::types::UInt64Type>();
        let t = b
            .column(3)
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            rows.push((k.value(i).to_vec(), v.value(i).to_vec(), ver.value(i)));
            times.push((ver.value(i), t.value(i)));
        }
    }
    // Commit times: real (after 2020), and a later version never has an earlier time.
    times.sort();
    assert!(
        times.iter().all(|(_, t)| *t > 1_577_836_800_000_000),
        "{times:?}"
    );
    assert!(times.windows(2).all(|w| w[0].1 <= w[1].1), "{times:?}");
    assert_eq!(rows.len(), 19);
    assert_eq!(
        rows[0],
        (b"bin\x00\xff".to_vec(), b"back\\slash".to_vec(), 29)
    );
    assert_eq!(rows[1], (b"fruit:00".to_vec(), b"ripe".to_vec(), 21));
    assert_eq!(rows[18], (b"zebra".to_vec(), b"last".to_vec(), 30));
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(!d.join("out.tmp-export").exists());
}

#[test]
fn demo_builds_the_sample_store_and_rebuilds_it_on_every_run() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    for _ in 0..2 {
        let out = ok(d, &["demo"]);
        for step in [
            "== 1. writes",
            "== 3. an atomic batch",
            "== 5. time travel",
            "== 7. verify",
            "== 8. inspect",
        ] {
            assert!(out.contains(step), "{out}");
        }
        // Time travel reads the state before the updates, before and after compaction.
        let before = r#"user:0042 = {"name":"user 42","plan":"free"}"#;
        assert!(
            out.contains(&format!("as of v2000:          {before}")),
            "{out}"
        );
        assert!(
            out.contains(&format!("survives compaction: as of v2000, {before}")),
            "{out}"
        );
        assert!(out.contains("resolves to v2000, user:0005 = {"), "{out}");
        assert!(
            out.contains("change feed since v2001: 204 changes (3 puts, 201 deletes)"),
            "{out}"
        );
        assert!(
            out.contains("get user:0005  = (not found: deleted)"),
            "{out}"
        );
        assert!(out.contains("read 1 run"), "{out}");
    }
    assert_eq!(
        ok(d, &["--db", "chronokv-demo", "get", "stock:widget"]),
        "98\n"
    );
    ok(d, &["--db", "chronokv-demo", "verify"]);
    // The demo's "Try next" time-travel commands work on the store it leaves.
    // The store records its retention: no flag is needed to read its past.
    let at = ["--db", "chronokv-demo"];
    let history = ok(d, &[&at[..], &["history", "user:0042"]].concat());
    assert_eq!(history.lines().count(), 2 + 1, "{history}");
    assert_eq!(
        ok(
            d,
            &[&at[..], &["get", "user:0042", "--at-version", "v2000"]].concat()
        ),
        "{\"name\":\"user 42\",\"plan\":\"free\"}\n"
    );
    write(d, "precious.txt", "not a store");
    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::rename(d.join("precious.txt"), d.join("mine/precious.txt")).unwrap();
    let err = fails(d, &["demo", "mine"]);
    assert!(err.contains("refusing to replace mine"), "{err}");
    assert!(d.join("mine/precious.txt").exists());
}

#[test]
fn errors_are_one_line_and_never_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    assert!(fails(d, &["get", "k"]).contains("--db PATH"));
    assert!(fails(d, &["--db", "nope", "scan"]).contains("nope holds no chronokv store"));
    assert!(fails(d, &["--db", "nope", "verify"]).contains("nope"));
    assert!(fails(d, &["--db", "nope", "dump-manifest"]).contains("holds no chronokv store"));
    assert!(fails(d, &["dump-run", "missing.arrow"]).contains("missing.arrow"));
    write(d, "junk.arrow", "definitely not an arrow file");
    let err = fails(d, &["dump-run", "junk.arrow"]);
    assert!(err.contains("junk.arrow at offset 0"), "{err}");
    write(d, "000001.wal", "garbage that is no frame at all");
    let err = fails(d, &["dump-wal", "000001.wal"]);
    assert!(err.contains("000001.wal at offset 0"), "{err}");
    write(d, "MANIFEST-000001", "junk");
    let err = fails(d, &["dump-manifest", "--file", "MANIFEST-000001"]);
    assert!(err.contains("MANIFEST-000001 at offset 0"), "{err}");
    // A store held by another process.
    fixed_store(d);
    // Reads open it read-only (tests/read_only.rs); writes need the lock.
    let db = chronokv::Db::open(d.join("db"), chronokv::Options::default()).unwrap();
    let err = fails(d, &["--db", "db", "put", "k", "v"]);
    assert!(err.contains("locked"), "{err}");
    let err = fails(d, &["--db", "db", "compact"]);
    assert!(err.contains("locked"), "{err}");
    drop(db);
    // Every subcommand has help.
    for sub in [
        "get",
        "put",
        "delete",
        "scan",
        "inspect",
        "dump-run",
        "dump-wal",
        "dump-manifest",
        "verify",
        "compact",
        "checkpoint",
        "backup",
        "export",
        "load",
        "demo",
    ] {
        ckv(d).args([sub, "--help"]).assert().success();
    }
    ckv(d)
        .args(["backup", "restore", "--help"])
        .assert()
        .success();
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    ok(
        d,
        &[
            "--db",
            "db",
            "load",
            "--generate",
            "20000",
            "--value-size",
            "10",
        ],
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("chronokv"))
        .args(["--db", "db", "scan"])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reads_of_the_past_and_history_with_the_store_history_retention() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--history-retention", "1h", "--db", "db"];
        v.extend_from_slice(args);
        v
    }
    for (i, v) in ["one", "two"].iter().enumerate() {
        ok(d, &with(&["put", "k", v]));
        ok(d, &with(&["put", &format!("other{i}"), v]));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ok(d, &with(&["delete", "k"]));
    ok(d, &with(&["put", "k", "four"]));
    let h = json(d, &with(&["history", "k"]));
    let versions: Vec<u64> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![6, 5, 3, 1]);
    assert!(h[1]["value"].is_null(), "v5 is the delete: {h}");
    let table = ok(d, &with(&["history", "k"]));
    assert!(
        table.contains("(deleted)") && table.starts_with("version  time"),
        "{table}"
    );
    assert_eq!(ok(d, &with(&["get", "k", "--at-version", "3"])), "two\n");
    assert_eq!(ok(d, &with(&["get", "k", "--at-version", "v1"])), "one\n");
    assert!(fails(d, &with(&["get", "k", "--at-version", "5"])).contains("not found"));
    // As of v3's commit time: k = two and other0 (v2); other1 (v4) came later.
    let t3 = h[2]["time"].as_str().unwrap().to_string();
    assert_eq!(
        ok(d, &with(&["scan", "--as-of", &t3])),
        "k\ttwo\nother0\tone\n"
    );
    // Compaction under the same retention keeps the history...
    ok(d, &with(&["compact"]));
    assert_eq!(
        json(d, &with(&["history", "k"])).as_array().unwrap().len(),
        4
    );
    // ...and so does a command without it: the store records its retention.
    ok(d, &["--db", "db", "compact"]);
    assert_eq!(
        json(d, &["--db", "db", "history", "k"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        ok(d, &["--db", "db", "get", "k", "--at-version", "3"]),
        "two\n"
    );
    // Only an explicit, confirmed shrink lets compaction drop it.
    let err = fails(
        d,
        &[
            "--db",
            "db",
            "retention",
            "set",
            "--history-retention",
            "none",
        ],
    );
    assert!(
        err.contains("--shrink") && err.contains("1h -> none"),
        "{err}"
    );
    ok(
        d,
        &[
            "--db",
            "db",
            "retention",
            "set",
            "--history-retention",
            "none",
            "--shrink",
        ],
    );
    ok(d, &["--db", "db", "compact"]);
    assert_eq!(
        json(d, &["--db", "db", "history", "k"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let err = fails(d, &["--db", "db", "get", "k", "--at-version", "3"]);
    assert!(err.contains("no longer retained"), "{err}");
    let err = fails(
        d,
        &["--db", "db", "scan", "--as-of", "1999-01-01T00:00:00Z"],
    );
    assert!(
        err.contains("1999-01-01T00:00:00Z is older than the retained history"),
        "{err}"
    );
}

/// The transcript of issue 14: a plain read and a plain compact between writes made with
/// retention and a read of the past.
#[test]
fn plain_commands_never_shorten_the_recorded_history() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let keep = ["--history-retention", "7d", "--db", "s"];
    assert_eq!(ok(d, &[&keep[..], &["put", "a", "1"]].concat()), "v1\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(d, &[&keep[..], &["put", "a", "2"]].concat());
    let h = json(d, &["--db", "s", "history", "a"]);
    let t2 = h[0]["time"].as_str().unwrap().to_string();
    let t1 = h[1]["time"].as_str().unwrap().to_string();
    assert_eq!(ok(d, &["--db", "s", "get", "a"]), "2\n");
    assert_eq!(ok(d, &["--db", "s", "get", "a", "--as-of", &t1]), "1\n");
    ok(d, &["--db", "s", "compact"]);
    assert_eq!(ok(d, &["--db", "s", "get", "a", "--as-of", &t1]), "1\n");
    assert_eq!(ok(d, &["--db", "s", "get", "a", "--as-of", &t2]), "2\n");
    assert_eq!(
        ok(d, &["--db", "s", "get", "a", "--at-version", "v1"]),
        "1\n"
    );
    assert_eq!(
        json(d, &["--db", "s", "history", "a"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The other forms of --as-of: an offset, Unix seconds (both after v2), a date (before
    // v1: the store then was empty, and its whole history is retained).
    let secs = ok(d, &["--db", "s", "get", "a", "--as-of", "4102444800"]);
    assert_eq!(secs, "2\n");
    let offset = ok(
        d,
        &[
            "--db",
            "s",
            "get",
            "a",
            "--as-of",
            "2099-12-31T23:00:00-05:00",
        ],
    );
    assert_eq!(offset, "2\n");
    let err = fails(d, &["--db", "s", "get", "a", "--as-of", "2000-01-01"]);
    assert!(err.contains("not found"), "{err}");
    let err = usage_error(d, &["--db", "s", "get", "a", "--as-of", "2026-02-31"]);
    assert!(err.contains("\"2026-02-31\" is not a time"), "{err}");
    // --version is the tool's version flag alone; reads of a version use --at-version.
    let err = usage_error(d, &["--db", "s", "get", "a", "--version", "1"]);
    assert!(err.contains("--version"), "{err}");
}

#[test]
fn retention_show_and_set() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    ok(
        d,
        &["--db", "s", "--history-retention", "1h", "put", "a", "1"],
    );
    assert_eq!(
        ok(d, &["--db", "s", "retention", "show"]),
        "history_retention  1h\nhistory_versions   0\noldest_readable    v0\n"
    );
    assert_eq!(
        ok(
            d,
            &[
                "--db",
                "s",
                "retention",
                "set",
                "--history-retention",
                "7d",
                "--history-versions",
                "3"
            ]
        ),
        "history retention changed: window 1h -> 7d, versions per key 0 -> 3\n"
    );
    let v = json(d, &["--db", "s", "retention", "show"]);
    assert_eq!(v["window"], "7d");
    assert_eq!(v["window_micros"], 7 * 86_400 * 1_000_000u64);
    assert_eq!(v["versions_per_key"], 3);
    assert_eq!(
        ok(
            d,
            &["--db", "s", "retention", "set", "--history-versions", "3"]
        ),
        "history retention unchanged: window 7d, 3 versions per key\n"
    );
    let err = fails(
        d,
        &["--db", "s", "retention", "set", "--history-versions", "1"],
    );
    assert!(
        err.contains("versions per key 3 -> 1") && err.contains("--shrink"),
        "{err}"
    );
    let err = fails(d, &["--db", "s", "retention", "set"]);
    assert!(err.contains("name --history-retention"), "{err}");
    // Naming less on an ordinary command is refused, not applied.
    let err = fails(d, &["--db", "s", "--history-retention", "1h", "get", "a"]);
    assert!(
        err.contains("shorter than the store's recorded 7d"),
        "{err}"
    );
    ok(
        d,
        &[
            "--db",
            "s",
            "retention",
            "set",
            "--history-versions",
            "1",
            "--shrink",
        ],
    );
    let v = json(d, &["--db", "s", "retention", "show"]);
    assert_eq!(
        (v["window"].as_str(), v["versions_per_key"].as_u64()),
        (Some("7d"), Some(1))
    );
}
