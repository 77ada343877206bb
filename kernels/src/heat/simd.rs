//! The inner row loops of the heat step, written once over [`Lanes`].
//!
//! Each lane computes [`super::cell`]'s expression with the same operations
//! in the same order (two adds, an add, an exact multiply by 4, a subtract,
//! a multiply, an add; no fused multiply-add), so every path gives the
//! reference's bits.

use crate::simd::{Kernel, Lanes};

/// One row span of the update: `out[k]` from the cell `mid[k + 1]`, its
/// west and east neighbours `mid[k]` and `mid[k + 2]`, and the cells
/// `up[k]` (north) and `down[k]` (south).
pub(super) struct RowStep<'a> {
    pub up: &'a [f64],
    pub mid: &'a [f64],
    pub down: &'a [f64],
    /// The source buffer from `down`'s first cell to its end: what the
    /// coming vectors of this row, then the next rows, read fresh from
    /// memory, prefetched [`PREFETCH_CELLS`] ahead of the loop.
    pub ahead: &'a [f64],
    pub out: &'a mut [f64],
    pub r: f64,
    /// Whether whole vectors of `out` are written with
    /// [`Lanes::stream_f64s`] (past the caches, for a field far larger than
    /// them; the cells before `out`'s first vector boundary are computed
    /// one at a time). The values are the same either way.
    pub stream: bool,
}

/// How far ahead of the cell being updated the row below is prefetched
/// ([`Lanes::prefetch_f64`]): 8 KiB. The hardware prefetcher alone keeps too
/// few of that stream's lines in flight on some cores. Measured on the Zen 5
/// VM of docs/benchmarks.md (4000 x 4000, one thread, streamed stores,
/// against the streamed triad in the same process, four rows per pass): no
/// prefetch 45-49 %; 64, 256, 1024, 2048, 4000, 8000 cells ahead 57-58,
/// 60-62, 60-69, 57-62, 54-57, 49-52 %.
pub(super) const PREFETCH_CELLS: usize = 1024;

impl RowStep<'_> {
    /// Checks the spans' lengths once, so that the loops' slicing cannot fail.
    fn check(&self) -> usize {
        let n = self.out.len();
        assert!(self.up.len() >= n && self.down.len() >= n && self.mid.len() >= n + 2);
        n
    }

    /// The updated cells `k .. k + lanes`, stored.
    #[inline(always)]
    fn vector<S: Lanes>(&mut self, s: S, k: usize, rv: S::f64s, four: S::f64s) {
        let lanes = S::F64_LANES;
        s.prefetch_f64(self.ahead, k + PREFETCH_CELLS);
        let u = s.load_f64s(&self.mid[k + 1..k + 1 + lanes]);
        let west = s.load_f64s(&self.mid[k..k + lanes]);
        let east = s.load_f64s(&self.mid[k + 2..k + 2 + lanes]);
        let north = s.load_f64s(&self.up[k..k + lanes]);
        let south = s.load_f64s(&self.down[k..k + lanes]);
        let sum = s.add_f64s(s.add_f64s(north, south), s.add_f64s(east, west));
        let v = s.add_f64s(u, s.mul_f64s(rv, s.sub_f64s(sum, s.mul_f64s(four, u))));
        if self.stream {
            s.stream_f64s(&mut self.out[k..k + lanes], v);
        } else {
            s.store_f64s(&mut self.out[k..k + lanes], v);
        }
    }

    /// The cells from `from` to `to`, one at a time.
    #[inline(always)]
    fn cells(&mut self, from: usize, to: usize) {
        let (up, mid, down, r) = (self.up, self.mid, self.down, self.r);
        for (k, o) in self.out.iter_mut().enumerate().take(to).skip(from) {
            *o = super::cell(mid[k + 1], up[k], down[k], mid[k + 2], mid[k], r);
        }
    }

    /// Where the vectors start: 0, or with [`RowStep::stream`] the first
    /// cell of `out` on a vector boundary (at most the row's length).
    #[inline(always)]
    fn head<S: Lanes>(&self, n: usize) -> usize {
        if self.stream {
            self.out.as_ptr().align_offset(std::mem::size_of::<S::f64s>()).min(n)
        } else {
            0
        }
    }
}

impl Kernel for RowStep<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Lanes>(mut self, s: S) {
        let n = self.check();
        let lanes = S::F64_LANES;
        let (rv, four) = (s.splat_f64s(self.r), s.splat_f64s(4.0));
        let mut k = self.head::<S>(n);
        self.cells(0, k);
        while k + lanes <= n {
            self.vector(s, k, rv, four);
            k += lanes;
        }
        self.cells(k, n);
        if self.stream {
            s.stream_fence();
        }
    }
}

/// `N` row spans of the same length (and the same `r`) updated in one
/// loop, a vector of each in turn: `N` rows below read fresh from memory
/// side by side, `N` times the misses in flight of one row at a time. Each
/// cell's value is [`RowStep`]'s.
pub(super) struct Rows<'a, const N: usize>(pub [RowStep<'a>; N]);

impl<const N: usize> Kernel for Rows<'_, N> {
    type Output = ();

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) {
        let Rows(mut rows) = self;
        let n = rows[0].check();
        let r = rows[0].r;
        assert!(rows.iter().all(|x| x.check() == n && x.r.to_bits() == r.to_bits()), "rows of one length and one r");
        let lanes = S::F64_LANES;
        let (rv, four) = (s.splat_f64s(r), s.splat_f64s(4.0));
        // Each row's vectors start at its own boundary (`head`); the rows
        // run together for as many vectors as all have room for.
        let heads: [usize; N] = std::array::from_fn(|k| rows[k].head::<S>(n));
        for (row, &h) in rows.iter_mut().zip(&heads) {
            row.cells(0, h);
        }
        let vectors = (n - heads.iter().copied().max().unwrap_or(0)) / lanes;
        for v in 0..vectors {
            for (row, &h) in rows.iter_mut().zip(&heads) {
                row.vector(s, h + v * lanes, rv, four);
            }
        }
        for (row, &h) in rows.iter_mut().zip(&heads) {
            row.cells(h + vectors * lanes, n);
        }
        if rows.iter().any(|x| x.stream) {
            s.stream_fence();
        }
    }
}
