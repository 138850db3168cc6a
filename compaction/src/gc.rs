//! Version garbage collection: which versions of a key a merge must keep.
//!
//! Pure: [`GcFilter`] is an iterator adapter over entries in internal order (key ascending,
//! version descending, no duplicate `(key, version)`); it does no I/O.
//!
//! # Rules
//!
//! * **Stripes.** The live snapshots `s1 < s2 < ... < sn` cut the version space into stripes:
//!   `[0, s1]`, `(s1, s2]`, ..., `(sn, MAX]` (the *top* stripe). With a retention bound `r`
//!   (`GcRules::retain_from`), every version `>= r` is a stripe of its own, and so is each
//!   of a key's newest `GcRules::keep_newest` versions (history kept per key).
//! * **Shadowing.** Of each key's versions in one stripe only the newest is kept: no reader
//!   that matters can see the others. A read at snapshot `s` sees the newest version `<= s`,
//!   which is the newest of its stripe, and a read at any `R >= r` sees either a retained
//!   version or the newest version below `r`, which is the newest of its stripe.
//! * **Tombstones.** In a bottommost merge (nothing older lies below it) a key's *trailing*
//!   kept tombstones (kept deletes older than every kept put of the key) below `r` hide
//!   nothing, so they are dropped too. A tombstone followed by an older kept put is kept: it
//!   hides that put from newer readers.
//!
//! # Memory
//!
//! Entries stream through. The only buffer is the current key's kept tombstones that may
//! still turn out to be trailing; they are released as soon as an older kept put of the key
//! shows up, and dropped at the next key (or the end of the input).
//!
//! # Errors
//!
//! An input error is passed through once; after it the filter yields nothing (it fuses).

use chronokv_snapshot::{Entry, Kind, Version};
use std::collections::VecDeque;

/// Which versions must survive a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcRules {
    /// Versions of live snapshots (any order, duplicates allowed; normalised internally: sort +
    /// dedup).
    pub snapshots: Vec<Version>,
    /// Retention: every version `>=` this is kept, and reads at any version `>=` this must
    /// return what they returned before. `None` = no retention.
    pub retain_from: Option<Version>,
    /// Every key's newest `keep_newest` versions are kept (tombstones included), whatever
    /// their age. 0 and 1 add nothing to the other rules.
    pub keep_newest: usize,
}

/// What a [`GcFilter`] did. `entries_in = entries_out + versions_dropped + tombstones_dropped`
/// once the input is exhausted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Entries read from the input.
    pub entries_in: u64,
    /// Entries yielded.
    pub entries_out: u64,
    /// Entries dropped because a newer version of the key in the same stripe shadows them.
    pub versions_dropped: u64,
    /// Trailing tombstones dropped by a bottommost merge.
    pub tombstones_dropped: u64,
}

/// The stripe a version belongs to. Within one key, stripes are visited in descending order,
/// so a version is the newest of its stripe iff its stripe differs from the previous
/// version's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stripe {
    /// A retained version (`>= retain_from`, or among the key's newest `keep_newest`): a
    /// stripe of its own.
    Retained(Version),
    /// Index of the smallest snapshot `>= v`; `snapshots.len()` is the top stripe.
    Below(usize),
}

/// Drops the versions no reader can see. See the module documentation.
pub struct GcFilter<I> {
    input: I,
    /// Sorted, deduplicated.
    snapshots: Vec<Version>,
    retain_from: Option<Version>,
    keep_newest: usize,
    bottommost: bool,
    /// The key being filtered and the stripe of its last version seen.
    current: Option<(bytes::Bytes, Version, Stripe)>,
    /// How many versions of the current key came before this one.
    rank: usize,
    /// Kept tombstones of the current key that are dropped if no kept put follows.
    pending: VecDeque<Entry>,
    /// Entries decided on, waiting to be yielded (released tombstones, then their put).
    ready: VecDeque<Entry>,
    done: bool,
    stats: GcStats,
}

impl<I> std::fmt::Debug for GcFilter<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcFilter")
            .field("snapshots", &self.snapshots)
            .field("retain_from", &self.retain_from)
            .field("bottommost", &self.bottommost)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<I, E> GcFilter<I>
where
    I: Iterator<Item = Result<Entry, E>>,
{
    /// Filters `input` (internal order, no duplicate `(key, version)`) by `rules`.
    /// `bottommost`: no older data of these keys exists below this merge, so trailing
    /// tombstones may go.
    pub fn new(input: I, rules: &GcRules, bottommost: bool) -> Self {
        let mut snapshots = rules.snapshots.clone();
        snapshots.sort_unstable();
        snapshots.dedup();
        GcFilter {
            input,
            snapshots,
            retain_from: rules.retain_from,
            keep_newest: rules.keep_newest,
            bottommost,
            current: None,
            rank: 0,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            done: false,
            stats: GcStats::default(),
        }
    }

    /// Counters so far (final once the filter returned `None`).
    pub fn stats(&self) -> GcStats {
        self.stats
    }

    /// Whether version `v`, the key's `rank`-th newest, is kept for retention.
    fn retained(&self, v: Version, rank: usize) -> bool {
        self.retain_from.is_some_and(|r| v >= r)
            || (self.keep_newest > 1 && rank < self.keep_newest)
    }

    /// A version kept for its rank still shadows the older versions of its stripe.
    fn stripe(&self, v: Version) -> Stripe {
        if self.retain_from.is_some_and(|r| v >= r) {
            Stripe::Retained(v)
        } else {
            Stripe::Below(self.snapshots.partition_point(|&s| s < v))
        }
    }

    /// Drops the pending tombstones: the key ended without an older kept put.
    fn drop_pending(&mut self) {
        self.stats.tombstones_dropped += self.pending.len() as u64;
        self.pending.clear();
    }

    /// Decides on one input entry: drops it, holds it as pending, or queues it in `ready`.
    fn admit(&mut self, e: Entry) {
        self.stats.entries_in += 1;
        let same = matches!(&self.current, Some((key, _, _)) if *key == e.key);
        self.rank = if same { self.rank + 1 } else { 0 };
        let rank = self.rank;
        let stripe = self.stripe(e.version);
        let kept_for_rank = self.keep_newest > 1 && rank < self.keep_newest;
        let same_key = match &mut self.current {
            Some((key, last_version, last_stripe)) if *key == e.key => {
                debug_assert!(e.version < *last_version, "versions of a key must descend");
                let shadowed = *last_stripe == stripe && !kept_for_rank;
                *last_version = e.version;
                *last_stripe = stripe;
                if shadowed {
                    self.stats.versions_dropped += 1;
                    return;
                }
                true
            }
            _ => false,
        };
        if !same_key {
            debug_assert!(
                self.current.as_ref().is_none_or(|(k, _, _)| *k < e.key),
                "keys must ascend"
            );
            self.drop_pending();
            self.current = Some((e.key.clone(), e.version, stripe));
        }
        match e.kind {
            Kind::Delete if self.bottommost && !self.retained(e.version, rank) => {
                self.pending.push_back(e);
            }
            Kind::Delete => self.ready.push_back(e),
            Kind::Put => {
                // An older put: the pending tombstones hide it, so they stay.
                self.ready.append(&mut self.pending);
                self.ready.push_back(e);
            }
        }
    }
}

impl<I, E> Iterator for GcFilter<I>
where
    I: Iterator<Item = Result<Entry, E>>,
{
    type Item = Result<Entry, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                self.stats.entries_out += 1;
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            match self.input.next() {
                Some(Ok(e)) => self.admit(e),
                Some(Err(err)) => {
                    self.done = true;
                    self.pending.clear();
                    return Some(Err(err));
                }
                None => {
                    self.done = true;
                    self.drop_pending();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    fn entry(k: &str, v: u64, kind: Kind) -> Entry {
        let value = match kind {
            Kind::Put => Bytes::from(format!("{k}{v}")),
            Kind::Delete => Bytes::new(),
        };
        Entry {
            key: Bytes::copy_from_slice(k.as_bytes()),
            version: Version(v),
            time: 0,
            kind,
            value,
        }
    }

    fn put(k: &str, v: u64) -> Entry {
        entry(k, v, Kind::Put)
    }

    fn del(k: &str, v: u64) -> Entry {
        entry(k, v, Kind::Delete)
    }

    fn rules(snapshots: &[u64], retain_from: Option<u64>) -> GcRules {
        GcRules {
            snapshots: snapshots.iter().map(|&s| Version(s)).collect(),
            retain_from: retain_from.map(Version),
            keep_newest: 0,
        }
    }

    /// Runs the filter; returns the kept `(key, version)` pairs and the stats.
    fn run(input: &[Entry], rules: &GcRules, bottommost: bool) -> (Vec<(String, u64)>, GcStats) {
        let mut f = GcFilter::new(input.iter().cloned().map(Ok::<_, ()>), rules, bottommost);
        let out = f
            .by_ref()
            .map(|r| {
                let e = r.unwrap();
                (String::from_utf8(e.key.to_vec()).unwrap(), e.version.0)
            })
            .collect();
        (out, f.stats())
    }

    fn kv(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn keeps_the_newest_version_of_each_snapshot_stripe() {
        let input = [
            put("a", 10),
            put("a", 8),
            put("a", 6),
            put("a", 4),
            put("a", 2),
        ];
        // Stripes: (7, MAX] = {10, 8}, (5, 7] = {6}, [0, 5] = {4, 2}; order and duplicates of
        // the snapshot list do not matter.
        let (out, stats) = run(&input, &rules(&[7, 5, 7], None), false);
        assert_eq!(out, kv(&[("a", 10), ("a", 6), ("a", 4)]));
        assert_eq!(stats.versions_dropped, 2);
        assert_eq!(stats.entries_in, 5);
        assert_eq!(stats.entries_out, 3);
        let (out, _) = run(&input, &GcRules::default(), false);
        assert_eq!(out, kv(&[("a", 10)]));
    }

    #[test]
    fn a_snapshot_equal_to_a_version_ends_its_stripe() {
        let input = [put("a", 6), put("a", 5), put("a", 4)];
        let (out, _) = run(&input, &rules(&[5], None), false);
        assert_eq!(out, kv(&[("a", 6), ("a", 5)]));
    }

    #[test]
    fn bottommost_drops_trailing_tombstones_only() {
        let input = [
            del("a", 9), // shadows the put at 5 for snapshots >= 6: must stay
            put("a", 5),
            put("b", 8),
            del("b", 4), // trailing: hides nothing once bottommost
            del("c", 3), // the key's only version
            del("d", 9),
            del("d", 7),
            put("d", 3),
        ];
        let snaps = rules(&[5, 6, 8], None);
        let (out, stats) = run(&input, &snaps, true);
        assert_eq!(
            out,
            kv(&[("a", 9), ("a", 5), ("b", 8), ("d", 9), ("d", 7), ("d", 3)])
        );
        assert_eq!(stats.tombstones_dropped, 2);
        assert_eq!(stats.versions_dropped, 0);

        let (out, stats) = run(&input, &snaps, false);
        assert_eq!(out.len(), input.len());
        assert_eq!(stats.tombstones_dropped, 0);
    }

    #[test]
    fn bottommost_without_snapshots_leaves_one_put_per_live_key() {
        let input = [
            put("a", 9),
            del("a", 8),
            put("a", 7),
            del("b", 9),
            put("b", 8),
            put("c", 1),
        ];
        let (out, stats) = run(&input, &GcRules::default(), true);
        assert_eq!(out, kv(&[("a", 9), ("c", 1)]));
        assert_eq!(stats.versions_dropped, 3);
        assert_eq!(stats.tombstones_dropped, 1);
    }

    #[test]
    fn retention_keeps_every_version_from_the_bound_and_the_newest_below() {
        let input = [
            put("a", 9),
            put("a", 7),
            del("a", 5),
            put("a", 4),
            put("a", 3),
            del("b", 7),
            put("b", 3),
            put("b", 2),
            del("c", 6),
            del("c", 2),
            del("c", 1),
        ];
        let (out, stats) = run(&input, &rules(&[], Some(5)), true);
        // c@2 is the newest below the bound, but a trailing tombstone: dropped (bottommost);
        // c@6 is retained even though it is a trailing tombstone.
        assert_eq!(
            out,
            kv(&[
                ("a", 9),
                ("a", 7),
                ("a", 5),
                ("a", 4),
                ("b", 7),
                ("b", 3),
                ("c", 6),
            ])
        );
        assert_eq!(stats.versions_dropped, 3);
        assert_eq!(stats.tombstones_dropped, 1);
    }

    #[test]
    fn errors_pass_through_once_then_the_filter_fuses() {
        let input = vec![Ok(del("a", 3)), Err("boom"), Ok(put("b", 1))];
        let mut f = GcFilter::new(input.into_iter(), &GcRules::default(), true);
        assert_eq!(f.next(), Some(Err("boom")));
        assert_eq!(f.next(), None);
        assert_eq!(f.next(), None);

        let input = vec![Ok(put("a", 3)), Err("boom"), Ok(put("b", 1))];
        let mut f = GcFilter::new(input.into_iter(), &GcRules::default(), true);
        assert_eq!(f.next(), Some(Ok(put("a", 3))));
        assert_eq!(f.next(), Some(Err("boom")));
        assert_eq!(f.next(), None);
    }

    #[test]
    fn shadowed_tombstones_are_not_buffered() {
        // 10 000 tombstones of one key, one stripe: only the newest is ever pending.
        let mut input: Vec<Entry> = (1..=10_000).rev().map(|v| del("a", v)).collect();
        input.push(put("b", 1));
        let mut f = GcFilter::new(
            input.into_iter().map(Ok::<_, ()>),
            &GcRules::default(),
            true,
        );
        assert_eq!(f.next(), Some(Ok(put("b", 1))));
        assert!(
            f.pending.capacity() <= 8,
            "pending grew to {}",
            f.pending.capacity()
        );
        assert_eq!(f.next(), None);
        let stats = f.stats();
        assert_eq!(stats.versions_dropped, 9_999);
        assert_eq!(stats.tombstones_dropped, 1);
        assert_eq!(stats.entries_out, 1);
    }

    /// What a read at `at` sees of `key`: `None` for absent or deleted, else the value.
    fn read(entries: &[Entry], key: &Bytes, at: Version) -> Option<Bytes> {
        entries
            .iter()
            .find(|e| e.key == *key && e.version <= at)
            .filter(|e| e.kind == Kind::Put)
            .map(|e| e.value.clone())
    }

    /// A direct, non-streaming statement of the rules: per key, keep the first version of each
    /// stripe, then (bottommost) drop the trailing kept tombstones below the retention bound.
    fn oracle(input: &[Entry], rules: &GcRules, bottommost: bool) -> Vec<Entry> {
        let retained = |v: Version, rank: usize| {
            rules.retain_from.is_some_and(|r| v >= r)
                || (rules.keep_newest > 1 && rank < rules.keep_newest)
        };
        let stripe = |v: Version| -> (bool, u64) {
            if rules.retain_from.is_some_and(|r| v >= r) {
                return (true, v.0);
            }
            let s = rules.snapshots.iter().filter(|&&s| s >= v).min();
            (false, s.map_or(u64::MAX, |s| s.0))
        };
        let mut by_key: BTreeMap<Bytes, Vec<Entry>> = BTreeMap::new();
        for e in input {
            by_key.entry(e.key.clone()).or_default().push(e.clone());
        }
        let mut out = Vec::new();
        for (_, versions) in by_key {
            let mut seen = HashSet::new();
            let mut kept: Vec<(usize, Entry)> = versions
                .into_iter()
                .enumerate()
                .filter(|(rank, e)| {
                    let first_of_stripe = seen.insert(stripe(e.version));
                    first_of_stripe || (rules.keep_newest > 1 && *rank < rules.keep_newest)
                })
                .collect();
            while bottommost
                && kept
                    .last()
                    .is_some_and(|(rank, e)| e.kind == Kind::Delete && !retained(e.version, *rank))
            {
                kept.pop();
            }
            out.extend(kept.into_iter().map(|(_, e)| e));
        }
        out
    }

    fn arb_case() -> impl Strategy<Value = (Vec<Entry>, GcRules, bool)> {
        let rows = prop::collection::btree_map((0u8..4, 1u64..48), (any::<bool>(), 0u8..4), 0..40);
        let snapshots = prop::collection::vec(0u64..52, 0..5);
        let retain = prop::option::of(0u64..52);
        let keep = 0usize..4;
        (rows, snapshots, retain, any::<bool>(), keep).prop_map(
            |(rows, snaps, retain, bottom, keep)| {
                let mut entries: Vec<Entry> = rows
                    .into_iter()
                    .map(|((k, v), (is_put, val))| Entry {
                        key: Bytes::from(vec![b'a' + k]),
                        version: Version(v),
                        time: 0,
                        kind: if is_put { Kind::Put } else { Kind::Delete },
                        value: if is_put {
                            Bytes::from(vec![val; val as usize])
                        } else {
                            Bytes::new()
                        },
                    })
                    .collect();
                entries.sort_by(|a, b| a.internal_cmp(b));
                let mut rules = rules(&snaps, retain);
                rules.keep_newest = keep;
                (entries, rules, bottom)
            },
        )
    }

    proptest! {
        #[test]
        fn filtering_preserves_every_read_that_matters((input, rules, bottommost) in arb_case()) {
            let mut f = GcFilter::new(input.iter().cloned().map(Ok::<_, ()>), &rules, bottommost);
            let output: Vec<Entry> = f.by_ref().map(Result::unwrap).collect();
            let stats = f.stats();

            // Reads at every snapshot, at MAX and at every retained version are unchanged.
            let mut reads: Vec<Version> = rules.snapshots.clone();
            reads.push(Version::MAX);
            if let Some(r) = rules.retain_from {
                reads.push(r);
                reads.extend(input.iter().map(|e| e.version).filter(|&v| v >= r));
            }
            let keys: HashSet<Bytes> = input.iter().map(|e| e.key.clone()).collect();
            for key in &keys {
                for &at in &reads {
                    prop_assert_eq!(read(&input, key, at), read(&output, key, at),
                        "key {:?} read at {}", key, at);
                }
            }

            // Retention keeps every version from the bound, tombstones included (reads alone
            // cannot tell a trailing tombstone from nothing).
            if let Some(r) = rules.retain_from {
                let retained = |e: &&Entry| e.version >= r;
                prop_assert!(input.iter().filter(retained).eq(output.iter().filter(retained)));
            }
            // And each key's newest `keep_newest` versions stay.
            let keys_kept = if rules.keep_newest > 1 { keys.clone() } else { HashSet::new() };
            for key in &keys_kept {
                let newest = |es: &[Entry]| -> Vec<Entry> {
                    es.iter().filter(|e| e.key == *key).take(rules.keep_newest).cloned().collect()
                };
                prop_assert_eq!(newest(&input), newest(&output));
            }

            // The output is exactly what the rules say, hence a subsequence of the input in
            // internal order.
            prop_assert_eq!(&output, &oracle(&input, &rules, bottommost));
            prop_assert!(output.windows(2).all(|w| w[0].internal_cmp(&w[1]).is_lt()));
            prop_assert_eq!(stats.entries_in, input.len() as u64);
            prop_assert_eq!(stats.entries_out, output.len() as u64);
            prop_assert_eq!(
                stats.entries_in,
                stats.entries_out + stats.versions_dropped + stats.tombstones_dropped
            );
            if !bottommost {
                prop_assert_eq!(stats.tombstones_dropped, 0);
            }

            // Without snapshots or retention, a bottommost merge keeps exactly one put per
            // key whose newest version is a put.
            if rules.snapshots.is_empty()
                && rules.retain_from.is_none()
                && rules.keep_newest <= 1
                && bottommost
            {
                let mut newest: Vec<Entry> = Vec::new();
                let mut last_key: Option<Bytes> = None;
                for e in &input {
                    if last_key.as_ref() != Some(&e.key) {
                        last_key = Some(e.key.clone());
                        if e.kind == Kind::Put {
                            newest.push(e.clone());
                        }
                    }
                }
                prop_assert_eq!(output, newest);
            }
        }
    }
}
