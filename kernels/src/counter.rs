//! A counter-based generator shared by the data kernels (matmul, sort): value
//! `i` of stream `(seed, stream)` is a SplitMix64 output of those three
//! numbers alone, so any rank can generate any slice of a matrix or key array
//! without generating what comes before it, and every decomposition sees the
//! same data.

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output function (Steele, Lea and Flood, 2014).
#[inline(always)]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key of stream `stream` of `seed` (distinct streams are independent).
#[inline]
pub(crate) fn stream_key(seed: u64, stream: u64) -> u64 {
    mix(mix(seed ^ 0x510e_527f_ade6_82d1).wrapping_add(stream.wrapping_mul(GAMMA)) ^ 0x9b05_688c_2b3e_6c1f)
}

/// Value `i` of the stream with key `key`.
#[inline(always)]
pub(crate) fn at(key: u64, i: u64) -> u64 {
    mix(key.wrapping_add(i.wrapping_mul(GAMMA)))
}

/// A uniform double in `[0, 1)` from 53 random bits.
#[inline(always)]
pub(crate) fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}
