//! [`apply`]: the tree after a task ran. Pure: it copies and returns a new [`Levels`].
//!
//! Rules, in order:
//!
//! 1. Every input `(level, id)` found in the tree is removed (inputs that are missing are
//!    ignored, so a stale task cannot panic).
//! 2. The new runs are `outputs` for [`TaskKind::Merge`], or the removed input runs
//!    themselves, unchanged and in their old order, for [`TaskKind::TrivialMove`] (`outputs`
//!    is ignored then).
//! 3. If every input was in `output_level` (an intra-level merge, as [`crate::Tiered`] does),
//!    the new runs take the place of the newest input, so the level stays ordered by age.
//!    Otherwise, for `output_level == 0` the new runs go to the end (oldest); for
//!    `output_level >= 1` they are added and the level is sorted by `(min_key, max_key)`
//!    (stable), which keeps a leveled level sorted and, when the task came from
//!    [`crate::Leveled`], non-overlapping.
//! 4. `levels` grows to hold `output_level` if needed; no level is dropped.

use crate::types::{Levels, RunInfo, Task, TaskKind};

/// The tree after `task` ran and produced `outputs` (sorted by key, non-overlapping); pure.
pub fn apply(levels: &Levels, task: &Task, outputs: Vec<RunInfo>) -> Levels {
    let mut next = levels.clone();
    if next.levels.len() <= task.output_level {
        next.levels.resize_with(task.output_level + 1, Vec::new);
    }

    let intra_level =
        !task.inputs.is_empty() && task.inputs.iter().all(|&(l, _)| l == task.output_level);
    // Position of the newest input in the output level, before anything is removed.
    let insert_at = next.levels.get(task.output_level).and_then(|runs| {
        runs.iter()
            .position(|r| task.inputs.contains(&(task.output_level, r.id)))
    });

    let mut removed = Vec::new();
    for (level, runs) in next.levels.iter_mut().enumerate() {
        let (taken, kept): (Vec<RunInfo>, Vec<RunInfo>) = std::mem::take(runs)
            .into_iter()
            .partition(|r| task.inputs.contains(&(level, r.id)));
        *runs = kept;
        removed.extend(taken);
    }

    let new_runs = match task.kind {
        TaskKind::Merge => outputs,
        TaskKind::TrivialMove => removed,
    };

    let Some(target) = next.levels.get_mut(task.output_level) else {
        return next;
    };
    if intra_level {
        let at = insert_at.unwrap_or(0).min(target.len());
        target.splice(at..at, new_runs);
    } else if task.output_level == 0 {
        target.extend(new_runs);
    } else {
        target.extend(new_runs);
        target.sort_by(|a, b| (&a.min_key, &a.max_key).cmp(&(&b.min_key, &b.max_key)));
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronokv_snapshot::Version;

    fn run(id: u64, lo: u8, hi: u8) -> RunInfo {
        RunInfo {
            id,
            size: 10,
            min_key: vec![lo],
            max_key: vec![hi],
            min_version: Version(0),
            max_version: Version(0),
            entries: 1,
            tombstones: 0,
        }
    }

    #[test]
    fn merge_into_next_level_sorts() {
        let levels = Levels {
            levels: vec![
                vec![run(1, 5, 6)],
                vec![run(2, 0, 1), run(3, 5, 7), run(4, 9, 9)],
            ],
        };
        let task = Task {
            kind: TaskKind::Merge,
            inputs: vec![(0, 1), (1, 3)],
            output_level: 1,
            target_run_size: u64::MAX,
            bottommost: true,
            grandparents: Vec::new(),
            max_grandparent_overlap: u64::MAX,
        };
        let out = apply(&levels, &task, vec![run(10, 5, 7)]);
        let ids: Vec<u64> = out.level(1).iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![2, 10, 4]);
        assert!(out.level(0).is_empty());
    }

    #[test]
    fn intra_level_merge_keeps_age_position() {
        let levels = Levels {
            levels: vec![vec![run(1, 0, 9), run(2, 0, 9), run(3, 0, 9), run(4, 0, 9)]],
        };
        let task = Task {
            kind: TaskKind::Merge,
            inputs: vec![(0, 2), (0, 3)],
            output_level: 0,
            target_run_size: u64::MAX,
            bottommost: false,
            grandparents: Vec::new(),
            max_grandparent_overlap: u64::MAX,
        };
        let out = apply(&levels, &task, vec![run(9, 0, 9)]);
        let ids: Vec<u64> = out.level(0).iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![1, 9, 4]);
    }

    #[test]
    fn trivial_move_ignores_outputs_and_grows_levels() {
        let levels = Levels {
            levels: vec![vec![run(1, 0, 9)]],
        };
        let task = Task {
            kind: TaskKind::TrivialMove,
            inputs: vec![(0, 1)],
            output_level: 3,
            target_run_size: 1,
            bottommost: true,
            grandparents: Vec::new(),
            max_grandparent_overlap: u64::MAX,
        };
        let out = apply(&levels, &task, vec![run(7, 0, 0)]);
        assert_eq!(out.levels.len(), 4);
        assert_eq!(out.level(3), &[run(1, 0, 9)]);
        assert!(out.level(0).is_empty());
    }

    #[test]
    fn missing_inputs_are_ignored() {
        let levels = Levels::default();
        let task = Task {
            kind: TaskKind::Merge,
            inputs: vec![(5, 1)],
            output_level: 2,
            target_run_size: 1,
            bottommost: true,
            grandparents: Vec::new(),
            max_grandparent_overlap: u64::MAX,
        };
        let out = apply(&levels, &task, vec![]);
        assert_eq!(out.run_count(), 0);
    }
}
