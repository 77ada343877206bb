//! The Leibniz rounds written once over the SIMD layer ([`crate::simd`]):
//! the same operations as [`super::group`], lane by lane, on every path.

use super::{GROUP, LANES};
use crate::simd::{Kernel, Lanes};

/// The lane accumulators after `rounds` rounds from group `g0`.
pub(super) struct Rounds {
    pub g0: u64,
    pub rounds: u64,
}

/// Vectors of the accumulators on the narrowest path (two lanes).
const MAX_VECTORS: usize = LANES / 2;

impl Kernel for Rounds {
    type Output = [f64; LANES];

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) -> [f64; LANES] {
        let w = S::F64_LANES;
        let vectors = LANES / w;
        let span = (2 * GROUP) as f64; // x advances by 2 per term
                                       // Room for MAX_VECTORS whole vectors of the widest path; those past
                                       // LANES are never used.
        let offsets: [f64; 8 * MAX_VECTORS] = std::array::from_fn(|l| span * l as f64);
        let offs: [S::f64s; MAX_VECTORS] = std::array::from_fn(|v| s.load_f64s(&offsets[v * w..(v + 1) * w]));
        let mut acc = [s.splat_f64s(0.0); MAX_VECTORS];
        for r in 0..self.rounds {
            // Exact: every value here is an integer below 2^53.
            let base = s.splat_f64s((2 * GROUP * (self.g0 + r * LANES as u64)) as f64);
            for v in 0..vectors {
                acc[v] = s.add_f64s(acc[v], group(s, s.add_f64s(base, offs[v])));
            }
        }
        let mut out = [0.0; LANES];
        for v in 0..vectors {
            s.store_f64s(&mut out[v * w..(v + 1) * w], acc[v]);
        }
        out
    }
}

/// [`super::group`] on every lane: the same operations in the same order.
#[inline(always)]
fn group<S: Lanes>(s: S, x: S::f64s) -> S::f64s {
    let c = |k: f64| s.splat_f64s(k);
    let quad = |k: f64| {
        let v = s.add_f64s(x, c(k));
        let v2 = s.mul_f64s(v, v);
        let w = s.add_f64s(v2, c(3.0));
        (w, s.mul_add_f64s(w, w, s.mul_f64s(c(-16.0), v2)))
    };
    let (n0, d0) = quad(4.0);
    let (n1, d1) = quad(12.0);
    let (n2, d2) = quad(20.0);
    let (n3, d3) = quad(28.0);
    let (na, da) = (s.mul_add_f64s(n0, d1, s.mul_f64s(n1, d0)), s.mul_f64s(d0, d1));
    let (nb, db) = (s.mul_add_f64s(n2, d3, s.mul_f64s(n3, d2)), s.mul_f64s(d2, d3));
    let n = s.mul_add_f64s(na, db, s.mul_f64s(nb, da));
    s.div_f64s(n, s.mul_f64s(da, db))
}
