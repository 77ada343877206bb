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
    pub out: &'a mut [f64],
    pub r: f64,
}

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
        let u = s.load_f64s(&self.mid[k + 1..k + 1 + lanes]);
        let west = s.load_f64s(&self.mid[k..k + lanes]);
        let east = s.load_f64s(&self.mid[k + 2..k + 2 + lanes]);
        let north = s.load_f64s(&self.up[k..k + lanes]);
        let south = s.load_f64s(&self.down[k..k + lanes]);
        let sum = s.add_f64s(s.add_f64s(north, south), s.add_f64s(east, west));
        let v = s.add_f64s(u, s.mul_f64s(rv, s.sub_f64s(sum, s.mul_f64s(four, u))));
        s.store_f64s(&mut self.out[k..k + lanes], v);
    }

    /// The cells from `from` to the end, one at a time.
    #[inline(always)]
    fn tail(&mut self, from: usize) {
        let (up, mid, down, r) = (self.up, self.mid, self.down, self.r);
        for (k, o) in self.out.iter_mut().enumerate().skip(from) {
            *o = super::cell(mid[k + 1], up[k], down[k], mid[k + 2], mid[k], r);
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
        let mut k = 0;
        while k + lanes <= n {
            self.vector(s, k, rv, four);
            k += lanes;
        }
        self.tail(k);
    }
}

/// Two row spans of the same length (and the same `r`) updated in one
/// loop, a vector of each in turn: two rows below read fresh from memory
/// side by side, twice the misses in flight of one row at a time. Each
/// cell's value is [`RowStep`]'s.
pub(super) struct RowPair<'a>(pub RowStep<'a>, pub RowStep<'a>);

impl Kernel for RowPair<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) {
        let RowPair(mut a, mut b) = self;
        let n = a.check();
        assert!(b.check() == n && a.r.to_bits() == b.r.to_bits(), "a pair of rows of one length and one r");
        let lanes = S::F64_LANES;
        let (rv, four) = (s.splat_f64s(a.r), s.splat_f64s(4.0));
        let mut k = 0;
        while k + lanes <= n {
            a.vector(s, k, rv, four);
            b.vector(s, k, rv, four);
            k += lanes;
        }
        a.tail(k);
        b.tail(k);
    }
}
