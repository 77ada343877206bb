//! Jobs: a kernel's parameters, its compute over a range of units and its
//! final step, tied to the runtime by one flow ([`execute`]) shared by all.
//!
//! A run goes: CLI parsed and every parameter validated on every rank (no
//! MPI yet) → MPI up → per-rank resource checks, agreed job-wide → the
//! rayon pool starts → the strategy runs the work → rank 0 verifies, writes
//! outputs, reports (an unwritable standard output is a failure, exit 1).

mod leibniz;
mod mandelbrot;
mod matmul;
pub mod partial;
mod pi_mc;
mod sort;
mod transcode;

use crate::cli::{Command, Common};
use crate::output;
use crate::report::{Build, CoreUse, Report, Spread, Throughput, Timing, SCHEMA_VERSION};
use crate::spmd::{self, Spmd, Work};
use anyhow::Result;
use kernels::Tally;
use serde_json::Value;
use std::ops::{Range, RangeInclusive};
use std::process::ExitCode;

/// Exit status of a run whose own verification failed.
pub const EXIT_UNVERIFIED: u8 = 3;
/// Exit status of a usage error or a failed pre-flight check.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of a failure during the run.
pub const EXIT_FAILURE: u8 = 1;

/// One kernel run with validated parameters.
pub trait Job: Sync {
    /// Kernel name as on the command line.
    fn kernel(&self) -> &'static str;
    /// Parameters, for the report.
    fn params(&self) -> Value;
    /// Number of work units.
    fn units(&self) -> u64;
    /// Output bytes per unit (0 for scalar kernels).
    fn unit_bytes(&self) -> usize {
        0
    }
    /// Computes `units` into `out` and returns their tally.
    fn compute(&self, units: Range<u64>, out: &mut [u8]) -> Tally;
    /// Units per packed block when the job packs its computed bytes on the
    /// rank that computed them ([`Job::pack`]) instead of sending them as they
    /// are; `None` (the default) sends them as they are.
    fn pack_grain(&self) -> Option<u64> {
        None
    }
    /// Packs the computed bytes of `units` (starting at a multiple of
    /// [`Job::pack_grain`]); packed forms of consecutive ranges concatenate.
    /// [`Job::finish`] then receives the packed form of the whole.
    fn pack(&self, _units: Range<u64>, raw: &[u8]) -> Vec<u8> {
        raw.to_vec()
    }
    /// Checks this machine's resources for this rank's share; runs on every
    /// rank before any message.
    fn preflight(&self, _ctx: &Preflight) -> Result<()> {
        Ok(())
    }
    /// On rank 0: verifies the result, writes file outputs, describes the result.
    fn finish(&self, tally: Tally, data: Vec<u8>) -> Result<Finished>;
    /// For kernels whose data movement is not "units out, tally and bytes
    /// back" (a matrix multiply's broadcasts, a sort's all-to-all): run the
    /// whole distributed computation against the runtime and return what
    /// [`spmd::strategy::run`] would. `None` (the default) uses the generic
    /// strategies.
    fn run_spmd(&self, _spmd: &Spmd, _comm: spmd::Comm) -> Option<spmd::strategy::Outcome> {
        None
    }
    /// Whether `--partition` may cut this job into parts that `pikernels
    /// merge` combines: true only where the whole result is the tally
    /// (opt-in, so a kernel with its own data movement never runs a part as
    /// if it were the whole).
    fn partitionable(&self) -> bool {
        false
    }
    /// The files the job reads and writes (its own options; `--report` is
    /// added by the runtime), checked before any work for one file used twice.
    fn files(&self) -> Vec<output::FileUse> {
        Vec::new()
    }
    /// The tallies a part that computed `units` (in the job's numbering) can
    /// give: `pikernels merge` refuses a part whose tally lies outside, since
    /// a part is data from outside (edited, truncated, from another job).
    /// `None` (the default) for kernels that cannot be partitioned.
    fn tally_bounds(&self, _units: Range<u64>) -> Option<RangeInclusive<i128>> {
        None
    }
}

/// What a rank knows when it checks its resources.
pub struct Preflight {
    /// This rank.
    pub rank: usize,
    /// Number of ranks.
    pub size: usize,
    /// Communication strategy.
    pub comm: spmd::Comm,
    /// This rank's rayon threads.
    pub threads: usize,
}

impl Preflight {
    /// Whether this rank is rank 0.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// The most units one rank computes in one piece under the strategy,
    /// shares cut in grains of `grain` units.
    pub fn max_units_held(&self, units: u64, grain: u64) -> u64 {
        spmd::strategy::largest_share(self.comm, units, grain, self.size as u64)
    }
}

/// Rank 0's account of a finished job.
pub struct Finished {
    /// Kernel-specific result fields.
    pub result: Value,
    /// Whether verification passed.
    pub verified: bool,
    /// What verification checked.
    pub verification: String,
    /// The throughput item and how many were processed.
    pub item: (&'static str, f64),
    /// Seconds spent verifying.
    pub verify_s: f64,
    /// Seconds spent writing outputs.
    pub output_s: f64,
}

/// A usage error: printed once, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// The job a command line asks for; every parameter is checked here, before
/// MPI starts, identically on every rank.
pub fn from_cli(command: &Command) -> Result<Box<dyn Job>, UsageError> {
    // A SIMD path this CPU lacks is refused here, before any message, on
    // every rank alike (the kernels would otherwise panic mid-run).
    kernels::simd::from_env().map_err(UsageError)?;
    let job = kernel_from_cli(command)?;
    if let Some(common) = command.common() {
        partial::check(job.as_ref(), common)?;
        let mut files = job.files();
        files.extend(common.report.as_deref().map(|r| output::FileUse::writes("--report", r)));
        output::check_distinct(&files).map_err(UsageError)?;
    }
    Ok(job)
}

/// The kernel's own parameter checks.
fn kernel_from_cli(command: &Command) -> Result<Box<dyn Job>, UsageError> {
    match command {
        Command::List => Err(UsageError("'list' runs no job".into())),
        Command::PiMc(a) => Ok(Box::new(pi_mc::PiMc::new(a)?)),
        Command::Leibniz(a) => Ok(Box::new(leibniz::Leibniz::new(a)?)),
        Command::Mandelbrot(a) => Ok(Box::new(mandelbrot::Mandelbrot::new(a)?)),
        Command::Merge(_) => Err(UsageError("'merge' runs no job".into())),
        Command::Transcode(a) => Ok(Box::new(transcode::Transcode::new(a)?)),
        Command::Matmul(a) => Ok(Box::new(matmul::Matmul::new(a)?)),
        Command::Sort(a) => Ok(Box::new(sort::Sort::new(a)?)),
    }
}

/// Rejects `--out` for kernels that write no file.
fn no_file_output(kernel: &str, common: &Common) -> Result<(), UsageError> {
    match &common.out {
        Some(p) => Err(UsageError(format!(
            "{kernel} writes no file, so --out {} has nothing to write; to save the report use --report {}",
            p.display(),
            p.display()
        ))),
        None => Ok(()),
    }
}

/// Runs `job` on every rank and, on rank 0, prints the report.
pub fn execute(job: &dyn Job, common: &Common) -> ExitCode {
    let launch = spmd::Launch::from_env();
    spmd::deadline::arm(common.timeout, launch.rank as usize, launch.size as usize);
    let spmd = match Spmd::init(common.threads) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pikernels: error: cannot start MPI: {e:#}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };

    let ctx = Preflight { rank: spmd.rank(), size: spmd.size(), comm: common.comm, threads: spmd.threads() };
    // The thread count is checked against this rank's cores here, agreed
    // job-wide, not by the argument parser: ranks on different hosts (or
    // bound to different cores) may have different limits, and a rank that
    // refused alone would leave the others waiting.
    let local = crate::cli::check_threads(spmd.threads())
        .map_err(anyhow::Error::msg)
        .and_then(|()| job.preflight(&ctx))
        .and_then(|()| match (&common.report, spmd.is_root()) {
            (Some(path), true) => output::check_writable(path, "report"),
            _ => Ok(()),
        });
    if spmd.agree(local, |e| eprintln!("pikernels: error{}: {e:#}", spmd.whereabouts())).is_err() {
        return ExitCode::from(EXIT_USAGE);
    }
    if let Err(e) = spmd.start_pool() {
        eprintln!("pikernels: error{}: {e:#}", spmd.whereabouts());
        return ExitCode::from(EXIT_FAILURE);
    }

    let hosts = spmd.gather_hosts();
    if let Some(hosts) = &hosts {
        spmd::deadline::know_hosts(hosts);
    }
    // A partial run hands the runtime its part's units, renumbered from 0.
    let mine = partial::units(job, common.partition);
    let offset = mine.start;
    let compute = |units: Range<u64>, out: &mut [u8]| job.compute(units.start + offset..units.end + offset, out);
    let pack = |units: Range<u64>, raw: &[u8]| job.pack(units.start + offset..units.end + offset, raw);
    let work = Work {
        units: mine.end - mine.start,
        unit_bytes: job.unit_bytes(),
        compute: &compute,
        pack: job.pack_grain().map(|grain| spmd::strategy::Pack { grain, pack: &pack }),
    };
    spmd::deadline::phase("computing its share");
    let custom = if common.partition.is_none() { job.run_spmd(&spmd, common.comm) } else { None };
    let outcome = custom.unwrap_or_else(|| spmd::strategy::run(&spmd, common.comm, &work));
    spmd::deadline::phase("sending its statistics");
    let stats = spmd.gather_stats(outcome.stats);
    spmd::deadline::phase("verifying the result and writing outputs");

    let (Some(hosts), Some(stats), Some(data)) = (hosts, stats, outcome.data) else {
        return ExitCode::SUCCESS; // not rank 0: its part is done
    };
    let (finished, partial) = match common.partition {
        Some(part) => {
            let (f, p) = partial::finished(part, &mine, job.units(), outcome.tally);
            (Ok(f), Some(p))
        }
        None => (job.finish(outcome.tally, data), None),
    };
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pikernels: error{}: {e:#}", spmd.whereabouts());
            return ExitCode::from(EXIT_FAILURE);
        }
    };

    let compute_s = Spread::of(stats.iter().map(|s| s.compute_s).collect());
    let per_rank = Report::rows(&hosts, &stats);
    let cores = CoreUse::of(&per_rank);
    let (item, count) = finished.item;
    let report = Report {
        schema_version: SCHEMA_VERSION,
        kernel: job.kernel().into(),
        params: job.params(),
        ranks: spmd.size(),
        threads_per_rank: stats.iter().map(|s| s.threads as usize).max().unwrap_or(1),
        comm: common.comm,
        per_rank,
        nodes: cores.nodes,
        cores_used: cores.cores_used,
        oversubscribed: cores.oversubscribed,
        hosts,
        result: finished.result,
        verified: finished.verified,
        verification: finished.verification,
        timing: Timing {
            wall_s: outcome.wall_s,
            compute_s,
            comm_s: Spread::of(stats.iter().map(|s| s.comm_s).collect()),
            pack_s: Spread::of(stats.iter().map(|s| s.pack_s).collect()),
            verify_s: finished.verify_s,
            output_s: finished.output_s,
        },
        throughput: Throughput {
            item: item.into(),
            count,
            per_s: rate(count, outcome.wall_s),
            per_core_per_s: rate(count, cores.core_seconds),
        },
        build: Build::current(),
        partial,
    };
    let rendered = report.render(common.format);
    let printed = output::to_stdout(&rendered, "the report");
    if let Some(path) = &common.report {
        if let Err(e) = output::write_text(path, &rendered) {
            eprintln!("pikernels: error: {e:#}");
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    if let Err(e) = printed {
        // A full or closed standard output: the run's report is lost (unless
        // --report kept it), an ordinary failure rather than a panic.
        eprintln!("pikernels: error: {e:#}");
        return ExitCode::from(EXIT_FAILURE);
    }
    if report.verified || report.partial.is_some() {
        ExitCode::SUCCESS
    } else {
        eprintln!("pikernels: verification FAILED: {}", report.verification);
        ExitCode::from(EXIT_UNVERIFIED)
    }
}

fn rate(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count / seconds
    } else {
        0.0
    }
}

/// Times `f`, returning its value and the seconds it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let t = std::time::Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

/// One line per kernel, for `pikernels list`.
pub fn list() -> String {
    use clap::CommandFactory;
    let cmd = crate::cli::Cli::command();
    cmd.get_subcommands()
        .filter(|c| !matches!(c.get_name(), "list" | "help" | "merge"))
        .map(|c| format!("{:<12} {}\n", c.get_name(), c.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect()
}
