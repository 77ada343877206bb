//! `pikernels`: one SPMD binary, one subcommand per kernel.
//!
//! The binary is thin: parse the command line on every rank (no MPI yet, so a
//! usage error never leaves a rank waiting), then hand the job to the runtime.

mod cli;
mod jobs;
mod npy;
mod output;
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
            if launch.is_root() {
                let _ = e.print();
            } else {
                let_root_speak_first();
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if let cli::Command::List = cli.command {
        if launch.is_root() {
            print!("{}", jobs::list());
        }
        return ExitCode::SUCCESS;
    }
    let job = match jobs::from_cli(&cli.command) {
        Ok(job) => job,
        Err(jobs::UsageError(msg)) => {
            if launch.is_root() {
                let e = cli::Cli::command().error(clap::error::ErrorKind::ValueValidation, msg);
                let _ = e.print();
            } else {
                let_root_speak_first();
            }
            return ExitCode::from(jobs::EXIT_USAGE);
        }
    };
    let common = cli.command.common().expect("a kernel command has common options");
    jobs::execute(job.as_ref(), common)
}

/// On a usage error every rank exits 2 before MPI starts, but only rank 0
/// prints. mpirun kills the whole job as soon as the first rank exits
/// non-zero, which could cut rank 0's message short; the other ranks
/// therefore wait a moment so that rank 0 exits first.
fn let_root_speak_first() {
    std::thread::sleep(std::time::Duration::from_millis(300));
}
