//! Format v1, read only: segments without a header, frames `crc32 u32 | len u32 |
//! payload` with fixed-width fields, written by chronokv before format v2.
//!
//! ```text
//! payload := log_number u64 | durable_offset u64 | first_version u64 | commit_micros u64
//!            | count u32 | count × ( kind u8 | key_len u32 | value_len u32 | key | value )
//! ```
//!
//! A v1 record's entries are converted to the v2 encoding as they are validated (one buffer
//! for the whole segment), so the rest of the crate and the engine see one encoding. A v1
//! segment is read once, by the first open after the upgrade; that open replays it into a
//! run and deletes it, so the copy costs one segment's worth of memory, once.

use crate::batch::BatchEntries;
use crate::envelope;
use crate::reader::{Damage, Record};
use crate::{check_entry_lens, MAX_FRAME_LEN};
use bytes::Bytes;
use chronokv_snapshot::Kind;
use std::ops::Range;

/// Bytes before the payload: crc32 (4) + len (4).
pub(crate) const FRAME_HEADER_LEN: usize = envelope::HEADER_LEN;
/// Bytes of the payload header: log_number, durable_offset, first_version, commit_micros
/// (8 each) + count (4).
pub(crate) const PAYLOAD_HEADER_LEN: usize = 36;
/// Bytes of an entry header: kind (1) + key_len (4) + value_len (4).
const ENTRY_HEADER_LEN: usize = 9;

/// The payload header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub log_number: u64,
    pub durable_offset: u64,
    pub first_version: u64,
    pub commit_micros: u64,
    pub count: u32,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    let b = data.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Checks bounds and checksum of the frame at `at` and returns its payload range.
fn checked_payload(data: &[u8], at: usize) -> Result<Range<usize>, String> {
    let payload = envelope::check(data, at, MAX_FRAME_LEN)?;
    if payload.len() < PAYLOAD_HEADER_LEN {
        return Err(format!(
            "payload of {} bytes is shorter than the {PAYLOAD_HEADER_LEN}-byte header",
            payload.len()
        ));
    }
    Ok(payload)
}

/// Decodes the frame at `at`: bounds, checksum, header and log number. Returns the header
/// and where the entries lie.
fn decode_frame(data: &[u8], at: usize, log_number: u64) -> Result<(Header, Range<usize>), String> {
    let payload = checked_payload(data, at)?;
    let p = payload.start;
    let field = |off: usize| u64_at(data, p + off).ok_or_else(|| "short payload".to_string());
    let header = Header {
        log_number: field(0)?,
        durable_offset: field(8)?,
        first_version: field(16)?,
        commit_micros: field(24)?,
        count: u32_at(data, p + 32).ok_or_else(|| "short payload".to_string())?,
    };
    if header.log_number != log_number {
        return Err(format!(
            "frame belongs to log {} but the segment is log {log_number}",
            header.log_number
        ));
    }
    Ok((header, p + PAYLOAD_HEADER_LEN..payload.end))
}

/// A decoded v1 entry: kind, key, value, and the offset just past it.
type Entry<'a> = (Kind, &'a [u8], &'a [u8], usize);

/// The v1 entry at `pos` of `bytes`, or the reason it is bad.
fn entry_at(bytes: &[u8], pos: usize) -> Result<Entry<'_>, String> {
    let left = bytes.len().saturating_sub(pos);
    let (Some(&kind_byte), Some(key_len), Some(value_len)) = (
        bytes.get(pos),
        u32_at(bytes, pos.saturating_add(1)),
        u32_at(bytes, pos.saturating_add(5)),
    ) else {
        return Err(format!(
            "entry header needs {ENTRY_HEADER_LEN} bytes, {left} left"
        ));
    };
    let kind = Kind::from_u8(kind_byte).ok_or_else(|| format!("unknown entry kind {kind_byte}"))?;
    let (key_len, value_len) = (key_len as usize, value_len as usize);
    check_entry_lens(key_len, value_len)?;
    if kind == Kind::Delete && value_len != 0 {
        return Err(format!("delete entry with a {value_len}-byte value"));
    }
    let key_end = pos.saturating_add(ENTRY_HEADER_LEN).saturating_add(key_len);
    let value_end = key_end.saturating_add(value_len);
    match (
        bytes.get(pos + ENTRY_HEADER_LEN..key_end),
        bytes.get(key_end..value_end),
    ) {
        (Some(key), Some(value)) => Ok((kind, key, value, value_end)),
        _ => Err(format!(
            "entry of {} bytes overruns the {left} bytes left",
            value_end - pos
        )),
    }
}

/// Validates `count` v1 entries filling `data[range]` exactly and appends them to `out` in
/// the v2 encoding. `Err` names the file offset of the bad entry.
fn convert_entries(
    data: &[u8],
    range: Range<usize>,
    count: u32,
    out: &mut BatchEntries,
) -> Result<(), String> {
    let bytes = data.get(range.clone()).unwrap_or_default();
    let mut pos = 0;
    let at = |pos: usize| range.start + pos;
    for _ in 0..count {
        let (kind, key, value, end) = entry_at(bytes, pos)
            .map_err(|r| format!("bad entries at file offset {}: {r}", at(pos)))?;
        out.push(kind, key, value);
        pos = end;
    }
    if pos != bytes.len() {
        let left = bytes.len() - pos;
        return Err(format!(
            "bad entries at file offset {}: {left} bytes left over after the last entry",
            at(pos)
        ));
    }
    Ok(())
}

/// Decodes v1 frames from the start until the end of `data` or the first damage.
pub(crate) fn scan(data: &[u8], log_number: u64) -> (Vec<Record>, Option<Damage>) {
    let mut found: Vec<(u64, Header, Range<usize>)> = Vec::new();
    let mut converted = BatchEntries::new();
    let mut pos = 0usize;
    let mut expected: Option<u64> = None;
    let mut damage = None;
    while pos < data.len() {
        match frame_at(data, pos, log_number, expected, &mut converted) {
            Ok((h, end, entries)) => {
                // `frame_at` checked that this does not overflow.
                expected = Some(h.first_version + u64::from(h.count));
                found.push((pos as u64, h, entries));
                pos = end;
            }
            Err(reason) => {
                damage = Some(Damage {
                    offset: pos as u64,
                    reason,
                });
                break;
            }
        }
    }
    let all = Bytes::from(converted.take_bytes());
    let records = found
        .into_iter()
        .map(|(offset, h, entries)| Record::new(offset, &h_fields(&h), all.slice(entries)))
        .collect();
    (records, damage)
}

fn h_fields(h: &Header) -> crate::frame::Header {
    crate::frame::Header {
        durable_offset: h.durable_offset,
        first_version: h.first_version,
        commit_micros: h.commit_micros,
        count: h.count,
    }
}

/// One frame at `pos`, fully checked, its entries appended to `converted`. Returns its
/// header, its end and where its converted entries lie in `converted`.
fn frame_at(
    data: &[u8],
    pos: usize,
    log_number: u64,
    expected: Option<u64>,
    converted: &mut BatchEntries,
) -> Result<(Header, usize, Range<usize>), String> {
    let (h, entries) = decode_frame(data, pos, log_number)?;
    let end = entries.end;
    let before = converted.encoded_len();
    convert_entries(data, entries, h.count, converted)?;
    if h.durable_offset > pos as u64 {
        return Err(format!(
            "durable_offset {} lies beyond the frame's own offset",
            h.durable_offset
        ));
    }
    if let Some(e) = expected.filter(|&e| e != h.first_version) {
        return Err(format!(
            "version discontinuity: expected first_version {e}, found {}",
            h.first_version
        ));
    }
    if h.first_version.checked_add(u64::from(h.count)).is_none() {
        return Err(format!(
            "versions overflow: first_version {} + count {}",
            h.first_version, h.count
        ));
    }
    Ok((h, end, before..converted.encoded_len()))
}

/// Looks past damage at `damaged` for a frame that is intact (checksum and log number) and
/// claims that data past `damaged` had been synced when it was written. Returns its offset
/// and `durable_offset`.
///
/// Cheap: a candidate must carry the log number at `candidate + 8` and a plausible
/// `durable_offset` (in `damaged + 1 ..= candidate`) and length before any checksum runs.
pub(crate) fn find_durable_frame_after(
    data: &[u8],
    log_number: u64,
    damaged: u64,
) -> Option<(u64, u64)> {
    let log = log_number.to_le_bytes();
    let first = usize::try_from(damaged).ok()?.checked_add(1)?;
    let min_frame = FRAME_HEADER_LEN + PAYLOAD_HEADER_LEN;
    let last = data.len().checked_sub(min_frame)?;
    for c in first..=last {
        let p = c + FRAME_HEADER_LEN;
        if data.get(p..p + 8) != Some(&log[..]) {
            continue;
        }
        let Some(durable) = u64_at(data, p + 8) else {
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

/// The v1 encoder, kept for tests only: chronokv no longer writes v1, but the tests build
/// v1 segments with it (checked against the golden bytes) to test reading them.
#[cfg(test)]
pub(crate) mod encode {
    use super::*;

    /// Appends one v1 frame holding the v1 encoding of `entries`' entries.
    pub(crate) fn frame(out: &mut Vec<u8>, h: &Header, entries: &BatchEntries) {
        let mut payload = Vec::new();
        for v in [
            h.log_number,
            h.durable_offset,
            h.first_version,
            h.commit_micros,
        ] {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        payload.extend_from_slice(&h.count.to_le_bytes());
        for e in entries.iter() {
            let (kind, key, value) = e.expect("a built batch decodes");
            payload.push(kind.as_u8());
            payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
            payload.extend_from_slice(&(value.len() as u32).to_le_bytes());
            payload.extend_from_slice(key);
            payload.extend_from_slice(value);
        }
        envelope::encode(&payload, out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chronokv_snapshot::Version;

    /// The golden v1 frame of `docs/format/wal.md` ("v1 (read only)"): log 7,
    /// durable_offset 0, first_version 42, commit_micros 1_700_000_000_000_000, entries
    /// put("k","v1") and delete("x"). Written by chronokv before format v2.
    pub(crate) const GOLDEN: &str = "\
        87d098df 3a000000 \
        0700000000000000 0000000000000000 2a00000000000000 00401e18240a0600 02000000 \
        01 01000000 02000000 6b 7631 \
        00 01000000 00000000 78";

    pub(crate) fn golden_header() -> Header {
        Header {
            log_number: 7,
            durable_offset: 0,
            first_version: 42,
            commit_micros: 1_700_000_000_000_000,
            count: 2,
        }
    }

    pub(crate) fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn golden_bytes_decode_and_the_test_encoder_reproduces_them() {
        let golden = unhex(GOLDEN);
        assert_eq!(golden.len(), 66);
        let (h, entries) = decode_frame(&golden, 0, 7).unwrap();
        assert_eq!(h, golden_header());
        assert_eq!(entries, 44..66);
        let mut out = Vec::new();
        encode::frame(&mut out, &h, &crate::tests::golden_entries());
        assert_eq!(out, golden);
        let (records, damage) = scan(&golden, 7);
        assert_eq!(damage, None);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.offset, r.first_version, r.count), (0, Version(42), 2));
        // The entries come back in the v2 encoding.
        assert_eq!(
            r.entry_bytes().as_ref(),
            crate::tests::golden_entries().as_bytes()
        );
    }

    #[test]
    fn detects_each_kind_of_damage() {
        let mut good = Vec::new();
        let h = Header {
            log_number: 3,
            first_version: 1,
            commit_micros: 0,
            ..golden_header()
        };
        let entries = crate::tests::golden_entries();
        encode::frame(&mut good, &h, &entries);
        let reason = |d: &[u8], log| scan(d, log).1.unwrap().reason;
        assert!(scan(&good, 3).1.is_none());
        assert!(reason(&good[..5], 3).contains("truncated frame header"));
        assert!(reason(&[0; 100], 3).contains("zero-filled"));
        assert!(reason(&good[..good.len() - 1], 3).contains("past the end"));
        assert!(reason(&good, 4).contains("belongs to log 3"));
        let mut bad = good.clone();
        bad[50] ^= 1;
        assert!(reason(&bad, 3).contains("checksum"));
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&(MAX_FRAME_LEN as u32 + 1).to_le_bytes());
        assert!(reason(&bad, 3).contains("exceeds"));
        let mut short = Vec::new();
        envelope::encode(&[1, 2, 3, 4], &mut short);
        assert!(reason(&short, 3).contains("shorter than"));
        let mut wrong_count = Vec::new();
        encode::frame(&mut wrong_count, &Header { count: 3, ..h }, &entries);
        assert!(reason(&wrong_count, 3).contains("bad entries at file offset 66"));
        let mut ahead = Vec::new();
        encode::frame(
            &mut ahead,
            &Header {
                durable_offset: 1,
                ..h
            },
            &entries,
        );
        assert!(reason(&ahead, 3).contains("beyond"));
    }
}
