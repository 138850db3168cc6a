//! [`read_segment`]: reads and validates a whole segment, and decides between a torn tail
//! and corruption.

use crate::batch::EntryIter;
use crate::frame::{checked_payload, decode_frame, FRAME_HEADER_LEN, PAYLOAD_HEADER_LEN};
use crate::Error;
use bytes::Bytes;
use chronokv_snapshot::Version;
use chronokv_vfs::Vfs;
use std::path::Path;

/// How [`read_segment`] treats damage. See `docs/format/wal.md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Damage in the newest segment that only affects data never known to be fsynced is a
    /// torn tail: the records before it are returned. Damage anywhere else is corruption.
    #[default]
    TolerateTornTail,
    /// Any damage ends the log: the records before it are returned with the damage, and the
    /// engine ignores later segments.
    PointInTime,
    /// Any damage is an error.
    AbsoluteConsistency,
}

/// One valid record of a segment. Its entries were fully validated by [`read_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The file offset of the record's frame.
    pub offset: u64,
    /// The version of the first entry.
    pub first_version: Version,
    /// The commit time in microseconds since the Unix epoch.
    pub commit_micros: u64,
    /// The number of entries.
    pub count: u32,
    durable_offset: u64,
    entries: Bytes,
}

impl Record {
    /// The record's entries; they were validated, so the iterator yields no errors.
    pub fn entries(&self) -> EntryIter<'_> {
        EntryIter::new(&self.entries, self.count)
    }

    /// The encoded entries (a slice of the segment's buffer; cheap to clone).
    pub fn entry_bytes(&self) -> &Bytes {
        &self.entries
    }

    /// The version of the last entry: `first_version + count - 1`. For an empty record
    /// (`count == 0`) this is `first_version - 1` (saturating at 0), the last version
    /// committed before it, so `next.first_version == prev.last_version() + 1` holds for
    /// any two consecutive records (unless versions start at 0).
    pub fn last_version(&self) -> Version {
        // `read_segment` checked that first_version + count does not overflow.
        Version(
            self.first_version
                .get()
                .saturating_add(u64::from(self.count))
                .saturating_sub(1),
        )
    }

    /// The version the next record must start at: `first_version + count`.
    pub fn next_version(&self) -> Version {
        Version(
            self.first_version
                .get()
                .saturating_add(u64::from(self.count)),
        )
    }

    /// The segment length known durable when this record was written.
    pub fn durable_offset(&self) -> u64 {
        self.durable_offset
    }
}

/// Where valid data stopped and why (returned when the damage was tolerated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file offset of the first damaged frame; the valid prefix is `0..offset`.
    pub offset: u64,
    /// Why the frame there was rejected.
    pub reason: String,
}

/// The valid records of a segment and, if reading stopped early, the damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentContents {
    /// The valid records, in file order, with contiguous versions.
    pub records: Vec<Record>,
    /// `None` when the file ended cleanly at a frame boundary.
    pub damage: Option<Damage>,
}

/// Reads and validates the whole segment at `path`, which must be log `log_number`.
/// `is_newest` says whether it is the newest segment (the only one that may have a torn
/// tail). See `docs/format/wal.md` for the rules `mode` selects.
pub fn read_segment(
    vfs: &dyn Vfs,
    path: &Path,
    log_number: u64,
    is_newest: bool,
    mode: RecoveryMode,
) -> Result<SegmentContents, Error> {
    let data = Bytes::from(vfs.read(path).map_err(|e| Error::io(path, e))?);
    let (records, damage) = scan(&data, log_number);
    let Some(damage) = damage else {
        return Ok(SegmentContents {
            records,
            damage: None,
        });
    };
    let at = damage.offset;
    match mode {
        RecoveryMode::AbsoluteConsistency => Err(Error::corruption(path, at, damage.reason)),
        RecoveryMode::PointInTime => Ok(SegmentContents {
            records,
            damage: Some(damage),
        }),
        RecoveryMode::TolerateTornTail if !is_newest => Err(Error::corruption(
            path,
            at,
            format!(
                "{} (not the newest segment, so it was fully synced)",
                damage.reason
            ),
        )),
        RecoveryMode::TolerateTornTail => {
            // Planted bug (G6): any damage in the newest segment is taken for a torn tail,
            // even before data a later frame records as synced.
            let durable_after = if chronokv_vfs::bug!("wal-midlog-truncate") {
                None
            } else {
                find_durable_frame_after(&data, log_number, damage.offset)
            };
            match durable_after {
                Some((c, durable)) => Err(Error::corruption(
                    path,
                    at,
                    format!(
                        "{}; a valid frame at offset {c} records {durable} bytes as synced, \
                         so synced data is damaged",
                        damage.reason
                    ),
                )),
                None => Ok(SegmentContents {
                    records,
                    damage: Some(damage),
                }),
            }
        }
    }
}

/// Decodes frames from the start until the end of `data` or the first damage.
fn scan(data: &Bytes, log_number: u64) -> (Vec<Record>, Option<Damage>) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    let mut expected: Option<u64> = None;
    while pos < data.len() {
        let damage = |reason: String| Damage {
            offset: pos as u64,
            reason,
        };
        let frame = match decode_frame(data, pos, log_number) {
            Ok(f) => f,
            Err(reason) => return (records, Some(damage(reason))),
        };
        let h = frame.header;
        if h.durable_offset > pos as u64 {
            let reason = format!(
                "durable_offset {} lies beyond the frame's own offset",
                h.durable_offset
            );
            return (records, Some(damage(reason)));
        }
        if let Some(e) = expected {
            if h.first_version != e {
                let reason = format!(
                    "version discontinuity: expected first_version {e}, found {}",
                    h.first_version
                );
                return (records, Some(damage(reason)));
            }
        }
        let Some(next) = h.first_version.checked_add(u64::from(h.count)) else {
            let reason = format!(
                "versions overflow: first_version {} + count {}",
                h.first_version, h.count
            );
            return (records, Some(damage(reason)));
        };
        expected = Some(next);
        records.push(Record {
            offset: pos as u64,
            first_version: Version(h.first_version),
            commit_micros: h.commit_micros,
            count: h.count,
            durable_offset: h.durable_offset,
            entries: data.slice(frame.entries),
        });
        pos += frame.total_len;
    }
    (records, None)
}

/// Looks past damage at `damaged` for a frame that is intact (checksum and log number) and
/// claims that data past `damaged` had been synced when it was written. Returns its offset
/// and `durable_offset`.
///
/// Cheap: a candidate must carry the log number at `candidate + 8` and a plausible
/// `durable_offset` (in `damaged + 1 ..= candidate`) and length before any checksum runs.
fn find_durable_frame_after(data: &[u8], log_number: u64, damaged: u64) -> Option<(u64, u64)> {
    let log = log_number.to_le_bytes();
    let first = usize::try_from(damaged).ok()?.checked_add(1)?;
    let min_frame = FRAME_HEADER_LEN + PAYLOAD_HEADER_LEN;
    let last = data.len().checked_sub(min_frame)?;
    for c in first..=last {
        let p = c + FRAME_HEADER_LEN;
        if data.get(p..p + 8) != Some(&log[..]) {
            continue;
        }
        let Some(durable) = data
            .get(p + 8..p + 16)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
        else {
            continue;
        };
        if durable <= damaged || durable > c as u64 {
            continue;
        }
        if checked_payload(data, c).is_ok() {
            return Some((c as u64, durable));
        }
    }
    None
}
