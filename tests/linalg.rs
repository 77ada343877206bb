//! matmul and sort (issue 4) under real `mpirun -np 1..4`: every variant
//! gives the same C and the same sorted keys, checked against references
//! computed here, and bad inputs are refused with one message.

use crate::util;

use kernels::matmul::{self, Entries, Which};
use npyz::WriterBuilder;
use std::path::Path;
use util::{files_in, json_run, mpirun, refused, tempdir};

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f64>) {
    let npy = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

const VARIANTS: [(&str, &str); 4] =
    [("rows", "collective"), ("rows", "p2p"), ("summa", "collective"), ("summa", "p2p")];

#[test]
fn matmul_c_is_bit_identical_for_every_variant_and_equals_the_naive_product() {
    // n = 67 divides evenly by none of 2, 3, 4; integer entries make C exact.
    let n = 67;
    let dir = tempdir();
    let a = matmul::generate(5, Which::A, n, Entries::Integer);
    let b = matmul::generate(5, Which::B, n, Entries::Integer);
    let want = matmul::multiply_naive(&a, &b, n);
    let mut digest = None;
    for np in 1..=4 {
        for (alg, comm) in VARIANTS {
            let out = dir.path().join(format!("c-{np}-{alg}-{comm}.npy"));
            let threads = if np == 2 { "2" } else { "1" };
            let r = json_run(
                np,
                &[
                    "matmul",
                    "--n",
                    "67",
                    "--entries",
                    "integer",
                    "--seed",
                    "5",
                    "--algorithm",
                    alg,
                    "--comm",
                    comm,
                    "--threads",
                    threads,
                    "--out",
                    out.to_str().unwrap(),
                ],
            );
            let (shape, c) = read_npy(&out);
            assert_eq!(shape, [67, 67]);
            assert!(c == want, "np={np} {alg} {comm}: C differs from the naive product");
            let d = r["result"]["c_digest"].clone();
            assert_eq!(*digest.get_or_insert(d.clone()), d, "np={np} {alg} {comm}");
            if alg == "summa" {
                let grid = ["1x1", "1x2", "1x3", "2x2"][np - 1];
                assert_eq!(r["result"]["grid"], grid);
            }
            assert!(r["result"]["gflops"].as_f64().unwrap() > 0.0);
        }
    }
    // Fewer rows than ranks: some ranks own no rows (rows) or empty blocks (summa).
    let tiny = json_run(1, &["matmul", "--n", "2", "--entries", "integer"])["result"]["c_digest"].clone();
    for (alg, comm) in VARIANTS {
        let r = json_run(4, &["matmul", "--n", "2", "--entries", "integer", "--algorithm", alg, "--comm", comm]);
        assert_eq!(r["result"]["c_digest"], tiny, "{alg} {comm}");
    }
    // Real-valued entries: every variant passes Freivalds' check.
    for (alg, comm) in VARIANTS {
        json_run(3, &["matmul", "--n", "50", "--algorithm", alg, "--comm", comm]);
    }
}

#[test]
fn matmul_reads_npy_inputs_and_rejects_bad_ones() {
    let dir = tempdir();
    let n = 23;
    let write = |name: &str, shape: &[u64], data: &[f64]| {
        let p = dir.path().join(name);
        let mut w = npyz::WriteOptions::<f64>::new()
            .default_dtype()
            .shape(shape)
            .writer(std::fs::File::create(&p).unwrap())
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        p.to_str().unwrap().to_string()
    };
    let a: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 101) as f64 / 16.0 - 3.0).collect();
    let b: Vec<f64> = (0..n * n).map(|i| ((i * 104_729) % 97) as f64 / 8.0 - 6.0).collect();
    let (pa, pb) = (write("a.npy", &[23, 23], &a), write("b.npy", &[23, 23], &b));
    let want = matmul::multiply_naive(&a, &b, n);
    for (np, alg) in [(1, "rows"), (3, "rows"), (4, "summa"), (3, "summa")] {
        let out = dir.path().join(format!("c-{np}-{alg}.npy"));
        json_run(np, &["matmul", "--a", &pa, "--b", &pb, "--algorithm", alg, "--out", out.to_str().unwrap()]);
        let (_, c) = read_npy(&out);
        // Entries are multiples of 1/128 with few bits: the product is exact too.
        assert!(c == want, "np={np} {alg}");
    }

    let small = write("small.npy", &[5, 5], &[1.0; 25]);
    let rect = write("rect.npy", &[4, 5], &[1.0; 20]);
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY but then nothing sensible").unwrap();
    let garbage = garbage.to_str().unwrap().to_string();
    let truncated = dir.path().join("truncated.npy");
    let bytes = std::fs::read(&pa).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let truncated = truncated.to_str().unwrap().to_string();
    let out_dir = tempdir();
    let out = out_dir.path().join("c.npy");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["matmul", "--n", "0"], 2, "--n must be at least 1"),
        (vec!["matmul", "--n", "50000"], 2, "too large"),
        (vec!["matmul", "--n", "-3"], 2, "negative"),
        (vec!["matmul", "--a", &pa, "--b", &small], 2, "same order"),
        (vec!["matmul", "--a", &rect, "--b", &rect], 2, "square"),
        (vec!["matmul", "--a", &garbage, "--b", &pb], 2, "not a readable .npy"),
        (vec!["matmul", "--a", "/nonexistent/a.npy", "--b", &pb], 2, "cannot read the matrix"),
        (vec!["matmul", "--a", &pa], 2, "required arguments were not provided"),
        (vec!["matmul", "--n", "8", "--comm", "dynamic"], 2, "dynamic does not apply"),
        // The header is fine, the body is short: found by rank 0 in pre-flight.
        (vec!["matmul", "--a", &truncated, "--b", &pb], 2, "cannot read the entries"),
    ];
    for (mut args, code, needle) in cases {
        args.extend(["--out", out]);
        let run = mpirun(3, &args);
        refused(&run, code, needle);
        assert!(files_in(out_dir.path()).is_empty(), "{args:?} left {:?}", files_in(out_dir.path()));
    }
}

fn sorted_reference(seed: u64, dist: kernels::sort::Dist, n: u64) -> Vec<u64> {
    let mut keys = kernels::sort::generate(seed, dist, n, 0..n);
    keys.sort_unstable();
    keys
}

fn read_keys(path: &Path) -> Vec<u64> {
    std::fs::read(path).unwrap().chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn sort_output_is_identical_for_any_process_count_and_skew_stays_balanced() {
    use kernels::sort::Dist;
    let dists = [
        ("uniform", Dist::Uniform),
        ("equal", Dist::Equal),
        ("sorted", Dist::Sorted),
        ("reverse", Dist::Reverse),
        ("few", Dist::Few),
        ("zipf", Dist::Zipf),
        ("npb-is", Dist::NpbIs),
    ];
    let n = 200_003u64; // divides evenly by none of 2, 3, 4
    let dir = tempdir();
    for (name, dist) in dists {
        let want = sorted_reference(3, dist, n);
        let mut checksum = None;
        let nps: &[usize] = if name == "uniform" || name == "equal" { &[1, 2, 3, 4] } else { &[1, 3, 4] };
        for &np in nps {
            let out = dir.path().join(format!("{name}-{np}.u64"));
            let r = json_run(
                np,
                &[
                    "sort",
                    "--keys",
                    "200003",
                    "--dist",
                    name,
                    "--seed",
                    "3",
                    "--threads",
                    "1",
                    "--out",
                    out.to_str().unwrap(),
                ],
            );
            assert!(read_keys(&out) == want, "{name} np={np}: output differs from the sorted input");
            let c = r["result"]["checksum"].clone();
            assert_eq!(*checksum.get_or_insert(c.clone()), c, "{name} np={np}");
            let per_rank: Vec<u64> =
                r["result"]["keys_per_rank"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(per_rank.iter().sum::<u64>(), n);
            // Ties are broken by position: even all-equal keys spread evenly.
            let most = *per_rank.iter().max().unwrap() as f64;
            assert!(most <= 1.1 * n as f64 / np as f64, "{name} np={np}: {per_rank:?}");
            assert_eq!(r["result"]["min"], want[0]);
            assert_eq!(r["result"]["max"], *want.last().unwrap());
        }
    }
    // Fewer keys than ranks.
    let r = json_run(4, &["sort", "--keys", "3"]);
    assert_eq!(r["result"]["keys_per_rank"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 3);
}

#[test]
fn sort_reads_raw_keys_and_rejects_bad_input() {
    let dir = tempdir();
    let keys: Vec<u64> = (0..10_007u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((i >> 3) % 5)).collect();
    let input = dir.path().join("in.u64");
    std::fs::write(&input, keys.iter().flat_map(|k| k.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let mut want = keys.clone();
    want.sort_unstable();
    for np in [1, 2, 3] {
        let out = dir.path().join(format!("out-{np}.u64"));
        let local = if np == 2 { "std" } else { "radix" };
        let r = json_run(
            np,
            &["sort", "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--local-sort", local],
        );
        assert_eq!(r["result"]["keys"], 10_007);
        assert!(read_keys(&out) == want, "np={np}");
    }
    // `--output` (the spelling) writes the same bytes as `--out`.
    let (by_out, by_output) = (dir.path().join("by-out.u64"), dir.path().join("by-output.u64"));
    json_run(2, &["sort", "--keys", "5000", "--dist", "zipf", "--out", by_out.to_str().unwrap()]);
    let r = json_run(2, &["sort", "--keys", "5000", "--dist", "zipf", "--output", by_output.to_str().unwrap()]);
    assert_eq!(r["result"]["output"], by_output.to_str().unwrap());
    let bytes = std::fs::read(&by_output).unwrap();
    assert_eq!(bytes.len(), 5000 * 8);
    assert!(bytes == std::fs::read(&by_out).unwrap(), "--output and --out differ");

    let odd = dir.path().join("odd.u64");
    std::fs::write(&odd, [0u8; 12]).unwrap();
    let empty = dir.path().join("empty.u64");
    std::fs::write(&empty, []).unwrap();
    let out_dir = tempdir();
    let out = out_dir.path().join("sorted.u64");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["sort", "--keys", "0"], "--keys must be at least 1"),
        (vec!["sort", "--keys", "1e13"], "2^40"),
        (vec!["sort", "--input", odd.to_str().unwrap()], "whole number of 8-byte keys"),
        (vec!["sort", "--input", empty.to_str().unwrap()], "holds no keys"),
        (vec!["sort", "--input", "/nonexistent/keys"], "cannot read the --input"),
        (vec!["sort", "--comm", "dynamic"], "dynamic does not apply"),
        (vec!["sort", "--keys", "1e12"], "cannot pass through rank 0"),
    ];
    // The same checks hold for `--output`.
    refused(
        &mpirun(3, &["sort", "--keys", "1e12", "--output", out.to_str().unwrap()]),
        2,
        "cannot pass through rank 0",
    );
    assert!(files_in(out_dir.path()).is_empty());
    for (mut args, needle) in cases {
        args.extend(["--out", out.to_str().unwrap()]);
        let run = mpirun(3, &args);
        refused(&run, 2, needle);
        assert!(files_in(out_dir.path()).is_empty(), "{args:?}");
    }
    // Without --out the same size passes validation and fails the memory check.
    refused(&mpirun(3, &["sort", "--keys", "1e12"]), 2, "needs about");
}
