//! The segment header of format v2, and telling v1 and v2 segments apart.
//!
//! ```text
//! header := magic[8] | crc32 u32 | len u32 (36) | log_number u64 | synced u64 (8)
//!           | format_version u64 (2) | reserved u64 (0) | reserved u32 (0)
//! ```
//!
//! Bytes 8..52 are shaped as a v1 frame without entries on purpose: a v1 reader (an older
//! chronokv opening an upgraded store) rejects the magic at offset 0 (read as a v1 length
//! it exceeds 2^30), then its torn-tail scan finds this intact frame at offset 8 claiming
//! 8 synced bytes past the damage, and it reports corruption instead of truncating the
//! segment as a torn tail. `docs/format/wal.md` has the argument in full.

use crate::envelope;

/// The first 8 bytes of every v2 segment. Bytes 4..8 read as a v1 `len` give 0xff4c4157,
/// above v1's 2^30 limit, so no valid v1 segment starts with them.
pub(crate) const MAGIC: [u8; 8] = [0x89, b'C', b'K', b'V', b'W', b'A', b'L', 0xff];
/// The header's length; a v2 segment's first frame starts here.
pub(crate) const HEADER_LEN: usize = 52;
/// The format version the header carries.
pub(crate) const VERSION: u64 = 2;
/// The v1-shaped frame's payload length (the v1 payload header: 36 bytes, no entries).
const INNER_LEN: u32 = 36;
/// The `synced` field: what a v1 reader takes for the frame's `durable_offset`.
const SYNCED: u64 = 8;

/// The layout of a segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// No header: frames from offset 0 (an empty file is also read as this).
    V1,
    /// Starts with [`MAGIC`] (or a prefix of it, where the file is that short).
    V2,
}

impl Format {
    /// The format of a segment whose bytes are `data`.
    pub(crate) fn of(data: &[u8]) -> Format {
        let n = data.len().min(MAGIC.len());
        if n > 0 && data.get(..n) == MAGIC.get(..n) {
            Format::V2
        } else {
            Format::V1
        }
    }
}

/// The header of segment `log_number`.
pub(crate) fn encode(log_number: u64) -> [u8; HEADER_LEN] {
    let mut payload = [0u8; INNER_LEN as usize];
    payload[0..8].copy_from_slice(&log_number.to_le_bytes());
    payload[8..16].copy_from_slice(&SYNCED.to_le_bytes());
    payload[16..24].copy_from_slice(&VERSION.to_le_bytes());
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&MAGIC);
    envelope::encode(&payload, &mut out);
    let mut head = [0u8; HEADER_LEN];
    head.copy_from_slice(&out);
    head
}

/// What is wrong with a segment's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bad {
    /// Damaged or incomplete: the segment's valid prefix is empty.
    Damaged(String),
    /// An intact header of a format this reader does not know: never a torn tail.
    Unsupported(u64),
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(u64::MAX, u64::from_le_bytes)
}

/// Checks the header at the start of `data` (a [`Format::V2`] segment) for log
/// `log_number`.
pub(crate) fn check(data: &[u8], log_number: u64) -> Result<(), Bad> {
    if data.len() < HEADER_LEN {
        let n = data.len();
        return Err(Bad::Damaged(format!(
            "truncated segment header ({n} of {HEADER_LEN} bytes)"
        )));
    }
    let inner = envelope::check(data, MAGIC.len(), INNER_LEN as usize)
        .map_err(|reason| Bad::Damaged(format!("segment header: {reason}")))?;
    let Some(p) = data
        .get(inner.clone())
        .filter(|p| p.len() == INNER_LEN as usize)
    else {
        return Err(Bad::Damaged(format!(
            "segment header of {} bytes instead of {INNER_LEN}",
            inner.len()
        )));
    };
    if u64_at(p, 16) != VERSION {
        return Err(Bad::Unsupported(u64_at(p, 16)));
    }
    let log = u64_at(p, 0);
    if log != log_number {
        return Err(Bad::Damaged(format!(
            "segment header belongs to log {log} but the segment is log {log_number}"
        )));
    }
    if u64_at(p, 8) != SYNCED || p.get(24..).is_none_or(|r| r.iter().any(|&b| b != 0)) {
        return Err(Bad::Damaged(
            "segment header has bad fixed fields".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_is_no_v1_frame_and_formats_are_told_apart() {
        let v1_len = u32::from_le_bytes(MAGIC[4..8].try_into().unwrap());
        assert!(v1_len as usize > crate::MAX_FRAME_LEN, "{v1_len:#x}");
        let h = encode(7);
        assert_eq!(Format::of(&h), Format::V2);
        assert_eq!(Format::of(&h[..3]), Format::V2);
        assert_eq!(Format::of(&[]), Format::V1);
        assert_eq!(Format::of(&[0x89, b'C', b'X']), Format::V1);
        assert_eq!(check(&h, 7), Ok(()));
        assert!(matches!(check(&h, 8), Err(Bad::Damaged(r)) if r.contains("log 7")));
        assert!(matches!(check(&h[..51], 7), Err(Bad::Damaged(r)) if r.contains("truncated")));
    }

    #[test]
    fn any_changed_byte_after_the_magic_is_damage_or_a_newer_format() {
        let h = encode(7);
        for at in MAGIC.len()..HEADER_LEN {
            let mut bad = h;
            bad[at] ^= 0x10;
            assert!(matches!(check(&bad, 7), Err(Bad::Damaged(_))), "byte {at}");
        }
        // A header with another version and a valid checksum: a newer format.
        let mut payload = [0u8; 36];
        payload[0..8].copy_from_slice(&7u64.to_le_bytes());
        payload[8..16].copy_from_slice(&8u64.to_le_bytes());
        payload[16..24].copy_from_slice(&3u64.to_le_bytes());
        let mut v3 = MAGIC.to_vec();
        envelope::encode(&payload, &mut v3);
        assert_eq!(check(&v3, 7), Err(Bad::Unsupported(3)));
    }
}
