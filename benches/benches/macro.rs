//! Macro benchmarks: a few db_bench-style workloads on chronokv alone, with small counts
//! so that `cargo bench -p chronokv-bench --bench macro -- --test` stays quick. Each
//! iteration is one workload run on a fresh database; only the workload's own timed part
//! counts (not open, preload or close). For the side-by-side comparison with RocksDB and
//! fjall use the `chronokv-bench` binary.

use chronokv_bench::workload::{self, Settings, Workload};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

fn workloads(c: &mut Criterion) {
    let settings = Settings {
        keys: 20_000,
        ops: 20_000,
        value_size: 100,
        sync_ops: 50,
    };
    let mut g = c.benchmark_group("chronokv");
    g.sample_size(10);
    for w in [
        Workload::FillRandom,
        Workload::ReadRandom,
        Workload::SeekRandom,
        Workload::Ycsb('a'),
    ] {
        let ops = match w {
            Workload::FillRandom => settings.keys,
            Workload::SeekRandom => settings.ops.div_ceil(4),
            _ => settings.ops,
        };
        g.throughput(Throughput::Elements(ops));
        g.bench_function(w.name(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let (outcome, _) =
                        workload::run("chronokv", &dir.path().join("db"), w, &settings)
                            .expect("workload");
                    total += Duration::from_secs_f64(outcome.seconds);
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group!(macro_workloads, workloads);
criterion_main!(macro_workloads);
