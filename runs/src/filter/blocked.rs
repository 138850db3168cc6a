//! A blocked (cache-local) bloom filter: every key's bits lie in one 64-byte block, so a
//! probe touches one cache line where a standard filter touches up to k (RocksDB's
//! `FastLocalBloom` design, format_version 5, and Pebble's filter).
//!
//! The filter is built from and probed with a key's 64-bit fingerprint
//! (`index::fingerprint`), never the key: the low 32 bits choose the block by a multiply
//! and shift (no division), the high 32 bits give the k bit positions inside it, each the
//! top 9 bits of the running product `h = h * 0x9e37_79b9`. Serialized form (all
//! little-endian, `docs/format/run.md`): `u32 kind (1) | u32 probes | u64 blocks | blocks ×
//! 64 bytes`, each block eight u64 words, bit `b` of a block being bit `b % 64` of word
//! `b / 64`.

/// The `kind` of the serialized form.
pub(crate) const KIND_BLOCKED_512: u32 = 1;
/// Bytes before the blocks.
pub(crate) const HEADER: usize = 16;
/// Bits in one block (one cache line).
const BLOCK_BITS: u32 = 512;
/// The multiplier that derives each probe from the previous one (the golden ratio, 32 bits).
const PROBE_MUL: u32 = 0x9e37_79b9;
/// Most probes a filter may have (a 1e-6 target needs 28).
pub(crate) const MAX_PROBES: u32 = 30;
/// Most bits per key a filter is given, whatever its target.
const MAX_BITS_PER_KEY: f64 = 64.0;

/// One cache line of bits, aligned so that it is one line in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(64))]
struct Block([u64; 8]);

/// A blocked bloom filter over key fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedBloom {
    blocks: Vec<Block>,
    probes: u32,
}

impl BlockedBloom {
    /// A filter for `fingerprints` (distinct or not) at about `fp_rate` false positives.
    pub fn build(fingerprints: &[u64], fp_rate: f64) -> Result<Self, String> {
        if !(fp_rate > 0.0 && fp_rate < 1.0) {
            return Err(format!("bloom false-positive rate {fp_rate} not in (0, 1)"));
        }
        let (bits_per_key, probes) = sizing(fp_rate);
        let keys = fingerprints.len().max(1) as f64;
        let blocks = (keys * bits_per_key / f64::from(BLOCK_BITS))
            .ceil()
            .max(1.0);
        if blocks > f64::from(u32::MAX) {
            return Err(format!("bloom filter of {blocks} blocks is too large"));
        }
        let mut filter = BlockedBloom {
            blocks: vec![Block::default(); blocks as usize],
            probes,
        };
        for &fp in fingerprints {
            filter.insert(fp);
        }
        Ok(filter)
    }

    /// False only if no fingerprint `fp` was inserted.
    #[inline]
    pub fn may_contain(&self, fp: u64) -> bool {
        let block = &self.blocks[self.block_of(fp)].0;
        let mut h = (fp >> 32) as u32;
        for _ in 0..self.probes {
            let bit = h >> (32 - 9);
            if block[(bit / 64) as usize] & (1 << (bit % 64)) == 0 {
                return false;
            }
            h = h.wrapping_mul(PROBE_MUL);
        }
        true
    }

    fn insert(&mut self, fp: u64) {
        let at = self.block_of(fp);
        let block = &mut self.blocks[at].0;
        let mut h = (fp >> 32) as u32;
        for _ in 0..self.probes {
            let bit = h >> (32 - 9);
            block[(bit / 64) as usize] |= 1 << (bit % 64);
            h = h.wrapping_mul(PROBE_MUL);
        }
    }

    /// The block of `fp`: `(low32 * blocks) >> 32`, uniform over the blocks without a
    /// division (Lemire's fast range reduction).
    #[inline]
    fn block_of(&self, fp: u64) -> usize {
        ((u64::from(fp as u32) * self.blocks.len() as u64) >> 32) as usize
    }

    /// The number of probes (bits set per key).
    pub fn probes(&self) -> u32 {
        self.probes
    }

    /// The size of the bit array in bytes.
    pub fn bitmap_len(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<Block>()
    }

    /// The serialized form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.bitmap_len());
        out.extend_from_slice(&KIND_BLOCKED_512.to_le_bytes());
        out.extend_from_slice(&self.probes.to_le_bytes());
        out.extend_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        for block in &self.blocks {
            for word in block.0 {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out
    }

    /// Parses the serialized form; every field is checked, so any bytes give an error or
    /// a filter, never a panic.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < HEADER {
            return Err("bloom filter shorter than its header".into());
        }
        let kind = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
        if kind != KIND_BLOCKED_512 {
            return Err(format!("unknown bloom filter kind {kind}"));
        }
        let probes = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes"));
        if probes == 0 || probes > MAX_PROBES {
            return Err(format!(
                "bloom filter probes {probes} not in 1..={MAX_PROBES}"
            ));
        }
        let count = word_at(b, 8);
        let body = (b.len() - HEADER) as u64;
        if count == 0 || count > u64::from(u32::MAX) || count.checked_mul(64) != Some(body) {
            return Err(format!(
                "bloom filter of {count} blocks in {body} bytes of bitmap"
            ));
        }
        let blocks = b[HEADER..]
            .chunks_exact(64)
            .map(|c| Block(std::array::from_fn(|i| word_at(c, i * 8))))
            .collect();
        Ok(BlockedBloom { blocks, probes })
    }
}

fn word_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Bits per key and probes for a false-positive rate of at most `fp_rate`: the fewest bits
/// (in steps of 0.05 from what a standard filter needs) for which some probe count near
/// the standard optimum reaches the rate by [`expected_rate`]. Keys do not spread evenly
/// over blocks, so a blocked filter needs a little more than a standard one: 9.94 bits and
/// 6 probes for 1% (a standard filter: 9.59 bits, 7 probes).
fn sizing(fp_rate: f64) -> (f64, u32) {
    let mut bits = -fp_rate.ln() / std::f64::consts::LN_2.powi(2);
    loop {
        let around = (bits * std::f64::consts::LN_2) as u32;
        let (rate, probes) = (around.saturating_sub(1).max(1)..=around + 1)
            .map(|k| k.min(MAX_PROBES))
            .map(|k| (expected_rate(bits, k), k))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("a non-empty range");
        if rate <= fp_rate || bits >= MAX_BITS_PER_KEY {
            return (bits, probes);
        }
        bits += 0.05;
    }
}

/// The false-positive rate of a blocked filter of `bits` per key and `k` probes: the
/// number of keys in a block is Poisson with mean `512 / bits`, and a block holding `j`
/// keys answers yes for an absent key with probability `(1 - (1 - 1/512)^(k j))^k`.
fn expected_rate(bits: f64, k: u32) -> f64 {
    let mean = f64::from(BLOCK_BITS) / bits;
    let last = (mean + 12.0 * mean.sqrt() + 20.0) as u32;
    let miss = 1.0 - 1.0 / f64::from(BLOCK_BITS);
    let mut p = (-mean).exp();
    let mut rate = 0.0;
    for j in 0..=last {
        rate += p * (1.0 - miss.powf(f64::from(k * j))).powi(k as i32);
        p *= mean / f64::from(j + 1);
    }
    rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::RunFilter;
    use crate::index::fingerprint;

    fn fps(range: std::ops::Range<u64>) -> Vec<u64> {
        range
            .map(|i| fingerprint(format!("key{i:08}").as_bytes()))
            .collect()
    }

    fn measured_rate(filter: &BlockedBloom, absent: &[u64]) -> f64 {
        absent.iter().filter(|&&f| filter.may_contain(f)).count() as f64 / absent.len() as f64
    }

    #[test]
    fn every_inserted_fingerprint_is_found() {
        for n in [0u64, 1, 7, 1000, 50_000] {
            let keys = fps(0..n);
            let filter = BlockedBloom::build(&keys, 0.01).unwrap();
            assert!(keys.iter().all(|&f| filter.may_contain(f)), "{n}");
        }
    }

    #[test]
    fn false_positives_stay_near_the_target() {
        // Deterministic keys, so the measured rates are fixed; the bound allows for the
        // sampling error of 200k probes (about 2% of the rate at 1%).
        let keys = fps(0..100_000);
        let absent = fps(1_000_000..1_200_000);
        for (target, want_probes) in [(0.1, 3), (0.01, 6), (0.001, 9)] {
            let filter = BlockedBloom::build(&keys, target).unwrap();
            let rate = measured_rate(&filter, &absent);
            assert!(rate <= target * 1.1, "target {target}: measured {rate}");
            assert!(rate >= target * 0.7, "target {target}: measured {rate}");
            assert_eq!(filter.probes(), want_probes, "target {target}");
        }
    }

    #[test]
    fn one_percent_costs_about_ten_bits_per_key() {
        let filter = BlockedBloom::build(&fps(0..100_000), 0.01).unwrap();
        let bits_per_key = filter.bitmap_len() as f64 * 8.0 / 100_000.0;
        assert!((9.85..10.05).contains(&bits_per_key), "{bits_per_key}");
    }

    #[test]
    fn encode_decode_round_trip() {
        let filter = BlockedBloom::build(&fps(0..3000), 0.02).unwrap();
        let bytes = filter.encode();
        assert_eq!(bytes.len(), HEADER + filter.bitmap_len());
        assert_eq!(
            RunFilter::Blocked(filter.clone()).encoded_len(),
            bytes.len()
        );
        assert_eq!(BlockedBloom::decode(&bytes).unwrap(), filter);
    }

    #[test]
    fn the_bit_positions_are_pinned() {
        // The serialized bits are the format: pin one key's block and bits.
        let filter = BlockedBloom::build(&[fingerprint(b"chronokv")], 0.01).unwrap();
        let bytes = filter.encode();
        assert_eq!(
            &bytes[..16],
            &[1, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        let set: Vec<usize> = (0..512)
            .filter(|b| bytes[16 + b / 8] & (1 << (b % 8)) != 0)
            .collect();
        assert_eq!(set, [210, 243, 272, 416, 439, 484]);
    }

    #[test]
    fn damaged_headers_are_errors() {
        let good = BlockedBloom::build(&fps(0..10), 0.01).unwrap().encode();
        let mut cases: Vec<Vec<u8>> = vec![good[..15].to_vec(), good[..good.len() - 1].to_vec()];
        for (at, value) in [(0, 2u8), (4, 0), (4, 31), (8, 0), (8, 2), (15, 1)] {
            let mut b = good.clone();
            b[at] = value;
            cases.push(b);
        }
        for b in cases {
            assert!(
                BlockedBloom::decode(&b).is_err(),
                "{:?}",
                &b[..16.min(b.len())]
            );
        }
    }

    #[test]
    fn the_model_agrees_with_rocksdbs_published_rate() {
        // RocksDB's FastLocalBloom: 10 bits per key, 6 probes, 0.9535% in theory.
        let rate = expected_rate(10.0, 6);
        assert!((0.0094..0.0097).contains(&rate), "{rate}");
        // Targets beyond what the caps allow get the caps, not an endless search.
        let (bits, probes) = sizing(1e-12);
        assert!(
            probes <= MAX_PROBES && bits <= MAX_BITS_PER_KEY + 0.05,
            "{bits} {probes}"
        );
    }

    #[test]
    fn out_of_range_rates_are_refused() {
        for rate in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(BlockedBloom::build(&[1], rate).is_err(), "{rate}");
        }
    }
}
