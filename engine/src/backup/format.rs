//! The backup metadata file: one per backup, `BACKUP-{id:06}` in the backup directory.
//! Byte layout in `docs/format/backup.md`; all integers little-endian, fixed width.
//!
//! ```text
//! magic "CKVBKUP2" | id u64 | created_micros u64 | flushed_version u64 | next_file_number u64
//! | copied_runs u32 | copied_bytes u64 | run_count u32 | run*
//! | history_horizon u64 | times_pruned u32 | mark_count u32 | mark*
//! | retention_window_micros u64 | versions_per_key u64 | crc32 u32
//! run  := level u32 | file_number u64 | file_size u64 | entry_count u64 | min_version u64
//!         | max_version u64 | tail_crc u32 | file_crc u32
//!         | min_key_len u32 | min_key | max_key_len u32 | max_key
//! mark := version u64 | time_micros u64
//! ```
//! Format 1 (`CKVBKUP1`, before the history contract was stored) ends after the marks; it
//! is still read, as a backup without a contract.
//! The CRC-32 (IEEE) covers every byte before it. Decoding checks the length, the magic and
//! the CRC before parsing, bounds-checks every field, and never panics: damage is an
//! `Error::Corruption` naming the file and the offset.

use crate::error::{Error, Result};
use crate::manifest::{Reader, RunDesc, LIMIT};
use crate::retention::Retention;
use chronokv_snapshot::{TimeIndex, Version};
use std::path::Path;

/// Format version 2: the history contract follows the marks.
pub const MAGIC: &[u8; 8] = b"CKVBKUP2";
/// Format version 1, without the contract: read, never written.
pub const MAGIC_V1: &[u8; 8] = b"CKVBKUP1";
/// Bytes of the history contract (format 2).
pub const RETENTION_LEN: usize = 16;
/// Bytes before the first run record.
pub const HEADER_LEN: usize = 8 + 8 * 4 + 4 + 8 + 4;
/// Bytes of a run record without its keys.
pub const RUN_FIXED_LEN: usize = 4 + 8 * 5 + 4 + 4 + 4 + 4;
/// Bytes between the runs and the marks: history_horizon, times_pruned, mark_count.
pub const TIMES_FIXED_LEN: usize = 8 + 4 + 4;
/// Bytes of one time mark.
pub const MARK_LEN: usize = 16;

/// One run a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRun {
    /// The run as the database's manifest described it.
    pub desc: RunDesc,
    /// The `tail_crc` field of the run's private tail: with the file number and size, it
    /// names the shared copy (see [`BackupRun::shared_name`]).
    pub tail_crc: u32,
    /// CRC-32 of the whole file.
    pub file_crc: u32,
}

impl BackupRun {
    /// The name of the run's copy in the backup directory's `runs/` folder.
    pub fn shared_name(&self) -> String {
        shared_name(self.desc.file_number, self.desc.file_size, self.tail_crc)
    }
}

/// `{file_number:06}-{file_size}-{tail_crc:08x}.arrow`.
pub fn shared_name(file_number: u64, file_size: u64, tail_crc: u32) -> String {
    format!("{file_number:06}-{file_size}-{tail_crc:08x}.arrow")
}

/// The decoded metadata of one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupMeta {
    /// The backup's number in its directory.
    pub id: u64,
    /// When the backup was made, in µs since the Unix epoch.
    pub created_micros: u64,
    /// Every version up to this one is in the backed-up runs.
    pub flushed_version: Version,
    /// The database's next unused file number at backup time.
    pub next_file_number: u64,
    /// How many runs this backup copied (the others were already in the directory).
    pub copied_runs: u32,
    /// The bytes those copies took.
    pub copied_bytes: u64,
    /// Every run of the backed-up tree.
    pub runs: Vec<BackupRun>,
    /// The database's history horizon (manifest tag 8): reads below it may miss versions
    /// compaction dropped.
    pub history_horizon: Version,
    /// The version <-> commit-time index of the backed-up versions (manifest tags 6 and 7),
    /// so a restored store answers `snapshot_as_of` as the original did.
    pub times: TimeIndex,
    /// The database's history contract (manifest tag 9), so the restored store keeps what
    /// the original kept; `None` in a format-1 backup.
    pub retention: Option<Retention>,
}

impl BackupMeta {
    /// The metadata file's bytes (`docs/format/backup.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.runs.len() * 64 + 4);
        out.extend_from_slice(MAGIC);
        for v in [
            self.id,
            self.created_micros,
            self.flushed_version.0,
            self.next_file_number,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.copied_runs.to_le_bytes());
        out.extend_from_slice(&self.copied_bytes.to_le_bytes());
        out.extend_from_slice(&(self.runs.len() as u32).to_le_bytes());
        for r in &self.runs {
            let d = &r.desc;
            out.extend_from_slice(&d.level.to_le_bytes());
            for v in [
                d.file_number,
                d.file_size,
                d.entry_count,
                d.min_version.0,
                d.max_version.0,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&r.tail_crc.to_le_bytes());
            out.extend_from_slice(&r.file_crc.to_le_bytes());
            for k in [&d.min_key, &d.max_key] {
                out.extend_from_slice(&(k.len() as u32).to_le_bytes());
                out.extend_from_slice(k);
            }
        }
        out.extend_from_slice(&self.history_horizon.0.to_le_bytes());
        out.extend_from_slice(&u32::from(self.times.is_pruned()).to_le_bytes());
        let marks = self.times.marks();
        out.extend_from_slice(&(marks.len() as u32).to_le_bytes());
        for (v, t) in marks {
            out.extend_from_slice(&v.0.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
        }
        // One encoding per value: metadata without a contract (only ever decoded from a
        // format-1 file; a running store always has one) is written as format 1.
        match self.retention {
            Some(r) => {
                out.extend_from_slice(&r.window_micros().to_le_bytes());
                out.extend_from_slice(&(r.versions_per_key as u64).to_le_bytes());
            }
            None => out[..8].copy_from_slice(MAGIC_V1),
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the metadata file `path` holding `bytes`.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<BackupMeta> {
        Self::parse(bytes).map_err(|(offset, why)| Error::corruption(path, offset as u64, why))
    }

    fn parse(bytes: &[u8]) -> std::result::Result<BackupMeta, (usize, String)> {
        let bad = |offset: usize, why: String| (offset, why);
        let min_len = HEADER_LEN + TIMES_FIXED_LEN + 4;
        if bytes.len() < min_len {
            return Err(bad(
                0,
                format!(
                    "backup metadata is {} bytes, shorter than the {min_len}-byte minimum",
                    bytes.len(),
                ),
            ));
        }
        let v2 = match &bytes[..8] {
            m if m == MAGIC => true,
            m if m == MAGIC_V1 => false,
            _ => {
                return Err(bad(
                    0,
                    "not a chronokv backup metadata file (bad magic)".into(),
                ))
            }
        };
        let tail_len = if v2 { RETENTION_LEN } else { 0 };
        let body_len = bytes.len() - 4;
        let mut stored = [0u8; 4];
        stored.copy_from_slice(&bytes[body_len..]);
        let stored = u32::from_le_bytes(stored);
        if !chronokv_vfs::checksum_accepts(stored, crc32fast::hash(&bytes[..body_len])) {
            return Err(bad(body_len, "backup metadata checksum mismatch".into()));
        }
        let mut r = Reader::new(&bytes[..body_len], 8, "backup metadata");
        // A restore counts past the flushed version and the file numbers (as the manifest
        // does, and with the same limit).
        let below_limit = |r: &mut Reader<'_>, what: &str| {
            let at = r.pos;
            let n = r.u64()?;
            if n >= LIMIT {
                return Err(bad(at, format!("{what} {n} is past the 2^63 limit")));
            }
            Ok(n)
        };
        let mut meta = BackupMeta {
            id: r.u64()?,
            created_micros: r.u64()?,
            flushed_version: Version(below_limit(&mut r, "flushed version")?),
            next_file_number: below_limit(&mut r, "next file number")?,
            copied_runs: r.u32()?,
            copied_bytes: r.u64()?,
            runs: Vec::new(),
            history_horizon: Version(0),
            times: TimeIndex::new(),
            retention: None,
        };
        let count_at = r.pos;
        let count = r.u32()? as usize;
        // Every run record takes at least RUN_FIXED_LEN bytes: a larger count is damage, not
        // a reason to allocate.
        if count > body_len.saturating_sub(r.pos + TIMES_FIXED_LEN + tail_len) / RUN_FIXED_LEN {
            return Err(bad(
                count_at,
                format!("run count {count} does not fit in the file"),
            ));
        }
        meta.runs.reserve(count);
        // The runs' sizes are added up (listing, verifying, restoring): their sum must fit.
        let mut total_size = 0u64;
        for _ in 0..count {
            let level = r.level()?;
            let file_number = below_limit(&mut r, "run file number")?;
            let size_at = r.pos;
            let file_size = r.u64()?;
            total_size = total_size.checked_add(file_size).ok_or_else(|| {
                bad(
                    size_at,
                    "the runs' sizes add up past 2^64 bytes".to_string(),
                )
            })?;
            let entry_count = r.u64()?;
            let min_version = Version(r.u64()?);
            let max_version = Version(r.u64()?);
            let tail_crc = r.u32()?;
            let file_crc = r.u32()?;
            let min_key = r.key()?;
            let max_key = r.key()?;
            meta.runs.push(BackupRun {
                desc: RunDesc {
                    level,
                    file_number,
                    file_size,
                    entry_count,
                    min_version,
                    max_version,
                    min_key,
                    max_key,
                },
                tail_crc,
                file_crc,
            });
        }
        meta.history_horizon = Version(r.u64()?);
        let pruned_at = r.pos;
        let pruned = match r.u32()? {
            0 => false,
            1 => true,
            n => return Err(bad(pruned_at, format!("times_pruned is {n}, not 0 or 1"))),
        };
        let marks_at = r.pos;
        let count = r.u32()? as usize;
        if count > (body_len.saturating_sub(r.pos + tail_len)) / MARK_LEN {
            return Err(bad(
                marks_at,
                format!("mark count {count} does not fit in the file"),
            ));
        }
        let mut marks = Vec::with_capacity(count);
        for _ in 0..count {
            marks.push((Version(r.u64()?), r.u64()?));
        }
        meta.times = TimeIndex::from_marks(marks, pruned).map_err(|e| (marks_at, e.0))?;
        if v2 {
            meta.retention = Some(Retention::from_stored(r.u64()?, r.u64()?));
        }
        if r.pos != body_len {
            let after = if v2 {
                "the history contract"
            } else {
                "the last mark"
            };
            return Err(bad(
                r.pos,
                format!("{} unexpected bytes after {after}", body_len - r.pos),
            ));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BackupMeta {
        BackupMeta {
            id: 2,
            created_micros: 1_700_000_000_000_000,
            flushed_version: Version(42),
            next_file_number: 9,
            copied_runs: 1,
            copied_bytes: 4096,
            runs: vec![BackupRun {
                desc: RunDesc {
                    level: 1,
                    file_number: 8,
                    file_size: 4096,
                    entry_count: 3,
                    min_version: Version(40),
                    max_version: Version(42),
                    min_key: b"a".to_vec(),
                    max_key: b"zz".to_vec(),
                },
                tail_crc: 0xc6ff_41e9,
                file_crc: 0x0102_0304,
            }],
            history_horizon: Version(41),
            times: TimeIndex::from_marks(vec![(Version(40), 1_700_000_000_000_000)], true).unwrap(),
            retention: Some(Retention::new(
                Some(std::time::Duration::from_secs(7 * 86_400)),
                3,
            )),
        }
    }

    #[test]
    fn round_trip_and_name() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(
            bytes.len(),
            HEADER_LEN + RUN_FIXED_LEN + 3 + TIMES_FIXED_LEN + MARK_LEN + RETENTION_LEN + 4
        );
        assert_eq!(BackupMeta::decode(Path::new("B"), &bytes).unwrap(), m);
        assert_eq!(m.runs[0].shared_name(), "000008-4096-c6ff41e9.arrow");
        let empty = BackupMeta {
            runs: Vec::new(),
            times: TimeIndex::new(),
            ..sample()
        };
        assert_eq!(
            BackupMeta::decode(Path::new("B"), &empty.encode()).unwrap(),
            empty
        );
    }

    #[test]
    fn golden_bytes_of_the_documented_example() {
        // docs/format/backup.md shows these bytes; the document follows this test.
        let hex: Vec<String> = sample()
            .encode()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let lines: Vec<String> = hex.chunks(16).map(|c| c.join(" ")).collect();
        assert_eq!(
            lines.join("\n"),
            "43 4b 56 42 4b 55 50 32 02 00 00 00 00 00 00 00
00 40 1e 18 24 0a 06 00 2a 00 00 00 00 00 00 00
09 00 00 00 00 00 00 00 01 00 00 00 00 10 00 00
00 00 00 00 01 00 00 00 01 00 00 00 08 00 00 00
00 00 00 00 00 10 00 00 00 00 00 00 03 00 00 00
00 00 00 00 28 00 00 00 00 00 00 00 2a 00 00 00
00 00 00 00 e9 41 ff c6 04 03 02 01 01 00 00 00
61 02 00 00 00 7a 7a 29 00 00 00 00 00 00 00 01
00 00 00 01 00 00 00 28 00 00 00 00 00 00 00 00
40 1e 18 24 0a 06 00 00 a0 e3 d0 8c 00 00 00 03
00 00 00 00 00 00 00 f2 f8 fd 67"
        );
    }

    #[test]
    fn a_format_1_file_decodes_without_a_contract() {
        // Format 1 is format 2 without the contract, under the old magic.
        let v2 = sample().encode();
        let mut v1 = v2[..v2.len() - 4 - RETENTION_LEN].to_vec();
        v1[..8].copy_from_slice(MAGIC_V1);
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let m = BackupMeta::decode(Path::new("B"), &v1).unwrap();
        assert_eq!(m.encode(), v1, "it re-encodes as format 1");
        assert_eq!(
            m,
            BackupMeta {
                retention: None,
                ..sample()
            }
        );
        // The contract's bytes under the old magic are trailing garbage, not a contract.
        let mut bad = v2[..v2.len() - 4].to_vec();
        bad[..8].copy_from_slice(MAGIC_V1);
        let crc = crc32fast::hash(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        let err = BackupMeta::decode(Path::new("B"), &bad).unwrap_err();
        assert!(err.to_string().contains("unexpected bytes"), "{err}");
    }

    #[test]
    fn damage_is_an_error_with_an_offset_never_a_panic() {
        let bytes = sample().encode();
        let path = Path::new("/backups/BACKUP-000002");
        for cut in 0..bytes.len() {
            let err = BackupMeta::decode(path, &bytes[..cut]).unwrap_err();
            assert!(err.is_corruption(), "cut {cut}: {err}");
            assert!(err.to_string().contains("BACKUP-000002"), "{err}");
        }
        for at in 0..bytes.len() {
            for xor in [0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] ^= xor;
                assert!(BackupMeta::decode(path, &b).is_err(), "flip at {at}");
            }
        }
        // Damage that keeps the checksum valid (a writer bug) is still caught by the parser.
        let mut huge = sample();
        huge.runs[0].desc.level = 64;
        let err = BackupMeta::decode(path, &huge.encode()).unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset, .. } if offset == HEADER_LEN as u64),
            "{err}"
        );
        let mut count = sample().encode();
        let n = count.len();
        count[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&count[..n - 4]);
        count[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let err = BackupMeta::decode(path, &count).unwrap_err();
        assert!(err.to_string().contains("run count"), "{err}");
        // Run sizes whose sum overflows (found by the backup_meta fuzz target: listing the
        // backup added them up and overflowed).
        let mut sizes = sample();
        sizes.runs[0].desc.file_size = u64::MAX;
        let second = BackupRun {
            desc: RunDesc {
                file_number: 9,
                file_size: 1,
                ..sizes.runs[0].desc.clone()
            },
            ..sizes.runs[0].clone()
        };
        sizes.runs.push(second);
        let err = BackupMeta::decode(path, &sizes.encode()).unwrap_err();
        assert!(err.to_string().contains("add up past"), "{err}");
        sizes.runs[1].desc.file_size = 0;
        BackupMeta::decode(path, &sizes.encode()).unwrap();
        // Numbers a restore counts past (found by the fuzz target: a next file number of
        // 2^64 - 1 overflowed the restore's manifest numbering).
        for damage in 0..3 {
            let mut m = sample();
            match damage {
                0 => m.flushed_version = Version(u64::MAX),
                1 => m.next_file_number = 1 << 63,
                _ => m.runs[0].desc.file_number = u64::MAX,
            }
            let err = BackupMeta::decode(path, &m.encode()).unwrap_err();
            assert!(err.to_string().contains("2^63 limit"), "{damage}: {err}");
        }
    }
}
