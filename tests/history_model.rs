//! Property test: key history, the change feed and reads at old versions against an oracle
//! (the commit log), through flushes, compactions and reopens, with all history retained.

mod common;

use chronokv::vfs::MemFs;
use chronokv::{Db, Options, Version, WriteBatch};
use common::{aggressive_leveled, aggressive_tiered, compacting_options};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Batch(Vec<(u8, Option<u8>)>),
    Flush,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => (0u8..12).prop_map(Op::Delete),
        2 => prop::collection::vec((0u8..12, prop::option::of(any::<u8>())), 1..5).prop_map(Op::Batch),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("k{k:02}").into_bytes()
}

fn value(v: u8) -> Vec<u8> {
    vec![v; 1 + (v as usize % 9)]
}

/// The commit log: `(version, key, value or delete)`, in version order.
type Log = Vec<(u64, Vec<u8>, Option<Vec<u8>>)>;

fn state_at(log: &Log, v: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut s = BTreeMap::new();
    for (ver, k, val) in log.iter().take_while(|(ver, _, _)| *ver <= v) {
        let _ = ver;
        match val {
            Some(x) => s.insert(k.clone(), x.clone()),
            None => s.remove(k),
        };
    }
    s
}

fn check(db: &Db, log: &Log, probe: u64) -> Result<(), TestCaseError> {
    // History of every key: every version, newest first.
    for k in 0u8..12 {
        let expected: Vec<_> = log
            .iter()
            .rev()
            .filter(|(_, key, _)| *key == self::key(k))
            .map(|(v, _, val)| (*v, val.clone()))
            .collect();
        let got: Vec<_> = db
            .history(key(k))
            .unwrap()
            .into_iter()
            .map(|h| (h.version.0, h.value.map(|b| b.to_vec())))
            .collect();
        prop_assert_eq!(got, expected, "history of {}", k);
    }
    // The change feed over a window, and in full.
    let latest = log.last().map_or(0, |e| e.0);
    let lo = probe % (latest + 1);
    let hi = lo + (probe / 7) % 40;
    let got: Vec<_> = db
        .changes(Version(lo)..Version(hi))
        .unwrap()
        .map(|c| c.unwrap())
        .map(|c| (c.version.0, c.key.to_vec(), c.value.map(|b| b.to_vec())))
        .collect();
    let expected: Vec<_> = log
        .iter()
        .filter(|(v, _, _)| *v >= lo && *v < hi)
        .cloned()
        .collect();
    prop_assert_eq!(got, expected, "changes {}..{}", lo, hi);
    prop_assert_eq!(db.changes(..).unwrap().count(), log.len());
    // A read at an old version.
    let at = probe % (latest + 1);
    let snap = db.snapshot_at(Version(at)).unwrap();
    let got: BTreeMap<Vec<u8>, Vec<u8>> = snap
        .scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    prop_assert_eq!(got, state_at(log, at), "state at {}", at);
    Ok(())
}

fn run(ops: Vec<Op>, probes: Vec<u64>, leveled: bool) -> Result<(), TestCaseError> {
    let fs = MemFs::new();
    let style = if leveled {
        aggressive_leveled()
    } else {
        aggressive_tiered()
    };
    let opts = Options {
        history_retention: Some(Duration::from_secs(3600)),
        ..compacting_options(&fs, 512, style)
    };
    let open = || Db::open(Path::new("/db"), opts.clone()).unwrap();
    let mut db = open();
    let mut log: Log = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Put(k, v) => {
                let ver = db.put(key(k), value(v)).unwrap();
                log.push((ver.0, key(k), Some(value(v))));
            }
            Op::Delete(k) => {
                let ver = db.delete(key(k)).unwrap();
                log.push((ver.0, key(k), None));
            }
            Op::Batch(entries) => {
                let mut b = WriteBatch::new();
                for (k, v) in &entries {
                    match v {
                        Some(v) => b.put(key(*k), value(*v)),
                        None => b.delete(key(*k)),
                    };
                }
                let last = db.write(b).unwrap().0;
                let first = last + 1 - entries.len() as u64;
                for (j, (k, v)) in entries.into_iter().enumerate() {
                    log.push((first + j as u64, key(k), v.map(value)));
                }
            }
            Op::Flush => db.flush().unwrap(),
            Op::Compact => db.compact_range::<&[u8], _>(..).unwrap(),
            Op::Reopen => {
                drop(db);
                db = open();
            }
        }
        if i % 50 == 49 {
            check(&db, &log, probes[i % probes.len()])?;
        }
    }
    check(&db, &log, probes[0])?;
    drop(db);
    let db = open();
    check(&db, &log, probes[1])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn history_changes_and_old_reads_match_the_commit_log(
        ops in prop::collection::vec(op(), 1..250),
        probes in prop::collection::vec(any::<u64>(), 2..8),
        leveled in any::<bool>(),
    ) {
        run(ops, probes, leveled)?;
    }
}
