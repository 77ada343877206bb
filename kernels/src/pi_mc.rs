//! Monte Carlo estimate of pi (seed 000): the fraction of random points of a
//! square that fall inside its inscribed disc.
//!
//! **Stream.** The samples are cut into units of [`UNIT`] samples, and each
//! unit draws from its own [`LANES`] generators, so a unit's hits depend on
//! the seed, the unit index and the unit's sample count only: any cut of the
//! unit range, over any number of processes and threads, sees exactly the same
//! points. Sample `j` of a unit is the output of lane `j % LANES` at its step
//! `j / LANES`; a clipped last unit takes its whole steps and then one partial
//! step (the lanes below the remainder).
//!
//! **Generator.** Each lane is a xoshiro256+ (Blackman and Vigna, 2018), whose
//! four state words are consecutive SplitMix64 outputs at counter
//! `4 (unit * LANES + lane) + k` of the seed's key: the seeding the authors
//! recommend, and never the all-zero state (SplitMix64 maps only 0 to 0).
//! xoshiro256+ needs no multiply: seven vector operations per eight samples
//! (an add, a shift, a rotate and four xors, two pairs of them fused into
//! three-way `vpternlogq`s), where the counter-based SplitMix64 of earlier
//! versions needed two 64-bit multiplies per sample, which neither AVX-512
//! (`vpmullq`, three uops) nor NEON (none at all) does cheaply.
//!
//! Its known weakness is the low linear complexity of its lowest bits (the
//! lowest three fail linearity tests; each is still balanced). Here they are
//! the lowest bits of `y`, and changing `y` by up to 7 moves `x^2 + y^2` by
//! less than 2^35, which decides inside-or-out only for points that close to
//! the circle: a fraction of about 6e-9. Even constant bits there could move
//! pi by 2e-8 at most, under the statistical error of any run below 10^16
//! samples. xoshiro256++ mends those bits with a rotate and an add more per
//! eight samples (14.5 operations instead of 12.5, 16% slower), a price for
//! bits this test barely reads.
//!
//! **Inside test.** The two 32-bit halves of an output, read as signed
//! integers, are the coordinates `x` (high half) and `y` (low half) in
//! `[-2^31, 2^31)`, and the point is inside when `x^2 + y^2 < 2^62`: an exact
//! integer test (no rounding, no platform difference) that cannot overflow a
//! `u64` (the sum is at most 2^63). The disc is centred, so the grid points
//! inside it are symmetric and their count differs from the disc's area by
//! the Gauss circle error (2.0e5 points, counted exactly by
//! `scripts/pi_mc_grid.c`), not by a boundary's worth: the grid biases pi by
//! -4.3e-14. The quarter-disc test of earlier versions (`x^2 + y^2 < 2^64` on
//! unsigned halves) biased it by +9.3e-10, and LLVM compiled its overflow
//! test into a complement and a compare, one operation more.
//!
//! **Speed.** With AVX-512 a step of eight lanes costs 12.5 vector operations
//! (see `avx512::pi_mc_unit`), which the two 512-bit ports of a
//! Xeon retire in 6.25 cycles: the loop runs at that bound, 3.8e9 samples/s
//! per core at 2.96 GHz. Other CPUs take the portable path, `count_unit_portable`
//! (scalar code, about 7.7e8 samples/s per core on the same Xeon).

use crate::{partition, Tally};
use rayon::prelude::*;
use std::ops::Range;

/// Samples per work unit.
pub const UNIT: u64 = 1 << 16;

/// Generators per unit: four AVX-512 vectors of eight lanes, enough
/// independent chains to fill both vector ports. [`UNIT`] is a multiple.
pub const LANES: usize = 32;

const _: () = assert!(UNIT.is_multiple_of(LANES as u64));

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
pub(crate) const MIX1: u64 = 0xbf58_476d_1ce4_e5b9;
pub(crate) const MIX2: u64 = 0x94d0_49bb_1331_11eb;

/// The SplitMix64 output function (Steele, Lea and Flood, 2014).
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(MIX1);
    z = (z ^ (z >> 27)).wrapping_mul(MIX2);
    z ^ (z >> 31)
}

/// The stream key of a seed.
#[inline]
pub(crate) fn key(seed: u64) -> u64 {
    mix(seed ^ 0x6a09_e667_f3bc_c908)
}

/// The SplitMix64 input of state word `k` of lane `lane` of unit `unit`: the
/// stream `key` at counter `4 (unit * LANES + lane) + k`.
#[inline(always)]
pub(crate) fn seed_input(key: u64, unit: u64, lane: usize, k: usize) -> u64 {
    let counter = unit.wrapping_mul(LANES as u64).wrapping_add(lane as u64).wrapping_mul(4).wrapping_add(k as u64);
    key.wrapping_add(counter.wrapping_mul(GAMMA))
}

/// State word `k` of lane `lane` of unit `unit`.
#[inline(always)]
fn seed_word(key: u64, unit: u64, lane: usize, k: usize) -> u64 {
    mix(seed_input(key, unit, lane, k))
}

/// One xoshiro256+ step of the state `s`: its output.
#[inline(always)]
fn next(s: &mut [u64; 4]) -> u64 {
    let r = s[0].wrapping_add(s[3]);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    r
}

/// Whether the output `r` is a point inside the disc: `x` and `y` are its
/// high and low halves as signed integers. `x^2, y^2 <= 2^62`, so the sum
/// does not overflow.
#[inline(always)]
fn inside(r: u64) -> bool {
    let x = i64::from((r >> 32) as i32);
    let y = i64::from(r as i32);
    ((x * x) as u64 + (y * y) as u64) < 1 << 62
}

/// Work units needed for `samples` samples.
pub fn units(samples: u64) -> u64 {
    samples.div_ceil(UNIT)
}

/// The sample indices covered by `units`, clipped to `samples`.
pub fn sample_range(samples: u64, units: Range<u64>) -> Range<u64> {
    (units.start * UNIT).min(samples)..units.end.saturating_mul(UNIT).min(samples)
}

/// Lanes the portable path runs side by side: two independent chains keep
/// the scalar ALUs busy and their eight state words stay in x86-64's
/// registers; four lanes spill there and run 8% slower.
const CHUNK: usize = 2;

/// [`CHUNK`] lanes' state, word by word: the layout a vectoriser wants,
/// though LLVM's cost model keeps this loop scalar on x86-64 (SSE2 has no
/// 64-bit compare, rotate or signed multiply) and, to judge by clang 14 on
/// the same loop in C, on arm64.
struct Chunk([[u64; CHUNK]; 4]);

impl Chunk {
    /// Lanes `first..first + CHUNK` of unit `unit`.
    fn seed(key: u64, unit: u64, first: usize) -> Chunk {
        Chunk(std::array::from_fn(|k| std::array::from_fn(|l| seed_word(key, unit, first + l, k))))
    }

    /// One step of every lane, adding the first `live` lanes' hits to `hits`.
    #[inline(always)]
    fn step(&mut self, hits: &mut [u64; CHUNK], live: usize) {
        let s = &mut self.0;
        for l in 0..CHUNK {
            let mut lane = [s[0][l], s[1][l], s[2][l], s[3][l]];
            let r = next(&mut lane);
            [s[0][l], s[1][l], s[2][l], s[3][l]] = lane;
            hits[l] += u64::from(inside(r) & (l < live));
        }
    }
}

/// Hits among the first `n` samples of unit `unit`: the portable path, plain
/// Rust over lane arrays. It runs [`CHUNK`] lanes at a time through all
/// their steps; the order of lanes does not matter, since lane `l`
/// contributes its first `n / LANES` outputs plus one if `l < n % LANES`,
/// whoever draws them first. (Not inlined: once per unit costs nothing, and
/// the loop stays one symbol to disassemble.)
#[inline(never)]
fn count_unit_portable(key: u64, unit: u64, n: u64) -> u64 {
    debug_assert!(n <= UNIT);
    let (steps, rem) = (n / LANES as u64, (n % LANES as u64) as usize);
    let mut hits = [0u64; CHUNK];
    for first in (0..LANES).step_by(CHUNK) {
        let mut c = Chunk::seed(key, unit, first);
        for _ in 0..steps {
            c.step(&mut hits, CHUNK);
        }
        c.step(&mut hits, rem.saturating_sub(first));
    }
    hits.iter().sum()
}

/// Hits among the first `n` samples of unit `unit`, on the fastest path this
/// CPU has.
fn count_unit(key: u64, unit: u64, n: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and AVX-512DQ.
            return unsafe { crate::avx512::pi_mc_unit(key, unit, n) };
        }
    }
    count_unit_portable(key, unit, n)
}

/// Hits inside the disc among the samples of `units` (of a run of `samples`
/// samples), in parallel on the current rayon pool.
pub fn count_inside(seed: u64, samples: u64, units: Range<u64>) -> Tally {
    let key = key(seed);
    let hits: u64 = units
        .into_par_iter()
        .map(|u| {
            let r = sample_range(samples, u..u + 1);
            count_unit(key, u, r.end - r.start)
        })
        .sum();
    Tally::count(hits)
}

/// Sequential reference for one unit: the samples in their stream order, one
/// lane at a time, with the inside test in `i128`.
fn count_unit_seq(key: u64, unit: u64, n: u64) -> u64 {
    let mut lanes: [[u64; 4]; LANES] = std::array::from_fn(|l| std::array::from_fn(|k| seed_word(key, unit, l, k)));
    let mut hits = 0;
    for j in 0..n as usize {
        let r = next(&mut lanes[j % LANES]);
        let (x, y) = (i128::from((r >> 32) as i32), i128::from(r as i32));
        hits += u64::from(x * x + y * y < 1 << 62);
    }
    hits
}

/// Plain sequential reference: hits among the whole run of `samples` samples.
/// (A range starting inside a unit is not a prefix of any unit's stream, so
/// the reference takes whole runs.)
pub fn count_inside_seq(seed: u64, samples: u64) -> u64 {
    let key = key(seed);
    (0..units(samples))
        .map(|u| {
            let r = sample_range(samples, u..u + 1);
            count_unit_seq(key, u, r.end - r.start)
        })
        .sum()
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
        let seq = count_inside_seq(7, samples);
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
        let a = count_inside_seq(1, n);
        let b = count_inside_seq(2, n);
        assert_ne!(a, b);
        for hits in [a, b] {
            let err = (estimate(hits, n) - std::f64::consts::PI).abs();
            assert!(err < 5.0 * standard_error(n), "err {err}");
        }
    }

    #[test]
    fn long_runs_give_good_estimates() {
        // 2^28 samples: sigma is 1e-4, so a bias of a few 1e-4 would show.
        let n = 1 << 28;
        for seed in [0, 3, u64::MAX] {
            let hits = count_inside(seed, n, 0..units(n)).to_count().unwrap();
            let err = (estimate(hits, n) - std::f64::consts::PI).abs();
            assert!(err < 5.0 * standard_error(n), "seed {seed}: err {err}");
        }
    }

    #[test]
    fn every_lane_is_unbiased() {
        // Each lane's own estimate over many units, 5 sigma apart at most.
        let key = key(5);
        let units = 256;
        let n = units * UNIT / LANES as u64;
        let mut hits = [0u64; LANES];
        for u in 0..units {
            let mut lanes: [[u64; 4]; LANES] =
                std::array::from_fn(|l| std::array::from_fn(|k| seed_word(key, u, l, k)));
            for (h, s) in hits.iter_mut().zip(&mut lanes) {
                *h += (0..UNIT / LANES as u64).filter(|_| inside(next(s))).count() as u64;
            }
        }
        for (l, h) in hits.into_iter().enumerate() {
            let err = (estimate(h, n) - std::f64::consts::PI).abs();
            assert!(err < 5.0 * standard_error(n), "lane {l}: err {err}");
        }
    }

    #[test]
    fn simd_portable_and_sequential_paths_count_the_same() {
        // Every clip of a unit: whole steps only, a partial step in each of
        // the four vectors, one sample, a whole unit.
        let clips = [1, 2, 7, 8, 9, 31, 32, 33, 40, 63, 64, 65, 1000, UNIT - 1, UNIT];
        let key = key(42);
        for unit in [0, 1, 12_345, units(u64::MAX) - 1] {
            for n in clips {
                let seq = count_unit_seq(key, unit, n);
                assert_eq!(count_unit(key, unit, n), seq, "unit {unit}, n {n}");
                assert_eq!(count_unit_portable(key, unit, n), seq, "unit {unit}, n {n}");
            }
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
        // Hand-checked points on the 2^32 grid: r holds x in its high half, y in its low half.
        let at = |x: i32, y: i32| inside((u64::from(x as u32) << 32) | u64::from(y as u32));
        assert!(at(0, 0));
        assert!(at(i32::MAX, 0));
        assert!(at(0, -i32::MAX));
        assert!(!at(i32::MIN, 0)); // x^2 = 2^62 exactly: on the circle, outside
        assert!(!at(i32::MIN, i32::MIN)); // the sum's largest value, 2^63
        assert!(at(1_518_500_249, -1_518_500_249)); // just under 2^31 / sqrt 2
        assert!(!at(-1_518_500_250, 1_518_500_250));
    }

    #[test]
    fn xoshiro256plus_matches_the_reference_outputs() {
        // The reference C code's first outputs from the state {1, 2, 3, 4}.
        let mut s = [1, 2, 3, 4];
        let out: Vec<u64> = (0..4).map(|_| next(&mut s)).collect();
        assert_eq!(out, [5, 211_106_232_532_999, 211_106_635_186_183, 9_223_759_065_350_669_058]);
    }
}
