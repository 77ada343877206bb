//! The hand-written AVX-512 (`std::arch`) loop of pi-mc, beside the generic
//! one in `simd.rs`: it performs the same IEEE operations in the same order,
//! so both give the same bits (the unit tests compare them). Callers check
//! that the run-time path is AVX-512 first: functions here are `unsafe` only
//! because they need those CPU features.

use std::arch::x86_64::*;

/// pi-mc: hits among the first `n` (at most [`UNIT`](crate::pi_mc::UNIT))
/// samples of unit `unit` of the stream `key`, in the order of
/// [`crate::pi_mc`]: lane `8 v + l` of the 32 is lane `l` of vector `v`.
///
/// A step of a vector gives sixteen samples. Their top halves are all of the
/// first output `h` (see [`point`](crate::pi_mc::point)), so one `vpmaddwd`
/// of `h` with itself gives `a^2 + b^2` for all sixteen (`a`, `b` the signed
/// top halves of `x`, `y`; exact as an unsigned 32-bit sum), and two
/// compares sort them: below [`SURE_INSIDE`](crate::pi_mc::SURE_INSIDE)
/// inside, at or above [`SURE_OUTSIDE`](crate::pi_mc::SURE_OUTSIDE) outside,
/// whatever the low halves. The band between, a fraction of about 1.6e-4,
/// goes to the exact scalar test ([`pi_mc_exact`]), so the count is exact.
/// The second output only steps the state: its sum and rotate are computed
/// for a band only.
///
/// Per sixteen samples: xoshiro256++ in fifteen operations (its output's
/// add, rotate and add, then twice the state update: a shift, a rotate, two
/// `vpternlogq` three-way xors and two xors) and 4.5 for the test (the
/// multiply-add, two compares, the masked count, and one `kortestw` per two
/// vectors). That is 19.5 operations, 9.75 cycles on the two 512-bit ports;
/// the loop runs at about 10.7 (`scripts/pi_mc_floor.c` measures it in C).
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512DQ (`vpmullq` in the seeding) and
/// AVX-512BW (`vpmaddwd`).
#[target_feature(enable = "avx512f,avx512dq,avx512bw")]
pub(crate) unsafe fn pi_mc_unit(key: u64, unit: u64, n: u64) -> u64 {
    use crate::pi_mc::{seed_input, LANES, MIX1, MIX2, STEP, SURE_INSIDE, SURE_OUTSIDE};
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
    let (sure_in, sure_out) = (_mm512_set1_epi32(SURE_INSIDE as i32), _mm512_set1_epi32(SURE_OUTSIDE as i32));
    // Samples not surely inside, per lane in `f32` (exact below 2^24; a lane
    // counts at most 1024 per unit): LLVM keeps a masked floating-point add
    // one instruction, but turns a masked integer add into two.
    let one = _mm512_set1_ps(1.0);
    let mut not_inside = [_mm512_setzero_ps(); V / 2];
    let mut band_hits = 0;
    let (steps, rem) = (n / STEP, n % STEP);
    for _ in 0..steps {
        // Two vectors at a time, so that one `kortestw` tests both bands.
        for (s, c) in st.chunks_exact_mut(2).zip(&mut not_inside) {
            let (h0, h1) = (pi_mc_output(&s[0]), pi_mc_output(&s[1]));
            pi_mc_advance(&mut s[0]);
            pi_mc_advance(&mut s[1]);
            let (sq0, sq1) = (_mm512_madd_epi16(h0, h0), _mm512_madd_epi16(h1, h1));
            let (u0, u1) = (_mm512_cmpge_epu32_mask(sq0, sure_in), _mm512_cmpge_epu32_mask(sq1, sure_in));
            let b0 = _mm512_mask_cmplt_epu32_mask(u0, sq0, sure_out);
            let b1 = _mm512_mask_cmplt_epu32_mask(u1, sq1, sure_out);
            *c = _mm512_mask_add_ps(*c, u0, *c, one);
            *c = _mm512_mask_add_ps(*c, u1, *c, one);
            if _kortestz_mask16_u8(b0, b1) == 0 {
                band_hits += pi_mc_exact(h0, pi_mc_output(&s[0]), b0) + pi_mc_exact(h1, pi_mc_output(&s[1]), b1);
            }
            pi_mc_advance(&mut s[0]);
            pi_mc_advance(&mut s[1]);
        }
    }
    let counted: f32 = not_inside.iter().map(|&c| _mm512_reduce_add_ps(c)).sum();
    let mut total = steps * STEP - counted as u64 + band_hits;
    // The partial step: the samples below `rem` only, with the exact test.
    if rem > 0 {
        for (v, s) in st.iter_mut().enumerate() {
            let h = pi_mc_output(s);
            pi_mc_advance(s);
            // Dword 2 l + k of the vector is word k of lane 8 v + l: sample k * LANES + 8 v + l.
            let live = (0..16).filter(|d| ((d % 2) * LANES + 8 * v + d / 2) < rem as usize).fold(0, |m, d| m | 1 << d);
            total += pi_mc_exact(h, pi_mc_output(s), live);
        }
    }
    total
}

/// The exact test ([`inside`](crate::pi_mc::inside)) for the samples of a
/// step in `which` (a dword mask), from the step's outputs `h` and `l`.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx512f")]
fn pi_mc_exact(h: __m512i, l: __m512i, which: __mmask16) -> u64 {
    let (mut hw, mut lw) = ([0u32; 16], [0u32; 16]);
    // SAFETY: each array has room for the 64 bytes stored.
    unsafe {
        _mm512_storeu_si512(hw.as_mut_ptr().cast(), h);
        _mm512_storeu_si512(lw.as_mut_ptr().cast(), l);
    }
    crate::pi_mc::exact_hits(&hw, &lw, |d| which >> d & 1 == 1)
}

/// The xoshiro256++ output of eight lanes' state `s` (before its step).
#[inline]
#[target_feature(enable = "avx512f")]
fn pi_mc_output(s: &[__m512i; 4]) -> __m512i {
    _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s[0], s[3])), s[0])
}

/// One xoshiro256 state step of eight lanes (state words `s[0..4]`).
#[inline]
#[target_feature(enable = "avx512f")]
fn pi_mc_advance(s: &mut [__m512i; 4]) {
    const XOR3: i32 = 0x96;
    let [s0, s1, s2, s3] = *s;
    let t = _mm512_slli_epi64::<17>(s1);
    let s3x = _mm512_xor_si512(s3, s1);
    *s = [
        _mm512_xor_si512(s0, s3x),
        _mm512_ternarylogic_epi64::<XOR3>(s1, s2, s0),
        _mm512_ternarylogic_epi64::<XOR3>(s2, s0, t),
        _mm512_rol_epi64::<45>(s3x),
    ];
}
