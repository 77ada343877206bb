//! Monte Carlo estimate of pi (seed 000): the fraction of random points of a
//! square that fall inside its inscribed disc.
//!
//! **Stream.** The samples are cut into units of [`UNIT`] samples, and each
//! unit draws from its own [`LANES`] generators, so a unit's hits depend on
//! the seed, the unit index and the unit's sample count only: any cut of the
//! unit range, over any number of processes and threads, sees exactly the same
//! points. A step of a lane draws two outputs and makes two samples, one from
//! each 32-bit word (see [`point`]); sample `j` of a unit is word
//! `j / LANES % 2` of step `j / STEP` of lane `j % LANES` (a step of all
//! lanes makes [`STEP`] samples). A clipped last unit takes its whole steps
//! and then the samples of one more step below the remainder.
//!
//! **Generator.** Each lane is a xoshiro256++ (Blackman and Vigna, 2018), the
//! authors' all-purpose generator, whose four state words are consecutive
//! SplitMix64 outputs at counter `4 (unit * LANES + lane) + k` of the seed's
//! key: the seeding the authors recommend, and never the all-zero state
//! (SplitMix64 maps only 0 to 0). It needs no multiply: its state update is
//! six vector operations (a shift, a rotate and four xors, two pairs of them
//! fused into three-way `vpternlogq`s) and its output three (add, rotate,
//! add), where the counter-based SplitMix64 of earlier versions needed two
//! 64-bit multiplies per sample, which neither AVX-512 (`vpmullq`, three
//! uops) nor NEON (none at all) does cheaply. Unlike xoshiro256+ (used before
//! this version), every output bit is full quality, so how the bits are
//! dealt to the coordinates does not matter.
//!
//! **Inside test.** The coordinates `x` and `y` of a sample are signed 32-bit
//! integers in `[-2^31, 2^31)`, and the point is inside when
//! `x^2 + y^2 < 2^62`: an exact integer test (no rounding, no platform
//! difference) that cannot overflow a `u64` (the sum is at most 2^63). The
//! disc is centred, so the grid points inside it are symmetric and their
//! count differs from the disc's area by the Gauss circle error (2.0e5
//! points, counted exactly by `scripts/pi_mc_grid.c`), not by a boundary's
//! worth: the grid biases pi by -4.3e-14.
//!
//! Each coordinate takes its top 16 bits from the step's first output and its
//! low 16 from the second ([`point`]). Then the first output alone holds the
//! top halves `a`, `b` of all of its samples, and `a^2 + b^2` decides all but
//! about 1.6e-4 of them ([`SURE_INSIDE`], [`SURE_OUTSIDE`]): the AVX-512 loop
//! computes it for sixteen samples with one `vpmaddwd`, and settles the rare
//! band between the bounds with the exact test. The count is the same as the
//! exact test's for every sample. The generic loop (`simd.rs`, every path)
//! does the same with the layer's `sq_halves_u32s` (`vpmaddwd` on x86, four
//! NEON operations on arm64).
//!
//! **Speed.** With AVX-512 a step of eight lanes (sixteen samples) costs
//! 19.5 vector operations (see `avx512::pi_mc_unit`), which the two 512-bit
//! ports of a Xeon retire in 9.75 cycles: 4.9e9 samples/s per core at
//! 2.96 GHz at best (`scripts/pi_mc_floor.c` measures the same loop in C).
//! That hand-written loop beats the generic one on AVX-512 (its three-way
//! `vpternlogq` xors and register-resident four vectors; docs/benchmarks.md
//! has the numbers), so it runs there. AVX2 has a hand-written twin too
//! (`avx2::pi_mc_unit`: 28 operations per eight samples, all in registers,
//! where the generic loop spends 31 and passes state through the stack; 53%
//! of the AVX-512 rate in one interleaved run, against 41% before). NEON and
//! scalar run the generic loop.
//!
//! Layout: this file holds the parameters, the stream, the reference and the
//! units; `simd.rs` the generic loop; `avx512.rs` and `avx2.rs` the
//! hand-written ones.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod simd;

use crate::simd::Path;
use crate::{partition, Tally};
use rayon::prelude::*;
use std::ops::Range;

/// Samples per work unit.
pub const UNIT: u64 = 1 << 16;

/// Generators per unit: four AVX-512 vectors of eight lanes, enough
/// independent chains to fill both vector ports. [`UNIT`] is a multiple.
pub const LANES: usize = 32;

/// Samples per step of all the lanes: each lane's step makes two.
pub(crate) const STEP: u64 = 2 * LANES as u64;

const _: () = assert!(UNIT.is_multiple_of(STEP));

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

/// One xoshiro256++ step of the state `s`: its output.
#[inline(always)]
pub(crate) fn next(s: &mut [u64; 4]) -> u64 {
    let r = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    r
}

/// The point of one sample, from word `h` of a step's first output and the
/// same word `l` of its second: `x` is the low halves of both, `y` the high
/// halves, the first output's half on top.
#[inline(always)]
pub(crate) fn point(h: u32, l: u32) -> (i32, i32) {
    ((h << 16 | l & 0xffff) as i32, (h & 0xffff_0000 | l >> 16) as i32)
}

/// Whether `(x, y)` is inside the disc: `x^2 + y^2 < 2^62`, exactly
/// (`x^2, y^2 <= 2^62`, so the sum does not overflow).
#[inline(always)]
pub(crate) fn inside(x: i32, y: i32) -> bool {
    let (x, y) = (i64::from(x), i64::from(y));
    ((x * x) as u64 + (y * y) as u64) < 1 << 62
}

/// Hits among the samples `which` of a step whose outputs' 32-bit words,
/// lowest first, are `h` and `l` ([`point`], [`inside`]): the exact test
/// the hand-written twins fall back on for the samples near the circle.
#[cfg(target_arch = "x86_64")]
pub(crate) fn exact_hits(h: &[u32], l: &[u32], which: impl Fn(usize) -> bool) -> u64 {
    (0..h.len())
        .filter(|&d| which(d))
        .filter(|&d| {
            let (x, y) = point(h[d], l[d]);
            inside(x, y)
        })
        .count() as u64
}

/// The two samples of one step of a lane: its two outputs `h` and `l`, word
/// by word ([`point`]); sample `k` is word `k` (word 0 the low 32 bits).
#[inline(always)]
#[cfg(test)]
fn step_points(h: u64, l: u64) -> [(i32, i32); 2] {
    [point(h as u32, l as u32), point((h >> 32) as u32, (l >> 32) as u32)]
}

/// The sure-inside bound of the high-halves test (the AVX-512 path): with
/// `a` and `b` the top 16 bits of `x` and `y` as signed integers (all of
/// the first output's word, see [`point`]), `a^2 + b^2` below this means
/// inside, whatever the low halves. Proof: `|x| < 2^16 (|a| + 1)`, so
/// `x^2 + y^2 < 2^32 (a^2 + b^2 + 2 (|a| + |b|) + 2)`, and
/// `(|a| + |b|)^2 <= 2 (a^2 + b^2) < 2^31 < 46341^2` gives `|a| + |b| <= 46340`;
/// so `a^2 + b^2 <= 2^30 - 92682` keeps the sum below 2^62.
pub(crate) const SURE_INSIDE: u32 = (1 << 30) - 92_681;

/// The sure-outside bound: `a^2 + b^2` at or above this means outside.
/// Proof: `|x| >= 2^16 (|a| - 1)` (and `|x| >= 0`), so
/// `x^2 >= 2^32 (a^2 - 2 |a|)`, and with `|a| + |b| <= 2^16`,
/// `x^2 + y^2 >= 2^32 (a^2 + b^2 - 2^17) >= 2^62`.
pub(crate) const SURE_OUTSIDE: u32 = (1 << 30) + 131_072;

/// Work units needed for `samples` samples.
pub fn units(samples: u64) -> u64 {
    samples.div_ceil(UNIT)
}

/// The sample indices covered by `units`, clipped to `samples`.
pub fn sample_range(samples: u64, units: Range<u64>) -> Range<u64> {
    (units.start * UNIT).min(samples)..units.end.saturating_mul(UNIT).min(samples)
}

/// Hits among the first `n` samples of unit `unit` on `path`: the generic
/// loop ([`simd::Unit`]), or on AVX-512 and AVX2 the hand-written ones
/// ([`avx512::pi_mc_unit`], [`avx2::pi_mc_unit`]) where [`HAND_WRITTEN`]
/// and [`HAND_WRITTEN_AVX2`] say they win.
fn count_unit_on(path: Path, key: u64, unit: u64, n: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if HAND_WRITTEN && path == Path::Avx512 {
        // SAFETY: the CPU has the AVX-512 path (AVX-512F, DQ and BW).
        return unsafe { avx512::pi_mc_unit(key, unit, n) };
    }
    #[cfg(target_arch = "x86_64")]
    if HAND_WRITTEN_AVX2 && path == Path::Avx2 {
        // SAFETY: the CPU has the AVX2 path.
        return unsafe { avx2::pi_mc_unit(key, unit, n) };
    }
    generic_unit_on(path, key, unit, n)
}

/// The generic loop's hits among the first `n` samples of unit `unit` on
/// `path`.
fn generic_unit_on(path: Path, key: u64, unit: u64, n: u64) -> u64 {
    crate::simd::dispatch_on(path, simd::Unit { key, unit, n })
}

/// Whether the AVX-512 path runs the hand-written loop rather than the
/// generic one (docs/benchmarks.md has the measurement).
const HAND_WRITTEN: bool = true;

/// Whether the AVX2 path runs the hand-written loop rather than the
/// generic one (the module's "Speed" has the measurement).
const HAND_WRITTEN_AVX2: bool = true;

/// The name of the loop this process runs, for reports.
pub fn implementation() -> &'static str {
    match crate::simd::path() {
        Path::Avx2 if HAND_WRITTEN_AVX2 && cfg!(target_arch = "x86_64") => "avx2 (std::arch)",
        _ => crate::simd::implementation(HAND_WRITTEN),
    }
}

/// Hits among the first `n` samples of unit `unit`, on this process's path.
fn count_unit(key: u64, unit: u64, n: u64) -> u64 {
    count_unit_on(crate::simd::path(), key, unit, n)
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

/// Sequential reference for one unit: the samples in their stream order
/// (sample `j` is word `j / LANES % 2` of step `j / STEP` of lane
/// `j % LANES`), with the inside test in `i128`.
fn count_unit_seq(key: u64, unit: u64, n: u64) -> u64 {
    let mut lanes: [[u64; 4]; LANES] = std::array::from_fn(|l| std::array::from_fn(|k| seed_word(key, unit, l, k)));
    let mut outputs = [(0, 0); LANES];
    let mut hits = 0;
    for j in 0..n as usize {
        let (lane, word) = (j % LANES, j / LANES % 2);
        if word == 0 {
            let s = &mut lanes[lane];
            outputs[lane] = (next(s), next(s));
        }
        let (h, l) = outputs[lane];
        let (x, y) = point((h >> (32 * word)) as u32, (l >> (32 * word)) as u32);
        let (x, y) = (i128::from(x), i128::from(y));
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
                for _ in 0..UNIT / STEP {
                    let (a, b) = (next(s), next(s));
                    *h += step_points(a, b).into_iter().filter(|&(x, y)| inside(x, y)).count() as u64;
                }
            }
        }
        for (l, h) in hits.into_iter().enumerate() {
            let err = (estimate(h, n) - std::f64::consts::PI).abs();
            assert!(err < 5.0 * standard_error(n), "lane {l}: err {err}");
        }
    }

    #[test]
    fn every_path_counts_like_the_sequential_reference() {
        // Every clip of a unit: whole steps only, a partial step in each of
        // the four vectors, one sample, a whole unit.
        let clips = [1, 2, 7, 8, 9, 16, 17, 31, 32, 33, 40, 63, 64, 65, 100, 127, 128, 129, 1000, UNIT - 1, UNIT];
        let key = key(42);
        for unit in [0, 1, 12_345, units(u64::MAX) - 1] {
            for n in clips {
                let seq = count_unit_seq(key, unit, n);
                for path in crate::simd::supported() {
                    assert_eq!(count_unit_on(path, key, unit, n), seq, "{path:?} unit {unit}, n {n}");
                    assert_eq!(generic_unit_on(path, key, unit, n), seq, "generic {path:?} unit {unit}, n {n}");
                }
                #[cfg(target_arch = "x86_64")]
                if Path::Avx512.available() {
                    // SAFETY: the CPU has the AVX-512 path.
                    assert_eq!(unsafe { avx512::pi_mc_unit(key, unit, n) }, seq, "avx512 unit {unit}, n {n}");
                }
                #[cfg(target_arch = "x86_64")]
                if Path::Avx2.available() {
                    // SAFETY: the CPU has the AVX2 path.
                    assert_eq!(unsafe { avx2::pi_mc_unit(key, unit, n) }, seq, "avx2 unit {unit}, n {n}");
                }
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
        // Hand-checked points on the 2^32 grid.
        assert!(inside(0, 0));
        assert!(inside(i32::MAX, 0));
        assert!(inside(0, -i32::MAX));
        assert!(!inside(i32::MIN, 0)); // x^2 = 2^62 exactly: on the circle, outside
        assert!(!inside(i32::MIN, i32::MIN)); // the sum's largest value, 2^63
        assert!(inside(1_518_500_249, -1_518_500_249)); // just under 2^31 / sqrt 2
        assert!(!inside(-1_518_500_250, 1_518_500_250));
    }

    #[test]
    fn points_take_their_top_halves_from_the_first_output() {
        assert_eq!(point(0x1234_5678, 0x9abc_def0), (0x5678_def0, 0x1234_9abc));
        assert_eq!(point(0xffff_0000, 0x0000_ffff), (0x0000_ffff, -1 << 16));
        // Every bit of both words lands in exactly one coordinate.
        for bit in 0..32 {
            let (x, y) = point(1 << bit, 0);
            let (u, v) = point(0, 1 << bit);
            assert_eq!((x as u32 | y as u32).count_ones() + (u as u32 | v as u32).count_ones(), 2);
        }
    }

    #[test]
    fn high_halves_bounds_hold_at_their_worst_cases() {
        // For a grid of top halves (a, b) with a^2 + b^2 just below
        // SURE_INSIDE or just at SURE_OUTSIDE, the low halves that push
        // x^2 + y^2 furthest the other way (0 or 0xffff) do not cross the
        // circle; just past the bounds, some do (the bounds are not loose
        // by more than 2^32 * 2^18).
        let sq = |a: i64, b: i64| (a * a + b * b) as u64;
        let extremes = |a: i64, b: i64| {
            let h = (b as u32) << 16 | (a as u32 & 0xffff);
            [0u32, 0xffff, 0xffff_0000, 0xffff_ffff].map(|l| {
                let (x, y) = point(h, l);
                inside(x, y)
            })
        };
        let (mut below, mut above) = (0, 0);
        for a in (-32_768i64..=32_767).step_by(97).chain([-32_768, -1, 0, 1, 32_767]) {
            for sign in [-1, 1] {
                let root = |t: u64| (t.saturating_sub((a * a) as u64) as f64).sqrt() as i64;
                // The largest |b| with a^2 + b^2 < SURE_INSIDE, the smallest with >= SURE_OUTSIDE.
                let mut b = root(u64::from(SURE_INSIDE)) + 1;
                while b > 0 && sq(a, b) >= u64::from(SURE_INSIDE) {
                    b -= 1;
                }
                if sq(a, b) < u64::from(SURE_INSIDE) && b <= 32_767 {
                    assert!(extremes(a, sign * b).iter().all(|&i| i), "a {a} b {}", sign * b);
                    below += 1;
                }
                let mut b = root(u64::from(SURE_OUTSIDE)).max(1) - 1;
                while sq(a, b) < u64::from(SURE_OUTSIDE) {
                    b += 1;
                }
                if b <= 32_768 && !(sign == 1 && b == 32_768) {
                    assert!(extremes(a, sign * b).iter().all(|&i| !i), "a {a} b {}", sign * b);
                    above += 1;
                }
            }
        }
        assert!(below > 500 && above > 500, "{below} {above}");
        // Well inside the band the low halves decide.
        let mid = (f64::from(1u32 << 30) / 2.0).sqrt() as i64;
        let e = extremes(mid, mid);
        assert!(e.contains(&true) && e.contains(&false), "{e:?}");
    }

    #[test]
    fn xoshiro256plusplus_matches_the_reference_outputs() {
        // The reference C code's first outputs from the state {1, 2, 3, 4}.
        let mut s = [1, 2, 3, 4];
        let out: Vec<u64> = (0..4).map(|_| next(&mut s)).collect();
        assert_eq!(out, [41_943_041, 58_720_359, 3_588_806_011_781_223, 3_591_011_842_654_386]);
    }
}
