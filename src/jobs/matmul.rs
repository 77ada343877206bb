//! `pikernels matmul`: distributed dense `C = A B` (issue 4).
//!
//! Two distributed algorithms over the runtime's [`Team`] and [`Grid`]:
//!
//! - `rows` (the seed's comparison): rank 0 holds A and B, scatters row
//!   blocks of A, broadcasts B, every rank multiplies its block, rank 0
//!   gathers C. `--comm collective` uses `MPI_Scatterv` / `MPI_Bcast` /
//!   `MPI_Gatherv`, `--comm p2p` the same movement with sends and receives.
//! - `summa`: A and B start in 2-D blocks on a near-square process grid;
//!   for each panel of the inner dimension the owners broadcast their piece
//!   of A along their grid row and of B along their grid column, and every
//!   rank accumulates its block of C; rank 0 then gathers C.
//!
//! The timed region starts with the inputs where the algorithm expects them
//! (rank 0 for `rows`, 2-D blocks for `summa`) and ends with C at rank 0.

use super::examples::{Example, Examples};
use super::{timed, Finished, Job, Preflight, Ran, SpmdJob, UsageError};
use super::Common;
use crate::args::value_name;
use crate::size::Size;
use crate::spmd::exchange::Team;
use crate::spmd::grid::{rank_at, Grid};
use crate::spmd::strategy::RankStats;
use crate::spmd::{self, Comm, Spmd};
use crate::report::digest;
use crate::{npy, output};
use anyhow::{bail, Result};
use kernels::matmul::{self, Entries, View, Which};
use kernels::partition::{block_range, block_slice, offsets};
use serde_json::{json, Value};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

/// Largest order (46 340): one gather of C carries its `n^2` elements in
/// one MPI count.
pub const MAX_N: usize = spmd::MAX_COUNT.isqrt();

/// Widest SUMMA panel: wide enough that each local GEMM runs near peak,
/// narrow enough that the panel buffers stay small next to the blocks.
pub const SUMMA_PANEL: usize = 1024;

/// Default matrix order (`--n`).
pub const DEFAULT_N: u64 = 2048;

/// Runs of `matmul` for the scripts and benchmarks that cover every kernel.
pub const EXAMPLES: Examples = Examples {
    output: Some("--out"),
    small: &[
        Example { label: "rows", args: &["--n", "67", "--entries", "integer", "--algorithm", "rows"] },
        Example { label: "summa", args: &["--n", "67", "--entries", "integer", "--algorithm", "summa"] },
    ],
    bench: &[Example { label: "", args: &["--n", "2000"] }],
    simd_paths: false,
    no_small_because: None,
    run_keys: &["output", "grid", "gflops"],
};

/// Options of `matmul`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Matrix order: A, B and C are N x N (ignored with --a/--b, whose shape decides).
    #[arg(long = "n", value_name = "N", allow_hyphen_values = true, default_value_t = Size(DEFAULT_N))]
    pub n: Size,
    /// Read A from this .npy file (2-D, square, float64; readable at the same path on every rank).
    #[arg(long, value_name = "FILE", requires = "b")]
    pub a: Option<PathBuf>,
    /// Read B from this .npy file (the same order as A).
    #[arg(long, value_name = "FILE", requires = "a")]
    pub b: Option<PathBuf>,
    /// Distributed algorithm: rows (scatter row blocks of A, broadcast B, gather C; --comm
    /// collective or p2p) or summa (2-D process grid, panel broadcasts along rows and columns).
    #[arg(long, value_enum, default_value_t = Algorithm::Rows)]
    pub algorithm: Algorithm,
    /// Generated entries: uniform in [-1, 1), or integers in [-8, 8] (C exact, bit-identical
    /// for every process count and algorithm).
    #[arg(long, value_enum, default_value_t = Entries::Uniform, conflicts_with = "a")]
    pub entries: Entries,
    #[command(flatten)]
    pub common: Common,
}

/// `matmul --algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    /// 1-D: row blocks of A and C, all of B on every rank.
    Rows,
    /// 2-D SUMMA on a near-square process grid.
    Summa,
}

/// The job `a` describes.
pub fn job(a: &Args) -> Result<Job, UsageError> {
    Ok(Job::spmd(Matmul::new(a)?))
}

/// Where A and B come from.
#[derive(Clone, Debug)]
enum Source {
    Generated(Entries),
    Files { a: PathBuf, b: PathBuf },
}

/// A and B, whole.
type Pair = (Vec<f64>, Vec<f64>);

/// Where one rank's A and B come from in the run: what its pre-flight leaves.
pub enum Inputs {
    /// Generated from `--seed` where they are needed: every rank its own
    /// blocks, rank 0 also the whole matrices (to scatter for `rows`, and
    /// for the check).
    Generated(Entries),
    /// Rank 0 with `--a`/`--b`: both matrices, read in pre-flight.
    Read(Pair),
    /// Another rank with `--a`/`--b`: its blocks come from rank 0.
    Sent,
}

/// What rank 0 holds after the run: the inputs and C, for the check and the report.
pub struct Product {
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    /// Seconds of the timed region.
    wall_s: f64,
    /// The number of ranks (SUMMA's grid is `spmd::grid::shape` of it).
    ranks: usize,
}

/// This rank's share of the run: on rank 0, the product with its inputs.
fn ran((rank, ranks): (usize, usize), (a, b): Pair, c: Vec<f64>, stats: RankStats, wall_s: f64) -> Ran<Product> {
    let output = (rank == 0).then_some(Product { a, b, c, wall_s, ranks });
    Ran { output, stats, wall_s }
}

pub struct Matmul {
    n: usize,
    source: Source,
    algorithm: Algorithm,
    seed: u64,
    out: Option<PathBuf>,
}

impl Matmul {
    pub fn new(a: &Args) -> Result<Matmul, UsageError> {
        if a.common.comm == Comm::Dynamic {
            return Err(UsageError(
                "matmul moves whole blocks, not chunks: use --comm collective or p2p (dynamic does not apply)".into(),
            ));
        }
        let (n, source) = match (&a.a, &a.b) {
            (Some(pa), Some(pb)) => {
                let order = |p: &PathBuf| npy::square_order(p).map_err(|e| UsageError(format!("{e:#}")));
                let (na, nb) = (order(pa)?, order(pb)?);
                if na != nb {
                    return Err(UsageError(format!(
                        "A ({}) is {na}x{na} but B ({}) is {nb}x{nb}; they must have the same order",
                        pa.display(),
                        pb.display()
                    )));
                }
                (na as u64, Source::Files { a: pa.clone(), b: pb.clone() })
            }
            _ => (a.n.0, Source::Generated(a.entries)),
        };
        if n == 0 {
            return Err(UsageError("--n must be at least 1".into()));
        }
        if n > MAX_N as u64 {
            return Err(UsageError(format!(
                "order {n} is too large: C's {n}^2 entries exceed what one MPI gather can carry (at most --n {MAX_N})"
            )));
        }
        Ok(Matmul {
            n: n as usize,
            source,
            algorithm: a.algorithm,
            seed: a.common.seed,
            out: a.common.out.clone(),
        })
    }

    fn entries(&self) -> Entries {
        match self.source {
            Source::Generated(e) => e,
            // Read matrices are checked as real numbers (whatever they hold).
            Source::Files { .. } => Entries::Uniform,
        }
    }

    /// The whole generated A and B.
    fn generate(&self, entries: Entries) -> Pair {
        (matmul::generate(self.seed, Which::A, self.n, entries), matmul::generate(self.seed, Which::B, self.n, entries))
    }

    fn rows_algorithm(&self, spmd: &Spmd, team: &Team, comm: Comm, inputs: Inputs) -> Ran<Product> {
        let (n, p, rank) = (self.n, team.size(), team.rank());
        let rows = |r: usize| block_range(n as u64, p as u64, r as u64);
        let counts: Vec<usize> = (0..p).map(|r| (rows(r).end - rows(r).start) as usize * n).collect();
        let mine = counts[rank] / n;
        let (a, mut b) = match inputs {
            Inputs::Read(pair) => pair,
            Inputs::Generated(entries) if rank == 0 => self.generate(entries),
            _ => (Vec::new(), vec![0.0; n * n]),
        };
        let mut a_block = vec![0.0; counts[rank]];
        let mut c_block = vec![0.0; counts[rank]];
        let mut c = if rank == 0 { vec![0.0; n * n] } else { Vec::new() };
        let mut clock = Clock::new(spmd);

        team.barrier();
        let start = team.now();
        clock.comm(|| match comm {
            Comm::P2p => {
                team.scatter_p2p(0, &a, &counts, &mut a_block);
                team.broadcast_p2p(0, &mut b);
            }
            _ => {
                team.scatter(0, &a, &counts, &mut a_block);
                team.broadcast(0, &mut b);
            }
        });
        clock.compute(|| {
            matmul::gemm(&mut c_block, View::dense(&a_block, mine, n), View::dense(&b, n, n), false, spmd.threads())
        });
        let recv = (rank == 0).then_some(&mut c[..]);
        clock.comm(|| match comm {
            Comm::P2p => team.gather_p2p(0, &c_block, &counts, recv),
            _ => team.gather(0, &c_block, &counts, recv),
        });
        team.barrier();
        let wall_s = team.now() - start;
        clock.stats.units = (mine * n) as u64;
        clock.stats.chunks = 1;
        ran((rank, p), (a, b), c, clock.stats, wall_s)
    }

    fn summa(&self, spmd: &Spmd, team: &Team, comm: Comm, inputs: Inputs) -> Ran<Product> {
        let grid = spmd.grid();
        let me = Blocks::of(self.n, &grid);
        let (a_local, b_local, whole) = self.summa_inputs(team, &me, inputs);
        let panels = matmul::summa_panels(self.n, me.pr, me.pc, SUMMA_PANEL);
        let widest = panels.iter().map(|p| p.k.len()).max().unwrap_or(0);
        let mut a_panel = vec![0.0; me.rows_i.len() * widest];
        let mut b_panel = vec![0.0; widest * me.cols_j.len()];
        let mut c_local = vec![0.0; me.rows_i.len() * me.cols_j.len()];
        let mut clock = Clock::new(spmd);

        team.barrier();
        let start = team.now();
        for (step, panel) in panels.iter().enumerate() {
            let (a_buf, b_buf) = me.stage_panel(&grid, panel, (&a_local, &b_local), (&mut a_panel, &mut b_panel));
            clock.comm(|| match comm {
                Comm::P2p => {
                    grid.row_team.broadcast_p2p(panel.a_col, a_buf);
                    grid.col_team.broadcast_p2p(panel.b_row, b_buf);
                }
                _ => {
                    grid.row_team.broadcast(panel.a_col, a_buf);
                    grid.col_team.broadcast(panel.b_row, b_buf);
                }
            });
            let w = panel.k.len();
            clock.compute(|| {
                matmul::gemm(
                    &mut c_local,
                    View::dense(a_buf, me.rows_i.len(), w),
                    View::dense(b_buf, w, me.cols_j.len()),
                    step > 0,
                    spmd.threads(),
                )
            });
        }
        let c = me.gather_c(team, comm, &c_local, &mut clock);
        team.barrier();
        let wall_s = team.now() - start;
        clock.stats.units = c_local.len() as u64;
        clock.stats.chunks = panels.len() as u64;
        ran((team.rank(), team.size()), whole, c, clock.stats, wall_s)
    }

    /// This rank's blocks `A[I, Ka]` and `B[Kb, J]`: generated in place, or
    /// cut from the files at rank 0 and scattered (before the timed region).
    /// Rank 0 also returns the whole A and B, for verification.
    fn summa_inputs(&self, team: &Team, me: &Blocks, inputs: Inputs) -> (Vec<f64>, Vec<f64>, Pair) {
        let mut a_local = vec![0.0; me.rows_i.len() * me.ka.len()];
        let mut b_local = vec![0.0; me.kb.len() * me.cols_j.len()];
        let (whole, (a_packed, b_packed)): (Pair, Pair) = match inputs {
            Inputs::Generated(entries) => {
                let (seed, n) = (self.seed, self.n);
                matmul::fill_block(seed, Which::A, n, entries, me.rows_i.clone(), me.ka.clone(), &mut a_local);
                matmul::fill_block(seed, Which::B, n, entries, me.kb.clone(), me.cols_j.clone(), &mut b_local);
                let whole = if team.rank() == 0 { self.generate(entries) } else { (Vec::new(), Vec::new()) };
                return (a_local, b_local, whole);
            }
            // Rank r = (gr, gc) gets A[rows gr, cols-block gc] and B[rows-block
            // gr, cols gc]: blocks shaped like its block of C.
            Inputs::Read(pair) => {
                let packed = (me.pack(&pair.0), me.pack(&pair.1));
                (pair, packed)
            }
            Inputs::Sent => Default::default(),
        };
        let counts = me.counts();
        team.scatter(0, &a_packed, &counts, &mut a_local);
        team.scatter(0, &b_packed, &counts, &mut b_local);
        (a_local, b_local, whole)
    }

    /// Bytes one rank holds at its peak, for the memory check.
    fn memory_need(&self, ctx: &Preflight) -> u64 {
        let (n, p) = (self.n as u64, ctx.size as u64);
        let whole = n * n * 8;
        let share = n.div_ceil(p) * n * 8;
        let root_extra = if ctx.is_root() { 4 * whole } else { 0 }; // A, B, C and the gathered blocks
        match self.algorithm {
            Algorithm::Rows => whole + 2 * share + root_extra,
            Algorithm::Summa => {
                let (pr, pc) = spmd::grid::shape(ctx.size);
                let block = n.div_ceil(pr as u64) * n.div_ceil(pc as u64) * 8;
                3 * block + 2 * n * SUMMA_PANEL as u64 * 8 + root_extra
            }
        }
    }
}

/// One rank's part of SUMMA's 2-D decomposition on a `pr x pc` grid. Its
/// block of C is rows `I` x cols `J`; it holds `A[I, Ka]` and `B[Kb, J]`,
/// where A's columns are cut like C's columns and B's rows like C's rows
/// (so every rank's blocks of A, B and C have the same shape).
struct Blocks {
    n: usize,
    pr: usize,
    pc: usize,
    rows_i: Range<usize>,
    cols_j: Range<usize>,
    ka: Range<usize>,
    kb: Range<usize>,
}

impl Blocks {
    fn of(n: usize, grid: &Grid) -> Blocks {
        let (pr, pc) = (grid.rows, grid.cols);
        Blocks {
            n,
            pr,
            pc,
            rows_i: block_slice(n, pr, grid.row),
            cols_j: block_slice(n, pc, grid.col),
            ka: block_slice(n, pc, grid.col),
            kb: block_slice(n, pr, grid.row),
        }
    }

    /// The rows and columns of rank `r`'s block (ranks numbered row-major on the grid).
    fn block(&self, r: usize) -> (Range<usize>, Range<usize>) {
        (block_slice(self.n, self.pr, r / self.pc), block_slice(self.n, self.pc, r % self.pc))
    }

    /// Elements of each rank's block.
    fn counts(&self) -> Vec<usize> {
        (0..self.pr * self.pc).map(|r| self.block(r)).map(|(i, j)| i.len() * j.len()).collect()
    }

    /// A whole `n x n` matrix cut into the ranks' blocks, in rank order.
    fn pack(&self, m: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut out = Vec::new();
        for r in 0..self.pr * self.pc {
            let (rows, cols) = self.block(r);
            for i in rows {
                out.extend_from_slice(&m[i * n + cols.start..i * n + cols.end]);
            }
        }
        out
    }

    /// The inverse of [`Blocks::pack`]: the ranks' blocks put in place.
    fn unpack(&self, blocks: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut m = vec![0.0; n * n];
        let displs = offsets(&self.counts());
        for gr in 0..self.pr {
            for gc in 0..self.pc {
                let r = rank_at(self.pc, gr, gc);
                let (ri, cj) = self.block(r);
                let block = &blocks[displs[r]..][..ri.len() * cj.len()];
                for (row, src) in ri.zip(block.chunks(cj.len().max(1))) {
                    m[row * n + cj.start..row * n + cj.end].copy_from_slice(src);
                }
            }
        }
        m
    }

    /// This SUMMA step's panel buffers, `A[I, k]` and `B[k, J]`, filled by
    /// their owners (the grid column `a_col` holds `A[:, k]`, the grid row
    /// `b_row` holds `B[k, :]`) from their local blocks, ready to broadcast.
    fn stage_panel<'p>(
        &self,
        grid: &Grid,
        panel: &matmul::Panel,
        (a_local, b_local): (&[f64], &[f64]),
        (a_panel, b_panel): (&'p mut [f64], &'p mut [f64]),
    ) -> (&'p mut [f64], &'p mut [f64]) {
        let w = panel.k.len();
        let a_buf = &mut a_panel[..self.rows_i.len() * w];
        if grid.col == panel.a_col {
            let from = panel.k.start - self.ka.start;
            for (dst, src) in a_buf.chunks_mut(w.max(1)).zip(a_local.chunks(self.ka.len().max(1))) {
                dst.copy_from_slice(&src[from..from + w]);
            }
        }
        let b_buf = &mut b_panel[..w * self.cols_j.len()];
        if grid.row == panel.b_row {
            let from = (panel.k.start - self.kb.start) * self.cols_j.len();
            b_buf.copy_from_slice(&b_local[from..from + b_buf.len()]);
        }
        (a_buf, b_buf)
    }

    /// Gathers the ranks' blocks of C at rank 0 and puts them in place
    /// (rank 0 returns C, the others nothing).
    fn gather_c(&self, team: &Team, comm: Comm, c_local: &[f64], clock: &mut Clock) -> Vec<f64> {
        let counts = self.counts();
        let is_root = team.rank() == 0;
        let mut blocks = if is_root { vec![0.0; self.n * self.n] } else { Vec::new() };
        let recv = is_root.then_some(&mut blocks[..]);
        clock.comm(|| match comm {
            Comm::P2p => team.gather_p2p(0, c_local, &counts, recv),
            _ => team.gather(0, c_local, &counts, recv),
        });
        if is_root {
            self.unpack(&blocks)
        } else {
            Vec::new()
        }
    }
}

/// Times compute and communication steps of one rank.
struct Clock {
    stats: RankStats,
}

impl Clock {
    fn new(spmd: &Spmd) -> Clock {
        Clock { stats: RankStats { threads: spmd.threads() as u64, ..RankStats::default() } }
    }

    fn comm<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.stats.comm_s += t.elapsed().as_secs_f64();
        r
    }

    fn compute<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.stats.compute_s += t.elapsed().as_secs_f64();
        r
    }
}

impl SpmdJob for Matmul {
    type Prepared = Inputs;
    type Output = Product;

    fn params(&self) -> Value {
        let (entries, a, b) = match &self.source {
            Source::Generated(e) => (Some(value_name(*e)), None, None),
            Source::Files { a, b } => (None, Some(a.display().to_string()), Some(b.display().to_string())),
        };
        json!({
            "n": self.n, "algorithm": value_name(self.algorithm),
            "entries": entries, "a": a, "b": b, "seed": self.seed,
        })
    }

    fn files(&self) -> Vec<output::FileUse> {
        let mut files: Vec<output::FileUse> = self.out.iter().map(|p| output::FileUse::writes("--out", p)).collect();
        if let Source::Files { a, b } = &self.source {
            files.extend([output::FileUse::reads("--a", a), output::FileUse::reads("--b", b)]);
        }
        files
    }

    fn preflight(&self, ctx: &Preflight) -> Result<Inputs> {
        output::check_memory(
            self.memory_need(ctx),
            "this rank's share of A, B and C",
            "give a smaller --n (smaller --a and --b) or more processes",
        )?;
        if ctx.is_root() {
            if let Some(path) = &self.out {
                output::check_writable(path, "product C")?;
                output::check_disk(path, (self.n * self.n * 8 + 4096) as u64, "C as .npy")?;
            }
        }
        match &self.source {
            Source::Generated(entries) => Ok(Inputs::Generated(*entries)),
            Source::Files { .. } if !ctx.is_root() => Ok(Inputs::Sent),
            Source::Files { a, b } => {
                let (na, ma) = npy::read_square(a)?;
                let (nb, mb) = npy::read_square(b)?;
                if na != self.n || nb != self.n {
                    bail!("the input files changed since their headers were read");
                }
                Ok(Inputs::Read((ma, mb)))
            }
        }
    }

    fn run(&self, spmd: &Spmd, comm: Comm, inputs: Inputs) -> Ran<Product> {
        let team = spmd.team();
        match self.algorithm {
            Algorithm::Rows => self.rows_algorithm(spmd, &team, comm, inputs),
            Algorithm::Summa => self.summa(spmd, &team, comm, inputs),
        }
    }

    fn finish(&self, product: Product) -> Result<Finished> {
        let Product { a, b, c, wall_s, ranks } = product;
        let n = self.n;
        let entries = self.entries();
        let (check, verify_s) = timed(|| matmul::freivalds(&a, &b, &c, n, self.seed, entries));
        // The inputs are finite (generated, or refused otherwise when read):
        // a non-finite entry of C is the product overflowing f64.
        let overflow = c.iter().position(|v| !v.is_finite());
        let passed = check.passed && overflow.is_none();
        // Only a verified C is written.
        let (c_file, output_s) = match &self.out {
            Some(path) if passed => {
                let (written, s) = timed(|| npy::write_square(path, n, &c));
                (Some(written?), s)
            }
            _ => (None, 0.0),
        };
        let flops = matmul::flops(n);
        let how = match entries {
            Entries::Integer => "exactly (integer entries)".to_string(),
            Entries::Uniform => "within the rounding bound 4(n+2)eps(|A||B||x|)".to_string(),
        };
        let not_written = if self.out.is_some() { "; C was not written" } else { "" };
        let verification = if let Some(at) = overflow {
            format!(
                "C[{}, {}] is {}: the product of the finite A and B overflows f64 (an entry beyond 1.8e308), \
                 so C cannot be checked{not_written}",
                at / n,
                at % n,
                c[at]
            )
        } else if check.uncheckable {
            format!(
                "Freivalds' check cannot be made: row {} of A (B x) overflows f64 (entries too large to check C \
                 in double precision), so C is not verified{not_written}",
                check.worst_row
            )
        } else if check.passed {
            format!("Freivalds' check: C x equals A (B x) {how} for a random x")
        } else {
            format!(
                "Freivalds' check FAILED: row {} of C x differs from A (B x) by {:.3e} times the allowed error{not_written}",
                check.worst_row, check.worst_ratio
            )
        };
        let (pr, pc) = spmd::grid::shape(ranks);
        Ok(Finished {
            result: json!({
                "n": n,
                "gflops": if wall_s > 0.0 { flops / wall_s / 1e9 } else { 0.0 },
                "grid": match self.algorithm { Algorithm::Summa => Some(format!("{pr}x{pc}")), Algorithm::Rows => None },
                "freivalds_worst_ratio": check.worst_ratio,
                "c_digest": digest(&c),
                "c_trace": (0..n).map(|i| c[i * n + i]).sum::<f64>(),
                "output": self.out.as_ref().filter(|_| passed).map(|p| p.display().to_string()),
            }),
            verified: passed,
            verification,
            item: ("flops", flops),
            bytes_per_item: None,
            verify_s,
            output_s,
            outputs: c_file.into_iter().collect(),
        })
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// The report parameters of `pikernels matmul LINE...`.
    fn params(line: &[&str]) -> Value {
        let kernel = crate::jobs::parse(&[&["pikernels", "matmul"][..], line].concat()).expect("parses");
        let crate::jobs::Kernel::Matmul(a) = kernel else { panic!("not matmul") };
        SpmdJob::params(&Matmul::new(&a).expect("a valid matmul"))
    }

    #[test]
    fn the_report_spells_algorithm_and_entries_as_the_cli_and_as_before() {
        // The spellings of report schema 1 (the former string literals and `Entries::name()`).
        let algorithms = ["rows", "summa"];
        assert_eq!(Algorithm::value_variants().iter().map(|&a| value_name(a)).collect::<Vec<_>>(), algorithms);
        let entries = ["uniform", "integer"];
        assert_eq!(Entries::value_variants().iter().map(|&e| value_name(e)).collect::<Vec<_>>(), entries);
        for a in algorithms {
            assert_eq!(params(&["--algorithm", a])["algorithm"], a);
        }
        for e in entries {
            assert_eq!(params(&["--entries", e])["entries"], e);
        }
    }

    #[test]
    fn the_defaults_are_those_the_cli_had() {
        let want = json!({ "n": 2048, "algorithm": "rows", "entries": "uniform", "a": null, "b": null, "seed": 1 });
        assert_eq!(params(&[]), want);
        assert_eq!(params(&["--n", "1e3", "--seed", "9"])["n"], 1000);
    }
}
