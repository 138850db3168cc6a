//! Tests of the writer and reader together: round trips, golden bytes, torn tails versus
//! corruption, and fuzzing of the decoder. Segments are written in format v2 by the
//! writer; `tests_v1` reads v1 segments and mixes of both.

use crate::frame;
use crate::frame::{MAX_FRAME_HEADER_LEN, MAX_PAYLOAD_HEADER_LEN};
use crate::header::HEADER_LEN;
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

/// The golden batch of `docs/format/wal.md`: put("k", "v1"), delete("x").
pub(crate) fn golden_entries() -> BatchEntries {
    let mut b = BatchEntries::new();
    b.put(b"k", b"v1");
    b.delete(b"x");
    b
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The golden v2 segment of `docs/format/wal.md`: log 7, one record at version 42,
/// commit_micros 1_700_000_000_000_000, the golden batch, written to a fresh segment.
const GOLDEN_V2: &str = "\
    89434b5657414cff dec20390 24000000 \
    0700000000000000 0800000000000000 0200000000000000 0000000000000000 00000000 \
    27cee8c7 15 \
    00 2a 8080f9c0c1c48203 02 \
    01 01 02 6b 7631 \
    00 01 00 78";

/// Writes the given batches, one append each, syncing after each append if `sync`.
/// Returns the segment path and the frame boundaries (the first frame's offset, after the
/// header, then each frame's end).
fn write_segment(
    fs: &MemFs,
    dir: &Path,
    batches: &[BatchEntries],
    sync: bool,
) -> (PathBuf, Vec<u64>) {
    let mut w = SegmentWriter::create(fs, dir, LOG).unwrap();
    let mut bounds = vec![HEADER_LEN as u64];
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
    let b = golden_entries();
    let mut w = SegmentWriter::create(&fs, &dir, 7).unwrap();
    w.append(&[RecordRef {
        first_version: Version(42),
        commit_micros: 1_700_000_000_000_000,
        entries: &b,
    }])
    .unwrap();
    assert_eq!(w.path(), Path::new("/db/wal/000007.wal"));
    let bytes = fs.read(w.path()).unwrap();
    let expect: String = GOLDEN_V2.split_whitespace().collect();
    assert_eq!(hex(&bytes), expect);
    assert_eq!(bytes.len(), 78);
    let c = read(&fs, w.path(), true, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(c.records.len(), 1);
    let r = &c.records[0];
    assert_eq!((r.offset, r.count, r.durable_offset()), (52, 2, 0));
    assert_eq!(r.commit_micros, 1_700_000_000_000_000);
    assert_eq!(r.last_version(), Version(43));
    assert_eq!(owned(r), owned_of(&b));
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

/// What reading the first `cut` bytes of a segment with frame boundaries `bounds` must
/// give: the whole records, and the damage offset unless `cut` is a boundary. An empty
/// file is an empty segment; a cut inside the header is damage at 0.
fn expected_after_cut(bounds: &[u64], cut: u64) -> (usize, Option<u64>) {
    if cut == 0 {
        return (0, None);
    }
    if cut < bounds[0] {
        return (0, Some(0));
    }
    let whole = bounds.iter().filter(|&&b| b <= cut).count() - 1;
    (whole, (!bounds.contains(&cut)).then(|| bounds[whole]))
}

/// Every cut of the segment at `path` is a torn tail when newest, and an error when
/// not newest or in `AbsoluteConsistency` mode, unless it falls on a boundary.
pub(crate) fn check_every_cut(fs: &MemFs, path: &Path, log: u64, bounds: &[u64]) {
    let full = fs.read(path).unwrap();
    for cut in 0..=full.len() {
        let mut f = fs.create(path).unwrap();
        f.write_all(&full[..cut]).unwrap();
        let (whole, damage) = expected_after_cut(bounds, cut as u64);
        for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime] {
            let c = read_segment(fs, path, log, true, mode).unwrap();
            assert_eq!(c.records.len(), whole, "cut {cut}");
            assert_eq!(c.damage.map(|d| d.offset), damage, "cut {cut}");
        }
        for (newest, mode) in [
            (false, RecoveryMode::TolerateTornTail),
            (true, RecoveryMode::AbsoluteConsistency),
        ] {
            let r = read_segment(fs, path, log, newest, mode);
            match damage {
                None => assert_eq!(r.unwrap().records.len(), whole),
                Some(at) => assert_eq!(corruption_offset(r), at, "cut {cut}"),
            }
        }
    }
}

#[test]
fn truncation_at_every_offset() {
    let (fs, dir) = setup();
    for sync in [false, true] {
        let (path, bounds) = three_records(&fs, &dir, sync);
        check_every_cut(&fs, &path, LOG, &bounds);
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
        let zeros = tail.iter().all(|&b| b == 0);
        let mut bytes = full.clone();
        bytes.extend_from_slice(&tail);
        let mut f = fs.create(&path).unwrap();
        f.write_all(&bytes).unwrap();
        for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime] {
            let c = read(&fs, &path, true, mode).unwrap();
            assert_eq!(c.records.len(), 3);
            // Zeros to the end of the newest segment are preallocated space; garbage is damage.
            let (damage, preallocated) = if zeros {
                (None, Some(bounds[3]))
            } else {
                (Some(bounds[3]), None)
            };
            assert_eq!(
                (c.damage.map(|d| d.offset), c.preallocated),
                (damage, preallocated)
            );
        }
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

/// A preallocating writer grows its segment in whole steps of zeros; a crash (or a live
/// reader) sees the frames then zeros, which end the newest segment (the synced records
/// survive, nothing is damage), and `finish` cuts them off so the segment reads clean as
/// an older one. Unfinished, an older segment's zeros are corruption: why the engine
/// finishes a segment before it writes the next.
#[test]
fn preallocated_segments_grow_in_steps_and_finish_cuts_the_zeros() {
    let (fs, dir) = setup();
    let step = 512;
    let mut w = SegmentWriter::create(&fs, &dir, LOG)
        .unwrap()
        .preallocating(step);
    let mut v = 1;
    let mut sizes = Vec::new();
    for i in 0..100u8 {
        let b = small_batch(i);
        let r = RecordRef {
            first_version: Version(v),
            commit_micros: 1000,
            entries: &b,
        };
        w.append(&[r]).unwrap();
        w.sync().unwrap();
        v += u64::from(b.count());
        let size = fs.file_size(w.path()).unwrap();
        assert!(size % step == 0 && size >= w.len() && size - w.len() < step);
        sizes.push(size);
    }
    assert!(sizes.first() < sizes.last(), "the segment grew: {sizes:?}");
    let path = w.path().to_path_buf();
    let crashed = fs.crash_clone();
    let live = read(&crashed, &path, true, RecoveryMode::TolerateTornTail).unwrap();
    assert_eq!(live.records.len(), 100);
    assert_eq!((live.damage, live.preallocated), (None, Some(w.len())));
    assert_eq!(
        corruption_offset(read(&crashed, &path, false, RecoveryMode::TolerateTornTail)),
        w.len()
    );
    w.finish().unwrap();
    let finished = fs.crash_clone();
    assert_eq!(finished.file_size(&path).unwrap(), w.len());
    let older = read(&finished, &path, false, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!((older.records.len(), older.damage), (100, None));
}

#[test]
fn log_number_mismatch() {
    let (fs, dir) = setup();
    let (path, _) = three_records(&fs, &dir, true);
    // The whole file read as another log: the header is damaged; with every frame's
    // checksum also wrong for log 8, nothing claims synced data, so newest tolerates it.
    let c = read_segment(&fs, &path, 8, true, RecoveryMode::TolerateTornTail).unwrap();
    assert!(c.records.is_empty());
    let d = c.damage.unwrap();
    assert!(d.reason.contains("belongs to log 7"), "{}", d.reason);
    assert_eq!(d.offset, 0);
    assert!(read_segment(&fs, &path, 8, false, RecoveryMode::TolerateTornTail).is_err());
}

#[test]
fn a_stale_frame_from_another_segment_is_rejected() {
    // Frame 1 of log 7 re-encoded exactly as log 6 would have written it at the same place
    // (same offset, fields and entries: the bytes differ only in the checksum, which is
    // valid for log 6), spliced over the real frame 1 in synced data.
    let (fs, dir) = setup();
    let (path, bounds) = three_records(&fs, &dir, true);
    let mut bytes = fs.read(&path).unwrap();
    let c = read(&fs, &path, false, RecoveryMode::AbsoluteConsistency).unwrap();
    let chain = frame::Chain {
        next_version: Some(c.records[0].next_version().get()),
        micros: c.records[0].commit_micros,
    };
    let r = &c.records[1];
    let h = frame::Header {
        durable_offset: r.durable_offset(),
        first_version: r.first_version.get(),
        commit_micros: r.commit_micros,
        count: r.count,
    };
    let mut stale = Vec::new();
    frame::encode(
        &mut stale,
        &frame::Seed::new(6),
        bounds[1],
        chain,
        &h,
        r.entry_bytes(),
    );
    let real = &bytes[bounds[1] as usize..bounds[2] as usize];
    assert_eq!(stale.len(), real.len());
    assert_ne!(stale[..4], real[..4]);
    assert_eq!(stale[4..], real[4..]);
    bytes[bounds[1] as usize..bounds[2] as usize].copy_from_slice(&stale);
    let mut f = fs.create(&path).unwrap();
    f.write_all(&bytes).unwrap();
    let r = read(&fs, &path, true, RecoveryMode::TolerateTornTail);
    assert_eq!(corruption_offset(r), bounds[1]);
    let c = read(&fs, &path, true, RecoveryMode::PointInTime).unwrap();
    assert!(c.damage.unwrap().reason.contains("checksum"));
    // A whole segment of log 6 copied over log 7's file: its header names log 6.
    let mut w = SegmentWriter::create(&fs, &dir, 6).unwrap();
    w.append(&[RecordRef {
        first_version: Version(1),
        commit_micros: 0,
        entries: &small_batch(0),
    }])
    .unwrap();
    let copied = fs.read(w.path()).unwrap();
    let mut f = fs.create(&path).unwrap();
    f.write_all(&copied).unwrap();
    let r = read(&fs, &path, false, RecoveryMode::TolerateTornTail);
    assert_eq!(corruption_offset(r), 0);
}

#[test]
fn version_discontinuity_is_damage() {
    let (fs, dir) = setup();
    // Two writers' frames glued together: versions 1..=6 then 10..=11.
    let (p1, _) = three_records(&fs, &dir, false);
    let a = fs.read(&p1).unwrap();
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    let b = small_batch(0);
    w.append(&[RecordRef {
        first_version: Version(10),
        commit_micros: 2000,
        entries: &b,
    }])
    .unwrap();
    let second = fs.read(w.path()).unwrap();
    let mut glued = a.clone(); // records with versions 1, 3, 5
    glued.extend_from_slice(&second[HEADER_LEN..]); // then version 10, without its header
    let mut f = fs.create(w.path()).unwrap();
    f.write_all(&glued).unwrap();
    let c = read(&fs, w.path(), true, RecoveryMode::PointInTime).unwrap();
    assert_eq!(c.records.len(), 3);
    let d = c.damage.unwrap();
    assert_eq!(d.offset, a.len() as u64);
    assert!(d.reason.contains("discontinuity"), "{}", d.reason);
}

#[test]
fn writer_refuses_a_commit_time_that_goes_back() {
    let (fs, dir) = setup();
    let mut w = SegmentWriter::create(&fs, &dir, LOG).unwrap();
    let b = small_batch(0);
    let r = |v, t| RecordRef {
        first_version: Version(v),
        commit_micros: t,
        entries: &b,
    };
    w.append(&[r(1, 5000)]).unwrap();
    let len = w.len();
    assert!(matches!(
        w.append(&[r(3, 5000), r(5, 4999)]),
        Err(Error::Refused { .. })
    ));
    assert_eq!(w.len(), len);
    w.append(&[r(3, 5000), r(5, 6000)]).unwrap();
    let c = read(&fs, w.path(), false, RecoveryMode::AbsoluteConsistency).unwrap();
    let times: Vec<u64> = c.records.iter().map(|r| r.commit_micros).collect();
    assert_eq!(times, [5000, 5000, 6000]);
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
        // v2: a valid segment header, then a frame with a correct checksum and arbitrary
        // fields and entries.
        let mut payload = Vec::new();
        crate::varint::put(&mut payload, 0);
        crate::varint::put(&mut payload, 1);
        crate::varint::put(&mut payload, 0);
        crate::varint::put(&mut payload, u64::from(count));
        payload.extend_from_slice(&body);
        payload.truncate(len as usize);
        let mut framed = Vec::new();
        crate::varint::put(&mut framed, payload.len() as u64);
        framed.extend_from_slice(&payload);
        let mut seg = crate::header::encode(LOG).to_vec();
        seg.extend_from_slice(&frame::Seed::new(LOG).crc(&framed).to_le_bytes());
        seg.extend_from_slice(&framed);
        check_never_panics(&seg, None);
        // v1: the same with a v1 frame.
        let mut payload = Vec::new();
        payload.extend_from_slice(&LOG.to_le_bytes());
        payload.extend_from_slice(&[0; 24]);
        payload.extend_from_slice(&count.to_le_bytes());
        payload.extend_from_slice(&body);
        payload.truncate(len as usize);
        let mut v1 = Vec::new();
        envelope::encode(&payload, &mut v1);
        check_never_panics(&v1, None);
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
    assert_eq!(HEADER_LEN, 52);
    assert_eq!(MAX_FRAME_HEADER_LEN, 9);
    assert_eq!(MAX_PAYLOAD_HEADER_LEN, 35);
    assert_eq!(MAX_BATCH_BYTES, (1 << 30) - 35);
}
