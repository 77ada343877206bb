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

/// pi-mc: hits among the first `n` (at most [`UNIT`](crate::pi_mc::UNIT))
/// samples of unit `unit` of the stream `key`, in the order of
/// [`crate::pi_mc`]: lane `8 v + l` of the 32 is lane `l` of vector `v`.
///
/// Per eight samples: xoshiro256+ in seven operations (add, shift, rotate,
/// two `vpternlogq` three-way xors and two xors) and `x^2 + y^2` in four
/// (shift, two `vpmuldq`, add). The compare and the count are shared by two
/// vectors: inside means `x^2 + y^2 < 2^62`, that is, a high half below
/// 2^30, so one `vshufps` packs the sixteen high halves, one `vpcmpud`
/// tests them and one masked add counts them. That is 12.5 operations per
/// eight samples, 6.25 cycles on the two 512-bit ports, and the loop runs at
/// that bound (`scripts/pi_mc_floor.c` measures it in C).
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512DQ (`vpmullq` in the seeding).
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn pi_mc_unit(key: u64, unit: u64, n: u64) -> u64 {
    use crate::pi_mc::{seed_input, LANES, MIX1, MIX2};
    const V: usize = LANES / 8;
    debug_assert!(n <= crate::pi_mc::UNIT);
    let s = |v: u64| _mm512_set1_epi64(v as i64);
    // SplitMix64 of the seed inputs, eight lanes at a time.
    let (m1, m2) = (s(MIX1), s(MIX2));
    let word = |v: usize, k: usize| {
        let z: [u64; 8] = std::array::from_fn(|l| seed_input(key, unit, 8 * v + l, k));
        let mut z = _mm512_loadu_si512(z.as_ptr().cast());
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64::<30>(z)), m1);
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64::<27>(z)), m2);
        _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z))
    };
    let mut st: [[__m512i; 4]; V] = std::array::from_fn(|v| std::array::from_fn(|k| word(v, k)));
    let limit = _mm512_set1_epi32(1 << 30);
    // Hits per packed lane in `f32` (exact below 2^24; a lane counts at most
    // 2048 per unit): LLVM keeps a masked floating-point add one instruction,
    // but turns a masked integer add into `vpmovm2d` and a `vpsubd`.
    let one = _mm512_set1_ps(1.0);
    let mut count = [_mm512_setzero_ps(); V / 2];
    let (steps, rem) = (n / LANES as u64, n % LANES as u64);
    for _ in 0..steps {
        for (p, c) in count.iter_mut().enumerate() {
            let a = _mm512_castsi512_ps(pi_mc_sum(pi_mc_next(&mut st[2 * p])));
            let b = _mm512_castsi512_ps(pi_mc_sum(pi_mc_next(&mut st[2 * p + 1])));
            // Dwords 1 and 3 of each 128-bit block of a, then of b: the high halves.
            let high = _mm512_castps_si512(_mm512_shuffle_ps::<0b11_01_11_01>(a, b));
            *c = _mm512_mask_add_ps(*c, _mm512_cmplt_epu32_mask(high, limit), *c, one);
        }
    }
    let mut total = 0u64;
    for c in count {
        total += _mm512_reduce_add_ps(c) as u64;
    }
    // The partial step: lanes 8 v + l below `rem` only, with the full 64-bit compare.
    let limit = s(1 << 62);
    for (v, st) in st.iter_mut().enumerate() {
        let live = rem.saturating_sub(8 * v as u64).min(8);
        let inside = _mm512_cmplt_epu64_mask(pi_mc_sum(pi_mc_next(st)), limit);
        total += u64::from((inside & ((1u16 << live) - 1) as u8).count_ones());
    }
    total
}

/// One xoshiro256+ step of eight lanes (state words `s[0..4]`): their outputs.
#[inline]
#[target_feature(enable = "avx512f")]
fn pi_mc_next(s: &mut [__m512i; 4]) -> __m512i {
    const XOR3: i32 = 0x96;
    let [s0, s1, s2, s3] = *s;
    let r = _mm512_add_epi64(s0, s3);
    let t = _mm512_slli_epi64::<17>(s1);
    let s3x = _mm512_xor_si512(s3, s1);
    *s = [
        _mm512_xor_si512(s0, s3x),
        _mm512_ternarylogic_epi64::<XOR3>(s1, s2, s0),
        _mm512_ternarylogic_epi64::<XOR3>(s2, s0, t),
        _mm512_rol_epi64::<45>(s3x),
    ];
    r
}

/// `x^2 + y^2` for the outputs `r`, with `x, y` their signed high and low
/// halves (`vpmuldq` sign-extends the low half of each lane); at most 2^63.
#[inline]
#[target_feature(enable = "avx512f")]
fn pi_mc_sum(r: __m512i) -> __m512i {
    let x = _mm512_srli_epi64::<32>(r);
    _mm512_add_epi64(_mm512_mul_epi32(x, x), _mm512_mul_epi32(r, r))
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
