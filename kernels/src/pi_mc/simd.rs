//! The pi-mc unit written once over the SIMD layer ([`crate::simd`]).
//!
//! Generators go two vectors at a time through all their steps (a lane's
//! samples are its own whoever draws them first, so the order does not
//! change the count): eight state vectors, which fit the sixteen registers
//! of AVX2. Each step settles a sample by the high-halves test
//! ([`super::SURE_INSIDE`], [`super::SURE_OUTSIDE`]) from the first output
//! alone, and the rare band between the bounds by the exact test.

use super::{inside, point, seed_word, LANES, STEP, SURE_INSIDE, SURE_OUTSIDE};
use crate::simd::{Kernel, Lanes};
use pulp::bytemuck::cast_slice;

/// Hits among the first `n` samples of unit `unit` of the stream `key`.
pub(super) struct Unit {
    pub key: u64,
    pub unit: u64,
    pub n: u64,
}

/// Vectors of generators stepped together.
const TOGETHER: usize = 2;

impl Kernel for Unit {
    type Output = u64;

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) -> u64 {
        let Unit { key, unit, n } = self;
        debug_assert!(n <= super::UNIT);
        let w = S::U64_LANES;
        let (steps, rem) = (n / STEP, (n % STEP) as usize);
        let (sure_in, sure_out) = (s.splat_u32s(SURE_INSIDE), s.splat_u32s(SURE_OUTSIDE));
        let (zero, one) = (s.splat_u32s(0), s.splat_u32s(1));
        // Per 32-bit lane: the samples surely inside.
        let mut sure_inside = zero;
        let mut exact_hits = 0;
        for first in (0..LANES).step_by(TOGETHER * w) {
            let mut st: [[S::u64s; 4]; TOGETHER] = std::array::from_fn(|j| {
                std::array::from_fn(|k| {
                    let words: [u64; 8] =
                        std::array::from_fn(|l| seed_word(key, unit, first + j * w + l.min(w - 1), k));
                    s.load_u64s(&words[..w])
                })
            });
            for _ in 0..steps {
                for g in &mut st {
                    let h = output(s, g);
                    advance(s, g);
                    let sq = s.sq_halves_u32s(h);
                    let sure = s.less_than_u32s(sq, sure_in);
                    sure_inside = s.add_u32s(sure_inside, s.select_u32s(sure, one, zero));
                    let band = s.and_m32s(s.not_m32s(sure), s.less_than_u32s(sq, sure_out));
                    if s.any_m32s(band) {
                        let band = s.select_u32s(band, one, zero);
                        exact_hits +=
                            exact(&h, &output(s, g), |d| cast_slice::<_, u32>(std::slice::from_ref(&band))[d] != 0);
                    }
                    advance(s, g);
                }
            }
            if rem > 0 {
                // The partial step: word k of lane `first + j w + l` (dword
                // 2 l + k of the vector) is sample `k LANES + first + j w + l`.
                for (j, g) in st.iter_mut().enumerate() {
                    let h = output(s, g);
                    advance(s, g);
                    let l = output(s, g);
                    exact_hits += exact(&h, &l, |d| (d % 2) * LANES + first + j * w + d / 2 < rem);
                }
            }
        }
        let sure: &[u32] = cast_slice(std::slice::from_ref(&sure_inside));
        sure.iter().map(|&c| u64::from(c)).sum::<u64>() + exact_hits
    }
}

/// The xoshiro256++ output of a vector's state `g` (before its step), as
/// [`super::next`] computes it.
#[inline(always)]
fn output<S: Lanes>(s: S, g: &[S::u64s; 4]) -> S::u64s {
    s.add_u64s(s.rotl_u64s::<23, 41>(s.add_u64s(g[0], g[3])), g[0])
}

/// One xoshiro256 state step of a vector's state `g`, as [`super::next`].
#[inline(always)]
fn advance<S: Lanes>(s: S, g: &mut [S::u64s; 4]) {
    let t = s.shl_u64s::<17>(g[1]);
    g[2] = s.xor_u64s(g[2], g[0]);
    g[3] = s.xor_u64s(g[3], g[1]);
    g[1] = s.xor_u64s(g[1], g[2]);
    g[0] = s.xor_u64s(g[0], g[3]);
    g[2] = s.xor_u64s(g[2], t);
    g[3] = s.rotl_u64s::<45, 19>(g[3]);
}

/// The exact test ([`inside`]) for the samples of a step whose dword index
/// `d` passes `which`, from the step's outputs `h` and `l`.
#[cold]
#[inline(never)]
fn exact<V: pulp::bytemuck::Pod>(h: &V, l: &V, which: impl Fn(usize) -> bool) -> u64 {
    let (hw, lw): (&[u32], &[u32]) = (cast_slice(std::slice::from_ref(h)), cast_slice(std::slice::from_ref(l)));
    (0..hw.len())
        .filter(|&d| which(d))
        .filter(|&d| {
            let (x, y) = point(hw[d], lw[d]);
            inside(x, y)
        })
        .count() as u64
}
