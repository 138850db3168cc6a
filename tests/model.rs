//! Model-based test: random puts, deletes, batches, point reads, forward/backward/prefix
//! scans, flushes, manual compactions and reopens, checked step by step against a
//! `BTreeMap` oracle, under several configurations (memtable sizes, compaction styles).

mod common;

use chronokv::vfs::MemFs;
use chronokv::{Db, Options, WriteBatch};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Get(u8),
    Scan(Option<u8>, Option<u8>, bool),
    Prefix(u8),
    Flush,
    Compact(Option<u8>, Option<u8>),
    Reopen,
}

fn key(k: u8) -> Vec<u8> {
    // Two-byte keys sharing prefixes (k / 16), so prefix scans have something to find.
    vec![b'a' + k / 16, b'a' + k % 16]
}

fn op() -> impl Strategy<Value = Op> {
    let val = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        8 => (any::<u8>(), val.clone()).prop_map(|(k, v)| Op::Put(k % 64, v)),
        3 => any::<u8>().prop_map(|k| Op::Delete(k % 64)),
        2 => proptest::collection::vec((any::<u8>(), proptest::option::of(val)), 0..6)
            .prop_map(|es| Op::Batch(es.into_iter().map(|(k, v)| (k % 64, v)).collect())),
        4 => any::<u8>().prop_map(|k| Op::Get(k % 64)),
        2 => (proptest::option::of(any::<u8>()), proptest::option::of(any::<u8>()), any::<bool>())
            .prop_map(|(a, b, r)| Op::Scan(a.map(|x| x % 64), b.map(|x| x % 64), r)),
        1 => any::<u8>().prop_map(|p| Op::Prefix(p % 4)),
        1 => Just(Op::Flush),
        1 => (proptest::option::of(any::<u8>()), proptest::option::of(any::<u8>()))
            .prop_map(|(a, b)| Op::Compact(a.map(|x| x % 64), b.map(|x| x % 64))),
        1 => Just(Op::Reopen),
    ]
}

fn run(ops: Vec<Op>, options: impl Fn(&MemFs) -> Options) -> Result<(), TestCaseError> {
    let fs = MemFs::new();
    let open = |fs: &MemFs| Db::open(Path::new("/db"), options(fs)).expect("open");
    let mut db: Option<Db> = Some(open(&fs));
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in ops {
        let d = db.as_ref().expect("open");
        match op {
            Op::Put(k, v) => {
                d.put(key(k), &v).unwrap();
                model.insert(key(k), v);
            }
            Op::Delete(k) => {
                d.delete(key(k)).unwrap();
                model.remove(&key(k));
            }
            Op::Batch(es) => {
                let mut b = WriteBatch::new();
                for (k, v) in &es {
                    match v {
                        Some(v) => b.put(key(*k), v),
                        None => b.delete(key(*k)),
                    };
                }
                d.write(b).unwrap();
                for (k, v) in es {
                    match v {
                        Some(v) => model.insert(key(k), v),
                        None => model.remove(&key(k)),
                    };
                }
            }
            Op::Get(k) => {
                let got = d.get(key(k)).unwrap().map(|v| v.to_vec());
                prop_assert_eq!(got, model.get(&key(k)).cloned());
            }
            Op::Scan(a, b, reverse) => {
                let lo = a.map_or(Bound::Unbounded, |a| Bound::Included(key(a)));
                let hi = b.map_or(Bound::Unbounded, |b| Bound::Excluded(key(b)));
                let inverted =
                    matches!((&lo, &hi), (Bound::Included(x), Bound::Excluded(y)) if x > y);
                let expect: Vec<(Vec<u8>, Vec<u8>)> = if inverted {
                    Vec::new()
                } else {
                    model
                        .range((lo.clone(), hi.clone()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                };
                let it = d.scan((lo, hi));
                let mut got: Vec<(Vec<u8>, Vec<u8>)> = if reverse {
                    it.rev()
                        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                        .collect()
                } else {
                    it.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                        .collect()
                };
                if reverse {
                    got.reverse();
                }
                prop_assert_eq!(got, expect);
            }
            Op::Prefix(p) => {
                let pre = vec![b'a' + p];
                let expect: Vec<Vec<u8>> = model
                    .keys()
                    .filter(|k| k.starts_with(&pre))
                    .cloned()
                    .collect();
                let got: Vec<Vec<u8>> = d.prefix(&pre).map(|r| r.unwrap().0.to_vec()).collect();
                prop_assert_eq!(got, expect);
            }
            Op::Flush => d.flush().unwrap(),
            Op::Compact(a, b) => {
                let lo = a.map_or(Bound::Unbounded, |a| Bound::Included(key(a)));
                let hi = b.map_or(Bound::Unbounded, |b| Bound::Included(key(b)));
                d.compact_range((lo, hi)).unwrap();
            }
            Op::Reopen => {
                db.take().expect("open").close().unwrap();
                db = Some(open(&fs));
            }
        }
    }
    let d = db.expect("open");
    let expect: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
    prop_assert_eq!(common::all(&d), expect);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// A tiny memtable: most operations cross a flush.
    #[test]
    fn matches_btreemap_with_tiny_memtable(ops in proptest::collection::vec(op(), 1..160)) {
        run(ops, |fs| common::mem_options(fs, 600))?;
    }

    /// A large memtable: reads come mostly from memory, reopens replay the WAL.
    #[test]
    fn matches_btreemap_with_large_memtable(ops in proptest::collection::vec(op(), 1..160)) {
        run(ops, |fs| common::mem_options(fs, 1 << 20))?;
    }

    /// A tiny memtable and leveled compaction that triggers all the time.
    #[test]
    fn matches_btreemap_with_aggressive_leveled_compaction(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops, |fs| common::compacting_options(fs, 400, common::aggressive_leveled()))?;
    }

    /// A tiny memtable and tiered compaction merging pairs.
    #[test]
    fn matches_btreemap_with_aggressive_tiered_compaction(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops, |fs| common::compacting_options(fs, 400, common::aggressive_tiered()))?;
    }
}
