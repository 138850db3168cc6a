//! The bodies of the fuzz targets (RELIABILITY.md, G5). `fuzz/` (cargo-fuzz, libFuzzer)
//! calls these, and so does the stable test `tests/fuzz_corpus.rs`, which replays the
//! committed corpus through the same code on every `cargo test`.
//!
//! Each function takes arbitrary bytes and must not panic, hang or allocate without bound;
//! errors are the expected answer to damaged input. Where a decoder promises more than "no
//! panic", the function checks it and panics if the promise breaks (so the fuzzer reports
//! it): records returned by the WAL reader have valid entries; a decoded version edit
//! re-encodes to an edit that decodes to itself; a run that `verify` finds healthy iterates
//! to exactly its entries, in internal order, from both ends; decoded backup metadata
//! re-encodes to the same bytes.
//!
//! Fuzz builds (`cfg(fuzzing)`) can bypass checksum comparisons
//! (`chronokv_vfs::fuzzing::skip_checksums`); the fuzz targets choose, these functions do
//! not. On stable the checksums are always checked.

use arbitrary::{Arbitrary, Unstructured};
use chronokv::vfs::{MemFs, Vfs};
use chronokv::{Db, Durability, Options, RecoveryMode, Version, WriteBatch};
use chronokv_engine::backup::BackupEngine;
use chronokv_engine::internals::{read_manifest, BackupMeta, VersionEdit};
use chronokv_runs::{BlockCache, RunReader};
use chronokv_snapshot::{internal_cmp, Bytes};
use chronokv_wal::read_segment;
use std::cmp::Ordering;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

/// The fuzz targets, by the name of their corpus directory (`fuzz/corpus/<name>`).
pub const TARGETS: [&str; 6] = [
    "wal_segment",
    "wal_segment_crc",
    "manifest",
    "run_file",
    "directory",
    "backup_meta",
];

/// Runs the target `name` on `data`. Panics on an unknown name.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "wal_segment" | "wal_segment_crc" => wal_segment(data),
        "manifest" => manifest(data),
        "run_file" => run_file(data),
        "directory" => directory(data),
        "backup_meta" => backup_meta(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// A file system holding `data` as `/db/<name>`.
fn fs_with(name: &str, data: &[u8]) -> (MemFs, std::path::PathBuf) {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    fs.create_dir_all(dir).expect("MemFs creates directories");
    let path = dir.join(name);
    let mut f = fs.create(&path).expect("MemFs creates files");
    f.write_all(data).expect("MemFs writes");
    (fs, path)
}

/// `data` as a WAL segment, read in every recovery mode, as the newest segment and not;
/// every entry of every record returned is iterated.
pub fn wal_segment(data: &[u8]) {
    // A segment names its log number (v2: in the header at offset 16, after the magic;
    // v1: in every frame, the first at offset 8), and v2 frames' checksums cover it; take
    // it from there so inputs derived from real segments of any number reach the decoders.
    const V2_MAGIC: [u8; 8] = [0x89, b'C', b'K', b'V', b'W', b'A', b'L', 0xff];
    let at = if data.starts_with(&V2_MAGIC) { 16 } else { 8 };
    let log_number = data
        .get(at..at + 8)
        .map_or(1, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let (fs, path) = fs_with(&chronokv_wal::segment_file_name(log_number), data);
    let modes = [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::PointInTime,
        RecoveryMode::AbsoluteConsistency,
    ];
    for mode in modes {
        for newest in [true, false] {
            let Ok(contents) = read_segment(&fs, &path, log_number, newest, mode) else {
                continue;
            };
            if let Some(at) = contents.preallocated {
                // Preallocated space: only the newest segment's, never under
                // AbsoluteConsistency, never with damage, and nothing but zeros.
                assert!(newest && mode != RecoveryMode::AbsoluteConsistency);
                assert!(contents.damage.is_none(), "zeros and damage both reported");
                let tail = usize::try_from(at).ok().and_then(|at| data.get(at..));
                assert!(tail.is_some_and(|t| !t.is_empty() && t.iter().all(|&b| b == 0)));
            }
            let mut next: Option<Version> = None;
            for rec in &contents.records {
                assert!(
                    next.is_none_or(|n| n == rec.first_version),
                    "records returned with non-contiguous versions"
                );
                next = Some(rec.next_version());
                let _ = rec.last_version();
                let mut n = 0u32;
                for entry in rec.entries() {
                    let (_kind, key, value) = entry.expect("a returned record has valid entries");
                    std::hint::black_box((key.len(), value.len()));
                    n += 1;
                }
                assert_eq!(n, rec.count, "a record yields exactly `count` entries");
            }
        }
    }
}

/// `data` as a manifest file, read into a tree state; and `data` as one version edit, which
/// if it decodes must round-trip through its encoding.
pub fn manifest(data: &[u8]) {
    let (fs, path) = fs_with("MANIFEST-000001", data);
    if let Ok(state) = read_manifest(&fs, &path) {
        std::hint::black_box(state.runs.len());
    }
    if let Ok(edit) = VersionEdit::decode(data) {
        let again = VersionEdit::decode(&edit.encode()).expect("an encoded edit decodes");
        assert_eq!(again, edit, "a decoded edit survives encode + decode");
    }
}

/// `data` as a backup's metadata file. Decoded alone, it must re-encode to the same bytes
/// (the format has one encoding; only the checksum may differ, where the bypass let a wrong
/// one through). Then as `BACKUP-<id>` (the id it holds) in a backup directory on `MemFs`:
/// `list`, `verify`, `restore`, and where the restore succeeds (a backup without runs: the
/// directory holds no run files) the restored database is opened and read.
pub fn backup_meta(data: &[u8]) {
    let name = Path::new("/backups/BACKUP-000001");
    if let Ok(meta) = BackupMeta::decode(name, data) {
        let again = meta.encode();
        assert_eq!(
            again.len(),
            data.len(),
            "a decoded backup re-encodes to its length"
        );
        let body = data.len() - 4;
        assert!(
            again[..body] == data[..body],
            "a decoded backup re-encodes to its bytes"
        );
        let twice = BackupMeta::decode(name, &again).expect("a re-encoded backup decodes");
        assert_eq!(twice, meta, "a decoded backup survives encode + decode");
    }
    let id = data
        .get(8..16)
        .map_or(1, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let fs = MemFs::new();
    let dir = Path::new("/backups");
    fs.create_dir_all(dir).expect("MemFs creates directories");
    let mut f = fs
        .create(&dir.join(format!("BACKUP-{id:06}")))
        .expect("MemFs creates files");
    f.write_all(data).expect("MemFs writes");
    drop(f);
    let Ok(engine) = BackupEngine::open_with_vfs(dir, Arc::new(fs.clone())) else {
        return;
    };
    if let Ok(list) = engine.list() {
        std::hint::black_box(list.len());
    }
    if let Ok(report) = engine.verify(id) {
        std::hint::black_box(report.problems.len());
    }
    let restored = Path::new("/restored");
    if engine.restore(id, restored).is_err() {
        return;
    }
    let opts = Options {
        vfs: Arc::new(fs),
        compaction_threads: 0,
        ..Options::default()
    };
    let Ok(db) = Db::open(restored, opts) else {
        return;
    };
    for r in db.scan::<&[u8], _>(..) {
        if r.is_err() {
            break;
        }
    }
    let _ = db.changes(..).map(|feed| feed.count());
    let _ = db.snapshot_at(Version(db.latest_version().0 / 2));
    let _ = db.oldest_readable_version();
}

/// `data` as a run file: open, verify, a few point lookups, full range iterations from both
/// ends and one bounded range. A run `verify` finds healthy must iterate cleanly.
pub fn run_file(data: &[u8]) {
    let (fs, path) = fs_with("000009.arrow", data);
    let Ok(run) = RunReader::open(&fs, &path, 9, BlockCache::new(1 << 20)) else {
        return;
    };
    let healthy = run.verify().is_empty();
    let meta = run.meta().clone();
    let mut probes = vec![meta.min_key.clone(), meta.max_key.clone(), b"k05".to_vec()];
    probes.push(data.iter().rev().take(4).copied().collect());
    for key in &probes {
        for snapshot in [Version(u64::MAX), meta.min_version, Version(0)] {
            let _ = run.get(key, snapshot);
        }
    }
    let forward: Vec<_> = run.range(Bound::Unbounded, Bound::Unbounded).collect();
    let backward: Vec<_> = run
        .range(Bound::Unbounded, Bound::Unbounded)
        .rev()
        .collect();
    let lo = Bound::Included(Bytes::from(meta.min_key.clone()));
    let hi = Bound::Excluded(Bytes::from(meta.max_key.clone()));
    let bounded = run.range(lo, hi).count();
    if healthy {
        let fwd: Vec<_> = forward
            .into_iter()
            .map(|r| r.expect("a verified run iterates without errors"))
            .collect();
        assert_eq!(
            fwd.len() as u64,
            meta.entry_count,
            "forward iteration count"
        );
        for w in fwd.windows(2) {
            assert_eq!(
                internal_cmp(&w[0].key, w[0].version, &w[1].key, w[1].version),
                Ordering::Less,
                "a verified run iterates in internal order"
            );
        }
        let mut bwd: Vec<_> = backward
            .into_iter()
            .map(|r| r.expect("a verified run iterates backwards without errors"))
            .collect();
        bwd.reverse();
        assert!(fwd == bwd, "both directions yield the same entries");
        assert!(bounded as u64 <= meta.entry_count);
    }
}

/// One step of the directory target's script.
#[derive(Debug, Arbitrary)]
enum DirOp {
    Put {
        key: u8,
        len: u8,
        fill: u8,
        sync: bool,
    },
    Delete {
        key: u8,
    },
    Batch {
        keys: Vec<u8>,
    },
    Flush,
    Compact,
}

/// What happens to the chosen file before the reopen.
#[derive(Debug, Arbitrary)]
enum Mutation {
    FlipBit { at: u32, bit: u8 },
    Truncate { to: u32 },
    Overwrite { at: u32, bytes: Vec<u8> },
    Zero { at: u32, len: u16 },
    Append { bytes: Vec<u8> },
    Remove,
}

/// The directory target's input: a script that builds a small database, one file mutated,
/// the recovery mode of the reopen, and keys to read after it.
#[derive(Debug, Arbitrary)]
pub struct DirCase {
    ops: Vec<DirOp>,
    file: u8,
    mutation: Mutation,
    recovery: u8,
    reads: Vec<u8>,
}

/// At most this many steps build the database (the fuzzer would otherwise spend its time
/// building large ones).
const MAX_DIR_OPS: usize = 48;

fn dir_key(k: u8) -> Vec<u8> {
    format!("k{:02}", k % 32).into_bytes()
}

fn dir_options(fs: &MemFs, recovery_mode: RecoveryMode) -> Options {
    Options {
        vfs: Arc::new(fs.clone()),
        // Large enough that only `Flush` steps seal memtables, so the file numbering does
        // not depend on the flusher thread's timing; no compaction threads for the same
        // reason (the `Compact` steps compact in the caller).
        memtable_size: 1 << 20,
        block_size: 256,
        max_manifest_bytes: 1 << 10,
        compaction_threads: 0,
        recovery_mode,
        ..Options::default()
    }
}

/// Structure-aware whole-directory target (after SQLite's dbsqlfuzz): build a database from
/// the script, mutate one of its files, reopen it and read. Any error is fine.
pub fn directory(data: &[u8]) {
    let Ok(case) = DirCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    run_directory_case(&case);
}

/// Runs one [`DirCase`]. Building the database must succeed (nothing is damaged yet).
pub fn run_directory_case(case: &DirCase) {
    let fs = MemFs::new();
    let db = Db::open("/db", dir_options(&fs, RecoveryMode::TolerateTornTail))
        .expect("a fresh database opens");
    for op in case.ops.iter().take(MAX_DIR_OPS) {
        match op {
            DirOp::Put {
                key,
                len,
                fill,
                sync,
            } => {
                let mut b = WriteBatch::new();
                b.put(dir_key(*key), vec![*fill; usize::from(*len)]);
                let d = if *sync {
                    Durability::Sync
                } else {
                    Durability::Buffered
                };
                db.write_with(b, d).expect("write");
            }
            DirOp::Delete { key } => {
                db.delete(dir_key(*key)).expect("delete");
            }
            DirOp::Batch { keys } => {
                let mut b = WriteBatch::new();
                for (i, k) in keys.iter().take(8).enumerate() {
                    if i % 3 == 2 {
                        b.delete(dir_key(*k));
                    } else {
                        b.put(dir_key(*k), [*k; 24]);
                    }
                }
                db.write(b).expect("batch");
            }
            DirOp::Flush => db.flush().expect("flush"),
            DirOp::Compact => db.compact_range::<&[u8], _>(..).expect("compact"),
        }
    }
    db.close().expect("close");

    let dir = Path::new("/db");
    let mut names = fs.list(dir).expect("list");
    names.sort();
    if !names.is_empty() {
        let path = dir.join(&names[usize::from(case.file) % names.len()]);
        mutate(&fs, &path, &case.mutation);
    }

    let mode = match case.recovery % 3 {
        0 => RecoveryMode::TolerateTornTail,
        1 => RecoveryMode::PointInTime,
        _ => RecoveryMode::AbsoluteConsistency,
    };
    let Ok(db) = Db::open("/db", dir_options(&fs, mode)) else {
        return;
    };
    for k in case.reads.iter().take(16) {
        let _ = db.get(dir_key(*k));
    }
    let _ = db.scan::<&[u8], _>(..).count();
    let _ = db.scan::<&[u8], _>(..).rev().count();
    let _ = db.prefix("k1").count();
    // Compaction reads every block of every run.
    let _ = db.compact_range::<&[u8], _>(..);
    let _ = db.close();
}

/// Applies `m` to the file at `path` (rewritten whole, synced, its directory synced).
fn mutate(fs: &MemFs, path: &Path, m: &Mutation) {
    let Ok(mut bytes) = fs.read(path) else {
        return;
    };
    let len = bytes.len();
    let at = |x: u32| if len == 0 { 0 } else { x as usize % len };
    match m {
        Mutation::FlipBit { at: a, bit } => {
            if len > 0 {
                bytes[at(*a)] ^= 1 << (bit % 8);
            }
        }
        Mutation::Truncate { to } => bytes.truncate(*to as usize % (len + 1)),
        Mutation::Overwrite { at: a, bytes: with } => {
            let start = at(*a);
            for (i, b) in with.iter().enumerate() {
                match bytes.get_mut(start + i) {
                    Some(slot) => *slot = *b,
                    None => break,
                }
            }
        }
        Mutation::Zero { at: a, len: n } => {
            let start = at(*a);
            let end = (start + usize::from(*n)).min(len);
            bytes[start..end].fill(0);
        }
        Mutation::Append { bytes: more } => bytes.extend_from_slice(more),
        Mutation::Remove => {
            let _ = fs.remove_file(path);
            let _ = fs.sync_dir(Path::new("/db"));
            return;
        }
    }
    let Ok(mut f) = fs.create(path) else {
        return;
    };
    let _ = f.write_all(&bytes);
    let _ = f.sync();
    let _ = fs.sync_dir(Path::new("/db"));
}
