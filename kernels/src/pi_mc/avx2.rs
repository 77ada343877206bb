//! The hand-written AVX2 (`std::arch`) loop of pi-mc, beside the generic one
//! in `simd.rs`: the same generator outputs and the same samples, each
//! settled by a sound test or the exact one, so both give the same count
//! (the unit tests compare them). Callers check that the run-time path is
//! AVX2 first: functions here are `unsafe` only because they need it.

use std::arch::x86_64::*;

/// The offset that maps `a^2 + b^2` (`q`, at most 2^31, see
/// [`pi_mc_unit`]) onto signed 32-bit words: `q + BIAS` is negative exactly
/// for `q` at or above [`SURE_OUTSIDE`](crate::pi_mc::SURE_OUTSIDE), and
/// above [`BAND`] exactly for `q` in the band (at or above
/// [`SURE_INSIDE`](crate::pi_mc::SURE_INSIDE), below `SURE_OUTSIDE`), the
/// top of the positive range.
const BIAS: u32 = (1 << 31) - crate::pi_mc::SURE_OUTSIDE;

/// `q + BIAS` above this (signed) means `q` is in the band.
const BAND: i32 = (crate::pi_mc::SURE_INSIDE + BIAS - 1) as i32;

// `q + BIAS` saturates to a 16-bit word of the same sign, 0x7fff or 0x8000:
// it is at least `BIAS` when not negative, at most `i32::MIN + BIAS` when
// negative (the count in `pi_mc_unit` relies on it).
const _: () = assert!(BIAS >= 0x7fff && (i32::MIN + BIAS as i32) < -0x8000);

/// pi-mc: hits among the first `n` (at most [`UNIT`](crate::pi_mc::UNIT))
/// samples of unit `unit` of the stream `key`, in the order of
/// [`crate::pi_mc`]: lane `4 v + l` of the 32 is lane `l` of vector `v`.
///
/// The eight vectors go two at a time through all their steps (eight state
/// registers of the sixteen; a lane's samples are its own whoever draws them
/// first). A step of a vector gives eight samples, whose top halves are all
/// of the first output `h` ([`point`](crate::pi_mc::point)): `vpmaddwd` of
/// `h` with itself gives `q = a^2 + b^2` for each (exact as an unsigned
/// 32-bit word, at most 2^31), and `v = q + BIAS` sorts them by its sign
/// and one signed compare: negative surely outside, at most [`BAND`] surely
/// inside, above it (the band, about 1.6e-4 of them) the exact scalar test
/// ([`band_misses`]). Per pair of vectors, one saturating `vpackssdw`
/// turns the sixteen `v` into words, 0x8000 outside and 0x7fff otherwise,
/// which one 16-bit add counts; one `vpmaxsd`, one compare and one mask
/// test (`vtestps`) look for the band in both vectors ([`sort`]).
///
/// Per eight samples: xoshiro256++ in 23 operations (AVX2 has no 64-bit
/// rotate, nor three-way xor: its output's add, rotate in three and add,
/// then twice the state update: a shift, five xors and a rotate in three)
/// and 5 for the test (`vpmaddwd`, the offset's add, and half each of the
/// pack, the count's add, the max, the compare and the two-uop `vtestps`):
/// 28, 9.3 cycles on the three 256-bit vector ports, where the generic loop
/// spends 31 and passes state through the stack. The loop ([`steps_to_band`])
/// holds everything in registers.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn pi_mc_unit(key: u64, unit: u64, n: u64) -> u64 {
    use crate::pi_mc::{seed_word, LANES, STEP};
    const V: usize = LANES / 4;
    debug_assert!(n <= crate::pi_mc::UNIT);
    let (steps, rem) = (n / STEP, n % STEP);
    // Per 16-bit word, wrapping: 0x7fff for each sample not surely outside
    // and 0x8000 for each one outside, that is `0x7fff` times the words
    // added (`V / 2 * steps`) plus those outside (at most 4 * 1024 a unit,
    // so they do not wrap): it starts at minus the first term.
    let mut outside = _mm256_set1_epi16((V as u64 / 2 * steps).wrapping_mul(0x8001) as i16);
    let mut misses = 0;
    let mut partial = 0;
    for pair in 0..V / 2 {
        let mut st: [[__m256i; 4]; 2] = std::array::from_fn(|j| {
            std::array::from_fn(|k| {
                let z: [u64; 4] = std::array::from_fn(|l| seed_word(key, unit, 4 * (2 * pair + j) + l, k));
                // SAFETY: `z` holds the 32 bytes loaded.
                unsafe { _mm256_loadu_si256(z.as_ptr().cast()) }
            })
        });
        // The steps left, from the first with samples in the band on.
        let mut left = steps;
        while left > 0 {
            left = steps_to_band(&mut st, &mut outside, left);
            if left > 0 {
                misses += band_misses(st[0], st[1]);
                for g in &mut st {
                    advance(g);
                    advance(g);
                }
                left -= 1;
            }
        }
        // The partial step: the samples below `rem` only, with the exact test.
        if rem > 0 {
            for (j, g) in st.iter_mut().enumerate() {
                let v = 2 * pair + j;
                let h = output(g);
                advance(g);
                // Dword 2 l + k of the vector is word k of lane 4 v + l: sample k * LANES + 4 v + l.
                let live = |d: usize| ((d % 2) * LANES + 4 * v + d / 2) < rem as usize;
                partial += exact(h, output(g), live);
            }
        }
    }
    let outside: u64 = words(_mm256_madd_epi16(outside, _mm256_set1_epi16(1))).iter().map(|&c| u64::from(c)).sum();
    steps * STEP - outside - misses + partial
}

/// The next `left` steps of the two vectors of states `g`, up to the first
/// with samples in the band ([`BAND`]): the steps left from that one on
/// (the state before it, its samples outside counted), or 0. Their samples
/// outside are added to `outside` (see [`pi_mc_unit`]). Not inlined: the
/// loop keeps the eight state vectors in registers, where a call in it
/// (to [`band_misses`]) would make the compiler keep some on the stack.
#[inline(never)]
#[target_feature(enable = "avx2")]
fn steps_to_band(g: &mut [[__m256i; 4]; 2], outside: &mut __m256i, left: u64) -> u64 {
    let ([mut g0, mut g1], mut count) = (*g, *outside);
    let mut rest = 0;
    for i in 0..left {
        let (words, in_band) = sort(output(&g0), output(&g1));
        count = _mm256_add_epi16(count, words);
        if in_band {
            rest = left - i;
            break;
        }
        for g in [&mut g0, &mut g1] {
            advance(g);
            advance(g);
        }
    }
    (*g, *outside) = ([g0, g1], count);
    rest
}

/// The test of a step's samples from the first outputs `h0`, `h1` of two
/// vectors: one 16-bit word a sample, 0x8000 if it is surely outside, else
/// 0x7fff (`q + BIAS` saturated), and whether any is in the band.
#[inline]
#[target_feature(enable = "avx2")]
fn sort(h0: __m256i, h1: __m256i) -> (__m256i, bool) {
    let (bias, band) = (_mm256_set1_epi32(BIAS as i32), _mm256_set1_epi32(BAND));
    let v0 = _mm256_add_epi32(_mm256_madd_epi16(h0, h0), bias);
    let v1 = _mm256_add_epi32(_mm256_madd_epi16(h1, h1), bias);
    let in_band = _mm256_cmpgt_epi32(_mm256_max_epi32(v0, v1), band);
    (_mm256_packs_epi32(v0, v1), _mm256_movemask_ps(_mm256_castsi256_ps(in_band)) != 0)
}

/// The samples of the band ([`BAND`]) not inside the disc, among the
/// samples of the next step of the states `g0` and `g1` (which stay as
/// they are: their outputs are drawn from copies).
#[cold]
#[inline(never)]
#[target_feature(enable = "avx2")]
fn band_misses(g0: [__m256i; 4], g1: [__m256i; 4]) -> u64 {
    use crate::pi_mc::{SURE_INSIDE, SURE_OUTSIDE};
    [g0, g1]
        .iter_mut()
        .map(|g| {
            let h = output(g);
            advance(g);
            let hw = words(h);
            let band = |d: usize| (SURE_INSIDE..SURE_OUTSIDE).contains(&crate::simd::sq_halves(hw[d]));
            (0..8).filter(|&d| band(d)).count() as u64 - exact(h, output(g), band)
        })
        .sum()
}

/// The exact test ([`inside`](crate::pi_mc::inside)) for the samples of a
/// step whose dword index `d` passes `which`, from the step's outputs `h`
/// and `l`.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx2")]
fn exact(h: __m256i, l: __m256i, which: impl Fn(usize) -> bool) -> u64 {
    crate::pi_mc::exact_hits(&words(h), &words(l), which)
}

/// The eight 32-bit words of `a`, word 0 the lowest.
#[inline]
#[target_feature(enable = "avx2")]
fn words(a: __m256i) -> [u32; 8] {
    let mut w = [0u32; 8];
    // SAFETY: `w` has room for the 32 bytes stored.
    unsafe { _mm256_storeu_si256(w.as_mut_ptr().cast(), a) };
    w
}

/// The xoshiro256++ output of four lanes' state `s` (before its step).
#[inline]
#[target_feature(enable = "avx2")]
fn output(s: &[__m256i; 4]) -> __m256i {
    _mm256_add_epi64(rotl::<23, 41>(_mm256_add_epi64(s[0], s[3])), s[0])
}

/// One xoshiro256 state step of four lanes (state words `s[0..4]`).
#[inline]
#[target_feature(enable = "avx2")]
fn advance(s: &mut [__m256i; 4]) {
    let [s0, s1, s2, s3] = *s;
    let t = _mm256_slli_epi64::<17>(s1);
    let s20 = _mm256_xor_si256(s2, s0);
    let s31 = _mm256_xor_si256(s3, s1);
    *s = [_mm256_xor_si256(s0, s31), _mm256_xor_si256(s1, s20), _mm256_xor_si256(s20, t), rotl::<45, 19>(s31)];
}

/// Each 64-bit lane of `a` rotated left by `L` (`R` is `64 - L`).
#[inline]
#[target_feature(enable = "avx2")]
fn rotl<const L: i32, const R: i32>(a: __m256i) -> __m256i {
    const { assert!(L + R == 64) };
    _mm256_or_si256(_mm256_slli_epi64::<L>(a), _mm256_srli_epi64::<R>(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pi_mc::{SURE_INSIDE, SURE_OUTSIDE};

    #[test]
    fn the_sort_matches_the_bounds_at_their_edges() {
        if !crate::simd::Path::Avx2.available() {
            return;
        }
        // Top halves (a, b) with a^2 + b^2 the nearest values of such sums
        // on both sides of both bounds (3 and 7 below, 3 and 4 above), 0,
        // and the largest, 2^31 (both -2^15: a wrapped signed word).
        let sq = |a: i64, b: i64| (a * a + b * b) as u64;
        let halves = |t: u64| {
            (0..=32_768i64).take_while(|&a| sq(a, 0) <= t).find_map(|a| {
                let b = ((t - sq(a, 0)) as f64).sqrt() as i64;
                (b.max(1) - 1..=b + 1).find(|&b| b <= 32_768 && sq(a, b) == t).map(|b| (a, b))
            })
        };
        let mut pairs = vec![(0i64, 0i64), (-32_768, -32_768), (-32_768, 32_767), (32_767, 32_767)];
        for bound in [SURE_INSIDE, SURE_OUTSIDE].map(u64::from) {
            let below = (0..bound).rev().find_map(halves).unwrap();
            let above = (bound..).find_map(halves).unwrap();
            assert!(bound - sq(below.0, below.1) < 10 && sq(above.0, above.1) - bound < 10);
            for (a, b) in [below, above] {
                pairs.extend([(a, b), (-a, b), (b, -a), (-b, -a)]);
            }
        }
        // Each pair alone (the other samples 0, inside), in each of the
        // sixteen places, and all of them sixteen at a time.
        let alone = pairs.iter().enumerate().map(|(i, &p)| {
            let mut c = [(0, 0); 16];
            c[i % 16] = p;
            c.to_vec()
        });
        for chunk in alone.chain(pairs.chunks(16).map(<[_]>::to_vec)) {
            let mut h = [0u32; 16];
            for (w, &(a, b)) in h.iter_mut().zip(&chunk) {
                *w = (b as u32) << 16 | (a as u32 & 0xffff);
            }
            // SAFETY: the CPU has AVX2 (checked above); each array holds 32 bytes.
            let (words, in_band) = unsafe {
                let load = |i: usize| _mm256_loadu_si256(h[i..].as_ptr().cast());
                sort(load(0), load(8))
            };
            let mut got = [0u16; 16];
            // SAFETY: as above.
            unsafe { _mm256_storeu_si256(got.as_mut_ptr().cast(), words) };
            let q = |d: usize| u64::from(crate::simd::sq_halves(h[d]));
            // vpackssdw takes four words of each vector per 128-bit half.
            let dword = |w: usize| (w / 8) * 4 + (w % 4) + if w % 8 >= 4 { 8 } else { 0 };
            for (w, &g) in got.iter().enumerate() {
                let d = dword(w);
                assert_eq!(g, if q(d) >= u64::from(SURE_OUTSIDE) { 0x8000 } else { 0x7fff }, "q {}", q(d));
            }
            let band = (0..16).any(|d| (u64::from(SURE_INSIDE)..u64::from(SURE_OUTSIDE)).contains(&q(d)));
            assert_eq!(in_band, band, "{h:x?}");
        }
    }
}
