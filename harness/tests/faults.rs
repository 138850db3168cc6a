//! A bounded fault run: EIO and ENOSPC, once and forever, at every 7th mutating call of a
//! short workload, with no violation. CI runs a larger one through the `chronokv-harness`
//! binary.

use chronokv_harness::faults::run_seed;

#[test]
fn faults_at_every_seventh_call_of_a_short_workload_stop_the_engine_and_recover() {
    let r = run_seed(5, 120, 7);
    assert!(r.calls > 300, "{r:?}");
    assert_eq!(r.runs, 4 * r.calls.div_ceil(7));
    // Background work makes the number of calls vary a little between runs, so faults
    // planned near the end may not fire; most do.
    assert!(r.injected * 4 > r.runs * 3, "{r:?}");
    assert_eq!(r.reopens, 2 * (r.runs + 1));
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(
        (
            r.acks_after_failure,
            r.panics,
            r.not_fail_stop,
            r.failed_runs
        ),
        (0, 0, 0, 0)
    );
}
