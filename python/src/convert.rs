//! Conversions at the Python boundary: keys and values (`bytes`, `bytearray` or `str`),
//! key ranges, durability names and times.

use chronokv::{Bytes, Durability};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyByteArray, PyBytes, PyString};
use std::ops::Bound as KeyBound;
use std::time::SystemTime;

/// A key or value from Python: `bytes` (borrowed, no copy), `str` (its UTF-8, borrowed)
/// or `bytearray` (copied). Holds a reference to the Python object, so it stays valid
/// while the GIL is released.
pub enum Data {
    Bytes(PyBackedBytes),
    Str(PyBackedStr),
}

impl AsRef<[u8]> for Data {
    fn as_ref(&self) -> &[u8] {
        match self {
            Data::Bytes(b) => b.as_ref(),
            Data::Str(s) => s.as_bytes(),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Data {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
            return Ok(Data::Bytes(obj.extract()?));
        }
        if obj.is_instance_of::<PyString>() {
            return Ok(Data::Str(obj.extract()?));
        }
        Err(PyTypeError::new_err(format!(
            "keys and values are bytes, bytearray or str, not {}",
            obj.get_type().name()?
        )))
    }
}

/// An owned copy of optional key data, for bounds that outlive the call.
pub fn owned(data: Option<Data>) -> Option<Bytes> {
    data.map(|d| Bytes::copy_from_slice(d.as_ref()))
}

/// The key range of a scan: `start` inclusive, `end` exclusive, or every key starting
/// with `prefix` (which cannot be combined with either).
pub fn key_range(
    start: Option<Data>,
    end: Option<Data>,
    prefix: Option<Data>,
) -> PyResult<(KeyBound<Bytes>, KeyBound<Bytes>)> {
    if let Some(prefix) = prefix {
        if start.is_some() || end.is_some() {
            return Err(PyValueError::new_err(
                "scan takes a prefix or start/end bounds, not both",
            ));
        }
        return Ok(prefix_range(prefix.as_ref()));
    }
    let lo = owned(start).map_or(KeyBound::Unbounded, KeyBound::Included);
    let hi = owned(end).map_or(KeyBound::Unbounded, KeyBound::Excluded);
    Ok((lo, hi))
}

/// The keys starting with `prefix`: from it up to (excluding) its successor, the prefix
/// with trailing 0xff bytes dropped and its last byte incremented.
fn prefix_range(prefix: &[u8]) -> (KeyBound<Bytes>, KeyBound<Bytes>) {
    let lo = KeyBound::Included(Bytes::copy_from_slice(prefix));
    let mut end = prefix.to_vec();
    while end.last() == Some(&0xff) {
        end.pop();
    }
    match end.last_mut() {
        Some(last) => {
            *last += 1;
            (lo, KeyBound::Excluded(Bytes::from(end)))
        }
        None => (lo, KeyBound::Unbounded),
    }
}

/// A durability name: `"buffered"` (survives a process crash) or `"sync"` (fsynced).
pub fn durability(name: &str) -> PyResult<Durability> {
    match name {
        "buffered" => Ok(Durability::Buffered),
        "sync" => Ok(Durability::Sync),
        other => Err(PyValueError::new_err(format!(
            "durability is \"buffered\" or \"sync\", not {other:?}"
        ))),
    }
}

/// A moment from Python: a `datetime` (a naive one is local time, as `datetime.timestamp`
/// reads it) or Unix seconds (`int` or `float`).
pub fn moment(obj: &Bound<'_, PyAny>) -> PyResult<SystemTime> {
    if let Ok(seconds) = obj.extract::<f64>() {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(PyValueError::new_err(
                "a time in Unix seconds must be finite and not negative",
            ));
        }
        return Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(seconds));
    }
    let aware = if obj.getattr("tzinfo")?.is_none() {
        obj.call_method0("astimezone")?
    } else {
        obj.clone()
    };
    aware.extract::<SystemTime>()
}
