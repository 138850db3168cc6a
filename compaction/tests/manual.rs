//! Manual compaction (`Strategy::manual`, `manual_inputs`) and compaction debt
//! (`Strategy::pending_bytes`).

mod common;

use chronokv_compaction::{manual_inputs, KeyRange, Leveled, Strategy, TaskKind, Tiered};
use common::{run, tree};

fn range<'a>(min: &'a [u8], max: &'a [u8]) -> Option<KeyRange<'a>> {
    Some(KeyRange { min, max })
}

#[test]
fn inputs_close_over_overlap_across_levels() {
    // L1 is disjoint: [10..20] [30..40] [50..60]; L2: [0..35] [36..90].
    let t = tree(vec![
        vec![],
        vec![run(1, 10, 20, 5), run(2, 30, 40, 5), run(3, 50, 60, 5)],
        vec![run(4, 0, 35, 5), run(5, 36, 90, 5)],
    ]);
    // 12 hits run 1; the hull grows through run 4 (0..35) to run 2 (30..40), then run 5
    // (36..90), then run 3 (50..60).
    let got = manual_inputs(&t, range(&[12], &[12]));
    assert_eq!(got, vec![(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)]);
    assert!(manual_inputs(&t, range(&[95], &[99])).is_empty());
    // With L2's second run at 45..90 the closure from 5..8 stops after runs 4, 1 and 2.
    let mut t2 = t.clone();
    t2.levels[2][1] = run(5, 45, 90, 5);
    assert_eq!(
        manual_inputs(&t2, range(&[5], &[8])),
        vec![(1, 1), (1, 2), (2, 4)]
    );
}

#[test]
fn inputs_take_a_whole_age_window_in_overlapping_levels() {
    // Level 0, newest first: run 1 hits the range, run 2 does not, run 3 does.
    let t = tree(vec![vec![
        run(1, 10, 20, 5),
        run(2, 100, 120, 5),
        run(3, 15, 30, 5),
        run(4, 200, 210, 5),
    ]]);
    assert_eq!(
        manual_inputs(&t, range(&[18], &[19])),
        vec![(0, 1), (0, 2), (0, 3)],
        "the window from the newest to the oldest overlapping run, run 2 included"
    );
    assert_eq!(manual_inputs(&t, None).len(), 4);
}

#[test]
fn leveled_manual_goes_to_the_last_level_and_is_bottommost() {
    let s = Leveled::default();
    let t = tree(vec![
        vec![run(7, 0, 50, 5)],
        vec![],
        vec![run(1, 0, 10, 5), run(2, 20, 30, 5), run(3, 90, 99, 5)],
    ]);
    let task = s.manual(&t, None).expect("a task");
    assert_eq!(task.kind, TaskKind::Merge);
    assert_eq!(task.output_level, 2.max(s.last_level(&t)));
    assert!(task.bottommost);
    assert_eq!(task.inputs.len(), 4);
    // Run 3 alone in the last level with no tombstones: nothing to gain.
    assert_eq!(s.manual(&t, range(&[95], &[96])), None);
}

#[test]
fn a_lone_clean_bottom_run_is_left_alone() {
    let s = Leveled::default();
    let t = tree(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![run(1, 0, 9, 5)],
    ]);
    assert_eq!(s.manual(&t, None), None);
    let mut with_tombstones = t.clone();
    with_tombstones.levels[6][0].tombstones = 1;
    assert!(s.manual(&with_tombstones, None).is_some());
    assert_eq!(
        Tiered::default().manual(&tree(vec![vec![run(1, 0, 9, 5)]]), None),
        None
    );
}

#[test]
fn tiered_manual_merges_within_level_zero() {
    let s = Tiered::default();
    let t = tree(vec![vec![
        run(1, 0, 9, 5),
        run(2, 5, 20, 500),
        run(3, 50, 60, 5),
    ]]);
    let task = s.manual(&t, range(&[0], &[6])).expect("a task");
    assert_eq!(task.inputs, vec![(0, 1), (0, 2)]);
    assert_eq!(task.output_level, 0);
    assert!(task.bottommost, "run 3 is older but does not overlap 0..20");
    assert_eq!(s.manual(&t, range(&[200], &[201])), None);
}

#[test]
fn debt_counts_level0_past_trigger_and_excess_bytes() {
    let s = Leveled {
        l0_trigger: 2,
        size_ratio: 10,
        base_level_bytes: 100,
        target_run_size: 50,
        max_levels: 4,
    };
    let one = tree(vec![vec![run(1, 0, 9, 30)]]);
    assert_eq!(s.pending_bytes(&one), 0);
    let two = tree(vec![vec![run(1, 0, 9, 30), run(2, 0, 9, 40)]]);
    assert_eq!(s.pending_bytes(&two), 70);
    // Last level 3 holds 1000, so level 2's target is 100; it holds 250: 150 too many.
    let deep = tree(vec![
        vec![],
        vec![],
        vec![run(3, 0, 9, 250)],
        vec![run(4, 0, 9, 1000)],
    ]);
    assert_eq!(s.pending_bytes(&deep), 150);

    let t = Tiered::default();
    assert_eq!(t.pending_bytes(&tree(vec![vec![run(1, 0, 9, 10)]])), 0);
    let four = tree(vec![(1..=4).map(|i| run(i, 0, 9, 10)).collect()]);
    assert_eq!(t.pending_bytes(&four), 40);
}
