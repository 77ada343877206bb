//! In-process benchmarks of each kernel's compute across rayon thread counts
//! (no MPI): `cargo bench --bench kernels`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::heat::{self, Block, Stores};
use kernels::simd::{dispatch, Kernel, Lanes};
use kernels::{leibniz, mandelbrot, pi_mc};
use std::time::{Duration, Instant};

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

/// The Benchmarks Game region at 2000x2000 (a cut of its 16000x16000 image
/// size), 50 iterations, escape radius 2.
fn benchmarks_game_cut() -> mandelbrot::Params {
    let region = mandelbrot::Region { xmin: -1.5, xmax: 0.5, ymin: -1.0, ymax: 1.0 };
    mandelbrot::Params { width: 2000, height: 2000, max_iter: 50, bailout: 2.0, region, ..mandelbrot::Params::SEED }
}

/// The escape-time kernel alone on [`benchmarks_game_cut`], counting
/// pixel-iterations.
fn bench_mandelbrot_escape(c: &mut Criterion) {
    let p = benchmarks_game_cut();
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

/// The coloured picture against its escape loop alone, one thread, same
/// picture ([`benchmarks_game_cut`]): the target is the coloured
/// compute at most 1.3x the escape-only compute. Both time the kernel only
/// (no packing, no rank), so their ratio is the colouring's own cost;
/// `scripts/bench_paths.py` gives the same ratio through the whole job.
fn bench_mandelbrot_colour(c: &mut Criterion) {
    let p = benchmarks_game_cut();
    let rows = 0..u64::from(p.height);
    let mut counts = vec![0u8; p.height as usize * mandelbrot::ESCAPE_ROW_BYTES];
    let mut rgb = vec![0u8; p.image_bytes() as usize];
    let pool = pool(1);
    let mut g = c.benchmark_group("mandelbrot-colour");
    g.throughput(Throughput::Elements(u64::from(p.width) * u64::from(p.height)));
    g.bench_function("escape-only/threads/1", |b| {
        b.iter(|| pool.install(|| mandelbrot::escape_rows(&p, rows.clone(), &mut counts)))
    });
    g.bench_function("coloured/threads/1", |b| {
        b.iter(|| pool.install(|| mandelbrot::render_rows(&p, rows.clone(), &mut rgb)))
    });
    g.finish();
}

/// Elements of each triad array: 8 Mi doubles, 64 MiB, so the three arrays
/// (192 MiB) are six times this machine's 32 MiB L3.
const TRIAD_LEN: usize = 8 << 20;

/// Heat's grid for the memory group: 4000 x 4000 cells, 128 MB per buffer.
const HEAT_SIDE: usize = 4000;

/// Bytes the triad loop moves per element: two 8-byte reads and one 8-byte
/// write (STREAM's convention: the write-allocate read of `a` is not counted).
const TRIAD_BYTES: u64 = 24;

/// Bytes heat's step moves per cell update, by the same convention.
const HEAT_BYTES: u64 = heat::BYTES_PER_CELL_UPDATE;

/// STREAM's triad, `a[i] = b[i] + s * c[i]`, on the calling thread.
fn triad(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
        *a = b + s * c;
    }
}

/// The triad with `a` written by non-temporal stores where the CPU has them
/// ([`Lanes::stream_f64s`], as heat's streamed step writes): `a`'s lines
/// are not read before being written, 24 bytes of real traffic per element
/// instead of 32. The machine's bandwidth is the better of the two triads.
struct StreamedTriad<'a> {
    a: &'a mut [f64],
    b: &'a [f64],
    c: &'a [f64],
    s: f64,
}

impl Kernel for StreamedTriad<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Lanes>(self, simd: S) {
        let StreamedTriad { a, b, c, s } = self;
        let (n, w) = (a.len(), S::F64_LANES);
        let head = a.as_ptr().align_offset(std::mem::size_of::<S::f64s>()).min(n);
        triad(&mut a[..head], &b[..head], &c[..head], s);
        let sv = simd.splat_f64s(s);
        let mut k = head;
        while k + w <= n {
            let v = simd.mul_add_f64s(sv, simd.load_f64s(&c[k..k + w]), simd.load_f64s(&b[k..k + w]));
            simd.stream_f64s(&mut a[k..k + w], v);
            k += w;
        }
        simd.stream_fence();
        triad(&mut a[k..], &b[k..], &c[k..], s);
    }
}

/// Seconds of CPU time the calling thread has used.
fn thread_cpu_s() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Memory bandwidth on one thread: the triad (plain and streamed stores)
/// against heat's step on a grid far out of cache (which streams its stores
/// at this size, `heat::Stores::for_len`; its plain-store step beside it),
/// each as bytes per second (`TRIAD_BYTES`, `HEAT_BYTES` per element or
/// cell). Criterion reports each one's GB/s (wall time); then an
/// interleaved run (rounds of each loop in turn) prints the best of each and
/// heat's rate as a fraction of the better triad's, the figure issue 17 asks
/// for (at least 80 %), timed by the thread's CPU time, which on a shared
/// machine leaves out the turns other processes take on the core (every
/// loop runs on the calling thread), and by wall time beside it.
fn bench_heat_memory(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).use_current_thread().build().expect("thread pool");
    let (mut a, b, cc) = (vec![0.0; TRIAD_LEN], vec![1.0; TRIAD_LEN], vec![2.0; TRIAD_LEN]);
    let p = heat::Params { cols: HEAT_SIDE, rows: HEAT_SIDE, steps: 1, r: 0.2, init: heat::Init::Modes };
    let blk = Block { h: p.rows, w: p.cols, g: 1 };
    let cur = one.install(|| blk.initial(&p, 0..p.rows, 0..p.cols));
    let mut next = cur.clone();
    let stores = Stores::for_len(blk.len());
    let path = kernels::simd::path();
    let mut g = c.benchmark_group("heat-memory");
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(TRIAD_BYTES * TRIAD_LEN as u64));
    g.bench_function("triad/threads/1", |bn| bn.iter(|| triad(&mut a, &b, &cc, 3.0)));
    g.bench_function("triad-streamed/threads/1", |bn| {
        bn.iter(|| dispatch(StreamedTriad { a: &mut a, b: &b, c: &cc, s: 3.0 }))
    });
    g.throughput(Throughput::Bytes(HEAT_BYTES * p.cells()));
    g.bench_function("heat-step/threads/1", |bn| {
        bn.iter(|| one.install(|| heat::step_block(blk, &cur, &mut next, p.r)))
    });
    g.bench_function("heat-step-cached/threads/1", |bn| {
        bn.iter(|| one.install(|| heat::step_block_on(path, Stores::Cached, blk, &cur, &mut next, p.r)))
    });
    g.finish();

    // Best (CPU, wall) seconds of `f` so far.
    let time = |f: &mut dyn FnMut(), best: &mut (f64, f64)| {
        let (cpu, wall) = (thread_cpu_s(), Instant::now());
        f();
        *best = (best.0.min(thread_cpu_s() - cpu), best.1.min(wall.elapsed().as_secs_f64()));
    };
    let mut t = [(f64::INFINITY, f64::INFINITY); 4];
    const ROUNDS: usize = 40;
    for _ in 0..ROUNDS {
        time(&mut || triad(&mut a, &b, &cc, 3.0), &mut t[0]);
        time(&mut || dispatch(StreamedTriad { a: &mut a, b: &b, c: &cc, s: 3.0 }), &mut t[1]);
        time(&mut || one.install(|| heat::step_block(blk, &cur, &mut next, p.r)), &mut t[2]);
        let cached = &mut || one.install(|| heat::step_block_on(path, Stores::Cached, blk, &cur, &mut next, p.r));
        time(cached, &mut t[3]);
    }
    let gb_s = |bytes: u64, s: f64| bytes as f64 / s / 1e9;
    let (triad_bytes, heat_bytes) = (TRIAD_BYTES * TRIAD_LEN as u64, HEAT_BYTES * p.cells());
    for (clock, pick) in [("CPU time", 0), ("wall time", 1)] {
        let s = |k: usize| if pick == 0 { t[k].0 } else { t[k].1 };
        let (plain, streamed) = (gb_s(triad_bytes, s(0)), gb_s(triad_bytes, s(1)));
        let (step, cached) = (gb_s(heat_bytes, s(2)), gb_s(heat_bytes, s(3)));
        let best = plain.max(streamed);
        println!(
            "heat-memory, one thread, interleaved, best of {ROUNDS} by {clock}: triad {plain:.2} GB/s, \
             streamed triad {streamed:.2} GB/s; heat step ({stores:?} stores) {step:.2} GB/s, with plain stores \
             {cached:.2} GB/s; heat/triad {:.1} % (against the better triad; plain stores: {:.1} %)",
            100.0 * step / best,
            100.0 * cached / best
        );
    }
}

criterion_group!(
    benches,
    bench_pi_mc,
    bench_leibniz,
    bench_mandelbrot,
    bench_mandelbrot_escape,
    bench_mandelbrot_colour,
    bench_heat_memory
);
criterion_main!(benches);
