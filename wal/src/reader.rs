//! [`read_segment`]: reads and validates a whole segment, and decides between a torn tail
//! and corruption.

use crate::batch::EntryIter;
use crate::frame::{self, Chain, Seed, MIN_PAYLOAD_LEN};
use crate::header::{self, Format, HEADER_LEN};
use crate::{v1, Error};
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
    pub(crate) fn new(offset: u64, h: &frame::Header, entries: Bytes) -> Self {
        Record {
            offset,
            first_version: Version(h.first_version),
            commit_micros: h.commit_micros,
            count: h.count,
            durable_offset: h.durable_offset,
            entries,
        }
    }

    /// The record's entries; they were validated, so the iterator yields no errors.
    pub fn entries(&self) -> EntryIter<'_> {
        EntryIter::new(&self.entries, self.count)
    }

    /// The encoded entries, in the v2 encoding whatever the segment's format (a slice of
    /// the segment's buffer, or for a v1 segment of its converted entries; cheap to clone).
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
    /// `None` when the file ended cleanly at a frame boundary (or in preallocated space).
    pub damage: Option<Damage>,
    /// Where the zeros of preallocated space start, if the segment ends in them: the newest
    /// segment of a preallocating writer, read while it writes or after a crash (see
    /// `docs/format/wal.md`, "Preallocated segments"). The log ends there; not damage.
    pub preallocated: Option<u64>,
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
    let format = Format::of(&data);
    let (records, damage) = match format {
        Format::V1 => v1::scan(&data, log_number),
        Format::V2 => scan(&data, log_number).map_err(|r| Error::corruption(path, 0, r))?,
    };
    let Some(damage) = damage else {
        return Ok(SegmentContents {
            records,
            damage: None,
            preallocated: None,
        });
    };
    let at = damage.offset;
    if format == Format::V2 && is_preallocated_tail(&data, at, is_newest, mode) {
        return Ok(SegmentContents {
            records,
            damage: None,
            preallocated: Some(at),
        });
    }
    match mode {
        RecoveryMode::AbsoluteConsistency => Err(Error::corruption(path, at, damage.reason)),
        RecoveryMode::PointInTime => Ok(SegmentContents {
            records,
            damage: Some(damage),
            preallocated: None,
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
            let durable_after = durable_frame_after(&data, format, log_number, at);
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
                    preallocated: None,
                }),
            }
        }
    }
}

/// Whether the damage at `at` is the preallocated tail of the newest segment: nothing but
/// zeros from there to the end. Only the newest segment may end so (the writer cuts the
/// zeros off before it writes a newer one), and not under `AbsoluteConsistency`, where
/// the engine does not preallocate and zeros stay damage.
fn is_preallocated_tail(data: &[u8], at: u64, is_newest: bool, mode: RecoveryMode) -> bool {
    let zeros = usize::try_from(at)
        .ok()
        .and_then(|at| data.get(at..))
        .is_some_and(|tail| tail.iter().all(|&b| b == 0));
    is_newest && mode != RecoveryMode::AbsoluteConsistency && zeros
}

/// The torn-tail scan of the segment's format: an intact frame past the damage at
/// `damaged` that records data past it as synced (its offset and `durable_offset`).
fn durable_frame_after(
    data: &[u8],
    format: Format,
    log_number: u64,
    damaged: u64,
) -> Option<(u64, u64)> {
    // Planted bug (G6): any damage in the newest segment is taken for a torn tail, even
    // before data a later frame records as synced.
    if chronokv_vfs::bug!("wal-midlog-truncate") {
        return None;
    }
    match format {
        Format::V1 => v1::find_durable_frame_after(data, log_number, damaged),
        Format::V2 => find_durable_frame_after(data, log_number, damaged),
    }
}

/// Decodes a v2 segment: its header, then frames until the end of `data` or the first
/// damage. `Err` is a header of a newer format: not damage, whatever the mode.
fn scan(data: &Bytes, log_number: u64) -> Result<(Vec<Record>, Option<Damage>), String> {
    let mut records = Vec::new();
    match header::check(data, log_number) {
        Ok(()) => {}
        Err(header::Bad::Damaged(reason)) => {
            return Ok((records, Some(Damage { offset: 0, reason })))
        }
        Err(header::Bad::Unsupported(v)) => {
            return Err(format!(
                "segment format version {v} is newer than this reader's ({})",
                header::VERSION
            ))
        }
    }
    let seed = Seed::new(log_number);
    let mut chain = Chain::default();
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        match frame_at(data, pos, &seed, chain) {
            Ok((record, next, end)) => {
                records.push(record);
                chain = next;
                pos = end;
            }
            Err(reason) => {
                let offset = pos as u64;
                return Ok((records, Some(Damage { offset, reason })));
            }
        }
    }
    Ok((records, None))
}

/// The record of the frame at `pos`, fully checked, the state after it and its end.
fn frame_at(
    data: &Bytes,
    pos: usize,
    seed: &Seed,
    chain: Chain,
) -> Result<(Record, Chain, usize), String> {
    let raw = frame::parse(data, pos, seed)?;
    let (h, next) = chain.next(&raw)?;
    let entries = data.slice(raw.entries.clone());
    for item in EntryIter::new(&entries, h.count) {
        if let Err(e) = item {
            let (off, reason) = match e {
                Error::Corruption { offset, reason, .. } => (offset, reason),
                other => (0, other.to_string()),
            };
            return Err(format!(
                "bad entries at file offset {}: {reason}",
                (raw.entries.start as u64).saturating_add(off)
            ));
        }
    }
    Ok((Record::new(pos as u64, &h, entries), next, raw.end))
}

/// Looks past damage at `damaged` in a v2 segment for a frame that is intact (its checksum
/// covers the log number) and claims that data past `damaged` had been synced when it was
/// written. Returns its offset and `durable_offset`.
///
/// `frame::parse` checks the length, the varints and the `durable` field (which must lie
/// in `damaged + 1 ..= candidate`, tested here before the checksum runs) first, so most
/// offsets are rejected without a checksum.
fn find_durable_frame_after(data: &[u8], log_number: u64, damaged: u64) -> Option<(u64, u64)> {
    let seed = Seed::new(log_number);
    let first = usize::try_from(damaged).ok()?.checked_add(1)?;
    let last = data.len().checked_sub(5 + MIN_PAYLOAD_LEN)?;
    (first..=last).find_map(|c| {
        let durable = frame::durable_at(data, c)?;
        if durable <= damaged {
            return None;
        }
        let raw = frame::parse(data, c, &seed).ok()?;
        Some((c as u64, raw.durable_offset))
    })
}
