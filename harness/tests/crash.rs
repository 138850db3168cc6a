//! A bounded crash run: every crash point of two short workloads, in three modes, and the
//! image after close, with no violation (the snapshot check runs too). CI runs a larger one through the `chronokv-harness` binary.

use chronokv_harness::crash::run_seed;

#[test]
fn every_crash_point_of_short_workloads_recovers_correctly() {
    for seed in [7, 8] {
        let r = run_seed(seed, 120, 1);
        assert!(r.points > 100, "{r:?}");
        assert_eq!(r.points_checked, r.points);
        // Three modes per point, plus the power-loss image after close.
        assert_eq!(r.states, 3 * r.points + 1);
        assert!(r.violations.is_empty(), "{:#?}", r.violations);
    }
}
