//! Tests of the merge executor on an in-memory file system: merges checked against a
//! `BTreeMap` oracle and against [`GcFilter`] over the inputs, output splitting, tombstones at
//! and above the bottom, cancellation, and cleanup after corrupt input or a failed write.

use crate::exec::{ExecError, MergeJob, MergeOutcome, OutputFile, CANCEL_CHECK_INTERVAL};
use crate::gc::{GcFilter, GcRules};
use crate::types::Grandparent;
use chronokv_runs::{BlockCache, RunReader, RunWriter, RunWriterOptions};
use chronokv_snapshot::{Bytes, Entry, Kind, Version};
use chronokv_vfs::{FaultFs, MemFs, Vfs};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const DIR: &str = "/db";

fn memfs() -> (MemFs, Arc<dyn Vfs>) {
    let mem = MemFs::new();
    mem.create_dir_all(Path::new(DIR)).unwrap();
    let vfs: Arc<dyn Vfs> = Arc::new(mem.clone());
    (mem, vfs)
}

fn run_path(id: u64) -> PathBuf {
    PathBuf::from(format!("{DIR}/{id:06}.run"))
}

/// Names in the database directory, sorted.
fn files(vfs: &Arc<dyn Vfs>) -> Vec<String> {
    let mut names = vfs.list(Path::new(DIR)).unwrap();
    names.sort();
    names
}

fn small_blocks() -> RunWriterOptions {
    RunWriterOptions {
        block_target_bytes: 256,
        block_max_rows: 16,
        ..Default::default()
    }
}

fn entry(key: &str, v: u64, kind: Kind, value: &str) -> Entry {
    Entry {
        key: Bytes::copy_from_slice(key.as_bytes()),
        version: Version(v),
        time: 0,
        kind,
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn put(key: &str, v: u64, value: &str) -> Entry {
    entry(key, v, Kind::Put, value)
}

fn del(key: &str, v: u64) -> Entry {
    entry(key, v, Kind::Delete, "")
}

fn open(vfs: &Arc<dyn Vfs>, id: u64) -> Arc<RunReader> {
    RunReader::open(vfs.as_ref(), &run_path(id), id, BlockCache::new(1 << 20)).unwrap()
}

/// Writes `entries` (any order) as run `id` and opens it.
fn write_run(vfs: &Arc<dyn Vfs>, id: u64, entries: &[Entry]) -> Arc<RunReader> {
    let mut sorted = entries.to_vec();
    sorted.sort_by(|a, b| a.internal_cmp(b));
    let mut w = RunWriter::create(vfs.clone(), &run_path(id), small_blocks()).unwrap();
    for e in &sorted {
        w.add(&e.key, e.version, e.time, e.kind, &e.value).unwrap();
    }
    w.finish().unwrap();
    open(vfs, id)
}

/// A bottommost merge of `inputs` into one output, no snapshots.
fn job(vfs: &Arc<dyn Vfs>, inputs: Vec<Arc<RunReader>>) -> MergeJob<'static> {
    MergeJob {
        vfs: vfs.clone(),
        inputs,
        writer_options: small_blocks(),
        target_run_size: u64::MAX,
        bottommost: true,
        grandparents: &[],
        max_grandparent_overlap: u64::MAX,
        gc: GcRules::default(),
        cancel: None,
    }
}

/// Output ids `first, first + 1, ...`, named like the inputs.
fn numbered(first: u64) -> impl FnMut() -> OutputFile {
    let mut id = first;
    move || {
        id += 1;
        OutputFile {
            id: id - 1,
            path: run_path(id - 1),
        }
    }
}

/// Every output's entries, in output order; checks the outcome's byte counts on the way.
fn read_back(vfs: &Arc<dyn Vfs>, outcome: &MergeOutcome) -> Vec<Vec<Entry>> {
    let mut written = 0;
    let outputs = outcome
        .outputs
        .iter()
        .map(|o| {
            assert_eq!(o.path, run_path(o.id));
            assert_eq!(vfs.file_size(&o.path).unwrap(), o.meta.file_size);
            written += o.meta.file_size;
            let run = open(vfs, o.id);
            assert_eq!(run.meta(), &o.meta);
            run.range(Bound::Unbounded, Bound::Unbounded)
                .map(Result::unwrap)
                .collect()
        })
        .collect();
    assert_eq!(outcome.bytes_written, written);
    outputs
}

/// The newest value of each key whose newest version is a put.
fn latest(entries: &[Entry]) -> BTreeMap<Bytes, Bytes> {
    let mut newest: BTreeMap<Bytes, &Entry> = BTreeMap::new();
    for e in entries {
        let slot = newest.entry(e.key.clone()).or_insert(e);
        if e.version > slot.version {
            *slot = e;
        }
    }
    newest
        .into_iter()
        .filter(|(_, e)| e.kind == Kind::Put)
        .map(|(k, e)| (k, e.value.clone()))
        .collect()
}

/// Checks what every outcome of a merge without grandparents must satisfy: outputs have
/// ascending, disjoint key ranges, no key spans two of them, and every output file but the
/// last reached the target size.
fn check_outputs(outcome: &MergeOutcome, outputs: &[Vec<Entry>], target_run_size: u64) {
    for (i, out) in outputs.iter().enumerate() {
        assert!(!out.is_empty());
        assert!(out.windows(2).all(|w| w[0].internal_cmp(&w[1]).is_lt()));
        if let Some(next) = outputs.get(i + 1) {
            assert!(
                out.last().unwrap().key < next[0].key,
                "output {i} overlaps the next"
            );
            let size = outcome.outputs[i].meta.file_size;
            assert!(size >= target_run_size, "output {i} closed early");
        }
    }
}

#[test]
fn merges_runs_into_the_latest_value_per_key() {
    let (_, vfs) = memfs();
    let runs = [
        vec![put("a", 1, "a1"), put("b", 2, "b2"), put("c", 3, "c3")],
        vec![put("a", 4, "a4"), del("b", 5), put("d", 6, "d6")],
        vec![put("b", 7, "b7"), del("c", 8), put("e", 9, "")],
    ];
    // Inputs in any order: oldest first here.
    let inputs = (0..3)
        .map(|i| write_run(&vfs, i + 1, &runs[i as usize]))
        .collect();
    let all: Vec<Entry> = runs.concat();
    let outcome = job(&vfs, inputs).run(&mut numbered(10)).unwrap();
    let outputs = read_back(&vfs, &outcome);
    assert_eq!(outputs.len(), 1);
    let got: BTreeMap<Bytes, Bytes> = outputs[0]
        .iter()
        .map(|e| {
            assert_eq!(e.kind, Kind::Put);
            (e.key.clone(), e.value.clone())
        })
        .collect();
    assert_eq!(got, latest(&all));
    assert_eq!(outputs[0].len(), 4); // a@4, b@7, d@6, e@9
    let input_bytes: u64 = (1..=3).map(|i| vfs.file_size(&run_path(i)).unwrap()).sum();
    assert_eq!(outcome.bytes_read, input_bytes);
    assert_eq!(outcome.gc.entries_in, 9);
    assert_eq!(outcome.gc.entries_out, 4);
    assert_eq!(outcome.gc.versions_dropped, 4);
    assert_eq!(outcome.gc.tombstones_dropped, 1); // c@8; b@5 is shadowed by b@7
}

#[test]
fn a_duplicate_entry_in_two_inputs_is_written_once() {
    let (_, vfs) = memfs();
    let a = write_run(&vfs, 1, &[put("k", 5, "v"), put("x", 1, "x")]);
    let b = write_run(&vfs, 2, &[put("k", 5, "v")]);
    let mut j = job(&vfs, vec![a, b]);
    j.bottommost = false;
    j.gc.retain_from = Some(Version::ZERO);
    let outcome = j.run(&mut numbered(10)).unwrap();
    let outputs = read_back(&vfs, &outcome);
    assert_eq!(outputs, vec![vec![put("k", 5, "v"), put("x", 1, "x")]]);
}

#[test]
fn splits_outputs_at_key_changes_only() {
    let (_, vfs) = memfs();
    let mut entries = Vec::new();
    for k in 0..200u64 {
        for v in 0..3 {
            entries.push(put(&format!("key{k:04}"), k * 3 + v + 1, &"x".repeat(30)));
        }
    }
    // One key whose versions alone are far above the target.
    for v in 0..100 {
        entries.push(put("key0100~", 10_000 + v, &"y".repeat(100)));
    }
    let input = write_run(&vfs, 1, &entries);
    let mut j = job(&vfs, vec![input]);
    j.target_run_size = 1_000;
    j.gc.retain_from = Some(Version::ZERO); // keep every version
    let mut ids = Vec::new();
    let mut next = numbered(10);
    let outcome = j
        .run(&mut || {
            let f = next();
            ids.push(f.id);
            f
        })
        .unwrap();
    let outputs = read_back(&vfs, &outcome);
    assert!(outputs.len() > 10, "{} outputs", outputs.len());
    check_outputs(&outcome, &outputs, j.target_run_size);
    assert_eq!(
        ids,
        outcome.outputs.iter().map(|o| o.id).collect::<Vec<_>>()
    );
    let big: Vec<usize> = (0..outputs.len())
        .filter(|&i| outputs[i].iter().any(|e| &e.key[..] == b"key0100~"))
        .collect();
    assert_eq!(big.len(), 1, "the versions of one key span outputs {big:?}");
    assert_eq!(outputs.concat().len(), entries.len());

    // The same merge into one output holds the same entries.
    j.target_run_size = u64::MAX;
    let single = j.run(&mut numbered(1_000)).unwrap();
    assert_eq!(read_back(&vfs, &single), vec![outputs.concat()]);
}

#[test]
fn an_output_closes_once_its_file_reaches_the_target() {
    let (_, vfs) = memfs();
    // Small entries: the run spends more on each entry's version, time, kind, offsets and
    // block framing than on its 7-byte key and 1-byte value.
    let entries: Vec<Entry> = (0..2_000)
        .map(|k| put(&format!("key{k:04}"), k + 1, "v"))
        .collect();
    let input = write_run(&vfs, 1, &entries);
    let mut j = job(&vfs, vec![input]);
    j.target_run_size = 8_000;
    let outcome = j.run(&mut numbered(10)).unwrap();
    let outputs = read_back(&vfs, &outcome);
    assert!(outputs.len() > 2, "{} outputs", outputs.len());
    for (out, entries) in outcome.outputs.iter().zip(&outputs).rev().skip(1) {
        // Reached the target in real bytes...
        assert!(out.meta.file_size >= j.target_run_size);
        // ...well before key + value + 17 bytes per entry (the former estimate) would have.
        let estimate: u64 = entries
            .iter()
            .map(|e| (e.key.len() + e.value.len()) as u64 + 17)
            .sum();
        assert!(
            estimate < j.target_run_size * 3 / 4,
            "estimated {estimate} bytes, file {} bytes",
            out.meta.file_size
        );
    }
}

/// Keys `key0000 ..` with one version each, written as run 1, and a merge of it with
/// `grandparents` (`(first, last, size)` as key indexes) and the given bounds.
fn with_grandparents(
    vfs: &Arc<dyn Vfs>,
    keys: impl Iterator<Item = u64>,
    grandparents: &[(u64, u64, u64)],
    target: u64,
    max_overlap: u64,
) -> MergeOutcome {
    let name = |k: u64| format!("key{k:04}").into_bytes();
    let entries: Vec<Entry> = keys
        .map(|k| put(&format!("key{k:04}"), k + 1, "some value"))
        .collect();
    let input = write_run(vfs, 1, &entries);
    let grandparents: Vec<Grandparent> = grandparents
        .iter()
        .map(|&(first, last, size)| Grandparent {
            min_key: name(first),
            max_key: name(last),
            size,
        })
        .collect();
    let mut j = job(vfs, vec![input]);
    j.target_run_size = target;
    j.max_grandparent_overlap = max_overlap;
    j.grandparents = &grandparents;
    j.run(&mut numbered(10)).unwrap()
}

/// The outputs' key ranges as key indexes.
fn key_ranges(outcome: &MergeOutcome) -> Vec<(u64, u64)> {
    let index = |k: &[u8]| -> u64 { std::str::from_utf8(&k[3..]).unwrap().parse().unwrap() };
    outcome
        .outputs
        .iter()
        .map(|o| (index(&o.meta.min_key), index(&o.meta.max_key)))
        .collect()
}

#[test]
fn outputs_are_cut_where_a_grandparent_ends_past_half_the_target() {
    let (_, vfs) = memfs();
    let total = with_grandparents(&vfs, 0..1_000, &[], u64::MAX, u64::MAX).bytes_written;
    // 300 keys hold about 30% of the bytes, 75% of this target: past the 50% (55%, 60%...)
    // from which an output ends with a grandparent, short of the target itself.
    let target = total * 4 / 10;
    let gp = [(0, 299, 1), (300, 599, 1), (600, 899, 1), (900, 999, 1)];
    let outcome = with_grandparents(&vfs, 0..1_000, &gp, target, u64::MAX);
    assert_eq!(
        key_ranges(&outcome),
        vec![(0, 299), (300, 599), (600, 899), (900, 999)]
    );
    // Without grandparents the same merge cuts by size alone, across their ends.
    let plain = with_grandparents(&vfs, 0..1_000, &[], target, u64::MAX);
    assert_eq!(key_ranges(&plain).len(), 3);
    assert_ne!(key_ranges(&plain)[0], (0, 299));
}

#[test]
fn small_outputs_are_not_cut_at_every_grandparent_end() {
    let (_, vfs) = memfs();
    let total = with_grandparents(&vfs, 0..1_000, &[], u64::MAX, u64::MAX).bytes_written;
    // Grandparents of 100 keys each: 10% of the bytes, a quarter of the target.
    let target = total * 4 / 10;
    let gp: Vec<(u64, u64, u64)> = (0..10).map(|i| (i * 100, i * 100 + 99, 1)).collect();
    let outcome = with_grandparents(&vfs, 0..1_000, &gp, target, u64::MAX);
    let ranges = key_ranges(&outcome);
    // Each output ends where a grandparent ends, once it holds at least half the target
    // (here three grandparents' worth, 75%), so outputs are 300 keys and the rest.
    assert_eq!(ranges, vec![(0, 299), (300, 599), (600, 899), (900, 999)]);
}

#[test]
fn outputs_are_cut_before_they_overlap_too_many_grandparent_bytes() {
    let (_, vfs) = memfs();
    // Grandparents of 50 keys and 1 MB each; at most 3.5 MB of them (plus the output's own
    // few kilobytes) under one output: three grandparents.
    let gp: Vec<(u64, u64, u64)> = (0..20).map(|i| (i * 50, i * 50 + 49, 1_000_000)).collect();
    let outcome = with_grandparents(&vfs, 0..1_000, &gp, u64::MAX, 3_500_000);
    let ranges = key_ranges(&outcome);
    let expected: Vec<(u64, u64)> = (0..7)
        .map(|i| (i * 150, (i * 150 + 149).min(999)))
        .collect();
    assert_eq!(ranges, expected);
}

#[test]
fn an_output_ends_before_a_gap_that_holds_a_whole_large_grandparent() {
    let (_, vfs) = memfs();
    // Keys 0..100 and 200..300; a grandparent of 1/4 of the target lies wholly between them.
    let keys = (0..100).chain(200..300);
    let gp = [(0, 99, 1), (150, 160, 250_000), (200, 299, 1)];
    let outcome = with_grandparents(&vfs, keys.clone(), &gp, 1_000_000, u64::MAX);
    assert_eq!(key_ranges(&outcome), vec![(0, 99), (200, 299)]);
    // A small grandparent in the gap (below 1/8 of the target) is not worth a cut.
    let small = [(0, 99, 1), (150, 160, 100_000), (200, 299, 1)];
    let outcome = with_grandparents(&vfs, keys, &small, 1_000_000, u64::MAX);
    assert_eq!(key_ranges(&outcome), vec![(0, 299)]);
}

#[test]
fn everything_deleted_at_the_bottom_leaves_no_output() {
    let (_, vfs) = memfs();
    let a = write_run(&vfs, 1, &[put("a", 1, "1"), put("b", 2, "2")]);
    let b = write_run(&vfs, 2, &[del("a", 3), del("b", 4), del("c", 5)]);
    let before = files(&vfs);
    let mut asked = 0;
    let outcome = job(&vfs, vec![a, b])
        .run(&mut || {
            asked += 1;
            OutputFile {
                id: 99,
                path: run_path(99),
            }
        })
        .unwrap();
    assert_eq!(asked, 0);
    assert!(outcome.outputs.is_empty());
    assert_eq!(outcome.bytes_written, 0);
    assert_eq!(outcome.gc.entries_out, 0);
    assert_eq!(outcome.gc.tombstones_dropped, 3);
    assert_eq!(files(&vfs), before);
}

#[test]
fn above_the_bottom_tombstones_stay() {
    let (_, vfs) = memfs();
    let a = write_run(&vfs, 1, &[put("a", 1, "1"), put("b", 2, "2")]);
    let b = write_run(&vfs, 2, &[del("a", 3), del("b", 4), del("c", 5)]);
    let mut j = job(&vfs, vec![a, b]);
    j.bottommost = false;
    let outcome = j.run(&mut numbered(10)).unwrap();
    assert_eq!(
        read_back(&vfs, &outcome),
        vec![vec![del("a", 3), del("b", 4), del("c", 5)]]
    );
    assert_eq!(outcome.gc.tombstones_dropped, 0);
    assert_eq!(outcome.gc.versions_dropped, 2);
}

#[test]
fn cancelled_before_the_first_entry() {
    let (_, vfs) = memfs();
    let a = write_run(&vfs, 1, &[put("a", 1, "1")]);
    let before = files(&vfs);
    let cancel = AtomicBool::new(true);
    let mut j = job(&vfs, vec![a]);
    j.cancel = Some(&cancel);
    let err = j.run(&mut numbered(10)).unwrap_err();
    assert!(matches!(err, ExecError::Cancelled), "{err}");
    assert_eq!(files(&vfs), before);
}

/// A single input of many small entries, and a merge of it into small outputs.
fn many_entries(vfs: &Arc<dyn Vfs>, n: u64) -> MergeJob<'static> {
    let entries: Vec<Entry> = (0..n)
        .map(|i| put(&format!("key{i:06}"), i + 1, "some value"))
        .collect();
    let input = write_run(vfs, 1, &entries);
    let mut j = job(vfs, vec![input]);
    j.target_run_size = 1_000;
    j
}

#[test]
fn cancelled_mid_merge_removes_the_finished_outputs() {
    let (_, vfs) = memfs();
    let mut j = many_entries(&vfs, 3 * CANCEL_CHECK_INTERVAL);
    let before = files(&vfs);
    let cancel = AtomicBool::new(false);
    j.cancel = Some(&cancel);
    let mut next = numbered(10);
    let mut asked = 0;
    let err = j
        .run(&mut || {
            asked += 1;
            if asked == 2 {
                cancel.store(true, Ordering::Relaxed);
            }
            next()
        })
        .unwrap_err();
    assert!(matches!(err, ExecError::Cancelled), "{err}");
    assert!(asked > 10, "only {asked} outputs were started");
    assert_eq!(files(&vfs), before);
}

#[test]
fn a_corrupt_input_fails_and_removes_the_finished_outputs() {
    let (mem, vfs) = memfs();
    let j = many_entries(&vfs, 2_000);
    let path = run_path(1);
    let size = vfs.file_size(&path).unwrap();
    // The middle of the file is block data (the index and footer are a small tail).
    mem.corrupt_byte(&path, (size / 2) as usize, 0x40).unwrap();
    let j = MergeJob {
        inputs: vec![open(&vfs, 1)],
        ..j
    };
    let before = files(&vfs);
    let mut asked = 0;
    let mut next = numbered(10);
    let err = j
        .run(&mut || {
            asked += 1;
            next()
        })
        .unwrap_err();
    assert!(
        matches!(&err, ExecError::Run(e) if e.is_corruption()),
        "{err}"
    );
    assert!(asked > 2, "only {asked} outputs were started");
    assert_eq!(files(&vfs), before);
}

#[test]
fn a_failed_output_write_removes_the_finished_outputs() {
    let (_, mem_vfs) = memfs();
    let fault = FaultFs::new(mem_vfs);
    let vfs: Arc<dyn Vfs> = Arc::new(fault.clone());
    let j = many_entries(&vfs, 500);
    let before = files(&vfs);
    let mut asked = 0;
    let mut next = numbered(10);
    let err = j
        .run(&mut || {
            asked += 1;
            if asked == 3 {
                fault.fail_syncs(true);
            }
            next()
        })
        .unwrap_err();
    assert!(
        matches!(&err, ExecError::Run(e) if !e.is_corruption()),
        "{err}"
    );
    assert_eq!(asked, 3);
    assert_eq!(files(&vfs), before);
}

#[test]
fn merge_jobs_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MergeJob<'static>>();
    send_sync::<ExecError>();
}

/// Random inputs: 2-4 runs of entries with unique `(key, version)`, random kinds.
fn arb_inputs() -> impl Strategy<Value = Vec<Vec<Entry>>> {
    let rows = prop::collection::btree_map(
        (0u8..12, 1u64..200),
        (any::<bool>(), 0usize..4, 0usize..40),
        1..120,
    );
    (rows, 2usize..=4).prop_map(|(rows, n)| {
        let mut runs = vec![Vec::new(); n];
        for ((k, v), (is_put, run, len)) in rows {
            let key = format!("key{k:02}");
            let e = if is_put {
                put(&key, v, &"v".repeat(len))
            } else {
                del(&key, v)
            };
            runs[run % n].push(e);
        }
        runs.retain(|r| !r.is_empty());
        runs
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn merging_equals_filtering_the_union(
        runs in arb_inputs(),
        snapshots in prop::collection::vec(0u64..210, 0..3),
        retain in prop::option::of(0u64..210),
        bottommost in any::<bool>(),
        target in prop::sample::select(vec![0u64, 300, 2_000, u64::MAX]),
    ) {
        let (_, vfs) = memfs();
        let inputs: Vec<Arc<RunReader>> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| write_run(&vfs, i as u64 + 1, r))
            .collect();
        let gc = GcRules {
            snapshots: snapshots.into_iter().map(Version).collect(),
            retain_from: retain.map(Version),
            keep_newest: 0,
        };
        let j = MergeJob {
            target_run_size: target,
            bottommost,
            gc: gc.clone(),
            ..job(&vfs, inputs)
        };
        let outcome = j.run(&mut numbered(100)).unwrap();
        let outputs = read_back(&vfs, &outcome);
        check_outputs(&outcome, &outputs, target);

        let mut union: Vec<Entry> = runs.concat();
        union.sort_by(|a, b| a.internal_cmp(b));
        let mut filter = GcFilter::new(union.iter().cloned().map(Ok::<_, ()>), &gc, bottommost);
        let expected: Vec<Entry> = filter.by_ref().map(Result::unwrap).collect();
        let written = outputs.concat();
        prop_assert_eq!(&written, &expected);
        prop_assert_eq!(outcome.gc, filter.stats());
        // The newest value of every key survives any merge.
        prop_assert_eq!(latest(&written), latest(&union));
        let read: u64 = (1..=runs.len() as u64).map(|i| vfs.file_size(&run_path(i)).unwrap()).sum();
        prop_assert_eq!(outcome.bytes_read, read);
    }
}
