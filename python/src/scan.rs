//! Python iterators over engine iterators: `Scan` (key, value pairs of the present, a
//! snapshot or a transaction) and `ChangeIter` (the change feed).

use crate::chunked::Chunked;
use crate::errors::to_py;
use crate::records::Change;
use chronokv::{Bytes, Result};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

type Pairs = Box<dyn Iterator<Item = Result<(Bytes, Bytes)>> + Send>;
type Changes = Box<dyn Iterator<Item = Result<chronokv::Change>> + Send>;

/// The next item of `state`: served with the GIL held when a chunk is ready, read with
/// it released otherwise.
fn next_item<I, T>(
    py: Python<'_>,
    state: &Mutex<Chunked<I, T>>,
    size: fn(&T) -> usize,
) -> PyResult<Option<T>>
where
    I: Iterator<Item = Result<T>> + Send,
    T: Send,
{
    if let Some(mut ready) = state.try_lock() {
        if !ready.needs_fill() {
            return ready.take().transpose().map_err(|e| to_py(py, e));
        }
    }
    py.detach(|| {
        let mut state = state.lock();
        if state.needs_fill() {
            state.fill(size);
        }
        state.take()
    })
    .transpose()
    .map_err(|e| to_py(py, e))
}

/// An iterator of `(key, value)` pairs of `bytes`, in key order (or reversed), read in
/// bounded chunks.
#[pyclass(frozen, module = "chronokv")]
pub struct Scan {
    state: Mutex<Chunked<Pairs, (Bytes, Bytes)>>,
}

impl Scan {
    pub fn new(pairs: Pairs) -> Self {
        Scan {
            state: Mutex::new(Chunked::new(pairs)),
        }
    }

    /// A scan of an engine iterator, reversed if asked.
    pub fn of(iter: chronokv::Iter, reverse: bool) -> Self {
        if reverse {
            Scan::new(Box::new(iter.rev()))
        } else {
            Scan::new(Box::new(iter))
        }
    }
}

#[pymethods]
impl Scan {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>> {
        let item = next_item(py, &self.state, |(k, v)| k.len() + v.len())?;
        Ok(item.map(|(k, v)| (PyBytes::new(py, &k), PyBytes::new(py, &v))))
    }
}

/// An iterator of `Change`s in version order, read in bounded windows.
#[pyclass(frozen, module = "chronokv")]
pub struct ChangeIter {
    state: Mutex<Chunked<Changes, chronokv::Change>>,
}

impl ChangeIter {
    pub fn new(changes: Changes) -> Self {
        ChangeIter {
            state: Mutex::new(Chunked::new(changes)),
        }
    }
}

#[pymethods]
impl ChangeIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Change>> {
        let size = |c: &chronokv::Change| c.key.len() + c.value.as_ref().map_or(0, |v| v.len());
        Ok(next_item(py, &self.state, size)?.map(Change::from))
    }
}
