//! Tests of the writer and reader together: round trips, golden bytes, torn tails versus
//! corruption, and fuzzing of the decoder.

use crate::frame::{FRAME_HEADER_LEN, PAYLOAD_HEADER_LEN};
use crate::*;
use chronokv_snapshot::{Kind, Version};
use chronokv_vfs::{MemFs, RealFs, Vfs};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LOG: u64 = 7;

fn setup() -> (MemFs, PathBuf) {
    let fs = MemFs::new();
    let dir = PathBuf::from("/db/wal");
    fs.create_dir_all(&dir).unwrap();
    (fs, dir)
}

type Owned = Vec<(Kind, Vec<u8>, Vec<u8>)>;

fn batch(entries: &Owned) -> BatchEntries {
    let mut b = BatchEntries::new();
    for (kind, k, v) in entries {
        match kind {
            Kind::Put => b.put(k, v),
            Kind::Delete => b.delete(k),
        }
    }
    b
}

fn owned(r: &Record) -> Owned {
    r.entries()
        .map(|e| {
            let (k, key, value) = e.unwrap();
            (k, key.to_vec(), value.to_vec())
        })
        .collect()
}

fn small_batch(i: u8) -> BatchEntries {
    let mut b = BatchEntries::new();
    b.put(&[b'k', i], &[b'v'; 5]);
    b.delete(&[b'd', i]);
    b
}

/// Writes the given batches, one append each, syncing after each append if `sync`.
/// Returns the segment path and the frame boundaries (start offsets plus the end).
fn write_segment(
    fs: &MemFs,
    dir: &Path,
    batches: &[BatchEntries],
    sync: bool,
) -> (PathBuf, Vec<u64>) {
    let mut w = SegmentWriter::create(fs, dir, LOG).unwrap();
    let mut bounds = vec![0];
    let mut v = 1;
    for b in batches {
        w.append(&[RecordRef {
            first_version: Version(v),
            commit_micros: 1000 + v,
            entries: b,
        }])
        .unwrap();
        v += u64::from(b.count());
        if sync {
            w.sync().unwrap();
        }
        bounds.push(w.len());
    }
    (w.path().to_path_buf(), bounds)
}

fn three_records(fs: &MemFs, dir: &Path, sync: bool) -> (PathBuf, Vec<u64>) {
    let batches: Vec<_> = (0..3).map(small_batch).collect();
    write_segment(fs, dir, &batches, sync)
}

fn read(fs: &MemFs, p: &Path, newest: bool, mode: RecoveryMode) -> Result<SegmentContents, Error> {
    read_segment(fs, p, LOG, newest, mode)
}

fn corruption_offset(r: Result<SegmentContents, Error>) -> u64 {
    match r {
        Err(Error::Corruption { offset, .. }) => offset,
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn file_names() {
    assert_eq!(segment_file_name(7), "000007.wal");
    assert_eq!(segment_file_name(1234567), "1234567.wal");
    assert_eq!(parse_segment_file_name("000007.wal"), Some(7));
    assert_eq!(parse_segment_file_name("1234567.wal"), Some(1234567));
    assert_eq!(
        parse_segment_file_name(&segment_file_name(u64::MAX)),
        Some(u64::MAX)
    );
    for bad in [
        "7.wal",
        "0000007.wal",
        "000007.log",
        "+00007.wal",
        "00000a.wal",
        "000007.wal.tmp",
        "99999999999999999999999.wal",
        "",
    ] {
        assert_eq!(parse_segment_file_name(bad), None, "{bad}");
    }
}

#[test]
fn round_trip_many_records() {
    let (fs, dir) = setup();
    let mut expect: Vec<Owned> = Vec::new();
    for i in 0..200u32 {
        let mut e: Owned = Vec::new();
        for j in 0..(i % 5) {
            let key = format!("key-{i}-{j}").into_bytes();
            match (i + j) % 3 {
                0 => e.push((Kind::Put, key, Vec::new())), // empty value
                1 => e.push((Kind::Delete, key, Vec::new())),
                _ => e.push((Kind::Put, key, vec![i as u8; (i * 37 % 300) as usize])),
            }
        }
        expect.push(e); // i % 5 == 0 gives an empty batch
    }
    // Big entries: a maximal key and a value over 64 KiB.
    expect.push(vec![(
        Kind::Put,
        vec![0xab; MAX_KEY_LEN],
        vec![0xcd; 200_000],
    )]);
    let batches: Vec<_> = expect.iter().map(batch).collect();
    // Mixed group sizes, with and without syncs.
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    let mut v = 100;
    let mut i = 0;
    while i < batches.len() {
        let n = (i % 4 + 1).min(batches.len() - i);
        let mut group = Vec::new();
        for b in &batches[i..i + n] {
            group.push(RecordRef {
                first_version: Version(v),
                commit_micros: v * 10,
                entries: b,
            });
            v += u64::from(b.count());
        }
        w.append(&group).unwrap();
        if i % 3 == 0 {
            w.sync().unwrap();
        }
        i += n;
    }
    for mode in [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::PointInTime,
        RecoveryMode::AbsoluteConsistency,
    ] {
        for newest in [true, false] {
            let c = read(&fs, w.path(), newest, mode).unwrap();
            assert_eq!(c.damage, None);
            assert_eq!(c.records.len(), expect.len());
            let mut v = 100;
            for (r, e) in c.records.iter().zip(&expect) {
                assert_eq!(r.first_version, Version(v));
                assert_eq!(r.commit_micros, v * 10);
                assert_eq!(r.count as usize, e.len());
                assert_eq!(&owned(r), e);
                v += u64::from(r.count);
                assert_eq!(r.next_version(), Version(v));
                assert_eq!(r.last_version(), Version(v - 1));
            }
        }
    }
}

#[test]
fn golden_segment_bytes() {
    let (fs, dir) = setup();
    let b = crate::frame::tests::golden_entries();
    let mut w = SegmentWriter::create(&fs, &dir, 7).unwrap();
    w.append(&[RecordRef {
        first_version: Version(42),
        commit_micros: 1_700_000_000_000_000,
        entries: &b,
    }])
    .unwrap();
    assert_eq!(w.path(), Path::new("/db/wal/000007.wal"));
    let bytes = fs.read(w.path()).unwrap();
    let expect: String = crate::frame::tests::GOLDEN.split_whitespace().collect();
    assert_eq!(crate::frame::tests::hex(&bytes), expect);
    let c = read(&fs, w.path(), true, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(c.records.len(), 1);
    assert_eq!(c.records[0].last_version(), Version(43));
}

#[test]
fn create_syncs_the_directory_and_durable_offsets_track_syncs() {
    let (fs, dir) = setup();
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    assert_eq!(fs.sync_counts().dir_syncs, 1);
    assert!(fs.crash_clone().exists(w.path()));
    assert!(w.is_empty());
    let (a, b, c) = (small_batch(0), small_batch(1), small_batch(2));
    let r = |v, e| RecordRef {
        first_version: Version(v),
        commit_micros: 0,
        entries: e,
    };
    w.append(&[r(1, &a)]).unwrap();
    w.sync().unwrap();
    let synced = w.len();
    assert_eq!(w.synced_len(), synced);
    w.append(&[r(3, &b), r(5, &c)]).unwrap();
    let got = read(&fs, w.path(), true, RecoveryMode::AbsoluteConsistency).unwrap();
    let durable: Vec<u64> = got.records.iter().map(Record::durable_offset).collect();
    assert_eq!(durable, vec![0, synced, synced]);
    assert_eq!(w.next_version(), Some(Version(7)));
}

#[test]
fn writer_rejects_noncontiguous_versions_without_writing() {
    let (fs, dir) = setup();
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    let b = small_batch(0);
    let r = |v| RecordRef {
        first_version: Version(v),
        commit_micros: 0,
        entries: &b,
    };
    w.append(&[r(10)]).unwrap();
    let len = w.len();
    // A refusal is the caller's mistake, told apart from the device's failures.
    assert!(matches!(
        w.append(&[r(12), r(15)]),
        Err(Error::Refused { .. })
    ));
    assert!(matches!(w.append(&[r(11)]), Err(Error::Refused { .. })));
    assert_eq!(w.len(), len);
    w.append(&[r(12), r(14)]).unwrap(); // still usable
    let empty = BatchEntries::new();
    w.append(&[RecordRef {
        first_version: Version(16),
        commit_micros: 0,
        entries: &empty,
    }])
    .unwrap();
    w.append(&[r(16)]).unwrap();
    let c = read(&fs, w.path(), false, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(c.records.len(), 5);
    assert_eq!(c.records[3].count, 0);
    assert_eq!(c.records[3].last_version(), Version(15));
}

#[test]
fn a_group_is_one_write_and_a_failed_write_poisons_the_writer() {
    let fs = chronokv_vfs::FaultFs::new(Arc::new(MemFs::new()));
    let dir = PathBuf::from("/db");
    fs.create_dir_all(&dir).unwrap();
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    let batches: Vec<_> = (0..5).map(small_batch).collect();
    let group: Vec<_> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| RecordRef {
            first_version: Version(1 + 2 * i as u64),
            commit_micros: 0,
            entries: b,
        })
        .collect();
    w.append(&group).unwrap();
    assert_eq!(fs.writes(), 1);
    w.append(&[]).unwrap();
    assert_eq!(fs.writes(), 1);
    fs.fail_writes(true);
    let next = [RecordRef {
        first_version: Version(11),
        commit_micros: 0,
        entries: &batches[0],
    }];
    assert!(matches!(w.append(&next), Err(Error::Io { .. })));
    fs.fail_writes(false);
    assert!(w.append(&next).is_err());
    assert!(w.sync().is_err());
    // The half-written frame is a torn tail.
    let c = read_segment(&fs, w.path(), LOG, true, RecoveryMode::TolerateTornTail).unwrap();
    assert_eq!(c.records.len(), 5);
    assert!(c.damage.is_some());
}

#[test]
fn truncation_at_every_offset() {
    let (fs, dir) = setup();
    for sync in [false, true] {
        let (path, bounds) = three_records(&fs, &dir, sync);
        let full = fs.read(&path).unwrap();
        for cut in 0..=full.len() {
            let cut_path = dir.join(segment_file_name(LOG));
            let mut f = fs.create(&cut_path).unwrap();
            f.write_all(&full[..cut]).unwrap();
            let whole = bounds.iter().filter(|&&b| b <= cut as u64).count() - 1;
            let at_boundary = bounds.contains(&(cut as u64));
            for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime] {
                let c = read(&fs, &cut_path, true, mode).unwrap();
                assert_eq!(c.records.len(), whole, "cut {cut}");
                assert_eq!(c.damage.is_none(), at_boundary, "cut {cut}");
                if let Some(d) = &c.damage {
                    assert_eq!(d.offset, bounds[whole]);
                }
            }
            for (newest, mode) in [
                (false, RecoveryMode::TolerateTornTail),
                (true, RecoveryMode::AbsoluteConsistency),
            ] {
                let r = read(&fs, &cut_path, newest, mode);
                if at_boundary {
                    assert_eq!(r.unwrap().records.len(), whole);
                } else {
                    assert_eq!(corruption_offset(r), bounds[whole], "cut {cut}");
                }
            }
        }
    }
}

#[test]
fn flipped_byte_in_synced_record_is_corruption() {
    let (fs, dir) = setup();
    let (path, bounds) = three_records(&fs, &dir, true);
    let len = fs.read(&path).unwrap().len();
    for rec in 0..2 {
        for at in bounds[rec]..bounds[rec + 1] {
            let pristine = fs.read(&path).unwrap();
            fs.corrupt_byte(&path, at as usize, 0x40).unwrap();
            let r = read(&fs, &path, true, RecoveryMode::TolerateTornTail);
            assert_eq!(corruption_offset(r), bounds[rec], "byte {at}");
            // PointInTime keeps the prefix instead.
            let c = read(&fs, &path, true, RecoveryMode::PointInTime).unwrap();
            assert_eq!(c.records.len(), rec);
            assert_eq!(c.damage.unwrap().offset, bounds[rec]);
            fs.corrupt_byte(&path, at as usize, 0x40).unwrap();
            assert_eq!(fs.read(&path).unwrap(), pristine);
        }
    }
    assert_eq!(len as u64, bounds[3]);
}

#[test]
fn flipped_byte_in_last_record_is_a_torn_tail() {
    let (fs, dir) = setup();
    let (path, bounds) = three_records(&fs, &dir, true);
    for at in bounds[2]..bounds[3] {
        fs.corrupt_byte(&path, at as usize, 0x01).unwrap();
        let c = read(&fs, &path, true, RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.damage.as_ref().unwrap().offset, bounds[2]);
        assert!(read(&fs, &path, false, RecoveryMode::TolerateTornTail).is_err());
        assert!(read(&fs, &path, true, RecoveryMode::AbsoluteConsistency).is_err());
        fs.corrupt_byte(&path, at as usize, 0x01).unwrap();
    }
}

#[test]
fn damage_in_unsynced_records_is_a_torn_tail() {
    // Without syncs every durable_offset is 0, so damage in any record is tolerated when
    // newest (a power loss may lose any unsynced page, not just the last).
    let (fs, dir) = setup();
    let (path, bounds) = three_records(&fs, &dir, false);
    fs.corrupt_byte(&path, bounds[1] as usize + 20, 0xff)
        .unwrap();
    let c = read(&fs, &path, true, RecoveryMode::TolerateTornTail).unwrap();
    assert_eq!(c.records.len(), 1);
    assert_eq!(c.damage.unwrap().offset, bounds[1]);
}

#[test]
fn lost_unsynced_page_in_the_middle() {
    // A synced, B and C unsynced: B's bytes lost (zeroed) while C survived is a torn tail;
    // had B been synced before C was written, the same loss is corruption.
    for sync_b in [false, true] {
        let (fs, dir) = setup();
        let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
        let bs: Vec<_> = (0..3).map(small_batch).collect();
        let mut bounds = vec![0];
        for (i, b) in bs.iter().enumerate() {
            w.append(&[RecordRef {
                first_version: Version(1 + 2 * i as u64),
                commit_micros: 0,
                entries: b,
            }])
            .unwrap();
            if i == 0 || (i == 1 && sync_b) {
                w.sync().unwrap();
            }
            bounds.push(w.len());
        }
        let mut bytes = fs.read(w.path()).unwrap();
        bytes[bounds[1] as usize..bounds[2] as usize].fill(0);
        let mut f = fs.create(w.path()).unwrap();
        f.write_all(&bytes).unwrap();
        let r = read(&fs, w.path(), true, RecoveryMode::TolerateTornTail);
        if sync_b {
            assert_eq!(corruption_offset(r), bounds[1]);
        } else {
            let c = r.unwrap();
            assert_eq!(c.records.len(), 1);
            assert!(c.damage.unwrap().reason.contains("zero-filled"));
        }
    }
}

#[test]
fn zero_filled_and_garbage_tails() {
    let (fs, dir) = setup();
    let (path, bounds) = three_records(&fs, &dir, true);
    let full = fs.read(&path).unwrap();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let garbage: Vec<u8> = (0..5000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    for tail in [vec![0u8; 3], vec![0u8; 4096], garbage] {
        let mut bytes = full.clone();
        bytes.extend_from_slice(&tail);
        let mut f = fs.create(&path).unwrap();
        f.write_all(&bytes).unwrap();
        let c = read(&fs, &path, true, RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(c.records.len(), 3);
        assert_eq!(c.damage.unwrap().offset, bounds[3]);
        assert_eq!(
            corruption_offset(read(&fs, &path, false, RecoveryMode::TolerateTornTail)),
            bounds[3]
        );
        assert_eq!(
            corruption_offset(read(&fs, &path, true, RecoveryMode::AbsoluteConsistency)),
            bounds[3]
        );
    }
}

#[test]
fn log_number_mismatch() {
    let (fs, dir) = setup();
    let (path, bounds) = three_records(&fs, &dir, true);
    // The whole file read as another log: the first frame is damaged; with later frames
    // also foreign, nothing claims synced data for log 8, so newest tolerates it.
    let c = read_segment(&fs, &path, 8, true, RecoveryMode::TolerateTornTail).unwrap();
    assert!(c.records.is_empty());
    assert!(c.damage.unwrap().reason.contains("belongs to log 7"));
    assert!(read_segment(&fs, &path, 8, false, RecoveryMode::TolerateTornTail).is_err());
    // A stale frame from log 6 spliced into the middle of log 7's synced data.
    let full = fs.read(&path).unwrap();
    let other = PathBuf::from("/db/wal/000006.wal");
    let mut w = SegmentWriter::create(&fs, &dir, 6).unwrap();
    let b = small_batch(1);
    w.append(&[RecordRef {
        first_version: Version(3),
        commit_micros: 1003,
        entries: &b,
    }])
    .unwrap();
    let stale = fs.read(&other).unwrap();
    assert_eq!(stale.len() as u64, bounds[2] - bounds[1]);
    let mut spliced = full.clone();
    spliced[bounds[1] as usize..bounds[2] as usize].copy_from_slice(&stale);
    let mut f = fs.create(&path).unwrap();
    f.write_all(&spliced).unwrap();
    let r = read(&fs, &path, true, RecoveryMode::TolerateTornTail);
    assert_eq!(corruption_offset(r), bounds[1]);
}

#[test]
fn version_discontinuity_is_damage() {
    let (fs, dir) = setup();
    // Two writers' frames glued together: versions 1..=2 then 10..=11.
    let (p1, _) = three_records(&fs, &dir, false);
    let a = fs.read(&p1).unwrap();
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    let b = small_batch(0);
    w.append(&[RecordRef {
        first_version: Version(10),
        commit_micros: 0,
        entries: &b,
    }])
    .unwrap();
    let second = fs.read(w.path()).unwrap();
    let mut glued = a.clone(); // records with versions 1, 3, 5
    glued.extend_from_slice(&second); // then version 10
    let mut f = fs.create(w.path()).unwrap();
    f.write_all(&glued).unwrap();
    let c = read(&fs, w.path(), true, RecoveryMode::PointInTime).unwrap();
    assert_eq!(c.records.len(), 3);
    let d = c.damage.unwrap();
    assert_eq!(d.offset, a.len() as u64);
    assert!(d.reason.contains("discontinuity"), "{}", d.reason);
}

#[test]
fn crash_after_unsynced_appends_recovers_a_prefix() {
    let (fs, dir) = setup();
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    let bs: Vec<_> = (0..6).map(small_batch).collect();
    let rec = |i: usize| RecordRef {
        first_version: Version(1 + 2 * i as u64),
        commit_micros: 0,
        entries: &bs[i],
    };
    w.append(&[rec(0), rec(1)]).unwrap();
    w.sync().unwrap();
    w.append(&[rec(2)]).unwrap();
    w.append(&[rec(3), rec(4)]).unwrap();
    let crashed = fs.crash_clone();
    let c = read(&crashed, w.path(), true, RecoveryMode::TolerateTornTail).unwrap();
    assert_eq!(c.records.len(), 2);
    assert_eq!(c.damage, None);
    assert_eq!(c.records[1].last_version(), Version(4));
    // Everything the live process wrote is readable.
    let live = read(&fs, w.path(), true, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(live.records.len(), 5);
}

#[test]
fn missing_file_is_an_io_error() {
    let (fs, dir) = setup();
    let r = read(
        &fs,
        &dir.join("000001.wal"),
        true,
        RecoveryMode::TolerateTornTail,
    );
    assert!(matches!(r, Err(Error::Io { .. })));
}

#[test]
fn real_fs_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = RealFs;
    let b = small_batch(9);
    let mut w = SegmentWriter::create(&fs, tmp.path(), 123).unwrap();
    w.append(&[RecordRef {
        first_version: Version(5),
        commit_micros: 77,
        entries: &b,
    }])
    .unwrap();
    w.sync().unwrap();
    let path = w.path().to_path_buf();
    drop(w);
    assert_eq!(fs.list(tmp.path()).unwrap(), vec!["000123.wal".to_string()]);
    let c = read_segment(&fs, &path, 123, true, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(c.records.len(), 1);
    assert_eq!(owned(&c.records[0]), owned_of(&b));
}

fn owned_of(b: &BatchEntries) -> Owned {
    b.iter()
        .map(|e| {
            let (k, key, v) = e.unwrap();
            (k, key.to_vec(), v.to_vec())
        })
        .collect()
}

/// Reads `bytes` as segment `LOG` in every mode; must not panic. When Ok, the records are a
/// prefix of `original` (if given) and their entries iterate without errors.
fn check_never_panics(bytes: &[u8], original: Option<&[Owned]>) {
    let (fs, dir) = setup();
    let path = dir.join(segment_file_name(LOG));
    let mut f = fs.create(&path).unwrap();
    f.write_all(bytes).unwrap();
    for mode in [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::PointInTime,
        RecoveryMode::AbsoluteConsistency,
    ] {
        for newest in [true, false] {
            if let Ok(c) = read(&fs, &path, newest, mode) {
                let got: Vec<Owned> = c.records.iter().map(owned).collect();
                if let Some(orig) = original {
                    assert!(got.len() <= orig.len());
                    assert_eq!(&got[..], &orig[..got.len()]);
                }
                for w in c.records.windows(2) {
                    assert_eq!(w[1].first_version, w[0].next_version());
                }
                let _ = c.records.iter().map(Record::last_version).count();
            }
        }
    }
}

fn arb_entries() -> impl Strategy<Value = Owned> {
    proptest::collection::vec(
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..12),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(put, k, v)| {
                if put {
                    (Kind::Put, k, v)
                } else {
                    (Kind::Delete, k, Vec::new())
                }
            }),
        0..5,
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
    ZeroRange(usize, usize),
    Insert(usize, Vec<u8>),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(a, x)| Mutation::Flip(a, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Append),
        (any::<usize>(), 1usize..64).prop_map(|(a, n)| Mutation::ZeroRange(a, n)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match m {
        Mutation::Flip(a, x) => {
            if let Some(b) = bytes.get_mut(a % n) {
                *b ^= x;
            }
        }
        Mutation::Truncate(a) => bytes.truncate(a % n),
        Mutation::Append(t) => bytes.extend_from_slice(t),
        Mutation::ZeroRange(a, len) => {
            let s = (a % n).min(bytes.len());
            let e = (s + len).min(bytes.len());
            bytes[s..e].fill(0);
        }
        Mutation::Insert(a, t) => {
            let at = (a % n).min(bytes.len());
            bytes.splice(at..at, t.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_random_batches(batches in proptest::collection::vec(arb_entries(), 0..12),
                                 syncs in proptest::collection::vec(any::<bool>(), 12)) {
        let (fs, dir) = setup();
        let encoded: Vec<_> = batches.iter().map(batch).collect();
        let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
        let mut v = 1;
        for (i, b) in encoded.iter().enumerate() {
            w.append(&[RecordRef { first_version: Version(v), commit_micros: i as u64, entries: b }]).unwrap();
            v += u64::from(b.count());
            if syncs[i] { w.sync().unwrap(); }
        }
        let c = read(&fs, w.path(), false, RecoveryMode::AbsoluteConsistency).unwrap();
        let got: Vec<Owned> = c.records.iter().map(owned).collect();
        prop_assert_eq!(got, batches);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_never_panics(&bytes, None);
    }

    #[test]
    fn random_bytes_after_a_plausible_header_never_panic(
        len in 0u32..200, count in any::<u32>(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Frames with a correct checksum and log number but arbitrary entries.
        let mut payload = Vec::new();
        payload.extend_from_slice(&LOG.to_le_bytes());
        payload.extend_from_slice(&[0; 16]);
        payload.extend_from_slice(&[0; 8]);
        payload.extend_from_slice(&count.to_le_bytes());
        payload.extend_from_slice(&body);
        payload.truncate(len as usize);
        let l = payload.len() as u32;
        let mut frame = crate::frame::frame_crc(l.to_le_bytes(), &payload).to_le_bytes().to_vec();
        frame.extend_from_slice(&l.to_le_bytes());
        frame.extend_from_slice(&payload);
        check_never_panics(&frame, None);
    }

    #[test]
    fn mutated_segments_never_panic_and_yield_a_prefix(
        batches in proptest::collection::vec(arb_entries(), 1..6),
        sync_each in any::<bool>(),
        mutations in proptest::collection::vec(arb_mutation(), 1..4)) {
        let (fs, dir) = setup();
        let encoded: Vec<_> = batches.iter().map(batch).collect();
        let (path, _) = write_segment(&fs, &dir, &encoded, sync_each);
        let mut bytes = fs.read(&path).unwrap();
        for m in &mutations { apply(&mut bytes, m); }
        check_never_panics(&bytes, Some(&batches));
    }
}

#[test]
fn frame_constants_match_the_docs() {
    assert_eq!(FRAME_HEADER_LEN, 8);
    assert_eq!(PAYLOAD_HEADER_LEN, 36);
}
