//! LEB128 unsigned varints, as format v2 stores its lengths and header fields.
//!
//! Seven bits per byte, least significant group first, the high bit set on every byte but
//! the last. The decoder accepts only the *canonical* (shortest) encoding of a value within
//! a caller's byte budget: a final byte of 0 after another byte (an overlong encoding), a
//! set high bit in the last allowed byte, or bits beyond the value's width are damage. One
//! encoding per value keeps the format's bytes a function of its contents, so a re-encoded
//! segment is byte-identical and a corrupted byte cannot hide behind an alternative form.

/// The longest encoding of a `u64` (10 × 7 ≥ 64 bits).
pub(crate) const MAX_U64_LEN: usize = 10;
/// The longest encoding of a `u32` (5 × 7 ≥ 32 bits).
pub(crate) const MAX_U32_LEN: usize = 5;

/// The number of bytes [`put`] writes for `v`.
pub(crate) const fn encoded_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    // ceil(bits / 7) for bits in 1..=64, without a division.
    (bits * 9 + 64) / 64
}

/// Appends the encoding of `v` to `out` (tests build frames by hand with it).
#[cfg(test)]
pub(crate) fn put(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; MAX_U64_LEN];
    let n = write(&mut buf, 0, v);
    out.extend_from_slice(&buf[..n]);
}

/// Writes the encoding of `v` at `buf[at..]` and returns the position after it. Callers
/// build headers in stack arrays sized for the longest encodings (one copy per header).
///
/// # Panics
/// If `buf` has fewer than `encoded_len(v)` bytes from `at`.
pub(crate) fn write(buf: &mut [u8], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

/// Why a varint was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// The bytes ended inside the varint.
    Truncated,
    /// Longer than `max_len` bytes, or wider than the value's type.
    TooLong,
    /// A longer encoding than the value needs.
    Overlong,
}

impl Bad {
    pub(crate) fn describe(self, field: &str) -> String {
        match self {
            Bad::Truncated => format!("truncated varint {field}"),
            Bad::TooLong => format!("varint {field} is too long"),
            Bad::Overlong => format!("non-canonical (overlong) varint {field}"),
        }
    }
}

/// Decodes the varint at `data[at..]`, at most `max_len` bytes long (`MAX_U64_LEN` or
/// `MAX_U32_LEN`; a `MAX_U32_LEN` value must also fit in 32 bits). Returns the value and
/// the encoding's length. Never panics.
#[inline]
pub(crate) fn get(data: &[u8], at: usize, max_len: usize) -> Result<(u64, usize), Bad> {
    // Most fields (every length below 128, every delta of 0) are one byte.
    match data.get(at) {
        Some(&b) if b < 0x80 => Ok((u64::from(b), 1)),
        Some(_) => get_long(data, at, max_len),
        None => Err(Bad::Truncated),
    }
}

fn get_long(data: &[u8], at: usize, max_len: usize) -> Result<(u64, usize), Bad> {
    let bits = if max_len == MAX_U32_LEN { 32 } else { 64 };
    let mut v = 0u64;
    for i in 0..max_len {
        let Some(&b) = data.get(at.saturating_add(i)) else {
            return Err(Bad::Truncated);
        };
        let shift = 7 * i as u32;
        let group = u64::from(b & 0x7f);
        // The last group may only hold the bits left of the type's width.
        if shift + 7 > bits && group >> (bits - shift) != 0 {
            return Err(Bad::TooLong);
        }
        v |= group << shift;
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(Bad::Overlong);
            }
            return Ok((v, i + 1));
        }
    }
    Err(Bad::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put(&mut out, v);
        out
    }

    #[test]
    fn round_trips_at_every_width() {
        let mut cases = vec![0, 1, 127, 128, 255, 300, 16_383, 16_384, u64::MAX];
        cases.extend((0..64).map(|s| 1u64 << s));
        cases.extend((1..64).map(|s| (1u64 << s) - 1));
        for v in cases {
            let b = enc(v);
            assert_eq!(b.len(), encoded_len(v), "{v}");
            assert_eq!(get(&b, 0, MAX_U64_LEN), Ok((v, b.len())), "{v}");
            let fits_u32 = u32::try_from(v).is_ok();
            assert_eq!(get(&b, 0, MAX_U32_LEN).is_ok(), fits_u32, "{v}");
        }
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(encoded_len(u64::MAX), MAX_U64_LEN);
        assert_eq!(encoded_len(u64::from(u32::MAX)), MAX_U32_LEN);
        for bits in 1..=64u32 {
            let v = u64::MAX >> (64 - bits);
            assert_eq!(encoded_len(v), bits.div_ceil(7) as usize, "{bits} bits");
        }
    }

    #[test]
    fn rejects_truncated_overlong_and_too_wide_encodings() {
        assert_eq!(get(&[], 0, MAX_U64_LEN), Err(Bad::Truncated));
        assert_eq!(get(&[0x80], 0, MAX_U64_LEN), Err(Bad::Truncated));
        assert_eq!(get(&[0x80, 0x00], 0, MAX_U64_LEN), Err(Bad::Overlong));
        assert_eq!(get(&[0x81, 0x80, 0x00], 0, MAX_U64_LEN), Err(Bad::Overlong));
        // u64::MAX is 9 × 0xff then 0x01; a 10th byte of 0x02 would be bit 64.
        let mut wide = vec![0xff; 9];
        wide.push(0x02);
        assert_eq!(get(&wide, 0, MAX_U64_LEN), Err(Bad::TooLong));
        assert_eq!(get(&[0xff; 11], 0, MAX_U64_LEN), Err(Bad::TooLong));
        // u32::MAX is 4 × 0xff then 0x0f; 0x10 in the 5th byte is bit 32.
        assert_eq!(
            get(&[0xff, 0xff, 0xff, 0xff, 0x10], 0, MAX_U32_LEN),
            Err(Bad::TooLong)
        );
        assert_eq!(get(&[0xff; 6], 0, MAX_U32_LEN), Err(Bad::TooLong));
        assert_eq!(get(&[9, 0xac, 0x02], 1, MAX_U32_LEN), Ok((300, 2)));
    }
}
