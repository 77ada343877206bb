//! The options every kernel takes (`--comm`, `--threads`, `--format`, ...),
//! flattened into each kernel's arguments.

use crate::args::{parse_duration, parse_partition, parse_threads, Partition};
use crate::report::Format;
use crate::spmd::Comm;
use clap::Args;
use std::path::PathBuf;

/// Options every kernel takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// How work and results travel between ranks: collective (scatter/reduce/gather),
    /// p2p (the same with explicit send/receive), dynamic (rank 0 hands out chunks on request).
    #[arg(long, value_enum, default_value_t = Comm::Collective, help_heading = "Common options")]
    pub comm: Comm,
    /// Rayon threads per rank [default: the cores available to this rank, shared among the ranks on its node that may use them].
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_threads, help_heading = "Common options")]
    pub threads: Option<usize>,
    /// Report format on standard output.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = "Common options")]
    pub format: Format,
    /// Path of the kernel's file output (mandelbrot: the PNG, default mandelbrot.png).
    #[arg(long, short = 'o', value_name = "PATH", help_heading = "Common options")]
    pub out: Option<PathBuf>,
    /// Also write the report, in --format, to this file.
    #[arg(long, value_name = "PATH", help_heading = "Common options")]
    pub report: Option<PathBuf>,
    /// Seed of the deterministic random streams (of the kernels that draw random numbers).
    #[arg(long, value_name = "S", allow_hyphen_values = true, default_value_t = 1, help_heading = "Common options")]
    pub seed: u64,
    /// Compute only part INDEX of COUNT equal parts of the work (0-based, e.g. 2/8) and
    /// report its exact partial tally; `pikernels merge` combines the parts (kernels whose result is a tally).
    #[arg(long, value_name = "INDEX/COUNT", value_parser = parse_partition, help_heading = "Common options")]
    pub partition: Option<Partition>,
    /// End the whole job if it has not finished after DURATION (e.g. 90s, 2h, 1h30m, or
    /// seconds): one message names the ranks that had not finished, exit status 4.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Common options")]
    pub timeout: Option<std::time::Duration>,
    /// Progress on rank 0's standard error: a bar on a terminal and plain lines in a log
    /// (auto), or one of them, or none (off keeps logs clean).
    #[arg(long, value_enum, default_value_t = crate::progress::Style::Auto, help_heading = "Common options")]
    pub progress: crate::progress::Style,
    /// Keep finished work in the journal in DIR (created if missing, on rank 0's machine), so that
    /// rerunning the same command after a failure computes only what is missing, with the
    /// same result (pi-mc, leibniz, mandelbrot).
    #[arg(long, value_name = "DIR", help_heading = "Common options")]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint: about how much work each journal record holds, in run time
    /// (the most a failure can lose) [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Common options")]
    pub checkpoint_every: Option<std::time::Duration>,
    /// Time between progress lines (in a log, or with --progress lines).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s", help_heading = "Common options")]
    pub progress_every: std::time::Duration,
}
