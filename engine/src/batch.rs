//! [`WriteBatch`]: entries committed atomically under consecutive versions.

use chronokv_wal::{entry_encoded_len, BatchEntries, MAX_BATCH_BYTES, MAX_KEY_LEN, MAX_VALUE_LEN};

/// A group of puts and deletes applied atomically: after a crash or at any moment, readers
/// see all of them or none. Later entries for the same key win (they get higher versions).
///
/// A batch is bounded: keys up to 64 KiB, values up to 256 MiB, and all entries together up
/// to [`WriteBatch::max_bytes`] ([`WriteBatch::MAX_BYTES`] unless chosen with
/// [`WriteBatch::with_max_bytes`]). An entry past a bound is not added; writing the batch
/// then fails with [`Error::InvalidArgument`](crate::Error::InvalidArgument) before anything
/// is logged, and the database stays writable.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    pub(crate) entries: BatchEntries,
    max_bytes: usize,
    /// The first invalid entry, reported when the batch is written.
    invalid: Option<String>,
}

impl Default for WriteBatch {
    fn default() -> Self {
        WriteBatch {
            entries: BatchEntries::default(),
            max_bytes: WriteBatch::MAX_BYTES,
            invalid: None,
        }
    }
}

/// Why a key or value of these sizes cannot be written, if it cannot.
fn size_problem(key_len: usize, value_len: usize) -> Result<(), String> {
    if key_len > MAX_KEY_LEN {
        Err(format!(
            "key of {key_len} bytes exceeds the {MAX_KEY_LEN}-byte limit"
        ))
    } else if value_len > MAX_VALUE_LEN {
        Err(format!(
            "value of {value_len} bytes exceeds the {MAX_VALUE_LEN}-byte limit"
        ))
    } else {
        Ok(())
    }
}

/// Fails with `InvalidArgument` when a key or value of these sizes cannot be written.
pub(crate) fn check_sizes(key_len: usize, value_len: usize) -> crate::Result<()> {
    size_problem(key_len, value_len).map_err(crate::Error::InvalidArgument)
}

/// Why a batch of `encoded` bytes cannot take `added` more under a bound of `max`, if it
/// cannot. `what` names the batch in the message ("batch", "transaction").
pub(crate) fn total_problem(
    what: &str,
    encoded: usize,
    added: usize,
    max: usize,
) -> Result<(), String> {
    let total = encoded.saturating_add(added);
    if total > max {
        Err(format!(
            "{what} of {total} bytes (encoded) exceeds the {max}-byte limit"
        ))
    } else {
        Ok(())
    }
}

impl WriteBatch {
    /// The most bytes a batch's entries may take, encoded (a little under 1 GiB): what one
    /// WAL record can carry. Each entry costs its key and value plus 9 bytes.
    pub const MAX_BYTES: usize = MAX_BATCH_BYTES;

    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch whose entries may take at most `max_bytes` encoded (capped at
    /// [`WriteBatch::MAX_BYTES`]), as RocksDB's `WriteBatch(reserved, max_bytes)`: a bound
    /// on what one commit may carry, checked as entries are added.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        WriteBatch {
            max_bytes: max_bytes.min(Self::MAX_BYTES),
            ..Self::default()
        }
    }

    /// The bound on this batch's encoded size.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn check(&mut self, key: &[u8], value_len: usize) -> bool {
        if self.invalid.is_some() {
            return false;
        }
        let added = entry_encoded_len(key.len(), value_len);
        let checked = size_problem(key.len(), value_len)
            .and_then(|()| total_problem("batch", self.encoded_len(), added, self.max_bytes));
        if let Err(why) = checked {
            self.invalid = Some(why);
        }
        self.invalid.is_none()
    }

    /// Sets `key` to `value` (an empty value is a value, not a deletion).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref(), value.as_ref());
        if self.check(key, value.len()) {
            self.entries.put(key, value);
        }
        self
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        if self.check(key, 0) {
            self.entries.delete(key);
        }
        self
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.count() as usize
    }

    /// True when the batch holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry (and any recorded invalid entry); the bound stays.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.invalid = None;
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        match &self.invalid {
            Some(why) => Err(crate::Error::InvalidArgument(why.clone())),
            None => Ok(()),
        }
    }

    /// The keys of the entries, in batch order (repeats included).
    pub(crate) fn keys(&self) -> Vec<bytes::Bytes> {
        self.entries
            .iter()
            .filter_map(|e| e.ok().map(|(_, key, _)| bytes::Bytes::copy_from_slice(key)))
            .collect()
    }

    pub(crate) fn encoded_len(&self) -> usize {
        self.entries.encoded_len()
    }
}
