//! Bloom filter probes that hash a key once per lookup, not once per run.
//!
//! A run's filter is the `bloomfilter` crate's (see `docs/format/run.md`): the k bit
//! positions of a fingerprint come from two SipHash-1-3 hashes keyed by the filter's seed,
//! combined by double hashing. Every run chronokv writes uses the same seed
//! (`index::BLOOM_SEED`), so a point read that consults several runs can compute the two
//! hashes once ([`KeyHash`]) and test each run's bits with them ([`Filter`]). A filter with
//! any other seed is asked through the crate as before. The bit positions are the crate's,
//! computed the crate's way; a test checks the two agree on every answer.

use crate::index::{fingerprint, BLOOM_SEED};
use bloomfilter::reexports::siphasher::sip::SipHasher13;
use bloomfilter::Bloom;
use std::hash::{Hash, Hasher};

/// Header bytes before the bitmap in the crate's serialized form (version, length, k, seed).
const HEADER: usize = 45;
/// The modulus of the crate's double hashing (the largest prime below 2^64).
const PRIME: u64 = 0xFFFF_FFFF_FFFF_FFC5;

/// A key's fingerprint and its two bloom hashes under the writer's seed.
#[derive(Debug, Clone, Copy)]
pub struct KeyHash {
    fingerprint: u64,
    hashes: [u64; 2],
}

impl KeyHash {
    /// Hashes `key` (a fingerprint and two SipHash-1-3 runs).
    pub fn new(key: &[u8]) -> Self {
        let fingerprint = fingerprint(key);
        let sip = |seed: &[u8]| {
            let mut key = [0u8; 16];
            key.copy_from_slice(seed);
            let mut h = SipHasher13::new_with_key(&key);
            // As the crate hashes an item: through `Hash`, so the bytes fed are the same.
            fingerprint.hash(&mut h);
            h.finish()
        };
        KeyHash {
            fingerprint,
            hashes: [sip(&BLOOM_SEED[..16]), sip(&BLOOM_SEED[16..])],
        }
    }
}

/// How one run's filter is probed.
#[derive(Debug)]
pub(crate) struct Filter {
    /// Hash functions, when the filter uses the writer's seed (the shared hashes apply).
    shared_k: Option<u32>,
}

impl Filter {
    pub(crate) fn new(bloom: &Bloom<u64>) -> Self {
        let bytes = bloom.as_slice();
        let shared = bytes.len() > HEADER && bytes[13..HEADER] == BLOOM_SEED;
        Filter {
            shared_k: shared.then(|| bloom.number_of_hash_functions()),
        }
    }

    /// The crate's `bloom.check(fingerprint)`, with the hashes taken from `h`.
    pub(crate) fn check(&self, bloom: &Bloom<u64>, h: &KeyHash) -> bool {
        let Some(k) = self.shared_k else {
            return bloom.check(&h.fingerprint);
        };
        let bitmap = &bloom.as_slice()[HEADER..];
        let bits = bloom.len();
        let [h0, h1] = h.hashes;
        (0..k).all(|i| {
            let hash = match i {
                0 => h0,
                1 => h1,
                _ => h0.wrapping_add(u64::from(i).wrapping_mul(h1)) % PRIME,
            };
            let bit = hash % bits;
            bitmap
                .get((bit / 8) as usize)
                .is_none_or(|byte| byte & (1 << (bit % 8)) != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::build_bloom;

    #[test]
    fn shared_hashes_answer_exactly_as_the_crate() {
        for (n, fp) in [
            (1usize, 0.01),
            (37, 0.01),
            (1000, 0.01),
            (5000, 0.1),
            (300, 0.0001),
        ] {
            let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key{i:06}").into_bytes()).collect();
            let fps: Vec<u64> = keys.iter().map(|k| fingerprint(k)).collect();
            let bloom = build_bloom(&fps, fp).unwrap();
            let filter = Filter::new(&bloom);
            assert!(filter.shared_k.is_some());
            let (mut yes, mut no) = (0, 0);
            for i in 0..20_000usize {
                let key = format!("key{:06}", i % (2 * n + 50)).into_bytes();
                let want = bloom.check(&fingerprint(&key));
                assert_eq!(
                    filter.check(&bloom, &KeyHash::new(&key)),
                    want,
                    "{n} {fp} {i}"
                );
                if want {
                    yes += 1;
                } else {
                    no += 1;
                }
            }
            // Both answers were exercised (present keys, and most absent ones).
            assert!(yes > 0 && no > 0, "{n} {fp}: {yes} / {no}");
        }
    }

    #[test]
    fn a_filter_with_another_seed_is_asked_through_the_crate() {
        let mut bloom = Bloom::new_for_fp_rate_with_seed(100, 0.01, &[7u8; 32]).unwrap();
        for i in 0..100u64 {
            bloom.set(&fingerprint(&i.to_le_bytes()));
        }
        let filter = Filter::new(&bloom);
        assert!(filter.shared_k.is_none());
        for i in 0..1000u64 {
            let key = i.to_le_bytes();
            let want = bloom.check(&fingerprint(&key));
            assert_eq!(filter.check(&bloom, &KeyHash::new(&key)), want);
        }
    }
}
