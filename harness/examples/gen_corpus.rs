//! Writes the seed corpora of the fuzz targets: real WAL segments, manifests, run files and
//! backup metadata files taken from databases the engine builds with the crash stage's
//! workload script, plus encoded version edits and random inputs for the directory target.
//!
//! `cargo run -p chronokv-harness --example gen_corpus [-- OUT_DIR]` (default: `fuzz/corpus`).
//! The output is deterministic up to background-thread timing (there is none here: the
//! databases run without compaction threads and with explicit flushes only) and commit
//! times (manifests and backups record the wall-clock time of commits).

use chronokv::backup::BackupEngine;
use chronokv::vfs::{MemFs, Vfs};
use chronokv::{Compression, Db, Options, Version};
use chronokv_engine::internals::{RunDesc, VersionEdit};
use chronokv_harness::workload::{self, apply, Script, Step};
use chronokv_harness::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The backup directory of every database.
const BACKUPS: &str = "/backups";
/// Files larger than this are not used (libFuzzer's inputs stay small and fast).
const MAX_FILE: usize = 16 << 10;
/// Per database, at most this many files of each kind.
const PER_KIND: usize = 3;

fn main() {
    let out: PathBuf = std::env::args().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"),
        PathBuf::from,
    );
    let mut corpus: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    let configs: [(&str, Compression); 2] = [
        ("plain", Compression::None),
        ("zstd", Compression::Zstd { level: 1 }),
    ];
    for seed in 1..=3u64 {
        for (cname, compression) in configs {
            let fs = MemFs::new();
            let opts = Options {
                compression,
                deep_compression: compression,
                ..workload::options(Arc::new(fs.clone()), 0)
            };
            // Seed 3 keeps its whole history, so its backups carry many time marks.
            let opts = Options {
                history_retention: (seed == 3).then_some(Duration::from_secs(86_400)),
                ..opts
            };
            let db = Db::open(workload::DIR, opts).expect("open");
            let backups =
                BackupEngine::open_with_vfs(BACKUPS, Arc::new(fs.clone())).expect("backups");
            // A backup of the empty store: it restores without run files.
            if seed == 1 {
                backups.create(&db).expect("backup");
            }
            let mut script = Script::new(seed);
            for i in 0..120 {
                let step = script.next_step();
                // Keep every step in the caller's thread: no automatic compaction here.
                if let Err(e) = apply(&db, &step) {
                    panic!("seed {seed}: {step:?}: {e}");
                }
                if matches!(step, Step::Compact) {
                    db.wait_for_compactions().expect("wait");
                }
                // Two backups, the second incremental.
                if i == 59 || i == 119 {
                    backups.create(&db).expect("backup");
                }
            }
            // Read the files while the database is open: the WAL still holds records.
            collect(&fs, &format!("s{seed}-{cname}"), &mut corpus);
            db.close().expect("close");
        }
    }
    // Bare version edits for the manifest target's `VersionEdit::decode`.
    let run = RunDesc {
        level: 1,
        file_number: 12,
        file_size: 4096,
        entry_count: 30,
        min_version: Version(3),
        max_version: Version(90),
        min_key: b"k00".to_vec(),
        max_key: b"k47".to_vec(),
    };
    let edits = [
        VersionEdit {
            next_file_number: Some(14),
            flushed_version: Some(Version(90)),
            min_log_number: Some(13),
            added: vec![run.clone()],
            deleted: vec![(0, 7), (0, 8)],
            time_marks: vec![
                (Version(3), 1_700_000_000_000_000),
                (Version(60), 1_700_000_000_500_000),
            ],
            times_pruned_below: Some(Version(2)),
            history_horizon: Some(Version(40)),
            retention: None,
        },
        VersionEdit {
            deleted: vec![(1, 12)],
            added: vec![RunDesc { level: 2, ..run }],
            ..VersionEdit::default()
        },
        // Tag 9 (manifest format 2): a change of the history contract.
        VersionEdit {
            retention: Some(chronokv::Retention::new(
                Some(Duration::from_secs(7 * 86_400)),
                3,
            )),
            ..VersionEdit::default()
        },
    ];
    for (i, e) in edits.iter().enumerate() {
        corpus.insert(("manifest".into(), format!("edit-{i}")), e.encode());
    }
    // The directory target reads its structure from the bytes: random bytes of a few sizes.
    let mut rng = Rng::new(0x5eed);
    for i in 0..16 {
        let len = 64 + rng.below(512) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        corpus.insert(("directory".into(), format!("random-{i:02}")), bytes);
    }

    let mut total = 0;
    for ((target, name), bytes) in &corpus {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        std::fs::write(dir.join(name), bytes).expect("write corpus file");
        total += bytes.len();
    }
    println!(
        "{} corpus files, {} bytes, in {}",
        corpus.len(),
        total,
        out.display()
    );
}

/// Copies up to `PER_KIND` small files of each kind from the database on `fs`.
fn collect(fs: &MemFs, tag: &str, corpus: &mut BTreeMap<(String, String), Vec<u8>>) {
    let dir = Path::new(workload::DIR);
    let mut names = fs.list(dir).expect("list");
    names.sort();
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    let backups = Path::new(BACKUPS);
    let mut metas = fs.list(backups).expect("list backups");
    metas.sort();
    for name in metas.iter().filter(|n| n.starts_with("BACKUP-")) {
        let bytes = fs.read(&backups.join(name)).expect("read");
        corpus.insert(("backup_meta".into(), format!("{tag}-{name}")), bytes);
    }
    for name in names {
        let targets: &[&str] = if name.ends_with(".wal") {
            &["wal_segment", "wal_segment_crc"]
        } else if name.starts_with("MANIFEST-") {
            &["manifest"]
        } else if name.ends_with(".arrow") {
            &["run_file"]
        } else {
            continue;
        };
        let bytes = fs.read(&dir.join(&name)).expect("read");
        if bytes.is_empty() || bytes.len() > MAX_FILE {
            continue;
        }
        let n = taken.entry(targets[0]).or_default();
        if *n >= PER_KIND {
            continue;
        }
        *n += 1;
        for t in targets {
            corpus.insert((t.to_string(), format!("{tag}-{name}")), bytes.clone());
        }
    }
}
