//! A bounded model run: two short op logs on every configuration, checked against the
//! oracle and against each other. CI runs a larger one through the `chronokv-harness` binary.

use chronokv_harness::model::{configs, run_seed};

#[test]
fn short_op_logs_match_the_oracle_on_every_configuration() {
    let configs = configs();
    assert!(configs.len() >= 8);
    for seed in [3, 4] {
        let r = run_seed(seed, 250, &configs);
        assert_eq!(r.cases, configs.len() as u64);
        assert!(r.reopens + r.crash_reopens > 0, "{r:?}");
        assert!(r.divergences.is_empty(), "{:#?}", r.divergences);
        assert_eq!(r.failed_cases, 0);
    }
}
