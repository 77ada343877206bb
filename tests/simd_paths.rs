//! The AVX-512 paths (where the CPU has them) and the portable paths give the
//! same bits end to end, and `mandelbrot --escape-only` is decomposition-free
//! and checked against the reference. `PIKERNELS_SIMD=portable` forces the
//! portable paths (on CPUs without AVX-512 both runs take them).

mod util;

use serde_json::Value;
use std::process::Command;
use util::{bin, mpi_env, mpirun, run, TIMEOUT};

fn report(portable: bool, args: &[&str]) -> Value {
    let mut cmd = Command::new(bin());
    mpi_env(&mut cmd).args(args).args(["--format", "json"]);
    if portable {
        cmd.env(kernels::ENV_SIMD, "portable");
    }
    let r = run(cmd, TIMEOUT);
    assert!(r.success(), "{args:?}:\n{r}");
    let rep = r.report();
    assert_eq!(rep["verified"], true, "{r}");
    if portable {
        assert!(rep["build"]["isa"].as_str().unwrap().contains("portable"), "{r}");
    }
    rep
}

#[test]
fn paths_agree_on_every_kernel() {
    let cases: [(&[&str], &str); 4] = [
        (&["pi-mc", "--samples", "3000017", "--seed", "9"], "hits"),
        (&["leibniz", "--terms", "5000011"], "pi"),
        (&["mandelbrot", "--width", "203", "--height", "64", "--no-output", "--bailout", "2"], "total_iterations"),
        (&["mandelbrot", "--width", "203", "--height", "64", "--escape-only"], "total_iterations"),
    ];
    for (args, field) in cases {
        let fast = report(false, args);
        let portable = report(true, args);
        assert_eq!(fast["result"][field], portable["result"][field], "{args:?}");
    }
}

#[test]
fn escape_only_is_identical_for_any_rank_count() {
    let args = [
        "mandelbrot",
        "--width",
        "640",
        "--height",
        "333",
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
        "--format",
        "json",
    ];
    let one = report(false, &args[..args.len() - 2]);
    assert_eq!(one["params"]["escape_only"], true);
    assert_eq!(one["result"]["png_bytes"], Value::Null, "escape-only writes no image");
    assert!(one["verification"].as_str().unwrap().contains("iteration totals"));
    for (np, comm) in [(2, "collective"), (3, "dynamic"), (2, "p2p")] {
        let mut a = args.to_vec();
        a.extend(["--comm", comm]);
        let r = mpirun(np, &a);
        assert!(r.success(), "{r}");
        let rep = r.report();
        assert_eq!(rep["verified"], true, "{r}");
        assert_eq!(rep["result"]["total_iterations"], one["result"]["total_iterations"], "np={np} {comm}");
    }
}

#[test]
fn escape_only_conflicts_with_image_options() {
    for extra in [["--out", "x.png"], ["--banded", "--no-output"]] {
        let mut a = vec!["mandelbrot", "--escape-only"];
        a.extend(extra);
        let r = util::direct(&a);
        assert_eq!(r.code, Some(2), "{r}");
    }
}
