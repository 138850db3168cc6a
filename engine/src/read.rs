//! Reading ranges: the public scan iterator and the key-bound helpers that `Db`,
//! `Snapshot`, `Transaction` and the Arrow export share. Depends only on the read view.

use crate::error::{Error, Result};
use crate::view::View;
use bytes::Bytes;
use chronokv_snapshot::{Scan, Source, Version};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// A double-ended iterator over `(key, value)` pairs in key order, as of the moment it was
/// created. An error is yielded once and ends the iteration.
pub struct Iter {
    scan: Scan<Error>,
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.scan.next()
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.scan.next_back()
    }
}

fn owned_bound<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k.as_ref())),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k.as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The owned bounds of a key range.
pub(crate) fn owned_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(
    range: &R,
) -> (Bound<Bytes>, Bound<Bytes>) {
    (
        owned_bound(range.start_bound()),
        owned_bound(range.end_bound()),
    )
}

/// The bounds of the keys starting with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Bytes>, Bound<Bytes>) {
    let hi = match prefix_successor(prefix) {
        Some(end) => Bound::Excluded(Bytes::from(end)),
        None => Bound::Unbounded,
    };
    (Bound::Included(Bytes::copy_from_slice(prefix)), hi)
}

/// A scan of `view` at `version` over `lo..hi`. The scan holds the view (and so its runs'
/// files) for its whole life.
pub(crate) fn range_iter(
    view: Arc<View>,
    version: Version,
    lo: Bound<Bytes>,
    hi: Bound<Bytes>,
) -> Iter {
    let empty = is_empty_range(&lo, &hi);
    let factory = move || -> Result<Vec<Source<Error>>> {
        if empty {
            return Ok(Vec::new());
        }
        Ok(view.sources_at(&lo, &hi, Some(version)))
    };
    Iter {
        scan: Scan::new(Box::new(factory), version),
    }
}

/// True when no key can lie within the bounds (so sources are never asked for an inverted
/// range).
pub(crate) fn is_empty_range(lo: &Bound<Bytes>, hi: &Bound<Bytes>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_handles_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn inverted_ranges_are_empty() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert!(is_empty_range(
            &Bound::Included(b("b")),
            &Bound::Included(b("a"))
        ));
        assert!(is_empty_range(
            &Bound::Included(b("a")),
            &Bound::Excluded(b("a"))
        ));
        assert!(!is_empty_range(
            &Bound::Included(b("a")),
            &Bound::Included(b("a"))
        ));
        assert!(!is_empty_range(&Bound::Unbounded, &Bound::Excluded(b("a"))));
    }
}
