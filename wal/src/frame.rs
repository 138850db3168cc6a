//! One frame: `crc32 u32 | len u32 | payload[len]`, and the payload header.
//!
//! The decoder checks everything a frame can check on its own (bounds, checksum, header
//! size, log number, entries). Checks that need context (version contiguity, the
//! `durable_offset` bound) live in the reader.

use crate::batch::EntryIter;
use crate::envelope;
use crate::{Error, MAX_FRAME_LEN};
use std::ops::Range;

/// Bytes before the payload: crc32 (4) + len (4).
pub(crate) const FRAME_HEADER_LEN: usize = envelope::HEADER_LEN;
/// Bytes of the payload header: log_number, durable_offset, first_version, commit_micros
/// (8 each) + count (4).
pub(crate) const PAYLOAD_HEADER_LEN: usize = 36;

pub(crate) use crate::envelope::crc as frame_crc;

/// The payload header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub log_number: u64,
    pub durable_offset: u64,
    pub first_version: u64,
    pub commit_micros: u64,
    pub count: u32,
}

/// Appends one encoded frame to `out`. The caller has checked that
/// `PAYLOAD_HEADER_LEN + entries.len() <= MAX_FRAME_LEN`.
pub(crate) fn encode_frame(out: &mut Vec<u8>, h: &Header, entries: &[u8]) {
    let len = (PAYLOAD_HEADER_LEN + entries.len()) as u32;
    let start = out.len();
    // Both headers are built in place and appended at once (one copy, not eight).
    let mut head = [0u8; FRAME_HEADER_LEN + PAYLOAD_HEADER_LEN];
    // head[0..4] is the crc, filled in below.
    head[4..8].copy_from_slice(&len.to_le_bytes());
    head[8..16].copy_from_slice(&h.log_number.to_le_bytes());
    head[16..24].copy_from_slice(&h.durable_offset.to_le_bytes());
    head[24..32].copy_from_slice(&h.first_version.to_le_bytes());
    head[32..40].copy_from_slice(&h.commit_micros.to_le_bytes());
    head[40..44].copy_from_slice(&h.count.to_le_bytes());
    out.reserve(head.len() + entries.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(entries);
    let crc = frame_crc(len.to_le_bytes(), &out[start + FRAME_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded, self-consistent frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub header: Header,
    /// The whole frame's length in bytes (header + payload).
    pub total_len: usize,
    /// Where the entries lie in the buffer given to [`decode_frame`].
    pub entries: Range<usize>,
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
/// `Err` carries the reason. Used by [`decode_frame`] and the torn-tail scan.
pub(crate) fn checked_payload(data: &[u8], at: usize) -> Result<Range<usize>, String> {
    let payload = envelope::check(data, at, MAX_FRAME_LEN)?;
    if payload.len() < PAYLOAD_HEADER_LEN {
        return Err(format!(
            "payload of {} bytes is shorter than the {PAYLOAD_HEADER_LEN}-byte header",
            payload.len()
        ));
    }
    Ok(payload)
}

/// Decodes and validates the frame at `at` of `data`: bounds, checksum, header, log number
/// and entries. `Err` carries the reason the frame is damaged.
pub(crate) fn decode_frame(data: &[u8], at: usize, log_number: u64) -> Result<Frame, String> {
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
    let entries = p + PAYLOAD_HEADER_LEN..payload.end;
    let bytes = data.get(entries.clone()).unwrap_or_default();
    for item in EntryIter::new(bytes, header.count) {
        if let Err(e) = item {
            let (off, reason) = match e {
                Error::Corruption { offset, reason, .. } => (offset, reason),
                other => (0, other.to_string()),
            };
            return Err(format!(
                "bad entries at file offset {}: {reason}",
                (entries.start as u64).saturating_add(off)
            ));
        }
    }
    Ok(Frame {
        header,
        total_len: payload.end - at,
        entries,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::BatchEntries;

    /// The golden frame of `docs/format/wal.md`: log 7, durable_offset 0, first_version 42,
    /// commit_micros 1_700_000_000_000_000, entries put("k","v1") and delete("x").
    pub(crate) const GOLDEN: &str = "\
        87d098df 3a000000 \
        0700000000000000 0000000000000000 2a00000000000000 00401e18240a0600 02000000 \
        01 01000000 02000000 6b 7631 \
        00 01000000 00000000 78";

    pub(crate) fn golden_entries() -> BatchEntries {
        let mut b = BatchEntries::new();
        b.put(b"k", b"v1");
        b.delete(b"x");
        b
    }

    pub(crate) fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn golden_bytes() {
        let h = Header {
            log_number: 7,
            durable_offset: 0,
            first_version: 42,
            commit_micros: 1_700_000_000_000_000,
            count: 2,
        };
        let mut out = Vec::new();
        encode_frame(&mut out, &h, golden_entries().as_bytes());
        let expect: String = GOLDEN.split_whitespace().collect();
        assert_eq!(hex(&out), expect);
        assert_eq!(out.len(), 66);
        let f = decode_frame(&out, 0, 7).unwrap();
        assert_eq!(f.header, h);
        assert_eq!(f.total_len, 66);
        assert_eq!(f.entries, 44..66);
    }

    #[test]
    fn detects_each_kind_of_damage() {
        let mut good = Vec::new();
        let h = Header {
            log_number: 3,
            durable_offset: 0,
            first_version: 1,
            commit_micros: 0,
            count: 2,
        };
        encode_frame(&mut good, &h, golden_entries().as_bytes());
        assert!(decode_frame(&good, 0, 3).is_ok());
        let reason = |d: &[u8], log| decode_frame(d, 0, log).unwrap_err();
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
        // A short payload with a valid checksum.
        let mut short = vec![0; 4];
        short.extend_from_slice(&4u32.to_le_bytes());
        short.extend_from_slice(&[1, 2, 3, 4]);
        let crc = frame_crc(4u32.to_le_bytes(), &[1, 2, 3, 4]);
        short[..4].copy_from_slice(&crc.to_le_bytes());
        assert!(reason(&short, 3).contains("shorter than"));
        // Valid checksum but the entries disagree with the count.
        let mut wrong_count = Vec::new();
        encode_frame(
            &mut wrong_count,
            &Header { count: 3, ..h },
            golden_entries().as_bytes(),
        );
        assert!(reason(&wrong_count, 3).contains("bad entries at file offset 66"));
    }
}
