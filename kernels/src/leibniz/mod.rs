//! The Leibniz series for pi (seed 003): pi/4 = 1 - 1/3 + 1/5 - 1/7 + ...
//!
//! The divider is the bottleneck (about one double per nanosecond per core
//! on the reference Xeon, vector or scalar), so terms are taken sixteen at a
//! time and folded into one fraction (see [`group`]): one division and 37
//! multiplications and additions per sixteen terms. The denominators grow
//! like `x^16`, at most `2^816` for the largest supported term count, well
//! inside the `f64` range.
//!
//! Groups are spread over [`LANES`] fixed accumulators (two AVX-512
//! vectors, four AVX2 ones, eight NEON or scalar pairs) in a fixed order;
//! each work unit of [`UNIT`] terms is rounded once into a fixed-point
//! [`Tally`], and tallies add exactly, so the sum is bit-identical however
//! the units are spread over processes and threads, and every SIMD path
//! gives the same bits.
//!
//! Layout: this file holds the parameters, the group, the reference and
//! the units; `simd.rs` the hot loop, written once over [`crate::simd`].

mod simd;

use crate::simd::Path;
use crate::Tally;
use rayon::prelude::*;
use std::ops::Range;

/// Terms per work unit (a multiple of [`GROUP`]` * `[`LANES`], so units start
/// on a round and the lanes tile them exactly).
pub const UNIT: u64 = 1 << 16;

/// The largest supported term count: beyond 2^50 the denominators (about
/// 2N) lose exactness in the products of an `f64`.
pub const MAX_TERMS: u64 = 1 << 50;

/// Terms folded into one division.
pub(crate) const GROUP: u64 = 16;

/// Fixed accumulators, each summing every `LANES`-th group.
pub(crate) const LANES: usize = 16;

/// Terms per round (one group per lane).
const ROUND: u64 = GROUP * LANES as u64;

/// Work units needed for `terms` terms.
pub fn units(terms: u64) -> u64 {
    terms.div_ceil(UNIT)
}

/// A quarter of the sum of the sixteen terms starting at term `x / 2` (a
/// multiple of 16, so the first term is positive), given `x` as an exact
/// `f64`.
///
/// Four terms around a centre `v` fold into one fraction:
/// `1/(v-3) - 1/(v-1) + 1/(v+1) - 1/(v+3) = 4w / (w^2 - 16v^2)` with
/// `w = v^2 + 3`; then pairs of fractions combine, `a/b + c/d = (ad + cb)/(bd)`,
/// up to one numerator and one denominator: 31 operations (fused
/// multiply-adds where they save one) and one division for sixteen terms.
/// `mul_add` is one correctly rounded IEEE operation, so every path that
/// spells these operations out (AVX-512, AVX2+FMA, NEON, libm) agrees.
#[inline(always)]
pub(crate) fn group(x: f64) -> f64 {
    let quad = |c: f64| {
        let v = x + c;
        let v2 = v * v;
        let w = v2 + 3.0;
        (w, w.mul_add(w, -16.0 * v2))
    };
    let (n0, d0) = quad(4.0);
    let (n1, d1) = quad(12.0);
    let (n2, d2) = quad(20.0);
    let (n3, d3) = quad(28.0);
    let (na, da) = (n0.mul_add(d1, n1 * d0), d0 * d1);
    let (nb, db) = (n2.mul_add(d3, n3 * d2), d2 * d3);
    na.mul_add(db, nb * da) / (da * db)
}

/// Signed term `k`: `(-1)^k / (2k + 1)`.
#[inline]
fn term(k: u64) -> f64 {
    let t = 1.0 / (2 * k + 1) as f64;
    if k.is_multiple_of(2) {
        t
    } else {
        -t
    }
}

/// The lane accumulators after `rounds` rounds from group `g0`, term by
/// term in plain Rust: the reference the SIMD paths are tested against.
#[cfg(test)]
fn rounds_reference(g0: u64, rounds: u64) -> [f64; LANES] {
    let mut acc = [0.0f64; LANES];
    for r in 0..rounds {
        // Exact: every value here is an integer below 2^53.
        let base = (2 * GROUP * (g0 + r * LANES as u64)) as f64;
        for (l, a) in acc.iter_mut().enumerate() {
            *a += group(base + (2 * GROUP) as f64 * l as f64);
        }
    }
    acc
}

/// The lane accumulators on `path` ([`simd::Rounds`]). (An AVX-512
/// `std::arch` twin of this loop ran no faster, within the noise of
/// docs/benchmarks.md's run, so there is none.)
fn rounds_on(path: Path, g0: u64, rounds: u64) -> [f64; LANES] {
    crate::simd::dispatch_on(path, simd::Rounds { g0, rounds })
}

/// The name of the loop this process runs, for reports.
pub fn implementation() -> &'static str {
    crate::simd::implementation(false)
}

/// The lane accumulators, on this process's path.
fn rounds(g0: u64, rounds: u64) -> [f64; LANES] {
    rounds_on(crate::simd::path(), g0, rounds)
}

/// The sum of terms `range`, where `range.start` is a multiple of [`ROUND`],
/// with the lane accumulators from `lanes`.
#[inline(always)]
fn block_sum(range: Range<u64>, lanes: impl FnOnce(u64, u64) -> [f64; LANES]) -> f64 {
    debug_assert_eq!(range.start % ROUND, 0);
    let n_rounds = (range.end - range.start) / ROUND;
    let acc = lanes(range.start / GROUP, n_rounds);
    // The tail: whole groups, then single terms.
    let mut k = range.start + n_rounds * ROUND;
    let mut groups = 0.0;
    while k + GROUP <= range.end {
        groups += group((2 * k) as f64);
        k += GROUP;
    }
    let mut singles = 0.0;
    while k < range.end {
        singles += term(k);
        k += 1;
    }
    let mut level = acc.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|c| c.iter().sum()).collect();
    }
    4.0 * (level[0] + groups) + singles
}

/// The sum of unit `u` of a series of `terms` terms.
pub fn unit_sum(terms: u64, u: u64) -> f64 {
    let start = u * UNIT;
    block_sum(start..(start + UNIT).min(terms), rounds)
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
    if terms.is_multiple_of(2) {
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
    fn group_matches_sixteen_terms() {
        for g in [0u64, 1, 17, 1_000_003, 1 << 46] {
            let k0 = GROUP * g;
            // Positive pairs 1/(2k+1) - 1/(2k+3) = 2/((2k+1)(2k+3)): no cancellation.
            let sixteen: f64 = (0..GROUP / 2)
                .map(|j| {
                    let d = (2 * (k0 + 2 * j) + 1) as f64;
                    2.0 / (d * (d + 2.0))
                })
                .sum();
            let q = 4.0 * group((2 * k0) as f64);
            assert!((sixteen - q).abs() <= 1e-14 * sixteen.abs(), "g={g}: {sixteen:e} vs {q:e}");
        }
    }

    #[test]
    fn every_path_gives_identical_bits() {
        for path in crate::simd::supported() {
            for terms in [ROUND, 3 * ROUND + 17, UNIT, 2 * UNIT + 100, MAX_TERMS] {
                let last = units(terms) - 1;
                let start = last * UNIT;
                let range = start..(start + UNIT).min(terms);
                let fast = block_sum(range.clone(), |g, r| rounds_on(path, g, r));
                let reference = block_sum(range, rounds_reference);
                assert_eq!(fast.to_bits(), reference.to_bits(), "{path:?} terms={terms}");
            }
            assert_eq!(rounds_on(path, 12_345, 7), rounds_reference(12_345, 7), "{path:?}");
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
