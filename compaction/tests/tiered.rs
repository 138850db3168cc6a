//! Tiered strategy: similar sizes merge, a lone big run is left alone, limits and busy runs.

mod common;

use std::collections::HashSet;

use chronokv_compaction::{Levels, RunInfo, Strategy, TaskKind, Tiered};
use common::{run, tree};

fn sized(sizes: &[u64]) -> Vec<RunInfo> {
    (1u64..)
        .zip(sizes)
        .map(|(id, &s)| run(id, 0, 255, s))
        .collect()
}

fn ids(task: &chronokv_compaction::Task) -> Vec<u64> {
    task.inputs.iter().map(|&(_, id)| id).collect()
}

#[test]
fn empty_and_small_trees_give_none() {
    let s = Tiered::default();
    assert_eq!(s.pick(&Levels::default(), &HashSet::new()), None);
    assert_eq!(
        s.pick(&tree(vec![sized(&[10, 10, 10])]), &HashSet::new()),
        None
    );
}

#[test]
fn merges_runs_of_similar_size() {
    let s = Tiered::default();
    let task = s
        .pick(&tree(vec![sized(&[10, 11, 10, 12])]), &HashSet::new())
        .expect("task");
    assert_eq!(task.kind, TaskKind::Merge);
    assert_eq!(task.inputs, vec![(0, 1), (0, 2), (0, 3), (0, 4)]);
    assert_eq!(task.output_level, 0);
    assert!(task.bottommost);
    // 10 and 13 are not within 120%: the window stops before 13.
    assert_eq!(
        s.pick(&tree(vec![sized(&[10, 11, 10, 13])]), &HashSet::new()),
        None
    );
}

#[test]
fn lone_big_run_is_left_alone() {
    let s = Tiered::default();
    let task = s.pick(&tree(vec![sized(&[10, 10, 10, 10, 1000])]), &HashSet::new());
    assert_eq!(ids(&task.expect("task")), vec![1, 2, 3, 4]);
    assert_eq!(s.pick(&tree(vec![sized(&[1000])]), &HashSet::new()), None);
    assert_eq!(
        s.pick(&tree(vec![sized(&[40, 10, 10, 10, 1000])]), &HashSet::new()),
        None
    );
}

#[test]
fn prefers_longest_then_cheapest_window() {
    let s = Tiered::default();
    // Two windows of 4: the small runs are cheaper.
    let t = tree(vec![sized(&[10, 10, 10, 10, 100, 100, 100, 100])]);
    assert_eq!(
        ids(&s.pick(&t, &HashSet::new()).expect("task")),
        vec![1, 2, 3, 4]
    );
    // A window of 5 big runs beats a window of 4 small ones.
    let t = tree(vec![sized(&[10, 10, 10, 10, 100, 100, 100, 100, 100])]);
    assert_eq!(
        ids(&s.pick(&t, &HashSet::new()).expect("task")),
        vec![5, 6, 7, 8, 9]
    );
}

#[test]
fn merges_at_most_max_merge() {
    let s = Tiered::default();
    let task = s
        .pick(&tree(vec![sized(&[10; 12])]), &HashSet::new())
        .expect("task");
    assert_eq!(task.inputs.len(), 10);
    // The newest 10 runs; the two oldest overlap them, so not bottommost.
    assert_eq!(ids(&task), (1..=10).collect::<Vec<_>>());
    assert!(!task.bottommost);
}

#[test]
fn busy_runs_split_windows() {
    let s = Tiered::default();
    let t = tree(vec![sized(&[10; 7])]);
    let task = s.pick(&t, &[3].into()).expect("task");
    assert_eq!(ids(&task), vec![4, 5, 6, 7]);
    assert_eq!(s.pick(&t, &[3, 5].into()), None);
}

#[test]
fn bottommost_only_when_no_older_run_overlaps() {
    let s = Tiered::default();
    // Newest four merge; the oldest run overlaps them.
    let mut runs = sized(&[10, 10, 10, 10, 1000]);
    let t = tree(vec![runs.clone()]);
    assert!(!s.pick(&t, &HashSet::new()).expect("task").bottommost);
    // Move the old run's keys out of the way.
    if let Some(old) = runs.get_mut(4) {
        old.min_key = vec![1, 0];
        old.max_key = vec![2];
    }
    for r in runs.iter_mut().take(4) {
        r.max_key = vec![1];
    }
    let t = tree(vec![runs.clone()]);
    assert!(s.pick(&t, &HashSet::new()).expect("task").bottommost);
    // A run in a deeper level also counts.
    let t = tree(vec![runs, vec![run(99, 0, 0, 5)]]);
    assert!(!s.pick(&t, &HashSet::new()).expect("task").bottommost);
}

#[test]
fn zero_sizes_and_odd_settings_do_not_panic() {
    let t = tree(vec![
        sized(&[0, 0, 0, 0, u64::MAX, u64::MAX]),
        vec![],
        sized(&[0, 1, 2]),
    ]);
    for (min_merge, max_merge, pct) in [(0, 0, 0), (4, 2, 100), (2, 100, u64::MAX)] {
        let s = Tiered {
            min_merge,
            max_merge,
            size_ratio_percent: pct,
            target_run_size: 0,
        };
        let _ = s.pick(&t, &HashSet::new());
    }
    let task = Tiered::default()
        .pick(&t, &HashSet::new())
        .expect("zero sizes count as 1");
    assert_eq!(ids(&task), vec![1, 2, 3, 4]);
}

#[test]
fn similar_runs_with_disjoint_keys_are_not_merged() {
    let s = Tiered::default();
    // Four similar runs over disjoint key ranges (a split merge output): nothing to gain.
    let disjoint: Vec<RunInfo> = (0..4u8)
        .map(|i| run(u64::from(i) + 1, i * 10, i * 10 + 9, 10))
        .collect();
    assert_eq!(s.pick(&tree(vec![disjoint.clone()]), &HashSet::new()), None);
    // One overlapping newer run makes the window worth merging.
    let mut with_flush = vec![run(9, 5, 25, 10)];
    with_flush.extend(disjoint);
    let task = s
        .pick(&tree(vec![with_flush]), &HashSet::new())
        .expect("task");
    assert_eq!(ids(&task), vec![9, 1, 2, 3, 4]);
}
