//! One v2 frame: `crc32 u32 | len varint | payload[len]`, and the payload header.
//!
//! ```text
//! payload := durable varint | version_gap varint | micros_delta varint | count varint
//!            | entries
//! ```
//!
//! The CRC-32 covers the segment's log number (8 bytes, little-endian), then the `len`
//! bytes, then the payload, so a frame copied from another segment fails its checksum
//! without the number being stored in every frame. The payload's fields are relative to
//! the frame's offset and to the frame before it in the segment; [`Chain`] carries that
//! context. [`parse`] checks what a frame can check on its own (bounds, varints,
//! checksum, the `durable` encoding); [`Chain::next`] the rest (versions, times).

use crate::varint::{self, Bad, MAX_U32_LEN, MAX_U64_LEN};
use crate::MAX_FRAME_LEN;
use std::ops::Range;

/// The most bytes a payload header takes: three u64 varints and one u32 varint.
pub(crate) const MAX_PAYLOAD_HEADER_LEN: usize = 3 * MAX_U64_LEN + MAX_U32_LEN;
/// The fewest bytes a payload holds: four one-byte varints.
pub(crate) const MIN_PAYLOAD_LEN: usize = 4;
/// The most bytes before the payload: crc32 (4) + len (at most 5).
pub(crate) const MAX_FRAME_HEADER_LEN: usize = 4 + MAX_U32_LEN;

/// The payload header's fields, decoded to absolute values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub durable_offset: u64,
    pub first_version: u64,
    pub commit_micros: u64,
    pub count: u32,
}

/// CRC-32/IEEE already fed the segment's log number: cloned for every frame.
#[derive(Clone)]
pub(crate) struct Seed(crc32fast::Hasher);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed")
    }
}

impl Seed {
    pub(crate) fn new(log_number: u64) -> Self {
        let mut h = crc32fast::Hasher::new();
        h.update(&log_number.to_le_bytes());
        Seed(h)
    }

    /// The checksum of a frame whose `len` varint and payload are `bytes`.
    pub(crate) fn crc(&self, bytes: &[u8]) -> u32 {
        let mut h = self.0.clone();
        h.update(bytes);
        h.finalize()
    }
}

/// The `durable` field: `durable_offset` as a distance back from the frame's offset `at`
/// (low bit 1) when that is smaller than the offset itself, else absolute (low bit 0). A
/// frame synced just before (`fsync` per commit) and one never synced (`durable_offset`
/// 0) both take one byte.
fn encode_durable(durable_offset: u64, at: u64) -> u64 {
    let back = at - durable_offset;
    if back < durable_offset {
        (back << 1) | 1
    } else {
        durable_offset << 1
    }
}

/// The inverse of [`encode_durable`], rejecting every value it cannot produce.
fn decode_durable(v: u64, at: u64) -> Result<u64, String> {
    let x = v >> 1;
    let d = if v & 1 == 1 {
        at.checked_sub(x).filter(|&d| x < d)
    } else {
        Some(x).filter(|&d| d <= at && at - d >= d)
    };
    d.ok_or_else(|| format!("durable field {v} is not a valid encoding at offset {at}"))
}

/// The state a frame's relative fields are decoded against: the version and commit time
/// the previous frame in the segment left (0 and 0 before the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Chain {
    /// `first_version + count` of the previous frame; `None` before the first frame.
    pub next_version: Option<u64>,
    pub micros: u64,
}

impl Chain {
    /// The header of the frame `raw` that follows this state, and the state after it.
    pub(crate) fn next(self, raw: &Raw) -> Result<(Header, Chain), String> {
        let expected = self.next_version.unwrap_or(0);
        if self.next_version.is_some() && raw.version_gap != 0 {
            return Err(format!(
                "version discontinuity: expected first_version {expected}, found {}",
                expected.saturating_add(raw.version_gap)
            ));
        }
        let first_version = expected
            .checked_add(raw.version_gap)
            .ok_or("version overflow")?;
        let Some(next) = first_version.checked_add(u64::from(raw.count)) else {
            return Err(format!(
                "versions overflow: first_version {first_version} + count {}",
                raw.count
            ));
        };
        let Some(micros) = self.micros.checked_add(raw.micros_delta) else {
            return Err(format!(
                "commit time overflows: {} + {}",
                self.micros, raw.micros_delta
            ));
        };
        let header = Header {
            durable_offset: raw.durable_offset,
            first_version,
            commit_micros: micros,
            count: raw.count,
        };
        let chain = Chain {
            next_version: Some(next),
            micros,
        };
        Ok((header, chain))
    }
}

/// Appends the frame at file offset `at` to `out`. The caller has checked that
/// `MAX_PAYLOAD_HEADER_LEN + entries.len() <= MAX_FRAME_LEN`, that `h.first_version`
/// continues `chain` (or `chain` is before the first frame), that the time does not go
/// back, and that `h.durable_offset <= at`. Returns the state after the frame.
#[inline]
pub(crate) fn encode(
    out: &mut Vec<u8>,
    seed: &Seed,
    at: u64,
    chain: Chain,
    h: &Header,
    entries: &[u8],
) -> Chain {
    // The fields go to `head` from FIELDS on, then `len` right before them and the crc
    // before that, so the frame's header is one slice of one stack array.
    const FIELDS: usize = MAX_FRAME_HEADER_LEN;
    let gap = h.first_version - chain.next_version.unwrap_or(0);
    let mut head = [0u8; MAX_FRAME_HEADER_LEN + MAX_PAYLOAD_HEADER_LEN];
    let n = varint::write(&mut head, FIELDS, encode_durable(h.durable_offset, at));
    let n = varint::write(&mut head, n, gap);
    let n = varint::write(&mut head, n, h.commit_micros - chain.micros);
    let end = varint::write(&mut head, n, u64::from(h.count));
    let len = (end - FIELDS + entries.len()) as u64;
    let first = FIELDS - varint::encoded_len(len) - 4;
    varint::write(&mut head, first + 4, len);
    let start = out.len();
    out.reserve(head.len() + entries.len());
    // A typical header (crc, 1-byte len, four 1-byte fields) is 9 bytes: copied as a fixed
    // 16 bytes (no memcpy call) and the excess cut off.
    if end - first <= 16 {
        out.extend_from_slice(&head[first..first + 16]);
        out.truncate(start + end - first);
    } else {
        out.extend_from_slice(&head[first..end]);
    }
    out.extend_from_slice(entries);
    let crc = seed.crc(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    Chain {
        next_version: Some(h.first_version + u64::from(h.count)),
        micros: h.commit_micros,
    }
}

/// A frame that passed [`parse`]: its fields as stored (relative), and where its parts lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raw {
    pub durable_offset: u64,
    pub version_gap: u64,
    pub micros_delta: u64,
    pub count: u32,
    /// Where the entries lie in the buffer given to [`parse`].
    pub entries: Range<usize>,
    /// The offset just past the frame.
    pub end: usize,
}

/// The payload header's varints at `p`, in order; `Err` names the bad one.
fn fields(data: &[u8], mut p: usize) -> Result<([u64; 4], usize), String> {
    let mut v = [0u64; 4];
    let names = ["durable", "version_gap", "micros_delta", "count"];
    for (i, name) in names.iter().enumerate() {
        let max = if i == 3 { MAX_U32_LEN } else { MAX_U64_LEN };
        let (x, n) = varint::get(data, p, max).map_err(|b| b.describe(name))?;
        v[i] = x;
        p += n;
    }
    Ok((v, p))
}

/// Checks the frame at `at` of `data` (bounds, zero fill, varints, the `durable`
/// encoding, then the checksum) and returns its raw fields. The checksum comes last, so
/// the torn-tail scan rejects most offsets without computing one. `Err` carries the reason.
pub(crate) fn parse(data: &[u8], at: usize, seed: &Seed) -> Result<Raw, String> {
    let avail = data.len().saturating_sub(at);
    let crc_bytes = data.get(at..at.saturating_add(4));
    let Some(stored) = crc_bytes
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
    else {
        return Err(format!("truncated frame header ({avail} bytes left)"));
    };
    let (len, n) = match varint::get(data, at + 4, MAX_U32_LEN) {
        Ok(x) => x,
        Err(Bad::Truncated) => return Err(format!("truncated frame header ({avail} bytes left)")),
        Err(b) => return Err(b.describe("frame length")),
    };
    if stored == 0 && len == 0 {
        return Err("zero-filled frame header".to_string());
    }
    let len = len as usize;
    if len > MAX_FRAME_LEN {
        return Err(format!(
            "frame length {len} exceeds the {MAX_FRAME_LEN}-byte limit"
        ));
    }
    if len < MIN_PAYLOAD_LEN {
        return Err(format!(
            "payload of {len} bytes is shorter than the {MIN_PAYLOAD_LEN}-byte minimum"
        ));
    }
    let start = at + 4 + n;
    let end = start.saturating_add(len);
    if end > data.len() {
        return Err(format!(
            "frame of {} bytes extends past the end of the file ({avail} bytes left)",
            end - at
        ));
    }
    let (f, entries_at) = fields(data, start)?;
    if entries_at > end {
        return Err(format!("payload header overruns the {len}-byte payload"));
    }
    let durable_offset = decode_durable(f[0], at as u64)?;
    check_crc(data, at, end, stored, seed)?;
    Ok(Raw {
        durable_offset,
        version_gap: f[1],
        micros_delta: f[2],
        // `fields` read it as a u32 varint.
        count: f[3] as u32,
        entries: entries_at..end,
        end,
    })
}

fn check_crc(data: &[u8], at: usize, end: usize, stored: u32, seed: &Seed) -> Result<(), String> {
    let computed = seed.crc(data.get(at + 4..end).unwrap_or_default());
    crate::envelope::check_checksum(stored, computed)
}

/// The `durable_offset` the frame at `at` would claim, from its first two varints alone
/// (no checksum, no bounds): the torn-tail scan's cheap first filter.
pub(crate) fn durable_at(data: &[u8], at: usize) -> Option<u64> {
    let (_, n) = varint::get(data, at.checked_add(4)?, MAX_U32_LEN).ok()?;
    let (v, _) = varint::get(data, at + 4 + n, MAX_U64_LEN).ok()?;
    decode_durable(v, at as u64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_encoding_is_the_shorter_form_and_only_it_decodes() {
        for at in [0u64, 1, 2, 52, 53, 1000, 1 << 40] {
            for d in [0, 1, at / 2, at / 2 + 1, at.saturating_sub(1), at] {
                if d > at {
                    continue;
                }
                let v = encode_durable(d, at);
                assert_eq!(decode_durable(v, at), Ok(d), "d {d} at {at}");
                // The other form of the same offset is refused.
                let other = if v & 1 == 1 {
                    d << 1
                } else {
                    ((at - d) << 1) | 1
                };
                if other != v {
                    assert!(decode_durable(other, at).is_err(), "d {d} at {at}");
                }
            }
        }
        // Never synced, and synced up to the frame itself: one byte each.
        assert_eq!(encode_durable(0, 1 << 30), 0);
        assert_eq!(encode_durable(1 << 30, 1 << 30), 1);
        // Beyond the frame's own offset, either way.
        assert!(decode_durable(54 << 1, 53).is_err());
        assert!(decode_durable((54 << 1) | 1, 53).is_err());
    }

    #[test]
    fn chain_keeps_versions_contiguous_and_times_non_decreasing() {
        let raw = |gap, delta, count| Raw {
            durable_offset: 0,
            version_gap: gap,
            micros_delta: delta,
            count,
            entries: 0..0,
            end: 0,
        };
        let (h, c) = Chain::default().next(&raw(42, 1000, 2)).unwrap();
        assert_eq!((h.first_version, h.commit_micros), (42, 1000));
        let (h, c) = c.next(&raw(0, 0, 0)).unwrap();
        assert_eq!(
            (h.first_version, h.commit_micros, c.next_version),
            (44, 1000, Some(44))
        );
        assert!(c.next(&raw(1, 0, 1)).unwrap_err().contains("discontinuity"));
        assert!(c
            .next(&raw(0, u64::MAX, 1))
            .unwrap_err()
            .contains("overflows"));
        let top = Chain::default().next(&raw(u64::MAX, 0, 0)).unwrap().1;
        assert!(top.next(&raw(0, 0, 1)).unwrap_err().contains("overflow"));
    }
}
