//! Colour maps from a value in `[0, 1]` to RGB, on SIMD lanes.
//!
//! The maps are computed with operations that round the same on every path
//! and platform (IEEE additions, multiplications and fused multiply-adds),
//! so a picture's bytes do not depend on the SIMD path, the CPU or the libm:
//! the rainbow's sine and cosine are polynomials ([`cospi`]), not libm
//! calls, and a channel's byte is rounded by adding 2^52 (ties to even)
//! rather than by `f64::round`.

use crate::simd::{Kernel, Lanes, Path};
use std::f64::consts::PI;

/// A colour map (`--colormap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Colormap {
    /// Matplotlib's `rainbow`, the map the seed's picture used:
    /// red `|2t - 1/2|`, green `sin(pi t)`, blue `cos(pi t / 2)`.
    Rainbow,
    /// Matplotlib's `hot`: black, red, yellow, white.
    Hot,
    /// Grey levels.
    Gray,
}

impl Colormap {
    /// Every map, for listings and tests.
    pub const ALL: [Colormap; 3] = [Colormap::Rainbow, Colormap::Hot, Colormap::Gray];

    /// The colour of `t` (clamped to `[0, 1]`; NaN counts as 0), as every
    /// path computes it. Pixels take it from a table of this function at
    /// steps of `t` (`colour.rs`), within one level of it.
    pub fn rgb(self, t: f64) -> [u8; 3] {
        struct One(Colormap, f64);
        impl Kernel for One {
            type Output = [u8; 3];
            #[inline(always)]
            fn run<S: Lanes>(self, s: S) -> [u8; 3] {
                let [r, g, b] = self.0.rgb_lanes(s, s.splat_f64s(self.1));
                let first = |v: S::u64s| pulp::bytemuck::cast_slice::<_, u64>(std::slice::from_ref(&v))[0] as u8;
                [first(r), first(g), first(b)]
            }
        }
        crate::simd::dispatch_on(Path::Scalar, One(self, t))
    }

    /// The colour of each lane of `t`: the red, green and blue bytes `k`,
    /// each as the bits of `2^52 + k` in its 64-bit lane.
    #[inline(always)]
    pub(crate) fn rgb_lanes<S: Lanes>(self, s: S, t: S::f64s) -> [S::u64s; 3] {
        let (zero, one) = (s.splat_f64s(0.0), s.splat_f64s(1.0));
        // NaN to 0 first (`t >= 0` is false for NaN), so that min and max,
        // whose NaN rules differ between instruction sets, never see one.
        let t = s.select_f64s(s.greater_than_or_equal_f64s(t, zero), t, zero);
        let t = s.min_f64s(t, one);
        let (r, g, b) = match self {
            Colormap::Rainbow => {
                let r = s.abs_f64s(s.mul_add_f64s(s.splat_f64s(2.0), t, s.splat_f64s(-0.5)));
                // sin(pi t) = cos(pi (t - 1/2)); cos(pi t / 2) = cos(pi (t / 2)).
                let g = cospi(s, s.sub_f64s(t, s.splat_f64s(0.5)));
                let b = cospi(s, s.mul_f64s(t, s.splat_f64s(0.5)));
                (r, g, b)
            }
            Colormap::Hot => {
                let three = s.mul_f64s(s.splat_f64s(3.0), t);
                (three, s.sub_f64s(three, one), s.sub_f64s(three, s.splat_f64s(2.0)))
            }
            Colormap::Gray => (t, t, t),
        };
        [byte(s, r), byte(s, g), byte(s, b)]
    }
}

/// `cos(pi x)` for `|x| <= 1/2`: its Taylor polynomial in `u = (pi x)^2`
/// up to `u^7` ([`poly7`]). The first omitted term, `u^8 / 16!` with
/// `u <= pi^2 / 4`, is below 7e-11, and the evaluation's rounding adds a few
/// 1e-16: far below a byte's 1/255.
#[inline(always)]
pub(crate) fn cospi<S: Lanes>(s: S, x: S::f64s) -> S::f64s {
    // (-1)^k / (2k)! for k = 0 to 7.
    const C: [f64; 8] = [
        1.0,
        -0.5,
        1.0 / 24.0,
        -1.0 / 720.0,
        1.0 / 40_320.0,
        -1.0 / 3_628_800.0,
        1.0 / 479_001_600.0,
        -1.0 / 87_178_291_200.0,
    ];
    let px = s.mul_f64s(x, s.splat_f64s(PI));
    poly7(s, &C, s.mul_f64s(px, px))
}

/// `c[0] + c[1] x + ... + c[7] x^7` by Estrin's scheme: four pairs
/// `c[2k] + c[2k+1] x`, joined by `x^2` and then `x^4`, all fused
/// multiply-adds. Three operations deep where Horner's rule is seven, so
/// the colouring is not a chain of dependent FMAs waiting on each other
/// (it was, and that latency was most of its cost). The same operations in
/// the same order on every path, so the same bits.
#[inline(always)]
pub(crate) fn poly7<S: Lanes>(s: S, c: &[f64; 8], x: S::f64s) -> S::f64s {
    let pair = |k: usize| s.mul_add_f64s(s.splat_f64s(c[2 * k + 1]), x, s.splat_f64s(c[2 * k]));
    let x2 = s.mul_f64s(x, x);
    let x4 = s.mul_f64s(x2, x2);
    let lo = s.mul_add_f64s(pair(1), x2, pair(0));
    let hi = s.mul_add_f64s(pair(3), x2, pair(2));
    s.mul_add_f64s(hi, x4, lo)
}

/// A channel value `v` to its byte: `v` clamped to `[0, 1]`, times 255,
/// rounded to the nearest integer (ties to even) by adding 2^52, whose
/// sum's low mantissa bits are that integer. Exact on every path.
#[inline(always)]
fn byte<S: Lanes>(s: S, v: S::f64s) -> S::u64s {
    let v = s.min_f64s(s.max_f64s(v, s.splat_f64s(0.0)), s.splat_f64s(1.0));
    let big = s.mul_add_f64s(v, s.splat_f64s(255.0), s.splat_f64s(4_503_599_627_370_496.0));
    s.transmute_u64s_f64s(big)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The colours before this module used polynomials: libm's sine and
    /// cosine, `f64::round`.
    fn rgb_libm(c: Colormap, t: f64) -> [u8; 3] {
        let t = t.clamp(0.0, 1.0);
        let (r, g, b) = match c {
            Colormap::Rainbow => ((2.0 * t - 0.5).abs(), (PI * t).sin(), (PI * t / 2.0).cos()),
            Colormap::Hot => (3.0 * t, 3.0 * t - 1.0, 3.0 * t - 2.0),
            Colormap::Gray => (t, t, t),
        };
        [r, g, b].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
    }

    #[test]
    fn ends_of_the_maps() {
        assert_eq!(Colormap::Rainbow.rgb(0.0), [128, 0, 255]);
        assert_eq!(Colormap::Rainbow.rgb(1.0), [255, 0, 0]);
        assert_eq!(Colormap::Hot.rgb(0.0), [0, 0, 0]);
        assert_eq!(Colormap::Hot.rgb(1.0), [255, 255, 255]);
        assert_eq!(Colormap::Gray.rgb(0.5), [128, 128, 128]);
        assert_eq!(Colormap::Gray.rgb(2.0), [255, 255, 255]);
        assert_eq!(Colormap::Gray.rgb(f64::NAN), [0, 0, 0]);
    }

    #[test]
    fn cospi_is_within_1e10_of_libm() {
        struct Cos(Vec<f64>);
        impl Kernel for Cos {
            type Output = Vec<f64>;
            #[inline(always)]
            fn run<S: Lanes>(self, s: S) -> Vec<f64> {
                self.0
                    .iter()
                    .map(|&x| pulp::bytemuck::cast_slice::<_, f64>(std::slice::from_ref(&cospi(s, s.splat_f64s(x))))[0])
                    .collect()
            }
        }
        let xs: Vec<f64> = (-5000..=5000).map(|i| f64::from(i) / 10_000.0).collect();
        let mut worst = 0.0f64;
        for p in crate::simd::supported() {
            let got = crate::simd::dispatch_on(p, Cos(xs.clone()));
            for (x, c) in xs.iter().zip(&got) {
                worst = worst.max((c - (PI * x).cos()).abs());
            }
            assert_eq!(got, crate::simd::dispatch_on(Path::Scalar, Cos(xs.clone())), "{p:?}");
        }
        assert!(worst < 1e-10, "{worst:e}");
    }

    /// Against the libm colours, a channel differs by at most one level (a
    /// value within 1e-10 of a half-way point, or a tie, rounds the other way).
    #[test]
    fn maps_stay_within_one_level_of_libm() {
        for c in Colormap::ALL {
            let mut differ = 0;
            for i in 0..=100_000 {
                let t = f64::from(i) / 100_000.0;
                let (a, b) = (c.rgb(t), rgb_libm(c, t));
                for k in 0..3 {
                    assert!(a[k].abs_diff(b[k]) <= 1, "{c:?} t={t}: {a:?} vs {b:?}");
                    differ += usize::from(a[k] != b[k]);
                }
            }
            assert!(differ < 100, "{c:?}: {differ} channels differ");
        }
    }
}
