//! K-way merge of sorted sources in internal order.
//!
//! Forward, the merge yields ascending internal order (key ascending, version descending);
//! reversed, the exact opposite. Sources are given newest first: when two sources hold the
//! same `(key, version)` (possible only when a crash left a flushed memtable's WAL behind),
//! the newest source's copy wins and the others are skipped.
//!
//! The merge fuses after the first error: it yields the error once, then `None`.
//!
//! The sources with a head sit in a binary min-heap of source indices, ordered by head and
//! then by index (so on a tie the newer source is on top). Taking the top and refilling it
//! fixes the heap in place (`sift_down` from the root, RocksDB's `replace_top`): when the
//! same source wins again, which is the common case inside a run's stretch of keys, that
//! costs one or two comparisons, and a step never compares every head.

use crate::{Entry, Source};
use std::cmp::Ordering;

type Boxed<E> = Box<dyn Iterator<Item = Result<Entry, E>> + Send>;

/// One direction of a k-way merge over boxed iterators.
pub struct Merge<E> {
    sources: Vec<Boxed<E>>,
    heads: Vec<Option<Entry>>,
    /// Indices of the sources that have a head, as a binary min-heap (see the module
    /// documentation).
    heap: Vec<usize>,
    reverse: bool,
    primed: bool,
    done: bool,
}

impl<E> Merge<E> {
    /// A forward merge (ascending internal order) of `sources`, newest source first.
    pub fn forward(sources: Vec<Source<E>>) -> Self
    where
        E: 'static,
    {
        let sources = sources.into_iter().map(|s| s as Boxed<E>).collect();
        Self::new(sources, false)
    }

    /// A reverse merge (descending internal order) of `sources`, newest source first.
    pub fn reverse(sources: Vec<Source<E>>) -> Self
    where
        E: 'static,
    {
        let sources = sources
            .into_iter()
            .map(|s| Box::new(s.rev()) as Boxed<E>)
            .collect();
        Self::new(sources, true)
    }

    fn new(sources: Vec<Boxed<E>>, reverse: bool) -> Self {
        let heads = sources.iter().map(|_| None).collect();
        Merge {
            heap: Vec::with_capacity(sources.len()),
            sources,
            heads,
            reverse,
            primed: false,
            done: false,
        }
    }

    /// True if source `a`'s head comes before source `b`'s (both have one).
    fn before(&self, a: usize, b: usize) -> bool {
        let (Some(x), Some(y)) = (&self.heads[a], &self.heads[b]) else {
            return false;
        };
        let o = x.internal_cmp(y);
        let o = if self.reverse { o.reverse() } else { o };
        o.then(a.cmp(&b)) == Ordering::Less
    }

    fn sift_down(&mut self, mut at: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut min = at;
            if l < n && self.before(self.heap[l], self.heap[min]) {
                min = l;
            }
            if r < n && self.before(self.heap[r], self.heap[min]) {
                min = r;
            }
            if min == at {
                return;
            }
            self.heap.swap(at, min);
            at = min;
        }
    }

    fn next_of(&mut self, i: usize) -> Result<Option<Entry>, E> {
        self.sources[i].next().transpose()
    }

    /// Builds the heap from every source's first entry.
    fn prime(&mut self) -> Result<(), E> {
        self.primed = true;
        for i in 0..self.sources.len() {
            self.heads[i] = self.next_of(i)?;
            if self.heads[i].is_some() {
                self.heap.push(i);
            }
        }
        for at in (0..self.heap.len() / 2).rev() {
            self.sift_down(at);
        }
        Ok(())
    }

    /// Takes the top source's head and refills it, restoring the heap.
    fn pop_top(&mut self) -> Result<Option<Entry>, E> {
        let Some(&top) = self.heap.first() else {
            return Ok(None);
        };
        let out = self.heads[top].take();
        self.heads[top] = self.next_of(top)?;
        if self.heads[top].is_none() {
            self.heap.swap_remove(0);
        }
        self.sift_down(0);
        Ok(out)
    }

    fn step(&mut self) -> Result<Option<Entry>, E> {
        if !self.primed {
            self.prime()?;
        }
        let Some(out) = self.pop_top()? else {
            return Ok(None);
        };
        // Older sources' copies of the same (key, version) are equal to `out` in order, so
        // they surface at the top right after it; drop them.
        while let Some(&top) = self.heap.first() {
            let dup =
                matches!(&self.heads[top], Some(h) if h.version == out.version && h.key == out.key);
            if !dup {
                break;
            }
            self.pop_top()?;
        }
        Ok(Some(out))
    }
}

impl<E> Iterator for Merge<E> {
    type Item = Result<Entry, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, Version};
    use bytes::Bytes;

    fn e(k: &str, v: u64) -> Entry {
        Entry {
            key: Bytes::copy_from_slice(k.as_bytes()),
            version: Version(v),
            time: 0,
            kind: Kind::Put,
            value: Bytes::new(),
        }
    }

    fn src(v: Vec<Entry>) -> Source<()> {
        Box::new(v.into_iter().map(Ok))
    }

    fn keys(m: Merge<()>) -> Vec<(String, u64)> {
        m.map(|r| r.unwrap())
            .map(|e| (String::from_utf8(e.key.to_vec()).unwrap(), e.version.0))
            .collect()
    }

    #[test]
    fn merges_in_internal_order_both_ways() {
        let mk = || {
            vec![
                src(vec![e("a", 5), e("c", 1)]),
                src(vec![e("a", 3), e("b", 2)]),
            ]
        };
        let fwd = keys(Merge::forward(mk()));
        assert_eq!(
            fwd,
            vec![
                ("a".into(), 5),
                ("a".into(), 3),
                ("b".into(), 2),
                ("c".into(), 1)
            ]
        );
        let mut rev = keys(Merge::reverse(mk()));
        rev.reverse();
        assert_eq!(rev, fwd);
    }

    #[test]
    fn duplicate_entries_are_yielded_once() {
        let m = Merge::forward(vec![src(vec![e("a", 1)]), src(vec![e("a", 1), e("b", 1)])]);
        assert_eq!(keys(m).len(), 2);
    }

    /// Entries of source `s`, carrying `s` in the value so the test can tell copies apart.
    fn tagged(rows: &[(u8, u64)], s: usize) -> Vec<Entry> {
        let mut v: Vec<Entry> = rows
            .iter()
            .map(|&(k, ver)| Entry {
                value: Bytes::from(vec![s as u8]),
                ..e(&format!("{k:03}"), ver)
            })
            .collect();
        v.sort_by(|a, b| a.internal_cmp(b));
        v.dedup_by(|a, b| a.key == b.key && a.version == b.version);
        v
    }

    fn tagged_keys(m: Merge<()>) -> Vec<(Bytes, u64, u8)> {
        m.map(|r| r.unwrap())
            .map(|e| (e.key, e.version.0, e.value[0]))
            .collect()
    }

    proptest::proptest! {
        /// Both directions agree with a model: every (key, version) once, in internal
        /// order, the copy of the newest (first) source that holds it.
        #[test]
        fn matches_a_sorted_model(
            raw in proptest::collection::vec(
                proptest::collection::vec((0u8..12, 0u64..6), 0..30), 0..6),
        ) {
            let sources: Vec<Vec<Entry>> =
                raw.iter().enumerate().map(|(s, r)| tagged(r, s)).collect();
            let mut model: Vec<(Bytes, u64, u8)> = Vec::new();
            let mut all: Vec<(usize, Entry)> = sources
                .iter()
                .enumerate()
                .flat_map(|(s, v)| v.iter().map(move |e| (s, e.clone())))
                .collect();
            all.sort_by(|(sa, a), (sb, b)| a.internal_cmp(b).then(sa.cmp(sb)));
            for (_, e) in all {
                if model.last().is_none_or(|(k, v, _)| *k != e.key || *v != e.version.0) {
                    model.push((e.key.clone(), e.version.0, e.value[0]));
                }
            }
            let boxed = || sources.iter().map(|v| src(v.clone())).collect::<Vec<_>>();
            proptest::prop_assert_eq!(&tagged_keys(Merge::forward(boxed())), &model);
            let mut rev = tagged_keys(Merge::reverse(boxed()));
            rev.reverse();
            proptest::prop_assert_eq!(&rev, &model);
        }
    }

    #[test]
    fn an_error_while_refilling_ends_the_merge() {
        let bad: Source<()> = Box::new(vec![Ok(e("a", 1)), Ok(e("c", 1)), Err(())].into_iter());
        let good = src(vec![e("b", 1), e("d", 1)]);
        let got: Vec<Result<Entry, ()>> = Merge::forward(vec![bad, good]).collect();
        // "a", "b" then the error from refilling after "c"; nothing after it.
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1].as_ref().unwrap().key, Bytes::from_static(b"b"));
        assert!(got[2].is_err());
    }

    #[test]
    fn fuses_after_error() {
        let bad: Source<()> = Box::new(vec![Ok(e("a", 1)), Err(())].into_iter());
        let mut m = Merge::forward(vec![bad]);
        assert!(m.next().unwrap().is_err());
        assert!(m.next().is_none());
    }
}
