//! Monte Carlo estimate of pi (seed 000): the fraction of random points of the
//! unit square that fall inside the quarter disc.
//!
//! The generator is counter-based: sample `i` is a SplitMix64 output of
//! `(seed, i)` alone, so any cut of the sample range, over any number of
//! processes and threads, sees exactly the same points. The two 32-bit halves
//! of the output are the integer coordinates `x, y` in `[0, 2^32)`, and the
//! point is inside when `x^2 + y^2 < 2^64`, an exact integer test (no rounding,
//! no platform difference). The 2^-32 grid biases pi by about 1e-9, far below
//! the statistical error of any feasible sample count.

use crate::{partition, Tally};
use rayon::prelude::*;
use std::ops::Range;

/// Samples per work unit.
pub const UNIT: u64 = 1 << 16;

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
const MIX1: u64 = 0xbf58_476d_1ce4_e5b9;
const MIX2: u64 = 0x94d0_49bb_1331_11eb;

/// The SplitMix64 output function (Steele, Lea and Flood, 2014).
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(MIX1);
    z = (z ^ (z >> 27)).wrapping_mul(MIX2);
    z ^ (z >> 31)
}

/// The stream key of a seed.
#[inline]
fn key(seed: u64) -> u64 {
    mix(seed ^ 0x6a09_e667_f3bc_c908)
}

/// Whether sample `i` of the stream `key` lands inside the quarter disc.
#[inline(always)]
fn inside(key: u64, i: u64) -> bool {
    let h = mix(key.wrapping_add(i.wrapping_mul(GAMMA)));
    let (x, y) = (h >> 32, h & 0xffff_ffff);
    // x^2 and y^2 each fit in a u64; their sum overflows exactly when x^2 + y^2 >= 2^64.
    !(x * x).overflowing_add(y * y).1
}

/// Work units needed for `samples` samples.
pub fn units(samples: u64) -> u64 {
    samples.div_ceil(UNIT)
}

/// The sample indices covered by `units`, clipped to `samples`.
pub fn sample_range(samples: u64, units: Range<u64>) -> Range<u64> {
    (units.start * UNIT).min(samples)..units.end.saturating_mul(UNIT).min(samples)
}

/// Hits among samples `range`: the portable path.
fn count_block_portable(key: u64, range: Range<u64>) -> u64 {
    range.map(|i| u64::from(inside(key, i))).sum()
}

/// Hits among samples `range`, on the fastest path this CPU has: the
/// AVX-512 loop takes whole blocks of 32 samples, the portable one the rest.
fn count_block(key: u64, range: Range<u64>) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::avx512() {
            let mid = range.end - (range.end - range.start) % 32;
            // SAFETY: the CPU has AVX-512F and AVX-512DQ.
            let fast = unsafe { crate::avx512::pi_mc_count(key, GAMMA, MIX1, MIX2, range.start, mid) };
            return fast + count_block_portable(key, mid..range.end);
        }
    }
    count_block_portable(key, range)
}

/// Hits inside the quarter disc among the samples of `units` (of a run of
/// `samples` samples), in parallel on the current rayon pool.
pub fn count_inside(seed: u64, samples: u64, units: Range<u64>) -> Tally {
    let key = key(seed);
    let hits: u64 = units.into_par_iter().map(|u| count_block(key, sample_range(samples, u..u + 1))).sum();
    Tally::count(hits)
}

/// Plain sequential reference: hits among samples `range`.
pub fn count_inside_seq(seed: u64, range: Range<u64>) -> u64 {
    let key = key(seed);
    range.filter(|&i| inside(key, i)).count() as u64
}

/// The estimate of pi from `hits` of `samples`.
pub fn estimate(hits: u64, samples: u64) -> f64 {
    4.0 * hits as f64 / samples as f64
}

/// The standard error of the estimate for `samples` samples.
pub fn standard_error(samples: u64) -> f64 {
    let p = std::f64::consts::FRAC_PI_4;
    4.0 * (p * (1.0 - p) / samples as f64).sqrt()
}

/// Splits `0..units(samples)` into `parts` and returns each part's hits; used
/// by tests to show the decomposition does not matter.
pub fn count_in_parts(seed: u64, samples: u64, parts: u64) -> Vec<Tally> {
    let n = units(samples);
    (0..parts).map(|i| count_inside(seed, samples, partition::block_range(n, parts, i))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_equals_sequential_for_any_split() {
        let samples = 3 * UNIT + 12_345;
        let seq = count_inside_seq(7, 0..samples);
        for parts in 1..=5 {
            let total: Tally = count_in_parts(7, samples, parts).into_iter().sum();
            assert_eq!(total.to_count(), Some(seq), "parts={parts}");
        }
    }

    #[test]
    fn pool_size_does_not_change_hits() {
        let samples = 10 * UNIT + 1;
        let with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| count_inside(1, samples, 0..units(samples)))
        };
        assert_eq!(with(1), with(3));
    }

    #[test]
    fn seeds_give_different_streams_and_good_estimates() {
        let n = 1 << 20;
        let a = count_inside_seq(1, 0..n);
        let b = count_inside_seq(2, 0..n);
        assert_ne!(a, b);
        for hits in [a, b] {
            let err = (estimate(hits, n) - std::f64::consts::PI).abs();
            assert!(err < 5.0 * standard_error(n), "err {err}");
        }
    }

    #[test]
    fn simd_and_portable_paths_count_the_same() {
        let key = key(42);
        for range in [0..UNIT, 5..1000, 12_345_678..12_345_678 + 3 * UNIT + 31, u64::MAX - 200..u64::MAX] {
            assert_eq!(count_block(key, range.clone()), count_block_portable(key, range.clone()), "{range:?}");
        }
    }

    #[test]
    fn sample_ranges_clip_the_last_unit() {
        assert_eq!(units(0), 0);
        assert_eq!(units(1), 1);
        assert_eq!(units(UNIT + 1), 2);
        assert_eq!(sample_range(UNIT + 1, 1..2), UNIT..UNIT + 1);
        assert_eq!(sample_range(10, 0..1), 0..10);
    }

    #[test]
    fn exact_inside_test_matches_geometry() {
        // A few hand-checked points on the 2^32 grid.
        let on = |x: u64, y: u64| !(x * x).overflowing_add(y * y).1;
        assert!(on(0, 0));
        assert!(on(0xffff_ffff, 0));
        assert!(!on(0xffff_ffff, 0xffff_ffff));
        assert!(on(3_037_000_499, 3_037_000_499)); // just under 2^32 / sqrt 2
        assert!(!on(3_037_000_500, 3_037_000_500));
    }
}
