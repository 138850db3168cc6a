//! [`BatchEntries`], the encoded entries of one batch, and [`EntryIter`], their validating
//! decoder.
//!
//! ```text
//! entries := count × ( kind u8 | key_len varint | value_len varint | key[key_len] | value[value_len] )
//! ```
//!
//! This is format v2's encoding (`docs/format/wal.md`); v1 segments' fixed-width entries
//! are converted to it when read (`crate::v1`), so every record in memory has this form.

use crate::varint::{self, MAX_U32_LEN};
use crate::{Error, MAX_KEY_LEN, MAX_VALUE_LEN};
use chronokv_snapshot::Kind;
use std::path::PathBuf;

/// The most bytes an entry header takes: kind (1) + key_len (at most 3 for 65 536) +
/// value_len (at most 5 for 2^28).
pub(crate) const MAX_ENTRY_HEADER_LEN: usize = 9;

/// The bytes an entry with these lengths takes: its header, key and value.
pub(crate) const fn encoded_len(key_len: usize, value_len: usize) -> usize {
    1 + varint::encoded_len(key_len as u64)
        + varint::encoded_len(value_len as u64)
        + key_len
        + value_len
}

/// The encoded entries of one batch (the `entries` grammar of the WAL format), built
/// incrementally. The bytes are exactly what goes into a frame's payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchEntries {
    buf: Vec<u8>,
    count: u32,
}

impl BatchEntries {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a put of `value` (which may be empty) under `key`.
    ///
    /// # Panics
    ///
    /// If `key.len() > MAX_KEY_LEN`, `value.len() > MAX_VALUE_LEN`, or the batch already
    /// holds `u32::MAX` entries. Callers validate user input first (see
    /// [`check_entry_lens`]); the WAL never persists an entry it could not read back.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.push(Kind::Put, key, value);
    }

    /// Appends a delete (tombstone) of `key`.
    ///
    /// # Panics
    ///
    /// If `key.len() > MAX_KEY_LEN` or the batch already holds `u32::MAX` entries.
    pub fn delete(&mut self, key: &[u8]) {
        self.push(Kind::Delete, key, &[]);
    }

    /// Appends one entry (checked like [`BatchEntries::put`]).
    pub(crate) fn push(&mut self, kind: Kind, key: &[u8], value: &[u8]) {
        if let Err(reason) = check_entry_lens(key.len(), value.len()) {
            panic!("BatchEntries: {reason}");
        }
        self.count = self
            .count
            .checked_add(1)
            .expect("BatchEntries: more than u32::MAX entries");
        self.buf
            .reserve(MAX_ENTRY_HEADER_LEN + key.len() + value.len());
        // Built in place and appended at once; the lengths were checked to fit.
        let mut head = [0u8; MAX_ENTRY_HEADER_LEN];
        head[0] = kind.as_u8();
        let n = varint::write(&mut head, 1, key.len() as u64);
        let n = varint::write(&mut head, n, value.len() as u64);
        // A fixed-size copy (no memcpy call), then the unused bytes cut off.
        self.buf.extend_from_slice(&head);
        self.buf
            .truncate(self.buf.len() - (MAX_ENTRY_HEADER_LEN - n));
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
    }

    /// Takes the encoded bytes, leaving the batch empty.
    pub(crate) fn take_bytes(&mut self) -> Vec<u8> {
        self.count = 0;
        std::mem::take(&mut self.buf)
    }

    /// The number of entries.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// True when the batch holds no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The length of the encoded entries in bytes.
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// The encoded entries (the `entries` grammar).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }

    /// The entries in insertion order. Never yields an error for a batch built with
    /// [`BatchEntries::put`] / [`BatchEntries::delete`].
    pub fn iter(&self) -> EntryIter<'_> {
        EntryIter::new(&self.buf, self.count)
    }
}

/// Checks an entry's key and value lengths against [`MAX_KEY_LEN`] and [`MAX_VALUE_LEN`].
pub fn check_entry_lens(key_len: usize, value_len: usize) -> Result<(), String> {
    if key_len > MAX_KEY_LEN {
        return Err(format!("key length {key_len} exceeds {MAX_KEY_LEN}"));
    }
    if value_len > MAX_VALUE_LEN {
        return Err(format!("value length {value_len} exceeds {MAX_VALUE_LEN}"));
    }
    Ok(())
}

/// Decodes an `entries` byte string holding `count` entries, validating every length.
///
/// Yields `count` entries, then, if bytes are left over, one error; it stops (returns `None`
/// forever) after the first error. Errors are [`Error::Corruption`] with an empty path and
/// the offset within `bytes` where the bad entry (or the leftover bytes) starts. A delete
/// must have an empty value. Never panics and never allocates.
#[derive(Clone, Debug)]
pub struct EntryIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    remaining: u32,
    done: bool,
}

impl<'a> EntryIter<'a> {
    /// An iterator over the `count` entries encoded in `bytes`.
    pub fn new(bytes: &'a [u8], count: u32) -> Self {
        EntryIter {
            bytes,
            pos: 0,
            remaining: count,
            done: false,
        }
    }

    fn fail<T>(&mut self, reason: String) -> Option<Result<T, Error>> {
        self.done = true;
        Some(Err(Error::Corruption {
            path: PathBuf::new(),
            offset: self.pos as u64,
            reason,
        }))
    }

    /// The varint length at `at` and its size, or the reason it is damaged.
    fn len_at(&self, at: usize, field: &str) -> Result<(usize, usize), String> {
        let (v, n) = varint::get(self.bytes, at, MAX_U32_LEN).map_err(|b| b.describe(field))?;
        Ok((v as usize, n))
    }

    /// The header of the entry at `pos`: kind, key and value lengths (checked against the
    /// limits) and where the key starts.
    fn header(&self) -> Result<(Kind, usize, usize, usize), String> {
        let Some(&kind_byte) = self.bytes.get(self.pos) else {
            return Err(format!(
                "entry header missing ({} entries missing)",
                self.remaining
            ));
        };
        let kind =
            Kind::from_u8(kind_byte).ok_or_else(|| format!("unknown entry kind {kind_byte}"))?;
        let key_at = self.pos.saturating_add(1);
        // Both lengths below 128, one byte each: the common case, and within the limits.
        if let Some(&[k, v]) = self.bytes.get(key_at..key_at.saturating_add(2)) {
            if k < 0x80 && v < 0x80 {
                return Ok((kind, usize::from(k), usize::from(v), key_at + 2));
            }
        }
        let (key_len, key_len_len) = self.len_at(key_at, "key_len")?;
        let value_at = key_at.saturating_add(key_len_len);
        let (value_len, value_len_len) = self.len_at(value_at, "value_len")?;
        check_entry_lens(key_len, value_len)?;
        Ok((
            kind,
            key_len,
            value_len,
            value_at.saturating_add(value_len_len),
        ))
    }
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = Result<(Kind, &'a [u8], &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let left = self.bytes.len().saturating_sub(self.pos);
        if self.remaining == 0 {
            self.done = true;
            if left != 0 {
                return self.fail(format!("{left} bytes left over after the last entry"));
            }
            return None;
        }
        let (kind, key_len, value_len, key_start) = match self.header() {
            Ok(h) => h,
            Err(reason) => return self.fail(reason),
        };
        if kind == Kind::Delete && value_len != 0 {
            return self.fail(format!("delete entry with a {value_len}-byte value"));
        }
        let key_end = key_start.saturating_add(key_len);
        let value_end = key_end.saturating_add(value_len);
        let (Some(key), Some(value)) = (
            self.bytes.get(key_start..key_end),
            self.bytes.get(key_end..value_end),
        ) else {
            return self.fail(format!(
                "entry of {} bytes overruns the {left} bytes left",
                value_end - self.pos
            ));
        };
        self.pos = value_end;
        self.remaining -= 1;
        Some(Ok((kind, key, value)))
    }
}

impl std::iter::FusedIterator for EntryIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_of(e: Error) -> u64 {
        match e {
            Error::Corruption { offset, .. } => offset,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn builds_and_iterates() {
        let mut b = BatchEntries::new();
        assert!(b.is_empty());
        b.put(b"a", b"1");
        b.put(b"", b"");
        b.delete(b"zz");
        assert_eq!(b.count(), 3);
        // Each header is 3 bytes (kind, 1-byte key_len, 1-byte value_len).
        assert_eq!(b.encoded_len(), 3 * 3 + 4);
        assert_eq!(b.as_bytes()[..5], [1, 1, 1, b'a', b'1']);
        let lens = encoded_len(1, 1) + encoded_len(0, 0) + encoded_len(2, 0);
        assert_eq!(lens, b.encoded_len());
        let got: Vec<_> = b.iter().map(|r| r.unwrap()).collect();
        assert_eq!(
            got,
            vec![
                (Kind::Put, &b"a"[..], &b"1"[..]),
                (Kind::Put, &b""[..], &b""[..]),
                (Kind::Delete, &b"zz"[..], &b""[..]),
            ]
        );
        b.clear();
        assert!(b.is_empty() && b.encoded_len() == 0 && b.iter().next().is_none());
    }

    #[test]
    fn max_key_is_accepted() {
        let mut b = BatchEntries::new();
        let key = vec![7u8; MAX_KEY_LEN];
        b.put(&key, &[1; 70_000]);
        let (_, k, v) = b.iter().next().unwrap().unwrap();
        assert_eq!((k.len(), v.len()), (MAX_KEY_LEN, 70_000));
        // 65 536 and 70 000 both take 3 varint bytes.
        assert_eq!(b.encoded_len(), 1 + 3 + 3 + MAX_KEY_LEN + 70_000);
        assert_eq!(
            encoded_len(MAX_KEY_LEN, MAX_VALUE_LEN),
            MAX_ENTRY_HEADER_LEN + MAX_KEY_LEN + MAX_VALUE_LEN
        );
    }

    #[test]
    #[should_panic(expected = "key length")]
    fn oversized_key_panics() {
        BatchEntries::new().put(&vec![0; MAX_KEY_LEN + 1], b"");
    }

    #[test]
    fn rejects_bad_encodings_with_offsets() {
        let mut b = BatchEntries::new();
        b.put(b"k", b"v");
        let good = b.as_bytes().to_vec();
        assert_eq!(good, [1, 1, 1, b'k', b'v']);
        // Too few entries for the count.
        let mut it = EntryIter::new(&good, 2);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(offset_of(it.next().unwrap().unwrap_err()), 5);
        assert!(it.next().is_none());
        // Leftover bytes.
        let mut it = EntryIter::new(&good, 0);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // Unknown kind.
        let mut bad = good.clone();
        bad[0] = 9;
        assert!(EntryIter::new(&bad, 1).next().unwrap().is_err());
        // Delete with a value.
        let mut bad = good.clone();
        bad[0] = 0;
        assert!(EntryIter::new(&bad, 1).next().unwrap().is_err());
        // Oversized, overrunning, overlong and over-wide lengths: (key_len, value_len)
        // encodings, each rejected at the entry's offset.
        let cases: [(&[u8], &[u8], &str); 5] = [
            (&[0x81, 0x80, 0x04], &[1], "key length 65537"),
            (&[1], &[0x80, 0x80, 0x80, 0x80, 0x02], "value length"),
            (&[1], &[2], "overruns"),
            (&[0x81, 0x00], &[1], "overlong"),
            (&[1], &[0xff, 0xff, 0xff, 0xff, 0x1f], "too long"),
        ];
        for (key_len, value_len, why) in cases {
            let mut bad = vec![1];
            bad.extend_from_slice(key_len);
            bad.extend_from_slice(value_len);
            bad.extend_from_slice(b"kv");
            let mut it = EntryIter::new(&bad, 1);
            let e = it.next().unwrap().unwrap_err();
            assert!(e.to_string().contains(why), "{why}: {e}");
            assert_eq!(offset_of(e), 0);
        }
        let e = EntryIter::new(&[1, 0x80], 1).next().unwrap().unwrap_err();
        assert!(e.to_string().contains("truncated varint key_len"), "{e}");
        // Every truncation fails cleanly.
        for cut in 0..good.len() {
            assert!(EntryIter::new(&good[..cut], 1).any(|r| r.is_err()));
        }
    }
}
