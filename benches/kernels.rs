//! In-process benchmarks of each kernel's compute across rayon thread counts
//! (no MPI): `cargo bench --bench kernels`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::{leibniz, mandelbrot, pi_mc};

fn threads() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut t = vec![1];
    while t.last().unwrap() * 2 <= cores {
        t.push(t.last().unwrap() * 2);
    }
    if *t.last().unwrap() != cores {
        t.push(cores);
    }
    t
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("thread pool")
}

fn bench_pi_mc(c: &mut Criterion) {
    let samples = 1u64 << 26;
    let mut g = c.benchmark_group("pi-mc");
    g.throughput(Throughput::Elements(samples));
    for t in threads() {
        let pool = pool(t);
        g.bench_with_input(BenchmarkId::new("threads", t), &t, |b, _| {
            b.iter(|| pool.install(|| pi_mc::count_inside(1, samples, 0..pi_mc::units(samples))))
        });
    }
    g.finish();
}

fn bench_leibniz(c: &mut Criterion) {
    let terms = 1u64 << 27;
    let mut g = c.benchmark_group("leibniz");
    g.throughput(Throughput::Elements(terms));
    for t in threads() {
        let pool = pool(t);
        g.bench_with_input(BenchmarkId::new("threads", t), &t, |b, _| {
            b.iter(|| pool.install(|| leibniz::sum_units(terms, 0..leibniz::units(terms))))
        });
    }
    g.finish();
}

fn bench_mandelbrot(c: &mut Criterion) {
    let p = mandelbrot::Params { width: 800, height: 800, ..mandelbrot::Params::SEED };
    let mut out = vec![0u8; p.image_bytes() as usize];
    let mut g = c.benchmark_group("mandelbrot");
    g.throughput(Throughput::Elements(u64::from(p.width) * u64::from(p.height)));
    for t in threads() {
        let pool = pool(t);
        g.bench_with_input(BenchmarkId::new("threads", t), &t, |b, _| {
            b.iter(|| pool.install(|| mandelbrot::render_rows(&p, 0..u64::from(p.height), &mut out)))
        });
    }
    g.finish();
}

/// The escape-time kernel alone on the Benchmarks Game region (a 2000x2000
/// cut of its 16000x16000 image size), counting pixel-iterations.
fn bench_mandelbrot_escape(c: &mut Criterion) {
    let region = mandelbrot::Region { xmin: -1.5, xmax: 0.5, ymin: -1.0, ymax: 1.0 };
    let p = mandelbrot::Params {
        width: 2000,
        height: 2000,
        max_iter: 50,
        bailout: 2.0,
        region,
        ..mandelbrot::Params::SEED
    };
    let rows = 0..u64::from(p.height);
    let mut out = vec![0u8; p.height as usize * mandelbrot::ESCAPE_ROW_BYTES];
    let iterations = mandelbrot::escape_rows(&p, rows.clone(), &mut out).to_count().expect("a count");
    let mut g = c.benchmark_group("mandelbrot-escape");
    g.throughput(Throughput::Elements(iterations));
    for t in threads() {
        let pool = pool(t);
        g.bench_with_input(BenchmarkId::new("threads", t), &t, |b, _| {
            b.iter(|| pool.install(|| mandelbrot::escape_rows(&p, rows.clone(), &mut out)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_pi_mc, bench_leibniz, bench_mandelbrot, bench_mandelbrot_escape);
criterion_main!(benches);
