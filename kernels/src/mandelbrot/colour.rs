//! Smooth colouring on SIMD lanes: a pixel's colour from its escape count
//! `n` and final `|z|^2`, written once over [`crate::simd`] like the escape
//! loops, so that colouring a row costs a few vector operations per pixel
//! rather than libm calls (it cost nine times the escape loop before).
//!
//! The continuous escape count is `n + 1 - log2(ln |z|)`; both logarithms
//! are [`ln`], a polynomial that rounds the same on every path and platform
//! (libm's do not promise that), so the picture's bytes are the same for
//! every SIMD path, CPU, process count and thread count.

use super::Params;
use crate::simd::{Kernel, Lanes, Path};
use std::f64::consts::{LN_2, LOG2_E};

/// `2^52`, whose sum with a small integer `k` has `k` in its low bits.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// The bits of `sqrt(1/2)` (rounded down), the low end of [`ln`]'s range.
const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcc;

/// `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))` (about), for positive
/// normal finite `x`: returns `(m, e)`, both exact, by integer arithmetic
/// on the bits (adding 1024 to the exponent keeps every quantity positive,
/// so logical shifts do).
#[inline(always)]
fn split<S: Lanes>(s: S, x: S::f64s) -> (S::f64s, S::f64s) {
    let bits = s.transmute_u64s_f64s(x);
    let u = s.add_u64s(bits, s.splat_u64s((1024 << 52) - SQRT_HALF_BITS));
    let k = s.shr_u64s::<52>(u); // e + 1024
    let m = s.add_u64s(s.sub_u64s(bits, s.shl_u64s::<52>(k)), s.splat_u64s(1024 << 52));
    let e = s.transmute_f64s_u64s(s.or_u64s(k, s.splat_u64s(TWO_52.to_bits())));
    (s.transmute_f64s_u64s(m), s.sub_f64s(e, s.splat_f64s(TWO_52 + 1024.0)))
}

/// `ln m` for `m` in `[sqrt(1/2), sqrt(2)]`: `x h(x)` with `x = m - 1`
/// (exact) and `h` a degree-11 polynomial close to `ln(1 + x) / x` (its
/// Chebyshev interpolant on that range, fitted with mpmath, error 1.4e-10),
/// by Horner's rule with fused multiply-adds: no division, which would cost
/// more than the rest of the colouring on AVX-512. Absolute error below
/// 5e-11 (measured, `ln_is_within_1e10_of_libm`).
#[inline(always)]
fn ln_reduced<S: Lanes>(s: S, m: S::f64s) -> S::f64s {
    const H: [f64; 12] = [
        -0.058456713350896375,
        0.10636542375579953,
        -0.10898112577877182,
        0.11042736039719009,
        -0.12410885665961421,
        0.14283798395270253,
        -0.16670383652377296,
        0.2000016963794254,
        -0.24999936585814816,
        0.3333333084628052,
        -0.5000000030845538,
        1.000000000048012,
    ];
    let x = s.sub_f64s(m, s.splat_f64s(1.0));
    let mut h = s.splat_f64s(H[0]);
    for &c in &H[1..] {
        h = s.mul_add_f64s(h, x, s.splat_f64s(c));
    }
    s.mul_f64s(x, h)
}

/// The natural logarithm of positive normal finite lanes: `e ln 2 + ln m`
/// ([`split`], [`ln_reduced`]). Measured against libm over 2e5 points from
/// 0.5 to 1e300 (`ln_is_within_1e10_of_libm`): error below 1e-10 times
/// `max(1, |ln x|)`; a colour needs about 1e-6.
#[inline(always)]
pub(crate) fn ln<S: Lanes>(s: S, x: S::f64s) -> S::f64s {
    let (m, e) = split(s, x);
    s.mul_add_f64s(e, s.splat_f64s(LN_2), ln_reduced(s, m))
}

/// `log2 x` for positive normal finite lanes: `e + ln m / ln 2`.
#[inline(always)]
fn log2<S: Lanes>(s: S, x: S::f64s) -> S::f64s {
    let (m, e) = split(s, x);
    s.mul_add_f64s(ln_reduced(s, m), s.splat_f64s(LOG2_E), e)
}

/// The colours of pixels with escape counts `n` (as `f64`) and final
/// `|z|^2` `m2`: the red, green and blue bytes `k`, each as the bits of
/// `2^52 + k` in its 64-bit lane. Black inside the set (`m2 <= R^2`, or NaN from an orbit
/// that overflowed); `m2 = inf` takes the map's colour of 0.
#[inline(always)]
pub(crate) fn colour_lanes<S: Lanes>(s: S, p: &Params, n: S::f64s, m2: S::f64s) -> [S::u64s; 3] {
    let zero = s.splat_f64s(0.0);
    let inside = s.not_m64s(s.greater_than_f64s(m2, s.splat_f64s(p.bailout * p.bailout)));
    let nu = if p.smooth {
        // Keep the logarithms' input positive, normal and finite on every
        // lane (lanes inside or at infinity are replaced below).
        let finite = s.less_than_f64s(m2, s.splat_f64s(f64::INFINITY));
        let safe = s.select_f64s(s.and_m64s(finite, s.not_m64s(inside)), m2, s.splat_f64s(16.0));
        let half_ln = s.mul_f64s(s.splat_f64s(0.5), ln(s, safe));
        let nu = s.sub_f64s(s.add_f64s(n, s.splat_f64s(1.0)), log2(s, half_ln));
        s.select_f64s(finite, nu, zero)
    } else {
        n
    };
    // Times the reciprocal, not divided: a division costs as much as the
    // rest of this function on AVX-512 (the picture cannot tell).
    let t = s.mul_f64s(nu, s.splat_f64s(1.0 / f64::from(p.max_iter)));
    let rgb = p.colormap.rgb_lanes(s, t);
    // Black: the bits of 2^52 + 0, as `byte` gives.
    let black = s.splat_u64s(TWO_52.to_bits());
    rgb.map(|c| s.select_u64s(inside, black, c))
}

/// Colours a row: pixel `i` from `n[i]` and `m2[i]` into `out[3 i..3 i + 3]`.
pub(super) struct ColourRow<'a> {
    pub p: &'a Params,
    pub n: &'a [u32],
    pub m2: &'a [f64],
    pub out: &'a mut [u8],
}

impl Kernel for ColourRow<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) {
        let w = S::F64_LANES;
        let width = self.n.len();
        let r2 = s.splat_f64s(self.p.bailout * self.p.bailout);
        // The bits of 2^52 + k, from which `byte` reads k.
        let two52 = s.splat_u64s(TWO_52.to_bits());
        for col in (0..width).step_by(w) {
            let here = (width - col).min(w);
            // Idle lanes repeat the last real pixel and are discarded.
            let (n, m2) = (&self.n[col..col + here], &self.m2[col..col + here]);
            let nf: [u64; 8] = std::array::from_fn(|i| u64::from(n[i.min(here - 1)]));
            let m2: [f64; 8] = std::array::from_fn(|i| m2[i.min(here - 1)]);
            let m2 = s.load_f64s(&m2[..w]);
            let mut px = [0u64; 8];
            // Rows cross the set in runs: where all lanes are inside, all are black.
            if s.any_m64s(s.greater_than_f64s(m2, r2)) {
                // Counts to f64 exactly: 2^52 + n, less 2^52.
                let n =
                    s.sub_f64s(s.transmute_f64s_u64s(s.or_u64s(s.load_u64s(&nf[..w]), two52)), s.splat_f64s(TWO_52));
                let [r, g, b] = colour_lanes(s, self.p, n, m2);
                // One pixel per lane: red, green and blue bytes from the low end.
                let rgb = s.or_u64s(
                    s.xor_u64s(r, two52),
                    s.or_u64s(s.shl_u64s::<8>(s.xor_u64s(g, two52)), s.shl_u64s::<16>(s.xor_u64s(b, two52))),
                );
                s.store_u64s(&mut px[..w], rgb);
            }
            // Four bytes a pixel where they fit (the next pixel overwrites
            // the fourth): one store instead of three.
            let out = &mut self.out[3 * col..];
            for (i, px) in px[..here].iter().enumerate() {
                match out.get_mut(3 * i..3 * i + 4) {
                    Some(four) => four.copy_from_slice(&(*px as u32).to_le_bytes()),
                    None => out[3 * i..3 * i + 3].copy_from_slice(&px.to_le_bytes()[..3]),
                }
            }
        }
    }
}

/// The colour of one pixel, as every path computes it (on the scalar path).
pub(super) fn colour_one(p: &Params, n: u32, m2: f64) -> [u8; 3] {
    let mut out = [0; 3];
    crate::simd::dispatch_on(Path::Scalar, ColourRow { p, n: &[n], m2: &[m2], out: &mut out });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ln(Vec<f64>, bool);
    impl Kernel for Ln {
        type Output = Vec<f64>;
        #[inline(always)]
        fn run<S: Lanes>(self, s: S) -> Vec<f64> {
            let one = |v: S::f64s| pulp::bytemuck::cast_slice::<_, f64>(std::slice::from_ref(&v))[0];
            self.0
                .iter()
                .map(|&x| one(if self.1 { log2(s, s.splat_f64s(x)) } else { ln(s, s.splat_f64s(x)) }))
                .collect()
        }
    }

    #[test]
    fn ln_is_within_1e10_of_libm() {
        let xs: Vec<f64> = (0..200_000).map(|i| 0.5 * (f64::from(i) * 0.0035).exp()).collect();
        assert!(*xs.last().unwrap() > 1e300);
        let reference = crate::simd::dispatch_on(Path::Scalar, Ln(xs.clone(), false));
        let mut worst = 0.0f64;
        for (x, l) in xs.iter().zip(&reference) {
            let exact = x.ln();
            worst = worst.max((l - exact).abs() / exact.abs().max(1.0));
        }
        assert!(worst < 1e-10, "{worst:e}");
        for p in crate::simd::supported() {
            let got = crate::simd::dispatch_on(p, Ln(xs.clone(), false));
            assert!(got.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits()), "{p:?}");
            let got = crate::simd::dispatch_on(p, Ln(xs.clone(), true));
            let log2_ref = crate::simd::dispatch_on(Path::Scalar, Ln(xs.clone(), true));
            assert!(got.iter().zip(&log2_ref).all(|(a, b)| a.to_bits() == b.to_bits()), "{p:?}");
        }
        for (x, l) in xs.iter().zip(crate::simd::dispatch_on(Path::Scalar, Ln(xs.clone(), true))) {
            assert!((l - x.log2()).abs() <= 1e-10 * x.log2().abs().max(1.0), "log2 {x}: {l}");
        }
    }

    #[test]
    fn every_path_colours_a_row_alike() {
        for cmap in super::super::Colormap::ALL {
            for smooth in [true, false] {
                let p = Params { colormap: cmap, smooth, max_iter: 40, bailout: 3.0, ..Params::SEED };
                // Counts and |z|^2 of every kind: inside, just out, far out, infinite, NaN.
                let n: Vec<u32> = (0..103).map(|i| i % 41).collect();
                let m2: Vec<f64> = (0..103)
                    .map(|i| match i % 7 {
                        0 => 1.0,
                        1 => 9.000001,
                        2 => f64::INFINITY,
                        3 => f64::NAN,
                        _ => 9.0 * 1.7f64.powi(i),
                    })
                    .collect();
                let mut rows = vec![];
                for path in crate::simd::supported() {
                    let mut out = vec![0; 3 * n.len()];
                    crate::simd::dispatch_on(path, ColourRow { p: &p, n: &n, m2: &m2, out: &mut out });
                    rows.push(out);
                }
                let one: Vec<u8> = n.iter().zip(&m2).flat_map(|(&k, &m)| colour_one(&p, k, m)).collect();
                for r in &rows {
                    assert_eq!(r, &one, "{cmap:?} smooth {smooth}");
                }
                for i in (0..103).filter(|i| i % 7 == 0 || i % 7 == 3) {
                    assert_eq!(&one[3 * i..3 * i + 3], &[0, 0, 0], "inside or NaN is black");
                }
            }
        }
    }
}
