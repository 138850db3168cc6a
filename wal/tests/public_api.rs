//! Uses the crate only through its public API, the way the engine will.

use chronokv_snapshot::{Kind, Version};
use chronokv_vfs::{MemFs, Vfs};
use chronokv_wal::{
    parse_segment_file_name, read_segment, segment_file_name, BatchEntries, Error, RecordRef,
    RecoveryMode, SegmentWriter, MAX_KEY_LEN, MAX_VALUE_LEN,
};
use std::path::Path;

#[test]
fn engine_style_write_crash_and_replay() {
    assert_eq!((MAX_KEY_LEN, MAX_VALUE_LEN), (65536, 1 << 28));
    let fs = MemFs::new();
    let dir = Path::new("/db/wal");
    fs.create_dir_all(dir).unwrap();
    let vfs: &dyn Vfs = &fs;

    // Two segments: 1 is rotated away from (fully synced), 2 is the newest.
    let mut next = Version(1);
    for log in [1u64, 2] {
        let mut w = SegmentWriter::create(vfs, dir, log).unwrap();
        assert_eq!(w.log_number(), log);
        for i in 0..4u8 {
            let mut b = BatchEntries::new();
            b.put(&[log as u8, i], b"value");
            b.delete(&[log as u8, i, 0]);
            w.append(&[RecordRef {
                first_version: next,
                commit_micros: 5,
                entries: &b,
            }])
            .unwrap();
            next = Version(next.get() + u64::from(b.count()));
            if log == 1 || i < 2 {
                w.sync().unwrap();
            }
        }
    }
    let crashed = fs.crash_clone();
    let mut logs: Vec<u64> = crashed
        .list(dir)
        .unwrap()
        .iter()
        .filter_map(|n| parse_segment_file_name(n))
        .collect();
    logs.sort_unstable();
    assert_eq!(logs, vec![1, 2]);

    let mut replayed = Vec::new();
    let mut expect_next: Option<Version> = None;
    for (i, &log) in logs.iter().enumerate() {
        let path = dir.join(segment_file_name(log));
        let newest = i + 1 == logs.len();
        let contents = read_segment(&crashed, &path, log, newest, RecoveryMode::default()).unwrap();
        assert!(contents.damage.is_none());
        for r in &contents.records {
            if let Some(e) = expect_next {
                assert_eq!(r.first_version, e);
            }
            expect_next = Some(Version(r.last_version().get() + 1));
            for (j, entry) in r.entries().enumerate() {
                let (kind, key, value) = entry.unwrap();
                let version = r.first_version.get() + j as u64;
                replayed.push((version, kind, key.to_vec(), value.to_vec()));
            }
        }
    }
    // Segment 1 fully, segment 2's two synced records.
    assert_eq!(replayed.len(), (4 + 2) * 2);
    assert_eq!(replayed.last().unwrap().0, 12);
    assert_eq!(replayed[0].1, Kind::Put);
    assert_eq!(replayed[1].1, Kind::Delete);

    // Errors carry the path.
    let missing = dir.join(segment_file_name(99));
    match read_segment(&crashed, &missing, 99, true, RecoveryMode::PointInTime) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}
