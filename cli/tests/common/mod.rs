//! Helpers for the CLI tests: run the binary in a directory, build stores, damage files.
#![allow(dead_code)]

use assert_cmd::Command;
use chronokv_runs::{BlockCache, RunReader};
use chronokv_vfs::RealFs;
use std::path::{Path, PathBuf};

/// `chronokv` with `dir` as its working directory (so relative paths keep output free of
/// temporary directory names).
pub fn ckv(dir: &Path) -> Command {
    let mut c = assert_cmd::cargo::cargo_bin_cmd!("chronokv");
    c.current_dir(dir);
    c
}

/// Runs `chronokv args...` in `dir`, requires success, returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = ckv(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "chronokv {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The one line a write that creates a store prints is expected; nothing else.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let other: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("created a new store at "))
        .collect();
    assert!(
        other.is_empty(),
        "chronokv {args:?} wrote to stderr (progress bars must stay quiet when not on a terminal): {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `chronokv args...` in `dir`, requires failure with exit status 1 and exactly one
/// stderr line starting `chronokv: `; returns that line.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = ckv(dir).args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "chronokv {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected: {stderr:?}");
    assert!(lines[0].starts_with("chronokv: "), "{stderr}");
    assert!(!stderr.contains("internal error"), "a panic: {stderr}");
    lines[0].to_string()
}

/// Runs `chronokv args...` in `dir`, requires a command-line error (exit status 2, as
/// clap reports it); returns stderr.
pub fn usage_error(dir: &Path, args: &[&str]) -> String {
    let out = ckv(dir).args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "chronokv {args:?}: {stderr}");
    stderr
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A deterministic store in `dir/db`: two runs (from two recoveries), some tombstones, and
/// one record left in the WAL.
pub fn fixed_store(dir: &Path) {
    let mut a = String::new();
    for i in 0..20 {
        a.push_str(&format!(
            "{{\"key\":\"fruit:{i:02}\",\"value\":\"{}\"}}\n",
            ["apple", "kiwi", "fig", "plum"][i % 4]
        ));
    }
    write(dir, "a.jsonl", &a);
    let mut b = String::new();
    for i in (0..20).step_by(4) {
        b.push_str(&format!(
            "{{\"key\":\"fruit:{i:02}\",\"value\":\"ripe\"}}\n"
        ));
    }
    for i in [1, 2, 3] {
        b.push_str(&format!("{{\"key\":\"fruit:{i:02}\",\"value\":null}}\n"));
    }
    // A binary key and a backslash in the value, in the escapes the CLI reads (JSON-quoted).
    b.push_str(r#"{"key":"bin\\x00\\xff","value":"back\\\\slash"}"#);
    b.push('\n');
    write(dir, "b.jsonl", &b);
    ok(dir, &["--db", "db", "load", "--jsonl", "a.jsonl"]);
    ok(dir, &["--db", "db", "load", "--jsonl", "b.jsonl"]);
    ok(dir, &["--db", "db", "put", "zebra", "last"]);
}

/// Files of `dir` whose names end with `suffix`, sorted.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Flips one byte of a file.
pub fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// The offset of a run's first block message, and a byte inside its body.
pub fn first_block(path: &Path) -> (u64, u64) {
    let r = RunReader::open(&RealFs, path, 0, BlockCache::new(0)).unwrap();
    let b = &r.layout().blocks[0];
    (b.offset, b.offset + u64::from(b.meta_len) + b.body_len / 2)
}

/// Replaces RFC 3339 times (`2024-01-02T03:04:05.123456Z`) with `<TIME>`.
pub fn normalize_times(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let candidate = b.get(i..i + 27);
        let is_time = candidate.is_some_and(|c| {
            c.iter().enumerate().all(|(j, &ch)| match j {
                4 | 7 => ch == b'-',
                10 => ch == b'T',
                13 | 16 => ch == b':',
                19 => ch == b'.',
                26 => ch == b'Z',
                _ => ch.is_ascii_digit(),
            })
        });
        if is_time {
            out.push_str("<TIME>");
            i += 27;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Replaces 8-digit lowercase hex words (block CRCs, which cover the commit-time column) with
/// `<CRC>`.
pub fn normalize_crcs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut first = true;
        for word in line.split(' ') {
            if !first {
                out.push(' ');
            }
            first = false;
            let hex = word.len() == 8
                && word
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            out.push_str(if hex { "<CRC>   " } else { word });
        }
    }
    out
}

/// Compares `actual` with `tests/golden/<name>`; with CHRONOKV_BLESS=1 rewrites it instead.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("CHRONOKV_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with CHRONOKV_BLESS=1 to create)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}
