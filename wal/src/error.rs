//! The error type of the WAL crate.

use std::path::{Path, PathBuf};

/// What can go wrong while writing or reading a WAL segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file system failed, or the writer is unusable after an earlier failure (then
    /// `source` is of kind `std::io::ErrorKind::Other`).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The writer refused a request and wrote nothing: a record too large for a frame, or
    /// versions that do not continue the previous record's. The segment is unchanged and
    /// the writer stays usable; this is the caller's mistake, not the device's.
    #[error("WAL {path} refused a record: {reason}")]
    Refused {
        /// The segment file.
        path: PathBuf,
        /// Why the record was refused.
        reason: String,
    },
    /// The bytes of a segment are not a valid log. `offset` is a byte offset into the file
    /// (or into an `entries` byte string, with an empty `path`, when the error comes from
    /// [`crate::EntryIter`] on its own).
    #[error("corrupt WAL {path} at offset {offset}: {reason}")]
    Corruption {
        /// The segment file (empty when not known).
        path: PathBuf,
        /// Where valid data stopped.
        offset: u64,
        /// Why the bytes were rejected.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn refused(path: &Path, reason: String) -> Self {
        Error::Refused {
            path: path.to_path_buf(),
            reason,
        }
    }

    pub(crate) fn corruption(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}
