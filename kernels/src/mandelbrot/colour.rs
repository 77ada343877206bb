//! Smooth colouring on SIMD lanes: a pixel's colour from its escape count
//! `n` and final `|z|^2`, written once over [`crate::simd`] like the escape
//! loops, so that colouring a row costs a few vector operations per pixel
//! rather than libm calls (it cost nine times the escape loop before).
//!
//! The continuous escape count is `n + 1 - log2(ln |z|)`, computed as
//! `n + 2 - log2(ln 2) - log2(log2 |z|^2)` (since `ln |z| = ln 2 / 2 *
//! log2 |z|^2`): two base-2 logarithms, each [`log2`], a polynomial that
//! rounds the same on every path and platform (libm's do not promise that),
//! so the picture's bytes are the same for every SIMD path, CPU, process
//! count and thread count.

use super::colormap::Colormap;
use super::Params;
use crate::simd::{Kernel, Lanes, Path};
use std::sync::OnceLock;

/// `2^52`, whose sum with a small integer `k` has `k` in its low bits.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// The fraction bits of an `f64`.
const MANTISSA: u64 = (1 << 52) - 1;

/// `x = m 2^e` with `m` in `[1, 2)`, for positive normal finite `x`:
/// returns `(m, e)`, both exact, by integer arithmetic on the bits (`m`:
/// the fraction under the exponent of 1; `e`: the biased exponent, less
/// 1023, turned to `f64` through `2^52`). With `ARCH`, on AVX-512, by
/// `vgetmantpd` (interval `[1, 2)`) and `vgetexppd` instead
/// ([`super::avx512::split`]): the same `m` and `e`, in two operations
/// instead of five.
#[inline(always)]
fn split<S: Lanes, const ARCH: bool>(s: S, x: S::f64s) -> (S::f64s, S::f64s) {
    #[cfg(target_arch = "x86_64")]
    if ARCH && std::any::TypeId::of::<S>() == std::any::TypeId::of::<pulp::x86::V4>() {
        use std::arch::x86_64::__m512d;
        // SAFETY: `S` is `V4`, so `S::f64s` is its `f64x8`, 64 bytes like
        // `__m512d`, and the CPU has AVX-512F (which `V4` checked).
        unsafe {
            let (m, e) = super::avx512::split(std::mem::transmute_copy::<S::f64s, __m512d>(&x));
            return (std::mem::transmute_copy(&m), std::mem::transmute_copy(&e));
        }
    }
    let bits = s.transmute_u64s_f64s(x);
    let m = s.or_u64s(s.and_u64s(bits, s.splat_u64s(MANTISSA)), s.splat_u64s(1f64.to_bits()));
    let e = s.transmute_f64s_u64s(s.or_u64s(s.shr_u64s::<52>(bits), s.splat_u64s(TWO_52.to_bits())));
    (s.transmute_f64s_u64s(m), s.sub_f64s(e, s.splat_f64s(TWO_52 + 1023.0)))
}

/// `log2(1 + x) / x` for `x` in `[0, 1]`: its Chebyshev interpolant of
/// degree 5 (coefficients of `x^0` to `x^5`; the values at the nodes to 55
/// digits, the system solved in exact rational arithmetic), so `x h(x)` is
/// within 7.4e-6 of `log2(1 + x)` (degree 6 gives 1.1e-6 for one more
/// operation per logarithm). In the continuous escape count the outer
/// logarithm's error counts once and the inner one's divided by
/// `ln 2 log2 |z|^2 > 1.38`: at most 1.3e-5 in all, which moves `t` by that
/// over `max_iter` and a channel by at most `255 pi` times that, 0.011 of a
/// level at `max_iter = 1`: below the colour table's own rounding (0.025 of
/// a level, [`TABLE_STEPS`]). (`m` was once in `[3/4, 3/2)`, where the same
/// degree is twice as accurate, 3.9e-6, for two more operations per
/// logarithm on every path: the picture cannot tell the difference, the
/// colouring's time can, 6-10 % of it, docs/benchmarks.md.)
const LOG2_H: [f64; 6] = [
    1.4426814680651516,
    -0.7203587726757805,
    0.4686588791436966,
    -0.3016380097350907,
    0.144471095698875,
    -0.033822045968996815,
];

/// `c[0] + c[1] x + ... + c[5] x^5` by Estrin's scheme, as
/// [`poly7`](super::colormap::poly7): three pairs `c[2k] + c[2k+1] x`, the
/// first two joined by `x^2`, the third by `x^4`; all fused multiply-adds,
/// the same operations in the same order on every path.
#[inline(always)]
fn poly5<S: Lanes>(s: S, c: &[f64; 6], x: S::f64s) -> S::f64s {
    let pair = |k: usize| s.mul_add_f64s(s.splat_f64s(c[2 * k + 1]), x, s.splat_f64s(c[2 * k]));
    let x2 = s.mul_f64s(x, x);
    let x4 = s.mul_f64s(x2, x2);
    let lo = s.mul_add_f64s(pair(1), x2, pair(0));
    s.mul_add_f64s(pair(2), x4, lo)
}

/// `log2 x` for positive normal finite lanes: `e + log2 m` ([`split`]),
/// `log2 m = x h(x)` with `x = m - 1` (exact) and `h` the polynomial
/// [`LOG2_H`], by [`poly5`]: no division, which would cost more than the
/// rest of the colouring on AVX-512. Absolute error below 7.4e-6 (measured,
/// `log2_is_within_7_4e6_of_libm`). `ARCH`: as [`split`] (the same bits).
#[inline(always)]
pub(crate) fn log2<S: Lanes, const ARCH: bool>(s: S, x: S::f64s) -> S::f64s {
    let (m, e) = split::<S, ARCH>(s, x);
    let x = s.sub_f64s(m, s.splat_f64s(1.0));
    s.mul_add_f64s(x, poly5(s, &LOG2_H, x), e)
}

/// `2 - log2(ln 2)`: the continuous escape count is this plus `n` less
/// `log2(log2 |z|^2)` (module documentation).
const NU_OFFSET: f64 = 2.5287663729448977;

/// Steps of the colour tables over `t` in `[0, 1]`: a pixel takes the
/// map's colour at `t` rounded to a multiple of `1 / TABLE_STEPS`. The maps
/// change by at most `255 pi` levels per unit of `t` (the rainbow's green),
/// so rounding moves a channel by at most 0.025 of a level before its own
/// rounding to a byte: at most one level, and rarely.
const TABLE_STEPS: usize = 1 << 14;

/// Entries of a colour table: the map at `i / TABLE_STEPS` for `i` up to
/// `TABLE_STEPS`, then black; a power of two, so that an index masked to it
/// needs no bounds check.
const TABLE_LEN: usize = 2 * TABLE_STEPS;

/// The index of black in a colour table.
const BLACK: u64 = TABLE_STEPS as u64 + 1;

/// A colour map sampled for [`TABLE_STEPS`], each entry the red, green and
/// blue bytes in its low three bytes, built once per process by
/// [`Colormap::rgb_lanes`] on whichever path runs (all give the same bits).
fn table(c: Colormap) -> &'static [u32; TABLE_LEN] {
    struct Build(Colormap);
    impl Kernel for Build {
        type Output = Box<[u32; TABLE_LEN]>;
        #[inline(always)]
        fn run<S: Lanes>(self, s: S) -> Self::Output {
            let w = S::F64_LANES;
            let two52 = s.splat_u64s(TWO_52.to_bits());
            let mut table = Box::new([0u32; TABLE_LEN]);
            for i in (0..=TABLE_STEPS).step_by(w) {
                // i / 2^14: exact.
                let t: [f64; 8] = std::array::from_fn(|k| (i + k) as f64 / TABLE_STEPS as f64);
                let [r, g, b] = self.0.rgb_lanes(s, s.load_f64s(&t[..w]));
                let rgb = s.or_u64s(
                    s.xor_u64s(r, two52),
                    s.or_u64s(s.shl_u64s::<8>(s.xor_u64s(g, two52)), s.shl_u64s::<16>(s.xor_u64s(b, two52))),
                );
                let mut px = [0u64; 8];
                s.store_u64s(&mut px[..w], rgb);
                for (k, px) in px[..w].iter().enumerate().filter(|(k, _)| i + k <= TABLE_STEPS) {
                    table[i + k] = *px as u32;
                }
            }
            table[BLACK as usize] = 0;
            table
        }
    }
    static TABLES: [OnceLock<Box<[u32; TABLE_LEN]>>; Colormap::ALL.len()] = [const { OnceLock::new() }; 3];
    let i = Colormap::ALL.iter().position(|&m| m == c).expect("every map is in Colormap::ALL");
    TABLES[i].get_or_init(|| crate::simd::dispatch(Build(c)))
}

/// What [`colour_index`] needs of [`Params`], worked out once per row: the
/// compiler cannot hoist it out of the loop itself (the row's byte stores
/// might, for all it knows, change `Params`), and it redid a division per
/// vector.
#[derive(Clone, Copy)]
struct Scale {
    /// `R^2`.
    r2: f64,
    /// `1 / max_iter`.
    per_iter: f64,
    smooth: bool,
}

impl Scale {
    fn of(p: &Params) -> Scale {
        Scale { r2: p.bailout * p.bailout, per_iter: 1.0 / f64::from(p.max_iter), smooth: p.smooth }
    }
}

/// The colour table indices of pixels with escape counts `n` (as `f64`)
/// and final `|z|^2` `m2`, each in the low bits of its lane (as the bits of
/// `2^52 + index`): black inside the set (`m2 <= R^2`, or NaN from an orbit
/// that overflowed); `m2 = inf` takes the map's colour of 0.
#[inline(always)]
fn colour_index<S: Lanes, const ARCH: bool>(s: S, p: Scale, n: S::f64s, m2: S::f64s) -> S::u64s {
    let zero = s.splat_f64s(0.0);
    let inside = s.not_m64s(s.greater_than_f64s(m2, s.splat_f64s(p.r2)));
    let nu = if p.smooth {
        // On lanes outside the set with a finite `|z|^2 > R^2 >= 4`, the
        // logarithms' inputs are positive, normal and finite (`log2 |z|^2 >
        // 2`). The other lanes' results differ by path (the split of 0,
        // infinity or NaN is not the same on AVX-512) and are replaced:
        // infinity's here, the set's by black below.
        let finite = s.less_than_f64s(m2, s.splat_f64s(f64::INFINITY));
        let log_log = log2::<S, ARCH>(s, log2::<S, ARCH>(s, m2));
        let nu = s.sub_f64s(s.add_f64s(n, s.splat_f64s(NU_OFFSET)), log_log);
        s.select_f64s(finite, nu, zero)
    } else {
        n
    };
    // Times the reciprocal, not divided: a division costs as much as the
    // rest of this function on AVX-512 (the picture cannot tell).
    let t = s.mul_f64s(nu, s.splat_f64s(p.per_iter));
    // Clamped to [0, 1] as `rgb_lanes` does, then rounded to the nearest
    // step (ties to even) by adding 2^52. (`t` is not NaN on any lane that
    // is kept, so the paths' different `max` of NaN cannot show.)
    let t = s.min_f64s(s.max_f64s(t, zero), s.splat_f64s(1.0));
    let q = s.mul_add_f64s(t, s.splat_f64s(TABLE_STEPS as f64), s.splat_f64s(TWO_52));
    s.select_u64s(inside, s.splat_u64s(TWO_52.to_bits() | BLACK), s.transmute_u64s_f64s(q))
}

/// Colours a row: pixel `i` from `n[i]` and `m2[i]` into `out[3 i..3 i + 3]`.
pub(super) struct ColourRow<'a> {
    pub p: &'a Params,
    pub n: &'a [u32],
    pub m2: &'a [f64],
    pub out: &'a mut [u8],
}

/// Counts to `f64`, exactly: `2^52 + n`, less `2^52` (`n` exactly one
/// vector long; widened in one load, not stored one by one and reloaded as
/// a vector, which stalls store-to-load forwarding on x86).
#[inline(always)]
fn counts<S: Lanes>(s: S, n: &[u32]) -> S::f64s {
    let bits = s.or_u64s(s.load_widen_u32s(n), s.splat_u64s(TWO_52.to_bits()));
    s.sub_f64s(s.transmute_f64s_u64s(bits), s.splat_f64s(TWO_52))
}

/// Whether any lane of `m2` is outside the set (rows cross the set in
/// runs: where all lanes are inside, all are black).
#[inline(always)]
fn any_outside<S: Lanes>(s: S, p: Scale, m2: S::f64s) -> bool {
    s.any_m64s(s.greater_than_f64s(m2, s.splat_f64s(p.r2)))
}

/// The colours of one vector of table indices `idx` into `out` (`3 w + 1`
/// bytes for `w` lanes: four bytes a pixel, the next pixel overwriting the
/// fourth), one table load and one store per pixel.
#[inline(always)]
fn put<S: Lanes>(s: S, table: &[u32; TABLE_LEN], idx: S::u64s, out: &mut [u8]) {
    let w = S::F64_LANES;
    let mut at = [0u64; 8];
    s.store_u64s(&mut at[..w], idx);
    for (i, &k) in at[..w].iter().enumerate() {
        out[3 * i..3 * i + 4].copy_from_slice(&table[k as usize & (TABLE_LEN - 1)].to_le_bytes());
    }
}

impl Kernel for ColourRow<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) {
        colour_row::<S, true>(s, self)
    }
}

/// One vector of pixels (`n` one vector long, `m2` loaded, `outside`
/// whether any of them is outside the set) into `out`, `3 w + 1` bytes:
/// coloured, or all black. (A function, not a closure in [`colour_row`]:
/// a closure there was compiled apart, without the path's instructions,
/// and called for every vector with a pixel inside the set.)
#[inline(always)]
fn one<S: Lanes, const ARCH: bool>(
    s: S,
    table: &[u32; TABLE_LEN],
    p: Scale,
    outside: bool,
    n: &[u32],
    m2: S::f64s,
    out: &mut [u8],
) {
    if outside {
        put(s, table, colour_index::<S, ARCH>(s, p, counts(s, n), m2), out);
    } else {
        out[..3 * S::F64_LANES].fill(0);
    }
}

/// [`ColourRow`] on `s`; with `ARCH`, the AVX-512 logarithms' own split
/// ([`split`]; the same bits, and the tests compare both).
#[inline(always)]
fn colour_row<S: Lanes, const ARCH: bool>(s: S, r: ColourRow) {
    let w = S::F64_LANES;
    let width = r.n.len();
    let table = table(r.p.colormap);
    let p = Scale::of(r.p);
    let mut col = 0;
    // Whole vectors with a byte of the row after them: four bytes a pixel
    // (the next pixel overwrites the fourth), with one bounds check per
    // vector or pair. Two at a time: where both have pixels outside the set,
    // their colour arithmetic, two chains of some forty dependent
    // operations, is one block of code, which the out-of-order core
    // overlaps (4-7% faster than a vector at a time, docs/benchmarks.md).
    while col + 2 * w < width {
        let out = &mut r.out[3 * col..3 * col + 6 * w + 1];
        let (n, m2) = (&r.n[col..col + 2 * w], &r.m2[col..col + 2 * w]);
        let (ma, mb) = (s.load_f64s(&m2[..w]), s.load_f64s(&m2[w..]));
        match (any_outside(s, p, ma), any_outside(s, p, mb)) {
            (true, true) => {
                let a = colour_index::<S, ARCH>(s, p, counts(s, &n[..w]), ma);
                let b = colour_index::<S, ARCH>(s, p, counts(s, &n[w..]), mb);
                put(s, table, a, &mut out[..3 * w + 1]);
                put(s, table, b, &mut out[3 * w..]);
            }
            (a, b) => {
                one::<S, ARCH>(s, table, p, a, &n[..w], ma, &mut out[..3 * w + 1]);
                one::<S, ARCH>(s, table, p, b, &n[w..], mb, &mut out[3 * w..]);
            }
        }
        col += 2 * w;
    }
    if col + w < width {
        let m2 = s.load_f64s(&r.m2[col..col + w]);
        one::<S, ARCH>(
            s,
            table,
            p,
            any_outside(s, p, m2),
            &r.n[col..col + w],
            m2,
            &mut r.out[3 * col..3 * col + 3 * w + 1],
        );
        col += w;
    }
    // The last vector of the row, whole or not: idle lanes repeat the last
    // real pixel and are discarded.
    if col < width {
        let here = width - col;
        let n: [u32; 8] = std::array::from_fn(|i| r.n[col + i.min(here - 1)]);
        let m2: [f64; 8] = std::array::from_fn(|i| r.m2[col + i.min(here - 1)]);
        let m2 = s.load_f64s(&m2[..w]);
        let idx = match any_outside(s, p, m2) {
            true => colour_index::<S, ARCH>(s, p, counts(s, &n[..w]), m2),
            false => s.splat_u64s(TWO_52.to_bits() | BLACK),
        };
        let mut px = [0u8; 3 * 8 + 1];
        put(s, table, idx, &mut px[..3 * w + 1]);
        r.out[3 * col..].copy_from_slice(&px[..3 * here]);
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

    /// `log2` of every value, with the path's own split if `ARCH`.
    struct Log2<const ARCH: bool>(Vec<f64>);
    impl<const ARCH: bool> Kernel for Log2<ARCH> {
        type Output = Vec<f64>;
        #[inline(always)]
        fn run<S: Lanes>(self, s: S) -> Vec<f64> {
            let one = |v: S::f64s| pulp::bytemuck::cast_slice::<_, f64>(std::slice::from_ref(&v))[0];
            self.0.iter().map(|&x| one(log2::<S, ARCH>(s, s.splat_f64s(x)))).collect()
        }
    }

    #[test]
    fn log2_is_within_7_4e6_of_libm() {
        // From 0.5 to past 1e300, and every power of two near 1 with its
        // neighbours (where `split` changes its exponent: at 2^e).
        let mut xs: Vec<f64> = (0..200_000).map(|i| 0.5 * (f64::from(i) * 0.0035).exp()).collect();
        assert!(*xs.last().unwrap() > 1e300);
        for e in -4..40 {
            for m in [0.75, 1.0, 1.5] {
                let x = m * 2f64.powi(e);
                xs.extend([x, f64::from_bits(x.to_bits() - 1), f64::from_bits(x.to_bits() + 1)]);
            }
        }
        let reference = crate::simd::dispatch_on(Path::Scalar, Log2::<false>(xs.clone()));
        let worst = xs.iter().zip(&reference).map(|(x, l)| (l - x.log2()).abs()).fold(0.0, f64::max);
        assert!(worst < 7.4e-6, "{worst:e}");
        for p in crate::simd::supported() {
            for got in [
                crate::simd::dispatch_on(p, Log2::<false>(xs.clone())),
                crate::simd::dispatch_on(p, Log2::<true>(xs.clone())),
            ] {
                assert!(got.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits()), "{p:?}");
            }
        }
    }

    /// The colours against the textbook formula in libm's logarithms
    /// (`n + 1 - log2(ln |z|)` over `max_iter`, through the same map): a
    /// channel differs by at most one level, and rarely.
    #[test]
    fn smooth_colours_match_libm_logarithms() {
        for (bailout, max_iter) in [(2.0, 50), (200.0, 32), (3.0, 1000)] {
            let p = Params { bailout, max_iter, ..Params::SEED };
            let (mut differ, mut channels) = (0, 0);
            for i in 0..200_000u32 {
                let n = 1 + i % max_iter;
                // |z|^2 from just past R^2 to far out (up to R^4 and beyond).
                let m2 = bailout * bailout * (1.0 + f64::from(i + 1) * 1.3e-4).powi(3);
                let nu = f64::from(n) + 1.0 - (0.5 * m2.ln()).log2();
                let want = p.colormap.rgb(nu / f64::from(max_iter));
                let got = colour_one(&p, n, m2);
                for k in 0..3 {
                    assert!(got[k].abs_diff(want[k]) <= 1, "n {n} |z|^2 {m2}: {got:?} vs {want:?}");
                    differ += usize::from(got[k] != want[k]);
                    channels += 1;
                }
            }
            assert!(differ * 50 < channels, "R {bailout}: {differ} of {channels} channels differ");
        }
    }

    /// [`ColourRow`] without the path's own code.
    struct Generic<'a>(ColourRow<'a>);
    impl Kernel for Generic<'_> {
        type Output = ();
        #[inline(always)]
        fn run<S: Lanes>(self, s: S) {
            colour_row::<S, false>(s, self.0)
        }
    }

    #[test]
    fn every_path_colours_a_row_alike() {
        for cmap in super::super::Colormap::ALL {
            for (smooth, round) in [(true, 0), (false, 0), (true, 1)] {
                let p = Params { colormap: cmap, smooth, max_iter: 40, bailout: 3.0, ..Params::SEED };
                // Counts and |z|^2 of every kind: inside, just out, far out, infinite, NaN.
                let n: Vec<u32> = (0..103).map(|i| i % 41).collect();
                // Then runs inside the set, of 5 to 40 pixels (whole vectors
                // black, alone and beside vectors with colour).
                let inside_run = |i: i32| matches!(i, 0..5 | 11..16 | 21..61 | 70..79 | 86..99);
                let m2: Vec<f64> = (0..103)
                    .map(|i| match i % 7 {
                        _ if round == 1 && inside_run(i) => 2.0,
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
                    // The generic split on the path (on AVX-512, not its own).
                    let mut out = vec![0; 3 * n.len()];
                    crate::simd::dispatch_on(path, Generic(ColourRow { p: &p, n: &n, m2: &m2, out: &mut out }));
                    rows.push(out);
                }
                let one: Vec<u8> = n.iter().zip(&m2).flat_map(|(&k, &m)| colour_one(&p, k, m)).collect();
                for r in &rows {
                    assert_eq!(r, &one, "{cmap:?} smooth {smooth} round {round}");
                }
                for i in (0..103).filter(|&i| i % 7 == 0 || i % 7 == 3 || round == 1 && inside_run(i)) {
                    let i = i as usize;
                    assert_eq!(&one[3 * i..3 * i + 3], &[0, 0, 0], "inside or NaN is black");
                }
                assert!(one.iter().any(|&b| b != 0));
            }
        }
    }
}
