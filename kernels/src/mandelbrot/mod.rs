//! The Mandelbrot set (seed 002): escape time with smooth colouring.
//!
//! A work unit is one image row. A pixel's colour depends only on the
//! parameters and its coordinates, so rows computed anywhere assemble into
//! the same image, byte for byte.
//!
//! **The iteration.** `z <- z^2 + c` is computed with fused multiply-adds,
//! as [`step`] spells out: `re = fma(a, a, fma(-b, b, cr))`,
//! `im = fma(2a, b, ci)`: four operations instead of seven, each FMA rounded
//! once (IEEE 754 fixes its result, so every path and platform with an FMA
//! gets the same bits; arm64 and x86-64 with FMA do it in one instruction).
//! The escape test is `|z|^2 <= R^2` before each step, with
//! `|z|^2 = fma(a, a, b*b)` ([`norm`]), as the reference [`escape_reference`]
//! does.
//!
//! **Checking less often.** The fast paths run rounds of
//! several iterations without the escape test and tests once at the end,
//! replaying the round with a test per iteration only if some lane escaped.
//! That gives the reference's counts because an escaped point stays escaped,
//! provided `R >= 2` (checked by [`Params::validate`]) and `|c| <= R - 1/4`
//! (checked per vector, [`block_c2`]): if `|z| > R` then
//! `|z^2 + c| >= |z|^2 - |c| >= R|z| - R + 1/4 > |z| + 1/4`, since
//! `R|z| - R >= 2|z| - 2 >= |z|` for `|z| > R >= 2`. The margin of 1/4 dwarfs
//! the few rounding errors of a step (relative 2^-52), so the computed orbit
//! grows too, until it overflows to infinity or NaN, which the final test
//! also counts as escaped. The unit tests compare the fast path with the
//! reference pixel by pixel, including points near `|c| = R`.
//!
//! The fast path iterates pixels in lock-step with branch-free lanes: the
//! generic loop (`simd.rs`, four vectors of any path of [`crate::simd`]),
//! or on AVX-512 and AVX2 the hand-written `avx512.rs` and `avx2.rs`, which
//! measured faster there (docs/benchmarks.md); the reference path,
//! [`pixel_reference`], is a plain scalar loop on `num_complex::Complex64`.
//! All perform the same IEEE operations, so they agree exactly, and the
//! run-time verification compares them.
//!
//! Layout: this file holds the parameters, the reference and the rows;
//! `simd.rs`, `avx512.rs` and `avx2.rs` the escape loops, `colormap.rs` the
//! colours.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod colormap;
mod colour;
mod simd;

use crate::simd::Path;
use crate::{Invalid, Tally};
use colormap::Colormap;
use num_complex::Complex64;
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;

/// Bytes per pixel of the RGB output.
pub const BYTES_PER_PIXEL: usize = 3;

/// The rectangle of the complex plane shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    /// Real part at the left edge.
    pub xmin: f64,
    /// Real part at the right edge.
    pub xmax: f64,
    /// Imaginary part at the bottom edge.
    pub ymin: f64,
    /// Imaginary part at the top edge.
    pub ymax: f64,
}

impl Region {
    /// The seed's view, `[-2, 1] x [-1, 1]`.
    pub const SEED: Region = Region { xmin: -2.0, xmax: 1.0, ymin: -1.0, ymax: 1.0 };

    /// A view centred on `(cx, cy)`, `3 / zoom` wide (zoom 1 is as wide as the
    /// seed's view), with the image's aspect ratio `height / width`.
    pub fn centered(cx: f64, cy: f64, zoom: f64, aspect: f64) -> Region {
        let half_w = 1.5 / zoom;
        let half_h = half_w * aspect;
        Region { xmin: cx - half_w, xmax: cx + half_w, ymin: cy - half_h, ymax: cy + half_h }
    }
}

/// Everything that determines the picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Iteration limit per pixel.
    pub max_iter: u32,
    /// Region of the complex plane.
    pub region: Region,
    /// Escape radius; the seed used 200, large radii smooth the colouring.
    pub bailout: f64,
    /// Colour map.
    pub colormap: Colormap,
    /// Smooth (continuous) colouring instead of integer escape-time bands.
    pub smooth: bool,
}

impl Params {
    /// The seed's picture: 3200x3200 over `[-2, 1] x [-1, 1]`, 32 iterations,
    /// escape radius 200, smooth colouring, the rainbow map.
    pub const SEED: Params = Params {
        width: 3200,
        height: 3200,
        max_iter: 32,
        region: Region::SEED,
        bailout: 200.0,
        colormap: Colormap::Rainbow,
        smooth: true,
    };

    /// Checks the parameters; the error names the offending one.
    pub fn validate(&self) -> Result<(), Invalid> {
        let r = &self.region;
        if self.width == 0 || self.height == 0 {
            return Err(Invalid::whole(format!(
                "the image must have at least one pixel (got {}x{})",
                self.width, self.height
            )));
        }
        if self.max_iter == 0 {
            return Err(Invalid::param("max_iter", "must be at least 1".into()));
        }
        for (name, v) in [("xmin", r.xmin), ("xmax", r.xmax), ("ymin", r.ymin), ("ymax", r.ymax)] {
            if !v.is_finite() {
                return Err(Invalid::whole(format!("the region's {name} is not a finite number ({v})")));
            }
        }
        if r.xmin >= r.xmax || r.ymin >= r.ymax {
            // {:?}: the shortest exact form, in exponent notation when large or small.
            return Err(Invalid::whole(format!(
                "the region is empty: need xmin < xmax and ymin < ymax (got x [{:?}, {:?}], y [{:?}, {:?}])",
                r.xmin, r.xmax, r.ymin, r.ymax
            )));
        }
        if !self.resolvable() {
            return Err(Invalid::whole(
                "the region is too small for f64 precision: neighbouring pixels would coincide".into(),
            ));
        }
        if !(self.bailout.is_finite() && self.bailout >= 2.0) {
            return Err(Invalid::param(
                "bailout",
                format!("must be a finite number of at least 2 (got {})", self.bailout),
            ));
        }
        Ok(())
    }

    /// Whether the region is not empty and neighbouring pixels have distinct
    /// coordinates: a pixel is wider than 1e-15 of its edges' magnitude
    /// (a few of f64's steps there).
    pub fn resolvable(&self) -> bool {
        let r = &self.region;
        let (dx, dy) = ((r.xmax - r.xmin) / f64::from(self.width), (r.ymax - r.ymin) / f64::from(self.height));
        dx > r.xmin.abs().max(r.xmax.abs()) * 1e-15 && dy > r.ymin.abs().max(r.ymax.abs()) * 1e-15
    }

    /// Bytes of one RGB row.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * BYTES_PER_PIXEL
    }

    /// Bytes of the whole RGB image.
    pub fn image_bytes(&self) -> u64 {
        self.row_bytes() as u64 * u64::from(self.height)
    }

    /// The point of the complex plane at the centre of pixel `(col, row)`;
    /// row 0 is the top of the image.
    #[inline(always)]
    pub fn point(&self, col: u32, row: u32) -> (f64, f64) {
        let r = &self.region;
        let dx = (r.xmax - r.xmin) / f64::from(self.width);
        let dy = (r.ymax - r.ymin) / f64::from(self.height);
        (r.xmin + (f64::from(col) + 0.5) * dx, r.ymax - (f64::from(row) + 0.5) * dy)
    }

    /// The colour of a pixel that took `n` iterations and ended at `|z|^2 = m2`
    /// (the SIMD colouring of `colour.rs`, one pixel on the scalar path).
    fn colour(&self, n: u32, m2: f64) -> [u8; 3] {
        colour::colour_one(self, n, m2)
    }
}

/// One step `z^2 + c` of `z = a + bi`, `c = cr + ci i`: the definition every
/// path follows (see the module documentation).
#[inline(always)]
pub fn step(a: f64, b: f64, cr: f64, ci: f64) -> (f64, f64) {
    (a.mul_add(a, (-b).mul_add(b, cr)), (a + a).mul_add(b, ci))
}

/// `|z|^2 = a^2 + b^2` as every path computes it: `fma(a, a, b*b)`, two
/// operations and two roundings.
#[inline(always)]
pub fn norm(a: f64, b: f64) -> f64 {
    a.mul_add(a, b * b)
}

/// The bound on `|c|^2` under which the fast path may test for escape only
/// once per round: `(R - 1/4)^2` for escape radius `R` (module documentation).
pub fn block_c2(bailout: f64) -> f64 {
    (bailout - 0.25) * (bailout - 0.25)
}

/// Reference escape-time iteration of one point, on `Complex64`: the number of
/// iterations `n` and the final `|z|^2`.
pub fn escape_reference(c: Complex64, max_iter: u32, r2: f64) -> (u32, f64) {
    let mut z = Complex64::new(0.0, 0.0);
    let mut n = 0;
    while n < max_iter && norm(z.re, z.im) <= r2 {
        let (re, im) = step(z.re, z.im, c.re, c.im);
        z = Complex64::new(re, im);
        n += 1;
    }
    (n, norm(z.re, z.im))
}

/// Reference colour and iteration count of pixel `(col, row)`.
pub fn pixel_reference(p: &Params, col: u32, row: u32) -> ([u8; 3], u32) {
    let (x, y) = p.point(col, row);
    let (n, m2) = escape_reference(Complex64::new(x, y), p.max_iter, p.bailout * p.bailout);
    (p.colour(n, m2), n)
}

/// Iterations per round of the block phase: long enough that the test after
/// a round is cheap beside it, short enough that the round lost when a lane
/// escapes costs little: the largest divisor of `max_iter` from 8 to 25, so
/// that points inside the set finish in this phase (25 for 50 iterations;
/// 10 measured about 3% slower there), else 8 (the exact phase finishes
/// what is left).
fn round_len(max_iter: u32) -> u32 {
    (8..=25).rev().find(|b| max_iter.is_multiple_of(*b)).unwrap_or(8)
}

/// Whether the AVX-512 path runs the hand-written escape loop rather than
/// the generic one (docs/benchmarks.md has the measurement).
const HAND_WRITTEN: bool = true;

/// Whether the AVX2 path runs the hand-written escape loop (`avx2.rs`)
/// rather than the generic one: 0.153 s against 0.219 s for the escape-only
/// benchmark picture (best of 20 interleaved runs on a loaded Sapphire
/// Rapids class Xeon, where AVX-512 took 0.077 s).
const HAND_WRITTEN_AVX2: bool = true;

/// The name of the escape loop this process runs, for reports.
pub fn implementation() -> &'static str {
    match crate::simd::path() {
        Path::Avx2 if HAND_WRITTEN_AVX2 => "avx2 (std::arch)",
        _ => crate::simd::implementation(HAND_WRITTEN),
    }
}

/// A thread's buffers for [`escape_row`]: the real part of every column's
/// point (the same on every row, so computed once), and one row's escape
/// counts and final `|z|^2`.
struct Scratch {
    cr: Vec<f64>,
    /// The element of `cr` of the largest magnitude (for the AVX-512 path).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    widest: f64,
    n: Vec<u32>,
    m2: Vec<f64>,
}

impl Scratch {
    fn new(p: &Params) -> Scratch {
        let w = p.width as usize;
        // `n` starts at the most iterations, not 0: the AVX-512 path reads a
        // row's previous counts as a hint of how the next row will go.
        let cr: Vec<f64> = (0..p.width).map(|c| p.point(c, 0).0).collect();
        let widest = cr.iter().copied().fold(0.0, |w: f64, x| if x.abs() > w.abs() { x } else { w });
        Scratch { cr, widest, n: vec![u32::MAX; w], m2: vec![0.0; w] }
    }
}

thread_local! {
    /// The thread's [`Scratch`] from its last piece of rows, with the
    /// parameters it was made for.
    static KEPT: RefCell<Option<(Params, Scratch)>> = const { RefCell::new(None) };
}

/// A thread's [`Scratch`] for a piece of rows: the one it kept from its
/// previous piece if that was for the same picture, else a new one; kept
/// again when dropped. A rank that packs its rows computes them in pieces
/// (tens of rows), and each would otherwise recompute the columns' points
/// and lose the AVX-512 loop's hint from the row before.
struct Held<'a> {
    p: &'a Params,
    s: Option<Scratch>,
}

impl<'a> Held<'a> {
    fn take(p: &'a Params) -> Held<'a> {
        let kept = KEPT.with(|k| k.borrow_mut().take()).filter(|(q, _)| q == p).map(|(_, s)| s);
        Held { p, s: Some(kept.unwrap_or_else(|| Scratch::new(p))) }
    }

    fn get(&mut self) -> &mut Scratch {
        self.s.as_mut().expect("a held scratch is only taken when dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.s.take() {
            KEPT.with(|k| *k.borrow_mut() = Some((*self.p, s)));
        }
    }
}

/// Escape counts and final `|z|^2` of every pixel of `row`, into `s.n` and
/// `s.m2`; returns the row's total iterations.
fn escape_row(p: &Params, row: u32, s: &mut Scratch) -> u64 {
    escape_row_on(crate::simd::path(), p, row, s)
}

/// [`escape_row`] on `path`: the generic loop ([`simd::Span`]), or on
/// AVX-512 and AVX2 the hand-written one ([`avx512::mandel_span`],
/// [`avx2::mandel_span`]) for whole groups of eight or four pixels where
/// [`HAND_WRITTEN`] and [`HAND_WRITTEN_AVX2`] say it wins, and the generic
/// one for the rest.
fn escape_row_on(path: Path, p: &Params, row: u32, s: &mut Scratch) -> u64 {
    escape_row_by(path, true, p, row, s)
}

/// [`escape_row_on`], with the hand-written loops only if `twins` (the
/// tests also run the generic loop on every path).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn escape_row_by(path: Path, twins: bool, p: &Params, row: u32, s: &mut Scratch) -> u64 {
    let ci = p.point(0, row).1;
    #[allow(unused_mut)]
    let (mut done, mut total) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if twins && HAND_WRITTEN && path == Path::Avx512 {
        done = p.width as usize / 8 * 8;
        let (cr, n, m2) = (&s.cr[..done], &mut s.n[..done], &mut s.m2[..done]);
        // SAFETY: the CPU has the AVX-512 path (AVX-512F and DQ).
        total = unsafe { avx512::mandel_span(cr, s.widest, ci, p.max_iter, p.bailout, n, m2) };
    } else if twins && HAND_WRITTEN_AVX2 && path == Path::Avx2 {
        done = p.width as usize / 4 * 4;
        let (cr, n, m2) = (&s.cr[..done], &mut s.n[..done], &mut s.m2[..done]);
        // SAFETY: the CPU has the AVX2 path (AVX2 and FMA).
        total = unsafe { avx2::mandel_span(cr, s.widest, ci, p.max_iter, p.bailout, n, m2) };
    }
    if done < s.cr.len() {
        let span = simd::Span {
            cr: &s.cr[done..],
            ci,
            max_iter: p.max_iter,
            bailout: p.bailout,
            round: round_len(p.max_iter),
            n: &mut s.n[done..],
            m2: &mut s.m2[done..],
        };
        total += crate::simd::dispatch_on(path, span);
    }
    total
}

/// Renders one row into `out` (RGB) and returns its total iterations.
fn render_row(p: &Params, row: u32, s: &mut Scratch, out: &mut [u8]) -> u64 {
    let total = escape_row(p, row, s);
    crate::simd::dispatch(colour::ColourRow { p, n: &s.n, m2: &s.m2, out });
    total
}

/// Bytes per row of [`escape_rows`]' output: the row's total iterations.
pub const ESCAPE_ROW_BYTES: usize = 8;

/// The escape-time kernel alone, without colouring (for benchmarks): writes
/// each row's total iterations into `out` (8 bytes per row, little-endian)
/// and returns the total over `rows`.
pub fn escape_rows(p: &Params, rows: Range<u64>, out: &mut [u8]) -> Tally {
    assert_eq!(out.len() as u64, (rows.end - rows.start) * ESCAPE_ROW_BYTES as u64, "escape_rows: buffer size");
    let total: u64 = out
        .par_chunks_mut(ESCAPE_ROW_BYTES)
        .enumerate()
        .map_init(
            || Held::take(p),
            |s, (i, slot)| {
                let t = escape_row(p, (rows.start + i as u64) as u32, s.get());
                slot.copy_from_slice(&t.to_le_bytes());
                t
            },
        )
        .sum();
    Tally::count(total)
}

/// Renders `rows` into `out` (`rows.len() * row_bytes` bytes of RGB) in
/// parallel on the current rayon pool; returns the total iterations.
pub fn render_rows(p: &Params, rows: Range<u64>, out: &mut [u8]) -> Tally {
    assert_eq!(out.len() as u64, (rows.end - rows.start) * p.row_bytes() as u64, "render_rows: buffer size");
    let total: u64 = out
        .par_chunks_mut(p.row_bytes())
        .enumerate()
        .map_init(|| Held::take(p), |s, (i, row)| render_row(p, (rows.start + i as u64) as u32, s.get(), row))
        .sum();
    Tally::count(total)
}

/// Reference rendering of one row, pixel by pixel; returns the row's RGB bytes
/// and total iterations.
pub fn render_row_reference(p: &Params, row: u32) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(p.row_bytes());
    let mut total = 0;
    for col in 0..p.width {
        let (rgb, n) = pixel_reference(p, col, row);
        out.extend_from_slice(&rgb);
        total += u64::from(n);
    }
    (out, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Params {
        Params { width: 101, height: 67, max_iter: 64, ..Params::SEED }
    }

    /// Every path this CPU has, with its hand-written loop (where it has
    /// one) and with the generic loop.
    fn every_loop() -> Vec<(Path, bool)> {
        crate::simd::supported().into_iter().flat_map(|path| [(path, true), (path, false)]).collect()
    }

    #[test]
    fn fast_rows_equal_reference_rows() {
        for cmap in Colormap::ALL {
            for smooth in [true, false] {
                let p = Params { colormap: cmap, smooth, ..small() };
                let mut img = vec![0; p.image_bytes() as usize];
                let total = render_rows(&p, 0..u64::from(p.height), &mut img);
                let mut ref_total = 0;
                for row in 0..p.height {
                    let (bytes, t) = render_row_reference(&p, row);
                    let at = row as usize * p.row_bytes();
                    assert_eq!(&img[at..at + p.row_bytes()], &bytes[..], "row {row}");
                    ref_total += t;
                }
                assert_eq!(total.to_count(), Some(ref_total));
            }
        }
    }

    #[test]
    fn every_path_agrees_with_the_reference() {
        for (width, bailout, max_iter) in [(101, 200.0, 50), (64, 2.0, 50), (7, 2.0, 50), (203, 2.0, 37)] {
            let p = Params {
                width,
                height: 9,
                max_iter,
                bailout,
                region: Region { xmin: -1.5, xmax: 0.5, ymin: -1.0, ymax: 1.0 },
                ..Params::SEED
            };
            for (path, twins) in every_loop() {
                let mut s = Scratch::new(&p);
                for row in 0..p.height {
                    let total = escape_row_by(path, twins, &p, row, &mut s);
                    let mut sum = 0;
                    for col in 0..p.width {
                        let (x, y) = p.point(col, row);
                        let (rn, rm2) = escape_reference(Complex64::new(x, y), p.max_iter, bailout * bailout);
                        let c = col as usize;
                        let (got, want) = ((s.n[c], s.m2[c].to_bits()), (rn, rm2.to_bits()));
                        assert_eq!(got, want, "{path:?} twins {twins} row {row} col {col}");
                        sum += u64::from(rn);
                    }
                    assert_eq!(total, sum, "{path:?} twins {twins} row {row}");
                }
            }
        }
    }

    /// Block mode's proof needs `|c| <= R - 1/4`: pixels on both sides of
    /// that circle (and beyond `R`), for the smallest radius and a larger
    /// one, many iterations, and every pixel against the reference.
    #[test]
    fn fast_path_equals_reference_around_the_block_bound() {
        for bailout in [2.0, 2.5] {
            let lim = bailout + 0.3;
            let p = Params {
                width: 203,
                height: 41,
                max_iter: 300,
                bailout,
                region: Region { xmin: -lim, xmax: lim, ymin: -lim, ymax: lim },
                ..Params::SEED
            };
            let r2 = bailout * bailout;
            for (path, twins) in every_loop() {
                let mut s = Scratch::new(&p);
                for row in 0..p.height {
                    escape_row_by(path, twins, &p, row, &mut s);
                    for col in 0..p.width {
                        let (x, y) = p.point(col, row);
                        let (rn, rm2) = escape_reference(Complex64::new(x, y), p.max_iter, r2);
                        let c = col as usize;
                        let (got, want) = ((s.n[c], s.m2[c].to_bits()), (rn, rm2.to_bits()));
                        assert_eq!(got, want, "{path:?} twins {twins} R={bailout} ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn step_is_the_fused_square_plus_c() {
        // Exact in any rounding: small integers.
        assert_eq!(step(3.0, 2.0, 1.0, -1.0), (6.0, 11.0));
        // One rounding, not two: a*a - b*b + c with a*a rounded would lose the 2^-60.
        let a = 1.0 + 2f64.powi(-30);
        let (re, _) = step(a, 0.0, -1.0, 0.0);
        assert_eq!(re, 2f64.powi(-29) + 2f64.powi(-60));
    }

    #[test]
    fn escape_rows_count_like_the_reference() {
        let p = small();
        let mut out = vec![0; 67 * ESCAPE_ROW_BYTES];
        let total = escape_rows(&p, 0..67, &mut out);
        let mut sum = 0;
        for row in 0..67u32 {
            let at = row as usize * ESCAPE_ROW_BYTES;
            let t = u64::from_le_bytes(out[at..at + 8].try_into().unwrap());
            assert_eq!(t, render_row_reference(&p, row).1, "row {row}");
            sum += t;
        }
        assert_eq!(total.to_count(), Some(sum));
    }

    #[test]
    fn split_rows_assemble_the_same_image() {
        let p = small();
        let mut whole = vec![0; p.image_bytes() as usize];
        let t = render_rows(&p, 0..67, &mut whole);
        let (mut a, mut b) = (vec![0; 30 * p.row_bytes()], vec![0; 37 * p.row_bytes()]);
        let ta = render_rows(&p, 0..30, &mut a);
        let tb = render_rows(&p, 30..67, &mut b);
        a.extend_from_slice(&b);
        assert_eq!(a, whole);
        assert_eq!(ta + tb, t);
    }

    #[test]
    fn known_points() {
        let r2 = 4.0;
        assert_eq!(escape_reference(Complex64::new(0.0, 0.0), 100, r2).0, 100); // in the set
        assert_eq!(escape_reference(Complex64::new(-1.0, 0.0), 100, r2).0, 100); // period 2
        assert_eq!(escape_reference(Complex64::new(2.0, 2.0), 100, r2).0, 1); // |c|^2 = 8: z1 = c is already out
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = |p: Params| p.validate().unwrap_err().to_string();
        assert!(bad(Params { width: 0, ..small() }).contains("pixel"));
        assert!(bad(Params { max_iter: 0, ..small() }).contains("max_iter"));
        let empty = Region { xmin: 1.0, xmax: 1.0, ..Region::SEED };
        assert!(bad(Params { region: empty, ..small() }).contains("empty"));
        let nan = Region { ymin: f64::NAN, ..Region::SEED };
        assert!(bad(Params { region: nan, ..small() }).contains("finite"));
        assert!(bad(Params { bailout: 1.0, ..small() }).contains("bailout"));
        assert!(small().validate().is_ok());
    }

    #[test]
    fn views_finer_than_f64_are_told_apart_from_empty_ones() {
        assert!(small().resolvable());
        let far = Params { region: Region::centered(1e308, 1e308, 1.0, 1.0), ..small() };
        assert!(!far.resolvable(), "3 wide at 1e308 is below f64's spacing there");
        let deep = Params { region: Region::centered(-0.75, 0.1, 1e12, 1.0), ..small() };
        assert!(deep.resolvable(), "a 1e12 zoom near the set still resolves");
        let huge = Region { xmin: 1e308, xmax: -1e308, ..Region::SEED };
        let msg = Params { region: huge, ..small() }.validate().unwrap_err().to_string();
        assert!(msg.contains("x [1e308, -1e308]") && msg.len() < 200, "{msg}");
    }

    #[test]
    fn centered_region_keeps_the_aspect() {
        let r = Region::centered(-0.5, 0.0, 1.0, 2.0 / 3.0);
        assert_eq!((r.xmin, r.xmax, r.ymin, r.ymax), (-2.0, 1.0, -1.0, 1.0));
    }
}
