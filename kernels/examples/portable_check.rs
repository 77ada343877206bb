//! Checks the kernels on the calling thread alone and prints one digest line
//! per kernel, for comparing platforms bit for bit: `scripts/arm64-check.sh`
//! runs it natively (AVX-512 where the CPU has it) and cross-built for
//! aarch64 under `qemu-aarch64` (the portable paths, NEON), and requires the
//! same digests. Everything runs in a one-thread rayon pool that uses the
//! calling thread, because qemu-user here cannot start threads.
//!
//! Each check also compares a kernel with its plain reference on this
//! platform, so a wrong result fails here even where there is nothing to
//! compare with.

use kernels::heat;
use kernels::mandelbrot::{self, Params, Region};
use kernels::matmul::{self, Entries, View, Which};
use kernels::sort::{self, Dist, Fingerprint, LocalSort};
use kernels::{leibniz, pi_mc};

fn main() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).use_current_thread().build().expect("a pool");
    pool.install(|| {
        // pi-mc: units in parallel form against the sequential reference.
        let samples = 3 * pi_mc::UNIT + 12_345;
        let hits = pi_mc::count_inside(7, samples, 0..pi_mc::units(samples)).to_count().expect("a count");
        assert_eq!(hits, pi_mc::count_inside_seq(7, samples), "pi-mc: units against the reference");
        println!("pi-mc hits {hits}");

        // leibniz: the folded groups against the term-by-term sum.
        let terms = 3 * leibniz::UNIT + 1001;
        let pi = leibniz::pi_from(leibniz::sum_units(terms, 0..leibniz::units(terms)));
        assert!((pi - leibniz::pi_seq(terms)).abs() < 1e-13, "leibniz: groups against the reference");
        println!("leibniz pi bits {:016x}", pi.to_bits());

        // mandelbrot: every row of two pictures against the scalar reference.
        let bg = Region { xmin: -1.5, xmax: 0.5, ymin: -1.0, ymax: 1.0 };
        for p in [
            Params { width: 203, height: 61, ..Params::SEED },
            Params { width: 256, height: 64, max_iter: 50, bailout: 2.0, region: bg, ..Params::SEED },
        ] {
            let mut img = vec![0u8; p.image_bytes() as usize];
            let total = mandelbrot::render_rows(&p, 0..u64::from(p.height), &mut img);
            for row in 0..p.height {
                let at = row as usize * p.row_bytes();
                let (want, _) = mandelbrot::render_row_reference(&p, row);
                assert_eq!(&img[at..at + p.row_bytes()], &want[..], "mandelbrot: row {row} against the reference");
            }
            let digest = img.iter().fold(0u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            println!(
                "mandelbrot {}x{} iterations {} image {digest:016x}",
                p.width,
                p.height,
                total.to_count().unwrap()
            );
        }

        // sort: generated keys, sorted, against the multiset and the order.
        for (dist, name) in [(Dist::Uniform, "uniform"), (Dist::Zipf, "zipf")] {
            let keys = sort::generate(11, dist, 100_003, 0..100_003);
            // The bucket radix sort (on arm64 its plain line writes, not
            // x86-64's streamed ones) against the standard library's sort.
            let mut sorted = keys.clone();
            sort::sort_local(&mut sorted);
            let mut want = keys.clone();
            sort::sort_local_with(LocalSort::Std, &mut want, &mut Default::default());
            assert!(sorted == want && Fingerprint::of(&sorted) == Fingerprint::of(&keys), "sort");
            let f = Fingerprint::of(&keys);
            println!("sort {name} fingerprint {:016x} {:016x}", f.sum1, f.sum2);
        }

        // matmul: faer's GEMM against the naive product, exactly, on integers.
        let n = 67;
        let a = matmul::generate(3, Which::A, n, Entries::Integer);
        let b = matmul::generate(3, Which::B, n, Entries::Integer);
        let mut c = vec![0.0; n * n];
        matmul::gemm(&mut c, View::dense(&a, n, n), View::dense(&b, n, n), false, 1);
        assert_eq!(c, matmul::multiply_naive(&a, &b, n), "matmul: GEMM against the naive product");
        println!("matmul trace {}", (0..n).map(|i| c[i * n + i]).sum::<f64>());

        // heat: the stepped field on this platform's path against the plain
        // sequential reference, bit for bit, both initial fields.
        for init in [heat::Init::Modes, heat::Init::Hotspot] {
            let p = heat::Params { cols: 67, rows: 45, steps: 60, r: 0.2, init };
            let field = heat::evolve(&p);
            let want = heat::reference(&p, 0..p.rows, 0..p.cols);
            assert!(
                field.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                "heat: field against the reference"
            );
            println!("heat {init:?} 67x45 60 steps field {}", kernels::digest(&field));
        }
    });
    println!("portable check passed on {} ({})", std::env::consts::ARCH, kernels::simd::path().name());
}
