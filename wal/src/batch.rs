//! [`BatchEntries`], the encoded entries of one batch, and [`EntryIter`], their validating
//! decoder.
//!
//! ```text
//! entries := count × ( kind u8 | key_len u32 | value_len u32 | key[key_len] | value[value_len] )
//! ```

use crate::{Error, MAX_KEY_LEN, MAX_VALUE_LEN};
use chronokv_snapshot::Kind;
use std::path::PathBuf;

/// Bytes of an entry header: kind (1) + key_len (4) + value_len (4).
pub(crate) const ENTRY_HEADER_LEN: usize = 9;

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

    fn push(&mut self, kind: Kind, key: &[u8], value: &[u8]) {
        if let Err(reason) = check_entry_lens(key.len(), value.len()) {
            panic!("BatchEntries: {reason}");
        }
        self.count = self
            .count
            .checked_add(1)
            .expect("BatchEntries: more than u32::MAX entries");
        self.buf.reserve(ENTRY_HEADER_LEN + key.len() + value.len());
        let mut head = [0u8; ENTRY_HEADER_LEN];
        head[0] = kind.as_u8();
        // Both lengths were checked above to fit in u32.
        head[1..5].copy_from_slice(&(key.len() as u32).to_le_bytes());
        head[5..9].copy_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&head);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
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

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
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
        let (Some(&kind_byte), Some(key_len), Some(value_len)) = (
            self.bytes.get(self.pos),
            self.u32_at(self.pos.saturating_add(1)),
            self.u32_at(self.pos.saturating_add(5)),
        ) else {
            return self.fail(format!(
                "entry header needs {ENTRY_HEADER_LEN} bytes, {left} left ({} entries missing)",
                self.remaining
            ));
        };
        let Some(kind) = Kind::from_u8(kind_byte) else {
            return self.fail(format!("unknown entry kind {kind_byte}"));
        };
        let (key_len, value_len) = (key_len as usize, value_len as usize);
        if let Err(reason) = check_entry_lens(key_len, value_len) {
            return self.fail(reason);
        }
        if kind == Kind::Delete && value_len != 0 {
            return self.fail(format!("delete entry with a {value_len}-byte value"));
        }
        let key_start = self.pos.saturating_add(ENTRY_HEADER_LEN);
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
        assert_eq!(b.encoded_len(), 3 * ENTRY_HEADER_LEN + 4);
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
        // Too few entries for the count.
        let mut it = EntryIter::new(&good, 2);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(offset_of(it.next().unwrap().unwrap_err()), 11);
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
        // Oversized and overrunning lengths.
        for (at, v) in [(1usize, u32::MAX), (1, 65_537), (5, 1 << 29), (5, 2)] {
            let mut bad = good.clone();
            bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
            let mut it = EntryIter::new(&bad, 1);
            assert_eq!(offset_of(it.next().unwrap().unwrap_err()), 0);
        }
        // Every truncation fails cleanly.
        for cut in 0..good.len() {
            assert!(EntryIter::new(&good[..cut], 1).any(|r| r.is_err()));
        }
    }
}
