//! Format v1 (read only) and its meeting with v2: v1 segments as chronokv wrote them before
//! v2 still read, stores whose older segments are v1 and newer ones v2, a v2 segment that a
//! v1 reader refuses instead of truncating, non-canonical v2 encodings, and the bytes a put
//! costs in each format.

use crate::frame::Seed;
use crate::header::{self, HEADER_LEN};
use crate::tests::{golden_entries, hex};
use crate::v1::{self, encode, Header};
use crate::*;
use chronokv_snapshot::Version;
use chronokv_vfs::{MemFs, Vfs};
use std::path::{Path, PathBuf};

const LOG: u64 = 7;

fn small_batch(i: u8) -> BatchEntries {
    let mut b = BatchEntries::new();
    b.put(&[b'k', i], &[b'v'; 5]);
    b.delete(&[b'd', i]);
    b
}

/// A v1 segment of `batches` (versions from `first`), as the v1 writer made it: with
/// `sync`, every frame records the end of the one before as durable. Returns the bytes and
/// the frame boundaries.
fn v1_segment(log: u64, first: u64, batches: &[BatchEntries], sync: bool) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    let mut bounds = vec![0];
    let mut v = first;
    for b in batches {
        let h = Header {
            log_number: log,
            durable_offset: if sync { out.len() as u64 } else { 0 },
            first_version: v,
            commit_micros: 1000 + v,
            count: b.count(),
        };
        encode::frame(&mut out, &h, b);
        v += u64::from(b.count());
        bounds.push(out.len() as u64);
    }
    (out, bounds)
}

fn put_file(fs: &MemFs, log: u64, bytes: &[u8]) -> PathBuf {
    let dir = Path::new("/db/wal");
    fs.create_dir_all(dir).unwrap();
    let path = dir.join(segment_file_name(log));
    fs.create(&path).unwrap().write_all(bytes).unwrap();
    path
}

fn offset_of(r: Result<SegmentContents, Error>) -> u64 {
    match r {
        Err(Error::Corruption { offset, .. }) => offset,
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_v1_segment_reads_as_before() {
    let fs = MemFs::new();
    let batches: Vec<_> = (0..3).map(small_batch).collect();
    for sync in [false, true] {
        let (bytes, bounds) = v1_segment(LOG, 1, &batches, sync);
        let path = put_file(&fs, LOG, &bytes);
        let c = read_segment(&fs, &path, LOG, false, RecoveryMode::AbsoluteConsistency).unwrap();
        assert_eq!(c.records.len(), 3);
        for (r, b) in c.records.iter().zip(&batches) {
            assert_eq!(
                r.entry_bytes().as_ref(),
                b.as_bytes(),
                "converted to v2 entries"
            );
        }
        assert_eq!(c.records[2].next_version(), Version(7));
        assert_eq!(c.records[1].commit_micros, 1003);
        // Torn tails at every offset, as in v2.
        crate::tests::check_every_cut(&fs, &path, LOG, &bounds);
    }
}

#[test]
fn damage_in_a_synced_v1_record_is_corruption_and_in_the_last_a_torn_tail() {
    let fs = MemFs::new();
    let batches: Vec<_> = (0..3).map(small_batch).collect();
    let (bytes, bounds) = v1_segment(LOG, 1, &batches, true);
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let path = put_file(&fs, LOG, &bad);
        let r = read_segment(&fs, &path, LOG, true, RecoveryMode::TolerateTornTail);
        if at < bounds[2] as usize {
            let rec = bounds.iter().filter(|&&b| b <= at as u64).count() - 1;
            assert_eq!(offset_of(r), bounds[rec], "byte {at}");
        } else {
            let c = r.unwrap();
            assert_eq!((c.records.len(), c.damage.unwrap().offset), (2, bounds[2]));
        }
    }
}

#[test]
fn a_store_with_older_v1_and_newer_v2_segments_replays_in_order() {
    // What the first open after the upgrade may leave when it stops before its replayed
    // records reached a run: v1 segments 3 and 4, then the v2 segment 5 it started.
    let fs = MemFs::new();
    let (s3, _) = v1_segment(3, 1, &[small_batch(0), small_batch(1)], true);
    let (s4, _) = v1_segment(4, 5, &[small_batch(2)], false);
    put_file(&fs, 3, &s3);
    put_file(&fs, 4, &s4);
    let mut w = SegmentWriter::create(&fs, Path::new("/db/wal"), 5).unwrap();
    let b = small_batch(3);
    w.append(&[RecordRef {
        first_version: Version(7),
        commit_micros: 9,
        entries: &b,
    }])
    .unwrap();
    let mut next = Version(1);
    for (log, newest) in [(3, false), (4, false), (5, true)] {
        let path = Path::new("/db/wal").join(segment_file_name(log));
        let c = read_segment(&fs, &path, log, newest, RecoveryMode::default()).unwrap();
        assert_eq!(c.damage, None);
        for r in &c.records {
            assert_eq!(r.first_version, next, "log {log}");
            next = r.next_version();
            assert!(r.entries().all(|e| e.is_ok()));
        }
    }
    assert_eq!(next, Version(9));
}

#[test]
fn a_v1_reader_refuses_a_v2_segment_instead_of_truncating_it() {
    // An older chronokv opening an upgraded store: the magic is damage at offset 0 to it,
    // and the header's v1-shaped frame at offset 8 records 8 synced bytes past that damage,
    // so its torn-tail rule reports corruption (for the newest segment as for any other).
    let fs = MemFs::new();
    fs.create_dir_all(Path::new("/db/wal")).unwrap();
    let mut w = SegmentWriter::create(&fs, Path::new("/db/wal"), LOG).unwrap();
    let b = small_batch(0);
    w.append(&[RecordRef {
        first_version: Version(1),
        commit_micros: 0,
        entries: &b,
    }])
    .unwrap();
    let bytes = fs.read(w.path()).unwrap();
    let (records, damage) = v1::scan(&bytes, LOG);
    assert!(records.is_empty());
    let d = damage.unwrap();
    assert_eq!(d.offset, 0);
    assert!(d.reason.contains("exceeds"), "{}", d.reason);
    assert_eq!(v1::find_durable_frame_after(&bytes, LOG, 0), Some((8, 8)));
    // The same holds for this reader when the magic itself rots.
    let mut bad = bytes.clone();
    bad[1] ^= 0x20;
    let path = put_file(&fs, LOG, &bad);
    let r = read_segment(&fs, &path, LOG, true, RecoveryMode::TolerateTornTail);
    assert_eq!(offset_of(r), 0);
}

/// A v2 segment of log `LOG` holding one frame whose `len` varint and payload are `body`,
/// with a valid checksum.
fn v2_with_frame(body: &[u8]) -> Vec<u8> {
    let mut seg = header::encode(LOG).to_vec();
    seg.extend_from_slice(&Seed::new(LOG).crc(body).to_le_bytes());
    seg.extend_from_slice(body);
    seg
}

#[test]
fn non_canonical_v2_encodings_are_damage_even_with_a_valid_checksum() {
    let fs = MemFs::new();
    // len 7: durable 0, version_gap 1, micros 0, count 1, entry put("", "") = 01 00 00.
    let good = [7u8, 0, 1, 0, 1, 1, 0, 0];
    let path = put_file(&fs, LOG, &v2_with_frame(&good));
    let c = read_segment(&fs, &path, LOG, false, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(c.records.len(), 1);
    let cases: [(&[u8], &str); 6] = [
        // len 7 as two bytes
        (&[0x87, 0x00, 0, 1, 0, 1, 1, 0, 0], "frame length"),
        // durable 0 as two bytes (len 8)
        (&[8, 0x80, 0x00, 1, 0, 1, 1, 0, 0], "durable"),
        // count 1 as two bytes
        (&[8, 0, 1, 0, 0x81, 0x00, 1, 0, 0], "count"),
        // the entry's key_len 0 as two bytes
        (&[8, 0, 1, 0, 1, 1, 0x80, 0x00, 0], "key_len"),
        // durable 0 stored as a distance of 52 back from the frame at 52: the longer form
        (&[7, 0x69, 1, 0, 1, 1, 0, 0], "durable"),
        // count above u32::MAX
        (
            &[11, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x1f, 1, 0, 0],
            "count",
        ),
    ];
    for (body, field) in cases {
        let path = put_file(&fs, LOG, &v2_with_frame(body));
        let c = read_segment(&fs, &path, LOG, true, RecoveryMode::PointInTime).unwrap();
        let d = c.damage.expect(field);
        assert_eq!(
            (c.records.len(), d.offset),
            (0, HEADER_LEN as u64),
            "{field}"
        );
        assert!(d.reason.contains(field), "{field}: {}", d.reason);
    }
}

#[test]
fn a_v2_header_of_a_newer_version_is_an_error_in_every_mode() {
    let fs = MemFs::new();
    let mut payload = [0u8; 36];
    payload[0..8].copy_from_slice(&LOG.to_le_bytes());
    payload[8..16].copy_from_slice(&8u64.to_le_bytes());
    payload[16..24].copy_from_slice(&3u64.to_le_bytes());
    let mut seg = header::MAGIC.to_vec();
    envelope::encode(&payload, &mut seg);
    let path = put_file(&fs, LOG, &seg);
    for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime] {
        match read_segment(&fs, &path, LOG, true, mode) {
            Err(Error::Corruption {
                offset: 0, reason, ..
            }) => assert!(reason.contains("version 3")),
            other => panic!("{other:?}"),
        }
    }
}

/// The bytes one record with `entries` takes in each format, as the second record of a
/// segment (v2's relative fields at their usual sizes: same commit time, unsynced).
fn frame_bytes(entries: &BatchEntries) -> (usize, usize) {
    let fs = MemFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    let mut w = SegmentWriter::create(&fs, Path::new("/db"), LOG).unwrap();
    let first = BatchEntries::new();
    let t = 1_700_000_000_000_000;
    let r = |v, e| RecordRef {
        first_version: Version(v),
        commit_micros: t,
        entries: e,
    };
    w.append(&[r(100, &first)]).unwrap();
    let before = w.len();
    w.append(&[r(100, entries)]).unwrap();
    let v2 = (w.len() - before) as usize;
    let mut v1 = Vec::new();
    let h = Header {
        log_number: LOG,
        durable_offset: 0,
        first_version: 100,
        commit_micros: t,
        count: entries.count(),
    };
    encode::frame(&mut v1, &h, entries);
    (v1.len(), v2)
}

#[test]
fn bytes_per_put_v1_and_v2() {
    let (key, value) = ([7u8; 16], [9u8; 100]);
    let mut one = BatchEntries::new();
    one.put(&key, &value);
    // v1: 8 + 36 + 9 + 116; v2: 4 + 1 (len) + 4 (fields) + 3 + 116.
    assert_eq!(frame_bytes(&one), (169, 128));
    let mut ten = BatchEntries::new();
    for _ in 0..10 {
        ten.put(&key, &value);
    }
    // v1: 8 + 36 + 10 × 125; v2: 4 + 2 (len 1194) + 4 + 10 × 119.
    assert_eq!(frame_bytes(&ten), (1294, 1200));
    // Synced every put: the distance back to the last sync is 0, one byte as unsynced.
    let fs = MemFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    let mut w = SegmentWriter::create(&fs, Path::new("/db"), LOG).unwrap();
    let mut sizes = Vec::new();
    for v in 0..3 {
        let before = w.len();
        w.append(&[RecordRef {
            first_version: Version(v),
            commit_micros: 1_700_000_000_000_000 + v * 1000,
            entries: &one,
        }])
        .unwrap();
        w.sync().unwrap();
        sizes.push(w.len() - before);
    }
    // The first: the header, and a frame with the absolute time (8 bytes), whose 130-byte
    // payload needs a 2-byte len; then a 2-byte time delta (1 000 µs).
    assert_eq!(sizes, [52 + 136, 129, 129]);
    // v1's golden batch is 22 bytes of entries, v2's 10.
    assert_eq!(hex(golden_entries().as_bytes()), "0101026b763100010078");
}
