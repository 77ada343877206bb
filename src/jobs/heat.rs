//! `pikernels heat`: 2-D heat diffusion by the explicit 5-point scheme, the
//! grid cut into blocks on a 2-D process grid, one-cell halos exchanged
//! with the four neighbours every step (issue 17).
//!
//! - The process grid is the near-square factorisation of the process count
//!   ([`spmd::grid::shape`], any count, primes included: a `1 x p` grid),
//!   its longer side along the field's longer side; `--grid` overrides it.
//!   Rank `r` sits at grid row `r / pc`, column `r % pc`, and owns
//!   `block_slice` (`block_range`) of the field's rows and columns.
//! - Each step the rank packs its edge rows and columns into the runtime's
//!   [`spmd::halo::Halo`], which sends them to the (up to) four neighbours
//!   and receives theirs while this job updates the cells that need no
//!   ghost; then the received halos go into the ghost cells and the border
//!   cells are updated. `--comm p2p`: non-blocking sends and receives;
//!   `--comm collective`: one MPI-3 neighbourhood collective per step on a
//!   Cartesian communicator made before the timed region (see the module).
//! - Rank 0 gathers the blocks, verifies (modes: every cell against the
//!   closed form within `kernels::heat::error_bound`; hotspot: sampled cells
//!   against the sequential reference over their light cone), and writes
//!   the field as a PNG coloured by cubehelix over its own range.
//!
//! Every cell's update is one fixed floating-point expression, so the field
//! is bit-identical for any process count, grid, `--threads` and `--comm`.

use super::{timed, Finished, Job, Preflight, Ran, SpmdJob, UsageError};
use crate::cli::{value_name, Common};
use crate::size::Size;
use crate::spmd::halo::{Halo, EAST, NORTH, SOUTH, WEST};
use crate::spmd::{self, Comm, RankStats, Spmd};
use crate::report::digest;
use crate::{output, png};
use anyhow::{bail, Context, Result};
use kernels::heat::{self, Block, Init, Params};
use kernels::partition::block_slice;
use serde_json::{json, Value};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

/// Default PNG path.
pub const DEFAULT_OUT: &str = "heat.png";

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
    if p.cells() > spmd::MAX_COUNT as u64 {
        return Err(UsageError(format!(
            "--size {}: {} cells exceed what one MPI gather can carry ({})",
            a.size,
            p.cells(),
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
    let grid = a.grid.map(|g| (g.rows as usize, g.cols as usize));
    let out = a.common.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    Ok(Job::spmd(Heat { p, grid, out }))
}

/// A validated heat run.
pub struct Heat {
    p: Params,
    /// `--grid`, as (process rows, process columns).
    grid: Option<(usize, usize)>,
    out: PathBuf,
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
    fn block(&self) -> Block {
        Block { h: self.rows.len(), w: self.cols.len() }
    }

    /// The neighbours: north, south, west, east (`None` at the grid's edge).
    #[cfg(test)]
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

    fn layout(&self, rank: usize, size: usize) -> Result<Layout> {
        let (pr, pc) = self.shape(size)?;
        let (gr, gc) = (rank / pc, rank % pc);
        Ok(Layout { pr, pc, gr, gc, rows: block_slice(self.p.rows, pr, gr), cols: block_slice(self.p.cols, pc, gc) })
    }

    /// Bytes a rank holds at its peak: two ghosted blocks and the halos;
    /// rank 0 also the gathered blocks, the field, its colours and the PNG.
    fn memory_need(&self, l: &Layout, root: bool) -> u64 {
        let b = l.block();
        let own = 2 * b.len() as u64 * 8 + 4 * (b.h + b.w) as u64 * 8;
        let cells = self.p.cells();
        let rgb = cells * 3;
        let root_extra = if root { 2 * cells * 8 + rgb + png::packed_bound(self.p.rows as u64, self.p.cols * 3) } else { 0 };
        own + root_extra
    }
}

/// What rank 0 holds after the run.
pub struct Gathered {
    field: Vec<f64>,
    grid: (usize, usize),
    wall_s: f64,
}

impl SpmdJob for Heat {
    type Prepared = Layout;
    type Output = Gathered;

    fn params(&self) -> Value {
        let p = &self.p;
        json!({
            "size": format!("{}x{}", p.cols, p.rows), "steps": p.steps, "r": p.r, "init": value_name(p.init),
            "grid": self.grid.map(|(pr, pc)| format!("{pc}x{pr}")),
        })
    }

    fn implementation(&self) -> Option<&'static str> {
        Some(heat::implementation())
    }

    fn files(&self) -> Vec<output::FileUse> {
        vec![output::FileUse::writes("--out", &self.out)]
    }

    fn preflight(&self, ctx: &Preflight) -> Result<Layout> {
        let layout = self.layout(ctx.rank, ctx.size)?;
        output::check_memory(self.memory_need(&layout, ctx.is_root()), "this rank's block (rank 0: and the field)")?;
        if ctx.is_root() {
            output::check_writable(&self.out, "heat map")?;
            let bound = png::packed_bound(self.p.rows as u64, self.p.cols * 3) + 12 * self.p.rows as u64 + (1 << 16);
            output::check_disk(&self.out, bound, "the PNG")?;
        }
        Ok(layout)
    }

    fn run(&self, spmd: &Spmd, comm: Comm, layout: Layout) -> Ran<Gathered> {
        let mut stats = RankStats { threads: spmd.threads() as u64, chunks: self.p.steps, ..RankStats::default() };
        let b = layout.block();
        let mut cur = Block::initial(&self.p, layout.rows.clone(), layout.cols.clone());
        let mut next = cur.clone();
        let team = spmd.team();
        // North and south edges are rows, west and east columns.
        let mut halo = spmd.halo(comm, (layout.pr, layout.pc), (layout.gr, layout.gc), [b.w, b.w, b.h, b.h]);
        team.barrier();
        let start = team.now();
        for _ in 0..self.p.steps {
            step(&mut halo, b, &mut cur, &mut next, self.p.r, &mut stats);
            std::mem::swap(&mut cur, &mut next);
        }
        drop(halo);
        stats.units = b.h as u64 * b.w as u64;
        let field = self.gather(&team, comm, &layout, &b.cells(&cur), &mut stats);
        team.barrier();
        let wall_s = team.now() - start;
        let output = field.map(|field| Gathered { field, grid: (layout.pr, layout.pc), wall_s });
        Ran { output, stats, wall_s }
    }

    fn finish(&self, out: Gathered) -> Result<Finished> {
        let p = &self.p;
        let ((verified, verification, max_error), verify_s) = timed(|| self.verify(&out.field));
        let (lo, hi) = out.field.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let (written, output_s) = timed(|| self.write_png(&out.field, lo, hi));
        let png_bytes = written?;
        let updates = p.cells() as f64 * p.steps as f64;
        Ok(Finished {
            result: json!({
                "size": format!("{}x{}", p.cols, p.rows),
                "grid": format!("{}x{}", out.grid.1, out.grid.0),
                "field_digest": digest(&out.field),
                "min": lo, "max": hi,
                "max_error": max_error,
                "error_bound": (p.init == Init::Modes).then(|| heat::error_bound(p)),
                "cell_updates_per_s": if out.wall_s > 0.0 { updates / out.wall_s } else { 0.0 },
                "output": self.out.display().to_string(),
                "png_bytes": png_bytes,
            }),
            verified,
            verification,
            item: ("cell-updates", updates),
            bytes_per_item: Some(heat::BYTES_PER_CELL_UPDATE as f64),
            verify_s,
            output_s,
        })
    }
}

impl Heat {
    /// Gathers every rank's cells at rank 0 and places them in the field.
    fn gather(
        &self,
        team: &spmd::exchange::Team,
        comm: Comm,
        l: &Layout,
        mine: &[f64],
        stats: &mut RankStats,
    ) -> Option<Vec<f64>> {
        let t = Instant::now();
        let places: Vec<(Range<usize>, Range<usize>)> = (0..l.pr * l.pc)
            .map(|r| (block_slice(self.p.rows, l.pr, r / l.pc), block_slice(self.p.cols, l.pc, r % l.pc)))
            .collect();
        let counts: Vec<usize> = places.iter().map(|(rows, cols)| rows.len() * cols.len()).collect();
        let root = team.rank() == 0;
        let mut blocks = if root { vec![0.0; self.p.cells() as usize] } else { Vec::new() };
        let recv = root.then_some(&mut blocks[..]);
        match comm {
            Comm::P2p => team.gather_p2p(0, mine, &counts, recv),
            _ => team.gather(0, mine, &counts, recv),
        }
        stats.comm_s += t.elapsed().as_secs_f64();
        if !root {
            return None;
        }
        let mut field = vec![0.0; blocks.len()];
        let mut at = 0;
        for ((rows, cols), count) in places.into_iter().zip(counts) {
            let w = cols.len();
            for (i, src) in rows.zip(blocks[at..at + count].chunks(w.max(1))) {
                field[i * self.p.cols + cols.start..][..w].copy_from_slice(src);
            }
            at += count;
        }
        Some(field)
    }

    /// Verifies the field: (passed, what was checked, the modes' max error).
    fn verify(&self, field: &[f64]) -> (bool, String, Option<f64>) {
        let p = &self.p;
        match p.init {
            Init::Modes => {
                let (err, bound) = (heat::max_error(p, field), heat::error_bound(p));
                let ok = err <= bound;
                let verdict = if ok { "within" } else { "FAILED: beyond" };
                let text = format!(
                    "every cell against the closed form of the decaying sine modes: max error {err:.3e}, {verdict} \
                     the rounding bound 20(T+1)A u = {bound:.3e}"
                );
                (ok, text, Some(err))
            }
            Init::Hotspot => {
                let bad = self.sampled_cells().into_iter().find(|&(i, j)| {
                    // The cell's light cone: T cells each way, clipped to the grid.
                    let t = p.steps.min(p.rows.max(p.cols) as u64) as usize;
                    let (rows, cols) = (i.saturating_sub(t)..(i + t + 1).min(p.rows), j.saturating_sub(t)..(j + t + 1).min(p.cols));
                    let window = heat::reference(p, rows.clone(), cols.clone());
                    window[(i - rows.start) * cols.len() + (j - cols.start)].to_bits() != field[i * p.cols + j].to_bits()
                });
                match bad {
                    None => (true, format!("{SAMPLED_CELLS} sampled cells equal the sequential reference bit for bit"), None),
                    Some((i, j)) => (false, format!("cell (row {i}, column {j}) differs from the sequential reference"), None),
                }
            }
        }
    }

    /// The centre, the corners' neighbourhood and points between.
    fn sampled_cells(&self) -> Vec<(usize, usize)> {
        let (h, w) = (self.p.rows, self.p.cols);
        let mut cells = vec![(h / 2, w / 2), (0, 0), (h - 1, w - 1), (h / 3, 2 * w / 3), (2 * h / 3, w / 5)];
        cells.truncate(SAMPLED_CELLS);
        cells
    }

    /// Colours the field over `[lo, hi]` and writes the PNG; returns its bytes.
    fn write_png(&self, field: &[f64], lo: f64, hi: f64) -> Result<u64> {
        let row_bytes = self.p.cols * 3;
        let packed = png::pack(&heat::colour(field, lo, hi), row_bytes);
        let blocks = png::blocks(&packed, row_bytes, self.p.rows as u64)?;
        let (w, h) = (u32::try_from(self.p.cols)?, u32::try_from(self.p.rows)?);
        output::write_atomic(&self.out, |f| {
            png::write(f, w, h, &blocks).with_context(|| format!("cannot write {}", self.out.display()))
        })?;
        Ok(std::fs::metadata(&self.out).map(|m| m.len()).unwrap_or(0))
    }
}

/// One time step on a ghosted block: edges packed into `halo`, the
/// interior updated while the halos travel, halos into the ghost cells,
/// border updated. `compute_s` is the stencil; `comm_s` the rest (packing,
/// the wait, unpacking).
fn step(halo: &mut Halo, b: Block, cur: &mut [f64], next: &mut [f64], r: f64, stats: &mut RankStats) {
    if halo.is_alone() {
        stats.compute_s += timed(|| heat::step_block(b, cur, next, r)).1;
        return;
    }
    let t = Instant::now();
    pack(b, cur, halo.outgoing());
    let (compute_s, received) = halo.exchange(|| timed(|| heat::step_interior(b, cur, next, r)).1);
    unpack(b, received, cur);
    stats.comm_s += t.elapsed().as_secs_f64() - compute_s;
    let (_, border_s) = timed(|| heat::step_border(b, cur, next, r));
    stats.compute_s += compute_s + border_s;
}

/// Copies the block's edge cells of `cur` into the outgoing edges.
fn pack(b: Block, cur: &[f64], [north, south, west, east]: [&mut [f64]; 4]) {
    let (w, h, stride) = (b.w, b.h, b.w + 2);
    north.copy_from_slice(&cur[stride + 1..][..w]);
    south.copy_from_slice(&cur[h * stride + 1..][..w]);
    for i in 0..h {
        west[i] = cur[(i + 1) * stride + 1];
        east[i] = cur[(i + 1) * stride + w];
    }
}

/// Copies the received halos into `cur`'s ghost cells (those with a
/// neighbour; the others stay 0, the fixed boundary).
fn unpack(b: Block, received: [Option<&[f64]>; 4], cur: &mut [f64]) {
    let (w, h, stride) = (b.w, b.h, b.w + 2);
    if let Some(row) = received[NORTH] {
        cur[1..][..w].copy_from_slice(row);
    }
    if let Some(row) = received[SOUTH] {
        cur[(h + 1) * stride + 1..][..w].copy_from_slice(row);
    }
    for (d, col) in [(WEST, 0), (EAST, w + 1)] {
        if let Some(column) = received[d] {
            for (i, &v) in column.iter().enumerate() {
                cur[(i + 1) * stride + col] = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spmd::halo::OPPOSITE;

    fn heat(cols: usize, rows: usize, grid: Option<(usize, usize)>) -> Heat {
        let p = Params { cols, rows, steps: 1, r: 0.2, init: Init::Modes };
        Heat { p, grid, out: PathBuf::from(DEFAULT_OUT) }
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
    fn a_grid_must_multiply_to_the_process_count_and_fit_the_field() {
        let h = heat(10, 10, Some((4, 4)));
        assert!(h.layout(0, 6).unwrap_err().to_string().contains("--grid 4x4 has 16 processes but the job has 6"));
        assert!(h.layout(0, 16).is_ok());
        assert!(heat(2, 2, None).layout(0, 6).unwrap_err().to_string().contains("need at least"));
    }
}
