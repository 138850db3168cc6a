//! `Transaction`: optimistic transactions, as context managers.
//!
//! `with db.transaction() as tx:` commits when the block ends normally and rolls back
//! when it raises; a commit refused for a conflict raises `Conflict` from the `with`
//! statement. `Db.transact(fn)` runs `fn(tx)` and retries it on conflict.

use crate::convert::{key_range, Data};
use crate::errors::{finished_transaction, to_py};
use crate::scan::Scan;
use chronokv::{Bytes, Transaction as EngineTransaction};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::ops::Bound as KeyBound;

/// A transaction: reads see its snapshot plus its own writes; writes are buffered until
/// `commit()`. Serializable by default.
#[pyclass(frozen, module = "chronokv")]
pub struct Transaction {
    tx: Mutex<Option<EngineTransaction>>,
}

impl Transaction {
    pub fn new(tx: EngineTransaction) -> Self {
        Transaction {
            tx: Mutex::new(Some(tx)),
        }
    }

    /// Runs `f` on the open transaction with the GIL released.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut EngineTransaction) -> chronokv::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut tx = self.tx.lock();
            tx.as_mut().map(f)
        })
        .ok_or_else(finished_transaction)?
        .map_err(|e| to_py(py, e))
    }

    /// Commits; the version of the commit. Usable from Rust (`Db.transact`).
    pub fn commit_now(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.tx.lock().take().map(|tx| tx.commit()))
            .ok_or_else(finished_transaction)?
            .map(|v| v.0)
            .map_err(|e| to_py(py, e))
    }

    /// Discards the writes (a no-op once finished).
    pub fn rollback_now(&self, py: Python<'_>) {
        py.detach(|| {
            if let Some(tx) = self.tx.lock().take() {
                tx.rollback();
            }
        })
    }
}

#[pymethods]
impl Transaction {
    /// The version the transaction reads at.
    #[getter]
    fn version(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |tx| Ok(tx.version().0))
    }

    /// The value of `key`: this transaction's own write if it made one, else its snapshot's.
    fn get<'py>(&self, py: Python<'py>, key: Data) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let value = self.with(py, |tx| tx.get(&key))?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// Buffers `key = value`.
    fn put(&self, py: Python<'_>, key: Data, value: Data) -> PyResult<()> {
        self.with(py, |tx| tx.put(&key, &value))
    }

    /// Buffers a delete of `key`.
    fn delete(&self, py: Python<'_>, key: Data) -> PyResult<()> {
        self.with(py, |tx| tx.delete(&key))
    }

    /// `(key, value)` pairs of the range, this transaction's writes included. Read in one
    /// step when called (an engine transaction's scan borrows it, so it cannot be held
    /// open across Python calls): keep transactional scans small. A serializable
    /// transaction tracks the range for conflicts.
    #[pyo3(signature = (start=None, end=None, *, prefix=None, reverse=false))]
    fn scan(
        &self,
        py: Python<'_>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        reverse: bool,
    ) -> PyResult<Scan> {
        let range: (KeyBound<Bytes>, KeyBound<Bytes>) = key_range(start, end, prefix)?;
        let pairs = self.with(py, |tx| {
            let iter = tx.scan::<Bytes, _>(range);
            if reverse {
                iter.rev().collect::<chronokv::Result<Vec<_>>>()
            } else {
                iter.collect::<chronokv::Result<Vec<_>>>()
            }
        })?;
        Ok(Scan::new(Box::new(pairs.into_iter().map(Ok))))
    }

    /// Applies the writes atomically; returns the commit's version. Raises `Conflict` if
    /// a concurrent commit broke the isolation (nothing is applied then).
    fn commit(&self, py: Python<'_>) -> PyResult<u64> {
        self.commit_now(py)
    }

    /// Discards the writes.
    fn rollback(&self, py: Python<'_>) {
        self.rollback_now(py)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Commits if the block succeeded, rolls back if it raised (the exception goes on).
    #[pyo3(signature = (exc_type, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        match exc_type {
            Some(t) if !t.is_none() => self.rollback_now(py),
            _ => {
                // A block that committed or rolled back itself leaves nothing to do.
                if self.tx.lock().is_some() {
                    self.commit_now(py)?;
                }
            }
        }
        Ok(false)
    }
}
