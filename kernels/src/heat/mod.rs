//! 2-D heat diffusion: the explicit 5-point scheme on a `rows x cols` grid
//! with fixed zero (Dirichlet) boundaries,
//!
//! `u' = u + r * (((n + s) + (e + w)) - 4u)`,
//!
//! stable for `0 < r <= 1/4` (every new value is then a convex combination
//! of old ones, so no error grows and the field obeys a maximum principle).
//!
//! A cell's update is one expression evaluated in one fixed order, with no
//! fused multiply-add, on every path ([`cell`], and the vector loop in
//! `simd.rs` lane by lane), so a cell's value after T steps is the same bits
//! whichever process, thread or instruction set computed it.
//!
//! The distributed runtime keeps each block in a row-major buffer of
//! `(h + 2g) x (w + 2g)` cells with `g` ghost layers all round ([`Block`]);
//! [`step_interior`] updates the cells that need no ghost, [`step_border`]
//! the rest, and [`step_block`] both. With `g > 1` (a `g`-deep halo received
//! once every `g` steps) a step may also update ghost cells: [`step_around`]
//! updates the owned cells grown by some layers on chosen sides, less the
//! interior, and [`grown`] says how far sub-step `s` of `m` may reach (the
//! valid region shrinks by one layer per sub-step on every side that has a
//! neighbour; a side at the grid's edge keeps its zero ghosts, never
//! updated). [`reference`] is a plain sequential evolution of the whole grid,
//! for tests and verification.
//!
//! The default initial field is a sum of discrete sine modes ([`MODES`]),
//! each an eigenvector of the discrete Laplacian with zero boundaries, so
//! the exact field after T steps is known ([`exact`]); [`error_bound`]
//! bounds how far the computed field may stray from it through rounding.

mod simd;

pub use crate::block::Block;
use crate::simd::Path;
use crate::Invalid;
use rayon::prelude::*;
use std::f64::consts::PI;
use std::ops::Range;

/// The initial field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Init {
    /// A sum of a few discrete sine modes: verified against the closed form.
    Modes,
    /// A hot disc of value 1 in the middle of a cold grid.
    Hotspot,
}

/// The sine modes of [`Init::Modes`]: `(p, q, amplitude)`, the field being
/// the sum of `amplitude * sin(pi p (i+1)/(rows+1)) * sin(pi q (j+1)/(cols+1))`
/// over row `i` and column `j`.
pub const MODES: [(u32, u32, f64); 3] = [(1, 1, 1.0), (2, 3, 0.5), (5, 2, 0.25)];

/// The most `r` may be: beyond 1/4 the explicit scheme is unstable (the
/// highest grid mode's factor `1 - 8r` drops below -1 and grows each step).
pub const R_MAX: f64 = 0.25;

/// A heat run's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Grid columns (cells across).
    pub cols: usize,
    /// Grid rows.
    pub rows: usize,
    /// Time steps.
    pub steps: u64,
    /// Diffusion number `alpha dt / dx^2`, in `(0, 1/4]`.
    pub r: f64,
    /// The initial field.
    pub init: Init,
}

impl Params {
    /// Checks the parameters; the error names the offending one.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |param, problem: String| Err(Invalid::param(param, problem));
        if self.cols == 0 {
            return bad("cols", "must be at least 1".into());
        }
        if self.rows == 0 {
            return bad("rows", "must be at least 1".into());
        }
        if !self.r.is_finite() {
            return bad("r", format!("must be a finite number (got {})", self.r));
        }
        if !(self.r > 0.0 && self.r <= R_MAX) {
            return bad(
                "r",
                format!(
                    "must lie in (0, 0.25] (got {}): the explicit scheme is unstable beyond 1/4, where the \
                     fastest grid mode's factor per step 1 - 8r falls below -1 and grows without bound",
                    self.r
                ),
            );
        }
        Ok(())
    }

    /// Cells in the grid.
    pub fn cells(&self) -> u64 {
        self.rows as u64 * self.cols as u64
    }

    /// The largest magnitude of the initial field, which by the maximum
    /// principle bounds the field at every step.
    pub fn amplitude(&self) -> f64 {
        match self.init {
            Init::Modes => MODES.iter().map(|m| m.2.abs()).sum(),
            Init::Hotspot => 1.0,
        }
    }
}

/// One cell's update from its value `u` and its neighbours: the one
/// expression every path evaluates, in this order.
#[inline(always)]
pub fn cell(u: f64, north: f64, south: f64, east: f64, west: f64, r: f64) -> f64 {
    u + r * (((north + south) + (east + west)) - 4.0 * u)
}

/// `sin(pi k (i+1) / (n+1))`: mode `k`'s value at index `i` of `n`.
fn mode(k: u32, i: usize, n: usize) -> f64 {
    (PI * f64::from(k) * (i + 1) as f64 / (n + 1) as f64).sin()
}

/// The initial value of the cell at row `i`, column `j`.
pub fn initial(p: &Params, i: usize, j: usize) -> f64 {
    match p.init {
        Init::Modes => MODES.iter().map(|&(mp, mq, a)| a * mode(mp, i, p.rows) * mode(mq, j, p.cols)).sum(),
        Init::Hotspot => {
            // A disc of radius min(rows, cols) / 8 (at least half a cell)
            // about the grid's centre, in exact integer arithmetic.
            let (di, dj) = (2 * i as i64 + 1 - p.rows as i64, 2 * j as i64 + 1 - p.cols as i64);
            let radius2 = (p.rows.min(p.cols) as i64 / 4).max(1);
            f64::from(u8::from(di * di + dj * dj <= radius2 * radius2))
        }
    }
}

/// The exact factor by which mode `(mp, mq)` decays per step:
/// `1 - 4r (sin^2(pi mp / 2(rows+1)) + sin^2(pi mq / 2(cols+1)))`.
pub fn decay(p: &Params, mp: u32, mq: u32) -> f64 {
    let s = |k: u32, n: usize| (PI * f64::from(k) / (2 * (n + 1)) as f64).sin().powi(2);
    1.0 - 4.0 * p.r * (s(mp, p.rows) + s(mq, p.cols))
}

/// The exact value (to rounding in its evaluation) of the modes field at
/// row `i`, column `j` after `p.steps` steps.
pub fn exact(p: &Params, i: usize, j: usize) -> f64 {
    let t = p.steps as f64;
    MODES.iter().map(|&(mp, mq, a)| a * decay(p, mp, mq).powf(t) * mode(mp, i, p.rows) * mode(mq, j, p.cols)).sum()
}

/// The bound on `|computed - exact|` for the modes field, with `A` the
/// field's amplitude, `T` the steps and `u = 2^-53` the unit roundoff:
/// `20 (T + 1) A u`.
///
/// Why: with `r <= 1/4` the exact update is a convex combination, so it
/// never enlarges an error (its infinity norm is 1), and the field stays
/// within `A`. One update rounds seven operations whose intermediate
/// magnitudes are at most `2A, 2A, 4A, 8A, 2A, 3A` (the multiply by 4 is
/// exact); to first order in `u` it adds at most `9 A u`. The initial field
/// (two sines, two products and a sum per mode) is off by at most `8 A u`,
/// and the closed form's evaluation by at most `(8T + 3) A u` (the decay
/// factor is computed to a few `u` absolutely, and `T` powers of a number
/// within 1 multiply that by at most `T`). Together `(17 T + 11) A u`,
/// within `20 (T + 1) A u`.
pub fn error_bound(p: &Params) -> f64 {
    20.0 * (p.steps as f64 + 1.0) * p.amplitude() * (f64::EPSILON / 2.0)
}

/// The sides of a block, in the order of the halo exchange's directions.
pub const NORTH: usize = 0;
/// The side towards the next rows.
pub const SOUTH: usize = 1;
/// The side towards the previous columns.
pub const WEST: usize = 2;
/// The side towards the next columns.
pub const EAST: usize = 3;

impl Block {
    /// A buffer of the block whose cells hold the initial field of the
    /// grid's rows `rows` and columns `cols` (`h` and `w` long: the block's
    /// place), ghosts 0.
    pub fn initial(&self, p: &Params, rows: Range<usize>, cols: Range<usize>) -> Vec<f64> {
        assert_eq!((rows.len(), cols.len()), (self.h, self.w), "the block's place");
        let mut buf = vec![0.0; self.len()];
        let (stride, g) = (self.stride(), self.g);
        // The modes' column factors once per column, not once per cell.
        let across = MODES.map(|(_, mq, _)| cols.clone().map(|j| mode(mq, j, p.cols)).collect::<Vec<_>>());
        buf.par_chunks_mut(stride).skip(g).take(self.h).zip(rows).for_each(|(line, i)| {
            let line = &mut line[g..g + self.w];
            match p.init {
                Init::Modes => {
                    // `initial`'s expression, `(a s_i) s_j` summed over the
                    // modes in order, with the row's factors shared.
                    let down = MODES.map(|(mp, _, a)| a * mode(mp, i, p.rows));
                    for (k, x) in line.iter_mut().enumerate() {
                        *x = down.iter().zip(&across).map(|(d, c)| d * c[k]).sum();
                    }
                }
                Init::Hotspot => line.iter_mut().zip(cols.clone()).for_each(|(x, j)| *x = initial(p, i, j)),
            }
        });
        buf
    }
}

/// Memory traffic per cell update, counted as STREAM counts its kernels
/// (the read of a line that a plain store fetches before overwriting it is
/// not counted): one 8-byte read stream, the cells, whose rows above and
/// below are the same stream met again while still in cache, and one 8-byte
/// write stream. The reports' `bytes_per_s_per_core` and the `heat-memory`
/// benchmark count by it.
pub const BYTES_PER_CELL_UPDATE: u64 = 16;

/// How many ghost layers sub-step `s` (from 0) of `m` sub-steps after one
/// exchange updates on each side (north, south, west, east): `m - 1 - s` on
/// a side with a neighbour (`sides`), 0 at the grid's edge. Sub-step `s`
/// reads one layer further, `m - s`, which the exchange (`s = 0`, needing an
/// `m`-deep halo) or the sub-step before wrote.
pub fn grown(sides: [bool; 4], m: usize, s: usize) -> [usize; 4] {
    assert!(s < m, "sub-step {s} of {m}");
    sides.map(|has| if has { m - 1 - s } else { 0 })
}

/// The update of buffer row `i` over buffer columns `a..b` (neither
/// touching the buffer's outermost row or column, which are only read) from
/// `cur` into `out_row`, that row of the next buffer.
fn row_step<'a>(
    cur: &'a [f64],
    out_row: &'a mut [f64],
    stride: usize,
    i: usize,
    (a, b): (usize, usize),
    r: f64,
    stores: Stores,
) -> simd::RowStep<'a> {
    let row = |k: usize| &cur[k * stride..(k + 1) * stride];
    simd::RowStep {
        up: &row(i - 1)[a..b],
        mid: &row(i)[a - 1..b + 1],
        down: &row(i + 1)[a..b],
        ahead: &cur[(i + 1) * stride + a..],
        out: &mut out_row[a..b],
        r,
        stream: stores == Stores::Streamed,
    }
}

/// Updates buffer row `i` over buffer columns `cols` (see [`row_step`]).
#[allow(clippy::too_many_arguments)] // the span of one call, spelt out
fn step_span(
    path: Path,
    stores: Stores,
    cur: &[f64],
    out_row: &mut [f64],
    stride: usize,
    i: usize,
    cols: Range<usize>,
    r: f64,
) {
    if cols.is_empty() {
        return;
    }
    crate::simd::dispatch_on(path, row_step(cur, out_row, stride, i, (cols.start, cols.end), r, stores));
}

/// Rows updated together in one loop ([`simd::Rows`]). One row's update
/// reads one row fresh from memory (the rows above and at it come back from
/// cache), a single stream, too few misses in flight to keep a core's share
/// of the memory busy; rows far apart in one loop are that many streams.
/// Measured on a 2-vCPU Intel Xeon VM (docs/benchmarks.md, heat-memory,
/// streamed stores, under load): 1, 2, 3, 4 rows reached 72, 77-97, 89-99,
/// 86-96 % of the streamed triad. On the Zen 5 VM, with the row below also
/// prefetched ([`simd::PREFETCH_CELLS`]), 1, 2, 4, 8 rows reached 67-80,
/// 59-68, 60-69, 55-57 % (without: 37-38, 38-40, 45-49, 42 %); 4 is kept,
/// the Intel core not having been measured with the prefetch.
const ROWS_PER_PASS: usize = 4;

/// Updates buffer rows `rows` over buffer columns `cols` (see [`row_step`]),
/// in parallel: the rows split into [`ROWS_PER_PASS`] equal groups, row `k`
/// of every group in one loop ([`simd::Rows`]), then the rows left over
/// (fewer than [`ROWS_PER_PASS`]) one at a time.
#[allow(clippy::too_many_arguments)] // the span of one call, spelt out
fn step_rows(
    path: Path,
    stores: Stores,
    cur: &[f64],
    next: &mut [f64],
    stride: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    r: f64,
) {
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    let span = (cols.start, cols.end);
    const N: usize = ROWS_PER_PASS;
    let per = rows.len() / N;
    let (grouped, rest) = next[rows.start * stride..rows.end * stride].split_at_mut(N * per * stride);
    if per > 0 {
        let mut groups = grouped.chunks_mut(per * stride).map(|g| g.chunks_mut(stride));
        let mut lines: [_; N] = std::array::from_fn(|_| groups.next().expect("N groups"));
        let sets: Vec<[&mut [f64]; N]> =
            (0..per).map(|_| std::array::from_fn(|q| lines[q].next().expect("per rows a group"))).collect();
        sets.into_par_iter().enumerate().for_each(|(k, set)| {
            let mut outs = set.into_iter();
            let steps: [_; N] = std::array::from_fn(|q| {
                let out = outs.next().expect("one row of each group");
                row_step(cur, out, stride, rows.start + q * per + k, span, r, stores)
            });
            crate::simd::dispatch_on(path, simd::Rows(steps));
        });
    }
    for (k, out) in rest.chunks_mut(stride).enumerate() {
        let i = rows.start + N * per + k;
        crate::simd::dispatch_on(path, row_step(cur, out, stride, i, span, r, stores));
    }
}

/// Whether the block has interior cells (cells none of whose neighbours is
/// a ghost): at least 3 rows and 3 columns.
fn has_interior(b: Block) -> bool {
    b.h >= 3 && b.w >= 3
}

/// Updates the cells whose neighbours are all cells (no ghost): block rows
/// 1 to `h - 2`, columns 1 to `w - 2`, in parallel over rows.
pub fn step_interior(b: Block, cur: &[f64], next: &mut [f64], r: f64) {
    step_interior_on(crate::simd::path(), b, cur, next, r);
}

fn step_interior_on(path: Path, b: Block, cur: &[f64], next: &mut [f64], r: f64) {
    let (stride, g) = (b.stride(), b.g);
    if !has_interior(b) {
        return;
    }
    let stores = Stores::for_len(cur.len());
    step_rows(path, stores, cur, next, stride, g + 1..g + b.h - 1, g + 1..g + b.w - 1, r);
}

/// Updates the cells next to a ghost: the first and last rows, and the
/// first and last columns of the rows between (`step_around` grown by 0).
pub fn step_border(b: Block, cur: &[f64], next: &mut [f64], r: f64) {
    step_around_on(crate::simd::path(), b, [0; 4], cur, next, r);
}

/// Updates the block's cells grown by `grow[d]` ghost layers on each side
/// `d` (north, south, west, east; each less than `g`, so that every cell
/// read lies in the buffer), less the interior ([`step_interior`]'s cells).
/// A row at a time: a frame, small beside the interior.
pub fn step_around(b: Block, grow: [usize; 4], cur: &[f64], next: &mut [f64], r: f64) {
    step_around_on(crate::simd::path(), b, grow, cur, next, r);
}

fn step_around_on(path: Path, b: Block, grow: [usize; 4], cur: &[f64], next: &mut [f64], r: f64) {
    if b.is_empty() {
        return;
    }
    assert!(grow.iter().all(|&k| k < b.g), "growing {grow:?} into {} ghost layers", b.g);
    let (stride, g) = (b.stride(), b.g);
    let (top, bottom) = (g - grow[NORTH], g + b.h + grow[SOUTH]);
    let (left, right) = (g - grow[WEST], g + b.w + grow[EAST]);
    let hole = has_interior(b);
    let stores = Stores::for_len(cur.len());
    for (i, line) in next.chunks_mut(stride).enumerate().skip(top).take(bottom - top) {
        if hole && i > g && i < g + b.h - 1 {
            step_span(path, stores, cur, line, stride, i, left..g + 1, r);
            step_span(path, stores, cur, line, stride, i, g + b.w - 1..right, r);
        } else {
            step_span(path, stores, cur, line, stride, i, left..right, r);
        }
    }
}

/// Updates every cell of the block: the cells of [`step_interior`] and [`step_border`] together.
pub fn step_block(b: Block, cur: &[f64], next: &mut [f64], r: f64) {
    step_block_on(crate::simd::path(), Stores::for_len(cur.len()), b, cur, next, r);
}

/// [`step_block`] on a given SIMD path (which this CPU must have) with
/// the given stores: the same cells, each row whole in one pass (no second
/// pass over the rows' ends, which would meet them again out of cache).
pub fn step_block_on(path: Path, stores: Stores, b: Block, cur: &[f64], next: &mut [f64], r: f64) {
    let (stride, g) = (b.stride(), b.g);
    step_rows(path, stores, cur, next, stride, g..g + b.h, g..g + b.w, r);
}

/// How a step writes the next buffer's cells. Either way each cell gets
/// the same bits; only the memory traffic differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stores {
    /// Plain stores: each line written is first read into the cache
    /// (write-allocate) and stays there for the next step to read.
    Cached,
    /// Non-temporal stores ([`crate::simd::Lanes::stream_f64s`], x86; plain
    /// stores elsewhere): no read before the write, so a step moves 16 bytes
    /// per cell instead of 24, and the written rows do not evict the rows
    /// being read. For a field larger than the caches, which the next step
    /// meets in memory anyway.
    Streamed,
}

impl Stores {
    /// The stores for a block whose two buffers hold `len` cells each:
    /// [`Stores::Streamed`] when the two together exceed
    /// [`stream_threshold_bytes`], else [`Stores::Cached`]. (Ranks sharing
    /// a node also share its cache; the rule looks at one rank's buffers, so
    /// it may keep plain stores for a field that only several ranks
    /// together make too large.)
    pub fn for_len(len: usize) -> Stores {
        if 2 * len * std::mem::size_of::<f64>() > stream_threshold_bytes() {
            Stores::Streamed
        } else {
            Stores::Cached
        }
    }
}

/// The most a core's last-level cache is taken to hold: 32 MiB, an AMD
/// Zen core complex's L3 (a core sees only its own complex's) and more
/// than most desktop chips' whole L3. A server's L3 is larger but shared
/// by every core of the socket, and a VM reports the whole of it (260 MiB
/// on the 2-vCPU Intel Xeon VM of docs/benchmarks.md). Measured there, one
/// thread: plain stores faster with two 18 MB buffers, streamed faster
/// from two 32 MB buffers up.
const CACHE_CAP_BYTES: usize = 32 << 20;

/// Above how many bytes of the two buffers together a step streams its
/// stores: this machine's largest cache as Linux reports it (the largest
/// `size` under `/sys/devices/system/cpu/cpu0/cache/index*/`), at most
/// [`CACHE_CAP_BYTES`]; [`CACHE_CAP_BYTES`] where it cannot be read. Read
/// once per process.
pub fn stream_threshold_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| {
        let sizes = (0..8).filter_map(|i| {
            let text = std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size")).ok()?;
            parse_cache_size(text.trim())
        });
        sizes.max().unwrap_or(CACHE_CAP_BYTES).min(CACHE_CAP_BYTES)
    })
}

/// A sysfs cache size (`"32768K"`, `"1M"`, `"512"`) in bytes.
fn parse_cache_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((k, _)) => text.split_at(k),
        None => (text, ""),
    };
    let n: usize = digits.parse().ok()?;
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// The whole grid after `p.steps` steps, row-major, by [`step_block`] on
/// one block (the runtime's loop, with zero ghosts as the boundary).
pub fn evolve(p: &Params) -> Vec<f64> {
    let buffer = Block { h: p.rows, w: p.cols, g: 1 }.len();
    evolve_on(crate::simd::path(), Stores::for_len(buffer), p)
}

/// [`evolve`] on a given SIMD path (which this CPU must have) with the
/// given stores.
pub fn evolve_on(path: Path, stores: Stores, p: &Params) -> Vec<f64> {
    let b = Block { h: p.rows, w: p.cols, g: 1 };
    let mut cur = b.initial(p, 0..p.rows, 0..p.cols);
    let mut next = cur.clone();
    for _ in 0..p.steps {
        step_block_on(path, stores, b, &cur, &mut next, p.r);
        std::mem::swap(&mut cur, &mut next);
    }
    b.cells(&cur)
}

/// The cells of rows `rows` and columns `cols` after `p.steps` steps,
/// computed sequentially over that window alone, with zero outside it.
/// Exact where the window ends at the grid's edge; elsewhere the error
/// from the window's edge travels one cell per step, so a cell at least
/// `p.steps` cells inside every window edge that is not a grid edge is
/// exact. The whole grid: `reference(p, 0..rows, 0..cols)`.
pub fn reference(p: &Params, rows: Range<usize>, cols: Range<usize>) -> Vec<f64> {
    let (h, w) = (rows.len(), cols.len());
    let at = |i: usize, j: usize| i * (w + 2) + j;
    let mut cur = vec![0.0; (h + 2) * (w + 2)];
    for i in 0..h {
        for j in 0..w {
            cur[at(i + 1, j + 1)] = initial(p, rows.start + i, cols.start + j);
        }
    }
    let mut next = cur.clone();
    for _ in 0..p.steps {
        for i in 1..=h {
            for j in 1..=w {
                let (n, s, e, west) = (cur[at(i - 1, j)], cur[at(i + 1, j)], cur[at(i, j + 1)], cur[at(i, j - 1)]);
                next[at(i, j)] = cell(cur[at(i, j)], n, s, e, west, p.r);
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    (1..=h).flat_map(|i| (1..=w).map(move |j| (i, j))).map(|(i, j)| cur[at(i, j)]).collect()
}

/// The largest `|cell - exact|` over a window of the modes field (`cells`,
/// row-major: `rows` by `cols` of the grid), in parallel. Each cell's
/// exact value is [`exact`]'s expression with its factors shared along rows
/// and columns (`((a d^T) s_i) s_j`, the same operations in the same
/// order), so a window's figure is the whole field's over those cells, and
/// the largest over any tiling of the grid is the whole field's.
pub fn max_error(p: &Params, rows: Range<usize>, cols: Range<usize>, cells: &[f64]) -> f64 {
    assert_eq!(cells.len(), rows.len() * cols.len(), "a {}x{} window", rows.len(), cols.len());
    if cells.is_empty() {
        return 0.0;
    }
    let t = p.steps as f64;
    let weights = MODES.map(|(mp, mq, a)| a * decay(p, mp, mq).powf(t));
    let across = MODES.map(|(_, mq, _)| cols.clone().map(|j| mode(mq, j, p.cols)).collect::<Vec<_>>());
    cells
        .par_chunks(cols.len())
        .zip(rows.into_par_iter())
        .map(|(line, i)| {
            let down: [f64; MODES.len()] = std::array::from_fn(|k| weights[k] * mode(MODES[k].0, i, p.rows));
            let exact_at = |j: usize| -> f64 { down.iter().zip(&across).map(|(d, a)| d * a[j]).sum() };
            // A NaN cell is an infinite error (f64::max would pass it over).
            line.iter().enumerate().map(|(j, &v)| (v - exact_at(j)).abs()).fold(0.0, |m: f64, e| {
                if e.is_nan() {
                    f64::INFINITY
                } else {
                    m.max(e)
                }
            })
        })
        .reduce(|| 0.0, f64::max)
}

/// A window's share of the field digest: the wrapping sum over its cells of
/// a hash of the cell's row-major index in the grid and its value's bits.
/// The field's digest is the wrapping sum of the shares of any tiling, so
/// every rank digests its own block and no rank needs the whole field; two
/// fields with equal digests are bit-identical, barring a 2^-64
/// coincidence. Written as 16 hex digits by [`digest_hex`].
pub fn digest_share(p: &Params, rows: Range<usize>, cols: Range<usize>, cells: &[f64]) -> u64 {
    assert_eq!(cells.len(), rows.len() * cols.len(), "a {}x{} window", rows.len(), cols.len());
    if cells.is_empty() {
        return 0;
    }
    cells
        .par_chunks(cols.len())
        .zip(rows.into_par_iter())
        .map(|(line, i)| {
            let first = (i * p.cols + cols.start) as u64;
            line.iter().zip(first..).fold(0u64, |sum, (v, at)| sum.wrapping_add(mix(mix(at) ^ v.to_bits())))
        })
        .reduce(|| 0, u64::wrapping_add)
}

/// The field digest from its shares ([`digest_share`]).
pub fn digest_hex(shares: impl IntoIterator<Item = u64>) -> String {
    format!("{:016x}", shares.into_iter().fold(0u64, u64::wrapping_add))
}

/// SplitMix64's finaliser: a bijection of `u64` whose every output bit
/// depends on every input bit.
fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The name of the step's loop on this process's SIMD path.
pub fn implementation() -> &'static str {
    crate::simd::implementation(false)
}

/// Green's cubehelix colour scheme (start 0.5, -1.5 rotations, hue 1,
/// gamma 1) at `t` in `[0, 1]`: black to white, its perceived brightness
/// rising with `t`, as 8-bit RGB.
pub fn cubehelix(t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let phi = 2.0 * PI * (0.5 / 3.0 - 1.5 * t);
    let amp = t * (1.0 - t) / 2.0;
    let (c, s) = (phi.cos(), phi.sin());
    let rgb = [t + amp * (-0.14861 * c + 1.78277 * s), t + amp * (-0.29227 * c - 0.90649 * s), t + amp * (1.97294 * c)];
    rgb.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// Steps of `t` in [`colour`]'s table of the colour scheme: `t` is rounded
/// to the nearest `k / COLOUR_STEPS`. A channel of [`cubehelix`] changes by
/// at most 0.3 of a level between neighbouring steps, so a cell's colour is
/// within one level of the formula's at its exact `t`.
pub const COLOUR_STEPS: usize = 1 << 12;

/// Colours `field` (row-major) into RGB bytes, mapping `[lo, hi]` onto the
/// colour scheme through a table of [`cubehelix`] at `k / COLOUR_STEPS`
/// (the formula's sine and cosine once per step instead of once per cell),
/// in parallel. NaN colours black, as in [`cubehelix`].
pub fn colour(field: &[f64], lo: f64, hi: f64) -> Vec<u8> {
    let span = if hi > lo { hi - lo } else { 1.0 };
    let table: Vec<[u8; 3]> = (0..=COLOUR_STEPS).map(|k| cubehelix(k as f64 / COLOUR_STEPS as f64)).collect();
    let steps = COLOUR_STEPS as f64;
    let mut rgb = vec![0u8; field.len() * 3];
    rgb.par_chunks_mut(3 << 12).zip(field.par_chunks(1 << 12)).for_each(|(out, cells)| {
        for (px, &v) in out.chunks_exact_mut(3).zip(cells) {
            let x = (v - lo) / span * steps;
            // Round half up; below 0 and NaN to step 0, above 1 to the last.
            let k = if x > 0.0 { (x + 0.5).min(steps) as usize } else { 0 };
            px.copy_from_slice(&table[k]);
        }
    });
    rgb
}

#[cfg(test)]
mod tests;
