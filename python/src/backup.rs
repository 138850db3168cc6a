//! `BackupEngine`: numbered, incremental backups of a store in a backup directory.

use crate::db::Db;
use crate::errors::to_py;
use crate::reports;
use chronokv::backup::BackupEngine as Engine;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::PathBuf;

/// A backup directory: `create(db)` copies only the runs earlier backups lack; `list`,
/// `verify`, `restore` and `delete` work on numbered backups. Holds the directory's lock
/// while it lives.
#[pyclass(frozen, module = "chronokv")]
pub struct BackupEngine {
    engine: Engine,
}

#[pymethods]
impl BackupEngine {
    #[new]
    fn new(py: Python<'_>, dir: PathBuf) -> PyResult<Self> {
        let engine = py.detach(|| Engine::open(&dir)).map_err(|e| to_py(py, e))?;
        Ok(BackupEngine { engine })
    }

    /// Backs `db` up (a read-only handle too); returns the new backup's info.
    fn create<'py>(&self, py: Python<'py>, db: &Db) -> PyResult<Bound<'py, PyDict>> {
        let info = db.with_db(py, |db| self.engine.create(db))?;
        reports::backup(py, &info)
    }

    /// Every backup, oldest first.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let infos = py.detach(|| self.engine.list()).map_err(|e| to_py(py, e))?;
        let list = PyList::empty(py);
        for info in &infos {
            list.append(reports::backup(py, info)?)?;
        }
        Ok(list)
    }

    /// Reads every file of backup `id` and reports what is damaged.
    fn verify<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyDict>> {
        let report = py
            .detach(|| self.engine.verify(id))
            .map_err(|e| to_py(py, e))?;
        reports::verify(py, &report)
    }

    /// Restores backup `id` into `dir` (created; must be empty), openable with `Db(dir)`.
    fn restore<'py>(&self, py: Python<'py>, id: u64, dir: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let info = py
            .detach(|| self.engine.restore(id, &dir))
            .map_err(|e| to_py(py, e))?;
        reports::backup(py, &info)
    }

    /// Deletes backup `id`; returns the number of shared run copies removed.
    fn delete(&self, py: Python<'_>, id: u64) -> PyResult<usize> {
        let info = py
            .detach(|| self.engine.delete(id))
            .map_err(|e| to_py(py, e))?;
        Ok(info.removed_runs)
    }
}
