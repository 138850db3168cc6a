//! The concurrent follower of the kill loop (RELIABILITY.md, G9): while the stress process
//! writes (and until its kill), the driver opens the database read-only, or refreshes the
//! handle it holds, over and over, and checks every view against the acknowledgement logs.
//!
//! **The guarantee checked** is the one the loop checks for its writable reopen after a
//! kill -9 ([`super::oracle`]): a writer logs an acknowledgement only after its commit
//! returned, and a returned commit, `Sync` or `Buffered`, has been written to the WAL file
//! (`write(2)`: in the page cache, which a kill keeps and a reader of the file sees, synced
//! or not). So per writer `t` a view holds exactly its operations `first..=k` applied in
//! order, for some `k` between its last operation logged *before* the view was read (`lo`)
//! and the one in flight *after* it was read (one past the last logged then: `hi`), and
//! never part of a batch. Across writers, the view's version must be the cycle's starting
//! version plus one version per entry of the operations it holds: no hole in the commit
//! order. (A view read while the stress process still recovers is the last cycle's state:
//! `k = first - 1` for every writer.)

use super::oracle::Oracle;
use super::{op, prefix, THREADS};
use chronokv::vfs::RealFs;
use chronokv::{Db, Options};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The pause before each view. Measured over 100 cycles (seed 1, 2 shared cores): without a
/// follower, 575 ms per cycle and 166,205 acknowledged writes; with a 5 ms pause, 607 ms
/// and 114,839 (the follower's CPU slows the writers); with 20 ms, 597 ms and 139,070, and
/// about 11 views a cycle.
const PAUSE: Duration = Duration::from_millis(20);

/// What a follower did in one cycle.
#[derive(Debug, Clone, Default)]
pub struct Followed {
    /// Views checked: from fresh read-only opens, and from refreshes of a held handle.
    pub opens: u64,
    pub refreshes: u64,
    /// One line per finding.
    pub violations: Vec<String>,
}

/// Reads the acknowledgement logs as they are now.
pub type ReadAcks<'a> = &'a dyn Fn() -> Vec<Vec<(u64, u64)>>;

/// Follows the database at `db` until `stop` is set: alternately a fresh read-only open and
/// a refresh of the handle kept from the last open, each view checked ([`check_view`]).
pub fn follow(db: &Path, oracle: &Oracle, acks: ReadAcks<'_>, stop: &AtomicBool) -> Followed {
    let opts = Options {
        create_if_missing: false,
        ..super::options(Arc::new(RealFs), 0)
    };
    let mut out = Followed::default();
    let mut held: Option<Db> = None;
    while !stop.load(Ordering::Acquire) {
        // Leave the writers most of the two cores: a view every few milliseconds is plenty.
        std::thread::sleep(PAUSE);
        if !db.join("CURRENT").exists() {
            continue; // the first cycle's stress process has not created the store yet
        }
        let before = acks();
        let refresh = held.is_some() && (out.opens + out.refreshes) % 2 == 1;
        let viewed = if refresh {
            let h = held.as_mut().expect("checked above");
            h.refresh().map(|_| ())
        } else {
            Db::open_read_only(db, opts.clone()).map(|d| held = Some(d))
        };
        if let Err(e) = viewed {
            let what = if refresh { "refresh" } else { "read-only open" };
            out.violations
                .push(format!("G9: follower {what} failed: {e}"));
            break;
        }
        if stop.load(Ordering::Acquire) {
            break; // the kill came: the cycle's check waits for no further scan
        }
        let h = held.as_ref().expect("a view was just taken");
        let latest = h.latest_version().get();
        let pairs: chronokv::Result<Vec<(Vec<u8>, Vec<u8>)>> = h
            .scan::<&[u8], _>(..)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect();
        let after = acks();
        let what = if refresh { "refresh" } else { "open" };
        match pairs {
            Err(e) => out
                .violations
                .push(format!("G9: follower scan failed: {e}")),
            Ok(pairs) => out.violations.extend(
                check_view(oracle, &before, &after, pairs, latest)
                    .into_iter()
                    .map(|v| format!("G9: follower {what} at v{latest}: {v}")),
            ),
        }
        if refresh {
            out.refreshes += 1;
        } else {
            out.opens += 1;
        }
        if !out.violations.is_empty() {
            break;
        }
    }
    out
}

/// Checks one view (`scan` in key order, at version `latest`) against the oracle's state at
/// the cycle's start and the acknowledgement logs read before and after the view was read.
/// Returns the violations found (see the module documentation).
pub fn check_view(
    oracle: &Oracle,
    before: &[Vec<(u64, u64)>],
    after: &[Vec<(u64, u64)>],
    scan: Vec<(Vec<u8>, Vec<u8>)>,
    latest: u64,
) -> Vec<String> {
    let mut seen: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![BTreeMap::new(); THREADS];
    for (k, v) in scan {
        match (0..THREADS).find(|&t| k.starts_with(&prefix(t))) {
            Some(t) => {
                seen[t].insert(k, v);
            }
            None => return vec![format!("a key no writer owns: {k:?}")],
        }
    }
    let mut violations = Vec::new();
    let mut counts: Vec<Vec<u64>> = Vec::with_capacity(THREADS);
    for (t, seen) in seen.iter().enumerate() {
        let first = oracle.next_counters()[t];
        let lo = first + before.get(t).map_or(0, Vec::len) as u64;
        let hi = first + after.get(t).map_or(0, Vec::len) as u64;
        let found = prefixes_matching(oracle, t, seen, lo, hi);
        if found.is_empty() {
            violations.push(format!(
                "writer {t}'s keys are no prefix of its operations ending between op {} \
                 (acknowledged before the view) and op {hi} (in flight after it): a lost \
                 acknowledged write, a hole or half a batch",
                lo - 1
            ));
        }
        counts.push(found);
    }
    if violations.is_empty() {
        let delta = latest.checked_sub(oracle.version());
        let possible = counts.iter().fold(vec![0u64], |sums, options| {
            let mut next: BTreeSet<u64> = BTreeSet::new();
            for s in &sums {
                for o in options {
                    next.insert(s + o);
                }
            }
            next.into_iter().collect()
        });
        if !delta.is_some_and(|d| possible.contains(&d)) {
            violations.push(format!(
                "P: v{latest} after the cycle's v{}: the operations seen account for {possible:?} \
                 new versions",
                oracle.version()
            ));
        }
    }
    violations
}

/// The versions (entries) of writer `t`'s operations `first..=k`, for every `k` in
/// `lo - 1..=hi` at which its key space equals `seen`. Walks `k` up, applying one operation
/// at a time to an overlay of the oracle's model and tracking the keys that differ.
fn prefixes_matching(
    oracle: &Oracle,
    t: usize,
    seen: &BTreeMap<Vec<u8>, Vec<u8>>,
    lo: u64,
    hi: u64,
) -> Vec<u64> {
    let model = oracle.model(t);
    let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let mut versions = 0u64;
    let first = oracle.next_counters()[t];
    let apply = |overlay: &mut HashMap<_, _>, c: u64| {
        let o = op(oracle.seed(), t, c);
        for (k, v) in &o.entries {
            overlay.insert(k.clone(), v.clone());
        }
        o.entries.len() as u64
    };
    for c in first..lo {
        versions += apply(&mut overlay, c);
    }
    let want = |overlay: &HashMap<Vec<u8>, Option<Vec<u8>>>, k: &[u8]| match overlay.get(k) {
        Some(v) => v.clone(),
        None => model.get(k).cloned(),
    };
    let mut differ: BTreeSet<Vec<u8>> = model
        .keys()
        .chain(overlay.keys())
        .chain(seen.keys())
        .filter(|k| want(&overlay, k).as_ref() != seen.get(*k))
        .cloned()
        .collect();
    let mut found = Vec::new();
    for c in lo..=hi {
        if differ.is_empty() {
            found.push(versions);
        }
        let o = op(oracle.seed(), t, c);
        versions += apply(&mut overlay, c);
        for (k, _) in &o.entries {
            if want(&overlay, k).as_ref() == seen.get(k) {
                differ.remove(k);
            } else {
                differ.insert(k.clone());
            }
        }
    }
    if differ.is_empty() {
        found.push(versions);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state after writer `t`'s ops `1..=n` (each writer from an empty database) and its
    /// version count.
    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn after_ops(seed: u64, counts: [u64; THREADS]) -> (Pairs, u64) {
        let mut state = BTreeMap::new();
        let mut versions = 0;
        for (t, &n) in counts.iter().enumerate() {
            for c in 1..=n {
                let o = op(seed, t, c);
                versions += o.entries.len() as u64;
                for (k, v) in o.entries {
                    match v {
                        Some(v) => state.insert(k, v),
                        None => state.remove(&k),
                    };
                }
            }
        }
        (state.into_iter().collect(), versions)
    }

    fn acks(counts: [u64; THREADS]) -> Vec<Vec<(u64, u64)>> {
        counts
            .iter()
            .map(|&n| (1..=n).map(|c| (c, 0)).collect())
            .collect()
    }

    #[test]
    fn a_prefix_within_the_bounds_passes_and_anything_else_fails() {
        let oracle = Oracle::new(3);
        let (state, v) = after_ops(3, [5, 7, 0, 2]);
        let ok = check_view(&oracle, &acks([5, 6, 0, 2]), &acks([9, 9, 1, 2]), state, v);
        assert!(ok.is_empty(), "{ok:?}");
        // Writer 1's op 7 is seen but 6 was the bound before: fine; 8 would not be.
        let (state, v) = after_ops(3, [5, 7, 0, 2]);
        let late = check_view(&oracle, &acks([5, 8, 0, 2]), &acks([9, 9, 1, 2]), state, v);
        assert_eq!(late.len(), 1, "{late:?}");
        // More than one op past the last acknowledgement after the view.
        let (state, v) = after_ops(3, [5, 7, 0, 2]);
        let early = check_view(&oracle, &acks([0; THREADS]), &acks([5, 5, 0, 2]), state, v);
        assert!(!early.is_empty());
        // The right contents at a version one short of their entries (a version counted
        // for two entries), or far past them (a hole: commits missing in between).
        let (state, v) = after_ops(3, [5, 7, 0, 2]);
        let seen = acks([5, 7, 0, 2]);
        let short = check_view(&oracle, &seen, &seen, state.clone(), v - 1);
        assert_eq!(short.len(), 1, "{short:?}");
        let hole = check_view(&oracle, &seen, &seen, state, v + 100);
        assert_eq!(hole.len(), 1, "{hole:?}");
        assert!(hole.iter().any(|h| h.starts_with("P:")), "{hole:?}");
    }

    #[test]
    fn half_a_batch_fails() {
        let oracle = Oracle::new(5);
        let c = (1..100)
            .find(|&c| op(5, 0, c).entries.len() > 2)
            .expect("a batch");
        let (mut state, v) = after_ops(5, [c - 1, 0, 0, 0]);
        // Only the batch's first entry (a put).
        let (k, val) = op(5, 0, c).entries[0].clone();
        state.retain(|(sk, _)| *sk != k);
        state.push((k, val.expect("a batch starts with a put")));
        state.sort();
        let found = check_view(
            &oracle,
            &acks([0; THREADS]),
            &acks([c; THREADS]),
            state,
            v + 1,
        );
        assert!(!found.is_empty());
    }
}
