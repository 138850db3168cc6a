//! `WriteBatch`: puts and deletes committed atomically by `Db.write`.

use crate::convert::Data;
use chronokv::WriteBatch as EngineBatch;
use parking_lot::Mutex;
use pyo3::prelude::*;

/// Puts and deletes to commit atomically with `Db.write(batch)`: after any crash, all of
/// them are there or none. `write` leaves the batch as it was, so it can be written again.
#[pyclass(frozen, module = "chronokv")]
pub struct WriteBatch {
    batch: Mutex<EngineBatch>,
}

impl WriteBatch {
    /// A copy of the entries, for a commit that must not hold the lock.
    pub fn snapshot(&self) -> EngineBatch {
        self.batch.lock().clone()
    }
}

#[pymethods]
impl WriteBatch {
    #[new]
    fn new() -> Self {
        WriteBatch {
            batch: Mutex::new(EngineBatch::new()),
        }
    }

    /// Adds `key = value`; returns the batch, so calls chain.
    fn put<'py>(slf: &Bound<'py, Self>, key: Data, value: Data) -> Bound<'py, Self> {
        slf.get().batch.lock().put(&key, &value);
        slf.clone()
    }

    /// Adds a delete of `key`; returns the batch.
    fn delete<'py>(slf: &Bound<'py, Self>, key: Data) -> Bound<'py, Self> {
        slf.get().batch.lock().delete(&key);
        slf.clone()
    }

    /// Removes every entry.
    fn clear(&self) {
        self.batch.lock().clear();
    }

    fn __len__(&self) -> usize {
        self.batch.lock().len()
    }

    fn __repr__(&self) -> String {
        format!("WriteBatch(<{} entries>)", self.batch.lock().len())
    }
}
