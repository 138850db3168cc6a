//! chronokv for Python: the native module `chronokv._native`, which the `chronokv`
//! package re-exports. A thin layer over the `chronokv` crate's public API: each class
//! wraps one engine type, every engine call releases the GIL, keys and values are
//! `bytes` (or `str`, taken as UTF-8), engine errors become the exceptions of `errors`,
//! and Arrow data leaves through the Arrow C stream interface (`arrow`).

mod arrow;
mod backup;
mod batch;
mod chunked;
mod convert;
mod db;
mod errors;
mod options;
mod records;
mod reports;
mod scan;
mod snapshot;
mod training;
mod txn;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<db::Db>()?;
    m.add_class::<batch::WriteBatch>()?;
    m.add_class::<snapshot::Snapshot>()?;
    m.add_class::<txn::Transaction>()?;
    m.add_class::<scan::Scan>()?;
    m.add_class::<scan::ChangeIter>()?;
    m.add_class::<records::HistoryEntry>()?;
    m.add_class::<records::Change>()?;
    m.add_class::<backup::BackupEngine>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Lets the test suite prove that its build checks the engine's invariants.
    m.add("_invariants_checked", cfg!(feature = "invariants"))?;
    Ok(())
}
