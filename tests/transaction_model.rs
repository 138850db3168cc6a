//! Model-based test of transactions: random interleavings of up to four transactions
//! (serializable and snapshot isolation) with plain writes, flushes and compactions.
//!
//! Checked against a model, independently of how the engine tracks conflicts:
//! - every read equals the transaction's snapshot (the committed state when it began)
//!   overlaid with its own writes made before the read;
//! - a commit is refused exactly when a write committed after the snapshot touched what the
//!   isolation level protects (serializable: a key read, or a key inside the part of a
//!   range a scan went through; snapshot isolation: a key written);
//! - serializability: each committed serializable transaction, replayed at its commit point
//!   in commit order, reads exactly what it read;
//! - the store's contents always equal the committed writes applied in commit order.

mod common;

use chronokv::vfs::MemFs;
use chronokv::{Bytes, Db, Isolation, Transaction, TransactionOptions, Version};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

type State = BTreeMap<Vec<u8>, Vec<u8>>;
type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

const SLOTS: u8 = 4;

#[derive(Debug, Clone)]
enum Op {
    Begin(u8, bool),
    Get(u8, u8),
    /// slot, lo, hi, reverse, how many pairs to take (None: all)
    Scan(u8, u8, u8, bool, Option<u8>),
    Put(u8, u8, u8),
    Delete(u8, u8),
    Commit(u8),
    Rollback(u8),
    Plain(u8, Option<u8>),
    Flush,
    Compact,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', b'0' + k % 10]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let k = 0u8..10;
    prop_oneof![
        3 => (slot.clone(), any::<bool>()).prop_map(|(s, ser)| Op::Begin(s, ser)),
        5 => (slot.clone(), k.clone()).prop_map(|(s, k)| Op::Get(s, k)),
        3 => (slot.clone(), k.clone(), k.clone(), any::<bool>(), proptest::option::of(0u8..4))
            .prop_map(|(s, a, b, r, n)| Op::Scan(s, a, b, r, n)),
        5 => (slot.clone(), k.clone(), any::<u8>()).prop_map(|(s, k, v)| Op::Put(s, k, v)),
        2 => (slot.clone(), k.clone()).prop_map(|(s, k)| Op::Delete(s, k)),
        3 => slot.clone().prop_map(Op::Commit),
        1 => slot.prop_map(Op::Rollback),
        3 => (k, proptest::option::of(any::<u8>())).prop_map(|(k, v)| Op::Plain(k, v)),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
    ]
}

/// One read a transaction made and what it saw.
#[derive(Debug, Clone)]
enum Read {
    Get {
        key: Vec<u8>,
        own: Writes,
        tracked: bool,
        seen: Option<Vec<u8>>,
    },
    Scan {
        lo: Vec<u8>,
        hi: Vec<u8>,
        rev: bool,
        take: Option<usize>,
        own: Writes,
        seen: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

struct Model {
    start: Version,
    at_start: State,
    serializable: bool,
    writes: Writes,
    reads: Vec<Read>,
}

fn overlay(state: &State, own: &Writes) -> State {
    let mut s = state.clone();
    for (k, v) in own {
        match v {
            Some(v) => s.insert(k.clone(), v.clone()),
            None => s.remove(k),
        };
    }
    s
}

/// What `read` returns on `state` (with the read's own writes laid over it).
fn replay(read: &Read, state: &State) -> Read {
    let mut read = read.clone();
    match &mut read {
        Read::Get { key, own, seen, .. } => *seen = overlay(state, own).get(key).cloned(),
        Read::Scan {
            lo,
            hi,
            rev,
            take,
            own,
            seen,
        } => {
            let s = overlay(state, own);
            let range: Vec<_> = if lo < hi {
                s.range(lo.clone()..hi.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            let n = take.unwrap_or(usize::MAX);
            *seen = if *rev {
                range.into_iter().rev().take(n).collect()
            } else {
                range.into_iter().take(n).collect()
            };
        }
    }
    read
}

fn same(a: &Read, b: &Read) -> bool {
    match (a, b) {
        (Read::Get { seen: x, .. }, Read::Get { seen: y, .. }) => x == y,
        (Read::Scan { seen: x, .. }, Read::Scan { seen: y, .. }) => x == y,
        _ => false,
    }
}

/// True when `k` lies in what `read` depended on, for a serializable transaction.
fn depends_on(read: &Read, k: &[u8]) -> bool {
    match read {
        Read::Get { key, tracked, .. } => *tracked && key == k,
        Read::Scan {
            lo,
            hi,
            rev,
            take,
            seen,
            ..
        } => {
            let ran_out = take.is_none_or(|n| seen.len() < n);
            let (lo, hi) = match (ran_out, seen.last()) {
                (true, _) => (Bound::Included(lo), Bound::Excluded(hi)),
                (false, None) => return false, // took nothing
                (false, Some((last, _))) if *rev => (Bound::Included(last), Bound::Excluded(hi)),
                (false, Some((last, _))) => (Bound::Included(lo), Bound::Included(last)),
            };
            let k = &k.to_vec();
            (match lo {
                Bound::Included(l) => k >= l,
                _ => true,
            }) && (match hi {
                Bound::Included(h) => k <= h,
                Bound::Excluded(h) => k < h,
                Bound::Unbounded => true,
            })
        }
    }
}

fn bytes_pairs(
    it: chronokv::TransactionIter<'_>,
    rev: bool,
    take: Option<usize>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let n = take.unwrap_or(usize::MAX);
    let conv = |r: chronokv::Result<(Bytes, Bytes)>| {
        let (k, v) = r.expect("scan");
        (k.to_vec(), v.to_vec())
    };
    if rev {
        it.rev().take(n).map(conv).collect()
    } else {
        it.take(n).map(conv).collect()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fs = MemFs::new();
    let db = Db::open(
        Path::new("/db"),
        common::compacting_options(&fs, 1 << 10, common::aggressive_leveled()),
    )
    .expect("open");
    let mut committed = State::new();
    let mut log: Vec<(Version, Vec<u8>)> = Vec::new();
    let mut txns: Vec<Option<(Transaction, Model)>> = (0..SLOTS).map(|_| None).collect();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Begin(s, serializable) => {
                let opts = TransactionOptions {
                    isolation: if serializable {
                        Isolation::Serializable
                    } else {
                        Isolation::Snapshot
                    },
                    ..TransactionOptions::default()
                };
                let tx = db.begin_with(opts);
                let model = Model {
                    start: tx.version(),
                    at_start: committed.clone(),
                    serializable,
                    writes: Writes::new(),
                    reads: Vec::new(),
                };
                prop_assert_eq!(tx.version(), db.latest_version());
                txns[s as usize] = Some((tx, model)); // replacing one drops (rolls back) it
            }
            Op::Get(s, k) => {
                let Some((tx, m)) = txns[s as usize].as_mut() else {
                    continue;
                };
                let seen = tx.get(key(k)).expect("get").map(|v| v.to_vec());
                let read = Read::Get {
                    key: key(k),
                    tracked: !m.writes.contains_key(&key(k)),
                    own: m.writes.clone(),
                    seen,
                };
                let want = replay(&read, &m.at_start);
                prop_assert!(same(&read, &want), "op {}: {:?}, want {:?}", i, read, want);
                m.reads.push(read);
            }
            Op::Scan(s, a, b, rev, take) => {
                let Some((tx, m)) = txns[s as usize].as_mut() else {
                    continue;
                };
                let take = take.map(usize::from);
                let seen = bytes_pairs(tx.scan(key(a)..key(b)), rev, take);
                let read = Read::Scan {
                    lo: key(a),
                    hi: key(b),
                    rev,
                    take,
                    own: m.writes.clone(),
                    seen,
                };
                let want = replay(&read, &m.at_start);
                prop_assert!(same(&read, &want), "op {}: {:?}, want {:?}", i, read, want);
                m.reads.push(read);
            }
            Op::Put(s, k, v) => {
                let Some((tx, m)) = txns[s as usize].as_mut() else {
                    continue;
                };
                tx.put(key(k), [v]).expect("put");
                m.writes.insert(key(k), Some(vec![v]));
            }
            Op::Delete(s, k) => {
                let Some((tx, m)) = txns[s as usize].as_mut() else {
                    continue;
                };
                tx.delete(key(k)).expect("delete");
                m.writes.insert(key(k), None);
            }
            Op::Rollback(s) => {
                if let Some((tx, _)) = txns[s as usize].take() {
                    tx.rollback();
                }
            }
            Op::Commit(s) => {
                let Some((tx, m)) = txns[s as usize].take() else {
                    continue;
                };
                let newer: Vec<&Vec<u8>> = log
                    .iter()
                    .filter(|(v, _)| *v > m.start)
                    .map(|(_, k)| k)
                    .collect();
                let expect_conflict = !m.writes.is_empty()
                    && if m.serializable {
                        newer
                            .iter()
                            .any(|k| m.reads.iter().any(|r| depends_on(r, k)))
                    } else {
                        newer.iter().any(|k| m.writes.contains_key(*k))
                    };
                let result = tx.commit();
                match result {
                    Err(chronokv::Error::Conflict { reason }) => {
                        prop_assert!(expect_conflict, "op {}: unexpected conflict: {}", i, reason);
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("op {i}: {e}"))),
                    Ok(v) => {
                        prop_assert!(!expect_conflict, "op {}: a conflict was missed", i);
                        if m.writes.is_empty() {
                            prop_assert_eq!(v, m.start);
                            continue;
                        }
                        if m.serializable {
                            // Serializability: at its commit point, every read reads the same.
                            for r in &m.reads {
                                let at_commit = replay(r, &committed);
                                prop_assert!(
                                    same(r, &at_commit),
                                    "op {}: not serializable: read {:?} at commit gives {:?}",
                                    i,
                                    r,
                                    at_commit
                                );
                            }
                        }
                        committed = overlay(&committed, &m.writes);
                        log.extend(m.writes.keys().map(|k| (v, k.clone())));
                    }
                }
            }
            Op::Plain(k, v) => {
                let version = match v {
                    Some(v) => db.put(key(k), [v]),
                    None => db.delete(key(k)),
                }
                .expect("plain write");
                match v {
                    Some(v) => committed.insert(key(k), vec![v]),
                    None => committed.remove(&key(k)),
                };
                log.push((version, key(k)));
            }
            Op::Flush => db.flush().expect("flush"),
            Op::Compact => db.compact_range::<&[u8], _>(..).expect("compact"),
        }
        let got: State = common::all(&db).into_iter().collect();
        prop_assert_eq!(&got, &committed, "op {}: contents", i);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn transactions_match_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops)?;
    }
}
