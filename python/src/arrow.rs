//! Arrow streams out: engine batch iterators as `pyarrow.RecordBatchReader`s through the
//! Arrow C stream interface. pyarrow pulls each batch from the engine when it wants one
//! (no Python code and no GIL on that path), and the batch's buffers pass by pointer: no
//! copy on the Python side, at most one batch (plus the engine's read-ahead) in memory.
//!
//! Every stream has the engine's export schema (key, value, version, time, deleted).

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::IntoPyArrow;
use arrow_schema::{ArrowError, SchemaRef};
use pyo3::prelude::*;
use std::any::Any;

type Batches = Box<dyn Iterator<Item = chronokv::Result<RecordBatch>> + Send>;

/// Engine batches as an Arrow `RecordBatchReader`, holding what they read from (a
/// snapshot) for as long as the stream lives.
pub struct BatchStream {
    batches: Batches,
    schema: SchemaRef,
    _holds: Option<Box<dyn Any + Send>>,
}

impl BatchStream {
    pub fn new(batches: Batches, holds: Option<Box<dyn Any + Send>>) -> Self {
        BatchStream {
            batches,
            schema: chronokv::export_schema(),
            _holds: holds,
        }
    }

    /// The stream as a `pyarrow.RecordBatchReader`.
    pub fn into_pyarrow(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let boxed: Box<dyn RecordBatchReader + Send> = Box::new(self);
        boxed.into_pyarrow(py)
    }
}

impl Iterator for BatchStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        // An engine error reaches Python as pyarrow's error, keeping the engine's message.
        let next = self.batches.next()?;
        Some(next.map_err(|e| ArrowError::ExternalError(Box::new(e))))
    }
}

impl RecordBatchReader for BatchStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// `reader.read_all()` as a polars `DataFrame`.
pub fn to_polars<'py>(reader: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let table = reader.call_method0("read_all")?;
    reader
        .py()
        .import("polars")?
        .call_method1("from_arrow", (table,))
}

/// `reader.read_all()` as a pandas `DataFrame`.
pub fn to_pandas<'py>(reader: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    reader.call_method0("read_all")?.call_method0("to_pandas")
}
