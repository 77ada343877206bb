//! Dense matrix multiply `C = A B` of square `f64` matrices (issue 4): the
//! deterministic test matrices, the local GEMM, the SUMMA panel plan and
//! Freivalds' check. All matrices are row-major slices; the distributed
//! algorithms (row blocks, SUMMA) live in the binary's runtime and call these.
//!
//! The local GEMM is faer's (`faer::linalg::matmul`), measured here at
//! 100-123 GF/s per core, about 90% of the machine's peak: a hand-written
//! kernel would be slower and would need its own SIMD for every target.
//!
//! Bit-identity: faer's result for one entry of `C` depends on how it blocks
//! the `k` loop, which can change with the shape of the sub-problem, so a row
//! block computed alone may differ in the last bits from the same rows of a
//! full multiply. Only [`Entries::Integer`] matrices (small integers, every
//! partial sum exact in `f64`) give a `C` that is bit-identical for every
//! process count and algorithm; other matrices are verified by Freivalds'
//! check within a rounding-error bound.

use crate::counter;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::ops::Range;

/// What the generated matrices hold (`--entries`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Entries {
    /// Uniform doubles in [-1, 1).
    Uniform,
    /// Small integers in [-8, 8].
    ///
    /// Every product and partial sum of `C` is an integer below 2^53, so
    /// `C` is exact whatever the summation order.
    Integer,
}

/// Which generated matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The left factor.
    A = 0,
    /// The right factor.
    B = 1,
}

/// Largest `n` for which an [`Entries::Integer`] product (and Freivalds'
/// products) stays exact: `n^2 * 8^3 < 2^53` with room to spare.
pub const MAX_EXACT_N: usize = 1 << 20;

/// Entry `(i, j)` of generated matrix `which` of order `n`.
#[inline]
pub fn entry(key: u64, n: usize, i: usize, j: usize, entries: Entries) -> f64 {
    let bits = counter::at(key, (i as u64) * (n as u64) + j as u64);
    match entries {
        Entries::Uniform => 2.0 * counter::unit_f64(bits) - 1.0,
        Entries::Integer => ((bits >> 32) % 17) as f64 - 8.0,
    }
}

/// The stream key of generated matrix `which` for `seed`.
pub fn matrix_key(seed: u64, which: Which) -> u64 {
    counter::stream_key(seed, which as u64)
}

/// Fills `out` (row-major, `rows.len() x cols.len()`) with the block
/// `rows x cols` of generated matrix `which` of order `n`, in parallel.
pub fn fill_block(
    seed: u64,
    which: Which,
    n: usize,
    entries: Entries,
    rows: Range<usize>,
    cols: Range<usize>,
    out: &mut [f64],
) {
    let key = matrix_key(seed, which);
    let width = cols.len();
    assert_eq!(out.len(), rows.len() * width, "block buffer size");
    if width == 0 {
        return;
    }
    out.par_chunks_mut(width).zip(rows).for_each(|(row, i)| {
        for (x, j) in row.iter_mut().zip(cols.clone()) {
            *x = entry(key, n, i, j, entries);
        }
    });
}

/// A whole generated matrix of order `n`.
pub fn generate(seed: u64, which: Which, n: usize, entries: Entries) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    fill_block(seed, which, n, entries, 0..n, 0..n, &mut m);
    m
}

/// A row-major matrix view: `rows x cols` entries, rows `stride` apart.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The entries (at least `(rows - 1) * stride + cols` of them).
    pub data: &'a [f64],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between the starts of consecutive rows.
    pub stride: usize,
}

impl<'a> View<'a> {
    /// A dense row-major matrix.
    pub fn dense(data: &'a [f64], rows: usize, cols: usize) -> View<'a> {
        View { data, rows, cols, stride: cols }
    }

    /// Columns `cols` of this view.
    pub fn columns(self, cols: Range<usize>) -> View<'a> {
        assert!(cols.end <= self.cols);
        let data = if self.rows == 0 || cols.is_empty() { &self.data[..0] } else { &self.data[cols.start..] };
        View { data, rows: self.rows, cols: cols.len(), stride: self.stride }
    }

    fn faer(self) -> MatRef<'a, f64> {
        if self.rows == 0 || self.cols == 0 {
            return MatRef::from_row_major_slice(&[], self.rows, self.cols);
        }
        MatRef::from_row_major_slice_with_stride(self.data, self.rows, self.cols, self.stride)
    }
}

/// `C (+)= A B` with faer's GEMM on `threads` threads of the current rayon
/// pool (`1`: sequential). `c` is dense row-major `a.rows x b.cols`.
pub fn gemm(c: &mut [f64], a: View, b: View, accumulate: bool, threads: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert_eq!(c.len(), a.rows * b.cols, "product buffer size");
    let par = if threads <= 1 { Par::Seq } else { Par::rayon(threads) };
    let dst = MatMut::from_row_major_slice_mut(c, a.rows, b.cols);
    let accum = if accumulate { Accum::Add } else { Accum::Replace };
    matmul(dst, accum, a.faer(), b.faer(), 1.0, par);
}

/// The textbook triple loop (`i, k, j` order), for tests: each entry is
/// summed in increasing `k`.
pub fn multiply_naive(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

/// Floating-point operations of one multiply of order `n` (`2 n^3`).
pub fn flops(n: usize) -> f64 {
    2.0 * (n as f64).powi(3)
}

/// The outcome of [`freivalds`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Freivalds {
    /// Whether `C x` matched `A (B x)` within the bound (exactly, for integer entries).
    pub passed: bool,
    /// The largest `|A(Bx) - Cx|_i` divided by its allowed error (0 when exact).
    pub worst_ratio: f64,
    /// The row where `worst_ratio` was reached.
    pub worst_row: usize,
    /// The check's own `A (B x)` (or its error bound) overflows f64 in
    /// `worst_row`: C cannot be checked in double precision at all.
    pub uncheckable: bool,
}

/// Freivalds' check of `C = A B` (order `n`) with one random vector `x`
/// drawn from `seed`: compares `C x` with `A (B x)` in `O(n^2)` work.
///
/// A wrong `C` passes only if its error happens to be orthogonal to `x`.
/// With [`Entries::Integer`] matrices `x` is integer too and every sum is
/// exact, so the comparison is exact. Otherwise row `i` may differ by the
/// rounding error of the three products, bounded by
/// `tol_i = 4 (n + 2) eps (|A| (|B| |x|))_i` (the standard `n u` bound on a
/// dot product, with a factor 4 of headroom for the GEMM's blocking).
pub fn freivalds(a: &[f64], b: &[f64], c: &[f64], n: usize, seed: u64, entries: Entries) -> Freivalds {
    let key = counter::stream_key(seed, 0x4652_4549); // "FREI"
    let x: Vec<f64> = (0..n as u64)
        .map(|i| {
            let bits = counter::at(key, i);
            match entries {
                Entries::Uniform => 1.0 + counter::unit_f64(bits), // in [1, 2): no near-zero weights
                Entries::Integer => ((bits >> 32) % 7) as f64 + 1.0,
            }
        })
        .collect();
    let matvec = |m: &[f64], v: &[f64], abs: bool| -> Vec<f64> {
        m.par_chunks(n.max(1))
            .map(|row| {
                if abs {
                    row.iter().zip(v).map(|(p, q)| p.abs() * q.abs()).sum()
                } else {
                    row.iter().zip(v).map(|(p, q)| p * q).sum()
                }
            })
            .collect()
    };
    let abx = matvec(a, &matvec(b, &x, false), false);
    let cx = matvec(c, &x, false);
    let bound = match entries {
        Entries::Integer => vec![0.0; n],
        Entries::Uniform => {
            let t = matvec(a, &matvec(b, &x, true), true);
            let eps = f64::EPSILON;
            t.iter().map(|t| 4.0 * (n as f64 + 2.0) * eps * t + f64::MIN_POSITIVE).collect()
        }
    };
    // Entries so large that the check's own products overflow: C may be
    // right, but nothing here can say so.
    if let Some(i) = (0..n).find(|&i| !abx[i].is_finite() || !bound[i].is_finite()) {
        return Freivalds { passed: false, worst_ratio: f64::INFINITY, worst_row: i, uncheckable: true };
    }
    let mut result = Freivalds { passed: true, worst_ratio: 0.0, worst_row: 0, uncheckable: false };
    for i in 0..n {
        let diff = (abx[i] - cx[i]).abs();
        let ok = if entries == Entries::Integer { diff == 0.0 } else { diff <= bound[i] };
        // NaN in C fails: `diff <= bound` is false and the ratio is NaN.
        let ratio = if entries == Entries::Integer {
            if diff == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            diff / bound[i]
        };
        if !ok {
            result.passed = false;
        }
        if ratio > result.worst_ratio || ratio.is_nan() {
            result.worst_ratio = ratio;
            result.worst_row = i;
            if ratio.is_nan() {
                break;
            }
        }
    }
    result
}

/// One step of SUMMA: the `k` range of the panel, the process-grid column
/// that owns those columns of `A` and the grid row that owns those rows of `B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    /// Inner-dimension indices of the panel.
    pub k: Range<usize>,
    /// Grid column holding `A[:, k]` (its root in each grid row).
    pub a_col: usize,
    /// Grid row holding `B[k, :]` (its root in each grid column).
    pub b_row: usize,
}

/// The panels of SUMMA on a `pr x pc` grid for order `n`: `A`'s columns are
/// cut into `pc` blocks and `B`'s rows into `pr` blocks
/// ([`crate::partition::block_range`]); a panel never crosses a cut of
/// either, and is at most `max_width` wide.
pub fn summa_panels(n: usize, pr: usize, pc: usize, max_width: usize) -> Vec<Panel> {
    assert!(pr > 0 && pc > 0 && max_width > 0);
    let cuts = |parts: usize| {
        (0..parts).map(move |p| crate::partition::block_range(n as u64, parts as u64, p as u64).end as usize)
    };
    let mut breaks: Vec<usize> = cuts(pc).chain(cuts(pr)).collect();
    breaks.sort_unstable();
    breaks.dedup();
    let owner = |parts: usize, k: usize| {
        (0..parts).find(|&p| crate::partition::block_range(n as u64, parts as u64, p as u64).contains(&(k as u64)))
    };
    let mut panels = Vec::new();
    let mut start = 0;
    for end in breaks {
        while start < end {
            let stop = end.min(start + max_width);
            panels.push(Panel {
                k: start..stop,
                a_col: owner(pc, start).expect("in range"),
                b_row: owner(pr, start).expect("in range"),
            });
            start = stop;
        }
    }
    panels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_blocks_match_the_whole_matrix() {
        let n = 7;
        for entries in [Entries::Uniform, Entries::Integer] {
            let whole = generate(3, Which::B, n, entries);
            let mut block = vec![0.0; 3 * 4];
            fill_block(3, Which::B, n, entries, 2..5, 1..5, &mut block);
            for (r, i) in (2..5).enumerate() {
                assert_eq!(&block[r * 4..r * 4 + 4], &whole[i * n + 1..i * n + 5]);
            }
            assert_ne!(generate(3, Which::A, n, entries), whole, "A and B differ");
            assert_ne!(generate(4, Which::B, n, entries), whole, "the seed matters");
        }
        let ints = generate(1, Which::A, 64, Entries::Integer);
        assert!(ints.iter().all(|&x| x.fract() == 0.0 && (-8.0..=8.0).contains(&x)));
        assert!(ints.contains(&-8.0) && ints.contains(&8.0));
        let unif = generate(1, Which::A, 64, Entries::Uniform);
        assert!(unif.iter().all(|&x| (-1.0..1.0).contains(&x)));
    }

    #[test]
    fn gemm_equals_the_naive_multiply_exactly_on_integers() {
        for n in [1, 5, 33, 130] {
            let a = generate(9, Which::A, n, Entries::Integer);
            let b = generate(9, Which::B, n, Entries::Integer);
            let want = multiply_naive(&a, &b, n);
            for threads in [1, 2] {
                let mut c = vec![f64::NAN; n * n];
                gemm(&mut c, View::dense(&a, n, n), View::dense(&b, n, n), false, threads);
                assert_eq!(c, want, "n={n} threads={threads}");
            }
        }
    }

    #[test]
    fn panels_of_a_row_block_and_column_panels_add_up() {
        // C = sum over panels of A[:, k] B[k, :], with strided column views.
        let n = 37;
        let a = generate(2, Which::A, n, Entries::Integer);
        let b = generate(2, Which::B, n, Entries::Integer);
        let want = multiply_naive(&a, &b, n);
        let mut c = vec![0.0; n * n];
        for (i, p) in summa_panels(n, 2, 3, 8).iter().enumerate() {
            let bk = &b[p.k.start * n..p.k.end * n];
            gemm(&mut c, View::dense(&a, n, n).columns(p.k.clone()), View::dense(bk, p.k.len(), n), i > 0, 1);
        }
        assert_eq!(c, want);
        // A row block alone.
        let rows = 10..20;
        let mut block = vec![0.0; rows.len() * n];
        gemm(&mut block, View::dense(&a[rows.start * n..rows.end * n], rows.len(), n), View::dense(&b, n, n), false, 2);
        assert_eq!(block, want[rows.start * n..rows.end * n]);
    }

    #[test]
    fn summa_panels_cover_k_and_respect_both_cuts() {
        for (n, pr, pc, w) in [(10, 1, 1, 100), (10, 2, 3, 100), (17, 3, 2, 4), (3, 2, 2, 1), (2, 1, 4, 8)] {
            let panels = summa_panels(n, pr, pc, w);
            let mut at = 0;
            for p in &panels {
                assert_eq!(p.k.start, at);
                assert!(!p.k.is_empty() && p.k.len() <= w);
                let a_block = crate::partition::block_range(n as u64, pc as u64, p.a_col as u64);
                let b_block = crate::partition::block_range(n as u64, pr as u64, p.b_row as u64);
                assert!(a_block.start <= p.k.start as u64 && p.k.end as u64 <= a_block.end);
                assert!(b_block.start <= p.k.start as u64 && p.k.end as u64 <= b_block.end);
                at = p.k.end;
            }
            assert_eq!(at, n, "n={n} pr={pr} pc={pc}");
        }
    }

    #[test]
    fn freivalds_accepts_right_products_and_catches_one_wrong_entry() {
        for entries in [Entries::Integer, Entries::Uniform] {
            let n = 64;
            let a = generate(5, Which::A, n, entries);
            let b = generate(5, Which::B, n, entries);
            let mut c = vec![0.0; n * n];
            gemm(&mut c, View::dense(&a, n, n), View::dense(&b, n, n), false, 2);
            let ok = freivalds(&a, &b, &c, n, 1, entries);
            assert!(ok.passed, "{entries:?}: {ok:?}");
            // A wrong entry, even by much less than one unit of an integer entry.
            let delta = if entries == Entries::Integer { 1.0 } else { 1e-9 };
            c[17 * n + 40] += delta;
            let bad = freivalds(&a, &b, &c, n, 1, entries);
            assert!(!bad.passed && bad.worst_row == 17, "{entries:?}: {bad:?}");
            c[17 * n + 40] = f64::NAN;
            assert!(!freivalds(&a, &b, &c, n, 1, entries).passed);
        }
    }

    #[test]
    fn a_check_whose_own_products_overflow_says_so() {
        // C = A B = 0 exactly, but A (B x) sums 1e308 * (B x) terms: inf - inf.
        let (a, b, c) = ([1e308, -1e308, 1e308, -1e308], [1.0; 4], [0.0; 4]);
        let r = freivalds(&a, &b, &c, 2, 1, Entries::Uniform);
        assert!(!r.passed && r.uncheckable && r.worst_row == 0, "{r:?}");
        let r = freivalds(&[1.0, 0.0, 0.0, 1.0], &b, &b, 2, 1, Entries::Uniform);
        assert!(r.passed && !r.uncheckable, "{r:?}");
    }

    #[test]
    fn empty_and_one_by_one() {
        let mut c = vec![0.0; 0];
        gemm(&mut c, View::dense(&[], 0, 3), View::dense(&[0.0; 3], 3, 1), false, 1);
        let mut c = vec![0.0; 2];
        gemm(&mut c, View::dense(&[], 2, 0), View::dense(&[], 0, 1), false, 1);
        assert_eq!(c, [0.0, 0.0], "an empty inner dimension gives zeros");
        let mut c = [0.0];
        gemm(&mut c, View::dense(&[3.0], 1, 1), View::dense(&[-2.0], 1, 1), false, 1);
        assert_eq!(c, [-6.0]);
    }
}
