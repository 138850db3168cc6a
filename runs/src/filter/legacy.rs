//! Format 2 runs' filter: the `bloomfilter` crate's standard bloom filter, read (never
//! written) so that stores written before format 3 keep their fast misses.
//!
//! The k bit positions of a fingerprint come from two SipHash-1-3 hashes keyed by the
//! filter's seed, combined by double hashing. Every run chronokv wrote used the same seed
//! (`BLOOM_SEED`), so a point read that consults several runs computes the two hashes once
//! ([`KeyHash::legacy`]) and tests each run's bits with them. A filter with any other seed is
//! asked through the crate. The bit positions are the crate's, computed the crate's way; a
//! test checks the two agree on every answer.

use super::KeyHash;
use bloomfilter::reexports::siphasher::sip::SipHasher13;
use bloomfilter::Bloom;
use std::hash::{Hash, Hasher};

/// Seed of the SipHash keys of every format 2 filter chronokv wrote.
pub(crate) const BLOOM_SEED: [u8; 32] = *b"chronokv-run-bloom-seed-v1-00000";
/// Header bytes before the bitmap in the crate's serialized form (version, length, k, seed).
const HEADER: usize = 45;
/// The modulus of the crate's double hashing (the largest prime below 2^64).
const PRIME: u64 = 0xFFFF_FFFF_FFFF_FFC5;

/// The two SipHash-1-3 hashes of a fingerprint under [`BLOOM_SEED`], as the crate hashes an
/// item (through `Hash`, so the bytes fed are the same).
pub(crate) fn seeded_hashes(fingerprint: u64) -> [u64; 2] {
    let sip = |seed: &[u8]| {
        let mut key = [0u8; 16];
        key.copy_from_slice(seed);
        let mut h = SipHasher13::new_with_key(&key);
        fingerprint.hash(&mut h);
        h.finish()
    };
    [sip(&BLOOM_SEED[..16]), sip(&BLOOM_SEED[16..])]
}

/// A format 2 run's filter.
#[derive(Debug)]
pub struct LegacyBloom {
    bloom: Bloom<u64>,
    /// Hash functions, when the filter uses [`BLOOM_SEED`] (the shared hashes apply).
    shared_k: Option<u32>,
}

impl LegacyBloom {
    /// Parses the crate's serialized form.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        // Guard the crate against values it would divide by or loop on.
        if bytes.len() <= HEADER || u32::from_le_bytes(bytes[9..13].try_into().expect("4")) > 64 {
            return Err("bloom filter header out of range".into());
        }
        let bloom = Bloom::from_slice(bytes).map_err(|e| format!("bloom filter: {e}"))?;
        Ok(Self::new(bloom))
    }

    fn new(bloom: Bloom<u64>) -> Self {
        let bytes = bloom.as_slice();
        let shared = bytes.len() > HEADER && bytes[13..HEADER] == BLOOM_SEED;
        LegacyBloom {
            shared_k: shared.then(|| bloom.number_of_hash_functions()),
            bloom,
        }
    }

    /// The serialized form.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.bloom.as_slice()
    }

    /// The crate's `bloom.check(fingerprint)`, with the hashes taken from `h`.
    pub(crate) fn may_contain(&self, h: &KeyHash) -> bool {
        let Some(k) = self.shared_k else {
            return self.bloom.check(&h.fingerprint());
        };
        let bitmap = &self.bloom.as_slice()[HEADER..];
        let bits = self.bloom.len();
        let [h0, h1] = h.legacy();
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

    /// `may_contain` for a bare fingerprint (verify's check of every key).
    pub(crate) fn contains_fingerprint(&self, fp: u64) -> bool {
        self.bloom.check(&fp)
    }

    /// The number of hash functions.
    pub(crate) fn probes(&self) -> u32 {
        self.bloom.number_of_hash_functions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::fingerprint;

    /// A format 2 filter as the writer built it.
    fn build_bloom(fps: &[u64], fp_rate: f64) -> Bloom<u64> {
        let mut bloom =
            Bloom::new_for_fp_rate_with_seed(fps.len().max(1), fp_rate, &BLOOM_SEED).unwrap();
        for f in fps {
            bloom.set(f);
        }
        bloom
    }

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
            let filter = LegacyBloom::new(build_bloom(&fps, fp));
            assert!(filter.shared_k.is_some());
            let (mut yes, mut no) = (0, 0);
            for i in 0..20_000usize {
                let key = format!("key{:06}", i % (2 * n + 50)).into_bytes();
                let want = filter.bloom.check(&fingerprint(&key));
                assert_eq!(
                    filter.may_contain(&KeyHash::new(&key)),
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
        let filter = LegacyBloom::new(bloom);
        assert!(filter.shared_k.is_none());
        for i in 0..1000u64 {
            let key = i.to_le_bytes();
            let want = filter.bloom.check(&fingerprint(&key));
            assert_eq!(filter.may_contain(&KeyHash::new(&key)), want);
        }
    }
}
