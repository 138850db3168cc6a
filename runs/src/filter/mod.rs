//! A run's key filter: whether a run may hold a key, answered without reading a block.
//!
//! Runs of format 3 carry a blocked bloom filter ([`BlockedBloom`]: one cache line per
//! probe, no hashing beyond the key's fingerprint); runs of format 2 carry the `bloomfilter`
//! crate's standard filter ([`legacy`]), which is still read. A point read hashes its key
//! once ([`KeyHash`]) for every run it consults, whatever their formats.

mod blocked;
mod legacy;

pub use blocked::BlockedBloom;
use legacy::LegacyBloom;
use std::cell::OnceCell;

/// A key's fingerprint, plus the format 2 filters' SipHash pair, computed only if a format
/// 2 run is asked.
#[derive(Debug, Clone)]
pub struct KeyHash {
    fingerprint: u64,
    legacy: OnceCell<[u64; 2]>,
}

impl KeyHash {
    /// Hashes `key` (its fingerprint, `index::fingerprint`).
    pub fn new(key: &[u8]) -> Self {
        KeyHash {
            fingerprint: crate::index::fingerprint(key),
            legacy: OnceCell::new(),
        }
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub(crate) fn legacy(&self) -> [u64; 2] {
        *self
            .legacy
            .get_or_init(|| legacy::seeded_hashes(self.fingerprint))
    }
}

/// The filter of one run.
#[derive(Debug)]
pub enum RunFilter {
    /// Format 3: cache-local.
    Blocked(BlockedBloom),
    /// Format 2: the `bloomfilter` crate's.
    Legacy(LegacyBloom),
}

impl RunFilter {
    /// The filter a writer stores (format 3) for these key fingerprints.
    pub fn build(fingerprints: &[u64], fp_rate: f64) -> Result<Self, String> {
        BlockedBloom::build(fingerprints, fp_rate).map(RunFilter::Blocked)
    }

    /// Parses the filter bytes of a run of `format` (2 or 3).
    pub fn decode(format: u32, bytes: &[u8]) -> Result<Self, String> {
        match format {
            2 => LegacyBloom::decode(bytes).map(RunFilter::Legacy),
            3 => BlockedBloom::decode(bytes).map(RunFilter::Blocked),
            other => Err(format!("no bloom filter format for run format {other}")),
        }
    }

    /// The serialized form.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RunFilter::Blocked(f) => f.encode(),
            RunFilter::Legacy(f) => f.as_slice().to_vec(),
        }
    }

    /// The length of [`RunFilter::encode`]'s bytes, without encoding.
    pub fn encoded_len(&self) -> usize {
        match self {
            RunFilter::Blocked(f) => blocked::HEADER + f.bitmap_len(),
            RunFilter::Legacy(f) => f.as_slice().len(),
        }
    }

    /// The run format whose filter this is.
    pub fn format(&self) -> u32 {
        match self {
            RunFilter::Blocked(_) => 3,
            RunFilter::Legacy(_) => 2,
        }
    }

    /// False only if the run holds no version of the key `h` was made from.
    #[inline]
    pub fn may_contain(&self, h: &KeyHash) -> bool {
        match self {
            RunFilter::Blocked(f) => f.may_contain(h.fingerprint),
            RunFilter::Legacy(f) => f.may_contain(h),
        }
    }

    /// [`RunFilter::may_contain`] for a fingerprint (verify checks every key's).
    pub fn contains_fingerprint(&self, fp: u64) -> bool {
        match self {
            RunFilter::Blocked(f) => f.may_contain(fp),
            RunFilter::Legacy(f) => f.contains_fingerprint(fp),
        }
    }

    /// Bits set per key.
    pub fn probes(&self) -> u32 {
        match self {
            RunFilter::Blocked(f) => f.probes(),
            RunFilter::Legacy(f) => f.probes(),
        }
    }
}
