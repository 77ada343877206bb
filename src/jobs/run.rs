//! The one flow every run takes, whatever the kernel's shape.
//!
//! Every rank (the time limit already armed): MPI up → this rank's resources
//! checked and the result agreed job-wide → the rayon pool → the job's run
//! → statistics to rank 0. Rank 0 then finishes the job (verifies, writes
//! outputs) and prints the report.

use super::Common;
use super::{Job, Preflight};
use crate::exit::{Exit, Said, Stop};
use crate::output;
use crate::report::{Assembly, Build, Report};
use crate::spmd::{self, Spmd};

/// Runs `job` (of kernel `kernel`) on every rank and, on rank 0, prints the
/// report. `main` has armed the time limit (before the inputs were read).
pub fn execute(kernel: &'static str, job: &Job, common: &Common) -> Result<(), Stop> {
    let spmd = Spmd::init(common.threads).map_err(|e| Stop::failure(format!("cannot start MPI: {e:#}")))?;
    let ran = run_on(&spmd, kernel, job, common);
    if spmd.losses().is_empty() {
        return ran; // MPI is finalised as `spmd` drops
    }
    // The job went on without a lost rank: its last words now, then MPI
    // finalised under a limit (spmd::ending::finalize_within says why).
    let ran = ran.map_err(|stop| match stop.said {
        Said::Line(line) => {
            eprintln!("{line}");
            Stop::said(stop.exit)
        }
        _ => stop,
    });
    spmd::ending::finalize_within(ran.as_ref().map_or_else(|stop| stop.exit as i32, |()| 0));
    ran
}

/// [`execute`] once MPI is up.
fn run_on(spmd: &Spmd, kernel: &'static str, job: &Job, common: &Common) -> Result<(), Stop> {
    let resume = common.checkpoint.clone().map(|dir| super::shape::Resume {
        dir,
        every: common.checkpoint_every.unwrap_or(super::shape::CHECKPOINT_EVERY),
        kernel,
    });
    let mut phases = job.phases(common.partition, resume);
    preflight(spmd, phases.as_mut(), job, common)?;
    spmd.start_pool().map_err(|e| failure_at(spmd, e))?;
    let hosts = spmd.gather_hosts();
    if let Some(hosts) = &hosts {
        spmd::deadline::know_hosts(hosts);
    }
    spmd::deadline::phase("computing its share");
    crate::progress::choose(common.progress, common.progress_every);
    let ran = phases.run(spmd, common.comm);
    spmd::deadline::phase("sending its statistics");
    let stats = spmd.gather_stats(ran.stats);
    spmd::deadline::phase("verifying the result and writing outputs");
    let (Some(hosts), Some(stats)) = (hosts, stats) else {
        return Ok(()); // not rank 0: its part is done
    };
    let (mut finished, partial) = phases.finish().map_err(|e| failure_at(spmd, e))?;
    let outputs = std::mem::take(&mut finished.outputs);
    let lost = spmd
        .losses()
        .into_iter()
        .map(|l| crate::report::LostRank {
            rank: l.rank,
            host: hosts.get(l.rank).cloned().unwrap_or_default(),
            chunks_redone: l.chunks_redone,
            units_redone: l.units_redone,
        })
        .collect();
    let report = Report::assemble(Assembly {
        kernel: kernel.into(),
        params: job.params(),
        comm: common.comm,
        per_rank: Report::rows(&hosts, spmd.started_as(), &stats),
        hosts,
        finished,
        wall_s: ran.wall_s,
        build: Build::current(kernel, job.implementation()),
        partial,
        checkpoint: phases.checkpoint(),
        lost,
    });
    publish(&report, common.format, common.report.as_deref(), "pikernels", outputs)
}

/// The job-wide pre-flight: this rank's thread count and resources, and
/// rank 0's report path, agreed by every rank before any work.
fn preflight(spmd: &Spmd, phases: &mut dyn super::shape::Phases, job: &Job, common: &Common) -> Result<(), Stop> {
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
        })
        .and_then(|()| match (&common.checkpoint, spmd.is_root()) {
            (Some(dir), true) => super::check_outside_journal(dir, job, common),
            _ => Ok(()),
        });
    spmd.agree(local, |e| eprintln!("pikernels: error{}: {e:#}", spmd.whereabouts()))
        .map_err(|_| Stop::said(Exit::Usage))
}

/// A failure of this rank during the run, naming the rank when there are several.
fn failure_at(spmd: &Spmd, e: anyhow::Error) -> Stop {
    Stop::line(Exit::Failure, format!("pikernels: error{}: {e:#}", spmd.whereabouts()))
}

/// Writes `report` to `--report`, puts the job's `outputs` and that file in
/// place, then prints the report on standard output; a report that is not
/// verified (and not a part's) ends with exit 3. A `--report` that cannot be
/// written ends the run with exit 1 and none of its outputs (they are
/// dropped uncommitted, and so removed); standard output is where the report
/// is shown, not an output: a failure there is exit 1 with the files in place.
/// `program` names who speaks in messages (`pikernels`, `pikernels merge`).
pub fn publish(
    report: &Report,
    format: crate::report::Format,
    path: Option<&std::path::Path>,
    program: &str,
    outputs: Vec<output::Staged>,
) -> Result<(), Stop> {
    let failed = |e: anyhow::Error| Stop::line(Exit::Failure, format!("{program}: error: {e:#}"));
    let rendered = report.render(format);
    let report_file = match path {
        Some(path) => {
            Some(output::stage(path, |w| Ok(std::io::Write::write_all(w, rendered.as_bytes())?)).map_err(failed)?)
        }
        None => None,
    };
    for staged in outputs.into_iter().chain(report_file) {
        staged.commit().map_err(failed)?;
    }
    // A full or closed standard output: an ordinary failure rather than a panic.
    output::to_stdout(&rendered, "the report").map_err(failed)?;
    if report.verified || report.partial.is_some() {
        Ok(())
    } else {
        Err(Stop::line(Exit::Unverified, format!("{program}: verification FAILED: {}", report.verification)))
    }
}
