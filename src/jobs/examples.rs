//! What the scripts and benchmarks that cover every kernel need of it,
//! declared once, by the kernel's own job file (`pub const EXAMPLES`), and
//! read by them through `pikernels list --format json`: the MPI matrix
//! (`scripts/mpi_matrix.py`) runs every small example on every MPI, the
//! SIMD path table (`scripts/bench_paths.py`) and the process-count
//! benchmark (`benches/processes.rs`) every bench example. A new kernel is
//! covered by all three once its job file declares its examples; a unit
//! test below fails for a kernel that declares none and says not why.

use serde::Serialize;

/// One invocation of a kernel: its flags after the kernel's name.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Example {
    /// What this invocation shows beside the kernel's others ("p2p",
    /// "collective, depth 2"; empty for a kernel's only one).
    pub label: &'static str,
    /// The flags, after the kernel's name (never `--threads`, `--format`
    /// or the output flag: the scripts add those).
    pub args: &'static [&'static str],
}

/// A kernel's examples.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Examples {
    /// The flag that names the file the kernel writes, if it writes one
    /// (the matrix compares the files' bytes across MPIs).
    pub output: Option<&'static str>,
    /// Small runs, a second or two at `-np 1` to `3`, no input file: their
    /// results and files must be identical on every MPI and process count.
    pub small: &'static [Example],
    /// Benchmark runs: about a second of compute on one core, writing no
    /// file (`--no-output`, `/dev/null`).
    pub bench: &'static [Example],
    /// Whether its hot loop has a path per instruction set (`PIKERNELS_SIMD`
    /// chooses): the path table compares them.
    pub simd_paths: bool,
    /// Why `small` is empty, where it is (an input only the user has).
    pub no_small_because: Option<&'static str>,
    /// The result keys that describe the run (where it wrote, its rates,
    /// its process grid, its share per rank) rather than what it computed:
    /// left out where two runs' results are compared (the MPI matrix, the
    /// MPIJob emulations); every other key is the same for any process
    /// count, thread count, `--comm` and MPI.
    pub run_keys: &'static [&'static str],
}

/// One kernel as `pikernels list --format json` gives it.
#[derive(Debug, Serialize)]
pub struct Listed {
    /// The subcommand.
    pub name: &'static str,
    /// The one-line description.
    pub about: String,
    /// Whether `--partition` may cut it and `merge` combine the parts.
    pub partitionable: bool,
    /// Its examples.
    #[serde(flatten)]
    pub examples: Examples,
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn every_kernel_declares_small_examples_or_why_not_and_each_parses() {
        for listed in listed() {
            let ex = listed.examples;
            assert!(
                !ex.small.is_empty() || ex.no_small_because.is_some(),
                "{}: no small example for the MPI matrix, and no reason given (no_small_because)",
                listed.name
            );
            assert!(
                ex.small.is_empty() || ex.no_small_because.is_none(),
                "{}: both examples and a reason",
                listed.name
            );
            for e in ex.small.iter().chain(ex.bench) {
                let mut argv = vec!["pikernels", listed.name];
                argv.extend(e.args);
                let kernel = parse(&argv).unwrap_or_else(|err| panic!("{} {:?}: {err}", listed.name, e.args));
                let job = kernel.job().unwrap_or_else(|err| panic!("{} {:?}: {}", listed.name, e.args, err.0));
                let writes = job.files().iter().any(|f| f.writes && !f.path.starts_with("/dev"));
                let common = kernel.common();
                assert!(common.threads.is_none(), "{} {:?}: the scripts set --threads", listed.name, e.args);
                if ex.bench.iter().any(|b| std::ptr::eq(b, e)) {
                    // A benchmark writes nothing a run could keep.
                    assert!(!writes, "{} bench {:?} writes a file", listed.name, e.args);
                } else {
                    assert!(common.out.is_none(), "{} {:?}: the matrix names the output", listed.name, e.args);
                    // The output flag names a file the job writes; without one, none.
                    let named = ex.output.map_or(Ok(writes), |flag| {
                        let mut with = argv.clone();
                        with.extend([flag, "matrix.out"]);
                        let job = parse(&with).map_err(|e| e.to_string())?.job().map_err(|e| e.0)?;
                        Ok::<bool, String>(job.files().iter().any(|f| f.writes && f.option == flag))
                    });
                    assert_eq!(
                        named,
                        Ok(ex.output.is_some()),
                        "{} {:?}: output flag {:?}",
                        listed.name,
                        e.args,
                        ex.output
                    );
                }
            }
            let mut labels: Vec<_> = ex.small.iter().map(|e| e.label).collect();
            labels.sort_unstable();
            labels.dedup();
            assert_eq!(labels.len(), ex.small.len(), "{}: two small examples share a label", listed.name);
        }
    }
}
