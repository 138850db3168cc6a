//! The visibility rule and the double-ended scan.
//!
//! At snapshot `s`, a key's value is its newest entry with `version <= s`; if that entry is
//! a tombstone the key is absent. [`Scan`] applies the rule to a merge of sources and can be
//! consumed from both ends: the front and the back each run their own merge (built lazily
//! from the [`SourceFactory`]) and stop where the other has already been, so no key is
//! yielded twice. An error is yielded once and ends the scan in both directions.

use crate::merge::Merge;
use crate::{Entry, Kind, Source, Version};
use bytes::Bytes;

/// Opens fresh sources over the scan's range (newest source first). Called at most once per
/// direction.
pub trait SourceFactory<E>: Send {
    /// Opens the sources.
    fn open(&self) -> Result<Vec<Source<E>>, E>;
}

impl<E, F> SourceFactory<E> for F
where
    F: Fn() -> Result<Vec<Source<E>>, E> + Send,
{
    fn open(&self) -> Result<Vec<Source<E>>, E> {
        self()
    }
}

/// The visible entries of some sources at a snapshot, in key order (forward only): for each
/// key its newest entry `<=` the snapshot, unless that is a tombstone. Unlike [`Scan`] it
/// yields whole entries, so a reader also learns each value's version and commit time.
pub struct VisibleEntries<E> {
    merge: Merge<E>,
    snapshot: Version,
    last_key: Option<Bytes>,
}

impl<E: 'static> VisibleEntries<E> {
    /// The visible entries of `sources` (newest source first) at `snapshot`.
    pub fn new(sources: Vec<Source<E>>, snapshot: Version) -> Self {
        VisibleEntries {
            merge: Merge::forward(sources),
            snapshot,
            last_key: None,
        }
    }
}

impl<E> Iterator for VisibleEntries<E> {
    type Item = Result<Entry, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let e = match self.merge.next()? {
                Ok(e) => e,
                Err(err) => return Some(Err(err)),
            };
            if e.version > self.snapshot || self.last_key.as_ref() == Some(&e.key) {
                continue;
            }
            self.last_key = Some(e.key.clone());
            if e.kind == Kind::Put {
                return Some(Ok(e));
            }
        }
    }
}

/// Forward application of the visibility rule to an ascending merge.
struct Forward<E> {
    entries: VisibleEntries<E>,
}

impl<E> Forward<E> {
    fn next(&mut self) -> Option<Result<(Bytes, Bytes), E>> {
        Some(self.entries.next()?.map(|e| (e.key, e.value)))
    }
}

/// Backward application of the visibility rule to a descending merge, where a key's
/// versions arrive oldest first: the candidate is replaced until the key changes.
struct Backward<E> {
    merge: Merge<E>,
    snapshot: Version,
    current: Option<Bytes>,
    candidate: Option<Entry>,
    finished: bool,
}

impl<E> Backward<E> {
    fn next(&mut self) -> Option<Result<(Bytes, Bytes), E>> {
        loop {
            if self.finished {
                return None;
            }
            let next = match self.merge.next() {
                Some(Ok(e)) => Some(e),
                Some(Err(err)) => return Some(Err(err)),
                None => None,
            };
            let out = match next {
                None => {
                    self.finished = true;
                    self.candidate.take()
                }
                Some(e) => {
                    let out = if self.current.as_ref() != Some(&e.key) {
                        self.current = Some(e.key.clone());
                        self.candidate.take()
                    } else {
                        None
                    };
                    if e.version <= self.snapshot {
                        self.candidate = Some(e);
                    }
                    out
                }
            };
            if let Some(o) = out {
                if o.kind == Kind::Put {
                    return Some(Ok((o.key, o.value)));
                }
            }
        }
    }
}

/// The visible `(key, value)` pairs of some sources at a snapshot, in key order, from both
/// ends. See the module documentation.
pub struct Scan<E> {
    factory: Box<dyn SourceFactory<E>>,
    snapshot: Version,
    front: Option<Forward<E>>,
    back: Option<Backward<E>>,
    front_last: Option<Bytes>,
    back_last: Option<Bytes>,
    done: bool,
}

impl<E: 'static> Scan<E> {
    /// A scan at `snapshot` over the sources `factory` opens.
    pub fn new(factory: Box<dyn SourceFactory<E>>, snapshot: Version) -> Self {
        Scan {
            factory,
            snapshot,
            front: None,
            back: None,
            front_last: None,
            back_last: None,
            done: false,
        }
    }

    fn finish<T>(&mut self, item: Option<Result<T, E>>) -> Option<Result<T, E>> {
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

impl<E: 'static> Iterator for Scan<E> {
    type Item = Result<(Bytes, Bytes), E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.front.is_none() {
            match self.factory.open() {
                Ok(s) => {
                    self.front = Some(Forward {
                        entries: VisibleEntries::new(s, self.snapshot),
                    });
                }
                Err(e) => return self.finish(Some(Err(e))),
            }
        }
        let item = self.front.as_mut().and_then(Forward::next);
        if let Some(Ok((k, _))) = &item {
            if self.back_last.as_ref().is_some_and(|b| k >= b) {
                return self.finish(None);
            }
            self.front_last = Some(k.clone());
        }
        self.finish(item)
    }
}

impl<E: 'static> DoubleEndedIterator for Scan<E> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.back.is_none() {
            match self.factory.open() {
                Ok(s) => {
                    self.back = Some(Backward {
                        merge: Merge::reverse(s),
                        snapshot: self.snapshot,
                        current: None,
                        candidate: None,
                        finished: false,
                    })
                }
                Err(e) => return self.finish(Some(Err(e))),
            }
        }
        let item = self.back.as_mut().and_then(Backward::next);
        if let Some(Ok((k, _))) = &item {
            if self.front_last.as_ref().is_some_and(|f| k <= f) {
                return self.finish(None);
            }
            self.back_last = Some(k.clone());
        }
        self.finish(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Raw = (u8, u64, bool, u8); // key, version, is_put, value

    fn to_entry(&(k, v, put, val): &Raw) -> Entry {
        Entry {
            key: Bytes::from(vec![k]),
            version: Version(v),
            time: 0,
            kind: if put { Kind::Put } else { Kind::Delete },
            value: if put {
                Bytes::from(vec![val])
            } else {
                Bytes::new()
            },
        }
    }

    fn scan_of(sources: Vec<Vec<Entry>>, snap: u64) -> Scan<()> {
        let factory = move || -> Result<Vec<Source<()>>, ()> {
            Ok(sources
                .iter()
                .map(|s| Box::new(s.clone().into_iter().map(Ok)) as Source<()>)
                .collect())
        };
        Scan::new(Box::new(factory), Version(snap))
    }

    proptest! {
        /// Forward, backward and interleaved consumption agree with a model that applies the
        /// visibility rule to a map.
        #[test]
        fn scan_matches_model(raw in proptest::collection::vec((0u8..8, 1u64..40, any::<bool>(), any::<u8>()), 0..60),
                              nsrc in 1usize..4, snap in 0u64..45, pattern in proptest::collection::vec(any::<bool>(), 0..40)) {
            // Unique versions, spread over sources.
            let mut seen = std::collections::HashSet::new();
            let raw: Vec<Raw> = raw.into_iter().filter(|r| seen.insert(r.1)).collect();
            let mut sources = vec![Vec::new(); nsrc];
            for (i, r) in raw.iter().enumerate() { sources[i % nsrc].push(to_entry(r)); }
            for s in &mut sources { s.sort_by(|a, b| a.internal_cmp(b)); }
            let mut model: BTreeMap<u8, (u64, Option<u8>)> = BTreeMap::new();
            for &(k, v, put, val) in &raw {
                if v <= snap && model.get(&k).is_none_or(|(mv, _)| *mv < v) {
                    model.insert(k, (v, put.then_some(val)));
                }
            }
            let expect: Vec<(u8, u8)> = model.into_iter().filter_map(|(k, (_, v))| v.map(|v| (k, v))).collect();
            let fwd: Vec<(u8, u8)> = scan_of(sources.clone(), snap).map(|r| { let (k, v) = r.unwrap(); (k[0], v[0]) }).collect();
            prop_assert_eq!(&fwd, &expect);
            let mut bwd: Vec<(u8, u8)> = scan_of(sources.clone(), snap).rev().map(|r| { let (k, v) = r.unwrap(); (k[0], v[0]) }).collect();
            bwd.reverse();
            prop_assert_eq!(&bwd, &expect);
            // Interleaved: front and back meet without duplicates or gaps.
            let mut scan = scan_of(sources, snap);
            let (mut front, mut back) = (Vec::new(), Vec::new());
            let mut i = 0;
            loop {
                let from_front = pattern.get(i).copied().unwrap_or(true);
                i += 1;
                let item = if from_front { scan.next() } else { scan.next_back() };
                match item {
                    Some(r) => { let (k, v) = r.unwrap(); if from_front { front.push((k[0], v[0])) } else { back.push((k[0], v[0])) } }
                    None => break,
                }
            }
            back.reverse();
            front.extend(back);
            prop_assert_eq!(front, expect);
        }
    }

    #[test]
    fn factory_error_is_yielded_once() {
        let mut scan: Scan<&str> = Scan::new(Box::new(|| Err("boom")), Version::MAX);
        assert_eq!(scan.next().unwrap().unwrap_err(), "boom");
        assert!(scan.next().is_none());
        assert!(scan.next_back().is_none());
    }
}
