//! Engine reports (statistics, verification, checkpoints, backups, retention) as Python
//! dicts: plain data, typed in the stubs with `TypedDict`s.

use chronokv::backup::BackupInfo;
use chronokv::{CheckpointInfo, Retention, Stats, VerifyReport};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

pub fn stats<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("strategy", s.strategy)?;
    let levels = PyList::empty(py);
    for l in &s.levels {
        let level = PyDict::new(py);
        level.set_item("runs", l.runs)?;
        level.set_item("bytes", l.bytes)?;
        level.set_item("entries", l.entries)?;
        level.set_item("tombstones", l.tombstones)?;
        levels.append(level)?;
    }
    d.set_item("levels", levels)?;
    d.set_item("user_bytes_written", s.user_bytes_written)?;
    d.set_item("wal_bytes_written", s.wal_bytes_written)?;
    d.set_item("flushes", s.flushes)?;
    d.set_item("flush_bytes_written", s.flush_bytes_written)?;
    d.set_item("compactions", s.compactions)?;
    d.set_item("compaction_bytes_read", s.compaction_bytes_read)?;
    d.set_item("compaction_bytes_written", s.compaction_bytes_written)?;
    d.set_item("pending_compaction_bytes", s.pending_compaction_bytes)?;
    d.set_item("write_amplification", s.write_amplification())?;
    d.set_item("write_stalls", s.write_slowdowns + s.write_stops)?;
    d.set_item("transactions_open", s.transactions_open)?;
    Ok(d)
}

pub fn verify<'py>(py: Python<'py>, r: &VerifyReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ok", r.is_ok())?;
    let problems = PyList::empty(py);
    for p in &r.problems {
        let problem = PyDict::new(py);
        problem.set_item("kind", p.kind.name())?;
        problem.set_item("file", p.file.display().to_string())?;
        problem.set_item("offset", p.offset)?;
        problem.set_item("detail", &p.detail)?;
        problems.append(problem)?;
    }
    d.set_item("problems", problems)?;
    d.set_item("runs", r.runs)?;
    d.set_item("run_bytes", r.run_bytes)?;
    d.set_item("blocks", r.blocks)?;
    d.set_item("entries", r.entries)?;
    d.set_item("wal_segments", r.wal_segments)?;
    d.set_item("wal_records", r.wal_records)?;
    Ok(d)
}

pub fn checkpoint<'py>(py: Python<'py>, c: &CheckpointInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("dir", c.dir.display().to_string())?;
    d.set_item("version", c.version.0)?;
    d.set_item("runs", c.runs)?;
    d.set_item("linked", c.linked)?;
    d.set_item("copied", c.copied)?;
    d.set_item("bytes", c.bytes)?;
    Ok(d)
}

pub fn backup<'py>(py: Python<'py>, b: &BackupInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", b.id)?;
    d.set_item("created_micros", b.created_micros)?;
    d.set_item("version", b.version.0)?;
    d.set_item("runs", b.runs)?;
    d.set_item("bytes", b.bytes)?;
    d.set_item("copied_runs", b.copied_runs)?;
    d.set_item("copied_bytes", b.copied_bytes)?;
    Ok(d)
}

pub fn retention<'py>(py: Python<'py>, r: &Retention) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("window", r.window)?;
    d.set_item("versions_per_key", r.versions_per_key)?;
    Ok(d)
}
