//! `Transaction`: optimistic transactions, as context managers.
//!
//! `with db.transaction() as tx:` commits when the block ends normally and rolls back
//! when it raises; a commit refused for a conflict raises `Conflict` from the `with`
//! statement. `Db.transact(fn)` runs `fn(tx)` and retries it on conflict.

use crate::chunked::CHUNK_ITEMS;
use crate::convert::{key_range, Data};
use crate::errors::{finished_transaction, to_py};
use crate::scan::Scan;
use chronokv::{Bytes, Error, Transaction as EngineTransaction};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::collections::VecDeque;
use std::ops::Bound as KeyBound;
use std::sync::Arc;

type Shared = Arc<Mutex<Option<EngineTransaction>>>;

/// A transaction: reads see its snapshot plus its own writes; writes are buffered until
/// `commit()`. Serializable by default.
#[pyclass(frozen, module = "chronokv")]
pub struct Transaction {
    tx: Shared,
}

impl Transaction {
    pub fn new(tx: EngineTransaction) -> Self {
        Transaction {
            tx: Arc::new(Mutex::new(Some(tx))),
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

    /// `(key, value)` pairs of the range, this transaction's writes included, read in
    /// chunks (bounded memory). Each chunk is a scan of the transaction from where the last
    /// one ended, so writes the transaction makes meanwhile show beyond that point. A
    /// serializable transaction tracks the range it went through for conflicts.
    #[pyo3(signature = (start=None, end=None, *, prefix=None, reverse=false))]
    fn scan(
        &self,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        reverse: bool,
    ) -> PyResult<Scan> {
        let (lo, hi) = key_range(start, end, prefix)?;
        Ok(Scan::new(Box::new(TxPairs {
            tx: self.tx.clone(),
            lo,
            hi,
            reverse,
            ready: VecDeque::new(),
            done: false,
        })))
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

/// A transaction's scan as an owned iterator: an engine transaction's iterator borrows it,
/// so each chunk is a fresh scan that starts after the last key yielded.
struct TxPairs {
    tx: Shared,
    lo: KeyBound<Bytes>,
    hi: KeyBound<Bytes>,
    reverse: bool,
    ready: VecDeque<(Bytes, Bytes)>,
    done: bool,
}

impl TxPairs {
    fn refill(&mut self) -> chronokv::Result<()> {
        let guard = self.tx.lock();
        let tx = guard.as_ref().ok_or_else(|| {
            Error::InvalidArgument("the transaction has already committed or rolled back".into())
        })?;
        let iter = tx.scan::<Bytes, _>((self.lo.clone(), self.hi.clone()));
        let chunk: Vec<_> = if self.reverse {
            iter.rev()
                .take(CHUNK_ITEMS)
                .collect::<chronokv::Result<_>>()?
        } else {
            iter.take(CHUNK_ITEMS).collect::<chronokv::Result<_>>()?
        };
        self.done = chunk.len() < CHUNK_ITEMS;
        if let Some((last, _)) = chunk.last() {
            let after = KeyBound::Excluded(last.clone());
            if self.reverse {
                self.hi = after;
            } else {
                self.lo = after;
            }
        }
        self.ready.extend(chunk);
        Ok(())
    }
}

impl Iterator for TxPairs {
    type Item = chronokv::Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && !self.done {
            if let Err(e) = self.refill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.ready.pop_front().map(Ok)
    }
}
