//! The Python exception hierarchy and the mapping of [`chronokv::Error`] onto it.
//!
//! One class per kind the engine's `Error` distinguishes, all under `ChronoError`, each
//! keeping the engine's message (its `Display`). Kinds that carry data (the oldest readable
//! version, the damaged file and offset) carry it as attributes too, so callers branch on
//! them without parsing messages. `Conflict.retryable` is true: running the transaction
//! again may succeed.

use chronokv::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    chronokv,
    ChronoError,
    PyException,
    "Base class of every chronokv error."
);
create_exception!(
    chronokv,
    IoError,
    ChronoError,
    "The operating system refused an I/O call."
);
create_exception!(
    chronokv,
    Corruption,
    ChronoError,
    "A file's bytes are not what chronokv wrote (`file` and `offset` name the place)."
);
create_exception!(
    chronokv,
    InvalidArgument,
    ChronoError,
    "The call itself was wrong."
);
create_exception!(
    chronokv,
    Locked,
    ChronoError,
    "Another Db holds the directory."
);
create_exception!(
    chronokv,
    Poisoned,
    ChronoError,
    "An earlier write or sync failed; writes are refused until the store is reopened."
);
create_exception!(
    chronokv,
    Closed,
    ChronoError,
    "The database (or transaction) was closed."
);
create_exception!(
    chronokv,
    ReadOnly,
    ChronoError,
    "The handle was opened with Db.open_read_only and the call would write."
);
create_exception!(
    chronokv,
    VersionNotRetained,
    ChronoError,
    "A read of the past reached beyond the retained history (`oldest` is readable)."
);
create_exception!(
    chronokv,
    TimeNotRetained,
    VersionNotRetained,
    "A read as of a time older than the retained history (`oldest` is readable)."
);
create_exception!(
    chronokv,
    Conflict,
    ChronoError,
    "A transaction's commit would break its isolation; nothing was applied. Retry it."
);

/// The Python exception for an engine error, with the engine's message.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let message = e.to_string();
    let err = match &e {
        Error::Io { .. } => IoError::new_err(message),
        Error::Corruption { .. } => Corruption::new_err(message),
        Error::InvalidArgument(_) => InvalidArgument::new_err(message),
        Error::Locked { .. } => Locked::new_err(message),
        Error::Poisoned { .. } => Poisoned::new_err(message),
        Error::Closed => Closed::new_err(message),
        Error::ReadOnly => ReadOnly::new_err(message),
        Error::VersionNotRetained { .. } => VersionNotRetained::new_err(message),
        Error::TimeNotRetained { .. } => TimeNotRetained::new_err(message),
        Error::Conflict { .. } => Conflict::new_err(message),
        _ => ChronoError::new_err(message),
    };
    // Attributes are best effort: a failure to set one must not hide the error itself.
    let _ = set_attributes(py, &err, &e);
    err
}

fn set_attributes(py: Python<'_>, err: &PyErr, e: &Error) -> PyResult<()> {
    let value = err.value(py);
    match e {
        Error::Corruption { file, offset, .. } => {
            value.setattr("file", file.display().to_string())?;
            value.setattr("offset", *offset)?;
        }
        Error::Io { path, .. } => value.setattr("path", path.display().to_string())?,
        Error::VersionNotRetained { requested, oldest } => {
            value.setattr("requested", requested.0)?;
            value.setattr("oldest", oldest.0)?;
        }
        Error::TimeNotRetained {
            requested, oldest, ..
        } => {
            value.setattr("requested_time", *requested)?;
            value.setattr("oldest", oldest.0)?;
        }
        _ => {}
    }
    Ok(())
}

/// An error for a call on a transaction that already committed or rolled back.
pub fn finished_transaction() -> PyErr {
    Closed::new_err("the transaction has already committed or rolled back")
}

/// Registers the classes in `m` and marks `Conflict` retryable.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ChronoError", py.get_type::<ChronoError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("Corruption", py.get_type::<Corruption>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    m.add("Locked", py.get_type::<Locked>())?;
    m.add("Poisoned", py.get_type::<Poisoned>())?;
    m.add("Closed", py.get_type::<Closed>())?;
    m.add("ReadOnly", py.get_type::<ReadOnly>())?;
    m.add("VersionNotRetained", py.get_type::<VersionNotRetained>())?;
    m.add("TimeNotRetained", py.get_type::<TimeNotRetained>())?;
    m.add("Conflict", py.get_type::<Conflict>())?;
    py.get_type::<ChronoError>().setattr("retryable", false)?;
    py.get_type::<Conflict>().setattr("retryable", true)?;
    Ok(())
}
