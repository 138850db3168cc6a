//! The one public error type.

use chronokv_snapshot::Version;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in chronokv.
///
/// What to do about each kind:
/// - [`Error::Io`]: the operating system refused an operation; check disk space and
///   permissions. A failed write or sync also poisons the database (see `Poisoned`).
/// - [`Error::Corruption`]: a file's bytes are not what chronokv wrote. The error names the
///   file and the byte offset. Restore from a backup or open with a laxer `RecoveryMode`.
/// - [`Error::InvalidArgument`]: the call itself was wrong (a key over 64 KiB, say).
/// - [`Error::Locked`]: another `Db` (in this or another process) has the directory open.
/// - [`Error::Poisoned`]: an earlier write or sync failed, so the database stopped accepting
///   writes rather than risk acknowledging lost data. Reads still work; reopen to recover.
/// - [`Error::Closed`]: the database was closed.
/// - [`Error::ReadOnly`]: the database was opened with `Db::open_read_only`, and the call
///   would write (a commit, a flush, a compaction, a manifest edit). Open it with `Db::open`
///   to write; nothing was changed.
/// - [`Error::VersionNotRetained`], [`Error::TimeNotRetained`]: a read of the past reached
///   beyond the retained history (`Db::history_retention`); the error carries the oldest
///   readable version (and, for a time, its commit time).
/// - [`Error::Conflict`]: a transaction's commit was refused because a concurrent commit
///   wrote what it read (or, under snapshot isolation, what it wrote). Nothing of it was
///   applied: run the transaction again from `Db::begin` ([`Error::is_retryable`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file's content is damaged or inconsistent.
    #[error("corruption in {} at offset {offset}: {reason}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// The byte offset where the damage was found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The arguments of a call are invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The directory is held by another open database.
    #[error("database directory is locked by another open Db: {}", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A previous write failure stopped all writes; reopen the database.
    #[error("database is read-only after an earlier failure: {reason}")]
    Poisoned {
        /// The failure that poisoned the database.
        reason: String,
    },
    /// The database was closed.
    #[error("database is closed")]
    Closed,
    /// The database was opened read-only ([`crate::Db::open_read_only`]) and the call would
    /// write. Nothing was changed.
    #[error("database is open read-only (Db::open_read_only): this call would write")]
    ReadOnly,

    /// A read of the past asked for a version older than the retained history (see
    /// the store's history contract, `Db::history_retention`). Never answered with a newer state instead.
    #[error("version {requested} is no longer retained; the oldest readable version is {oldest}")]
    VersionNotRetained {
        /// The version asked for.
        requested: Version,
        /// The oldest version that can be read now.
        oldest: Version,
    },

    /// A read as of a time older than the retained history.
    #[error(
        "{} is older than the retained history; the oldest readable version is {oldest}{}",
        crate::timefmt::rfc3339(*requested),
        oldest_time.map(|t| format!(", committed at {}", crate::timefmt::rfc3339(t))).unwrap_or_default()
    )]
    TimeNotRetained {
        /// The time asked for.
        requested: std::time::SystemTime,
        /// The oldest version that can be read now.
        oldest: Version,
        /// The commit time of `oldest`, if the time index still holds it: the oldest time
        /// a read as of can ask for.
        oldest_time: Option<std::time::SystemTime>,
    },

    /// A transaction's commit would break its isolation; nothing of it was applied.
    /// Retry the transaction.
    #[error("transaction conflict: {reason}")]
    Conflict {
        /// Which key was written concurrently, and when.
        reason: String,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// True when running the same operation again may succeed: a transaction that failed
    /// with [`Error::Conflict`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

/// A key for an error message: printable ASCII as is, other bytes as `\xNN`, in quotes,
/// cut after 64 bytes.
pub(crate) fn show_key(key: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in key.iter().take(64) {
        match b {
            b'"' | b'\\' => out.extend(['\\', b as char]),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if key.len() > 64 {
        out.push_str(&format!("... ({} bytes)", key.len()));
    }
    out
}

impl From<chronokv_wal::Error> for Error {
    fn from(e: chronokv_wal::Error) -> Self {
        match e {
            chronokv_wal::Error::Io { path, source } => Error::Io { path, source },
            chronokv_wal::Error::Corruption {
                path,
                offset,
                reason,
            } => Error::Corruption {
                file: path,
                offset,
                reason,
            },
            refused @ chronokv_wal::Error::Refused { .. } => {
                Error::InvalidArgument(refused.to_string())
            }
            other => Error::Corruption {
                file: PathBuf::new(),
                offset: 0,
                reason: other.to_string(),
            },
        }
    }
}

impl From<chronokv_runs::Error> for Error {
    fn from(e: chronokv_runs::Error) -> Self {
        match e {
            chronokv_runs::Error::Io { path, source } => Error::Io { path, source },
            chronokv_runs::Error::Corruption {
                path,
                offset,
                reason,
            } => Error::Corruption {
                file: path,
                offset,
                reason,
            },
            chronokv_runs::Error::InvalidInput(m) => Error::InvalidArgument(m),
            other => Error::InvalidArgument(other.to_string()),
        }
    }
}
