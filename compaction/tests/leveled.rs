//! Leveled strategy: trigger, trivial move, busy runs, bottommost, dynamic base level, scores.

mod common;

use std::collections::HashSet;

use chronokv_compaction::{Leveled, Levels, Strategy, TaskKind};
use common::{l0, run, tree};

fn none() -> HashSet<u64> {
    HashSet::new()
}

/// Small sizes so trees fit in a test: base level wants >= 100 bytes, ratio 10.
fn small() -> Leveled {
    Leveled {
        l0_trigger: 4,
        size_ratio: 10,
        base_level_bytes: 100,
        target_run_size: 50,
        max_levels: 7,
    }
}

#[test]
fn empty_tree_gives_none() {
    assert_eq!(Leveled::default().pick(&Levels::default(), &none()), None);
    assert_eq!(
        small().pick(&tree(vec![vec![], vec![], vec![]]), &none()),
        None
    );
}

#[test]
fn level0_compacts_at_the_trigger_and_not_before() {
    let s = small();
    assert_eq!(s.pick(&tree(vec![l0(1, 3)]), &none()), None);
    let task = s
        .pick(&tree(vec![l0(1, 4)]), &none())
        .expect("task at trigger");
    assert_eq!(task.kind, TaskKind::Merge);
    assert_eq!(task.inputs, vec![(0, 1), (0, 2), (0, 3), (0, 4)]);
    assert_eq!(
        task.output_level, 6,
        "an empty tree's base level is the last level"
    );
    assert!(task.bottommost);
    assert_eq!(task.target_run_size, 50);
}

#[test]
fn level0_task_takes_overlapping_base_runs_only() {
    let s = small();
    let mut runs = vec![run(1, 10, 20, 10), run(2, 15, 30, 10)];
    runs.extend([run(3, 12, 14, 10), run(4, 25, 28, 10)]);
    let base = vec![run(10, 0, 5, 40), run(11, 18, 22, 40), run(12, 40, 50, 40)];
    let task = s.pick(
        &tree(vec![runs, vec![], vec![], vec![], vec![], vec![], base]),
        &none(),
    );
    let task = task.expect("task");
    assert_eq!(task.output_level, 6);
    assert_eq!(task.inputs, vec![(0, 1), (0, 2), (0, 3), (0, 4), (6, 11)]);
}

#[test]
fn trivial_move_when_nothing_overlaps() {
    let s = small();
    // Level 0: four disjoint runs, base level holds only keys above them.
    let runs = vec![
        run(1, 0, 1, 5),
        run(2, 2, 3, 5),
        run(3, 4, 5, 5),
        run(4, 6, 7, 5),
    ];
    let t = tree(vec![
        runs,
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![run(9, 100, 200, 50)],
    ]);
    let task = s.pick(&t, &none()).expect("task");
    assert_eq!(task.kind, TaskKind::TrivialMove);
    assert_eq!(task.output_level, 6);

    // Overlapping level-0 runs are never trivially moved, even with nothing below.
    let t = tree(vec![l0(1, 4)]);
    assert_eq!(s.pick(&t, &none()).expect("task").kind, TaskKind::Merge);

    // Level 5 over its target, its run overlaps nothing in level 6.
    let t = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![run(5, 0, 9, 500)],
        vec![run(6, 50, 60, 1000)],
    ]);
    let task = s.pick(&t, &none()).expect("task");
    assert_eq!(task.kind, TaskKind::TrivialMove);
    assert_eq!(task.inputs, vec![(5, 5)]);
    assert_eq!(task.output_level, 6);
}

#[test]
fn busy_runs_are_skipped() {
    let s = small();
    // One busy level-0 run blocks the level-0 task.
    let busy: HashSet<u64> = [2].into();
    assert_eq!(s.pick(&tree(vec![l0(1, 4)]), &busy), None);
    // A busy base-level run that the level-0 task would need blocks it too.
    let t = tree(vec![
        l0(1, 4),
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![run(9, 0, 9, 50)],
    ]);
    assert_eq!(s.pick(&t, &[9].into()), None);
    // In level 4 the best run is busy, so the next one is picked.
    let t = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![run(40, 0, 9, 2500), run(41, 20, 29, 2500)],
        vec![run(50, 0, 9, 5000), run(51, 20, 29, 5000)],
        vec![run(60, 0, 255, 100_000)],
    ]);
    let first = s.pick(&t, &none()).expect("task");
    assert_eq!(first.inputs.first(), Some(&(4, 40)));
    let second = s.pick(&t, &[40].into()).expect("task");
    assert_eq!(second.inputs, vec![(4, 41), (5, 51)]);
    // A busy run in the next level blocks the run overlapping it.
    let third = s.pick(&t, &[50].into()).expect("task");
    assert_eq!(third.inputs, vec![(4, 41), (5, 51)]);
    assert_eq!(s.pick(&t, &[40, 41].into()), None);
}

#[test]
fn bottommost_flag_follows_overlap_below() {
    let s = small();
    let level4 = vec![run(40, 0, 9, 5000)];
    let level5 = vec![run(50, 0, 9, 10_000)];
    // Level 6 overlaps keys 0..=9: not bottommost.
    let t = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        level4.clone(),
        level5.clone(),
        vec![run(60, 5, 200, 100_000)],
    ]);
    let task = s.pick(&t, &none()).expect("task");
    assert_eq!(task.inputs, vec![(4, 40), (5, 50)]);
    assert!(!task.bottommost);
    // Level 6 holds only keys above: bottommost.
    let t = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        level4,
        level5,
        vec![run(60, 10, 200, 100_000)],
    ]);
    let task = s.pick(&t, &none()).expect("task");
    assert_eq!(task.inputs, vec![(4, 40), (5, 50)]);
    assert!(task.bottommost);
}

#[test]
fn base_level_moves_up_as_data_grows() {
    let s = small();
    let with_last = |bytes: u64| {
        let mut levels = vec![l0(1, 4), vec![], vec![], vec![], vec![], vec![]];
        levels.push(vec![run(100, 0, 255, bytes)]);
        tree(levels)
    };
    for (bytes, base) in [
        (0, 6),
        (50, 6),
        (999, 6),
        (1000, 5),
        (100_000, 3),
        (10_000_000, 1),
    ] {
        let t = with_last(bytes);
        assert_eq!(s.base_level(&t), base, "last level {bytes} bytes");
        assert_eq!(s.pick(&t, &none()).expect("task").output_level, base);
    }
    // Targets divide by the ratio going up, and are zero above the base level.
    assert_eq!(
        s.level_targets(&with_last(100_000)),
        vec![0, 0, 0, 100, 1000, 10_000, 100_000]
    );
}

#[test]
fn base_level_never_below_the_first_non_empty_level() {
    let s = small();
    // Level 6 is small (base would be 6) but level 2 holds data: level 0 must go to level 2.
    let t = tree(vec![
        l0(1, 4),
        vec![],
        vec![run(20, 0, 9, 1)],
        vec![],
        vec![],
        vec![],
        vec![run(60, 0, 9, 10)],
    ]);
    assert_eq!(s.base_level(&t), 2);
    // Level 2 is far over its (zero) target, so it is pushed down first.
    let task = s.pick(&t, &none()).expect("task");
    assert_eq!(
        (task.kind, task.inputs),
        (TaskKind::TrivialMove, vec![(2, 20)])
    );
    // Level 6 = 100_000 puts the base at 3 by size, but level 2 (target 10) holds 5 bytes.
    let t = tree(vec![
        l0(1, 4),
        vec![],
        vec![run(20, 0, 9, 5)],
        vec![],
        vec![],
        vec![],
        vec![run(60, 0, 9, 100_000)],
    ]);
    assert_eq!(s.base_level(&t), 2);
    assert_eq!(s.pick(&t, &none()).expect("task").output_level, 2);
}

#[test]
fn highest_score_wins() {
    let s = small();
    // Level 6 = 100_000: targets level 5 = 10_000, level 4 = 1000.
    let deep = |l0_runs: u64, l4: u64, l5: u64| {
        tree(vec![
            l0(1, l0_runs),
            vec![],
            vec![],
            vec![],
            vec![run(40, 0, 255, l4)],
            vec![run(50, 0, 255, l5)],
            vec![run(60, 0, 255, 100_000)],
        ])
    };
    // Level 4 at score 5 beats level 5 at score 3 and level 0 at score 1.
    let t = deep(4, 5000, 30_000);
    let scores = s.scores(&t);
    assert_eq!(
        scores.iter().map(|&(l, _)| l).collect::<Vec<_>>(),
        vec![4, 5, 0]
    );
    assert_eq!(
        s.pick(&t, &none()).expect("task").inputs.first(),
        Some(&(4, 40))
    );
    // Level 5 at score 8 beats level 4 at score 5.
    let t = deep(0, 5000, 80_000);
    assert_eq!(
        s.pick(&t, &none()).expect("task").inputs.first(),
        Some(&(5, 50))
    );
    // Level 0 with 40 runs (score 10) beats both.
    let t = deep(40, 5000, 80_000);
    assert_eq!(
        s.pick(&t, &none()).expect("task").inputs.first(),
        Some(&(0, 1))
    );
    // Nothing over target and level 0 below the trigger: nothing to do.
    assert_eq!(s.pick(&deep(3, 1000, 10_000), &none()), None);
}

#[test]
fn run_choice_prefers_tombstones_then_least_overlap() {
    let s = small();
    let mut level4 = vec![
        run(40, 0, 9, 2500),
        run(41, 20, 29, 2500),
        run(42, 40, 49, 2500),
    ];
    let level5 = vec![
        run(50, 0, 9, 9000),
        run(51, 20, 29, 100),
        run(52, 40, 49, 5000),
    ];
    let t = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        level4.clone(),
        level5.clone(),
        vec![run(60, 0, 255, 100_000)],
    ]);
    assert_eq!(
        s.pick(&t, &none()).expect("task").inputs,
        vec![(4, 41), (5, 51)]
    );
    if let Some(r) = level4.get_mut(2) {
        r.tombstones = 7;
    }
    let t = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        level4,
        level5,
        vec![run(60, 0, 255, 100_000)],
    ]);
    assert_eq!(
        s.pick(&t, &none()).expect("task").inputs,
        vec![(4, 42), (5, 52)]
    );
}

#[test]
fn odd_input_does_not_panic() {
    let odd = vec![
        vec![run(1, 9, 0, 0), run(2, 0, 0, u64::MAX)],
        vec![run(3, 0, 200, u64::MAX), run(4, 100, 255, u64::MAX)],
        vec![],
        vec![run(5, 5, 5, 0)],
    ];
    let mut empty_keys = common::run(6, 0, 0, 0);
    empty_keys.min_key.clear();
    empty_keys.max_key.clear();
    let mut levels = odd;
    levels.push(vec![empty_keys]);
    let t = tree(levels);
    for max_levels in [0, 1, 2, 7, 20] {
        for trigger in [0, 1, 4] {
            let s = Leveled {
                l0_trigger: trigger,
                size_ratio: 0,
                base_level_bytes: 0,
                target_run_size: 0,
                max_levels,
            };
            let _ = s.pick(&t, &none());
            let _ = s.pick(&t, &[1, 3].into());
        }
    }
}

#[test]
fn a_merge_carries_the_runs_below_its_output_level_as_grandparents() {
    let s = small();
    let level0: Vec<_> = (1..=4).map(|id| run(id, 10, 100, 10)).collect();
    let level5 = vec![run(20, 0, 50, 30)];
    let level6 = vec![
        run(30, 0, 40, 400),
        run(31, 41, 90, 400),
        run(32, 120, 200, 400),
    ];
    let levels = tree(vec![level0, vec![], vec![], vec![], vec![], level5, level6]);
    let task = s.pick(&levels, &none()).expect("level-0 task");
    assert_eq!(task.output_level, 5);
    let bounds: Vec<(Vec<u8>, Vec<u8>, u64)> = task
        .grandparents
        .iter()
        .map(|g| (g.min_key.clone(), g.max_key.clone(), g.size))
        .collect();
    // The level-6 runs overlapping the inputs' hull 0..=100, in key order; not run 32.
    assert_eq!(
        bounds,
        vec![(vec![0], vec![40], 400), (vec![41], vec![90], 400)]
    );
    assert_eq!(task.max_grandparent_overlap, 10 * s.target_run_size);
}

#[test]
fn a_merge_into_the_last_level_has_no_grandparents() {
    let s = small();
    let levels = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![run(20, 0, 50, 300)],
        vec![run(30, 0, 40, 500), run(31, 41, 90, 500)],
    ]);
    let task = s.pick(&levels, &none()).expect("level-5 task");
    assert_eq!((task.kind, task.output_level), (TaskKind::Merge, 6));
    assert!(task.grandparents.is_empty());
}
