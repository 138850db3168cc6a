//! `Db(path, **options)`: the keyword options, mapped onto [`chronokv::Options`].
//!
//! Names follow the engine's fields; sizes are in bytes, durations are `timedelta` or
//! seconds. An unknown name is a `TypeError`, as for any Python call, so a typo never
//! silently falls back to a default.

use crate::convert::durability;
use chronokv::{CompactionStyle, Compression, Options, RecoveryMode};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::time::Duration;

/// The engine options the keyword arguments name (the rest keep their defaults).
pub fn from_kwargs(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    let mut options = Options::default();
    let Some(kwargs) = kwargs else {
        return Ok(options);
    };
    for (name, value) in kwargs.iter() {
        let name: String = name.extract()?;
        set(&mut options, &name, &value)?;
    }
    Ok(options)
}

fn set(o: &mut Options, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
    match name {
        "create_if_missing" => o.create_if_missing = v.extract()?,
        "durability" => o.durability = durability(&v.extract::<String>()?)?,
        "memtable_size" => o.memtable_size = v.extract()?,
        "max_immutable_memtables" => o.max_immutable_memtables = v.extract()?,
        "block_cache_bytes" => o.block_cache_bytes = v.extract()?,
        "block_size" => o.block_size = v.extract()?,
        "bloom_fp_rate" => o.bloom_fp_rate = v.extract()?,
        "compression" => o.compression = compression(&v.extract::<String>()?)?,
        "deep_compression" => o.deep_compression = compression(&v.extract::<String>()?)?,
        "compaction" => o.compaction = compaction(&v.extract::<String>()?)?,
        "compaction_threads" => o.compaction_threads = v.extract()?,
        "recovery_mode" => o.recovery_mode = recovery_mode(&v.extract::<String>()?)?,
        "history_retention" => o.history_retention = Some(duration(v)?),
        "history_versions_per_key" => o.history_versions_per_key = Some(v.extract()?),
        "transaction_conflict_memory" => o.transaction_conflict_memory = v.extract()?,
        other => {
            return Err(PyTypeError::new_err(format!(
                "unknown chronokv option {other:?}"
            )))
        }
    }
    Ok(())
}

/// `"none"`, `"zstd"` (level 3) or `"zstd:LEVEL"`.
fn compression(name: &str) -> PyResult<Compression> {
    match name.split_once(':') {
        None if name == "none" => Ok(Compression::None),
        None if name == "zstd" => Ok(Compression::Zstd { level: 3 }),
        Some(("zstd", level)) => level
            .parse()
            .map(|level| Compression::Zstd { level })
            .map_err(|_| PyValueError::new_err(format!("bad zstd level in {name:?}"))),
        _ => Err(PyValueError::new_err(format!(
            "compression is \"none\", \"zstd\" or \"zstd:LEVEL\", not {name:?}"
        ))),
    }
}

fn compaction(name: &str) -> PyResult<CompactionStyle> {
    match name {
        "leveled" => Ok(CompactionStyle::Leveled(Default::default())),
        "tiered" => Ok(CompactionStyle::Tiered(Default::default())),
        other => Err(PyValueError::new_err(format!(
            "compaction is \"leveled\" or \"tiered\", not {other:?}"
        ))),
    }
}

fn recovery_mode(name: &str) -> PyResult<RecoveryMode> {
    match name {
        "tolerate_torn_tail" => Ok(RecoveryMode::TolerateTornTail),
        "point_in_time" => Ok(RecoveryMode::PointInTime),
        "absolute_consistency" => Ok(RecoveryMode::AbsoluteConsistency),
        other => Err(PyValueError::new_err(format!(
            "recovery_mode is \"tolerate_torn_tail\", \"point_in_time\" or \
             \"absolute_consistency\", not {other:?}"
        ))),
    }
}

/// A `timedelta`, or seconds as a number.
pub fn duration(v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if let Ok(seconds) = v.extract::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|e| PyValueError::new_err(format!("bad duration {seconds}: {e}")));
    }
    v.extract::<Duration>()
}
