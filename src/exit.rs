//! Exit statuses, and the error that carries one to `main`.
//!
//! Every path of a run returns `Result<(), Stop>`; `main` says the one line
//! a [`Stop`] carries and exits once with its status. The exception is a
//! line that must be out before the ranks part (a failed job-wide check, a
//! time limit): the rank that knows prints it, then stops with
//! [`Said::Already`] (see `spmd::Spmd::agree` and `spmd::deadline`).

use std::process::ExitCode;

/// The exit statuses of `pikernels` (README, "Exit status").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The run (or merge) finished and its result verified.
    Success = 0,
    /// A failure during the run: MPI, I/O, a tool, an unwritable output.
    Failure = 1,
    /// A usage error or a failed pre-flight check: nothing was computed.
    Usage = 2,
    /// The result's own verification failed.
    Unverified = 3,
    /// `--timeout` passed (ended by `spmd::deadline`, which exits itself).
    TimedOut = 4,
    /// A panic: a bug (the panic hook in `spmd` aborts the job with it;
    /// `sysexits.h`'s EX_SOFTWARE).
    Internal = 70,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// What was said, or is to be said, about a stop.
#[derive(Debug)]
pub enum Said {
    /// The message was printed where it had to be (before a barrier).
    Already,
    /// One line for standard error, said by `main`.
    Line(String),
    /// A command-line error found before MPI started, printed the way clap
    /// prints its own (usage hint included) by one rank of the job.
    Usage(clap::Error),
    /// A refusal of a value found before MPI started: `main` prints it as
    /// clap prints a value it refuses (with the usage hint), once for the job.
    Refusal(String),
}

/// Why a run stopped short of success: a status and what to say.
#[derive(Debug)]
pub struct Stop {
    /// The exit status.
    pub exit: Exit,
    /// The message.
    pub said: Said,
}

impl Stop {
    /// A usage error found before MPI started (exit 2).
    pub fn usage(message: impl Into<String>) -> Stop {
        Stop { exit: Exit::Usage, said: Said::Refusal(message.into()) }
    }

    /// A failure during the run (exit 1): `pikernels: error: MESSAGE`.
    pub fn failure(message: impl std::fmt::Display) -> Stop {
        Stop { exit: Exit::Failure, said: Said::Line(format!("pikernels: error: {message}")) }
    }

    /// A stop whose message is already out.
    pub fn said(exit: Exit) -> Stop {
        Stop { exit, said: Said::Already }
    }

    /// A stop with its own whole line.
    pub fn line(exit: Exit, line: String) -> Stop {
        Stop { exit, said: Said::Line(line) }
    }
}
