//! The kill loop's oracle: after each kill and reopen, the recovered database must hold, for
//! every writer, exactly its acknowledged operations applied in order, plus at most its one
//! operation in flight, whole; and its version must account for exactly the operations
//! present.
//!
//! Per cycle and writer `t`, the acknowledgement log holds `(c, version)` for operations
//! `first..=L`; operation `L + 1` was in flight (issued and maybe committed, maybe even
//! acknowledged but not logged yet, or never started). The checks:
//!
//! - **D (durability)**: every key holds the value its last acknowledged write gave it (or is
//!   absent after an acknowledged delete); a key that does not, and is not one the in-flight
//!   operation touches, is a *lost acknowledged write* (or, if it should be absent, a
//!   *resurrected* key: **R**);
//! - **A (atomicity)**: the keys of the in-flight operation hold either all their values
//!   before it or all its values (a *partial batch* otherwise);
//! - **P (prefix, no hole)**: the recovered version minus the previous cycle's equals the
//!   versions of the acknowledged operations plus those of the in-flight operations found
//!   (one version per entry); every acknowledged version lies in that range, and no two
//!   operations share one. A commit lost in the middle of the order, with later ones kept,
//!   breaks the count (a *hole*).
//!
//! An in-flight operation with no visible effect (a delete of an absent key) is
//! *undecided*: the count accepts it either way. Every later cycle checks the same keys
//! again, so a write that disappears or reappears later is caught too. After a violation the
//! expected state takes what the database holds, so one fault is reported once.

use super::{describe, op, prefix, value_origin, Op, THREADS};
use std::collections::{BTreeMap, HashMap};

/// The expected state, carried from cycle to cycle.
#[derive(Debug, Clone)]
pub struct Oracle {
    seed: u64,
    /// Per writer: the contents of its key space.
    models: Vec<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Per writer: the counter of its next operation.
    next: Vec<u64>,
    /// The version the database recovered to at the end of the last cycle.
    version: u64,
}

/// The findings of one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleCheck {
    /// Operations acknowledged (and logged) in the cycle, and how many of them were `Sync`.
    pub acked: u64,
    pub acked_sync: u64,
    /// In-flight operations found whole, not found, or without a visible effect.
    pub in_flight_present: u64,
    pub in_flight_absent: u64,
    pub in_flight_undecided: u64,
    /// Keys that lost their acknowledged value (D).
    pub lost: u64,
    /// Keys present that should be absent: an acknowledged delete undone, or never written (R).
    pub resurrected: u64,
    /// In-flight batches found in part (A).
    pub partial: u64,
    /// Version accounting failures: a hole, an acknowledged version past the recovered one,
    /// a version used twice (P).
    pub holes: u64,
    /// One line per finding.
    pub violations: Vec<String>,
}

impl CycleCheck {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }
}

/// A key whose recovered value differs from the expected one.
struct Diff {
    key: Vec<u8>,
    want: Option<Vec<u8>>,
    have: Option<Vec<u8>>,
}

/// A key of an in-flight operation: its value before the operation, the operation's, and
/// the recovered one.
struct FlightKey<'a> {
    key: &'a Vec<u8>,
    before: Option<&'a [u8]>,
    after: Option<&'a [u8]>,
    have: Option<&'a [u8]>,
}

fn owner(key: &[u8]) -> Option<usize> {
    (0..THREADS).find(|&t| key.starts_with(&prefix(t)))
}

/// True when `v` is what the entry it names wrote under key `key` (a well-formed value in
/// the right place); used on checkpoints, whose exact expected state is not kept.
pub fn value_is_genuine(seed: u64, key: &[u8], v: &[u8]) -> bool {
    let Some((t, c, j)) = value_origin(v) else {
        return false;
    };
    if t >= THREADS {
        return false;
    }
    let o = op(seed, t, c);
    o.entries
        .iter()
        .enumerate()
        .any(|(i, (k, val))| i == j && k == key && val.as_deref() == Some(v))
}

/// Every sum of a subset of `xs`.
fn subset_sums(xs: &[u64]) -> Vec<u64> {
    let mut sums = vec![0];
    for &x in xs {
        let more: Vec<u64> = sums.iter().map(|s| s + x).collect();
        sums.extend(more);
    }
    sums
}

impl Oracle {
    /// A new, empty database.
    pub fn new(seed: u64) -> Oracle {
        Oracle {
            seed,
            models: vec![BTreeMap::new(); THREADS],
            next: vec![1; THREADS],
            version: 0,
        }
    }

    /// The counters the writers start the next cycle with.
    pub fn next_counters(&self) -> &[u64] {
        &self.next
    }

    /// The version the database recovered to last.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The seed the operations are derived from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Writer `t`'s expected key space as the last check left it.
    pub fn model(&self, t: usize) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.models[t]
    }

    /// Keys expected in the database.
    pub fn keys(&self) -> usize {
        self.models.iter().map(BTreeMap::len).sum()
    }

    /// Checks one cycle: `acks[t]` is writer `t`'s acknowledgement log, `scan` the recovered
    /// database's contents in key order, `latest` its recovered version. Then moves the
    /// expected state to what the database holds.
    pub fn check_cycle(
        &mut self,
        acks: &[Vec<(u64, u64)>],
        scan: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        latest: u64,
    ) -> CycleCheck {
        let mut out = CycleCheck::default();
        let prev = self.version;
        // Acknowledged operations: into the model, their versions kept for the count.
        let mut ranges: Vec<(u64, u64, String)> = Vec::new();
        let mut known = 0u64;
        let mut in_flight: Vec<Op> = Vec::with_capacity(THREADS);
        for t in 0..THREADS {
            let log = acks.get(t).map(Vec::as_slice).unwrap_or_default();
            let mut expect = self.next[t];
            for &(c, v) in log {
                if c != expect {
                    out.holes += 1;
                    out.violations.push(format!(
                        "harness: writer {t}'s acknowledgement log has op {c} where op {expect} \
                         was due"
                    ));
                    break;
                }
                let o = op(self.seed, t, c);
                let n = o.entries.len() as u64;
                known += n;
                out.acked += 1;
                out.acked_sync += u64::from(o.sync);
                ranges.push((v + 1 - n.min(v + 1), v, format!("op {t}.{c}")));
                apply_to(&mut self.models[t], &o);
                expect += 1;
            }
            in_flight.push(op(self.seed, t, expect));
            self.next[t] = expect + 1;
        }

        // What the in-flight operations' keys hold, filled in by the scan.
        let mut flight_got: HashMap<Vec<u8>, Option<Vec<u8>>> = in_flight
            .iter()
            .flat_map(|o| o.entries.iter().map(|(k, _)| (k.clone(), None)))
            .collect();
        // Merge the scan with the expected contents (writers' key spaces sort in writer
        // order), noting every key that differs and is not the in-flight operation's.
        let mut mismatched: Vec<Diff> = Vec::new();
        {
            let mut expected = self.models.iter().flat_map(|m| m.iter()).peekable();
            let mut got = scan.into_iter().peekable();
            loop {
                let (key, want, have) = match (expected.peek(), got.peek()) {
                    (None, None) => break,
                    (Some((ek, _)), Some((gk, _))) if ek.as_slice() == gk.as_slice() => {
                        let (k, w) = expected.next().unwrap();
                        let (_, g) = got.next().unwrap();
                        (k.clone(), Some(w.clone()), Some(g))
                    }
                    (Some((ek, _)), Some((gk, _))) if ek.as_slice() < gk.as_slice() => {
                        let (k, w) = expected.next().unwrap();
                        (k.clone(), Some(w.clone()), None)
                    }
                    (Some(_), None) => {
                        let (k, w) = expected.next().unwrap();
                        (k.clone(), Some(w.clone()), None)
                    }
                    _ => {
                        let (k, g) = got.next().unwrap();
                        (k, None, Some(g))
                    }
                };
                if let Some(slot) = flight_got.get_mut(&key) {
                    *slot = have;
                } else if want != have {
                    mismatched.push(Diff { key, want, have });
                }
            }
        }
        for Diff { key, want, have } in mismatched {
            self.report_key(&mut out, &key, want.as_deref(), have.as_deref(), "");
            if let Some(t) = owner(&key) {
                set(&mut self.models[t], &key, have);
            }
        }

        // In-flight operations: all or nothing.
        let mut undecided = Vec::new();
        for o in &in_flight {
            let model = &self.models[o.thread];
            let n = o.entries.len() as u64;
            let keys: Vec<FlightKey> = o
                .entries
                .iter()
                .map(|(k, v)| FlightKey {
                    key: k,
                    before: model.get(k).map(Vec::as_slice),
                    after: v.as_deref(),
                    have: flight_got.get(k).and_then(|g| g.as_deref()),
                })
                .collect();
            let before = keys.iter().all(|f| f.before == f.have);
            let after = keys.iter().all(|f| f.after == f.have);
            let id = format!("op {}.{}", o.thread, o.counter);
            if before && after {
                out.in_flight_undecided += 1;
                undecided.push(n);
            } else if before {
                out.in_flight_absent += 1;
            } else if after {
                out.in_flight_present += 1;
                known += n;
                apply_to(&mut self.models[o.thread], o);
            } else {
                let some_after = keys.iter().any(|f| f.after == f.have && f.before != f.have);
                let some_before = keys.iter().any(|f| f.before == f.have && f.after != f.have);
                if some_after && some_before {
                    out.partial += 1;
                    out.violations.push(format!(
                        "A: in-flight {id} ({} entries) is only partly there",
                        keys.len()
                    ));
                }
                for f in &keys {
                    if f.before != f.have && f.after != f.have {
                        let note = format!(" (in-flight {id})");
                        self.report_key(&mut out, f.key, f.before, f.have, &note);
                    }
                }
                // Nothing is known of its count; the version check accepts it either way.
                undecided.push(n);
                let found: Vec<(Vec<u8>, Option<Vec<u8>>)> = keys
                    .iter()
                    .map(|f| (f.key.clone(), f.have.map(<[u8]>::to_vec)))
                    .collect();
                for (k, h) in found {
                    set(&mut self.models[o.thread], &k, h);
                }
            }
        }

        // Versions.
        if latest < prev {
            out.holes += 1;
            out.violations.push(format!(
                "P: the database went back from v{prev} to v{latest}"
            ));
        } else {
            let delta = latest - prev;
            let fits = delta >= known && subset_sums(&undecided).contains(&(delta - known));
            if !fits {
                out.holes += 1;
                out.violations.push(format!(
                    "P: recovered v{latest} after v{prev}: {delta} new versions, but the \
                     operations present account for {known} (plus any of {undecided:?})"
                ));
            }
        }
        ranges.sort();
        for (lo, hi, id) in &ranges {
            if *lo <= prev || *hi > latest {
                out.holes += 1;
                out.violations.push(format!(
                    "P: acknowledged {id} has versions v{lo}..=v{hi}, outside v{}..=v{latest}",
                    prev + 1
                ));
            }
        }
        for w in ranges.windows(2) {
            if w[1].0 <= w[0].1 {
                out.holes += 1;
                out.violations.push(format!(
                    "P: acknowledged {} and {} share versions (v{}..=v{} and v{}..=v{})",
                    w[0].2, w[1].2, w[0].0, w[0].1, w[1].0, w[1].1
                ));
            }
        }
        self.version = latest;
        out
    }

    fn report_key(
        &self,
        out: &mut CycleCheck,
        key: &[u8],
        want: Option<&[u8]>,
        have: Option<&[u8]>,
        note: &str,
    ) {
        let k = String::from_utf8_lossy(key);
        if owner(key).is_none() {
            out.resurrected += 1;
            out.violations.push(format!(
                "R: key {k}, which no writer owns, holds {}",
                describe(have)
            ));
        } else if want.is_some() {
            out.lost += 1;
            out.violations.push(format!(
                "D: lost acknowledged write{note}: key {k} should hold {}, holds {}",
                describe(want),
                describe(have)
            ));
        } else {
            out.resurrected += 1;
            out.violations.push(format!(
                "R: key {k} should be absent{note}, holds {}",
                describe(have)
            ));
        }
    }
}

fn apply_to(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, o: &Op) {
    for (k, v) in &o.entries {
        set(model, k, v.clone());
    }
}

fn set(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, k: &[u8], v: Option<Vec<u8>>) {
    match v {
        Some(v) => model.insert(k.to_vec(), v),
        None => model.remove(k),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    type Acks = Vec<Vec<(u64, u64)>>;
    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    /// A stand-in database: the state and the versions a real one would have.
    struct Sim {
        seed: u64,
        state: BTreeMap<Vec<u8>, Vec<u8>>,
        version: u64,
        acks: Vec<Vec<(u64, u64)>>,
    }

    impl Sim {
        fn new(seed: u64) -> Sim {
            Sim {
                seed,
                state: BTreeMap::new(),
                version: 0,
                acks: vec![Vec::new(); THREADS],
            }
        }

        /// Commits op `(t, c)`; logs its ack if `ack`.
        fn commit(&mut self, t: usize, c: u64, ack: bool) {
            let o = op(self.seed, t, c);
            apply_to(&mut self.state, &o);
            self.version += o.entries.len() as u64;
            if ack {
                self.acks[t].push((c, self.version));
            }
        }

        /// The acknowledgement logs since the last cycle, the contents, the version.
        fn cycle(&mut self) -> (Acks, Pairs, u64) {
            let acks = std::mem::replace(&mut self.acks, vec![Vec::new(); THREADS]);
            let scan = self.state.iter().map(|(k, v)| (k.clone(), v.clone()));
            (acks, scan.collect(), self.version)
        }
    }

    /// Runs `n` acknowledged ops per writer from the oracle's counters, interleaved.
    fn acked_ops(sim: &mut Sim, oracle: &Oracle, n: u64) {
        for i in 0..n {
            for t in 0..THREADS {
                sim.commit(t, oracle.next_counters()[t] + i, true);
            }
        }
    }

    fn has_put(o: &Op) -> bool {
        o.entries.iter().any(|(_, v)| v.is_some())
    }

    /// A batch of at least 3 entries with a put after the first.
    fn batch_counter(seed: u64, t: usize, from: u64) -> u64 {
        (from..)
            .find(|&c| {
                let o = op(seed, t, c);
                o.entries.len() >= 3 && o.entries[1..].iter().any(|(_, v)| v.is_some())
            })
            .unwrap()
    }

    #[test]
    fn clean_cycles_pass_and_in_flight_ops_may_land_or_not() {
        let mut sim = Sim::new(3);
        let mut oracle = Oracle::new(3);
        for cycle in 0..30u64 {
            acked_ops(&mut sim, &oracle, 40);
            // Writer 0's next op committed but its ack was not logged; writer 1's never ran.
            if cycle % 2 == 0 {
                sim.commit(0, oracle.next_counters()[0] + 40, false);
            }
            let (acks, scan, latest) = sim.cycle();
            let r = oracle.check_cycle(&acks, scan, latest);
            assert!(!r.failed(), "cycle {cycle}: {:#?}", r.violations);
            assert_eq!(r.acked, 160);
        }
        assert!(oracle.keys() > 0);
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let mut sim = Sim::new(4);
        let mut oracle = Oracle::new(4);
        acked_ops(&mut sim, &oracle, 50);
        let (acks, mut scan, latest) = sim.cycle();
        // The database lost writer 2's last acknowledged value of some key.
        let i = scan
            .iter()
            .position(|(k, _)| k.starts_with(&prefix(2)))
            .unwrap();
        scan.remove(i);
        let damaged = scan.clone();
        let r = oracle.check_cycle(&acks, scan, latest);
        assert_eq!(r.lost, 1, "{:#?}", r.violations);
        assert!(r.violations[0].starts_with("D: lost acknowledged write"));
        // Reported once: the expected state now is what the database holds.
        let (acks, scan, latest) = (vec![Vec::new(); THREADS], damaged, latest);
        let r = oracle.check_cycle(&acks, scan, latest);
        assert!(!r.failed(), "{:#?}", r.violations);
    }

    #[test]
    fn a_resurrected_delete_is_caught() {
        let seed = 5;
        let mut sim = Sim::new(seed);
        let mut oracle = Oracle::new(seed);
        acked_ops(&mut sim, &oracle, 200);
        let (acks, scan, latest) = sim.cycle();
        assert!(!oracle.check_cycle(&acks, scan.clone(), latest).failed());
        // A deleted key of writer 1 comes back (with an old value of it).
        let c = (oracle.next_counters()[1]..)
            .find(|&c| {
                let o = op(seed, 1, c);
                o.entries.len() == 1 && o.entries[0].1.is_none()
            })
            .unwrap();
        // Bring writer 1 up to c (acknowledged), then let the delete's key reappear.
        for i in oracle.next_counters()[1]..=c {
            sim.commit(1, i, true);
        }
        let key = op(seed, 1, c).entries[0].0.clone();
        let (acks, mut scan, latest) = sim.cycle();
        let stale = (1..c)
            .rev()
            .find_map(|i| {
                op(seed, 1, i)
                    .entries
                    .into_iter()
                    .find(|(k, v)| *k == key && v.is_some())
                    .and_then(|(_, v)| v)
            })
            .unwrap_or_else(|| b"1.0.0|zombie".to_vec());
        scan.push((key.clone(), stale));
        scan.sort();
        let r = oracle.check_cycle(&acks, scan, latest);
        assert_eq!(r.resurrected, 1, "{:#?}", r.violations);
    }

    #[test]
    fn a_partial_batch_is_caught() {
        let seed = 6;
        let mut sim = Sim::new(seed);
        let mut oracle = Oracle::new(seed);
        let c = batch_counter(seed, 3, 1);
        for i in 1..c {
            sim.commit(3, i, true);
        }
        // The batch is in flight; only its first entry made it.
        let o = op(seed, 3, c);
        let (k, v) = o.entries[0].clone();
        let (acks, mut scan, mut latest) = sim.cycle();
        scan.retain(|(key, _)| *key != k);
        scan.push((k, v.unwrap()));
        scan.sort();
        latest += 1;
        let r = oracle.check_cycle(&acks, scan, latest);
        assert_eq!(r.partial, 1, "{:#?}", r.violations);
    }

    #[test]
    fn a_hole_in_the_version_order_is_caught() {
        // Both in-flight ops (op 11 of writers 0 and 1) must have a visible effect.
        let seed = (1..)
            .find(|&s| has_put(&op(s, 0, 11)) && has_put(&op(s, 1, 11)))
            .unwrap();
        let mut sim = Sim::new(seed);
        let mut oracle = Oracle::new(seed);
        acked_ops(&mut sim, &oracle, 10);
        // Writer 0's in-flight op committed, then writer 1's; the database kept only the
        // later one (the recovered version still counts both).
        let c0 = oracle.next_counters()[0] + 10;
        let n0 = op(seed, 0, c0).entries.len() as u64;
        sim.version += n0;
        sim.commit(1, oracle.next_counters()[1] + 10, false);
        let (acks, scan, latest) = sim.cycle();
        let r = oracle.check_cycle(&acks, scan, latest);
        assert_eq!(r.holes, 1, "{:#?}", r.violations);
        assert_eq!(r.in_flight_present, 1);
    }

    #[test]
    fn a_lost_acknowledged_op_is_caught_by_its_version_too() {
        let seed = 9;
        let mut sim = Sim::new(seed);
        let mut oracle = Oracle::new(seed);
        acked_ops(&mut sim, &oracle, 10);
        let (acks, scan, latest) = sim.cycle();
        // The database recovered to an older version than an acknowledged op's.
        let r = oracle.check_cycle(&acks, scan, latest - 1);
        assert!(r.holes >= 1, "{:#?}", r.violations);
    }

    #[test]
    fn checkpoint_values_are_checked_against_their_op() {
        let o = op(11, 2, 77);
        let (k, v) = o.entries[0].clone();
        let v = v.unwrap();
        assert!(value_is_genuine(11, &k, &v));
        assert!(!value_is_genuine(12, &k, &v));
        assert!(!value_is_genuine(11, b"t2/h0000x", &v));
        let mut bad = v.clone();
        bad.push(b'!');
        assert!(!value_is_genuine(11, &k, &bad));
    }
}
