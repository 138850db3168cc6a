//! `Db`: an open store. Every engine call runs with the GIL released, so Python threads
//! read (and write) in parallel.
//!
//! The engine's `Db` sits behind a read-write lock: calls share it, `close` and
//! `refresh` take it alone. A lock is only ever waited for with the GIL released, so a
//! thread holding the GIL never blocks one that needs it to finish.

use crate::arrow::BatchStream;
use crate::batch::WriteBatch;
use crate::convert::{durability, key_range, moment, Data};
use crate::errors::to_py;
use crate::records::HistoryEntry;
use crate::scan::{ChangeIter, Scan};
use crate::snapshot::{Snapshot, DEFAULT_BATCH_ROWS};
use crate::txn::Transaction;
use crate::{options, reports};
use chronokv::{
    change_batches, At, Bytes, Db as EngineDb, Error, Isolation, Retention, TransactionOptions,
    Version,
};
use parking_lot::RwLock;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};
use std::ops::Bound as KeyBound;
use std::path::PathBuf;

/// An open chronokv store; a context manager that closes it. See the package docs.
#[pyclass(frozen, module = "chronokv")]
pub struct Db {
    db: RwLock<Option<EngineDb>>,
    path: PathBuf,
}

impl Db {
    /// Runs `f` on the open store with the GIL released.
    pub fn with_db<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&EngineDb) -> chronokv::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| match self.db.read().as_ref() {
            Some(db) => f(db),
            None => Err(Error::Closed),
        })
        .map_err(|e| to_py(py, e))
    }

    fn opened(
        py: Python<'_>,
        path: PathBuf,
        kwargs: Option<&Bound<'_, PyDict>>,
        read_only: bool,
    ) -> PyResult<Db> {
        let options = options::from_kwargs(kwargs)?;
        let db = py
            .detach(|| {
                if read_only {
                    EngineDb::open_read_only(&path, options)
                } else {
                    EngineDb::open(&path, options)
                }
            })
            .map_err(|e| to_py(py, e))?;
        Ok(Db {
            db: RwLock::new(Some(db)),
            path,
        })
    }
}

/// A version range of the change feed: `since` inclusive, `until` exclusive.
fn versions(since: Option<u64>, until: Option<u64>) -> (KeyBound<Version>, KeyBound<Version>) {
    let lo = since.map_or(KeyBound::Unbounded, |v| KeyBound::Included(Version(v)));
    let hi = until.map_or(KeyBound::Unbounded, |v| KeyBound::Excluded(Version(v)));
    (lo, hi)
}

fn durability_of(name: Option<&str>) -> PyResult<Option<chronokv::Durability>> {
    name.map(durability).transpose()
}

#[pymethods]
impl Db {
    /// Opens (creating if missing, unless `create_if_missing=False`) the store at `path`.
    #[new]
    #[pyo3(signature = (path, **options))]
    fn new(py: Python<'_>, path: PathBuf, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Db::opened(py, path, options, false)
    }

    /// Opens the store for reading only: no lock, nothing written, works beside a writer
    /// in another process. Writes raise `ReadOnly`; `refresh()` catches up.
    #[classmethod]
    #[pyo3(signature = (path, **options))]
    fn open_read_only(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: PathBuf,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        Db::opened(py, path, options, true)
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// True for a handle from `open_read_only`.
    #[getter]
    fn read_only(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_db(py, |db| Ok(db.is_read_only()))
    }

    /// True once `close()` ran.
    #[getter]
    fn closed(&self) -> bool {
        self.db.try_read().is_some_and(|db| db.is_none())
    }

    /// The version of the latest commit visible to reads.
    #[getter]
    fn latest_version(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_db(py, |db| Ok(db.latest_version().0))
    }

    /// The oldest version `snapshot_at` accepts now.
    #[getter]
    fn oldest_readable_version(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_db(py, |db| Ok(db.oldest_readable_version().0))
    }

    /// The latest value of `key`, or None.
    fn get<'py>(&self, py: Python<'py>, key: Data) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let value = self.with_db(py, |db| db.get(&key))?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// Sets `key` to `value`; returns the commit's version.
    #[pyo3(signature = (key, value, *, durability=None))]
    fn put(
        &self,
        py: Python<'_>,
        key: Data,
        value: Data,
        durability: Option<&str>,
    ) -> PyResult<u64> {
        let mut batch = chronokv::WriteBatch::new();
        batch.put(&key, &value);
        self.commit(py, batch, durability)
    }

    /// Deletes `key`; returns the commit's version.
    #[pyo3(signature = (key, *, durability=None))]
    fn delete(&self, py: Python<'_>, key: Data, durability: Option<&str>) -> PyResult<u64> {
        let mut batch = chronokv::WriteBatch::new();
        batch.delete(&key);
        self.commit(py, batch, durability)
    }

    /// Commits `batch` atomically; returns the version of its last entry.
    #[pyo3(signature = (batch, *, durability=None))]
    fn write(&self, py: Python<'_>, batch: &WriteBatch, durability: Option<&str>) -> PyResult<u64> {
        self.commit(py, batch.snapshot(), durability)
    }

    /// `(key, value)` pairs of `[start, end)` (or of `prefix`) in key order (or reversed),
    /// as of the call: an iterator read in bounded chunks.
    #[pyo3(signature = (start=None, end=None, *, prefix=None, reverse=false))]
    fn scan(
        &self,
        py: Python<'_>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        reverse: bool,
    ) -> PyResult<Scan> {
        let range = key_range(start, end, prefix)?;
        let iter = self.with_db(py, |db| Ok(db.scan::<Bytes, _>(range)))?;
        Ok(Scan::of(iter, reverse))
    }

    /// A snapshot of the latest state.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Snapshot> {
        Ok(Snapshot::new(self.with_db(py, |db| Ok(db.snapshot()))?))
    }

    /// A snapshot right after the commit of `version`; `VersionNotRetained` if older
    /// than the retained history.
    fn snapshot_at(&self, py: Python<'_>, version: u64) -> PyResult<Snapshot> {
        Ok(Snapshot::new(
            self.with_db(py, |db| db.snapshot_at(Version(version)))?,
        ))
    }

    /// A snapshot as of `time` (a datetime, naive meaning local, or Unix seconds);
    /// `TimeNotRetained` if older than the retained history.
    fn snapshot_as_of(&self, py: Python<'_>, time: &Bound<'_, PyAny>) -> PyResult<Snapshot> {
        let time = moment(time)?;
        Ok(Snapshot::new(
            self.with_db(py, |db| db.snapshot_as_of(time))?,
        ))
    }

    /// `snapshot().to_arrow(...)`: the latest state as a `pyarrow.RecordBatchReader`.
    #[pyo3(signature = (start=None, end=None, *, prefix=None, batch_size=DEFAULT_BATCH_ROWS))]
    fn to_arrow<'py>(
        &self,
        py: Python<'py>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.snapshot(py)?
            .to_arrow(py, start, end, prefix, batch_size)
    }

    /// Every retained version of `key`, newest first.
    fn history(&self, py: Python<'_>, key: Data) -> PyResult<Vec<HistoryEntry>> {
        let entries = self.with_db(py, |db| db.history(&key))?;
        Ok(entries.into_iter().map(HistoryEntry::from).collect())
    }

    /// Every retained version of `key` (or of every key in the range or prefix: key order,
    /// newest first within a key) as a `pyarrow.RecordBatchReader`, streamed.
    #[pyo3(signature = (key=None, *, start=None, end=None, prefix=None, batch_size=DEFAULT_BATCH_ROWS))]
    fn history_arrow<'py>(
        &self,
        py: Python<'py>,
        key: Option<Data>,
        start: Option<Data>,
        end: Option<Data>,
        prefix: Option<Data>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be positive"));
        }
        let range = match key {
            Some(key) if start.is_none() && end.is_none() && prefix.is_none() => {
                let k = Bytes::copy_from_slice(key.as_ref());
                (KeyBound::Included(k.clone()), KeyBound::Included(k))
            }
            Some(_) => {
                return Err(PyValueError::new_err(
                    "history_arrow takes a key or a range",
                ))
            }
            None => key_range(start, end, prefix)?,
        };
        let scan = self.with_db(py, |db| db.history_scan::<Bytes, _>(range))?;
        let changes = scan.map(|row| row.map(|(key, h)| h.into_change(key)));
        BatchStream::new(Box::new(change_batches(changes, batch_size)), None).into_pyarrow(py)
    }

    /// The change feed: every put and delete with `since <= version < until`, in version
    /// order, streamed in bounded windows. `since=None`: the oldest retained version.
    #[pyo3(signature = (since=None, until=None))]
    fn changes(
        &self,
        py: Python<'_>,
        since: Option<u64>,
        until: Option<u64>,
    ) -> PyResult<ChangeIter> {
        let feed = self.with_db(py, |db| db.changes(versions(since, until)))?;
        Ok(ChangeIter::new(Box::new(feed)))
    }

    /// `changes(since, until)` as a `pyarrow.RecordBatchReader`, streamed.
    #[pyo3(signature = (since=None, until=None, *, batch_size=DEFAULT_BATCH_ROWS))]
    fn changes_arrow<'py>(
        &self,
        py: Python<'py>,
        since: Option<u64>,
        until: Option<u64>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be positive"));
        }
        let feed = self.with_db(py, |db| db.changes(versions(since, until)))?;
        BatchStream::new(Box::new(change_batches(feed, batch_size)), None).into_pyarrow(py)
    }

    /// Begins a transaction: `isolation` is "serializable" (default) or "snapshot".
    #[pyo3(signature = (*, isolation="serializable", read_only=false, durability=None))]
    fn transaction(
        &self,
        py: Python<'_>,
        isolation: &str,
        read_only: bool,
        durability: Option<&str>,
    ) -> PyResult<Transaction> {
        let options = TransactionOptions {
            isolation: match isolation {
                "serializable" => Isolation::Serializable,
                "snapshot" => Isolation::Snapshot,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "isolation is \"serializable\" or \"snapshot\", not {other:?}"
                    )))
                }
            },
            read_only,
            durability: durability_of(durability)?,
            ..TransactionOptions::default()
        };
        let tx = self.with_db(py, |db| Ok(db.begin_with(options)))?;
        Ok(Transaction::new(tx))
    }

    /// Runs `fn(tx)` in a transaction and commits it, running it again (up to `retries`
    /// more times) when the commit raises `Conflict`. Returns what `fn` returned; an
    /// exception from `fn` rolls back and propagates.
    #[pyo3(signature = (function, *, retries=8, isolation="serializable", durability=None))]
    fn transact<'py>(
        &self,
        py: Python<'py>,
        function: &Bound<'py, PyAny>,
        retries: usize,
        isolation: &str,
        durability: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut attempt = 0;
        loop {
            let tx = Bound::new(py, self.transaction(py, isolation, false, durability)?)?;
            let result = match function.call1((tx.clone(),)) {
                Ok(result) => result,
                Err(e) => {
                    tx.get().rollback_now(py);
                    return Err(e);
                }
            };
            match tx.get().commit_now(py) {
                Ok(_) => return Ok(result),
                Err(e) if attempt < retries && e.is_instance_of::<crate::errors::Conflict>(py) => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the memtable to a run and waits for every pending flush.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_db(py, |db| db.flush())
    }

    /// Compacts every run holding keys in `[start, end]` now (None: unbounded).
    #[pyo3(signature = (start=None, end=None))]
    fn compact_range(
        &self,
        py: Python<'_>,
        start: Option<Data>,
        end: Option<Data>,
    ) -> PyResult<()> {
        let lo = start.map_or(KeyBound::Unbounded, |k| {
            KeyBound::Included(Bytes::copy_from_slice(k.as_ref()))
        });
        let hi = end.map_or(KeyBound::Unbounded, |k| {
            KeyBound::Included(Bytes::copy_from_slice(k.as_ref()))
        });
        self.with_db(py, |db| db.compact_range::<Bytes, _>((lo, hi)))
    }

    /// Waits until flushes and background compactions have nothing left to do.
    fn wait_for_compactions(&self, py: Python<'_>) -> PyResult<()> {
        self.with_db(py, |db| db.wait_for_compactions())
    }

    /// Syncs the WAL: every acknowledged write then survives a power loss too.
    fn sync_wal(&self, py: Python<'_>) -> PyResult<()> {
        self.with_db(py, |db| db.sync_wal())
    }

    /// Writes a consistent, openable copy of the store into `dir` (empty or missing).
    fn checkpoint<'py>(&self, py: Python<'py>, dir: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let info = self.with_db(py, |db| db.checkpoint(&dir))?;
        reports::checkpoint(py, &info)
    }

    /// Reads every block, the manifest and the WAL; reports every problem found.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let report = self.with_db(py, |db| db.verify())?;
        reports::verify(py, &report)
    }

    /// The engine's counters and the shape of the tree.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.with_db(py, |db| Ok(db.stats()))?;
        reports::stats(py, &stats)
    }

    /// The store's history contract: `{"window": timedelta | None, "versions_per_key": int}`.
    fn history_retention<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let retention = self.with_db(py, |db| Ok(db.history_retention()))?;
        reports::retention(py, &retention)
    }

    /// Replaces the history contract durably (the one way to shrink it); returns the old one.
    #[pyo3(signature = (window=None, versions_per_key=0))]
    fn set_history_retention<'py>(
        &self,
        py: Python<'py>,
        window: Option<&Bound<'py, PyAny>>,
        versions_per_key: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let window = window.map(options::duration).transpose()?;
        let new = Retention::new(window, versions_per_key);
        let old = self.with_db(py, |db| db.set_history_retention(new))?;
        reports::retention(py, &old)
    }

    /// Makes the present equal the state at `version` (or as of `time`) with new commits;
    /// returns the version of the last one.
    #[pyo3(signature = (version=None, *, time=None))]
    fn restore_to(
        &self,
        py: Python<'_>,
        version: Option<u64>,
        time: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let at = match (version, time) {
            (Some(v), None) => At::Version(Version(v)),
            (None, Some(t)) => At::Time(moment(t)?),
            _ => {
                return Err(PyValueError::new_err(
                    "restore_to takes a version or a time",
                ))
            }
        };
        self.with_db(py, |db| db.restore_to(at)).map(|v| v.0)
    }

    /// Brings a read-only handle up to date; True if the latest version moved.
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| match self.db.write().as_mut() {
            Some(db) => db.refresh(),
            None => Err(Error::Closed),
        })
        .map_err(|e| to_py(py, e))
    }

    /// Syncs the WAL and stops background work. Later calls raise `Closed`; snapshots and
    /// streams already made keep reading what they hold. Closing twice is harmless.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| match self.db.write().take() {
            Some(db) => db.close(),
            None => Ok(()),
        })
        .map_err(|e| to_py(py, e))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Db({:?})", self.path.display().to_string())
    }
}

/// A `Db` collected without `close()` closes as the engine's drop does (syncing the WAL,
/// joining the background threads), with the GIL released meanwhile.
impl Drop for Db {
    fn drop(&mut self) {
        if let Some(db) = self.db.get_mut().take() {
            Python::attach(|py| py.detach(|| drop(db)));
        }
    }
}

impl Db {
    fn commit(
        &self,
        py: Python<'_>,
        batch: chronokv::WriteBatch,
        durability: Option<&str>,
    ) -> PyResult<u64> {
        let durability = durability_of(durability)?;
        self.with_db(py, |db| match durability {
            Some(d) => db.write_with(batch, d),
            None => db.write(batch),
        })
        .map(|v| v.0)
    }
}
