//! [`WriteBatch`]: entries committed atomically under consecutive versions.

use chronokv_wal::{BatchEntries, MAX_KEY_LEN, MAX_VALUE_LEN};

/// A group of puts and deletes applied atomically: after a crash or at any moment, readers
/// see all of them or none. Later entries for the same key win (they get higher versions).
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub(crate) entries: BatchEntries,
    /// The first invalid entry, reported when the batch is written.
    invalid: Option<String>,
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

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    fn check(&mut self, key: &[u8], value_len: usize) -> bool {
        if self.invalid.is_some() {
            return false;
        }
        if let Err(why) = size_problem(key.len(), value_len) {
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

    /// Removes every entry (and any recorded invalid entry).
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
