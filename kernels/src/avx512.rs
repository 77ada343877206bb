//! Explicit AVX-512 versions of the three hot loops (x86-64 only).
//!
//! Each function mirrors a portable loop in its kernel's module operation for
//! operation, so both give the same bits; the kernels' unit tests compare
//! them. Callers must check [`crate::simd::avx512`] first: every function
//! here is `unsafe` only because it needs those CPU features.

use std::arch::x86_64::*;

/// Leibniz: the accumulators after `rounds` rounds starting at group `g0`
/// (see [`crate::leibniz`] for the group and lane layout). Lane `l` of
/// vector `v` sums groups `g0 + r * LANES + 8 v + l`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn leibniz_rounds(g0: u64, rounds: u64) -> [f64; crate::leibniz::LANES] {
    use crate::leibniz::{GROUP, LANES};
    const V: usize = LANES / 8;
    let span = (2 * GROUP) as f64; // x advances by 2 per term
    let offs: [__m512d; V] = std::array::from_fn(|v| {
        let o: [f64; 8] = std::array::from_fn(|l| span * (8 * v + l) as f64);
        _mm512_loadu_pd(o.as_ptr())
    });
    let mut acc = [_mm512_setzero_pd(); V];
    for r in 0..rounds {
        // Exact: every value here is an integer below 2^53.
        let base = _mm512_set1_pd((2 * GROUP * (g0 + r * LANES as u64)) as f64);
        for v in 0..V {
            let x = _mm512_add_pd(base, offs[v]);
            acc[v] = _mm512_add_pd(acc[v], group(x));
        }
    }
    let mut out = [0.0; LANES];
    for v in 0..V {
        _mm512_storeu_pd(out.as_mut_ptr().add(8 * v), acc[v]);
    }
    out
}

/// Eight lanes of [`crate::leibniz::group`]: the same operations in the same order.
#[inline]
#[target_feature(enable = "avx512f")]
fn group(x: __m512d) -> __m512d {
    let c = |k: f64| _mm512_set1_pd(k);
    let p: [__m512d; 8] = std::array::from_fn(|j| {
        let j = j as f64;
        _mm512_mul_pd(_mm512_add_pd(x, c(4.0 * j + 1.0)), _mm512_add_pd(x, c(4.0 * j + 3.0)))
    });
    let n2: [__m512d; 4] = std::array::from_fn(|i| _mm512_add_pd(p[2 * i], p[2 * i + 1]));
    let d2: [__m512d; 4] = std::array::from_fn(|i| _mm512_mul_pd(p[2 * i], p[2 * i + 1]));
    let n4: [__m512d; 2] = std::array::from_fn(|i| {
        _mm512_add_pd(_mm512_mul_pd(n2[2 * i], d2[2 * i + 1]), _mm512_mul_pd(n2[2 * i + 1], d2[2 * i]))
    });
    let d4: [__m512d; 2] = std::array::from_fn(|i| _mm512_mul_pd(d2[2 * i], d2[2 * i + 1]));
    let n = _mm512_add_pd(_mm512_mul_pd(n4[0], d4[1]), _mm512_mul_pd(n4[1], d4[0]));
    let d = _mm512_mul_pd(d4[0], d4[1]);
    _mm512_div_pd(n, d)
}

/// pi-mc: hits among samples `start..end` of the stream `key`, 32 samples
/// (four vectors) at a time; the remainder (under 32) is left to the caller,
/// which passes `end` such that `end - start` is a multiple of 32.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512DQ (`vpmullq`).
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn pi_mc_count(key: u64, gamma: u64, c1: u64, c2: u64, start: u64, end: u64) -> u64 {
    const V: usize = 4;
    debug_assert_eq!((end - start) % (8 * V as u64), 0);
    let s = |v: u64| _mm512_set1_epi64(v as i64);
    let mut h: [__m512i; V] = std::array::from_fn(|v| {
        let lanes: [u64; 8] =
            std::array::from_fn(|l| key.wrapping_add((start + (8 * v + l) as u64).wrapping_mul(gamma)));
        _mm512_loadu_si512(lanes.as_ptr().cast())
    });
    let step = s(gamma.wrapping_mul(8 * V as u64));
    let (m1, m2) = (s(c1), s(c2));
    let one = s(1);
    let mut count = [_mm512_setzero_si512(); V];
    let mut i = start;
    while i < end {
        for v in 0..V {
            let mut z = h[v];
            z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64::<30>(z)), m1);
            z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64::<27>(z)), m2);
            z = _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z));
            // x = z >> 32 and y = z mod 2^32; mul_epu32 reads the low halves only.
            let x = _mm512_srli_epi64::<32>(z);
            let xx = _mm512_mul_epu32(x, x);
            let yy = _mm512_mul_epu32(z, z);
            // No carry out of xx + yy, i.e. x^2 + y^2 < 2^64, exactly when the sum is >= xx.
            let inside = _mm512_cmpge_epu64_mask(_mm512_add_epi64(xx, yy), xx);
            count[v] = _mm512_mask_add_epi64(count[v], inside, count[v], one);
            h[v] = _mm512_add_epi64(h[v], step);
        }
        i += 8 * V as u64;
    }
    let mut total = 0u64;
    for c in count {
        total += _mm512_reduce_add_epi64(c) as u64;
    }
    total
}

/// Mandelbrot: lanes of pixels iterated in lock-step, [`MANDEL_LANES`] at a
/// time (four vectors, enough independent work to hide the multiply
/// latency). Lanes that escape are frozen by masking, exactly as the scalar
/// loop stops; returns each lane's iteration count and final `|z|^2`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn mandel_escape(
    cr: &[f64; MANDEL_LANES],
    ci: &[f64; MANDEL_LANES],
    max_iter: u32,
    r2: f64,
) -> ([u32; MANDEL_LANES], [f64; MANDEL_LANES]) {
    const V: usize = MANDEL_LANES / 8;
    let load = |a: &[f64; MANDEL_LANES], v: usize| _mm512_loadu_pd(a.as_ptr().add(8 * v));
    let c_r: [__m512d; V] = std::array::from_fn(|v| load(cr, v));
    let c_i: [__m512d; V] = std::array::from_fn(|v| load(ci, v));
    let r2v = _mm512_set1_pd(r2);
    let one = _mm512_set1_epi64(1);
    let mut zr = [_mm512_setzero_pd(); V];
    let mut zi = [_mm512_setzero_pd(); V];
    let mut n = [_mm512_setzero_si512(); V];
    for _ in 0..max_iter {
        let mut any: __mmask8 = 0;
        for v in 0..V {
            let (a, b) = (zr[v], zi[v]);
            let aa = _mm512_mul_pd(a, a);
            let bb = _mm512_mul_pd(b, b);
            let active = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_add_pd(aa, bb), r2v);
            // Same operations, same order as `z * z + c` on Complex64.
            let ab = _mm512_mul_pd(a, b);
            zr[v] = _mm512_mask_add_pd(a, active, _mm512_sub_pd(aa, bb), c_r[v]);
            zi[v] = _mm512_mask_add_pd(b, active, _mm512_add_pd(ab, ab), c_i[v]);
            n[v] = _mm512_mask_add_epi64(n[v], active, n[v], one);
            any |= active;
        }
        if any == 0 {
            break;
        }
    }
    let mut iters = [0u32; MANDEL_LANES];
    let mut m2 = [0.0; MANDEL_LANES];
    for v in 0..V {
        let mut nv = [0u64; 8];
        _mm512_storeu_si512(nv.as_mut_ptr().cast(), n[v]);
        for l in 0..8 {
            iters[8 * v + l] = nv[l] as u32;
        }
        let norm = _mm512_add_pd(_mm512_mul_pd(zr[v], zr[v]), _mm512_mul_pd(zi[v], zi[v]));
        _mm512_storeu_pd(m2.as_mut_ptr().add(8 * v), norm);
    }
    (iters, m2)
}

/// Pixels per call of [`mandel_escape`].
pub(crate) const MANDEL_LANES: usize = 32;
