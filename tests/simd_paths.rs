//! Every SIMD path this CPU has (`PIKERNELS_SIMD=avx512|avx2|neon|scalar`)
//! gives the same bits end to end (heat: its whole field's digest), the
//! report names the path that ran, a path the CPU lacks or an unknown name
//! is a usage error listing what the CPU supports, and `mandelbrot
//! --escape-only` is decomposition-free and checked against the reference.

use crate::util;

use serde_json::Value;
use std::process::Command;
use util::{bin, mpi_env, mpirun, run, TIMEOUT};

/// The report of one run on `path` (`None`: the default, `auto`).
fn report(path: Option<&str>, args: &[&str]) -> Value {
    let mut cmd = Command::new(bin());
    mpi_env(&mut cmd).args(args).args(["--format", "json"]);
    if let Some(p) = path {
        cmd.env(kernels::ENV_SIMD, p);
    }
    let r = run(cmd, TIMEOUT);
    assert!(r.success(), "{args:?}:\n{r}");
    let rep = r.report();
    assert_eq!(rep["verified"], true, "{r}");
    if let Some(p) = path {
        let isa = rep["build"]["isa"].as_str().unwrap();
        assert!(isa.starts_with(if p == "portable" { "scalar" } else { p }), "{p}: {isa}");
    }
    rep
}

/// The paths this machine runs.
fn paths() -> Vec<&'static str> {
    kernels::simd::supported().iter().map(|p| p.name()).collect()
}

#[test]
fn paths_agree_on_every_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let heat_png = dir.path().join("heat.png");
    let heat_png = heat_png.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["pi-mc", "--samples", "3000017", "--seed", "9"], "hits"),
        (&["leibniz", "--terms", "5000011"], "pi"),
        (&["mandelbrot", "--width", "203", "--height", "64", "--no-output", "--bailout", "2"], "total_iterations"),
        (&["mandelbrot", "--width", "203", "--height", "64", "--escape-only"], "total_iterations"),
        // Widths that leave a scalar tail on every vector length (2, 4, 8).
        (&["heat", "--size", "67x45", "--steps", "60", "--out", heat_png], "field_digest"),
        (&["heat", "--size", "67x45", "--steps", "60", "--init", "hotspot", "--out", heat_png], "field_digest"),
    ];
    for (args, field) in cases {
        let auto = report(None, args);
        // `portable`, the earlier versions' name, is kept as an alias of `scalar`.
        for p in paths().into_iter().chain(["portable"]) {
            let other = report(Some(p), args);
            assert_eq!(auto["result"][field], other["result"][field], "{p} {args:?}");
        }
    }
}

/// The coloured picture (smooth colouring, every map) is the same PNG, byte
/// for byte, on every path.
#[test]
fn paths_write_the_same_png() {
    let dir = tempfile::tempdir().unwrap();
    for cmap in ["rainbow", "hot", "gray"] {
        let mut first: Option<Vec<u8>> = None;
        for p in paths() {
            let out = dir.path().join(format!("{cmap}-{p}.png"));
            let args = ["mandelbrot", "--width", "211", "--height", "70", "--max-iter", "60", "--colormap", cmap];
            let mut cmd = Command::new(bin());
            mpi_env(&mut cmd).args(args).arg("--out").arg(&out).env(kernels::ENV_SIMD, p);
            let r = run(cmd, TIMEOUT);
            assert!(r.success(), "{p}: {r}");
            let png = std::fs::read(&out).unwrap();
            match &first {
                None => first = Some(png),
                Some(f) => assert!(f == &png, "{cmap}: the {p} PNG differs"),
            }
        }
    }
}

#[test]
fn unknown_or_missing_paths_are_usage_errors_listing_this_cpu() {
    let missing = if cfg!(target_arch = "aarch64") { "avx2" } else { "neon" };
    for value in ["sse9", missing] {
        let mut cmd = Command::new(bin());
        mpi_env(&mut cmd).args(["pi-mc", "--samples", "1000"]).env(kernels::ENV_SIMD, value);
        let r = run(cmd, TIMEOUT);
        assert_eq!(r.code, Some(2), "{value}: {r}");
        let supported = paths().join(", ");
        assert!(r.stderr.contains(value) && r.stderr.contains(&supported), "{value}: {r}");
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
    let one = report(None, &args[..args.len() - 2]);
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
