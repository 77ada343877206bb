//! `pikernels heat`: 2-D heat diffusion by the explicit 5-point scheme, the
//! grid cut into blocks on a 2-D process grid, `K`-cell halos exchanged
//! with the four neighbours every `K` steps (`--halo-depth K`, default 1).
//!
//! The job says what moves; the runtime moves it. In steps, one file each:
//!
//! - **Place** (here): the process grid is the near-square factorisation of
//!   the process count with its longer side along the field's longer side
//!   ([`Blocks::near_square`], any count, primes included: a `1 x p` grid);
//!   `--grid` overrides it. Each rank owns one block ([`Blocks::place`]).
//! - **Steps** (`evolve.rs`): every `K` steps the runtime refreshes the
//!   block's `K` ghost layers from its neighbours
//!   ([`crate::spmd::halo::GhostExchange`], the corners included) while this
//!   job updates the cells that need no ghost; then the rest of the first
//!   sub-step, then `K - 1` more (fewer after the last exchange when `K`
//!   does not divide the steps), each over the owned cells and the ghost
//!   layers still valid ([`heat::grown`]). `--comm p2p`: non-blocking sends
//!   and receives; `--comm collective`: one MPI-3 neighbourhood collective
//!   per phase on a Cartesian communicator made before the timed region.
//! - **Checks** (`checks.rs`): after the last step (and after the clock:
//!   `wall_s` is the steps) no rank gathers the field. Each rank verifies its
//!   own block (modes: every cell against the closed form,
//!   `kernels::heat::max_error`; hotspot: the sampled cells it holds against
//!   the sequential reference over their light cone), bounds it and digests
//!   it (`kernels::heat::digest_share`, whose shares add up to the whole
//!   field's digest); one all-gather of five numbers a rank combines them.
//! - **Pictures** (`pictures.rs`): each rank colours its block by cubehelix
//!   over the field's range; the runtime deals the blocks into bands of the
//!   PNG's whole blocks of rows ([`crate::spmd::exchange::Team::blocks_to_bands`],
//!   one all-to-all), every rank compresses its band ([`png::pack`]), and
//!   rank 0 gathers the compressed blocks and frames the file. `--frames K`
//!   also writes an animation (APNG or GIF, by the `--animation` path's
//!   extension): at steps `round(k T / (K - 1))`, `k = 0..K-1`, each rank
//!   sends rank 0 only its cells of a regular lattice
//!   ([`animation::Lattice`], the longer side at most `--frame-size`), in one
//!   gather per frame ([`crate::spmd::exchange::Team::gather_blocks`]); rank 0
//!   colours every frame over the first frame's range, so the decay shows.
//!
//! The report's `verify_s` is rank 0's checking and combining, `output_s`
//! its colouring, its band's exchange and compression, the gather and the
//! files. Every cell's update is one fixed floating-point expression, so the
//! field is bit-identical for any process count, grid, `--threads` and
//! `--comm`.

mod checks;
mod evolve;
mod pictures;
mod resume;

use super::examples::{Example, Examples};
use super::{timed, Finished, Job, Preflight, Ran, SpmdJob, UsageError};
use super::Common;
use crate::args::value_name;
use crate::size::Size;
use crate::spmd::blocks::Blocks;
use crate::spmd::{self, Comm, RankStats, Spmd};
use crate::progress::Progress;
use crate::{animation, output, png};
use anyhow::{bail, Result};
use checks::{summarise, Summary};
use evolve::Evolving;
use kernels::heat::{self, Block, Init, Params};
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

/// Runs of `heat` for the scripts and benchmarks that cover every kernel.
pub const EXAMPLES: Examples = Examples {
    output: Some("--out"),
    small: &[
        Example { label: "p2p", args: &["--size", "301x203", "--steps", "60", "--comm", "p2p"] },
        Example { label: "collective, depth 2", args: &[
            "--size", "301x203", "--steps", "61", "--init", "hotspot", "--comm", "collective", "--halo-depth", "2",
        ] },
    ],
    // Out of cache (128 MB a buffer): memory-bound.
    bench: &[Example { label: "", args: &["--size", "4000x4000", "--steps", "20", "--out", "/dev/null"] }],
    simd_paths: true,
    no_small_because: None,
    run_keys: &["output", "grid", "cell_updates_per_s", "bytes_per_s_per_core"],
};

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
    /// With --checkpoint: keep the field every N steps (instead of about every --checkpoint-every).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub checkpoint_steps: Option<Size>,
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
    let resume = match (&a.common.checkpoint, a.checkpoint_steps) {
        (None, Some(_)) => {
            return Err(UsageError("--checkpoint-steps applies with --checkpoint DIR: give both".into()));
        }
        (Some(_), Some(_)) if a.common.checkpoint_every.is_some() => {
            return Err(UsageError("--checkpoint-steps and --checkpoint-every both say when to keep the field: give one".into()));
        }
        (Some(_), Some(Size(0))) => return Err(UsageError("--checkpoint-steps 0: give at least 1".into())),
        (Some(_), _) if anim.is_some() => {
            return Err(UsageError(
                "--checkpoint with --frames: a resumed run would lack the frames before its start; not yet: \
                 give one of them"
                    .into(),
            ));
        }
        (Some(dir), steps) => Some(resume::Resume {
            dir: dir.clone(),
            steps: steps.map(|s| s.0),
            every: a.common.checkpoint_every.unwrap_or(super::shape::CHECKPOINT_EVERY),
        }),
        (None, None) => None,
    };
    Ok(Job::spmd(Heat { p, grid, depth: a.halo_depth, out, anim, resume }))
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
    /// `--checkpoint`, `--checkpoint-steps`, `--checkpoint-every`.
    resume: Option<resume::Resume>,
}

/// One rank's place: the field's blocks on the process grid, and its own.
#[derive(Clone, Debug)]
pub struct Layout {
    blocks: Blocks,
    rows: Range<usize>,
    cols: Range<usize>,
}

impl Layout {
    fn block(&self, depth: usize) -> Block {
        Block { h: self.rows.len(), w: self.cols.len(), g: depth }
    }
}

impl Heat {
    /// The field's blocks on `size` ranks: `--grid`, or the near-square
    /// grid with its longer side along the field's.
    fn blocks(&self, size: usize) -> Result<Blocks> {
        let field = (self.p.rows, self.p.cols);
        let blocks = match self.grid {
            Some((pr, pc)) if pr * pc != size => bail!(
                "--grid {pc}x{pr} has {} processes but the job has {size}: give a grid whose columns times rows \
                 is {size}, or leave --grid out",
                pr * pc
            ),
            Some(dims) => Blocks { field, dims },
            None => Blocks::near_square(field, size),
        };
        let (pr, pc) = blocks.dims;
        if !blocks.fit() {
            bail!(
                "{size} processes on a {pc}x{pr} grid need at least {pc}x{pr} cells, but --size is {}x{}",
                self.p.cols,
                self.p.rows
            );
        }
        Ok(blocks)
    }

    /// Refuses a process grid with a block thinner than the halo depth
    /// towards a neighbour (it could not fill the neighbour's `K` ghost
    /// layers). Every rank computes every block, so all refuse alike.
    fn check_depth(&self, blocks: &Blocks) -> Result<()> {
        let k = self.depth;
        let (pr, pc) = blocks.dims;
        let (thin_rows, thin_cols) = blocks.thinnest();
        for (parts, thin, what) in [(pr, thin_rows, "rows"), (pc, thin_cols, "columns")] {
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
        let blocks = self.blocks(size)?;
        self.check_depth(&blocks)?;
        let (rows, cols) = blocks.place(rank);
        Ok(Layout { blocks, rows, cols })
    }

    /// Bytes a rank holds at its peak: two ghosted blocks (`K` layers), the
    /// halos' send and receive buffers, its cells and their colours, and
    /// the largest band of the PNG twice (received, placed) with its
    /// compressed blocks; rank 0 also every band's compressed blocks.
    /// Computed in `u128` (the depth and the frames multiply the cells),
    /// saturated to `u64` only at the end, so no estimate can wrap small.
    fn memory_need(&self, l: &Layout, root: bool) -> u64 {
        let b = l.block(self.depth);
        let (first, second) = spmd::halo::phase_lens(b);
        let halos: u128 = first.iter().chain(second.iter().flatten()).map(|&n| n as u128).sum();
        let row_bytes = self.p.cols as u128 * 3;
        let band = self.band(l.blocks.ranks(), 0).len() as u128;
        let ghosted = (b.h as u128 + 2 * self.depth as u128) * (b.w as u128 + 2 * self.depth as u128);
        let packed = |rows: u128| png::packed_bound(rows as u64, self.p.cols * 3) as u128; // bounded by `job`
        let own =
            2 * ghosted * 8 + 2 * halos * 8 + (b.h * b.w) as u128 * (8 + 3) + 2 * band * row_bytes + packed(band);
        let root_extra = if root { packed(self.p.rows as u128) } else { 0 };
        // --checkpoint: rank 0 gathers the field (and on a resume deals it out
        // from a second copy in blocks' order).
        let root_extra = root_extra + if root && self.resume.is_some() { 2 * self.p.cells() as u128 * 8 } else { 0 };
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
    /// With `--checkpoint`: what was resumed and kept.
    checkpoint: Option<crate::report::Checkpoint>,
}

impl SpmdJob for Heat {
    type Prepared = (Layout, Option<resume::Start>);
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

    fn preflight(&self, ctx: &Preflight) -> Result<(Layout, Option<resume::Start>)> {
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
        let start = match (&self.resume, ctx.is_root()) {
            (Some(r), true) => Some(self.open_journal(r)?),
            _ => None,
        };
        Ok((layout, start))
    }

    fn resumes(&self) -> bool {
        true
    }

    fn resumed(&self, output: &Gathered) -> Option<crate::report::Checkpoint> {
        output.checkpoint.clone()
    }

    fn run(&self, spmd: &Spmd, comm: Comm, (layout, mut journal): (Layout, Option<resume::Start>)) -> Ran<Gathered> {
        let mut stats = RankStats { threads: spmd.threads() as u64, chunks: self.p.steps, ..RankStats::default() };
        let team = spmd.team();
        // With --checkpoint: the step rank 0's journal kept, and its field
        // dealt out as this grid's blocks.
        let mut first = [journal.as_ref().map_or(0, |j| j.step)];
        if self.resume.is_some() {
            team.broadcast(0, &mut first);
        }
        let first = first[0];
        let mut state = if first > 0 {
            let field = journal.as_mut().and_then(|j| j.field.take()).unwrap_or_default();
            let mine = team.scatter_blocks(comm, &layout.blocks, &field);
            drop(field);
            Evolving::from_cells(spmd, comm, &layout, &self.p, self.depth, &mine)
        } else {
            Evolving::new(spmd, comm, &layout, &self.p, self.depth)
        };
        if let Some(j) = journal.as_mut() {
            j.field = None;
        }
        team.barrier();
        let start = team.now();
        let mut frames = Vec::new();
        let mut done = first;
        // Rank 0's steps, from its own loop: no message.
        let progress = Progress::new(spmd.is_root(), self.p.steps, "steps");
        let (mut written, mut failed, mut writer) = (0, false, resume::Writer(None));
        if let Some(r) = &self.resume {
            // Stretches between checkpoints; the field kept after each (the
            // last too, so a rerun of a finished job is instant).
            let places: Vec<_> = (0..layout.blocks.ranks()).map(|k| layout.blocks.place(k)).collect();
            let mut last = None;
            while done < self.p.steps {
                // By time, the first stretch only measures the rate: no
                // field is kept after it (unless it is the last).
                let probe = last.is_none() && r.steps.is_none();
                let mut stretch = [self.next_stretch(r, last)];
                team.broadcast(0, &mut stretch);
                let until = done.saturating_add(stretch[0]).min(self.p.steps);
                let t = Instant::now();
                state.advance(done..until, &mut stats, &progress);
                last = Some((until - done, t.elapsed()));
                done = until;
                if probe && done < self.p.steps {
                    continue;
                }
                let t = Instant::now();
                // The write before is waited for first (one at a time, and
                // its copy of the field gone before the next is gathered).
                writer.finish(&mut written, &mut failed, &r.dir);
                let whole = team.gather_blocks(comm, &places, self.p.cols, &state.cells());
                if let (Some(whole), Some(j)) = (whole, &journal) {
                    // Rank 0 writes on a thread of its own while the steps go on.
                    if !failed {
                        let dir = j.claim.dir().to_path_buf();
                        writer.0 = Some(std::thread::spawn(move || crate::checkpoint::write_state(&dir, done, &whole)));
                    }
                }
                stats.comm_s += t.elapsed().as_secs_f64();
            }
        } else {
            for until in self.stops() {
                state.advance(done..until, &mut stats, &progress);
                done = until;
                frames.extend(self.frame(&team, comm, &layout, &state.cur, &mut stats));
            }
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
        // The last field is written while the checks and the PNG went on.
        if let Some(r) = &self.resume {
            writer.finish(&mut written, &mut failed, &r.dir);
        }
        let checkpoint = self.resume.as_ref().map(|r| resume::account(r, self.p.steps, first, written, failed));
        let grid = layout.blocks.dims;
        let output = png.map(|png| Gathered { summary, png, frames, grid, wall_s, verify_s, colour_s, checkpoint });
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
                // The steps this run computed (all, unless it resumed).
                "cell_updates_per_s": if out.wall_s > 0.0 {
                    p.cells() as f64 * out.checkpoint.as_ref().map_or(p.steps, |c| c.computed_units) as f64 / out.wall_s
                } else {
                    0.0
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn heat(cols: usize, rows: usize, grid: Option<(usize, usize)>) -> Heat {
        let p = Params { cols, rows, steps: 1, r: 0.2, init: Init::Modes };
        Heat { p, grid, depth: 1, out: PathBuf::from(DEFAULT_OUT), anim: None, resume: None }
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
}
