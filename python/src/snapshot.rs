//! `Snapshot`: repeatable reads at one version, and its Arrow streams.

use crate::arrow::{to_pandas, to_polars, BatchStream};
use crate::convert::{key_range, Data};
use crate::errors::{to_py, Closed};
use crate::scan::Scan;
use crate::training::Shuffled;
use chronokv::{Bytes, Snapshot as EngineSnapshot};
use parking_lot::RwLock;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;
use std::time::SystemTime;

/// The default rows of one Arrow batch.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// A consistent view of the store at one version: `get`, `scan` and the Arrow streams all
/// read exactly the commits up to `version`, whatever happens meanwhile. While it lives,
/// compaction keeps what it reads; `release()` (or leaving its `with` block) lets go.
#[pyclass(frozen, module = "chronokv")]
pub struct Snapshot {
    snap: RwLock<Option<Arc<EngineSnapshot>>>,
}

impl Snapshot {
    pub fn new(snap: EngineSnapshot) -> Self {
        Snapshot {
            snap: RwLock::new(Some(Arc::new(snap))),
        }
    }

    fn get_snap(&self) -> PyResult<Arc<EngineSnapshot>> {
        self.snap
            .read()
            .clone()
            .ok_or_else(|| Closed::new_err("the snapshot was released"))
    }

    /// The live pairs of a range as a batch stream that holds the snapshot.
    fn stream(
        &self,
        py: Python<'_>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        batch_rows: usize,
    ) -> PyResult<(chronokv::ArrowBatches, Arc<EngineSnapshot>)> {
        if batch_rows == 0 {
            return Err(PyValueError::new_err("batch_size must be positive"));
        }
        let snap = self.get_snap()?;
        let range = key_range(start, end, prefix)?;
        let batches = py.detach(|| snap.scan_arrow::<Bytes, _>(range, batch_rows));
        Ok((batches, snap))
    }
}

#[pymethods]
impl Snapshot {
    /// The version read: every commit up to and including it is visible.
    #[getter]
    fn version(&self) -> PyResult<u64> {
        Ok(self.get_snap()?.version().0)
    }

    /// The commit time of `version` (an aware UTC datetime), or None if unknown.
    #[getter]
    fn time(&self) -> PyResult<Option<SystemTime>> {
        Ok(self.get_snap()?.time())
    }

    /// The value of `key` at this snapshot, or None.
    fn get<'py>(&self, py: Python<'py>, key: Data) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let snap = self.get_snap()?;
        let value = py.detach(|| snap.get(&key)).map_err(|e| to_py(py, e))?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// `(key, value)` pairs of `[start, end)` (or of `prefix`), in key order or reversed.
    #[pyo3(signature = (start=None, end=None, *, prefix=None, reverse=false))]
    fn scan(
        &self,
        py: Python<'_>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        reverse: bool,
    ) -> PyResult<Scan> {
        let snap = self.get_snap()?;
        let range = key_range(start, end, prefix)?;
        let iter = py.detach(|| snap.scan::<Bytes, _>(range));
        Ok(Scan::of(iter, reverse))
    }

    /// The live pairs of the range as a `pyarrow.RecordBatchReader` of at most
    /// `batch_size` rows a batch (columns key, value, version, time, deleted), streamed.
    #[pyo3(signature = (start=None, end=None, *, prefix=None, batch_size=DEFAULT_BATCH_ROWS))]
    pub(crate) fn to_arrow<'py>(
        &self,
        py: Python<'py>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (batches, snap) = self.stream(py, start, end, prefix, batch_size)?;
        BatchStream::new(Box::new(batches), Some(Box::new(snap))).into_pyarrow(py)
    }

    /// `to_arrow(...)` read into a polars DataFrame.
    #[pyo3(signature = (start=None, end=None, *, prefix=None))]
    fn to_polars<'py>(
        &self,
        py: Python<'py>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_polars(self.to_arrow(py, start, end, prefix, DEFAULT_BATCH_ROWS)?)
    }

    /// `to_arrow(...)` read into a pandas DataFrame.
    #[pyo3(signature = (start=None, end=None, *, prefix=None))]
    fn to_pandas<'py>(
        &self,
        py: Python<'py>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_pandas(self.to_arrow(py, start, end, prefix, DEFAULT_BATCH_ROWS)?)
    }

    /// Batches of the range for training, in an order fixed by `seed` (key order if
    /// None): rows are shuffled within windows of `shuffle_window` rows (rounded up to a
    /// multiple of `batch_size`), read in key order; a window covering the range shuffles
    /// it fully. Identical on every run at the same version, range, sizes and seed.
    #[pyo3(signature = (start=None, end=None, *, prefix=None, batch_size=1024, seed=None,
        shuffle_window=DEFAULT_BATCH_ROWS))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, each with a default.
    fn training_batches<'py>(
        &self,
        py: Python<'py>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        batch_size: usize,
        seed: Option<u64>,
        shuffle_window: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(seed) = seed else {
            return self.to_arrow(py, start, end, prefix, batch_size);
        };
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be positive"));
        }
        let window = shuffle_window.max(1).div_ceil(batch_size) * batch_size;
        let (windows, snap) = self.stream(py, start, end, prefix, window)?;
        let shuffled = Shuffled::new(windows, seed, batch_size);
        BatchStream::new(Box::new(shuffled), Some(Box::new(snap))).into_pyarrow(py)
    }

    /// Lets go of the snapshot: compaction may drop what only it kept. Later reads
    /// through it raise `Closed`; streams already made keep reading.
    fn release(&self) {
        self.snap.write().take();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.release();
        false
    }

    fn __repr__(&self) -> String {
        match self.snap.read().as_ref() {
            Some(s) => format!("Snapshot(version={})", s.version().0),
            None => "Snapshot(released)".into(),
        }
    }
}
