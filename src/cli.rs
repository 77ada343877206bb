//! The command line: one subcommand per kernel, common options shared by all.
//!
//! Defaults come from the kernels crate and the runtime (one place for each
//! fact); this module only describes and parses.

use crate::jobs::Kernel;
use crate::report::Format;
use crate::spmd::Comm;
use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// List the kernels with a one-line description each.
    List,
    #[command(flatten)]
    Kernel(Kernel),
    /// Combine the partial reports of `--partition I/N` runs into one verified result.
    Merge(MergeArgs),
}

impl Command {
    /// The kernel this command runs (`None` for `list` and `merge`).
    pub fn kernel(&self) -> Option<&Kernel> {
        match self {
            Command::Kernel(k) => Some(k),
            Command::List | Command::Merge(_) => None,
        }
    }
}

/// The name clap gives a value of a `--flag VALUE` enum: the one spelling
/// of that value on the command line and in reports.
pub fn value_name<T: ValueEnum>(value: T) -> String {
    value.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
}

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
    /// Time between progress lines (in a log, or with --progress lines).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s", help_heading = "Common options")]
    pub progress_every: std::time::Duration,
}

/// Part `index` of `count` equal parts of a job's work (`--partition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Which part, from 0.
    pub index: u64,
    /// How many parts.
    pub count: u64,
}

/// The most parts a job may be cut into; more is surely a typo.
pub const MAX_PARTITIONS: u64 = 1 << 20;

fn parse_partition(s: &str) -> Result<Partition, String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("'{s}' is not INDEX/COUNT, e.g. 0/4"))?;
    let num = |v: &str, what: &str| v.trim().parse::<u64>().map_err(|_| format!("{what} '{v}' is not a whole number"));
    let (index, count) = (num(i, "INDEX")?, num(n, "COUNT")?);
    if count == 0 || count > MAX_PARTITIONS {
        return Err(format!("COUNT must be between 1 and {MAX_PARTITIONS}, not {count}"));
    }
    if index >= count {
        return Err(format!("INDEX counts from 0, so part {index} of {count} does not exist (0..={})", count - 1));
    }
    Ok(Partition { index, count })
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

/// The most threads a rank may ask for per core it may use. The kernels
/// keep every thread busy, so past one per core threads only queue for a
/// core; a few more allow oversubscription experiments, and this many is
/// surely a typo. It also bounds the pool's start: rayon's idle workers
/// search each other's queues (crossbeam's epoch walks every thread's entry),
/// a cost that grows faster than the square of the thread count: on 2 cores a
/// one-sample pi-mc took 0.4 s with 32 threads, 1.4 s with 1024, 8 s with
/// 2048 and 51 s with 4096.
pub const THREADS_PER_CORE: usize = 16;

/// The cores this rank may use (its affinity mask and cgroup CPU quota, as
/// `available_parallelism` reads them) and the most threads it may run:
/// [`THREADS_PER_CORE`] per core.
pub fn max_threads() -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores, cores.saturating_mul(THREADS_PER_CORE))
}

/// Checks `--threads` against this rank's cores. Run in the job-wide
/// pre-flight, not by the parser: ranks may differ (see `jobs::execute`).
pub fn check_threads(n: usize) -> Result<(), String> {
    let (cores, most) = max_threads();
    if n > most {
        return Err(format!(
            "--threads {n} is more than {THREADS_PER_CORE} for each of the {cores} core{} this rank may use \
             (at most {most})",
            if cores == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|_| format!("'{s}' is not a whole number of threads"))?;
    match n {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// The longest duration a time limit may be: 30 days; more is surely a typo.
pub const MAX_DURATION_S: f64 = 30.0 * 86_400.0;

/// A time limit such as `90s`, `2h`, `1h30m`, `1.5m`, `500ms`, or plain seconds
/// (`600`, as `activeDeadlineSeconds` counts). Written here rather than taken
/// from `humantime`, which refuses plain seconds and fractions.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let text = s.trim();
    let bad = || format!("'{s}' is not a duration: give e.g. 90s, 2h, 1h30m, 500ms or plain seconds");
    if text.is_empty() {
        return Err(bad());
    }
    let mut seconds = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "" if digits == text.len() => 1.0,
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        seconds += value * scale;
    }
    if seconds <= 0.0 {
        return Err(format!("'{s}' is not a positive duration"));
    }
    if seconds > MAX_DURATION_S {
        return Err(format!("'{s}' is longer than the supported 30 days"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

pub fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let (x, y) = s.split_once(',').ok_or_else(|| format!("'{s}' is not X,Y (two numbers separated by a comma)"))?;
    let num = |v: &str| v.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    match (num(x), num(y)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err(format!("'{s}' is not X,Y with two finite numbers")),
    }
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
        let Some(Kernel::Mandelbrot(m)) = cli.command.kernel() else { panic!() };
        assert_eq!((m.xmin, m.xmax), (Some(-1.5), Some(0.5)));
    }

    #[test]
    fn thread_and_point_parsers_explain() {
        assert!(parse_threads("0").unwrap_err().contains("at least 1"));
        assert!(parse_threads("x").unwrap_err().contains("whole number"));
        let (cores, most) = max_threads();
        assert_eq!(most, cores * THREADS_PER_CORE);
        assert_eq!(check_threads(most), Ok(()));
        let refused = check_threads(most + 1).unwrap_err();
        assert!(
            refused.contains(&format!("--threads {} is more than 16 for each of the {cores} core", most + 1)),
            "{refused}"
        );
        assert!(refused.contains(&format!("(at most {most})")), "{refused}");
        assert_eq!(parse_point("-0.5, 0.25"), Ok((-0.5, 0.25)));
        assert!(parse_point("1").is_err());
        assert!(parse_point("nan,1").is_err());
    }

    #[test]
    fn durations_parse_and_explain() {
        use std::time::Duration;
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "s", "10x", "-5s", "1h-", "1..5s", "h1", "1 h"] {
            assert!(parse_duration(bad).unwrap_err().contains("not a duration"), "{bad}");
        }
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
        assert!(parse_duration("31d").unwrap_err().contains("30 days"));
        assert!(parse_duration("1e308").is_err());
    }

    #[test]
    fn partitions_parse_and_explain() {
        assert_eq!(parse_partition("2/8"), Ok(Partition { index: 2, count: 8 }));
        assert!(parse_partition("8/8").unwrap_err().contains("does not exist"));
        assert!(parse_partition("0/0").unwrap_err().contains("COUNT"));
        assert!(parse_partition("3").unwrap_err().contains("INDEX/COUNT"));
        assert!(parse_partition("a/2").unwrap_err().contains("whole number"));
    }
}
