//! [`Leveled`]: leveled compaction with dynamic level sizing.
//!
//! Rules (see also `docs/compaction.md`):
//!
//! * **Levels.** The tree has `n = max(max_levels, 2, levels.len())` levels. The *last level*
//!   is the deepest non-empty level in `1..n`, or `n - 1` when all of them are empty.
//! * **Targets.** As RocksDB's `level_compaction_dynamic_level_bytes`: the last level's target
//!   is its actual size; each level above gets the target of the one below divided by
//!   `size_ratio`. The *base level* (where level 0 goes) is the highest (lowest-numbered)
//!   level whose target is `>= base_level_bytes`, or the last level if none is; but never
//!   below the first non-empty level of `1..n`, so a newer run is never put below older data.
//!   Levels above the base level are empty.
//! * **Scores.** Level 0 scores `runs / l0_trigger` and is eligible at `runs >= l0_trigger`.
//!   A level `i >= 1` scores `size / target` and is eligible at a score `> 1` (a zero target
//!   with data scores infinity). The last level is never compacted (its score is at most 1).
//!   Eligible levels are tried by score, highest first (ties: lower level first); the first
//!   that yields a task wins.
//! * **Level 0 task.** All level-0 runs plus every base-level run overlapping their key hull,
//!   output to the base level. Skipped when any of them is busy (level-0 runs overlap, so a
//!   subset could not be moved past a busy older run). When the level-0 runs are pairwise
//!   disjoint and overlap nothing in the base level it is a [`TaskKind::TrivialMove`].
//! * **Level `i >= 1` task.** One run of level `i` plus the runs of level `i + 1` it
//!   overlaps. Among the runs that are not busy and whose overlapping runs are not busy, the
//!   choice is: most tombstones first; then the smallest ratio of overlapping next-level
//!   bytes to the run's own bytes (RocksDB's `kMinOverlappingRatio`, which minimises bytes
//!   rewritten); then the smallest `min_key`; then the smallest id. This is stateless, unlike
//!   a round-robin cursor, which would need state outside [`Levels`]. A run overlapping
//!   nothing below is a trivial move.
//! * **bottommost** is true when no run in a level below the output level overlaps the hull
//!   of the inputs' key ranges.

use std::collections::HashSet;

use crate::types::{
    grandparents_of, is_bottommost, manual_inputs, KeyRange, Levels, RunInfo, Strategy, Task,
    TaskKind,
};

/// A merge's output is cut before its size plus the bytes it overlaps in the level below its
/// own passes this many target run sizes, so that pushing it down later rewrites at most
/// about that much. RocksDB bounds the same sum by `max_compaction_bytes`, 25 target file
/// sizes by default; the bound rarely binds for uniform keys, where the cuts at grandparent
/// boundaries (see [`crate::exec`]) do the work.
pub const GRANDPARENT_OVERLAP_RUNS: u64 = 10;

/// Leveled compaction with dynamic level sizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leveled {
    /// Compact level 0 when it holds this many runs (default 4).
    pub l0_trigger: usize,
    /// Each level is this many times larger than the one above (default 10).
    pub size_ratio: u64,
    /// Level 0 flushes into the highest level whose target is at least this (default 64 MiB).
    pub base_level_bytes: u64,
    /// Split merge outputs into runs of about this size (default 64 MiB).
    pub target_run_size: u64,
    /// Number of levels, level 0 included (default 7).
    pub max_levels: usize,
}

impl Default for Leveled {
    fn default() -> Self {
        Leveled {
            l0_trigger: 4,
            size_ratio: 10,
            base_level_bytes: 64 << 20,
            target_run_size: 64 << 20,
            max_levels: 7,
        }
    }
}

impl Leveled {
    fn level_count(&self, levels: &Levels) -> usize {
        self.max_levels.max(2).max(levels.levels.len())
    }

    /// The deepest non-empty level in `1..n`, or `n - 1` if all are empty.
    pub fn last_level(&self, levels: &Levels) -> usize {
        let n = self.level_count(levels);
        (1..n)
            .rev()
            .find(|&l| !levels.level(l).is_empty())
            .unwrap_or(n - 1)
    }

    /// The target size of every level (index 0 is unused and 0; levels above the base level
    /// and below the last level are 0).
    pub fn level_targets(&self, levels: &Levels) -> Vec<u64> {
        let n = self.level_count(levels);
        let last = self.last_level(levels);
        let ratio = self.size_ratio.max(1);
        let mut targets = vec![0u64; n];
        let mut t = levels.level_bytes(last);
        for level in (1..=last).rev() {
            if let Some(slot) = targets.get_mut(level) {
                *slot = t;
            }
            t /= ratio;
        }
        let base = self.base_level(levels);
        for slot in targets.iter_mut().take(base) {
            *slot = 0;
        }
        targets
    }

    /// The level that level 0 compacts into.
    pub fn base_level(&self, levels: &Levels) -> usize {
        let last = self.last_level(levels);
        let ratio = self.size_ratio.max(1);
        let mut t = levels.level_bytes(last);
        let mut base = last;
        for level in (1..=last).rev() {
            if t >= self.base_level_bytes {
                base = level;
            }
            t /= ratio;
        }
        let first_non_empty = (1..=last)
            .find(|&l| !levels.level(l).is_empty())
            .unwrap_or(last);
        base.min(first_non_empty)
    }

    /// The eligible levels with their scores, highest score first.
    pub fn scores(&self, levels: &Levels) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        let l0 = levels.level(0).len();
        let trigger = self.l0_trigger.max(1);
        if l0 >= trigger {
            out.push((0, l0 as f64 / trigger as f64));
        }
        let last = self.last_level(levels);
        let targets = self.level_targets(levels);
        for level in 1..last {
            let size = levels.level_bytes(level);
            let target = targets.get(level).copied().unwrap_or(0);
            let score = match (size, target) {
                (0, _) => 0.0,
                (_, 0) => f64::INFINITY,
                (s, t) => s as f64 / t as f64,
            };
            if score > 1.0 {
                out.push((level, score));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    fn pick_l0(&self, levels: &Levels, busy: &HashSet<u64>) -> Option<Task> {
        let l0 = levels.level(0);
        if l0.is_empty() || l0.iter().any(|r| busy.contains(&r.id)) {
            return None;
        }
        let base = self.base_level(levels);
        let hull = KeyRange::of_runs(l0)?;
        let below: Vec<&RunInfo> = levels
            .level(base)
            .iter()
            .filter(|r| r.range().overlaps(&hull))
            .collect();
        if below.iter().any(|r| busy.contains(&r.id)) {
            return None;
        }
        let disjoint = l0.iter().enumerate().all(|(i, a)| {
            l0.iter()
                .skip(i + 1)
                .all(|b| !a.range().overlaps(&b.range()))
        });
        let kind = if below.is_empty() && disjoint {
            TaskKind::TrivialMove
        } else {
            TaskKind::Merge
        };
        let mut inputs: Vec<(usize, u64)> = l0.iter().map(|r| (0, r.id)).collect();
        inputs.extend(below.iter().map(|r| (base, r.id)));
        let range = KeyRange::of_runs(l0.iter().chain(below.iter().copied()));
        Some(Task {
            grandparents: self.grandparents(levels, &kind, base, range),
            max_grandparent_overlap: self.max_grandparent_overlap(),
            kind,
            bottommost: is_bottommost(levels, range, &inputs, base, None),
            inputs,
            output_level: base,
            target_run_size: self.target_run_size,
        })
    }

    fn pick_level(&self, levels: &Levels, level: usize, busy: &HashSet<u64>) -> Option<Task> {
        let next = level + 1;
        let mut best: Option<(&RunInfo, Vec<&RunInfo>, u64)> = None;
        for run in levels.level(level) {
            if busy.contains(&run.id) {
                continue;
            }
            let below: Vec<&RunInfo> = levels
                .level(next)
                .iter()
                .filter(|r| r.range().overlaps(&run.range()))
                .collect();
            if below.iter().any(|r| busy.contains(&r.id)) {
                continue;
            }
            let overlap = below.iter().fold(0u64, |a, r| a.saturating_add(r.size));
            let better = match &best {
                None => true,
                Some((b, _, b_overlap)) => better_choice(run, overlap, b, *b_overlap),
            };
            if better {
                best = Some((run, below, overlap));
            }
        }
        let (run, below, _) = best?;
        let mut inputs = vec![(level, run.id)];
        inputs.extend(below.iter().map(|r| (next, r.id)));
        let range = KeyRange::of_runs(std::iter::once(run).chain(below.iter().copied()));
        let kind = if below.is_empty() {
            TaskKind::TrivialMove
        } else {
            TaskKind::Merge
        };
        Some(Task {
            grandparents: self.grandparents(levels, &kind, next, range),
            max_grandparent_overlap: self.max_grandparent_overlap(),
            kind,
            bottommost: is_bottommost(levels, range, &inputs, next, None),
            inputs,
            output_level: next,
            target_run_size: self.target_run_size,
        })
    }
}

impl Leveled {
    /// The runs of the level below `output_level` a merge's outputs should be cut against
    /// (none for a trivial move, which writes no output).
    fn grandparents(
        &self,
        levels: &Levels,
        kind: &TaskKind,
        output_level: usize,
        range: Option<KeyRange<'_>>,
    ) -> Vec<crate::Grandparent> {
        match kind {
            TaskKind::TrivialMove => Vec::new(),
            TaskKind::Merge => grandparents_of(levels, output_level + 1, range),
        }
    }

    /// See [`GRANDPARENT_OVERLAP_RUNS`].
    fn max_grandparent_overlap(&self) -> u64 {
        self.target_run_size
            .saturating_mul(GRANDPARENT_OVERLAP_RUNS)
    }
}

/// True if `a` (with `a_overlap` next-level bytes) is a better pick than `b`.
fn better_choice(a: &RunInfo, a_overlap: u64, b: &RunInfo, b_overlap: u64) -> bool {
    if a.tombstones != b.tombstones {
        return a.tombstones > b.tombstones;
    }
    // a_overlap / a.size < b_overlap / b.size, without division.
    let lhs = u128::from(a_overlap) * u128::from(b.size.max(1));
    let rhs = u128::from(b_overlap) * u128::from(a.size.max(1));
    if lhs != rhs {
        return lhs < rhs;
    }
    (&a.min_key, a.id) < (&b.min_key, b.id)
}

impl Strategy for Leveled {
    fn name(&self) -> &'static str {
        "leveled"
    }

    fn pick(&self, levels: &Levels, busy: &HashSet<u64>) -> Option<Task> {
        self.scores(levels)
            .into_iter()
            .find_map(|(level, _)| match level {
                0 => self.pick_l0(levels, busy),
                l => self.pick_level(levels, l, busy),
            })
    }

    /// Level 0 runs past the trigger, plus every level's excess over its target.
    fn pending_bytes(&self, levels: &Levels) -> u64 {
        let mut debt = 0u64;
        if levels.level(0).len() >= self.l0_trigger.max(1) {
            debt = levels.level_bytes(0);
        }
        let targets = self.level_targets(levels);
        for level in 1..self.last_level(levels) {
            let target = targets.get(level).copied().unwrap_or(0);
            debt = debt.saturating_add(levels.level_bytes(level).saturating_sub(target));
        }
        debt
    }

    /// Everything overlapping the range goes to the last level in one merge, so tombstones
    /// and shadowed versions can be dropped. A lone run already in the last level is only
    /// rewritten when it holds tombstones.
    fn manual(&self, levels: &Levels, range: Option<KeyRange<'_>>) -> Option<Task> {
        let inputs = manual_inputs(levels, range);
        let output_level = self.last_level(levels);
        if let [(level, id)] = inputs.as_slice() {
            let run = levels.level(*level).iter().find(|r| r.id == *id)?;
            if *level == output_level && run.tombstones == 0 {
                return None;
            }
        }
        if inputs.is_empty() {
            return None;
        }
        let runs = inputs
            .iter()
            .filter_map(|&(l, id)| levels.level(l).iter().find(|r| r.id == id));
        let hull = KeyRange::of_runs(runs);
        Some(Task {
            kind: TaskKind::Merge,
            bottommost: is_bottommost(levels, hull, &inputs, output_level, None),
            inputs,
            output_level,
            target_run_size: self.target_run_size,
            // The output goes to the last level: nothing lies below it.
            grandparents: Vec::new(),
            max_grandparent_overlap: u64::MAX,
        })
    }
}
