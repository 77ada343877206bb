//! Process-count comparisons: `cargo bench --bench processes`.
//!
//! One criterion group per benchmark run of every kernel (as `pikernels list
//! --format json` gives them: each kernel declares them once) over `mpirun -np 1, 2, ...` (up to the
//! cores available). Each sample is the kernel's own compute time from the
//! JSON report (the slowest rank's `timing.compute_s.max`), taken with
//! `iter_custom`, so mpirun's launch (about 0.3 s here, far more than the
//! compute) does not drown the signal. Runs go through `tests/util`, which
//! puts every launch under a timeout and kills the process group on expiry.

// The integration tests' helpers; this bench uses a few of them.
#[path = "../tests/util/mod.rs"]
#[allow(dead_code)]
mod util;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::time::Duration;

/// Rank counts: 1, 2, 4, ... up to the cores this machine has (at least 1, 2).
fn ranks() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    std::iter::successors(Some(1), |n| Some(n * 2)).take_while(|&n| n <= cores).collect()
}

/// One case's group: `args` run with one thread per rank; the throughput
/// is the items one run processes, from one run's report at `-np 1`.
fn group(c: &mut Criterion, name: &str, args: &[&str]) {
    let with = |np: usize| {
        let mut all = args.to_vec();
        all.extend(["--threads", "1", "--format", "json"]);
        let run = util::mpirun(np, &all);
        assert!(run.success(), "{run}");
        run.report()
    };
    let items = with(1)["throughput"]["count"].as_f64().expect("throughput.count") as u64;
    let mut g = c.benchmark_group(format!("np/{name}"));
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(items));
    for np in ranks() {
        g.bench_with_input(BenchmarkId::new("ranks", np), &np, |b, &np| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let s = with(np)["timing"]["compute_s"]["max"].as_f64().expect("compute_s.max");
                        Duration::from_secs_f64(s)
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

/// Every kernel's benchmark runs, as the binary lists them (each kernel
/// declares them once, in its job file).
fn processes(c: &mut Criterion) {
    let out =
        std::process::Command::new(util::bin()).args(["list", "--format", "json"]).output().expect("pikernels list");
    assert!(out.status.success(), "pikernels list --format json failed");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the list is JSON");
    for kernel in listed.as_array().expect("an array") {
        let name = kernel["name"].as_str().expect("a name");
        for example in kernel["bench"].as_array().expect("bench runs") {
            let label = example["label"].as_str().expect("a label");
            let mut args = vec![name];
            args.extend(example["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("an argument")));
            let case = if label.is_empty() { name.to_string() } else { format!("{name}-{label}") };
            group(c, &case, &args);
        }
    }
}

criterion_group!(benches, processes);
criterion_main!(benches);
