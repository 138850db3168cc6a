//! Deterministic randomness and the key and value layout of every workload.
//!
//! Keys are [`KEY_LEN`] bytes: `k`, fourteen decimal digits of the key number, and a last
//! byte `0` for keys the workloads write or `1` for keys they never write. A missing key
//! therefore sorts between two present ones (as db_bench's `readmissing` does), so neither a
//! run's key range nor a sorted position can answer the miss; only a bloom filter or a block
//! search can.

/// Length of every benchmark key.
pub const KEY_LEN: usize = 16;

/// splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): tiny, fast, and good enough to pick keys. Seeded explicitly, never from
/// the clock.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2^-32 for the
    /// counts used here).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random permutation of `0..n` (Fisher-Yates).
    pub fn permutation(&mut self, n: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n).collect();
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// The key of number `i` that workloads write.
pub fn key(i: u64) -> [u8; KEY_LEN] {
    encode(i, b'0')
}

/// A key near `key(i)` that no workload ever writes.
pub fn missing_key(i: u64) -> [u8; KEY_LEN] {
    encode(i, b'1')
}

fn encode(i: u64, last: u8) -> [u8; KEY_LEN] {
    assert!(
        i < 100_000_000_000_000,
        "key number {i} needs more than 14 digits"
    );
    let mut k = [0u8; KEY_LEN];
    k[0] = b'k';
    let mut n = i;
    for slot in k[1..15].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k[15] = last;
    k
}

/// Values: slices of one pseudo-random buffer, at a random offset per value (as db_bench's
/// `RandomGenerator`), so building a value costs no allocation.
#[derive(Debug, Clone)]
pub struct Values {
    buf: Vec<u8>,
    len: usize,
}

impl Values {
    /// Values of `len` bytes drawn from a 1 MiB buffer filled from `seed`.
    pub fn new(len: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let size = (1 << 20).max(2 * len);
        let buf = (0..size).map(|_| (rng.next_u64() & 0xff) as u8).collect();
        Values { buf, len }
    }

    /// The value length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when values are empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A value chosen by `rng`.
    pub fn next<'a>(&'a self, rng: &mut Rng) -> &'a [u8] {
        let start = rng.below((self.buf.len() - self.len + 1) as u64) as usize;
        &self.buf[start..start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_fixed_length_and_sort_by_number() {
        assert_eq!(&key(42), b"k000000000000420");
        assert_eq!(&missing_key(42), b"k000000000000421");
        assert_eq!(key(99_999_999_999_999).len(), KEY_LEN);
        let mut prev = key(0);
        for i in [1, 9, 10, 11, 999, 1_000_000, 123_456_789] {
            assert!(key(i) > prev);
            assert!(missing_key(i - 1) > key(i - 1) && missing_key(i - 1) < key(i));
            prev = key(i);
        }
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..100).map(|_| r.below(1000)).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..100).map(|_| r.below(1000)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x < 1000));
        let mut c = Rng::new(8);
        assert_ne!(a, (0..100).map(|_| c.below(1000)).collect::<Vec<_>>());
        // splitmix64's first output from seed 0, as in the reference implementation.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn permutation_holds_every_number_once() {
        let mut p = Rng::new(1).permutation(1000);
        assert_eq!(p, Rng::new(1).permutation(1000));
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn values_are_deterministic_slices_of_the_right_length() {
        let v = Values::new(100, 3);
        let (mut r1, mut r2) = (Rng::new(5), Rng::new(5));
        for _ in 0..1000 {
            let (a, b) = (v.next(&mut r1), v.next(&mut r2));
            assert_eq!(a.len(), 100);
            assert_eq!(a, b);
        }
    }
}
