//! `pikernels`: one SPMD binary, one subcommand per kernel.
//!
//! The binary is thin: parse the command line on every rank (no MPI yet, so a
//! usage error never leaves a rank waiting), then hand the job to the runtime.

mod animation;
mod args;
mod checkpoint;
mod cli;
mod exit;
mod jobs;
mod media;
mod merge;
mod npy;
mod output;
mod png;
mod progress;
mod report;
mod signals;
mod size;
mod spmd;

use clap::Parser;
use exit::{Said, Stop};
use std::process::ExitCode;

fn main() -> ExitCode {
    let launch = spmd::Launch::from_env();
    match run(&launch) {
        Ok(()) => ExitCode::SUCCESS,
        Err(stop) => {
            say(launch, stop.said);
            stop.exit.into()
        }
    }
}

/// The command line's subcommand, run; every way it can end short of
/// success comes back as a [`Stop`].
fn run(launch: &spmd::Launch) -> Result<(), Stop> {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version: nothing failed, nobody waits; rank 0 prints.
        Err(e) if e.exit_code() == 0 => {
            if launch.is_root() {
                let _ = e.print();
            }
            return Ok(());
        }
        Err(e) => return Err(Stop { exit: exit::Exit::Usage, said: Said::Usage(e) }),
    };
    // A SIMD path this CPU lacks is refused here, before any message, on
    // every rank alike and for every subcommand (the kernels would panic
    // mid-run; `list` and `merge` would run on a path the user did not get).
    kernels::simd::from_env().map_err(Stop::usage)?;
    match &cli.command {
        cli::Command::List(args) if launch.is_root() => {
            let text = match args.format {
                cli::ListFormat::Text => jobs::list(),
                cli::ListFormat::Json => {
                    serde_json::to_string_pretty(&jobs::listed()).expect("the list serialises") + "\n"
                }
            };
            output::to_stdout(&text, "the list of kernels").map_err(|e| Stop::failure(format!("{e:#}")))
        }
        // No MPI: it reads the parts' reports. Started under a launcher anyway,
        // rank 0 alone merges (so it prints once); the others have nothing to do.
        cli::Command::Merge(args) if launch.is_root() => merge::run(args),
        cli::Command::List(_) | cli::Command::Merge(_) => Ok(()),
        cli::Command::Kernel(kernel) => {
            // The limit covers everything after parsing: the checks below
            // read input files, which can block (a FIFO, a dead network mount).
            spmd::deadline::arm(kernel.common().timeout, launch.rank as usize, launch.size as usize);
            spmd::deadline::phase("reading and checking its inputs");
            launch.check_environment().map_err(Stop::usage)?;
            let job = jobs::from_cli(kernel)?;
            jobs::run::execute(kernel.name(), &job, kernel.common())
        }
    }
}

/// Says what stopped the run, once for the job.
fn say(launch: spmd::Launch, said: Said) {
    match said {
        Said::Already => {}
        Said::Line(line) => eprintln!("{line}"),
        // Every rank parses the same arguments and stops the same way; one prints.
        Said::Usage(e) => launch.refuse(|| {
            let _ = e.print();
        }),
        Said::Refusal(message) => launch.refuse(|| {
            use clap::CommandFactory;
            let _ = cli::Cli::command().error(clap::error::ErrorKind::ValueValidation, message).print();
        }),
    }
}
