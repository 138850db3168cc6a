//! Property tests: `apply` keeps levels 1+ sorted and non-overlapping under a leveled
//! strategy, and no strategy panics or picks a busy or missing run on arbitrary trees.

use std::collections::HashSet;

use chronokv_compaction::{
    apply, manual_inputs, KeyRange, Leveled, Levels, RunInfo, Strategy, Task, TaskKind, Tiered,
};
use chronokv_snapshot::Version;
use proptest::prelude::*;

fn key(k: u16) -> Vec<u8> {
    k.to_be_bytes().to_vec()
}

fn run(id: u64, lo: u16, hi: u16, size: u64) -> RunInfo {
    RunInfo {
        id,
        size,
        min_key: key(lo),
        max_key: key(hi),
        min_version: Version(id),
        max_version: Version(id),
        entries: size,
        tombstones: id % 3,
    }
}

fn key_of(bytes: &[u8]) -> u16 {
    match bytes {
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// Outputs a merge could produce: the inputs' key hull cut into up to three runs.
fn outputs(levels: &Levels, task: &Task, next_id: &mut u64) -> Vec<RunInfo> {
    let inputs: Vec<&RunInfo> = task
        .inputs
        .iter()
        .filter_map(|&(l, id)| levels.level(l).iter().find(|r| r.id == id))
        .collect();
    let lo = inputs.iter().map(|r| key_of(&r.min_key)).min().unwrap_or(0);
    let hi = inputs.iter().map(|r| key_of(&r.max_key)).max().unwrap_or(0);
    let size: u64 = inputs.iter().map(|r| r.size).sum();
    let pieces = u32::from(hi - lo).min(2) + 1;
    let step = (u32::from(hi - lo) + 1) / pieces;
    (0..pieces)
        .map(|i| {
            let a = u32::from(lo) + i * step;
            let b = if i + 1 == pieces {
                u32::from(hi)
            } else {
                a + step - 1
            };
            *next_id += 1;
            let (a, b) = (
                u16::try_from(a).unwrap_or(u16::MAX),
                u16::try_from(b).unwrap_or(u16::MAX),
            );
            run(*next_id, a, b, size / u64::from(pieces))
        })
        .collect()
}

fn assert_leveled_shape(levels: &Levels) {
    for l in 1..levels.levels.len() {
        for pair in levels.level(l).windows(2) {
            if let [a, b] = pair {
                assert!(
                    a.max_key < b.min_key,
                    "level {l} not sorted/disjoint: {a:?} {b:?}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn leveled_apply_keeps_levels_sorted_and_disjoint(
        flushes in prop::collection::vec((any::<u16>(), 0u16..2000, 1u64..400), 1..60),
    ) {
        let strategy = Leveled { l0_trigger: 3, size_ratio: 4, base_level_bytes: 500, target_run_size: 300, max_levels: 5 };
        let mut levels = Levels::default();
        let mut next_id = 0u64;
        for (lo, width, size) in flushes {
            next_id += 1;
            let hi = lo.saturating_add(width);
            if levels.levels.is_empty() {
                levels.levels.push(Vec::new());
            }
            if let Some(l0) = levels.levels.first_mut() {
                l0.insert(0, run(next_id, lo, hi, size));
            }
            let mut steps = 0;
            while let Some(task) = strategy.pick(&levels, &HashSet::new()) {
                let out = if task.kind == TaskKind::Merge { outputs(&levels, &task, &mut next_id) } else { Vec::new() };
                let before = levels.run_count();
                let moved = task.inputs.len();
                levels = apply(&levels, &task, out.clone());
                assert_leveled_shape(&levels);
                if task.kind == TaskKind::TrivialMove {
                    prop_assert_eq!(levels.run_count(), before);
                } else {
                    prop_assert_eq!(levels.run_count(), before - moved + out.len());
                }
                steps += 1;
                prop_assert!(steps < 1000, "did not settle");
            }
            prop_assert!(levels.level(0).len() < strategy.l0_trigger);
        }
    }

    #[test]
    fn strategies_never_pick_busy_or_missing_runs(
        shape in prop::collection::vec(
            prop::collection::vec((any::<u8>(), any::<u8>(), prop::sample::select(vec![0u64, 1, 10, 1000, u64::MAX])), 0..6),
            0..6,
        ),
        busy_mask in any::<u64>(),
        max_levels in 0usize..8,
    ) {
        let mut id = 0u64;
        let levels = Levels {
            levels: shape.iter().map(|level| level.iter().map(|&(a, b, size)| {
                id += 1;
                let mut r = run(id, u16::from(a), u16::from(b), size);
                if a == 0 { r.min_key.clear(); }
                r
            }).collect()).collect(),
        };
        let busy: HashSet<u64> = (1..=id).filter(|i| busy_mask >> (i % 64) & 1 == 1).collect();
        let leveled = Leveled { l0_trigger: 2, size_ratio: 3, base_level_bytes: 10, target_run_size: 10, max_levels };
        let strategies: [&dyn Strategy; 2] = [&leveled, &Tiered { min_merge: 2, ..Tiered::default() }];
        for strategy in strategies {
            if let Some(task) = strategy.pick(&levels, &busy) {
                prop_assert!(!task.inputs.is_empty());
                for &(l, id) in &task.inputs {
                    prop_assert!(!busy.contains(&id), "{} picked busy run {}", strategy.name(), id);
                    prop_assert!(levels.level(l).iter().any(|r| r.id == id), "missing input");
                }
                let after = apply(&levels, &task, Vec::new());
                prop_assert!(after.levels.len() > task.output_level);
            }
        }
    }

    #[test]
    fn manual_compaction_is_closed_under_overlap_and_keeps_the_shape(
        flushes in prop::collection::vec((any::<u16>(), 0u16..2000, 1u64..400), 1..40),
        lo in any::<u16>(),
        width in 0u16..3000,
    ) {
        let strategy = Leveled { l0_trigger: 3, size_ratio: 4, base_level_bytes: 500, target_run_size: 300, max_levels: 5 };
        let mut levels = Levels::default();
        let mut next_id = 0u64;
        for (flo, fwidth, size) in flushes {
            next_id += 1;
            if levels.levels.is_empty() {
                levels.levels.push(Vec::new());
            }
            if let Some(l0) = levels.levels.first_mut() {
                l0.insert(0, run(next_id, flo, flo.saturating_add(fwidth), size));
            }
            while let Some(task) = strategy.pick(&levels, &HashSet::new()) {
                let out = if task.kind == TaskKind::Merge { outputs(&levels, &task, &mut next_id) } else { Vec::new() };
                levels = apply(&levels, &task, out);
            }
        }
        let (min, max) = (key(lo), key(lo.saturating_add(width)));
        let range = KeyRange { min: &min, max: &max };
        let inputs = manual_inputs(&levels, Some(range));
        let taken: Vec<&RunInfo> = inputs.iter().filter_map(|&(l, id)| levels.level(l).iter().find(|r| r.id == id)).collect();
        prop_assert_eq!(taken.len(), inputs.len());
        if let Some(hull) = KeyRange::of_runs(taken.iter().copied()) {
            for (l, runs) in levels.levels.iter().enumerate() {
                for r in runs {
                    if !inputs.contains(&(l, r.id)) {
                        prop_assert!(!r.range().overlaps(&hull), "run {} left out but overlaps", r.id);
                    }
                }
            }
        }
        if let Some(task) = strategy.manual(&levels, Some(range)) {
            let out = outputs(&levels, &task, &mut next_id);
            let after = apply(&levels, &task, out);
            assert_leveled_shape(&after);
            prop_assert!(task.bottommost);
        }
    }
}
