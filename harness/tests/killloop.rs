//! A short kill -9 loop: a few cycles of the real thing (stress processes spawned from the
//! `chronokv-harness` binary and killed with SIGKILL), every one of which must pass. CI runs
//! 1,000 cycles through the binary.

use chronokv_harness::killloop::driver::{run, Config};

#[test]
fn a_few_kill_cycles_recover_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        dir: dir.path().join("loop"),
        seed: 5,
        cycles: 6,
        max_time: None,
        program: env!("CARGO_BIN_EXE_chronokv-harness").into(),
        program_args: Vec::new(),
        progress_every: 0,
        keep_images: true,
    };
    let mut lines = Vec::new();
    let r = run(&cfg, &mut |l| lines.push(l.to_string())).unwrap();
    assert_eq!(r.cycles, 6, "{lines:#?}");
    assert_eq!((r.passed, r.failed), (6, 0), "{lines:#?}");
    assert!(r.failures.is_empty());
    assert_eq!(r.stress_failures, 0);
    // The follower checked views during the cycles, from opens and from refreshes.
    assert!(r.follower_opens > 0 && r.follower_refreshes > 0, "{r:?}");
    // A second run on the same directory is refused: the expected state starts empty.
    assert!(run(&cfg, &mut |_| {}).is_err());
}
