//! The inner row loop of the heat step, written once over [`Lanes`].
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

impl Kernel for RowStep<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) {
        let RowStep { up, mid, down, out, r } = self;
        let n = out.len();
        assert!(up.len() >= n && down.len() >= n && mid.len() >= n + 2);
        let lanes = S::F64_LANES;
        let (rv, four) = (s.splat_f64s(r), s.splat_f64s(4.0));
        let mut k = 0;
        while k + lanes <= n {
            let u = s.load_f64s(&mid[k + 1..k + 1 + lanes]);
            let west = s.load_f64s(&mid[k..k + lanes]);
            let east = s.load_f64s(&mid[k + 2..k + 2 + lanes]);
            let north = s.load_f64s(&up[k..k + lanes]);
            let south = s.load_f64s(&down[k..k + lanes]);
            let sum = s.add_f64s(s.add_f64s(north, south), s.add_f64s(east, west));
            let v = s.add_f64s(u, s.mul_f64s(rv, s.sub_f64s(sum, s.mul_f64s(four, u))));
            s.store_f64s(&mut out[k..k + lanes], v);
            k += lanes;
        }
        for k in k..n {
            out[k] = super::cell(mid[k + 1], up[k], down[k], mid[k + 2], mid[k], r);
        }
    }
}
