//! `pikernels`: one SPMD binary, one subcommand per kernel.
//!
//! The binary is thin: parse the command line on every rank (no MPI yet, so a
//! usage error never leaves a rank waiting), then hand the job to the runtime.

mod cli;
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

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

fn main() -> ExitCode {
    let launch = spmd::Launch::from_env();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Every rank parses the same arguments and exits the same way; one prints.
            let code = e.exit_code().clamp(0, 255) as u8;
            if code == 0 {
                // --help, --version: nothing failed, nobody waits.
                if launch.is_root() {
                    let _ = e.print();
                }
            } else {
                launch.refuse(|| {
                    let _ = e.print();
                });
            }
            return ExitCode::from(code);
        }
    };
    if let cli::Command::List = cli.command {
        if launch.is_root() {
            if let Err(e) = output::to_stdout(&jobs::list(), "the list of kernels") {
                eprintln!("pikernels: error: {e:#}");
                return ExitCode::from(jobs::EXIT_FAILURE);
            }
        }
        return ExitCode::SUCCESS;
    }
    if let cli::Command::Merge(args) = &cli.command {
        // No MPI: it reads the parts' reports. Started under a launcher anyway,
        // rank 0 alone merges (so it prints once); the others have nothing to do.
        return if launch.is_root() { merge::run(args) } else { ExitCode::SUCCESS };
    }
    let job = match jobs::from_cli(&cli.command) {
        Ok(job) => job,
        Err(jobs::UsageError(msg)) => {
            launch.refuse(|| {
                let _ = cli::Cli::command().error(clap::error::ErrorKind::ValueValidation, msg).print();
            });
            return ExitCode::from(jobs::EXIT_USAGE);
        }
    };
    let common = cli.command.common().expect("a kernel command has common options");
    jobs::execute(job.as_ref(), common)
}
