//! The command line: the kernels' subcommands (from the registry in `jobs`,
//! each with the options every kernel takes, `jobs::Common`), `list` and
//! `merge`.
//!
//! Defaults come from the kernels crate and the runtime (one place for each
//! fact); this module only describes and parses (the parsers themselves are
//! in `args`).

use crate::jobs::Kernel;
use crate::report::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// MPI-style SPMD kernels with verified results that are identical for any process count.
///
/// Run with no launcher for one rank using all cores, or under a launcher:
/// `mpirun -np 4 pikernels mandelbrot`. Rank 0 prints one report.
#[derive(Debug, Parser)]
#[command(name = "pikernels", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The kernel to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands: the kernels (from the registry in `jobs`), `list` and `merge`.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum Command {
    /// List the kernels with a one-line description each (--format json: with their examples).
    List(ListArgs),
    #[command(flatten)]
    Kernel(Kernel),
    /// Combine the partial reports of `--partition I/N` runs into one verified result.
    Merge(MergeArgs),
}

/// Options of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// text: one line per kernel; json: every kernel with whether it is partitionable and the
    /// small and benchmark runs the scripts cover it with.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// How `list` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// One line per kernel.
    Text,
    /// A JSON array, one object per kernel.
    Json,
}

/// Options of `merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The JSON reports of the parts (`--partition I/N --format json`), every part exactly once.
    #[arg(value_name = "PART.json", required = true)]
    pub parts: Vec<PathBuf>,
    /// Report format on standard output.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the merged report, in --format, to this file.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn negative_region_bounds_parse() {
        let cli = Cli::try_parse_from(["pikernels", "mandelbrot", "--xmin", "-1.5", "--xmax", "0.5"]).unwrap();
        let Command::Kernel(Kernel::Mandelbrot(m)) = cli.command else { panic!() };
        assert_eq!((m.xmin, m.xmax), (Some(-1.5), Some(0.5)));
    }
}
