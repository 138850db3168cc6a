//! Order-preserving 8-byte key words for the binary searches of point reads and seeks.
//!
//! Sorted keys between a first and a last key all share the first and last key's common
//! prefix `P`. After `P`, the next 8 bytes of a key (zero-padded, read big-endian) form a
//! `u64` that never decreases as the keys increase. A search compares these words, which
//! sit in one contiguous array, and compares whole keys only where the words are equal.
//! Nothing here is stored on disk: a run builds the words of its blocks' last keys once,
//! at open, for the block-index search of every point read and seek. Blocks do not: a
//! block decode is the cache-miss path, and at the runner's scale a block is searched
//! about once per stay in the cache, so building its words cost more than it saved.

use std::cmp::Ordering;

/// The words of a sorted sequence of keys.
#[derive(Debug, Default)]
pub(crate) struct KeyWords {
    /// The common prefix of every key.
    common: Box<[u8]>,
    words: Vec<u64>,
}

/// Where a probe key falls against a [`KeyWords`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Before every key (it does not start with the common prefix, and sorts lower).
    Before,
    /// After every key.
    After,
    /// Starts with the common prefix; its word.
    Word(u64),
}

/// The (zero-padded, big-endian) word of the 8 bytes after `skip` bytes of `key`.
fn word_at(key: &[u8], skip: usize) -> u64 {
    let rest = key.get(skip..).unwrap_or_default();
    // The common case, 8 bytes or more left: one load (a block decode builds a word per
    // row, so this is on the cache-miss path).
    if let Some(word) = rest.first_chunk::<8>() {
        return u64::from_be_bytes(*word);
    }
    // Fewer: byte by byte (a copy of a variable length would be a memcpy call).
    let mut word = 0u64;
    for (i, &b) in rest.iter().enumerate() {
        word |= u64::from(b) << (56 - 8 * i);
    }
    word
}

impl KeyWords {
    /// The words of `keys`, which must be sorted ascending from `first` to `last`.
    pub(crate) fn new<'a>(first: &[u8], last: &[u8], keys: impl Iterator<Item = &'a [u8]>) -> Self {
        let common: Box<[u8]> = first[..common_len(first, last)].into();
        let skip = common.len();
        KeyWords {
            words: keys.map(|k| word_at(k, skip)).collect(),
            common,
        }
    }

    /// Where `key` falls.
    pub(crate) fn probe(&self, key: &[u8]) -> Probe {
        probe_in(&self.common, key)
    }

    /// The first index `i` whose key is not "before" the probe, where `before(i)` is the
    /// caller's exact test on whole keys, asked only when key `i`'s word equals the probe's.
    /// Any `before` that is true for keys less than the probe key and false for greater
    /// ones (e.g. `<` or `<=`, or internal order with a version) gives the same answer as
    /// a plain binary search with it.
    pub(crate) fn partition(&self, probe: Probe, before: impl FnMut(usize) -> bool) -> usize {
        partition_words(self.words.len(), probe, |i| self.words[i], before)
    }
}

/// Where `key` falls against keys that all start with `common`.
fn probe_in(common: &[u8], key: &[u8]) -> Probe {
    let m = key.len().min(common.len());
    match key[..m].cmp(&common[..m]) {
        Ordering::Less => Probe::Before,
        Ordering::Greater => Probe::After,
        // A proper prefix of the common prefix sorts before every key.
        Ordering::Equal if key.len() < common.len() => Probe::Before,
        Ordering::Equal => Probe::Word(word_at(key, common.len())),
    }
}

/// The binary search behind both `partition`s, over `n` keys whose words `word` gives.
fn partition_words(
    n: usize,
    probe: Probe,
    word: impl Fn(usize) -> u64,
    mut before: impl FnMut(usize) -> bool,
) -> usize {
    let w = match probe {
        Probe::Before => return 0,
        Probe::After => return n,
        Probe::Word(w) => w,
    };
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let is_before = match word(mid).cmp(&w) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => before(mid),
        };
        if is_before {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The length of the common prefix of `a` and `b`.
fn common_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word search agrees with a plain binary search, for `<` and `<=`, on keys
        /// that share long prefixes, are prefixes of each other, or are empty.
        #[test]
        fn agrees_with_plain_binary_search(
            mut keys in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..14), 1..60),
            probe in proptest::collection::vec(0u8..4, 0..14),
            shared in proptest::collection::vec(0u8..4, 0..10),
        ) {
            for k in &mut keys {
                k.splice(0..0, shared.iter().copied());
            }
            keys.sort();
            let probes = [probe.clone(), [shared.clone(), probe].concat()];
            let words = KeyWords::new(&keys[0], &keys[keys.len() - 1], keys.iter().map(|k| &k[..]));
            for p in &probes {
                let lt = keys.partition_point(|k| k < p);
                let le = keys.partition_point(|k| k <= p);
                prop_assert_eq!(words.partition(words.probe(p), |i| keys[i] < *p), lt);
                prop_assert_eq!(words.partition(words.probe(p), |i| keys[i] <= *p), le);
            }
        }
    }

    #[test]
    fn words_skip_the_common_prefix() {
        let keys: [&[u8]; 3] = [
            b"k000000000123450",
            b"k000000000123460",
            b"k000000000125000",
        ];
        let w = KeyWords::new(keys[0], keys[2], keys.iter().copied());
        assert_eq!(&*w.common, b"k00000000012");
        assert_eq!(w.probe(b"k00000000011"), Probe::Before);
        assert_eq!(w.probe(b"k00"), Probe::Before);
        assert_eq!(w.probe(b"k1"), Probe::After);
        assert_eq!(
            w.probe(b"k000000000123460"),
            Probe::Word(u64::from_be_bytes(*b"3460\0\0\0\0"))
        );
    }
}
