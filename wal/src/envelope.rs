//! The checksummed envelope shared by the WAL and the manifest:
//! `crc32 u32 | len u32 | payload[len]`, where the CRC-32/IEEE covers the 4 `len` bytes and
//! then the payload. What the payload means is up to the log that uses it.

use std::ops::Range;

/// Bytes before the payload: crc32 (4) + len (4).
pub const HEADER_LEN: usize = 8;

/// The checksum of an envelope: CRC-32/IEEE over the 4 `len` bytes followed by the payload.
pub fn crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(payload);
    h.finalize()
}

/// Appends `payload` wrapped in an envelope to `out`.
///
/// # Panics
/// If the payload is 4 GiB or larger (callers bound their payloads far below that).
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("envelope payloads are below 4 GiB");
    out.extend_from_slice(&crc(len.to_le_bytes(), payload).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Checks the envelope at `at` of `data` (bounds, a zero-filled header, `len <= max_len`,
/// checksum) and returns where its payload lies. `Err` carries the reason it is damaged.
pub fn check(data: &[u8], at: usize, max_len: usize) -> Result<Range<usize>, String> {
    let avail = data.len().saturating_sub(at);
    let header = data
        .get(at..at.saturating_add(HEADER_LEN))
        .filter(|h| h.len() == HEADER_LEN)
        .ok_or_else(|| format!("truncated frame header ({avail} of {HEADER_LEN} bytes)"))?;
    if header.iter().all(|&b| b == 0) {
        return Err("zero-filled frame header".to_string());
    }
    let (Some(stored), Some(len)) = (u32_at(data, at), u32_at(data, at + 4)) else {
        return Err("truncated frame header".to_string());
    };
    let len_usize = len as usize;
    if len_usize > max_len {
        return Err(format!(
            "frame length {len} exceeds the {max_len}-byte limit"
        ));
    }
    let start = at + HEADER_LEN;
    let end = start.saturating_add(len_usize);
    let Some(payload) = data.get(start..end) else {
        return Err(format!(
            "frame of {} bytes extends past the end of the file ({avail} bytes left)",
            HEADER_LEN + len_usize
        ));
    };
    check_checksum(stored, crc(len.to_le_bytes(), payload))?;
    Ok(start..end)
}

/// `Err` naming both values if the `stored` checksum does not accept the `computed` one
/// (`chronokv_vfs::checksum_accepts`).
pub(crate) fn check_checksum(stored: u32, computed: u32) -> Result<(), String> {
    if chronokv_vfs::checksum_accepts(stored, computed) {
        return Ok(());
    }
    Err(format!(
        "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_check_round_trips_and_damage_is_named() {
        let mut buf = Vec::new();
        encode(b"abc", &mut buf);
        assert_eq!(check(&buf, 0, 16), Ok(8..11));
        assert!(check(&buf, 0, 2).unwrap_err().contains("limit"));
        assert!(check(&buf[..10], 0, 16)
            .unwrap_err()
            .contains("past the end"));
        buf[9] ^= 1;
        assert!(check(&buf, 0, 16).unwrap_err().contains("checksum"));
        assert!(check(&[0; 8], 0, 16).unwrap_err().contains("zero-filled"));
    }
}
