//! The one flow every run takes, whatever the kernel's shape.
//!
//! Every rank (the time limit already armed): MPI up → this rank's resources
//! checked and the result agreed job-wide → the rayon pool → the job's run
//! → statistics to rank 0. Rank 0 then finishes the job (verifies, writes
//! outputs) and prints the report.

use super::Common;
use super::{Job, Preflight};
use crate::exit::{Exit, Stop};
use crate::output;
use crate::report::{Assembly, Build, Report};
use crate::spmd::{self, Spmd};

/// Runs `job` (of kernel `kernel`) on every rank and, on rank 0, prints the
/// report. `main` has armed the time limit (before the inputs were read).
pub fn execute(kernel: &'static str, job: &Job, common: &Common) -> Result<(), Stop> {
    let spmd = Spmd::init(common.threads).map_err(|e| Stop::failure(format!("cannot start MPI: {e:#}")))?;
    let mut phases = job.phases(common.partition);
    preflight(&spmd, phases.as_mut(), common)?;
    spmd.start_pool().map_err(|e| failure_at(&spmd, e))?;
    let hosts = spmd.gather_hosts();
    if let Some(hosts) = &hosts {
        spmd::deadline::know_hosts(hosts);
    }
    spmd::deadline::phase("computing its share");
    crate::progress::choose(common.progress, common.progress_every);
    let ran = phases.run(&spmd, common.comm);
    spmd::deadline::phase("sending its statistics");
    let stats = spmd.gather_stats(ran.stats);
    spmd::deadline::phase("verifying the result and writing outputs");
    let (Some(hosts), Some(stats)) = (hosts, stats) else {
        return Ok(()); // not rank 0: its part is done
    };
    let (finished, partial) = phases.finish().map_err(|e| failure_at(&spmd, e))?;
    let report = Report::assemble(Assembly {
        kernel: kernel.into(),
        params: job.params(),
        comm: common.comm,
        per_rank: Report::rows(&hosts, &stats),
        hosts,
        finished,
        wall_s: ran.wall_s,
        build: Build::current(kernel, job.implementation()),
        partial,
    });
    publish(&report, common.format, common.report.as_deref(), "pikernels")
}

/// The job-wide pre-flight: this rank's thread count and resources, and
/// rank 0's report path, agreed by every rank before any work.
fn preflight(spmd: &Spmd, phases: &mut dyn super::shape::Phases, common: &Common) -> Result<(), Stop> {
    let ctx = Preflight { rank: spmd.rank(), size: spmd.size(), comm: common.comm, threads: spmd.threads() };
    // The thread count is checked against this rank's cores here, agreed
    // job-wide, not by the argument parser: ranks on different hosts (or
    // bound to different cores) may have different limits, and a rank that
    // refused alone would leave the others waiting.
    let local = spmd::threads::check_threads(spmd.threads())
        .map_err(anyhow::Error::msg)
        .and_then(|()| phases.preflight(&ctx))
        .and_then(|()| match (&common.report, spmd.is_root()) {
            (Some(path), true) => output::check_writable(path, "report"),
            _ => Ok(()),
        });
    spmd.agree(local, |e| eprintln!("pikernels: error{}: {e:#}", spmd.whereabouts()))
        .map_err(|_| Stop::said(Exit::Usage))
}

/// A failure of this rank during the run, naming the rank when there are several.
fn failure_at(spmd: &Spmd, e: anyhow::Error) -> Stop {
    Stop::line(Exit::Failure, format!("pikernels: error{}: {e:#}", spmd.whereabouts()))
}

/// Prints `report` on standard output and writes it to `--report`; a
/// report that is not verified (and not a part's) ends with exit 3.
/// `program` names who speaks in messages (`pikernels`, `pikernels merge`).
pub fn publish(
    report: &Report,
    format: crate::report::Format,
    path: Option<&std::path::Path>,
    program: &str,
) -> Result<(), Stop> {
    let rendered = report.render(format);
    let printed = output::to_stdout(&rendered, "the report");
    if let Some(path) = path {
        output::write_text(path, &rendered)
            .map_err(|e| Stop::line(Exit::Failure, format!("{program}: error: {e:#}")))?;
    }
    // A full or closed standard output: the run's report is lost (unless
    // --report kept it), an ordinary failure rather than a panic.
    printed.map_err(|e| Stop::line(Exit::Failure, format!("{program}: error: {e:#}")))?;
    if report.verified || report.partial.is_some() {
        Ok(())
    } else {
        Err(Stop::line(Exit::Unverified, format!("{program}: verification FAILED: {}", report.verification)))
    }
}
