//! Process-count comparisons: `cargo bench --bench processes`.
//!
//! One criterion group per kernel over `mpirun -np 1, 2, ...` (up to the
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

/// One kernel's group: `args` run with one thread per rank, `items` the
/// throughput items one run processes.
fn group(c: &mut Criterion, name: &str, args: &[&str], items: u64) {
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
                        let mut all = args.to_vec();
                        all.extend(["--threads", "1", "--format", "json"]);
                        let run = util::mpirun(np, &all);
                        assert!(run.success(), "{run}");
                        let s = run.report()["timing"]["compute_s"]["max"].as_f64().expect("compute_s.max");
                        Duration::from_secs_f64(s)
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

fn processes(c: &mut Criterion) {
    group(c, "leibniz", &["leibniz", "--terms", "2e9"], 2_000_000_000);
    group(c, "pi-mc", &["pi-mc", "--samples", "5e8"], 500_000_000);
    let bg = [
        "mandelbrot",
        "--width",
        "4000",
        "--height",
        "4000",
        "--max-iter",
        "50",
        "--xmin",
        "-1.5",
        "--xmax",
        "0.5",
        "--ymin",
        "-1",
        "--ymax",
        "1",
        "--bailout",
        "2",
        "--escape-only",
    ];
    group(c, "mandelbrot-escape", &bg, 4000 * 4000);
    // Out of cache (128 MB a buffer), memory-bound: see docs/benchmarks.md.
    group(c, "heat", &["heat", "--size", "4000x4000", "--steps", "50", "--out", "/dev/null"], 4000 * 4000 * 50);
}

criterion_group!(benches, processes);
criterion_main!(benches);
