//! The Mandelbrot escape loop written once over the SIMD layer
//! ([`crate::simd`]), with the same two phases as the AVX-512 loop, in a
//! simpler form: [`VECTORS`] vectors of pixels go together through rounds
//! of iterations without escape tests (the *block* phase; the proof that
//! this gives the reference's counts is in [`super`]), and when a round
//! sees an escape, they go back to the state before it and go on with a
//! test before every iteration (the *exact* phase), freezing the lanes that
//! fail, exactly like the scalar reference.

use super::block_c2;
use crate::simd::{Kernel, Lanes};

/// Vectors iterated together: each iteration is a chain of two dependent
/// FMAs, so four independent vectors keep two FMA ports busy.
pub(super) const VECTORS: usize = 4;

/// The most pixels of a group (eight lanes of the widest path).
const MAX_GROUP: usize = 8 * VECTORS;

/// Escape counts and final `|z|^2` of the pixels `cr[i] + ci i` into `n`
/// and `m2` (whose old contents, the row above's counts, serve as a hint);
/// returns the counts' sum.
pub(super) struct Span<'a> {
    pub cr: &'a [f64],
    pub ci: f64,
    pub max_iter: u32,
    pub bailout: f64,
    pub round: u32,
    pub n: &'a mut [u32],
    pub m2: &'a mut [f64],
}

impl Kernel for Span<'_> {
    type Output = u64;

    #[inline(always)]
    fn run<S: Lanes>(self, s: S) -> u64 {
        let k = Consts {
            ci: s.splat_f64s(self.ci),
            r2: s.splat_f64s(self.bailout * self.bailout),
            max_iter: self.max_iter,
            round: self.round,
        };
        let (c2, ci2) = (block_c2(self.bailout), self.ci * self.ci);
        let group = S::F64_LANES * VECTORS;
        let width = self.cr.len();
        let mut total = 0;
        for col in (0..width).step_by(group) {
            let here = (width - col).min(group);
            // Idle lanes repeat the last real pixel and are discarded.
            let crs: [f64; MAX_GROUP] = std::array::from_fn(|i| self.cr[col + i.min(here - 1)]);
            let crs = &crs[..group];
            // `|c|^2 = fma(cr, cr, ci^2)` grows with `|cr|` (rounding is
            // monotone), so the widest `cr` decides for the group.
            let widest = crs.iter().fold(0.0f64, |w, x| w.max(x.abs()));
            let near = widest.mul_add(widest, ci2) <= c2;
            // The row above's counts (`u32::MAX` on a thread's first row):
            // where all escaped within a round, this row's likely do too, and
            // a round in block mode would only be replayed. (A guess about
            // speed only: both phases give the same results.)
            let early = self.n[col..col + here].iter().all(|&c| c < k.round);
            let blocks = near && !early && k.max_iter >= k.round;
            let (mut counts, mut m2) = ([0.0; MAX_GROUP], [0.0; MAX_GROUP]);
            group_escape(s, &k, crs, blocks, &mut counts[..group], &mut m2[..group]);
            for i in 0..here {
                let c = counts[i] as u32;
                self.n[col + i] = c;
                self.m2[col + i] = m2[i];
                total += u64::from(c);
            }
        }
        total
    }
}

/// What every group of a row shares.
struct Consts<S: Lanes> {
    ci: S::f64s,
    r2: S::f64s,
    max_iter: u32,
    round: u32,
}

/// One group of `VECTORS` vectors of pixels with real parts `crs`: counts
/// (as `f64`, exact) and final `|z|^2` into `counts` and `m2`; through the
/// block phase first if `blocks`.
#[inline(always)]
fn group_escape<S: Lanes>(s: S, k: &Consts<S>, crs: &[f64], blocks: bool, counts: &mut [f64], m2: &mut [f64]) {
    let w = S::F64_LANES;
    let zero = s.splat_f64s(0.0);
    let cr: [S::f64s; VECTORS] = std::array::from_fn(|v| s.load_f64s(&crs[v * w..(v + 1) * w]));
    let (mut zr, mut zi) = ([zero; VECTORS], [zero; VECTORS]);
    let mut iters = 0;
    if blocks {
        loop {
            let (zr0, zi0) = (zr, zi);
            round_steps(s, k.round, &mut zr, &mut zi, &cr, k.ci);
            // Ordered: a NaN, from overflow, fails, i.e. counts as escaped.
            let mut held = s.less_than_or_equal_f64s(norm_v(s, zr[0], zi[0]), k.r2);
            for v in 1..VECTORS {
                held = s.and_m64s(held, s.less_than_or_equal_f64s(norm_v(s, zr[v], zi[v]), k.r2));
            }
            if !s.all_m64s(held) {
                (zr, zi) = (zr0, zi0);
                break;
            }
            iters += k.round;
            if k.max_iter - iters < k.round {
                break;
            }
        }
    }
    // The exact phase, from `iters` on (nothing left to do if the block
    // phase reached `max_iter`).
    let one = s.splat_f64s(1.0);
    let mut count = [s.splat_f64s(f64::from(iters)); VECTORS];
    let mut running = [s.equal_f64s(zero, zero); VECTORS];
    while iters < k.max_iter {
        let mut any = running[0];
        for v in 0..VECTORS {
            running[v] = s.and_m64s(running[v], s.less_than_or_equal_f64s(norm_v(s, zr[v], zi[v]), k.r2));
            count[v] = s.add_f64s(count[v], s.select_f64s(running[v], one, zero));
            let (nr, ni) = step(s, zr[v], zi[v], cr[v], k.ci);
            zr[v] = s.select_f64s(running[v], nr, zr[v]);
            zi[v] = s.select_f64s(running[v], ni, zi[v]);
            if v > 0 {
                any = s.or_m64s(any, running[v]);
            }
        }
        iters += 1;
        if !s.any_m64s(any) {
            break;
        }
    }
    for v in 0..VECTORS {
        s.store_f64s(&mut counts[v * w..(v + 1) * w], count[v]);
        s.store_f64s(&mut m2[v * w..(v + 1) * w], norm_v(s, zr[v], zi[v]));
    }
}

/// `round` unmasked steps of every vector (the block phase's round).
#[inline(always)]
fn round_steps<S: Lanes>(
    s: S,
    round: u32,
    zr: &mut [S::f64s; VECTORS],
    zi: &mut [S::f64s; VECTORS],
    cr: &[S::f64s; VECTORS],
    ci: S::f64s,
) {
    #[cfg(target_arch = "aarch64")]
    if std::any::TypeId::of::<S>() == std::any::TypeId::of::<pulp::aarch64::Neon>() {
        use pulp::bytemuck::{cast_slice, cast_slice_mut};
        let ci: &[f64] = cast_slice(std::slice::from_ref(&ci));
        return neon::round_steps(round, cast_slice_mut(zr), cast_slice_mut(zi), cast_slice(cr), ci[0]);
    }
    for _ in 0..round {
        for v in 0..VECTORS {
            (zr[v], zi[v]) = step(s, zr[v], zi[v], cr[v], ci);
        }
    }
}

/// The block phase's round on NEON with `std::arch` vectors: the same
/// operations as [`step`], in the same order, so the same bits.
///
/// Why not the generic round: LLVM splits pulp's two-lane `f64x2` state into
/// halves across the loop and moves them back every step (51 instructions
/// for the 16 of four steps). With `float64x2_t` state the loop is 34
/// instructions: the 16 operations, and 16 register copies
/// (`mov v.16b`), because `fmla`/`fmls` overwrite their addend: each step
/// copies `cr` and `ci` into fresh registers, and the new `zr`, `zi`, born
/// in those registers, are moved back to where the loop expects them. The
/// Cortex-A72 (Pi 4) runs those copies on its two FP pipes, which the
/// operations already fill, so llvm-mca's A72 model put the loop at 24
/// cycles for 8 pixel-iterations (6.0e8 per second at 1.8 GHz), all of it
/// FP-pipe pressure.
///
/// Here the copies are gone: (1) the addends are read from memory at each
/// use (`read_volatile` of a local, aligned array, so that LLVM neither
/// hoists the loads out of the loop nor replaces them with register
/// copies); an `ldr q` goes to the load pipe, idle in this loop; (2) the
/// loop does two steps per pass, so the new values alternate between two
/// sets of registers and none has to move back. The A72 model then sees
/// 25 instructions per step of four vectors (16 FP operations, 8 loads),
/// 18 cycles per step (8.0e8 per second), the FP pipes busy for 16: the rest
/// is the chain of one vector over two steps (`fmls`, `fmla`, `fadd`,
/// `fmla`: 35 cycles), which four vectors do not quite cover. Neoverse-N1
/// (Pi 5) goes from 16 to 8 cycles per step. docs/benchmarks.md has the table; it is a static
/// model's prediction, not a measurement on a Pi.
#[cfg(target_arch = "aarch64")]
mod neon {
    use super::VECTORS;
    use std::arch::aarch64::*;

    /// `round` steps of the `VECTORS` two-lane vectors `zr + zi i` with
    /// `c = cr + ci i` (each slice `2 VECTORS` long).
    #[inline(always)]
    pub(super) fn round_steps(round: u32, zr: &mut [f64], zi: &mut [f64], cr: &[f64], ci: f64) {
        assert!(zr.len() == 2 * VECTORS && zi.len() == 2 * VECTORS && cr.len() == 2 * VECTORS);
        // SAFETY: NEON is part of the aarch64 baseline; every `vld1q`/`vst1q`
        // reads or writes two elements of a slice just checked to hold
        // `2 VECTORS`, and every `read_volatile` reads an element of a local
        // array of `float64x2_t` (so aligned and initialised) alive here.
        unsafe {
            let load =
                |a: &[f64]| -> [float64x2_t; VECTORS] { std::array::from_fn(|v| vld1q_f64(a.as_ptr().add(2 * v))) };
            let (mut a, mut b) = (load(zr), load(zi));
            // The addends stay in memory (see the module documentation).
            let (crs, cis) = (load(cr), [vdupq_n_f64(ci)]);
            let (cr, ci) = (crs.as_ptr(), cis.as_ptr());
            let step = |a: &mut [float64x2_t; VECTORS], b: &mut [float64x2_t; VECTORS]| {
                for v in 0..VECTORS {
                    let (x, y) = (a[v], b[v]);
                    // fma(x, x, fma(-y, y, cr)), fma(2x, y, ci): `step`'s operations.
                    a[v] = vfmaq_f64(vfmsq_f64(cr.add(v).read_volatile(), y, y), x, x);
                    b[v] = vfmaq_f64(ci.read_volatile(), vaddq_f64(x, x), y);
                }
            };
            for _ in 0..round / 2 {
                step(&mut a, &mut b);
                step(&mut a, &mut b);
            }
            if round % 2 == 1 {
                step(&mut a, &mut b);
            }
            for v in 0..VECTORS {
                vst1q_f64(zr.as_mut_ptr().add(2 * v), a[v]);
                vst1q_f64(zi.as_mut_ptr().add(2 * v), b[v]);
            }
        }
    }
}

/// [`super::step`] on every lane: `(fma(a, a, fma(-b, b, cr)), fma(2a, b, ci))`.
#[inline(always)]
fn step<S: Lanes>(s: S, a: S::f64s, b: S::f64s, cr: S::f64s, ci: S::f64s) -> (S::f64s, S::f64s) {
    (s.mul_add_f64s(a, a, s.negate_mul_add_f64s(b, b, cr)), s.mul_add_f64s(s.add_f64s(a, a), b, ci))
}

/// [`super::norm`] on every lane: `fma(a, a, b*b)`.
#[inline(always)]
fn norm_v<S: Lanes>(s: S, a: S::f64s, b: S::f64s) -> S::f64s {
    s.mul_add_f64s(a, a, s.mul_f64s(b, b))
}
