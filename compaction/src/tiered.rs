//! [`Tiered`]: size-tiered compaction (universal style) of runs of similar size.
//!
//! Each level is a list of sorted runs, newest first, and a merge stays in its level: its
//! output replaces the merged runs at their place in the age order ([`crate::apply`] does
//! this for any task whose inputs are all in the output level). The engine keeps every run in
//! level 0 today, which is exactly a one-level tiered tree.
//!
//! The rule, per level:
//!
//! 1. A *window* is a run of consecutive entries of the level (consecutive in age, so the
//!    merged run can take their place without reordering versions of a key), containing no
//!    busy run, at most `max_merge` long.
//! 2. A window is *similar* when its largest run is at most `size_ratio_percent` % of its
//!    smallest run (`max * 100 <= min * size_ratio_percent`, sizes of 0 counted as 1). Sort
//!    the window's sizes and this says every pair is within that percentage of each other.
//! 3. From each start position the window is grown one older run at a time while it stays
//!    similar and within `max_merge`; it is a candidate if it then holds `>= min_merge` runs
//!    and two of them overlap. Merging runs whose key ranges are all disjoint (the split
//!    outputs of an earlier merge, say) would only rewrite them into the same runs: with a
//!    finite `target_run_size` compaction then never settled.
//! 4. Among all candidates of all levels the pick is: the most runs, then the fewest total
//!    bytes, then the lowest level, then the newest start. So a lone big run (nothing of its
//!    size to merge with) is left alone.
//!
//! `bottommost` is true when no older run of the same level, and no run below, overlaps the
//! inputs' key hull. `min_merge` is treated as at least 2 and `max_merge` as at least
//! `min_merge`.

use std::collections::HashSet;

use crate::types::{
    is_bottommost, manual_inputs, KeyRange, Levels, RunInfo, Strategy, Task, TaskKind,
};

/// Size-tiered compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiered {
    /// Merge at least this many similar runs (default 4).
    pub min_merge: usize,
    /// Merge at most this many runs at once (default 10).
    pub max_merge: usize,
    /// Runs are similar when the largest is at most this % of the smallest (default 120).
    pub size_ratio_percent: u64,
    /// Split the merged output into runs of about this size (default `u64::MAX`: one run).
    pub target_run_size: u64,
}

impl Default for Tiered {
    fn default() -> Self {
        Tiered {
            min_merge: 4,
            max_merge: 10,
            size_ratio_percent: 120,
            target_run_size: u64::MAX,
        }
    }
}

/// A candidate window: level, start index, length, total bytes.
#[derive(Debug, Clone, Copy)]
struct Window {
    level: usize,
    start: usize,
    len: usize,
    bytes: u64,
}

impl Tiered {
    fn bounds(&self) -> (usize, usize) {
        let min = self.min_merge.max(2);
        (min, self.max_merge.max(min))
    }

    fn similar(&self, lo: u64, hi: u64) -> bool {
        u128::from(hi.max(1)) * 100 <= u128::from(lo.max(1)) * u128::from(self.size_ratio_percent)
    }

    /// The longest similar window starting at `start`, if it is long enough.
    fn window_at(
        &self,
        runs: &[RunInfo],
        level: usize,
        start: usize,
        busy: &HashSet<u64>,
    ) -> Option<Window> {
        let (min_merge, max_merge) = self.bounds();
        let mut lo = u64::MAX;
        let mut hi = 0u64;
        let mut bytes = 0u64;
        let mut len = 0;
        for run in runs.iter().skip(start).take(max_merge) {
            if busy.contains(&run.id) {
                break;
            }
            let (nlo, nhi) = (lo.min(run.size), hi.max(run.size));
            if !self.similar(nlo, nhi) {
                break;
            }
            (lo, hi, len) = (nlo, nhi, len + 1);
            bytes = bytes.saturating_add(run.size);
        }
        let window = &runs[start..start + len];
        (len >= min_merge && any_overlap(window)).then_some(Window {
            level,
            start,
            len,
            bytes,
        })
    }
}

/// True when some two of `runs` have overlapping key ranges.
fn any_overlap(runs: &[RunInfo]) -> bool {
    let mut ranges: Vec<_> = runs.iter().map(RunInfo::range).collect();
    ranges.sort_by(|a, b| a.min.cmp(b.min));
    ranges.windows(2).any(|w| w[0].overlaps(&w[1]))
}

impl Strategy for Tiered {
    fn name(&self) -> &'static str {
        "tiered"
    }

    fn pick(&self, levels: &Levels, busy: &HashSet<u64>) -> Option<Task> {
        let mut best: Option<Window> = None;
        for (level, runs) in levels.levels.iter().enumerate() {
            for start in 0..runs.len() {
                let Some(w) = self.window_at(runs, level, start, busy) else {
                    continue;
                };
                let better = best.is_none_or(|b| {
                    (std::cmp::Reverse(w.len), w.bytes, w.level, w.start)
                        < (std::cmp::Reverse(b.len), b.bytes, b.level, b.start)
                });
                if better {
                    best = Some(w);
                }
            }
        }
        let w = best?;
        let chosen = levels.level(w.level).get(w.start..w.start + w.len)?;
        let inputs: Vec<(usize, u64)> = chosen.iter().map(|r| (w.level, r.id)).collect();
        let range = KeyRange::of_runs(chosen);
        let last_index = w.start + w.len - 1;
        Some(Task {
            kind: TaskKind::Merge,
            bottommost: is_bottommost(levels, range, &inputs, w.level, Some(last_index)),
            inputs,
            output_level: w.level,
            target_run_size: self.target_run_size,
            grandparents: Vec::new(),
            max_grandparent_overlap: u64::MAX,
        })
    }

    /// The bytes of the merge the strategy would run next if nothing were busy.
    fn pending_bytes(&self, levels: &Levels) -> u64 {
        let Some(task) = self.pick(levels, &HashSet::new()) else {
            return 0;
        };
        task.inputs
            .iter()
            .filter_map(|&(l, id)| levels.level(l).iter().find(|r| r.id == id))
            .fold(0u64, |acc, r| acc.saturating_add(r.size))
    }

    /// One merge of the overlap-closed input set into the deepest level it touches. A lone
    /// run without tombstones is left alone.
    fn manual(&self, levels: &Levels, range: Option<KeyRange<'_>>) -> Option<Task> {
        let inputs = manual_inputs(levels, range);
        let &(output_level, _) = inputs.iter().max_by_key(|(l, _)| *l)?;
        let runs: Vec<&RunInfo> = inputs
            .iter()
            .filter_map(|&(l, id)| levels.level(l).iter().find(|r| r.id == id))
            .collect();
        if let [run] = runs.as_slice() {
            if run.tombstones == 0 {
                return None;
            }
        }
        let oldest = levels
            .level(output_level)
            .iter()
            .rposition(|r| inputs.contains(&(output_level, r.id)));
        let hull = KeyRange::of_runs(runs.iter().copied());
        Some(Task {
            kind: TaskKind::Merge,
            bottommost: is_bottommost(levels, hull, &inputs, output_level, oldest),
            inputs,
            output_level,
            target_run_size: self.target_run_size,
            grandparents: Vec::new(),
            max_grandparent_overlap: u64::MAX,
        })
    }
}
