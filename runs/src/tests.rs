//! Unit tests of the whole crate: round trips against a `BTreeMap` oracle, block layout
//! edge cases, compression, the cache, durability and corruption handling.

use crate::*;
use arrow_array::{Array, BinaryArray, UInt64Array, UInt8Array};
use chronokv_snapshot::{Bytes, Entry, Kind, Version};
use chronokv_vfs::{MemFs, Vfs};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Row = (Vec<u8>, u64, Kind, Vec<u8>);

fn fs() -> (MemFs, PathBuf) {
    let fs = MemFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    (fs, PathBuf::from("/db/000001.run"))
}

fn write(fs: &MemFs, path: &Path, rows: &[Row], opts: RunWriterOptions) -> RunMeta {
    let mut w = RunWriter::create(Arc::new(fs.clone()), path, opts).unwrap();
    for (k, v, kind, val) in rows {
        w.add(k, Version(*v), *v * 1000, *kind, val).unwrap();
    }
    w.finish().unwrap()
}

fn open(fs: &MemFs, path: &Path) -> Arc<RunReader> {
    RunReader::open(fs, path, 1, BlockCache::new(1 << 20)).unwrap()
}

fn small_blocks() -> RunWriterOptions {
    RunWriterOptions {
        block_target_bytes: 64,
        block_max_rows: 5,
        ..Default::default()
    }
}

fn put(k: &str, v: u64, val: &str) -> Row {
    (k.as_bytes().to_vec(), v, Kind::Put, val.as_bytes().to_vec())
}

fn del(k: &str, v: u64) -> Row {
    (k.as_bytes().to_vec(), v, Kind::Delete, Vec::new())
}

fn as_row(e: Entry) -> Row {
    // Every test run is written with time = version * 1000; reading it back checks the
    // time column on every path that yields entries.
    assert_eq!(e.time, e.version.0 * 1000, "time column of {e:?}");
    (e.key.to_vec(), e.version.0, e.kind, e.value.to_vec())
}

/// The oracle's answer to `get`.
fn oracle_get(rows: &[Row], key: &[u8], snap: u64) -> Option<(Version, Kind, Bytes)> {
    rows.iter()
        .find(|r| r.0 == key && r.1 <= snap)
        .map(|r| (Version(r.1), r.2, Bytes::from(r.3.clone())))
}

fn in_bounds(k: &[u8], lo: &Bound<Bytes>, hi: &Bound<Bytes>) -> bool {
    let lo_ok = match lo {
        Bound::Unbounded => true,
        Bound::Included(b) => k >= &b[..],
        Bound::Excluded(b) => k > &b[..],
    };
    let hi_ok = match hi {
        Bound::Unbounded => true,
        Bound::Included(b) => k <= &b[..],
        Bound::Excluded(b) => k < &b[..],
    };
    lo_ok && hi_ok
}

/// Sorted, deduplicated rows in internal order from a random map.
type RandomRows = BTreeMap<(Vec<u8>, std::cmp::Reverse<u64>), (bool, Vec<u8>)>;

fn sorted(map: RandomRows) -> Vec<Row> {
    map.into_iter()
        .map(|((k, v), (is_put, val))| {
            if is_put {
                (k, v.0, Kind::Put, val)
            } else {
                (k, v.0, Kind::Delete, Vec::new())
            }
        })
        .collect()
}

fn bound_strategy() -> impl Strategy<Value = Bound<Bytes>> {
    prop_oneof![
        Just(Bound::Unbounded),
        proptest::collection::vec(0u8..6, 0..3).prop_map(|k| Bound::Included(Bytes::from(k))),
        proptest::collection::vec(0u8..6, 0..3).prop_map(|k| Bound::Excluded(Bytes::from(k))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_matches_oracle(
        map in proptest::collection::btree_map(
            (proptest::collection::vec(0u8..6, 0..3), (1u64..30).prop_map(std::cmp::Reverse)),
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..20)),
            1..80),
        target in 1usize..200,
        max_rows in 1usize..10,
        zstd in any::<bool>(),
        gets in proptest::collection::vec((proptest::collection::vec(0u8..6, 0..3), 0u64..32), 0..40),
        lo in bound_strategy(),
        hi in bound_strategy(),
        pattern in proptest::collection::vec(any::<bool>(), 0..100),
    ) {
        let rows = sorted(map);
        let (fs, path) = fs();
        let opts = RunWriterOptions {
            block_target_bytes: target,
            block_max_rows: max_rows,
            compression: if zstd { Compression::Zstd { level: 1 } } else { Compression::None },
            ..Default::default()
        };
        let meta = write(&fs, &path, &rows, opts);
        let run = open(&fs, &path);
        prop_assert_eq!(run.meta(), &meta);
        prop_assert_eq!(meta.entry_count as usize, rows.len());
        let deletes = rows.iter().filter(|r| r.2 == Kind::Delete).count();
        prop_assert_eq!(meta.tombstone_count as usize, deletes);
        prop_assert!(run.verify().is_empty());
        for r in &rows {
            prop_assert_eq!(run.get(&r.0, Version(r.1)).unwrap(), oracle_get(&rows, &r.0, r.1));
        }
        for (k, s) in &gets {
            prop_assert_eq!(run.get(k, Version(*s)).unwrap(), oracle_get(&rows, k, *s));
        }
        let expect: Vec<Row> = rows.iter().filter(|r| in_bounds(&r.0, &lo, &hi)).cloned().collect();
        let fwd: Vec<Row> = run.range(lo.clone(), hi.clone()).map(|e| as_row(e.unwrap())).collect();
        prop_assert_eq!(&fwd, &expect);
        let mut bwd: Vec<Row> = run.range(lo.clone(), hi.clone()).rev().map(|e| as_row(e.unwrap())).collect();
        bwd.reverse();
        prop_assert_eq!(&bwd, &expect);
        let mut it = run.range(lo, hi);
        let (mut front, mut back) = (Vec::new(), Vec::new());
        for i in 0.. {
            let from_front = pattern.get(i).copied().unwrap_or(i % 2 == 0);
            let item = if from_front { it.next() } else { it.next_back() };
            match item {
                Some(e) => if from_front { front.push(as_row(e.unwrap())) } else { back.push(as_row(e.unwrap())) },
                None => break,
            }
        }
        prop_assert!(it.next().is_none() && it.next_back().is_none());
        back.reverse();
        front.extend(back);
        prop_assert_eq!(front, expect);
    }
}

#[test]
fn multi_block_and_versions_spanning_blocks() {
    let (fs, path) = fs();
    let mut rows = vec![put("a", 1, "x")];
    for v in (1..=23).rev() {
        rows.push(put("k", v, &format!("value-{v}")));
    }
    rows.push(del("m", 9));
    rows.push(put("m", 3, ""));
    rows.push(put("z", 2, "last"));
    let meta = write(&fs, &path, &rows, small_blocks());
    assert!(meta.block_count >= 6, "{meta:?}");
    assert_eq!(meta.min_key, b"a");
    assert_eq!(meta.max_key, b"z");
    assert_eq!(
        (meta.min_version, meta.max_version),
        (Version(1), Version(23))
    );
    let run = open(&fs, &path);
    for snap in 0..30 {
        assert_eq!(
            run.get(b"k", Version(snap)).unwrap(),
            oracle_get(&rows, b"k", snap),
            "snap {snap}"
        );
    }
    // Tombstone vs empty value.
    assert_eq!(
        run.get(b"m", Version(10)).unwrap(),
        Some((Version(9), Kind::Delete, Bytes::new()))
    );
    assert_eq!(
        run.get(b"m", Version(5)).unwrap(),
        Some((Version(3), Kind::Put, Bytes::new()))
    );
    assert_eq!(run.get(b"m", Version(2)).unwrap(), None);
    assert_eq!(run.get(b"b", Version::MAX).unwrap(), None);
    assert_eq!(run.get(b"zz", Version::MAX).unwrap(), None);
    let keys: Vec<Row> = run
        .range(
            Bound::Included(Bytes::from_static(b"k")),
            Bound::Excluded(Bytes::from_static(b"m")),
        )
        .map(|e| as_row(e.unwrap()))
        .collect();
    assert_eq!(keys.len(), 23);
    assert!(run.verify().is_empty());
}

#[test]
fn large_values_get_their_own_blocks() {
    let (fs, path) = fs();
    let big = vec![7u8; 100 * 1024];
    let huge: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let rows: Vec<Row> = vec![
        put("a", 5, "small"),
        (b"b".to_vec(), 4, Kind::Put, big.clone()),
        put("c", 3, "small"),
        (b"d".to_vec(), 2, Kind::Put, huge.clone()),
        put("e", 1, "tail"),
    ];
    for compression in [Compression::None, Compression::Zstd { level: 3 }] {
        let opts = RunWriterOptions {
            compression,
            ..Default::default()
        };
        let meta = write(&fs, &path, &rows, opts);
        assert_eq!(meta.block_count, 5, "{compression:?}");
        let run = open(&fs, &path);
        assert_eq!(run.get(b"b", Version::MAX).unwrap().unwrap().2, big);
        assert_eq!(run.get(b"d", Version::MAX).unwrap().unwrap().2, huge);
        assert_eq!(
            run.get(b"e", Version::MAX).unwrap().unwrap().2,
            &b"tail"[..]
        );
        assert!(run.verify().is_empty());
        if compression != Compression::None {
            assert!(
                meta.file_size < 1024 * 1024,
                "zstd should shrink the file: {meta:?}"
            );
        }
    }
}

#[test]
fn zstd_round_trip() {
    let (fs, path) = fs();
    let rows: Vec<Row> = (0..2000)
        .map(|i| put(&format!("key{i:05}"), 10, &"v".repeat(i % 50)))
        .collect();
    let opts = RunWriterOptions {
        compression: Compression::Zstd { level: 1 },
        block_target_bytes: 4096,
        ..Default::default()
    };
    let meta = write(&fs, &path, &rows, opts);
    assert!(meta.block_count > 1);
    let run = open(&fs, &path);
    let all: Vec<Row> = run
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|e| as_row(e.unwrap()))
        .collect();
    assert_eq!(all, rows);
    assert_eq!(
        run.get(b"key01234", Version(10)).unwrap().unwrap().2,
        "v".repeat(1234 % 50)
    );
}

#[test]
fn cache_hit_path() {
    let (fs, path) = fs();
    let rows: Vec<Row> = (0..100).map(|i| put(&format!("k{i:03}"), 1, "v")).collect();
    write(&fs, &path, &rows, small_blocks());
    let cache = BlockCache::new(1 << 20);
    let run = RunReader::open(&fs, &path, 7, cache.clone()).unwrap();
    assert!(run.get(b"k050", Version(1)).unwrap().is_some());
    let misses = cache.misses();
    let hits = cache.hits();
    assert!(cache.weight() > 0);
    assert!(run.get(b"k050", Version(1)).unwrap().is_some());
    assert_eq!(cache.misses(), misses);
    assert_eq!(cache.hits(), hits + 1);
    cache.remove_run(7);
    assert_eq!(cache.weight(), 0);
    // A tiny cache still answers correctly.
    let tiny = BlockCache::new(1);
    let run = RunReader::open(&fs, &path, 8, tiny).unwrap();
    for r in &rows {
        assert!(run.get(&r.0, Version(1)).unwrap().is_some());
    }
}

#[test]
fn blocks_of_a_run_larger_than_the_cache_are_cached() {
    // Uncompressed blocks are zero-copy slices of the whole file's map; the cache must charge
    // a block for its own bytes, or no block of a large run is ever admitted.
    let (fs, path) = fs();
    let rows: Vec<Row> = (0..20_000)
        .map(|i| put(&format!("k{i:06}"), 1, &"v".repeat(40)))
        .collect();
    let opts = RunWriterOptions {
        block_target_bytes: 4096,
        compression: Compression::None,
        ..Default::default()
    };
    let meta = write(&fs, &path, &rows, opts);
    let capacity = 256 * 1024;
    assert!(
        meta.file_size > 4 * capacity,
        "the run must dwarf the cache"
    );
    let cache = BlockCache::new(capacity);
    let run = RunReader::open(&fs, &path, 9, cache.clone()).unwrap();
    for _ in 0..3 {
        assert!(run.get(b"k010000", Version(1)).unwrap().is_some());
    }
    assert_eq!(cache.misses(), 1, "one decode, then hits");
    assert_eq!(cache.hits(), 2);
    assert!(
        cache.weight() > 0 && cache.weight() < 64 * 1024,
        "{}",
        cache.weight()
    );
}

#[test]
fn values_share_the_cached_block_and_outlive_its_eviction() {
    for compression in [Compression::None, Compression::Zstd { level: 1 }] {
        let (fs, path) = fs();
        let rows: Vec<Row> = (0..200)
            .map(|i| {
                put(
                    &format!("k{i:03}"),
                    1,
                    &format!("value-{i}-{}", "x".repeat(i % 7)),
                )
            })
            .collect();
        let opts = RunWriterOptions {
            compression,
            ..small_blocks()
        };
        write(&fs, &path, &rows, opts);
        let cache = BlockCache::new(1 << 20);
        let run = RunReader::open(&fs, &path, 3, cache.clone()).unwrap();
        let (_, _, first) = run.get(b"k123", Version(1)).unwrap().unwrap();
        let (_, _, again) = run.get(b"k123", Version(1)).unwrap().unwrap();
        // Both answers point into the one cached block: a copy would live elsewhere.
        assert_eq!(first.as_ptr(), again.as_ptr(), "{compression:?}");
        let got: Vec<Bytes> = rows
            .iter()
            .map(|r| run.get(&r.0, Version(1)).unwrap().unwrap().2)
            .collect();
        let scanned: Vec<Entry> = run
            .range(Bound::Unbounded, Bound::Unbounded)
            .map(|e| e.unwrap())
            .collect();
        // Evict every block, close the run and delete its file: what was handed out stays.
        cache.remove_run(3);
        assert_eq!(cache.weight(), 0);
        drop(run);
        fs.remove_file(&path).unwrap();
        assert_eq!(first, Bytes::from(rows[123].3.clone()));
        for (r, v) in rows.iter().zip(&got) {
            assert_eq!(&v[..], &r.3[..], "{compression:?}");
        }
        let scanned: Vec<Row> = scanned.into_iter().map(as_row).collect();
        assert_eq!(scanned, rows, "{compression:?}");
    }
}

#[test]
fn invalid_input_is_rejected() {
    let (fs, path) = fs();
    let vfs: Arc<dyn Vfs> = Arc::new(fs.clone());
    let mut w = RunWriter::create(vfs.clone(), &path, RunWriterOptions::default()).unwrap();
    w.add(b"b", Version(5), 5000, Kind::Put, b"x").unwrap();
    assert!(matches!(
        w.add(b"a", Version(9), 9000, Kind::Put, b"x"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.add(b"b", Version(5), 5000, Kind::Put, b"x"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.add(b"b", Version(6), 6000, Kind::Put, b"x"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.add(b"c", Version(1), 1000, Kind::Delete, b"x"),
        Err(Error::InvalidInput(_))
    ));
    w.add(b"b", Version(4), 4000, Kind::Delete, b"").unwrap();
    w.finish().unwrap();
    let w = RunWriter::create(
        vfs.clone(),
        Path::new("/db/empty.run"),
        RunWriterOptions::default(),
    )
    .unwrap();
    assert!(matches!(w.finish(), Err(Error::InvalidInput(_))));
    assert!(!fs.exists(Path::new("/db/empty.run")) && !fs.exists(Path::new("/db/empty.run.tmp")));
    let bad = RunWriterOptions {
        compression: Compression::Zstd { level: 1000 },
        ..Default::default()
    };
    assert!(matches!(
        RunWriter::create(vfs.clone(), &path, bad),
        Err(Error::InvalidInput(_))
    ));
    let bad = RunWriterOptions {
        bloom_fp_rate: 0.0,
        ..Default::default()
    };
    assert!(matches!(
        RunWriter::create(vfs, &path, bad),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn finished_run_survives_a_crash_and_tmp_is_gone() {
    let (fs, path) = fs();
    let meta = write(&fs, &path, &[put("a", 1, "x")], RunWriterOptions::default());
    assert!(!fs.exists(Path::new("/db/000001.run.tmp")));
    let crashed = fs.crash_clone();
    assert_eq!(crashed.file_size(&path).unwrap(), meta.file_size);
    let run = open(&crashed, &path);
    assert_eq!(run.get(b"a", Version(1)).unwrap().unwrap().2, &b"x"[..]);
    // Dropping an unfinished writer removes its temporary file.
    let mut w = RunWriter::create(
        Arc::new(fs.clone()),
        Path::new("/db/2.run"),
        RunWriterOptions::default(),
    )
    .unwrap();
    w.add(b"a", Version(1), 1000, Kind::Put, b"x").unwrap();
    drop(w);
    assert!(!fs.exists(Path::new("/db/2.run.tmp")));
}

/// Reads a run with arrow-rs's own readers (validation on), as file and as stream.
#[test]
fn arrow_readers_read_every_block() {
    let (fs, path) = fs();
    let rows: Vec<Row> = (0..300)
        .map(|i| put(&format!("k{i:04}"), 1000 - i, &format!("v{i}")))
        .collect();
    for compression in [Compression::None, Compression::Zstd { level: 1 }] {
        let opts = RunWriterOptions {
            block_target_bytes: 512,
            compression,
            ..Default::default()
        };
        let meta = write(&fs, &path, &rows, opts);
        let bytes = fs.read(&path).unwrap();
        let file =
            arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.clone()), None)
                .unwrap();
        assert_eq!(file.num_batches(), meta.block_count as usize);
        assert_eq!(
            file.schema()
                .metadata()
                .get("chronokv.sort")
                .map(String::as_str),
            Some("key ASC, version DESC")
        );
        assert!(file.custom_metadata().contains_key("chronokv.private"));
        let stream = arrow_ipc::reader::StreamReader::try_new(
            std::io::Cursor::new(bytes[8..].to_vec()),
            None,
        )
        .unwrap();
        for reader in [
            Box::new(file) as Box<dyn Iterator<Item = _>>,
            Box::new(stream),
        ] {
            let mut got = Vec::new();
            for batch in reader {
                let batch = batch.unwrap();
                let c = batch.columns();
                let k = c[0].as_any().downcast_ref::<BinaryArray>().unwrap();
                let v = c[1].as_any().downcast_ref::<UInt64Array>().unwrap();
                let kd = c[2].as_any().downcast_ref::<UInt8Array>().unwrap();
                let val = c[3].as_any().downcast_ref::<BinaryArray>().unwrap();
                for i in 0..batch.num_rows() {
                    got.push((
                        k.value(i).to_vec(),
                        v.value(i),
                        Kind::from_u8(kd.value(i)).unwrap(),
                        val.value(i).to_vec(),
                    ));
                }
                assert_eq!(k.null_count(), 0);
            }
            assert_eq!(got, rows);
        }
    }
}

/// Every single-byte flip and many truncations: no panic, and damage is reported.
#[test]
fn corruption_is_detected_never_panics() {
    let (fs, path) = fs();
    let rows = vec![
        put("a", 3, "one"),
        del("a", 2),
        put("b", 1, "two"),
        put("c", 5, ""),
        put("d", 4, "four"),
    ];
    let opts = RunWriterOptions {
        block_target_bytes: 8,
        ..Default::default()
    };
    let meta = write(&fs, &path, &rows, opts);
    let original = fs.read(&path).unwrap();
    assert_eq!(original.len() as u64, meta.file_size);
    let cache = BlockCache::new(1 << 20);
    // Exercise every read path; return whether any corruption was reported.
    let exercise = |fs: &MemFs, id: u64| -> bool {
        let run = match RunReader::open(fs, &path, id, cache.clone()) {
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                assert!(e.to_string().contains("000001.run"), "{e}");
                return true;
            }
            Ok(r) => r,
        };
        let mut reported = !run.verify().is_empty();
        for r in &rows {
            match run.get(&r.0, Version(r.1)) {
                Err(e) => {
                    assert!(e.is_corruption());
                    reported = true;
                }
                Ok(got) => {
                    if got != oracle_get(&rows, &r.0, r.1) {
                        // Wrong answers are only acceptable if something reported damage.
                        reported = reported || !run.verify().is_empty();
                    }
                }
            }
        }
        let fwd: Vec<_> = run.range(Bound::Unbounded, Bound::Unbounded).collect();
        let bwd: Vec<_> = run
            .range(Bound::Unbounded, Bound::Unbounded)
            .rev()
            .collect();
        reported |= fwd.iter().chain(bwd.iter()).any(|r| r.is_err());
        reported
    };
    let mut id = 100;
    for offset in 0..original.len() {
        let copy = MemFs::new();
        copy.create_dir_all(Path::new("/db")).unwrap();
        let mut f = copy.create(&path).unwrap();
        let mut bytes = original.clone();
        bytes[offset] ^= 0x5a;
        f.write_all(&bytes).unwrap();
        drop(f);
        id += 1;
        let reported = exercise(&copy, id);
        // Block messages, the private region, the tail and the footer are all covered by
        // checksums; only padding inside the schema message is not.
        if offset >= 8 + schema_message_len(&original) {
            assert!(
                reported,
                "flip at offset {offset} of {} went unnoticed",
                original.len()
            );
        }
    }
    for len in (0..original.len()).step_by(3) {
        fs.truncate(&path, len).unwrap();
        id += 1;
        assert!(exercise(&fs, id), "truncation to {len} went unnoticed");
        let mut f = fs.create(&path).unwrap();
        f.write_all(&original).unwrap();
    }
}

/// The schema message has no CRC, so `verify` decodes it: a flip there is reported exactly
/// when it changes what an Arrow stream reader (which reads the file from byte 8) sees.
#[test]
fn verify_reports_schema_damage_that_an_arrow_reader_would_see() {
    let (fs, path) = fs();
    let rows = vec![put("a", 2, "x"), put("b", 1, "y")];
    write(&fs, &path, &rows, RunWriterOptions::default());
    let original = fs.read(&path).unwrap();
    let cache = BlockCache::new(1 << 20);
    let (mut reported, mut changed) = (0, 0);
    for offset in 8..8 + schema_message_len(&original) {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x5a;
        let stream = arrow_ipc::reader::StreamReader::try_new(&bytes[8..], None);
        let misread = stream.map_or(true, |r| r.schema() != crate::framing::schema());
        let copy = MemFs::new();
        copy.create_dir_all(Path::new("/db")).unwrap();
        let mut f = copy.create(&path).unwrap();
        f.write_all(&bytes).unwrap();
        drop(f);
        let run = RunReader::open(&copy, &path, offset as u64, cache.clone()).unwrap();
        let problems = run.verify();
        assert_eq!(
            !problems.is_empty(),
            misread,
            "flip at {offset}: {problems:?}"
        );
        if misread {
            assert!(
                problems[0].to_string().contains("schema message"),
                "{problems:?}"
            );
        }
        reported += usize::from(!problems.is_empty());
        changed += usize::from(misread);
    }
    assert!(reported > 100, "{reported} of the schema flips reported");
    assert_eq!(reported, changed);
}

/// The schema message (magic excluded) is the one part of the file without a CRC.
fn schema_message_len(file: &[u8]) -> usize {
    let meta_len = i32::from_le_bytes(file[12..16].try_into().unwrap()) as usize;
    8 + meta_len
}

#[test]
fn private_tail_and_index_example() {
    // Pins the layout described in docs/format/run.md.
    let (fs, path) = fs();
    let rows = vec![
        put("apple", 2, "red"),
        del("apple", 1),
        put("kiwi", 3, "green"),
    ];
    let meta = write(
        &fs,
        &path,
        &rows,
        RunWriterOptions {
            block_max_rows: 2,
            ..Default::default()
        },
    );
    let bytes = fs.read(&path).unwrap();
    let n = bytes.len();
    assert_eq!(&bytes[..8], b"ARROW1\0\0");
    assert_eq!(&bytes[n - 6..], b"ARROW1");
    let footer_len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap()) as usize;
    let tail = &bytes[n - 10 - footer_len - 40..n - 10 - footer_len];
    assert_eq!(&tail[32..], b"CKVRUN01");
    let p_off = u64::from_le_bytes(tail[0..8].try_into().unwrap()) as usize;
    let p_len = u64::from_le_bytes(tail[8..16].try_into().unwrap()) as usize;
    assert_eq!(p_off + p_len, n - 10 - footer_len - 40);
    assert_eq!(
        &bytes[p_off - 8..p_off],
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
    );
    let private = &bytes[p_off..p_off + p_len];
    assert_eq!(
        u32::from_le_bytes(private[16..20].try_into().unwrap()),
        meta.block_count
    );
    assert_eq!(meta.block_count, 2);
    // Block bodies start at 64-byte aligned file offsets.
    for b in 0..2 {
        let e = &private[96 + 72 * b..96 + 72 * (b + 1)];
        let off = u64::from_le_bytes(e[0..8].try_into().unwrap());
        let meta_len = u32::from_le_bytes(e[8..12].try_into().unwrap()) as u64;
        assert_eq!((off + meta_len) % 64, 0);
    }
    // The filter (docs/format/run.md, "Bloom filter (format 3)"): kind 1, 6 probes, one
    // block holding the bits of "apple" and "kiwi".
    let filter_at = u64::from_le_bytes(private[64..72].try_into().unwrap()) as usize;
    let filter_len = u64::from_le_bytes(private[72..80].try_into().unwrap()) as usize;
    assert_eq!((filter_at, filter_len), (0x102, 80));
    let filter = &private[filter_at..filter_at + filter_len];
    assert_eq!(
        &filter[..16],
        &[1, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    );
    let set: Vec<usize> = (0..512)
        .filter(|b| filter[16 + b / 8] & (1 << (b % 8)) != 0)
        .collect();
    assert_eq!(
        set,
        [6, 17, 168, 209, 215, 243, 265, 291, 316, 324, 414, 464]
    );
    // The whole region, as the document shows it (its bytes do not depend on the clock).
    assert_eq!(crc32fast::hash(private), 0xecb7_dbec);
    if std::env::var_os("CHRONOKV_DUMP").is_some() {
        println!(
            "file size {n}, private region at {p_off} ({p_len} bytes), footer {footer_len} bytes"
        );
        hexdump("private region", p_off, private);
        hexdump("tail", n - 10 - footer_len - 40, tail);
    }
}

fn hexdump(title: &str, base: usize, bytes: &[u8]) {
    println!("{title}:");
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        println!("{:08x}  {:<47}  |{}|", base + i * 16, hex.join(" "), ascii);
    }
}

#[test]
fn reader_and_iterator_are_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    fn send_static<T: Send + 'static>() {}
    send_sync::<RunReader>();
    send_sync::<BlockCache>();
    send_static::<RunIter>();
}

/// A 256 MiB value on the real file system (slow and memory hungry: run with --ignored).
#[test]
#[ignore]
fn value_of_256_mib() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.run");
    let value = vec![0xabu8; 256 << 20];
    let vfs: Arc<dyn Vfs> = Arc::new(chronokv_vfs::RealFs);
    let mut w = RunWriter::create(vfs.clone(), &path, RunWriterOptions::default()).unwrap();
    w.add(b"a", Version(2), 2000, Kind::Put, b"small").unwrap();
    w.add(b"big", Version(1), 1000, Kind::Put, &value).unwrap();
    let meta = w.finish().unwrap();
    assert_eq!(meta.block_count, 2);
    let run = RunReader::open(vfs.as_ref(), &path, 1, BlockCache::new(1 << 20)).unwrap();
    let got = run.get(b"big", Version::MAX).unwrap().unwrap();
    assert_eq!(got.2.len(), value.len());
    assert!(got.2.iter().all(|&b| b == 0xab));
    assert!(run.verify().is_empty());
}

#[test]
fn an_uncached_scan_reads_every_entry_and_leaves_the_cache_empty() {
    let (fs, path) = fs();
    let rows: Vec<Row> = (0..200)
        .map(|i| put(&format!("k{i:04}"), i + 1, "v"))
        .collect();
    write(&fs, &path, &rows, small_blocks());
    let cache = BlockCache::new(1 << 20);
    let run = RunReader::open(&fs, &path, 1, cache.clone()).unwrap();
    let scanned: Vec<Row> = run.scan_uncached().map(|e| as_row(e.unwrap())).collect();
    assert_eq!(scanned, rows);
    assert_eq!(cache.weight(), 0, "an uncached scan filled the cache");
    // A cached block is still used (a hit), and a normal range fills the cache.
    let cached: Vec<Row> = run
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|e| as_row(e.unwrap()))
        .collect();
    assert_eq!(cached, rows);
    assert!(cache.weight() > 0);
    let hits = cache.hits();
    assert_eq!(run.scan_uncached().count(), rows.len());
    assert!(
        cache.hits() > hits,
        "the uncached scan ignored cached blocks"
    );
}

#[test]
fn a_run_truncated_after_open_fails_its_block_reads_with_a_typed_error() {
    // The reader keeps no map: a block is read when first needed, so a file cut short
    // under an open reader is an error naming the file, never a SIGBUS or a panic.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000001.run");
    let real = chronokv_vfs::RealFs;
    let rows: Vec<Row> = (0..200)
        .map(|i| put(&format!("k{i:04}"), i + 1, "v"))
        .collect();
    let mut w = RunWriter::create(Arc::new(real), &path, small_blocks()).unwrap();
    for (k, v, kind, val) in &rows {
        w.add(k, Version(*v), *v * 1000, *kind, val).unwrap();
    }
    w.finish().unwrap();
    let run = RunReader::open(&real, &path, 1, BlockCache::new(1 << 20)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    let err = run.get(b"k0150", Version(u64::MAX)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("000001.run"), "{text}");
}

#[test]
fn the_plain_decode_path_builds_what_arrow_builds() {
    let (fs, path) = fs();
    let rows: Vec<Row> = (0..100u64)
        .map(|i| {
            let key = format!("key{i:03}").into_bytes();
            if i % 7 == 0 {
                (key, 1000 - i, Kind::Delete, Vec::new())
            } else {
                (key, 1000 - i, Kind::Put, vec![i as u8; i as usize % 13])
            }
        })
        .collect();
    let opts = RunWriterOptions {
        block_target_bytes: 256,
        ..Default::default()
    };
    write(&fs, &path, &rows, opts);
    let bytes = fs.read(&path).unwrap();
    let layout = open(&fs, &path).layout();
    assert!(layout.blocks.len() > 3, "several blocks");
    for info in &layout.blocks {
        let start = info.offset as usize;
        let len = info.meta_len as usize + info.body_len as usize;
        let msg = arrow_buffer::Buffer::from_vec(bytes[start..start + len].to_vec());
        let l = crate::block::check_buffers(&msg, info.meta_len as usize)
            .unwrap()
            .unwrap();
        let plain = crate::plain::columns(&msg, &l)
            .unwrap()
            .expect("the plain path takes a run block");
        let arrow =
            crate::block::arrow_columns(&msg, info.offset, info.meta_len, info.body_len).unwrap();
        assert_eq!(plain.len(), info.rows as usize);
        assert_eq!(plain.keys, arrow.keys);
        assert_eq!(plain.values, arrow.values);
        assert_eq!(plain.versions, arrow.versions);
        assert_eq!(plain.kinds, arrow.kinds);
        assert_eq!(plain.times.values(), arrow.times.values());
        assert_eq!(plain.times.null_count(), 0);
    }
}

/// A run whose only block holds `kaa`, `kzz`, `kcc` (out of order) with every checksum
/// recomputed: bytes a buggy writer could have produced, which no CRC catches.
fn crc_valid_run_out_of_order(fs: &MemFs, path: &Path) {
    let rows = vec![put("kaa", 3, "x"), put("kbb", 2, "y"), put("kcc", 1, "z")];
    write(fs, path, &rows, RunWriterOptions::default());
    let mut b = fs.read(path).unwrap();
    let at = b.windows(9).position(|w| w == b"kaakbbkcc").unwrap();
    b[at + 3..at + 6].copy_from_slice(b"kzz");
    let n = b.len();
    let footer_len = i32::from_le_bytes(b[n - 10..n - 6].try_into().unwrap()) as usize;
    let tail = n - 10 - footer_len - 40;
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let (p_off, p_len) = (u64_at(&b, tail) as usize, u64_at(&b, tail + 8) as usize);
    let entry = p_off + 96;
    let (msg, meta_len, body_len) = (
        u64_at(&b, entry) as usize,
        u32::from_le_bytes(b[entry + 8..entry + 12].try_into().unwrap()) as usize,
        u64_at(&b, entry + 16) as usize,
    );
    let crc = crc32fast::hash(&b[msg..msg + meta_len + body_len]);
    b[entry + 24..entry + 28].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(&b[p_off..p_off + p_len]);
    b[tail + 16..tail + 20].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(&b[tail..tail + 28]);
    b[tail + 28..tail + 32].copy_from_slice(&crc.to_le_bytes());
    fs.create(path).unwrap().write_all(&b).unwrap();
}

#[test]
fn rows_out_of_order_behind_a_valid_crc_are_found_by_verify_and_compaction_reads() {
    let (fs, path) = fs();
    crc_valid_run_out_of_order(&fs, &path);
    let run = open(&fs, &path);
    let errors = run.verify();
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("out of internal order")),
        "{errors:?}"
    );
    // Compaction reads past the cache with every row checked.
    let scanned: Result<Vec<Entry>, Error> = run.scan_uncached().collect();
    assert!(scanned
        .unwrap_err()
        .to_string()
        .contains("out of internal order"));
    // A read through the cache trusts the rows: it answers (wrongly, perhaps), never panics.
    let run = open(&fs, &path);
    assert!(run.get(b"kaa", Version(10)).unwrap().is_some());
    for key in [&b"kbb"[..], b"kcc", b"kzz", b"a", b"z"] {
        let _ = run.get(key, Version(10)).unwrap();
    }
    let all: Vec<Entry> = run
        .range(Bound::Unbounded, Bound::Unbounded)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 3);
    // The block is cached now, rows unchecked: a compaction read checks them anyway (the
    // directory fuzz target found compaction's filter asserting on such a cached block).
    let scanned: Result<Vec<Entry>, Error> = run.scan_uncached().collect();
    assert!(scanned
        .unwrap_err()
        .to_string()
        .contains("out of internal order"));
}
