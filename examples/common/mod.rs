//! Helpers the examples share: scattered keys, recognisable values, a seeded random stream.
// Each example uses only some of them.
#![allow(dead_code)]

/// A 16-byte key for index `i`, in a scattered order, so writes in index order are random
/// inserts for the store.
pub fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A 100-byte value naming its key index and the round that wrote it.
pub fn value(i: u64, round: u8) -> [u8; 100] {
    let mut v = [b'.'; 100];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v[8] = round;
    v
}

/// splitmix64: a fixed, dependency-free stream of pseudo-random numbers.
pub fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
