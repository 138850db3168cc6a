//! Invariant checks at the engine's boundaries, compiled in with the `invariants` cargo
//! feature (as Pebble's `internal/invariants` build tag) and in the engine's own unit tests:
//! every test run has it (the workspace's dev-dependencies turn it on) and CI builds the
//! harness with it. Without the
//! feature [`invariant!`] compiles to nothing and its condition is never evaluated.
//!
//! What is checked, and where:
//! - versions strictly grow at WAL append and memtable insert (`commit`, `apply`), and so
//!   again when recovery replays the log through the same `apply`;
//! - after every view swap that changes runs, each level is ordered as reads assume
//!   (disjoint levels in key order, overlapping ones newest first), every level below 0 is
//!   disjoint under leveled compaction, and the view holds exactly the runs the manifest
//!   recorded (`tree`);
//! - a manifest edit never removes a run the recorded tree does not hold at that level
//!   (`Inner::append_edit`);
//! - a run's writer and its reader agree on entry count, versions and key range (flush and
//!   compaction outputs).

use crate::manifest::TreeState;
use crate::view::{Level, View};
use chronokv_runs::RunMeta;
use std::collections::BTreeSet;

/// Panics with `invariant violated: ...` when the `invariants` feature is on and `cond` is
/// false.
macro_rules! invariant {
    ($cond:expr, $($msg:tt)+) => {
        if cfg!(any(test, feature = "invariants")) && !$cond {
            panic!("invariant violated: {}", format_args!($($msg)+));
        }
    };
}
pub(crate) use invariant;

/// Why `level` is not ordered as reads assume, if it is not.
fn level_order_problem(number: usize, level: &Level) -> Option<String> {
    let metas: Vec<&RunMeta> = level.runs.iter().map(|r| r.reader.meta()).collect();
    let bad = if level.disjoint {
        metas.windows(2).position(|w| w[0].max_key >= w[1].min_key)
    } else {
        metas
            .windows(2)
            .position(|w| w[0].max_version < w[1].max_version)
    }?;
    let how = if level.disjoint {
        "in key order without overlap"
    } else {
        "newest first"
    };
    Some(format!(
        "level {number}: runs {} and {} are not {how}",
        level.runs[bad].id(),
        level.runs[bad + 1].id()
    ))
}

/// Why `view` does not match the tree the manifest recorded, or its levels are out of the
/// order reads rely on, if so. `leveled`: every level below 0 must be disjoint.
pub fn view_problem(view: &View, recorded: &TreeState, leveled: bool) -> Option<String> {
    for (number, level) in view.levels.iter().enumerate() {
        if let Some(problem) = level_order_problem(number, level) {
            return Some(problem);
        }
        if leveled && number > 0 && level.runs.len() > 1 && !level.disjoint {
            return Some(format!("level {number} overlaps under leveled compaction"));
        }
    }
    let in_view: BTreeSet<(u32, u64)> = view
        .levels
        .iter()
        .enumerate()
        .flat_map(|(n, l)| l.runs.iter().map(move |r| (n as u32, r.id())))
        .collect();
    let in_manifest: BTreeSet<(u32, u64)> = recorded
        .runs
        .values()
        .map(|r| (r.level, r.file_number))
        .collect();
    (in_view != in_manifest).then(|| {
        format!("the view holds runs {in_view:?} but the manifest recorded {in_manifest:?}")
    })
}

/// Why a run's reader disagrees with what its writer reported, if it does.
pub fn run_meta_problem(written: &RunMeta, read: &RunMeta) -> Option<String> {
    let same = written.entry_count == read.entry_count
        && written.min_version == read.min_version
        && written.max_version == read.max_version
        && written.min_key == read.min_key
        && written.max_key == read.max_key;
    (!same).then(|| {
        format!(
            "the writer reported {} entries, {}..{}, and the reader found {} entries, {}..{}",
            written.entry_count,
            written.min_version,
            written.max_version,
            read.entry_count,
            read.min_version,
            read.max_version
        )
    })
}
