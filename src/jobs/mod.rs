//! Jobs: the kernel registry, and each kernel's command-line arguments,
//! parameter checks, run and final step (one file per kernel).
//!
//! [`registry!`] below is the one list of kernels: it declares their
//! modules and produces the subcommands ([`Kernel`]), `pikernels list`, the
//! dispatch from arguments to a [`Job`] and the rebuild of a job from a
//! report's parameters (`pikernels merge`). A kernel is added by writing
//! `src/jobs/NAME.rs` (its `Args` and `job()`), its compute in the kernels
//! crate, and one line here.
//!
//! A run goes: CLI parsed and every parameter validated on every rank (no
//! MPI yet) → MPI up → per-rank resource checks, agreed job-wide → the
//! rayon pool starts → the job runs in its shape ([`shape`]) → rank 0
//! verifies, writes outputs, reports ([`run::execute`]).

mod common;
pub mod examples;
pub mod partial;
pub mod run;
pub mod shape;

pub use common::Common;
pub use shape::{Finished, Job, Preflight, Ran, SpmdJob, UnitJob};

use crate::exit::Stop;
use crate::output;

/// The kernels: one line each, `Variant(module) = "subcommand"`, with the
/// one-line description `pikernels list` and `--help` show. The module is
/// `src/jobs/<module>.rs`, holding `pub struct Args` (its flags, with the
/// common options flattened in as `common`) and `pub fn job(&Args) ->
/// Result<Job, UsageError>`.
macro_rules! registry {
    ($( $(#[doc = $about:literal])+ $variant:ident($module:ident) = $name:literal, )+) => {
        $( mod $module; )+

        /// A kernel and its arguments: one subcommand each.
        #[derive(Debug, clap::Subcommand)]
        pub enum Kernel {
            $( $(#[doc = $about])+ #[command(name = $name)] $variant($module::Args), )+
        }

        impl Kernel {
            /// Every kernel's name, in the registry's order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The kernel's name, as on the command line and in reports.
            pub fn name(&self) -> &'static str {
                match self { $( Kernel::$variant(_) => $name, )+ }
            }

            /// The options every kernel takes.
            pub fn common(&self) -> &Common {
                match self { $( Kernel::$variant(a) => &a.common, )+ }
            }

            /// The kernel's own parameter checks: its job.
            fn job(&self) -> Result<Job, UsageError> {
                match self { $( Kernel::$variant(a) => $module::job(a), )+ }
            }
        }

        /// Every kernel's examples, by name, in the registry's order.
        const EXAMPLES: &[(&str, examples::Examples)] = &[$( ($name, $module::EXAMPLES), )+];
    };
}

registry! {
    /// Monte Carlo pi: the fraction of random points in a square inside its inscribed disc.
    PiMc(pi_mc) = "pi-mc",
    /// Leibniz series pi: 4 (1 - 1/3 + 1/5 - ...), summed over N terms.
    Leibniz(leibniz) = "leibniz",
    /// Mandelbrot set: render a smooth-coloured PNG (rank 0 writes it).
    Mandelbrot(mandelbrot) = "mandelbrot",
    /// Video transcoding: rank 0 splits the input at keyframes, ranks transcode segments with ffmpeg.
    Transcode(transcode) = "transcode",
    /// Dense matrix multiply C = A B (f64): row blocks or SUMMA, verified by Freivalds' check.
    Matmul(matmul) = "matmul",
    /// 2-D heat diffusion: explicit 5-point steps with halo exchange on a process grid, a PNG heat map.
    Heat(heat) = "heat",
    /// Sample sort of u64 keys across ranks, verified sorted and multiset-preserving.
    Sort(sort) = "sort",
}

/// A usage error: printed once, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// A kernel's refusal of its parameters, its field named by its flag
/// (`max_iter` is `--max-iter`: flags are the fields' names in kebab case).
impl From<kernels::Invalid> for UsageError {
    fn from(e: kernels::Invalid) -> UsageError {
        UsageError(match e.param {
            Some(field) => format!("--{} {}", field.replace('_', "-"), e.problem),
            None => e.problem,
        })
    }
}

impl From<UsageError> for Stop {
    fn from(e: UsageError) -> Stop {
        Stop::usage(e.0)
    }
}

/// The job a kernel's command line asks for; every parameter is checked
/// here, before MPI starts, identically on every rank.
pub fn from_cli(kernel: &Kernel) -> Result<Job, UsageError> {
    let job = kernel.job()?;
    let common = kernel.common();
    partial::check(kernel.name(), &job, common)?;
    check_checkpoint(kernel.name(), &job, common)?;
    let mut files = job.files();
    files.extend(common.report.as_deref().map(|r| output::FileUse::writes("--report", r)));
    output::check_distinct(&files).map_err(UsageError)?;
    Ok(job)
}

/// The kernels whose parts `--partition` may cut and `merge` combine, by
/// name: those whose job, as its defaults describe it, is partitionable.
pub fn partitionable_kernels() -> Vec<&'static str> {
    Kernel::NAMES
        .iter()
        .copied()
        .filter(|name| {
            let job = parse(&["pikernels", name]).ok().and_then(|k| k.job().ok());
            job.is_some_and(|j| j.partitionable().is_some())
        })
        .collect()
}

/// A kernel's command line (`pikernels KERNEL --flag value ...`) parsed as
/// the binary parses it (the same `Kernel` subcommands), for rebuilding a job
/// from a report's parameters without the binary's whole command line.
pub fn parse<S: AsRef<std::ffi::OsStr> + Clone + Into<std::ffi::OsString>>(argv: &[S]) -> Result<Kernel, clap::Error> {
    #[derive(clap::Parser)]
    #[command(name = "pikernels")]
    struct One {
        #[command(subcommand)]
        kernel: Kernel,
    }
    <One as clap::Parser>::try_parse_from(argv).map(|one| one.kernel)
}

/// `--checkpoint` applies to the jobs whose units it can keep; its interval
/// only with it.
fn check_checkpoint(kernel: &str, job: &Job, common: &Common) -> Result<(), UsageError> {
    match (&common.checkpoint, common.checkpoint_every, job) {
        (None, Some(_), _) => Err(UsageError("--checkpoint-every applies with --checkpoint DIR: give both".into())),
        (Some(dir), _, job) if !job.resumes() => Err(UsageError(format!(
            "--checkpoint {}: {kernel} cannot resume yet: its work is not cut into units that finish on their own \
             (checkpoints are kept by pi-mc, leibniz, mandelbrot and heat); run it without --checkpoint",
            dir.display()
        ))),
        (Some(dir), _, _) if dir.to_string_lossy().contains(['\n', '\r']) => Err(UsageError(format!(
            "--checkpoint {:?}: a line break in the directory's name would break the report's lines: give a \
             path without one",
            dir
        ))),
        _ => Ok(()),
    }
}

/// On rank 0, after the journal's directory is claimed (so it exists): no
/// file the run writes may be in it, where it could replace the journal's
/// files. Part of the job-wide pre-flight (a check made on every rank before
/// MPI would read each node's own disk, and ranks could disagree).
pub fn check_outside_journal(dir: &std::path::Path, job: &Job, common: &Common) -> anyhow::Result<()> {
    let journal = std::fs::canonicalize(dir)?;
    let mut files = job.files();
    files.extend(common.report.as_deref().map(|r| output::FileUse::writes("--report", r)));
    for f in files.iter().filter(|f| f.writes) {
        let parent = f.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if std::fs::canonicalize(parent).is_ok_and(|p| p == journal) {
            anyhow::bail!(
                "{} {} is in the --checkpoint directory {}, which holds the journal only: write it elsewhere",
                f.option,
                f.path.display(),
                dir.display()
            );
        }
    }
    Ok(())
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

/// Times `f`, returning its value and the seconds it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let t = std::time::Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

/// One line per kernel, for `pikernels list`.
pub fn list() -> String {
    listed().iter().map(|k| format!("{:<12} {}\n", k.name, k.about)).collect()
}

/// Every kernel with its description, whether it is partitionable and its
/// examples: `pikernels list --format json`, which the scripts read.
pub fn listed() -> Vec<examples::Listed> {
    use clap::Subcommand;
    let partitionable = partitionable_kernels();
    let cmd = Kernel::augment_subcommands(clap::Command::new("pikernels"));
    EXAMPLES
        .iter()
        .map(|&(name, examples)| examples::Listed {
            name,
            about: cmd.find_subcommand(name).and_then(|c| c.get_about()).map(|a| a.to_string()).unwrap_or_default(),
            partitionable: partitionable.contains(&name),
            examples,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Report parameters that are not flags, in report schema version 1:
    /// mandelbrot's `smooth` is the negation of `--banded`.
    const NOT_FLAGS: &[(&str, &str)] = &[("mandelbrot", "smooth")];

    #[test]
    fn every_report_parameter_is_a_flag_of_its_kernel() {
        let cli = crate::cli::Cli::command();
        let mut checked = 0;
        for name in Kernel::NAMES {
            // Kernels whose defaults make a job (transcode needs an input file).
            let Ok(kernel) = parse(&["pikernels", name]) else { continue };
            let Ok(job) = kernel.job() else { continue };
            let sub = cli.find_subcommand(name).expect("every registered kernel is a subcommand");
            let params = job.params();
            for key in params.as_object().expect("params are an object").keys() {
                let flag = key.replace('_', "-");
                let is_flag = sub.get_arguments().any(|a| a.get_long() == Some(flag.as_str()));
                assert!(is_flag || NOT_FLAGS.contains(&(name, key.as_str())), "{name}: report key {key} is no flag");
            }
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} kernels made a job from their defaults");
    }

    #[test]
    fn the_registry_names_every_subcommand_but_list_and_merge() {
        let cli = crate::cli::Cli::command();
        let mut names: Vec<&str> =
            cli.get_subcommands().map(|c| c.get_name()).filter(|n| !["list", "merge", "help"].contains(n)).collect();
        names.sort_unstable();
        let mut registered = Kernel::NAMES.to_vec();
        registered.sort_unstable();
        assert_eq!(names, registered);
        assert_eq!(list().lines().count(), Kernel::NAMES.len());
        assert_eq!(partitionable_kernels(), ["pi-mc", "leibniz"]);
    }
}
