//! Micro benchmarks of chronokv's parts: memtable insert, WAL group append, run build,
//! run point lookups (hit, and miss, which is answered by the bloom filter), merging
//! iterator steps. `cargo bench -p chronokv-bench --bench micro` (`-- --test` runs each
//! once, as CI's compile check could).

use bytes::Bytes;
use chronokv_bench::keys::{key, missing_key, Rng, Values};
use chronokv_engine::internals::Memtable;
use chronokv_runs::{BlockCache, RunReader, RunWriter, RunWriterOptions};
use chronokv_snapshot::merge::Merge;
use chronokv_snapshot::{Entry, Kind, Source, Version};
use chronokv_vfs::{RealFs, Vfs};
use chronokv_wal::{BatchEntries, RecordRef, SegmentWriter};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

const BATCH: u64 = 1000;

fn memtable_insert(c: &mut Criterion) {
    let values = Values::new(100, 1);
    let mut g = c.benchmark_group("memtable");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("insert_1000_random", |b| {
        let mut rng = Rng::new(2);
        b.iter_batched(
            || {
                let entries: Vec<(Bytes, Bytes)> = (0..BATCH)
                    .map(|_| {
                        let k = Bytes::copy_from_slice(&key(rng.below(1 << 40)));
                        (k, Bytes::copy_from_slice(values.next(&mut rng)))
                    })
                    .collect();
                (Memtable::new(1), entries)
            },
            |(mem, entries)| {
                for (v, (k, val)) in entries.into_iter().enumerate() {
                    mem.insert(&k, Version(v as u64 + 1), 0, Kind::Put, &val);
                }
                mem
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn wal_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = Values::new(100, 3);
    let mut rng = Rng::new(4);
    // A group of 16 one-entry batches, as the commit leader writes them.
    let batches: Vec<BatchEntries> = (0..16)
        .map(|i| {
            let mut b = BatchEntries::new();
            b.put(&key(i), values.next(&mut rng));
            b
        })
        .collect();
    let mut g = c.benchmark_group("wal");
    g.throughput(Throughput::Elements(batches.len() as u64));
    for (name, sync) in [("append_group16", false), ("append_group16_fsync", true)] {
        if sync {
            g.sample_size(10);
        }
        let mut writer =
            SegmentWriter::create(&RealFs, dir.path(), u64::from(sync) + 1).expect("segment");
        let mut next = 1u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                let records: Vec<RecordRef<'_>> = batches
                    .iter()
                    .enumerate()
                    .map(|(i, e)| RecordRef {
                        first_version: Version(next + i as u64),
                        commit_micros: 0,
                        entries: e,
                    })
                    .collect();
                writer.append(&records).expect("append");
                if sync {
                    writer.sync().expect("sync");
                }
                next += records.len() as u64;
            });
        });
    }
    g.finish();
}

/// Writes a run of keys `0, step, 2 step, ...` (`n` of them) at `path`.
fn build_run(path: &Path, n: u64, step: u64, values: &Values) {
    let mut rng = Rng::new(5);
    let mut w =
        RunWriter::create(Arc::new(RealFs), path, RunWriterOptions::default()).expect("run writer");
    for i in 0..n {
        w.add(
            &key(i * step),
            Version(i + 1),
            0,
            Kind::Put,
            values.next(&mut rng),
        )
        .expect("add");
    }
    w.finish().expect("finish");
}

fn run_build(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = Values::new(100, 6);
    let mut g = c.benchmark_group("run");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(10);
    let mut id = 0u64;
    g.bench_function("build_10000", |b| {
        b.iter(|| {
            id += 1;
            let path = dir.path().join(format!("{id:06}.run"));
            build_run(&path, 10_000, 1, &values);
            std::fs::remove_file(&path).expect("remove run");
        });
    });
    g.finish();
}

fn run_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = Values::new(100, 7);
    let n = 100_000;
    let path = dir.path().join("000001.run");
    build_run(&path, n, 1, &values);
    let vfs: &dyn Vfs = &RealFs;
    let reader = RunReader::open(vfs, &path, 1, BlockCache::new(64 << 20)).expect("open run");
    let mut g = c.benchmark_group("run_get");
    let mut rng = Rng::new(8);
    g.bench_function("hit", |b| {
        b.iter(|| {
            let k = key(rng.below(n));
            black_box(reader.get(&k, Version::MAX).expect("get")).expect("hit");
        });
    });
    g.bench_function("miss_bloom_probe", |b| {
        b.iter(|| {
            let k = missing_key(rng.below(n));
            black_box(reader.get(&k, Version::MAX).expect("get"));
        });
    });
    g.finish();
}

fn merge_step(c: &mut Criterion) {
    let sources = 4u64;
    let per_source = 10_000u64;
    let value = Bytes::from(vec![7u8; 100]);
    // Source s holds keys s, s + 4, s + 8, ...: the merge interleaves all of them.
    let data: Vec<Vec<Entry>> = (0..sources)
        .map(|s| {
            (0..per_source)
                .map(|i| Entry {
                    key: Bytes::copy_from_slice(&key(i * sources + s)),
                    version: Version(i + 1),
                    time: 0,
                    kind: Kind::Put,
                    value: value.clone(),
                })
                .collect()
        })
        .collect();
    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(sources * per_source));
    g.bench_function("forward_4x10000", |b| {
        b.iter_batched(
            || {
                data.iter()
                    .map(|v| Box::new(v.clone().into_iter().map(Ok)) as Source<()>)
                    .collect::<Vec<_>>()
            },
            |srcs| {
                let mut n = 0u64;
                for e in Merge::forward(srcs) {
                    black_box(e.expect("entry"));
                    n += 1;
                }
                assert_eq!(n, sources * per_source);
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(
    micro,
    memtable_insert,
    wal_append,
    run_build,
    run_get,
    merge_step
);
criterion_main!(micro);
