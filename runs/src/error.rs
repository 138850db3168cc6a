//! The error type of the run crate.
//!
//! Every failure names the file it happened in. [`Error::Corruption`] also carries the file
//! offset of the structure that failed a check (a block message, the private region, the
//! footer, the tail), so an operator can find the damaged bytes with a hex editor.

use std::path::PathBuf;

/// Errors from writing or reading a run file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file system failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file's bytes fail a check (checksum, bounds, order, type).
    #[error("corrupt run file {} at offset {offset}: {reason}", path.display())]
    Corruption {
        /// The file involved.
        path: PathBuf,
        /// The file offset of the damaged structure.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// The caller broke a contract (entries out of order, an empty run, bad options).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, offset: u64, reason: impl Into<String>) -> Self {
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
