//! The rows of a key's history and of the change feed, as small immutable Python objects.

use chronokv::{Bytes, Change as EngineChange, HistoryEntry as EngineEntry};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::time::SystemTime;

/// One retained version of a key: `version`, `time` (the commit time, an aware UTC
/// `datetime`) and `value` (`None` for a delete).
#[pyclass(frozen, module = "chronokv", eq)]
#[derive(PartialEq)]
pub struct HistoryEntry {
    #[pyo3(get)]
    version: u64,
    #[pyo3(get)]
    time: SystemTime,
    value: Option<Bytes>,
}

#[pymethods]
impl HistoryEntry {
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.value.as_deref().map(|v| PyBytes::new(py, v))
    }

    /// True for a delete.
    #[getter]
    fn deleted(&self) -> bool {
        self.value.is_none()
    }

    fn __repr__(&self) -> String {
        format!(
            "HistoryEntry(version={}, value={})",
            self.version,
            show(self.value.as_deref())
        )
    }
}

impl From<EngineEntry> for HistoryEntry {
    fn from(h: EngineEntry) -> Self {
        HistoryEntry {
            version: h.version.0,
            time: h.time,
            value: h.value,
        }
    }
}

/// One committed put or delete: `version`, `time`, `key` and `value` (`None` for a delete).
#[pyclass(frozen, module = "chronokv", eq)]
#[derive(PartialEq)]
pub struct Change {
    #[pyo3(get)]
    version: u64,
    #[pyo3(get)]
    time: SystemTime,
    key: Bytes,
    value: Option<Bytes>,
}

#[pymethods]
impl Change {
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key)
    }

    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.value.as_deref().map(|v| PyBytes::new(py, v))
    }

    /// True for a delete.
    #[getter]
    fn deleted(&self) -> bool {
        self.value.is_none()
    }

    fn __repr__(&self) -> String {
        format!(
            "Change(version={}, key={}, value={})",
            self.version,
            show(Some(&self.key)),
            show(self.value.as_deref())
        )
    }
}

impl From<EngineChange> for Change {
    fn from(c: EngineChange) -> Self {
        Change {
            version: c.version.0,
            time: c.time,
            key: c.key,
            value: c.value,
        }
    }
}

/// A value for a repr: Python's bytes literal syntax for short values.
fn show(value: Option<&[u8]>) -> String {
    match value {
        None => "None".into(),
        Some(v) if v.len() > 48 => format!("<{} bytes>", v.len()),
        Some(v) => format!("b'{}'", v.escape_ascii()),
    }
}
