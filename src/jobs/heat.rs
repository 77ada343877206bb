//! `pikernels heat`: 2-D heat diffusion by the explicit 5-point scheme, the
//! grid cut into blocks on a 2-D process grid, `K`-cell halos exchanged
//! with the four neighbours every `K` steps (`--halo-depth K`, default 1;
//! issue 17).
//!
//! - The process grid is the near-square factorisation of the process count
//!   ([`spmd::grid::shape`], any count, primes included: a `1 x p` grid),
//!   its longer side along the field's longer side; `--grid` overrides it.
//!   Rank `r` sits at grid row `r / pc`, column `r % pc`, and owns
//!   `block_slice` (`block_range`) of the field's rows and columns.
//! - Each exchange the rank packs its `K` edge rows and columns into the
//!   runtime's [`spmd::halo::Halo`], which sends them to the (up to) four
//!   neighbours and receives theirs while this job updates the cells that
//!   need no ghost; then the received halos go into the ghost cells and the
//!   rest of the first sub-step is updated, then `K - 1` more sub-steps
//!   (fewer after the last exchange when `K` does not divide the steps),
//!   each over the owned cells and the ghost layers still valid
//!   ([`heat::grown`]). `--comm p2p`: non-blocking sends and receives;
//!   `--comm collective`: one MPI-3 neighbourhood collective per phase on a
//!   Cartesian communicator made before the timed region (see the module).
//! - Corners: with `K > 1` a ghost cell updated by a sub-step needs the
//!   diagonal neighbours' cells (a cell `a` layers north and `b` west of the
//!   block depends on them from sub-step 2 on). They travel in two phases:
//!   first the rows (north and south, over the block's own columns), then
//!   the columns (west and east) over every buffer row, the ghost rows just
//!   received included, so a west neighbour passes on what its north
//!   neighbour sent it. A Cartesian communicator's neighbourhood has only the
//!   four sides, so this works unchanged for the collective; eight
//!   neighbours would need a graph communicator and four more messages of
//!   `K x K`. The second phase has nothing to overlap; with `K = 1` no corner
//!   is read and one phase carries all four sides, as before.
//! - After the last step (and after the clock: `wall_s` is the steps) no
//!   rank gathers the field. Each rank verifies its own block (modes: every
//!   cell against the closed form, `kernels::heat::max_error`; hotspot: the
//!   sampled cells it holds against the sequential reference over their
//!   light cone), bounds it and digests it (`kernels::heat::digest_share`,
//!   whose shares add up to the whole field's digest); one all-gather of
//!   five numbers a rank combines them. Each rank then colours its block by
//!   cubehelix over the field's range; the PNG's blocks of rows are dealt
//!   out in bands ([`Heat::band`]), one all-to-all brings each band its
//!   rows, every rank compresses its band ([`png::pack`]), and rank 0
//!   gathers the compressed blocks and frames the file. The report's
//!   `verify_s` is rank 0's checking and combining, `output_s` its
//!   colouring, its band's exchange and compression, the gather and the file.
//! - `--frames K` also writes an animation (APNG or GIF, by the
//!   `--animation` path's extension): at steps `round(k T / (K - 1))`,
//!   `k = 0..K-1`, each rank sends rank 0 only its cells of a regular
//!   lattice ([`animation::Lattice`], the longer side at most
//!   `--frame-size`), in one gather per frame; rank 0 colours
//!   every frame over the first frame's range, so the decay shows.
//!
//! Every cell's update is one fixed floating-point expression, so the field
//! is bit-identical for any process count, grid, `--threads` and `--comm`.

use super::{timed, Finished, Job, Preflight, Ran, SpmdJob, UsageError};
use super::Common;
use crate::args::value_name;
use crate::size::Size;
use crate::spmd::halo::Halo;
use crate::spmd::{self, Comm, RankStats, Spmd};
use crate::progress::Progress;
use crate::{animation, output, png};
use anyhow::{bail, Context, Result};
use kernels::heat::{self, Block, Init, Params};
use kernels::partition::block_slice;
use serde_json::{json, Value};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

/// Default PNG path.
pub const DEFAULT_OUT: &str = "heat.png";

/// Default animation path (`--frames`).
pub const DEFAULT_ANIMATION: &str = "heat.apng";

/// Default longest frame side in pixels (`--frame-size`).
pub const DEFAULT_FRAME_SIZE: u64 = 640;

/// Cells rank 0 checks against the sequential reference for `--init hotspot`.
const SAMPLED_CELLS: usize = 5;

/// Options of `heat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Grid size as COLSxROWS (cells across x cells down), e.g. 8000x6000.
    #[arg(long, value_name = "COLSxROWS", default_value = "2000x1500")]
    pub size: Dims,
    /// Time steps.
    #[arg(long, value_name = "T", allow_hyphen_values = true, default_value_t = Size(500))]
    pub steps: Size,
    /// Diffusion number alpha dt / dx^2, in (0, 0.25] (the explicit scheme is unstable beyond 1/4).
    #[arg(long, value_name = "R", allow_hyphen_values = true, default_value_t = 0.2)]
    pub r: f64,
    /// Initial field: modes (sine modes, verified against the closed form) or hotspot.
    #[arg(long, value_enum, default_value_t = Init::Modes)]
    pub init: Init,
    /// Process grid as COLSxROWS (process columns x process rows), e.g. 3x2 for 6 ranks
    /// [default: the most nearly square for the process count].
    #[arg(long, value_name = "COLSxROWS")]
    pub grid: Option<Dims>,
    /// Ghost layers exchanged at once: a K-cell halo every K steps (fewer, larger messages,
    /// some cells near the edges computed by both neighbours); the field is the same for any K.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub halo_depth: usize,
    /// Also write an animation of K frames (K >= 2), at steps round(k T / (K - 1)) for k = 0..K-1:
    /// the initial field first, the final one last.
    #[arg(long, value_name = "K", allow_hyphen_values = true)]
    pub frames: Option<Size>,
    /// The animation's path (with --frames): .gif (GIF) or .apng / .png (APNG) [default: heat.apng].
    #[arg(long, value_name = "PATH")]
    pub animation: Option<PathBuf>,
    /// The frames' longer side at most N pixels (with --frames): the field point-sampled on a
    /// regular lattice, never larger than the grid [default: 640].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub frame_size: Option<Size>,
    #[command(flatten)]
    pub common: Common,
}

/// Two sizes written `COLSxROWS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Columns (across).
    pub cols: u64,
    /// Rows (down).
    pub rows: u64,
}

impl std::str::FromStr for Dims {
    type Err = String;

    fn from_str(s: &str) -> Result<Dims, String> {
        let (c, r) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("{s:?} is not COLSxROWS (two sizes joined by x, e.g. 800x600)"))?;
        let part = |p: &str| p.trim().parse::<Size>().map(|v| v.0).map_err(|e| format!("{s:?}: {e}"));
        Ok(Dims { cols: part(c)?, rows: part(r)? })
    }
}

impl std::fmt::Display for Dims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.cols, self.rows)
    }
}

/// The job `a` describes.
pub fn job(a: &Args) -> Result<Job, UsageError> {
    if a.common.comm == Comm::Dynamic {
        return Err(UsageError(
            "heat exchanges halos between fixed neighbours every step, so there is no work to hand out: \
             use --comm p2p or collective (dynamic does not apply)"
                .into(),
        ));
    }
    let dim = |what: &str, v: u64| {
        usize::try_from(v).map_err(|_| UsageError(format!("--size: {v} {what} is too large")))
    };
    let p = Params {
        cols: dim("columns", a.size.cols)?,
        rows: dim("rows", a.size.rows)?,
        steps: a.steps.0,
        r: a.r,
        init: a.init,
    };
    p.validate().map_err(|e| match e.param {
        Some(side @ ("cols" | "rows")) => UsageError(format!("--size {}: {side} {}", a.size, e.problem)),
        _ => UsageError::from(e),
    })?;
    // The PNG's compressed blocks travel to rank 0 in one gather, at most
    // their stored size (the RGB and a little).
    // In u128: the RGB bytes alone already bound the gather from below, and
    // cannot wrap (a side may be near 2^64).
    let rgb = p.rows as u128 * (p.cols as u128 * 3 + 1);
    let packed = (rgb <= spmd::MAX_COUNT as u128).then(|| png::packed_bound(p.rows as u64, p.cols * 3) as u128);
    if packed.is_none_or(|b| b > spmd::MAX_COUNT as u128) {
        return Err(UsageError(format!(
            "--size {}: the heat map's compressed rows may reach {} bytes (its {} cells' RGB, if incompressible), \
             more than one MPI gather can carry ({})",
            a.size,
            packed.unwrap_or(rgb),
            p.rows as u128 * p.cols as u128,
            spmd::MAX_COUNT
        )));
    }
    if let Some(g) = a.grid {
        if g.cols == 0 || g.rows == 0 || g.cols > a.size.cols || g.rows > a.size.rows {
            return Err(UsageError(format!(
                "--grid {g}: every process needs at least one cell, so the grid must have between 1 and {} \
                 process columns and between 1 and {} process rows",
                a.size.cols, a.size.rows
            )));
        }
    }
    if a.halo_depth == 0 {
        return Err(UsageError("--halo-depth 0: a halo must be at least 1 cell deep".into()));
    }
    // No block is thicker than the field's longer side (a grid of one
    // process across the shorter side may be deeper than that side): a
    // deeper halo fills nothing more, and its ghosted block's size would
    // overflow any estimate.
    let thickest = p.rows.max(p.cols);
    if a.halo_depth > thickest {
        return Err(UsageError(format!(
            "--halo-depth {}: deeper than the {} field is long ({thickest} cells): give at most {thickest}",
            a.halo_depth, a.size
        )));
    }
    let grid = a.grid.map(|g| (g.rows as usize, g.cols as usize));
    let out = a.common.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let anim = anim(a, &p)?;
    Ok(Job::spmd(Heat { p, grid, depth: a.halo_depth, out, anim }))
}

/// The animation `--frames`, `--animation` and `--frame-size` ask for, checked.
fn anim(a: &Args, p: &Params) -> Result<Option<Anim>, UsageError> {
    let Some(Size(frames)) = a.frames else {
        let stray = [("--animation", a.animation.is_some()), ("--frame-size", a.frame_size.is_some())];
        if let Some((flag, _)) = stray.iter().find(|f| f.1) {
            return Err(UsageError(format!("{flag} applies to the animation: give --frames K (K >= 2) with it")));
        }
        return Ok(None);
    };
    if frames < 2 {
        return Err(UsageError(format!(
            "--frames {frames}: an animation needs at least 2 frames (the initial field and the final one)"
        )));
    }
    if frames > p.steps.saturating_add(1) || frames > u64::from(u32::MAX) {
        return Err(UsageError(format!(
            "--frames {frames}: {} steps give at most {} distinct frames (steps 0 to {})",
            p.steps,
            p.steps.saturating_add(1).min(u64::from(u32::MAX)),
            p.steps
        )));
    }
    let side = a.frame_size.map_or(DEFAULT_FRAME_SIZE, |s| s.0);
    if side == 0 || side > animation::MAX_SIDE {
        return Err(UsageError(format!(
            "--frame-size {side}: the frames' longer side must be between 1 and {} pixels",
            animation::MAX_SIDE
        )));
    }
    let path = a.animation.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_ANIMATION));
    let format = animation::Format::of(&path).map_err(|e| UsageError(format!("--animation {e}")))?;
    let lattice = animation::Lattice::new(p.rows, p.cols, side as usize);
    Ok(Some(Anim { frames, path, format, lattice }))
}

/// A validated `--frames` animation.
struct Anim {
    /// K, at least 2 and at most T + 1.
    frames: u64,
    path: PathBuf,
    format: animation::Format,
    lattice: animation::Lattice,
}

impl Anim {
    /// Frame `k`'s step: `round(k T / (K - 1))`, halves up, exactly.
    fn step(&self, k: u64, steps: u64) -> u64 {
        let (k, t, d) = (u128::from(k), u128::from(steps), u128::from(self.frames - 1));
        ((2 * k * t + d) / (2 * d)) as u64
    }
}

/// A validated heat run.
pub struct Heat {
    p: Params,
    /// `--grid`, as (process rows, process columns).
    grid: Option<(usize, usize)>,
    /// `--halo-depth`: the ghost layers, and the steps between exchanges.
    depth: usize,
    out: PathBuf,
    anim: Option<Anim>,
}

/// One rank's place: the process grid, its position and its block.
#[derive(Clone, Debug)]
pub struct Layout {
    pr: usize,
    pc: usize,
    gr: usize,
    gc: usize,
    rows: Range<usize>,
    cols: Range<usize>,
}

impl Layout {
    fn block(&self, depth: usize) -> Block {
        Block { h: self.rows.len(), w: self.cols.len(), g: depth }
    }

    /// The neighbours: north, south, west, east (`None` at the grid's edge).
    fn neighbours(&self) -> [Option<usize>; 4] {
        crate::spmd::halo::neighbours((self.pr, self.pc), (self.gr, self.gc))
    }
}

impl Heat {
    /// The process grid for `size` ranks: `--grid`, or the near-square shape
    /// with its longer side along the field's.
    fn shape(&self, size: usize) -> Result<(usize, usize)> {
        match self.grid {
            Some((pr, pc)) if pr * pc != size => bail!(
                "--grid {pc}x{pr} has {} processes but the job has {size}: give a grid whose columns times rows \
                 is {size}, or leave --grid out",
                pr * pc
            ),
            Some(g) => Ok(g),
            None => {
                let (a, b) = spmd::grid::shape(size);
                let (pr, pc) = if self.p.rows > self.p.cols { (b, a) } else { (a, b) };
                if pr > self.p.rows || pc > self.p.cols {
                    bail!(
                        "{size} processes on a {pc}x{pr} grid need at least {pc}x{pr} cells, but --size is {}x{}",
                        self.p.cols,
                        self.p.rows
                    );
                }
                Ok((pr, pc))
            }
        }
    }

    /// Refuses a process grid with a block thinner than the halo depth
    /// towards a neighbour (it could not fill the neighbour's `K` ghost
    /// layers). Every rank computes every block, so all refuse alike.
    fn check_depth(&self, (pr, pc): (usize, usize)) -> Result<()> {
        let k = self.depth;
        let thinnest = |n: usize, parts: usize| (0..parts).map(|i| block_slice(n, parts, i).len()).min().unwrap_or(0);
        for (parts, n, what) in [(pr, self.p.rows, "rows"), (pc, self.p.cols, "columns")] {
            let thin = thinnest(n, parts);
            if parts > 1 && thin < k {
                bail!(
                    "--halo-depth {k}: on the {pc}x{pr} process grid over {}x{} cells the thinnest block has {thin} \
                     {what}, fewer than the {k} ghost layers it must fill for its neighbours: give a smaller \
                     --halo-depth, fewer processes or another --grid",
                    self.p.cols,
                    self.p.rows
                );
            }
        }
        Ok(())
    }

    fn layout(&self, rank: usize, size: usize) -> Result<Layout> {
        let (pr, pc) = self.shape(size)?;
        self.check_depth((pr, pc))?;
        let (gr, gc) = (rank / pc, rank % pc);
        let (rows, cols) = self.place((pr, pc), rank);
        Ok(Layout { pr, pc, gr, gc, rows, cols })
    }

    /// Bytes a rank holds at its peak: two ghosted blocks (`K` layers), the
    /// halos' send and receive buffers, its cells and their colours, and
    /// the largest band of the PNG twice (received, placed) with its
    /// compressed blocks; rank 0 also every band's compressed blocks.
    /// Computed in `u128` (the depth and the frames multiply the cells),
    /// saturated to `u64` only at the end, so no estimate can wrap small.
    fn memory_need(&self, l: &Layout, root: bool) -> u64 {
        let b = l.block(self.depth);
        let (first, second) = halo_lens(b);
        let halos: u128 = first.iter().chain(second.iter().flatten()).map(|&n| n as u128).sum();
        let row_bytes = self.p.cols as u128 * 3;
        let band = self.band(l.pr * l.pc, 0).len() as u128;
        let ghosted = (b.h as u128 + 2 * self.depth as u128) * (b.w as u128 + 2 * self.depth as u128);
        let packed = |rows: u128| png::packed_bound(rows as u64, self.p.cols * 3) as u128; // bounded by `job`
        let own =
            2 * ghosted * 8 + 2 * halos * 8 + (b.h * b.w) as u128 * (8 + 3) + 2 * band * row_bytes + packed(band);
        let root_extra = if root { packed(self.p.rows as u128) } else { 0 };
        // Frames: this rank's samples; rank 0 every frame's and one frame coloured.
        let frames = self.anim.as_ref().map_or(0, |a| {
            let own = (a.lattice.within(l.rows.clone()).len() * a.lattice.within(l.cols.clone()).len()) as u128;
            let all = a.lattice.cells() as u128;
            own * 8 + if root { a.frames as u128 * all * 8 + all * 12 } else { 0 }
        });
        u64::try_from(own + root_extra + frames).unwrap_or(u64::MAX)
    }

    /// The steps after which the loop stops: the frames' steps, or only the last.
    fn stops(&self) -> Vec<u64> {
        match &self.anim {
            Some(a) => (0..a.frames).map(|k| a.step(k, self.p.steps)).collect(),
            None => vec![self.p.steps],
        }
    }

    /// Where rank `r`'s block lies in the field on a `pr x pc` process grid, (rows, columns).
    fn place(&self, (pr, pc): (usize, usize), r: usize) -> (Range<usize>, Range<usize>) {
        (block_slice(self.p.rows, pr, r / pc), block_slice(self.p.cols, pc, r % pc))
    }
}

/// What rank 0 holds after the run.
pub struct Gathered {
    /// The final field's digest, range and verification, from every rank's block.
    summary: Summary,
    /// The final field coloured over its range, as the PNG's compressed
    /// blocks in order ([`png::pack`]'s form).
    png: Vec<u8>,
    /// The animation's frames (`--frames`), each the lattice's samples, row-major.
    frames: Vec<Vec<f64>>,
    grid: (usize, usize),
    wall_s: f64,
    /// Rank 0's seconds checking its block and combining every rank's checks.
    verify_s: f64,
    /// Rank 0's seconds colouring its block, compressing its band of the PNG
    /// and gathering every band's blocks.
    colour_s: f64,
}

/// The final field described without gathering it: each rank checks,
/// bounds and digests its own block, and these combine the blocks' figures.
struct Summary {
    /// `--init modes`: the largest error against the closed form.
    max_error: f64,
    /// `--init hotspot`: the first sampled cell that differs from the
    /// sequential reference, if any.
    bad: Option<(usize, usize)>,
    lo: f64,
    hi: f64,
    digest: String,
}

/// One rank's figures for [`Summary`], as they travel: `[max error, lo, hi]`
/// and `[first bad sample's index or u64::MAX, digest share]`.
type Checks = ([f64; 3], [u64; 2]);

impl SpmdJob for Heat {
    type Prepared = Layout;
    type Output = Gathered;

    fn params(&self) -> Value {
        let p = &self.p;
        json!({
            "size": format!("{}x{}", p.cols, p.rows), "steps": p.steps, "r": p.r, "init": value_name(p.init),
            "grid": self.grid.map(|(pr, pc)| format!("{pc}x{pr}")), "halo_depth": self.depth,
            "frames": self.anim.as_ref().map(|a| a.frames),
            "frame_size": self.anim.as_ref().map(|a| a.lattice.width.max(a.lattice.height)),
        })
    }

    fn implementation(&self) -> Option<&'static str> {
        Some(heat::implementation())
    }

    fn files(&self) -> Vec<output::FileUse> {
        let mut files = vec![output::FileUse::writes("--out", &self.out)];
        files.extend(self.anim.as_ref().map(|a| output::FileUse::writes("--animation", &a.path)));
        files
    }

    fn preflight(&self, ctx: &Preflight) -> Result<Layout> {
        let layout = self.layout(ctx.rank, ctx.size)?;
        let what = if self.anim.is_some() {
            "this rank's block (rank 0: and the heat map and every frame of the animation)"
        } else {
            "this rank's block (rank 0: and the heat map)"
        };
        let advice = if self.anim.is_some() {
            "give a smaller --size or --halo-depth, more processes, or fewer --frames or a smaller --frame-size"
        } else {
            "give a smaller --size or --halo-depth, or more processes"
        };
        output::check_memory(self.memory_need(&layout, ctx.is_root()), what, advice)?;
        if ctx.is_root() {
            output::check_writable(&self.out, "heat map")?;
            let bound = png::packed_bound(self.p.rows as u64, self.p.cols * 3) + 12 * self.p.rows as u64 + (1 << 16);
            output::check_disk(&self.out, bound, "the PNG")?;
            if let Some(a) = &self.anim {
                output::check_writable(&a.path, "animation")?;
                let (w, h) = (a.lattice.width as u64, a.lattice.height as u64);
                output::check_disk(&a.path, animation::Format::bound(a.frames, w, h), "the animation")?;
            }
        }
        Ok(layout)
    }

    fn run(&self, spmd: &Spmd, comm: Comm, layout: Layout) -> Ran<Gathered> {
        let mut stats = RankStats { threads: spmd.threads() as u64, chunks: self.p.steps, ..RankStats::default() };
        let mut state = Evolving::new(spmd, comm, &layout, &self.p, self.depth);
        let team = spmd.team();
        team.barrier();
        let start = team.now();
        let mut frames = Vec::new();
        let mut done = 0;
        // Rank 0's steps, from its own loop: no message.
        let progress = Progress::new(spmd.is_root(), self.p.steps, "steps");
        for until in self.stops() {
            state.advance(done..until, &mut stats, &progress);
            done = until;
            frames.extend(self.frame(&team, comm, &layout, state.b, &state.cur, &mut stats));
        }
        progress.finish();
        team.barrier();
        let wall_s = team.now() - start;
        // After the clock: the field is checked, digested and coloured where
        // it lies; only its range, a few figures and its colours travel.
        let (b, mine) = (state.b, state.cells());
        drop(state);
        stats.units = b.h as u64 * b.w as u64;
        let t = Instant::now();
        let (local_f, local_u) = self.check_block(&layout, &mine);
        let (all_f, all_u) = (team.all_gather(&local_f), team.all_gather(&local_u));
        let summary = summarise(&self.sampled_cells(), &all_f, &all_u);
        let verify_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let colours = heat::colour(&mine, summary.lo, summary.hi);
        drop(mine);
        let packed = self.pack_band(&team, &layout, &colours);
        drop(colours);
        let png = team.gather_varcount(0, &packed, comm == Comm::P2p);
        let colour_s = t.elapsed().as_secs_f64();
        let grid = (layout.pr, layout.pc);
        let output = png.map(|png| Gathered { summary, png, frames, grid, wall_s, verify_s, colour_s });
        Ran { output, stats, wall_s }
    }

    fn finish(&self, out: Gathered) -> Result<Finished> {
        let p = &self.p;
        let (verified, verification, max_error) = self.verdict(&out.summary);
        let (lo, hi) = (out.summary.lo, out.summary.hi);
        // Both outputs are staged before either is put in place: a failure in
        // the second (a full disk) leaves neither.
        let (png, output_s) = timed(|| self.write_png(&out.png));
        let png = png?;
        let (anim, anim_s) = timed(|| self.write_animation(&out.frames));
        let anim = anim?;
        let png_bytes = png.len;
        let anim_bytes = anim.as_ref().map(|a| a.len);
        // Only a verified field's pictures are put in place, after the
        // report (dropped, the staged files are removed).
        let outputs = if verified { [Some(png), anim].into_iter().flatten().collect() } else { Vec::new() };
        let updates = p.cells() as f64 * p.steps as f64;
        let mut result = json!({
                "size": format!("{}x{}", p.cols, p.rows),
                "grid": format!("{}x{}", out.grid.1, out.grid.0),
                "field_digest": out.summary.digest,
                "min": lo, "max": hi,
                "max_error": max_error,
                "error_bound": (p.init == Init::Modes).then(|| heat::error_bound(p)),
                "cell_updates_per_s": if out.wall_s > 0.0 { updates / out.wall_s } else { 0.0 },
                "output": verified.then(|| self.out.display().to_string()),
                "png_bytes": png_bytes,
        });
        if let (Some(a), Some(bytes)) = (&self.anim, anim_bytes) {
            let fields = json!({
                "animation": a.path.display().to_string(),
                "frames": a.frames,
                "frame_size": format!("{}x{}", a.lattice.width, a.lattice.height),
                "animation_bytes": bytes,
            });
            result.as_object_mut().expect("an object").extend(fields.as_object().expect("an object").clone());
        }
        Ok(Finished {
            result,
            verified,
            verification,
            item: ("cell-updates", updates),
            bytes_per_item: Some(heat::BYTES_PER_CELL_UPDATE as f64),
            verify_s: out.verify_s,
            output_s: out.colour_s + output_s + anim_s,
            outputs,
        })
    }
}

impl Heat {
    /// After a stop of the step loop: with `--frames`, this rank's lattice
    /// cells of `cur` gathered at rank 0, which gets the frame (the others
    /// `None`); without, nothing and no message.
    fn frame(
        &self,
        team: &spmd::exchange::Team,
        comm: Comm,
        l: &Layout,
        b: Block,
        cur: &[f64],
        stats: &mut RankStats,
    ) -> Option<Vec<f64>> {
        let lat = self.anim.as_ref()?.lattice;
        let t = Instant::now();
        let places: Vec<_> = (0..l.pr * l.pc)
            .map(|r| {
                let (rows, cols) = self.place((l.pr, l.pc), r);
                (lat.within(rows), lat.within(cols))
            })
            .collect();
        let (rows, cols) = &places[team.rank()];
        let (stride, g) = (b.stride(), b.g);
        let mine: Vec<f64> = rows
            .clone()
            .flat_map(|i| {
                let at = (i * lat.stride - l.rows.start + g) * stride + g;
                cols.clone().map(move |j| at + j * lat.stride - l.cols.start)
            })
            .map(|at| cur[at])
            .collect();
        let frame = gather(team, comm, &places, lat.width, &mine);
        stats.comm_s += t.elapsed().as_secs_f64();
        frame
    }

    /// This rank's checks of its block (`cells`, row-major): the modes'
    /// largest error against the closed form (0 for hotspot), the block's
    /// range, the first of the sampled cells it holds that differs from the
    /// sequential reference over its light cone (hotspot), and its share of
    /// the digest.
    fn check_block(&self, l: &Layout, cells: &[f64]) -> Checks {
        let p = &self.p;
        let (rows, cols) = (l.rows.clone(), l.cols.clone());
        let max_error = match p.init {
            Init::Modes => heat::max_error(p, rows.clone(), cols.clone(), cells),
            Init::Hotspot => 0.0,
        };
        let bad = match p.init {
            Init::Modes => None,
            Init::Hotspot => self.sampled_cells().into_iter().position(|(i, j)| {
                if !rows.contains(&i) || !cols.contains(&j) {
                    return false;
                }
                // The cell's light cone: T cells each way, clipped to the grid.
                let t = p.steps.min(p.rows.max(p.cols) as u64) as usize;
                let (cone_r, cone_c) = (i.saturating_sub(t)..(i + t + 1).min(p.rows), j.saturating_sub(t)..(j + t + 1).min(p.cols));
                let window = heat::reference(p, cone_r.clone(), cone_c.clone());
                let want = window[(i - cone_r.start) * cone_c.len() + (j - cone_c.start)];
                want.to_bits() != cells[(i - rows.start) * cols.len() + (j - cols.start)].to_bits()
            }),
        };
        let (lo, hi) = cells.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let share = heat::digest_share(p, rows, cols, cells);
        ([max_error, lo, hi], [bad.map_or(u64::MAX, |k| k as u64), share])
    }

    /// The verdict on the field: (passed, what was checked, the modes' max error).
    fn verdict(&self, s: &Summary) -> (bool, String, Option<f64>) {
        let p = &self.p;
        match p.init {
            Init::Modes => {
                let (err, bound) = (s.max_error, heat::error_bound(p));
                let ok = err <= bound;
                let verdict = if ok { "within" } else { "FAILED: beyond" };
                let text = format!(
                    "every cell against the closed form of the decaying sine modes: max error {err:.3e}, {verdict} \
                     the rounding bound 20(T+1)A u = {bound:.3e}"
                );
                (ok, text, Some(err))
            }
            Init::Hotspot => match s.bad {
                None => (true, format!("{SAMPLED_CELLS} sampled cells equal the sequential reference bit for bit"), None),
                Some((i, j)) => (false, format!("cell (row {i}, column {j}) differs from the sequential reference"), None),
            },
        }
    }

    /// Rank `k`'s band of the PNG on `size` ranks: the rows of its share of
    /// the PNG's blocks of rows (whole blocks, so the compressed bytes are
    /// the same for any process count and grid).
    fn band(&self, size: usize, k: usize) -> Range<usize> {
        let per = png::rows_per_block(self.p.cols * 3) as usize;
        let blocks = block_slice(self.p.rows.div_ceil(per), size, k);
        (blocks.start * per).min(self.p.rows)..(blocks.end * per).min(self.p.rows)
    }

    /// Moves the ranks' coloured blocks (`colours`, this rank's, row-major
    /// RGB) so that each rank holds its [`Heat::band`] of whole rows (one
    /// `MPI_Alltoallv` under either comm: every block row goes to the band
    /// that holds it), then compresses the band's PNG blocks on this rank's
    /// threads. Returns them in [`png::pack`]'s form.
    fn pack_band(&self, team: &spmd::exchange::Team, l: &Layout, colours: &[u8]) -> Vec<u8> {
        let (size, row_bytes) = (team.size(), self.p.cols * 3);
        let overlap = |a: &Range<usize>, b: &Range<usize>| a.start.max(b.start)..a.end.min(b.end).max(a.start.max(b.start));
        // This block's rows go out in order, and the bands follow each
        // other down the field, so each band's part is the next slice.
        let counts: Vec<usize> = (0..size).map(|k| overlap(&l.rows, &self.band(size, k)).len() * l.cols.len() * 3).collect();
        let mut pieces = Vec::new();
        let from = team
            .all_to_all_into(colours, &counts, &mut pieces)
            .expect("the PNG's bytes were checked against MPI's count limit before the run");
        let mine = self.band(size, team.rank());
        let mut rows = vec![0u8; mine.len() * row_bytes];
        let mut at = 0;
        for (r, &count) in from.iter().enumerate() {
            let (their_rows, cols) = self.place((l.pr, l.pc), r);
            let w = cols.len() * 3;
            for (i, src) in overlap(&their_rows, &mine).zip(pieces[at..at + count].chunks(w.max(1))) {
                rows[(i - mine.start) * row_bytes + cols.start * 3..][..w].copy_from_slice(src);
            }
            at += count;
        }
        drop(pieces);
        png::pack(&rows, row_bytes)
    }

    /// The centre, the corners' neighbourhood and points between.
    fn sampled_cells(&self) -> Vec<(usize, usize)> {
        let (h, w) = (self.p.rows, self.p.cols);
        let mut cells = vec![(h / 2, w / 2), (0, 0), (h - 1, w - 1), (h / 3, 2 * w / 3), (2 * h / 3, w / 5)];
        cells.truncate(SAMPLED_CELLS);
        cells
    }

    /// With `--frames`: colours every frame over the first frame's range and
    /// stages the animation (not yet in place).
    fn write_animation(&self, frames: &[Vec<f64>]) -> Result<Option<output::Staged>> {
        let Some(a) = &self.anim else { return Ok(None) };
        let first = frames.first().context("no frames were gathered")?;
        let (lo, hi) = first.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let (w, h) = (u32::try_from(a.lattice.width)?, u32::try_from(a.lattice.height)?);
        let count = u32::try_from(frames.len())?;
        let pixels = |k: u32| {
            let f = &frames[k as usize];
            match a.format {
                animation::Format::Apng => heat::colour(f, lo, hi),
                // The palette's nearest level; the span as heat::colour takes it.
                animation::Format::Gif => {
                    let span = if hi > lo { hi - lo } else { 1.0 };
                    f.iter().map(|&v| animation::level((v - lo) / span)).collect()
                }
            }
        };
        let staged = output::stage(&a.path, |f| {
            animation::write(f, a.format, w, h, count, pixels).with_context(|| format!("cannot write {}", a.path.display()))
        })?;
        Ok(Some(staged))
    }

    /// Writes the PNG from its compressed blocks, staged (not yet in place).
    fn write_png(&self, packed: &[u8]) -> Result<output::Staged> {
        let row_bytes = self.p.cols * 3;
        let blocks = png::blocks(packed, row_bytes, self.p.rows as u64)?;
        let (w, h) = (u32::try_from(self.p.cols)?, u32::try_from(self.p.rows)?);
        output::stage(&self.out, |f| {
            png::write(f, w, h, &blocks).with_context(|| format!("cannot write {}", self.out.display()))
        })
    }
}

/// Combines every rank's [`Checks`] (in rank order, as `all_gather` lays
/// them out) into the field's [`Summary`]; `sampled` names the cells the
/// hotspot indices count.
fn summarise(sampled: &[(usize, usize)], f: &[f64], u: &[u64]) -> Summary {
    let (mut max_error, mut lo, mut hi) = (0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for c in f.chunks(3) {
        (max_error, lo, hi) = (max_error.max(c[0]), lo.min(c[1]), hi.max(c[2]));
    }
    let first_bad = u.chunks(2).map(|c| c[0]).min().unwrap_or(u64::MAX);
    let bad = usize::try_from(first_bad).ok().and_then(|k| sampled.get(k).copied());
    let digest = heat::digest_hex(u.chunks(2).map(|c| c[1]));
    Summary { max_error, bad, lo, hi, digest }
}

/// Gathers every rank's cells at rank 0 and places them: rank `r`'s are
/// the rows and columns `places[r]` of a row-major whole `width` wide.
fn gather(
    team: &spmd::exchange::Team,
    comm: Comm,
    places: &[(Range<usize>, Range<usize>)],
    width: usize,
    mine: &[f64],
) -> Option<Vec<f64>> {
    let counts: Vec<usize> = places.iter().map(|(rows, cols)| rows.len() * cols.len()).collect();
    let total: usize = counts.iter().sum();
    let root = team.rank() == 0;
    let mut blocks = if root { vec![0.0; total] } else { Vec::new() };
    let recv = root.then_some(&mut blocks[..]);
    match comm {
        Comm::P2p => team.gather_p2p(0, mine, &counts, recv),
        _ => team.gather(0, mine, &counts, recv),
    }
    if !root {
        return None;
    }
    let mut whole = vec![0.0; total];
    let mut at = 0;
    for ((rows, cols), &count) in places.iter().zip(&counts) {
        let w = cols.len();
        for (i, src) in rows.clone().zip(blocks[at..at + count].chunks(w.max(1))) {
            whole[i * width + cols.start..][..w].copy_from_slice(src);
        }
        at += count;
    }
    Some(whole)
}

/// One rank's block as it evolves, with its halo exchange: what
/// [`Heat::run`]'s loop advances, any number of steps at a time.
struct Evolving {
    /// The block, with `--halo-depth` ghost layers.
    b: Block,
    r: f64,
    /// Which sides (north, south, west, east) have a neighbour.
    sides: [bool; 4],
    cur: Vec<f64>,
    next: Vec<f64>,
    /// The first phase: rows north and south, and with depth 1 the columns
    /// west and east too.
    rows: Halo,
    /// The second phase (depth above 1): columns west and east over every
    /// buffer row, carrying the corners.
    cols: Option<Halo>,
}

/// The values each halo phase carries per direction (north, south, west,
/// east): depth 1, one phase of the edges; depth `K > 1`, `K` rows of `w`,
/// then `K` columns of all `h + 2K` buffer rows.
fn halo_lens(b: Block) -> ([usize; 4], Option<[usize; 4]>) {
    let (k, h, w) = (b.g, b.h, b.w);
    if k == 1 {
        ([w, w, h, h], None)
    } else {
        let col = k * (h + 2 * k);
        ([k * w, k * w, 0, 0], Some([0, 0, col, col]))
    }
}

impl Evolving {
    /// The rank's initial block and its halo phases (collective calls:
    /// every rank makes them, before the timed region).
    fn new(spmd: &Spmd, comm: Comm, l: &Layout, p: &Params, depth: usize) -> Evolving {
        let b = l.block(depth);
        let cur = b.initial(p, l.rows.clone(), l.cols.clone());
        let (first, second) = halo_lens(b);
        let halo = |lens| spmd.halo(comm, (l.pr, l.pc), (l.gr, l.gc), lens);
        let (rows, cols) = (halo(first), second.map(halo));
        Evolving { b, r: p.r, sides: l.neighbours().map(|n| n.is_some()), next: cur.clone(), cur, rows, cols }
    }

    /// Advances the block over the steps `steps` (rank 0 tells `progress`
    /// after each exchange): an exchange every `K` steps, the
    /// last covering what is left. `compute_s` is the stencil; `comm_s` the
    /// rest (packing, the waits, unpacking).
    fn advance(&mut self, steps: Range<u64>, stats: &mut RankStats, progress: &Progress) {
        let mut at = steps.start;
        while at < steps.end {
            let m = (steps.end - at).min(self.b.g as u64) as usize;
            self.exchange_and_step(m, stats);
            at += m as u64;
            progress.set(at);
        }
    }

    /// One exchange, then `m` sub-steps (at most the depth): the interior
    /// updated while the first phase travels, the halos into the ghost
    /// layers, the rest of sub-step 0 and the others over what
    /// [`heat::grown`] allows.
    fn exchange_and_step(&mut self, m: usize, stats: &mut RankStats) {
        let (b, r) = (self.b, self.r);
        if self.rows.is_alone() {
            for _ in 0..m {
                stats.compute_s += timed(|| heat::step_block(b, &self.cur, &mut self.next, r)).1;
                std::mem::swap(&mut self.cur, &mut self.next);
            }
            return;
        }
        let t = Instant::now();
        let (cur, next) = (&mut self.cur, &mut self.next);
        let owned = b.g..b.g + b.h;
        let [north, south, west, east] = self.rows.outgoing();
        pack_rows(b, cur, north, south);
        if self.cols.is_none() {
            pack_cols(b, cur, owned.clone(), west, east);
        }
        let (compute_s, [north, south, west, east]) =
            self.rows.exchange(|| timed(|| heat::step_interior(b, cur, next, r)).1);
        unpack_rows(b, north, south, cur);
        if let Some(cols) = &mut self.cols {
            let all = 0..b.h + 2 * b.g;
            let [_, _, west, east] = cols.outgoing();
            pack_cols(b, cur, all.clone(), west, east);
            let ((), [_, _, west, east]) = cols.exchange(|| ());
            unpack_cols(b, all, west, east, cur);
        } else {
            unpack_cols(b, owned, west, east, cur);
        }
        stats.comm_s += t.elapsed().as_secs_f64() - compute_s;
        let t = Instant::now();
        heat::step_around(b, heat::grown(self.sides, m, 0), cur, next, r);
        std::mem::swap(cur, next);
        for s in 1..m {
            heat::step_interior(b, cur, next, r);
            heat::step_around(b, heat::grown(self.sides, m, s), cur, next, r);
            std::mem::swap(cur, next);
        }
        stats.compute_s += compute_s + t.elapsed().as_secs_f64();
    }

    /// The block's cells, row-major, without ghosts.
    fn cells(&self) -> Vec<f64> {
        self.b.cells(&self.cur)
    }
}

/// Copies the block's `g` rows nearest each row neighbour (over its own
/// columns, top to bottom) into `north` and `south`.
fn pack_rows(b: Block, cur: &[f64], north: &mut [f64], south: &mut [f64]) {
    let (g, w, stride) = (b.g, b.w, b.stride());
    for k in 0..g {
        north[k * w..][..w].copy_from_slice(&cur[(g + k) * stride + g..][..w]);
        south[k * w..][..w].copy_from_slice(&cur[(b.h + k) * stride + g..][..w]);
    }
}

/// Copies the block's `g` columns nearest each column neighbour, over
/// buffer rows `rows` (row by row, left to right), into `west` and `east`.
fn pack_cols(b: Block, cur: &[f64], rows: Range<usize>, west: &mut [f64], east: &mut [f64]) {
    let (g, stride) = (b.g, b.stride());
    for (n, i) in rows.enumerate() {
        west[n * g..][..g].copy_from_slice(&cur[i * stride + g..][..g]);
        east[n * g..][..g].copy_from_slice(&cur[i * stride + b.w..][..g]);
    }
}

/// Copies received rows into `cur`'s ghost rows (where there is a
/// neighbour; the others stay 0, the fixed boundary).
fn unpack_rows(b: Block, north: Option<&[f64]>, south: Option<&[f64]>, cur: &mut [f64]) {
    let (g, w, stride) = (b.g, b.w, b.stride());
    for k in 0..g {
        if let Some(rows) = north {
            cur[k * stride + g..][..w].copy_from_slice(&rows[k * w..][..w]);
        }
        if let Some(rows) = south {
            cur[(g + b.h + k) * stride + g..][..w].copy_from_slice(&rows[k * w..][..w]);
        }
    }
}

/// Copies received columns into `cur`'s ghost columns over buffer rows
/// `rows` (where there is a neighbour; the others stay 0).
fn unpack_cols(b: Block, rows: Range<usize>, west: Option<&[f64]>, east: Option<&[f64]>, cur: &mut [f64]) {
    let (g, stride) = (b.g, b.stride());
    for (n, i) in rows.enumerate() {
        if let Some(cols) = west {
            cur[i * stride..][..g].copy_from_slice(&cols[n * g..][..g]);
        }
        if let Some(cols) = east {
            cur[i * stride + g + b.w..][..g].copy_from_slice(&cols[n * g..][..g]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spmd::halo::OPPOSITE;

    fn heat(cols: usize, rows: usize, grid: Option<(usize, usize)>) -> Heat {
        let p = Params { cols, rows, steps: 1, r: 0.2, init: Init::Modes };
        Heat { p, grid, depth: 1, out: PathBuf::from(DEFAULT_OUT), anim: None }
    }

    #[test]
    fn frames_fall_on_rounded_even_steps_from_the_first_to_the_last() {
        let mut h = heat(10, 10, None);
        let with = |h: &mut Heat, frames: u64, steps: u64| {
            h.p.steps = steps;
            let lattice = animation::Lattice::new(10, 10, 640);
            h.anim = Some(Anim { frames, path: DEFAULT_ANIMATION.into(), format: animation::Format::Apng, lattice });
            h.stops()
        };
        assert_eq!(h.stops(), [1], "without frames the loop runs through");
        assert_eq!(with(&mut h, 2, 7), [0, 7]);
        assert_eq!(with(&mut h, 4, 10), [0, 3, 7, 10]);
        assert_eq!(with(&mut h, 3, 5), [0, 3, 5], "2.5 rounds up");
        assert_eq!(with(&mut h, 6, 5), [0, 1, 2, 3, 4, 5]);
        let big = with(&mut h, 1000, u64::MAX - 1);
        assert_eq!((big[0], big[999], big.len()), (0, u64::MAX - 1, 1000));
        assert!(big.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn sizes_parse_as_cols_by_rows() {
        assert_eq!("8000x6000".parse::<Dims>(), Ok(Dims { cols: 8000, rows: 6000 }));
        assert_eq!("2Kx1K".parse::<Dims>(), Ok(Dims { cols: 2000, rows: 1000 }));
        assert!("7".parse::<Dims>().unwrap_err().contains("COLSxROWS"));
        assert!("7xq".parse::<Dims>().is_err());
        assert_eq!(Dims { cols: 3, rows: 2 }.to_string(), "3x2");
    }

    #[test]
    fn every_process_count_tiles_the_field_and_neighbours_agree() {
        for (cols, rows) in [(50, 30), (30, 50), (13, 13)] {
            let h = heat(cols, rows, None);
            for size in 1..=13 {
                let layouts: Vec<Layout> = (0..size).map(|r| h.layout(r, size).unwrap()).collect();
                let (pr, pc) = (layouts[0].pr, layouts[0].pc);
                assert_eq!(pr * pc, size);
                // The grid's longer side lies along the field's.
                let along = if cols > rows { pc >= pr } else { rows == cols || pr >= pc };
                assert!(along, "{cols}x{rows} on {size}: {pc}x{pr}");
                let cells: usize = layouts.iter().map(|l| l.rows.len() * l.cols.len()).sum();
                assert_eq!(cells, cols * rows);
                for (rank, l) in layouts.iter().enumerate() {
                    for (d, n) in l.neighbours().into_iter().enumerate() {
                        if let Some(n) = n {
                            assert_eq!(layouts[n].neighbours()[OPPOSITE[d]], Some(rank));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_block_thinner_than_the_halo_depth_towards_a_neighbour_is_refused_on_every_rank() {
        // 5 rows on 2 process rows: blocks of 3 and 2 rows.
        let mut h = Heat { depth: 3, ..heat(60, 5, None) };
        for rank in 0..4 {
            let e = h.layout(rank, 4).unwrap_err().to_string();
            assert!(e.contains("on the 2x2 process grid over 60x5 cells the thinnest block has 2 rows"), "{e}");
        }
        h.depth = 2;
        assert!(h.layout(3, 4).is_ok());
        // One process row: no row neighbour, so 5 rows may be thinner than
        // the depth; the 15 columns may not.
        h.grid = Some((1, 4));
        h.depth = 15;
        assert!((0..4).all(|rank| h.layout(rank, 4).is_ok()));
        h.depth = 16;
        assert!(h.layout(0, 4).unwrap_err().to_string().contains("thinnest block has 15 columns"));
    }

    #[test]
    fn a_grid_must_multiply_to_the_process_count_and_fit_the_field() {
        let h = heat(10, 10, Some((4, 4)));
        assert!(h.layout(0, 6).unwrap_err().to_string().contains("--grid 4x4 has 16 processes but the job has 6"));
        assert!(h.layout(0, 16).is_ok());
        assert!(heat(2, 2, None).layout(0, 6).unwrap_err().to_string().contains("need at least"));
    }

    #[test]
    fn the_summary_takes_the_largest_error_the_range_and_the_first_bad_sample_of_all_ranks() {
        let sampled = [(5, 5), (0, 0), (9, 9)];
        // Three ranks: [error, lo, hi] and [first bad sample or none, share].
        let f = [1e-15, -0.5, 0.25, 3e-15, 0.0, 0.75, 2e-15, f64::INFINITY, f64::NEG_INFINITY];
        let u = [u64::MAX, 1, 2, u64::MAX - 1, 1, 5];
        let s = summarise(&sampled, &f, &u);
        assert_eq!((s.max_error, s.lo, s.hi), (3e-15, -0.5, 0.75));
        assert_eq!(s.bad, Some((0, 0)), "sample 1 is the first bad one");
        assert_eq!(s.digest, heat::digest_hex([1, u64::MAX - 1, 5]));
        let clean = summarise(&sampled, &f, &[u64::MAX, 1, u64::MAX, 2, u64::MAX, 3]);
        assert_eq!(clean.bad, None);
    }
}
