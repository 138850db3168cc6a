//! Versions, entry kinds and the internal order.

use bytes::Bytes;
use std::cmp::Ordering;
use std::fmt;

/// A commit's sequence number. Every committed entry gets the next one; the entries of one
/// batch get consecutive versions and become visible together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u64);

impl Version {
    /// Before the first commit.
    pub const ZERO: Version = Version(0);
    /// The largest version: a snapshot at `MAX` sees everything.
    pub const MAX: Version = Version(u64::MAX);

    /// The raw sequence number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl From<u64> for Version {
    fn from(v: u64) -> Self {
        Version(v)
    }
}

/// What an entry does to its key.
///
/// Persisted in the WAL and in run files: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A tombstone: the key is deleted as of this version.
    Delete = 0,
    /// The key holds the entry's value (which may be empty) as of this version.
    Put = 1,
}

impl Kind {
    /// Decodes a persisted kind byte.
    pub fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            _ => None,
        }
    }

    /// The persisted byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// One versioned entry. For a [`Kind::Delete`] the value is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The user key.
    pub key: Bytes,
    /// The commit version that wrote this entry.
    pub version: Version,
    /// The commit's time: microseconds since the Unix epoch, at millisecond resolution
    /// (see [`crate::time`]). Equal for every entry of one commit.
    pub time: u64,
    /// Put or delete.
    pub kind: Kind,
    /// The value (empty for deletes; an empty put is a legal, distinct value).
    pub value: Bytes,
}

/// The internal order: user key ascending (bytewise), then version descending.
pub fn internal_cmp(a_key: &[u8], a_ver: Version, b_key: &[u8], b_ver: Version) -> Ordering {
    a_key.cmp(b_key).then_with(|| b_ver.cmp(&a_ver))
}

impl Entry {
    /// Compares two entries in internal order.
    pub fn internal_cmp(&self, other: &Entry) -> Ordering {
        internal_cmp(&self.key, self.version, &other.key, other.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_kind_bytes_never_change() {
        assert_eq!(Kind::Delete.as_u8(), 0);
        assert_eq!(Kind::Put.as_u8(), 1);
        assert_eq!(Kind::from_u8(1), Some(Kind::Put));
        assert_eq!(Kind::from_u8(2), None);
    }

    #[test]
    fn newest_version_sorts_first_within_a_key() {
        assert_eq!(
            internal_cmp(b"a", Version(5), b"a", Version(3)),
            Ordering::Less
        );
        assert_eq!(
            internal_cmp(b"a", Version(1), b"b", Version(9)),
            Ordering::Less
        );
        assert_eq!(
            internal_cmp(b"a", Version(2), b"a", Version(2)),
            Ordering::Equal
        );
    }
}
