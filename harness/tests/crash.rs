//! A bounded crash run: every crash point of two short workloads, in three modes, with no
//! violation. CI runs a larger one through the `chronokv-harness` binary.

use chronokv_harness::crash::run_seed;

#[test]
fn every_crash_point_of_short_workloads_recovers_correctly() {
    for seed in [7, 8] {
        let r = run_seed(seed, 120, 1);
        assert!(r.points > 100, "{r:?}");
        assert_eq!(r.points_checked, r.points);
        assert_eq!(r.states, 3 * r.points);
        assert!(r.violations.is_empty(), "{:#?}", r.violations);
    }
}
