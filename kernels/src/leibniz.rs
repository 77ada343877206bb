//! The Leibniz series for pi (seed 003): pi/4 = 1 - 1/3 + 1/5 - 1/7 + ...
//!
//! Terms are taken four at a time, `1/(8m+1) - 1/(8m+3) + 1/(8m+5) - 1/(8m+7)`,
//! folded into one fraction `2(a+b)/(ab)` with `a = (8m+1)(8m+3)` and
//! `b = (8m+5)(8m+7)`: one division per four terms instead of four, since the
//! divider is the bottleneck. Each work unit of [`UNIT`] terms is summed with
//! eight fixed accumulators in a fixed order, rounded once into a fixed-point
//! [`Tally`], and tallies add exactly, so the sum is bit-identical however the
//! units are spread over processes and threads.

use crate::{simd, Tally};
use rayon::prelude::*;
use std::ops::Range;

/// Terms per work unit (a multiple of 32, so units start on a group of four
/// and the eight lanes tile them exactly).
pub const UNIT: u64 = 1 << 16;

/// The largest supported term count: beyond 2^50 the denominators (about
/// 8m) lose exactness in the products of an `f64`.
pub const MAX_TERMS: u64 = 1 << 50;

const LANES: usize = 8;

/// Work units needed for `terms` terms.
pub fn units(terms: u64) -> u64 {
    terms.div_ceil(UNIT)
}

/// Sum of the four terms starting at term `4m`, given `x = 8m` as an `f64`.
#[inline(always)]
fn quad(x: f64) -> f64 {
    let a = (x + 1.0) * (x + 3.0);
    let b = (x + 5.0) * (x + 7.0);
    2.0 * (a + b) / (a * b)
}

/// Signed term `k`: `(-1)^k / (2k + 1)`.
#[inline]
fn term(k: u64) -> f64 {
    let t = 1.0 / (2 * k + 1) as f64;
    if k % 2 == 0 {
        t
    } else {
        -t
    }
}

/// The sum of terms `range`, where `range.start` is a multiple of 32.
#[inline(always)]
fn block_sum(range: Range<u64>) -> f64 {
    debug_assert_eq!(range.start % (4 * LANES as u64), 0);
    let quads = (range.end - range.start) / 4;
    let rounds = quads / LANES as u64;
    let m0 = range.start / 4;
    let mut acc = [0.0f64; LANES];
    for r in 0..rounds {
        // Exact: every value here is an integer below 2^53.
        let base = (8 * (m0 + r * LANES as u64)) as f64;
        for (l, a) in acc.iter_mut().enumerate() {
            *a += quad(base + (8 * l) as f64);
        }
    }
    // The tail: whole groups of four, then single terms.
    let mut k = range.start + rounds * LANES as u64 * 4;
    let mut tail = 0.0;
    while k + 4 <= range.end {
        tail += quad((2 * k) as f64);
        k += 4;
    }
    while k < range.end {
        tail += term(k);
        k += 1;
    }
    let s01 = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    let s23 = (acc[4] + acc[5]) + (acc[6] + acc[7]);
    (s01 + s23) + tail
}

/// The sum of unit `u` of a series of `terms` terms.
pub fn unit_sum(terms: u64, u: u64) -> f64 {
    let start = u * UNIT;
    simd::fastest(|| block_sum(start..(start + UNIT).min(terms)))
}

/// The exact tally of units `units` of a series of `terms` terms, in parallel
/// on the current rayon pool.
pub fn sum_units(terms: u64, units: Range<u64>) -> Tally {
    units.into_par_iter().map(|u| Tally::fixed(unit_sum(terms, u))).sum()
}

/// pi from the tally of the whole series.
pub fn pi_from(t: Tally) -> f64 {
    4.0 * t.to_f64_fixed()
}

/// Plain sequential reference: `4 * sum of terms 0..terms`, term by term.
pub fn pi_seq(terms: u64) -> f64 {
    4.0 * (0..terms).map(term).sum::<f64>()
}

/// The alternating-series truncation bound: `|pi - 4 S_N| < 4 / (2N + 1)`.
pub fn truncation_bound(terms: u64) -> f64 {
    4.0 / (2.0 * terms as f64 + 1.0)
}

/// The leading terms of the known expansion of the truncation error,
/// `pi - 4 S_N = (-1)^N (1/N - 1/(4 N^3) + O(N^-5))`; a far sharper check than
/// the bound for large N.
pub fn predicted_error(terms: u64) -> f64 {
    let n = terms as f64;
    let e = 1.0 / n - 1.0 / (4.0 * n * n * n);
    if terms % 2 == 0 {
        e
    } else {
        -e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::block_range;
    use std::f64::consts::PI;

    #[test]
    fn quad_matches_four_terms() {
        for m in [0u64, 1, 17, 1_000_003] {
            let four: f64 = (4 * m..4 * m + 4).map(term).sum();
            let q = quad((8 * m) as f64);
            assert!((four - q).abs() <= 1e-15 * four.abs().max(1e-300) + 1e-18, "m={m}");
        }
    }

    #[test]
    fn blocked_sum_matches_naive_sum() {
        for terms in [1u64, 2, 3, 5, 31, 32, 33, 1000, UNIT - 1, UNIT, UNIT + 7, 3 * UNIT + 5] {
            let fast = pi_from(sum_units(terms, 0..units(terms)));
            let slow = pi_seq(terms);
            assert!((fast - slow).abs() < 1e-13, "terms={terms}: {fast} vs {slow}");
        }
    }

    #[test]
    fn any_split_gives_identical_bits() {
        let terms = 5 * UNIT + 123;
        let n = units(terms);
        let whole = sum_units(terms, 0..n);
        for parts in 2..=6 {
            let split: Tally = (0..parts).map(|i| sum_units(terms, block_range(n, parts, i))).sum();
            assert_eq!(split, whole, "parts={parts}");
        }
    }

    #[test]
    fn error_follows_the_series_expansion() {
        let terms = 10_000_000;
        let pi = pi_from(sum_units(terms, 0..units(terms)));
        let err = PI - pi;
        assert!(err.abs() < truncation_bound(terms));
        assert!((err - predicted_error(terms)).abs() < 1e-13, "err={err}");
    }
}
