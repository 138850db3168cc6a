//! The simulator: leveled costs more writes than tiered, the tree settles, results repeat.

use chronokv_compaction::sim::{simulate, SimConfig};
use chronokv_compaction::{Leveled, Tiered};

/// 1M keys of 116 bytes, filled then 50% overwritten, with 1 MiB flushes (at 64 MiB flushes
/// this workload is only 3 flushes and neither strategy compacts).
fn workload() -> SimConfig {
    SimConfig {
        keys: 1_000_000,
        overwrite_fraction: 0.5,
        flush_bytes: 1 << 20,
        entry_bytes: 116,
        seed: 7,
    }
}

#[test]
fn leveled_writes_more_than_tiered() {
    let leveled = simulate(&Leveled::default(), &workload());
    let tiered = simulate(&Tiered::default(), &workload());
    let (wl, wt) = (leveled.write_amplification(), tiered.write_amplification());
    assert!(wl.is_finite() && wt.is_finite(), "{wl} {wt}");
    assert!(wt > 1.0, "tiered compacted something: {tiered}");
    assert!(wl > wt, "leveled {wl} should exceed tiered {wt}");
    assert!(!leveled.did_not_settle && !tiered.did_not_settle);
    assert_eq!(leveled.user_bytes, 1_500_000 * 116);
}

#[test]
fn level0_stays_below_the_trigger_after_settling() {
    let strategy = Leveled::default();
    let report = simulate(&strategy, &workload());
    let l0 = report.tree.level(0).len();
    assert!(l0 < strategy.l0_trigger, "{l0} level-0 runs");
    // Everything else is in sorted, non-overlapping levels.
    for level in 1..report.tree.levels.len() {
        let runs = report.tree.level(level);
        for pair in runs.windows(2) {
            if let [a, b] = pair {
                assert!(a.max_key < b.min_key, "level {level} overlaps");
            }
        }
    }
    // Space amplification is modest once compacted.
    assert!(report.space_amplification() < 1.2, "{report}");
}

#[test]
fn same_seed_same_result() {
    let a = simulate(&Tiered::default(), &workload());
    let b = simulate(&Tiered::default(), &workload());
    assert_eq!(a, b);
    let c = simulate(
        &Tiered::default(),
        &SimConfig {
            seed: 8,
            ..workload()
        },
    );
    assert!(c.write_amplification().is_finite());
}

#[test]
fn degenerate_configs_do_not_panic() {
    for (keys, flush, entry) in [(0, 1, 1), (1, 0, 0), (10, 1, 1), (1000, 116, 116)] {
        let cfg = SimConfig {
            keys,
            overwrite_fraction: 2.0,
            flush_bytes: flush,
            entry_bytes: entry,
            seed: 0,
        };
        let r = simulate(
            &Leveled {
                l0_trigger: 2,
                base_level_bytes: 100,
                target_run_size: 300,
                ..Leveled::default()
            },
            &cfg,
        );
        assert!(!r.did_not_settle);
        let r = simulate(&Tiered::default(), &cfg);
        assert!(!r.did_not_settle);
    }
}

/// Known bug (found by the G4 model stage, `docs/reliability.md`): with a finite
/// `target_run_size`, a tiered merge's split outputs are runs of similar size, so they are a
/// candidate window again, and merging them cuts them into the same runs: compaction never
/// ends (`Db::wait_for_compactions` hangs, write amplification grows without bound).
#[test]
#[ignore = "known bug: tiered re-merges the split outputs of its own merges forever"]
fn tiered_with_a_finite_target_run_size_settles() {
    let tiered = Tiered {
        target_run_size: 256 << 10,
        ..Tiered::default()
    };
    let cfg = SimConfig {
        keys: 20_000,
        overwrite_fraction: 0.0,
        flush_bytes: 256 << 10,
        entry_bytes: 116,
        seed: 7,
    };
    let report = simulate(&tiered, &cfg);
    assert!(!report.did_not_settle, "{report}");
}
