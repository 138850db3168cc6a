//! Interop: pyarrow must read a run as an Arrow IPC file and as a stream after 8 bytes.
//!
//! Runs `python3 tests/interop/check_run.py`. Without pyarrow the test is skipped with a
//! notice, unless the `CI` environment variable is set, in which case it fails.

use chronokv_runs::{Compression, RunWriter, RunWriterOptions};
use chronokv_snapshot::{Kind, Version};
use chronokv_vfs::RealFs;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/check_run.py")
}

fn pyarrow_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("pyarrow is required in CI (pip install pyarrow)");
        }
        eprintln!("SKIPPED pyarrow interop test: `import pyarrow` failed (pip install pyarrow)");
    }
    ok
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

type Row = (Vec<u8>, u64, Kind, Vec<u8>);

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for i in 0..500u64 {
        let key = format!("key-{i:04}").into_bytes();
        rows.push((
            key.clone(),
            1000 + i,
            Kind::Put,
            format!("value {i}").repeat((i % 7) as usize).into_bytes(),
        ));
        if i % 10 == 0 {
            rows.push((key.clone(), 999, Kind::Delete, Vec::new()));
        }
        if i % 50 == 0 {
            rows.push((key, 5, Kind::Put, Vec::new()));
        }
    }
    rows.push((
        b"\x00binary\xffkey".to_vec(),
        1,
        Kind::Put,
        vec![0, 1, 2, 255],
    ));
    rows.push((b"zzz".to_vec(), 1, Kind::Put, vec![b'x'; 70_000]));
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    rows
}

fn check(dir: &Path, name: &str, compression: Compression) {
    let path = dir.join(name);
    let rows = rows();
    let opts = RunWriterOptions {
        block_target_bytes: 2048,
        compression,
        ..Default::default()
    };
    let mut w = RunWriter::create(Arc::new(RealFs), &path, opts).unwrap();
    for (k, v, kind, val) in &rows {
        w.add(k, Version(*v), *v * 1000, *kind, val).unwrap();
    }
    let meta = w.finish().unwrap();
    assert!(meta.block_count > 3);
    let mut json = format!("{{\"blocks\": {}, \"rows\": [", meta.block_count);
    for (i, (k, v, kind, val)) in rows.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"key\":\"{}\",\"version\":{v},\"kind\":{},\"value\":\"{}\",\"time\":{}}}",
            hex(k),
            kind.as_u8(),
            hex(val),
            v * 1000
        );
    }
    json.push_str("]}");
    let expected = dir.join(format!("{name}.json"));
    std::fs::write(&expected, json).unwrap();
    let out = Command::new("python3")
        .arg(script())
        .arg(&path)
        .arg(&expected)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check_run.py failed on {name}:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{name}: {}", String::from_utf8_lossy(&out.stdout).trim());
}

#[test]
fn pyarrow_reads_runs_as_file_and_stream() {
    if !pyarrow_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), "plain.run", Compression::None);
    check(dir.path(), "zstd.run", Compression::Zstd { level: 3 });
}
