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
    for (v, a) in acc.iter().enumerate() {
        _mm512_storeu_pd(out.as_mut_ptr().add(8 * v), *a);
    }
    out
}

/// Eight lanes of [`crate::leibniz::group`]: the same operations in the same order.
#[inline]
#[target_feature(enable = "avx512f")]
fn group(x: __m512d) -> __m512d {
    let c = |k: f64| _mm512_set1_pd(k);
    let quad = |k: f64| {
        let v = _mm512_add_pd(x, c(k));
        let v2 = _mm512_mul_pd(v, v);
        let w = _mm512_add_pd(v2, c(3.0));
        (w, _mm512_fmadd_pd(w, w, _mm512_mul_pd(c(-16.0), v2)))
    };
    let (n0, d0) = quad(4.0);
    let (n1, d1) = quad(12.0);
    let (n2, d2) = quad(20.0);
    let (n3, d3) = quad(28.0);
    let (na, da) = (_mm512_fmadd_pd(n0, d1, _mm512_mul_pd(n1, d0)), _mm512_mul_pd(d0, d1));
    let (nb, db) = (_mm512_fmadd_pd(n2, d3, _mm512_mul_pd(n3, d2)), _mm512_mul_pd(d2, d3));
    let n = _mm512_fmadd_pd(na, db, _mm512_mul_pd(nb, da));
    _mm512_div_pd(n, _mm512_mul_pd(da, db))
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
    // Hits per lane in `f64` (exact below 2^53): a masked floating-point add
    // is one instruction, where LLVM turns a masked integer add into two.
    let one = _mm512_set1_pd(1.0);
    let mut count = [_mm512_setzero_pd(); V];
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
            count[v] = _mm512_mask_add_pd(count[v], inside, count[v], one);
            h[v] = _mm512_add_epi64(h[v], step);
        }
        i += 8 * V as u64;
    }
    let mut total = 0u64;
    for c in count {
        total += _mm512_reduce_add_pd(c) as u64;
    }
    total
}

/// Mandelbrot: escape counts and final `|z|^2` of the pixels `cr[i] + ci i`
/// (one row: `ci` is shared), into `n` and `m2`; all three slices have a
/// length that is a multiple of 8.
///
/// Pixels go eight to a vector, in [`SLOTS`] vectors iterated in turn, so
/// there is enough independent work to hide the multiply latency; lanes that
/// escape are frozen by masking, exactly as the scalar loop stops, and as
/// soon as all eight lanes of a vector are done (or it reaches `max_iter`)
/// the vector takes the next eight pixels. So no vector waits for another
/// one's slowest pixel, unlike a lock-step of all four.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn mandel_span(cr: &[f64], ci: f64, max_iter: u32, r2: f64, n: &mut [u32], m2: &mut [f64]) {
    assert!(cr.len().is_multiple_of(8) && n.len() == cr.len() && m2.len() == cr.len());
    let k = Span { cr, groups: cr.len() / 8, ci: _mm512_set1_pd(ci), r2: _mm512_set1_pd(r2), max_iter };
    let mut next = 0;
    // Four slots as separate locals (not an array) so they live in registers.
    let (mut s0, mut s1, mut s2, mut s3) = (Slot::new(), Slot::new(), Slot::new(), Slot::new());
    for s in [&mut s0, &mut s1, &mut s2, &mut s3] {
        s.take(&k, &mut next);
    }
    while s0.live() || s1.live() || s2.live() || s3.live() {
        s0.step(&k, &mut next, n, m2);
        s1.step(&k, &mut next, n, m2);
        s2.step(&k, &mut next, n, m2);
        s3.step(&k, &mut next, n, m2);
    }
}

/// What the slots of [`mandel_span`] share.
struct Span<'a> {
    cr: &'a [f64],
    groups: usize,
    ci: __m512d,
    r2: __m512d,
    max_iter: u32,
}

/// One vector of eight pixels in flight.
#[derive(Clone, Copy)]
struct Slot {
    /// Its group of eight pixels; `usize::MAX` when idle.
    group: usize,
    cr: __m512d,
    zr: __m512d,
    zi: __m512d,
    /// Iterations per lane, counted in `f64` (exact below 2^53): a masked
    /// floating-point add is one instruction, a masked integer one two.
    count: __m512d,
    iters: u32,
}

impl Slot {
    #[inline(always)]
    fn new() -> Slot {
        // SAFETY: only built inside `mandel_span`, which requires AVX-512F.
        unsafe {
            let zero = _mm512_setzero_pd();
            Slot { group: usize::MAX, cr: zero, zr: zero, zi: zero, count: zero, iters: 0 }
        }
    }

    #[inline(always)]
    fn live(&self) -> bool {
        self.group != usize::MAX
    }

    /// Starts the next group of eight pixels, or goes idle when none is left.
    #[inline(always)]
    unsafe fn take(&mut self, k: &Span, next: &mut usize) {
        *self = Slot::new();
        if *next < k.groups {
            self.group = *next;
            self.cr = _mm512_loadu_pd(k.cr.as_ptr().add(8 * *next));
            *next += 1;
        }
    }

    /// One iteration of the eight lanes; stores them when they are done.
    #[inline(always)]
    unsafe fn step(&mut self, k: &Span, next: &mut usize, n: &mut [u32], m2: &mut [f64]) {
        if !self.live() {
            return;
        }
        let (a, b) = (self.zr, self.zi);
        let aa = _mm512_mul_pd(a, a);
        let bb = _mm512_mul_pd(b, b);
        let active = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_add_pd(aa, bb), k.r2);
        // Same operations, same order as `z * z + c` on Complex64.
        let ab = _mm512_mul_pd(a, b);
        self.zr = _mm512_mask_add_pd(a, active, _mm512_sub_pd(aa, bb), self.cr);
        self.zi = _mm512_mask_add_pd(b, active, _mm512_add_pd(ab, ab), k.ci);
        self.count = _mm512_mask_add_pd(self.count, active, self.count, _mm512_set1_pd(1.0));
        self.iters += 1;
        if active == 0 || self.iters == k.max_iter {
            let at = 8 * self.group;
            _mm256_storeu_si256(n.as_mut_ptr().add(at).cast(), _mm512_cvttpd_epu32(self.count));
            let norm = _mm512_add_pd(_mm512_mul_pd(self.zr, self.zr), _mm512_mul_pd(self.zi, self.zi));
            _mm512_storeu_pd(m2.as_mut_ptr().add(at), norm);
            self.take(k, next);
        }
    }
}
