//! Every workload runs on chronokv with a tiny count and reports sensible counts: this
//! checks the workloads and the chronokv adapter, never timing.

use chronokv_bench::workload::{self, Settings, Workload, ALL};

#[test]
fn every_workload_runs_on_chronokv_and_finds_what_it_should() {
    let settings = Settings {
        keys: 2_000,
        ops: 2_000,
        value_size: 100,
        sync_ops: 20,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for w in ALL {
        let (o, amp) = workload::run("chronokv", &dir.path().join(w.name()), w, &settings)
            .unwrap_or_else(|e| panic!("{}: {e}", w.name()));
        assert!(o.ops > 0 && o.seconds > 0.0, "{}: {o:?}", w.name());
        match w {
            Workload::ReadRandom | Workload::ReadWhileWriting | Workload::Ycsb('c') => {
                assert_eq!(o.found, o.ops, "{} must find every key", w.name())
            }
            Workload::ReadMissing => assert_eq!(o.found, 0, "readmissing found a key"),
            Workload::Scan => assert_eq!(o.found, 3 * settings.keys),
            Workload::SeekRandom => {
                assert_eq!(o.ops, 500);
                // Ten pairs per seek, except near the end of the key space.
                assert!(o.found > 9 * o.ops && o.found <= 10 * o.ops, "{o:?}");
            }
            Workload::FillSync1 => assert_eq!(o.ops, 20),
            Workload::FillSync4 => assert_eq!(o.ops, 80),
            Workload::Ycsb('e') => assert_eq!(o.ops, 200),
            Workload::Ycsb(_) => assert!(o.found > 0, "{o:?}"),
            _ => assert_eq!(o.found, 0),
        }
        if w == Workload::FillRandom {
            let a = amp.expect("fillrandom reports amplification");
            assert_eq!(a.user_bytes, 2_000 * 116);
            assert!(a.disk_bytes > 0);
            assert!(a.write_amp().expect("chronokv counts table bytes") > 0.0);
        } else {
            assert!(amp.is_none());
        }
    }
}

#[test]
fn peers_without_the_feature_are_a_clear_error() {
    if cfg!(feature = "peers") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let err = workload::run(
        "rocksdb",
        dir.path(),
        Workload::FillSeq,
        &Settings::default(),
    )
    .expect_err("rocksdb needs the peers feature");
    assert!(err.to_string().contains("peers"), "{err}");
}
