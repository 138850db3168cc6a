//! Version edits: the records of the manifest, and their binary encoding.
//!
//! Persisted format (see `docs/format/manifest.md`): a sequence of tagged fields, all
//! integers little-endian fixed width. Tags are persisted: never renumber.

use crate::retention::Retention;
use chronokv_snapshot::Version;

const TAG_NEXT_FILE_NUMBER: u8 = 1;
const TAG_FLUSHED_VERSION: u8 = 2;
const TAG_MIN_LOG_NUMBER: u8 = 3;
const TAG_ADD_RUN: u8 = 4;
const TAG_DELETE_RUN: u8 = 5;
const TAG_TIME_MARKS: u8 = 6;
const TAG_TIMES_PRUNED_BELOW: u8 = 7;
const TAG_HISTORY_HORIZON: u8 = 8;
/// Format version 2 on (magic `CKVMANI2`): the store's history contract.
const TAG_RETENTION: u8 = 9;

/// The manifest format an edit is read as: the magic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `CKVMANI1`: tags 1-8.
    V1,
    /// `CKVMANI2`: adds tag 9, the history contract.
    V2,
}

/// The largest key a run descriptor may carry (the engine's key limit).
const MAX_KEY: usize = 64 << 10;
/// Levels are numbered below this; a larger number is damage, not a request for a tree of
/// billions of levels.
pub const MAX_LEVELS: u32 = 64;

/// A run as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDesc {
    /// The level the run is in.
    pub level: u32,
    /// Its file number (`n.arrow`).
    pub file_number: u64,
    /// Its size in bytes.
    pub file_size: u64,
    /// Its entries (all versions, tombstones included).
    pub entry_count: u64,
    /// Its oldest version.
    pub min_version: Version,
    /// Its newest version.
    pub max_version: Version,
    /// Its smallest key.
    pub min_key: Vec<u8>,
    /// Its largest key.
    pub max_key: Vec<u8>,
}

impl RunDesc {
    /// The descriptor of a run written at `level` as file `file_number`.
    pub fn new(level: u32, file_number: u64, meta: &chronokv_runs::RunMeta) -> RunDesc {
        RunDesc {
            level,
            file_number,
            file_size: meta.file_size,
            entry_count: meta.entry_count,
            min_version: meta.min_version,
            max_version: meta.max_version,
            min_key: meta.min_key.clone(),
            max_key: meta.max_key.clone(),
        }
    }
}

/// One change to the tree. Absent fields leave the state as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// The next unused file number (tag 1).
    pub next_file_number: Option<u64>,
    /// Every version up to this one is in the runs (tag 2).
    pub flushed_version: Option<Version>,
    /// WAL segments below this number hold only flushed data (tag 3).
    pub min_log_number: Option<u64>,
    /// Runs joining the tree (tag 4).
    pub added: Vec<RunDesc>,
    /// `(level, file_number)` of runs leaving the tree.
    pub deleted: Vec<(u32, u64)>,
    /// Commit-time marks `(first version, time in µs)` continuing the time index (see
    /// `chronokv_snapshot::time`), oldest first.
    pub time_marks: Vec<(Version, u64)>,
    /// The time index was pruned: marks covering only versions below this are gone (and
    /// the first remaining mark is not the first commit's).
    pub times_pruned_below: Option<Version>,
    /// Compaction may have dropped versions a read below this version would need: the
    /// largest retention bound a merge used. Only grows.
    pub history_horizon: Option<Version>,
    /// The store's history contract, replacing the recorded one (every snapshot carries
    /// it; a delta only when it changed).
    pub retention: Option<Retention>,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_key(out: &mut Vec<u8>, k: &[u8]) {
    put_u32(out, k.len() as u32);
    out.extend_from_slice(k);
}

impl VersionEdit {
    /// The edit's bytes: a sequence of tagged fields (`docs/format/manifest.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(n) = self.next_file_number {
            out.push(TAG_NEXT_FILE_NUMBER);
            put_u64(&mut out, n);
        }
        if let Some(v) = self.flushed_version {
            out.push(TAG_FLUSHED_VERSION);
            put_u64(&mut out, v.0);
        }
        if let Some(n) = self.min_log_number {
            out.push(TAG_MIN_LOG_NUMBER);
            put_u64(&mut out, n);
        }
        for r in &self.added {
            out.push(TAG_ADD_RUN);
            put_u32(&mut out, r.level);
            put_u64(&mut out, r.file_number);
            put_u64(&mut out, r.file_size);
            put_u64(&mut out, r.entry_count);
            put_u64(&mut out, r.min_version.0);
            put_u64(&mut out, r.max_version.0);
            put_key(&mut out, &r.min_key);
            put_key(&mut out, &r.max_key);
        }
        for (level, n) in &self.deleted {
            out.push(TAG_DELETE_RUN);
            put_u32(&mut out, *level);
            put_u64(&mut out, *n);
        }
        if !self.time_marks.is_empty() {
            out.push(TAG_TIME_MARKS);
            put_u32(&mut out, self.time_marks.len() as u32);
            for (v, t) in &self.time_marks {
                put_u64(&mut out, v.0);
                put_u64(&mut out, *t);
            }
        }
        if let Some(v) = self.times_pruned_below {
            out.push(TAG_TIMES_PRUNED_BELOW);
            put_u64(&mut out, v.0);
        }
        if let Some(v) = self.history_horizon {
            out.push(TAG_HISTORY_HORIZON);
            put_u64(&mut out, v.0);
        }
        if let Some(r) = self.retention {
            out.push(TAG_RETENTION);
            put_u64(&mut out, r.window_micros());
            put_u64(&mut out, r.versions_per_key as u64);
        }
        out
    }

    /// Decodes an edit of the current format; the error says what was wrong and at which
    /// offset of `buf`.
    pub fn decode(buf: &[u8]) -> Result<VersionEdit, (usize, String)> {
        Self::decode_as(buf, Format::V2)
    }

    /// Decodes an edit of a manifest of format `format`: a tag that format does not have
    /// is corruption, as any unknown tag.
    pub fn decode_as(buf: &[u8], format: Format) -> Result<VersionEdit, (usize, String)> {
        let mut r = Reader::new(buf, 0, "edit");
        let mut edit = VersionEdit::default();
        while r.pos < buf.len() {
            let at = r.pos;
            match r.u8()? {
                TAG_NEXT_FILE_NUMBER => edit.next_file_number = Some(r.u64()?),
                TAG_FLUSHED_VERSION => edit.flushed_version = Some(Version(r.u64()?)),
                TAG_MIN_LOG_NUMBER => edit.min_log_number = Some(r.u64()?),
                TAG_ADD_RUN => edit.added.push(RunDesc {
                    level: r.level()?,
                    file_number: r.u64()?,
                    file_size: r.u64()?,
                    entry_count: r.u64()?,
                    min_version: Version(r.u64()?),
                    max_version: Version(r.u64()?),
                    min_key: r.key()?,
                    max_key: r.key()?,
                }),
                TAG_DELETE_RUN => edit.deleted.push((r.level()?, r.u64()?)),
                TAG_TIME_MARKS => {
                    let count = r.u32()? as usize;
                    // Each mark is 16 bytes: a count the rest of the edit cannot hold is
                    // damage, not an allocation request.
                    if count > (buf.len() - r.pos) / 16 {
                        return Err((at, format!("{count} time marks do not fit the edit")));
                    }
                    edit.time_marks.reserve(count);
                    for _ in 0..count {
                        edit.time_marks.push((Version(r.u64()?), r.u64()?));
                    }
                }
                TAG_TIMES_PRUNED_BELOW => edit.times_pruned_below = Some(Version(r.u64()?)),
                TAG_HISTORY_HORIZON => edit.history_horizon = Some(Version(r.u64()?)),
                TAG_RETENTION if format == Format::V2 => {
                    edit.retention = Some(Retention::from_stored(r.u64()?, r.u64()?));
                }
                t => return Err((at, format!("unknown version edit tag {t}"))),
            }
        }
        Ok(edit)
    }
}

/// A bounds-checked little-endian reader over a record: every read that runs past the end
/// is an error `(offset, reason)`, never a panic. The manifest and backup metadata share it.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
    /// What is being read, for the truncation message ("edit", "backup metadata").
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize, what: &'static str) -> Self {
        Reader { buf, pos, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], (usize, String)> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err((
                self.pos,
                format!("{} truncated: needs {n} more bytes", self.what),
            ));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, (usize, String)> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, (usize, String)> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, (usize, String)> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn level(&mut self) -> Result<u32, (usize, String)> {
        let at = self.pos;
        let level = self.u32()?;
        if level >= MAX_LEVELS {
            return Err((at, format!("level {level} is not below {MAX_LEVELS}")));
        }
        Ok(level)
    }

    pub(crate) fn key(&mut self) -> Result<Vec<u8>, (usize, String)> {
        let at = self.pos;
        let len = self.u32()? as usize;
        if len > MAX_KEY {
            return Err((at, format!("key length {len} exceeds {MAX_KEY}")));
        }
        Ok(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> VersionEdit {
        VersionEdit {
            next_file_number: Some(9),
            flushed_version: Some(Version(42)),
            min_log_number: Some(7),
            added: vec![RunDesc {
                level: 0,
                file_number: 8,
                file_size: 4096,
                entry_count: 3,
                min_version: Version(40),
                max_version: Version(42),
                min_key: b"a".to_vec(),
                max_key: b"zz".to_vec(),
            }],
            deleted: vec![(0, 5)],
            time_marks: vec![
                (Version(40), 1_700_000_000_000_000),
                (Version(42), 1_700_000_000_001_000),
            ],
            times_pruned_below: Some(Version(40)),
            history_horizon: Some(Version(41)),
            retention: Some(Retention::new(
                Some(std::time::Duration::from_secs(7 * 86_400)),
                3,
            )),
        }
    }

    #[test]
    fn round_trip() {
        let e = sample();
        assert_eq!(VersionEdit::decode(&e.encode()).unwrap(), e);
        assert_eq!(VersionEdit::decode(&[]).unwrap(), VersionEdit::default());
    }

    #[test]
    fn golden_bytes_of_a_small_edit() {
        let e = VersionEdit {
            flushed_version: Some(Version(258)),
            deleted: vec![(1, 3)],
            ..Default::default()
        };
        let hex: Vec<String> = e.encode().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "02 02 01 00 00 00 00 00 00 05 01 00 00 00 03 00 00 00 00 00 00 00"
        );
    }

    #[test]
    fn golden_bytes_of_a_retention_edit() {
        // The worked example of docs/format/manifest.md: a 7-day window, 3 versions per key.
        let e = VersionEdit {
            retention: Some(Retention::new(
                Some(std::time::Duration::from_secs(7 * 86_400)),
                3,
            )),
            ..Default::default()
        };
        let hex: Vec<String> = e.encode().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "09 00 a0 e3 d0 8c 00 00 00 03 00 00 00 00 00 00 00"
        );
        assert_eq!(VersionEdit::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn the_retention_tag_is_corruption_in_a_v1_manifest() {
        let bytes = sample().encode();
        let at = bytes.len() - 17;
        assert_eq!(bytes[at], TAG_RETENTION);
        let err = VersionEdit::decode_as(&bytes, Format::V1).unwrap_err();
        assert_eq!(err, (at, "unknown version edit tag 9".to_string()));
        let v1 = VersionEdit::decode_as(&bytes[..at], Format::V1).unwrap();
        assert_eq!(v1.retention, None);
        assert_eq!(v1.history_horizon, sample().history_horizon);
    }

    #[test]
    fn every_truncation_and_bad_tag_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for cut in 1..bytes.len() {
            // A cut may land on a field boundary and decode to a smaller edit; it must
            // never panic, and a cut inside a field must be an error.
            let _ = VersionEdit::decode(&bytes[..cut]);
        }
        assert!(VersionEdit::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(VersionEdit::decode(&[99]).is_err());
        let mut huge_key = vec![TAG_ADD_RUN];
        huge_key.extend_from_slice(&[0u8; 44]);
        huge_key.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(VersionEdit::decode(&huge_key).is_err());
    }

    #[test]
    fn a_time_mark_count_beyond_the_edit_is_an_error() {
        let mut bad = vec![TAG_TIME_MARKS];
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        bad.extend_from_slice(&[0u8; 32]);
        assert_eq!(VersionEdit::decode(&bad).unwrap_err().0, 0);
        let mut ok = vec![TAG_TIME_MARKS];
        ok.extend_from_slice(&1u32.to_le_bytes());
        ok.extend_from_slice(&5u64.to_le_bytes());
        ok.extend_from_slice(&9000u64.to_le_bytes());
        assert_eq!(
            VersionEdit::decode(&ok).unwrap().time_marks,
            vec![(Version(5), 9000)]
        );
    }

    #[test]
    fn a_level_past_the_limit_is_an_error_naming_its_offset() {
        let mut bad = vec![TAG_DELETE_RUN];
        bad.extend_from_slice(&MAX_LEVELS.to_le_bytes());
        bad.extend_from_slice(&7u64.to_le_bytes());
        assert_eq!(VersionEdit::decode(&bad).unwrap_err().0, 1);
        let mut ok = vec![TAG_DELETE_RUN];
        ok.extend_from_slice(&(MAX_LEVELS - 1).to_le_bytes());
        ok.extend_from_slice(&7u64.to_le_bytes());
        assert_eq!(
            VersionEdit::decode(&ok).unwrap().deleted,
            vec![(MAX_LEVELS - 1, 7)]
        );
    }
}
