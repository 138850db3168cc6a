//! K-way merge of sorted sources in internal order.
//!
//! Forward, the merge yields ascending internal order (key ascending, version descending);
//! reversed, the exact opposite. Sources are given newest first: when two sources hold the
//! same `(key, version)` (possible only when a crash left a flushed memtable's WAL behind),
//! the newest source's copy wins and the others are skipped.
//!
//! The merge fuses after the first error: it yields the error once, then `None`.
//! Source counts are small (memtables plus level-0 runs), so heads are compared linearly.

use crate::{Entry, Source};
use std::cmp::Ordering;

/// One direction of a k-way merge over boxed iterators.
pub struct Merge<E> {
    sources: Vec<Box<dyn Iterator<Item = Result<Entry, E>> + Send>>,
    heads: Vec<Option<Entry>>,
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
        let sources = sources
            .into_iter()
            .map(|s| s as Box<dyn Iterator<Item = Result<Entry, E>> + Send>)
            .collect();
        Self::new(sources, false)
    }

    /// A reverse merge (descending internal order) of `sources`, newest source first.
    pub fn reverse(sources: Vec<Source<E>>) -> Self
    where
        E: 'static,
    {
        let sources = sources
            .into_iter()
            .map(|s| Box::new(s.rev()) as Box<dyn Iterator<Item = Result<Entry, E>> + Send>)
            .collect();
        Self::new(sources, true)
    }

    fn new(sources: Vec<Box<dyn Iterator<Item = Result<Entry, E>> + Send>>, reverse: bool) -> Self {
        let heads = sources.iter().map(|_| None).collect();
        Merge {
            sources,
            heads,
            reverse,
            primed: false,
            done: false,
        }
    }

    fn order(&self, a: &Entry, b: &Entry) -> Ordering {
        let o = a.internal_cmp(b);
        if self.reverse {
            o.reverse()
        } else {
            o
        }
    }

    fn refill(&mut self, i: usize) -> Result<(), E> {
        self.heads[i] = match self.sources[i].next() {
            Some(Ok(e)) => Some(e),
            Some(Err(e)) => return Err(e),
            None => None,
        };
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>, E> {
        if !self.primed {
            self.primed = true;
            for i in 0..self.sources.len() {
                self.refill(i)?;
            }
        }
        let mut best: Option<usize> = None;
        for (i, head) in self.heads.iter().enumerate() {
            if let Some(h) = head {
                let better = match best.and_then(|b| self.heads[b].as_ref()) {
                    None => true,
                    // Strictly less: on a tie the earlier (newer) source stays best.
                    Some(cur) => self.order(h, cur) == Ordering::Less,
                };
                if better {
                    best = Some(i);
                }
            }
        }
        let Some(b) = best else { return Ok(None) };
        let out = self.heads[b].take();
        self.refill(b)?;
        if let Some(out) = &out {
            // Drop duplicates of the same (key, version) held by older sources.
            for i in 0..self.heads.len() {
                let dup = matches!(&self.heads[i], Some(h) if h.key == out.key && h.version == out.version);
                if dup {
                    self.refill(i)?;
                }
            }
        }
        Ok(out)
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

    #[test]
    fn fuses_after_error() {
        let bad: Source<()> = Box::new(vec![Ok(e("a", 1)), Err(())].into_iter());
        let mut m = Merge::forward(vec![bad]);
        assert!(m.next().unwrap().is_err());
        assert!(m.next().is_none());
    }
}
