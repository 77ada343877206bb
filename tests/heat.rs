//! `pikernels heat` under mpirun: the same field (its digest and the PNG's
//! bytes) for every process count, grid, thread count and --comm; the
//! refusals; the PNG decodes to the field's colours.

use crate::util;

use serde_json::Value;
use std::time::Duration;
use util::{json_run, mpirun, tempdir, Run};

/// The field of one run, as the report and the file show it.
#[derive(Debug, PartialEq)]
struct Field {
    digest: Value,
    min: Value,
    max: Value,
    png: Vec<u8>,
}

/// Runs heat on `np` ranks with `extra` flags on a 61x47 grid (odd sizes,
/// so blocks are uneven) for 40 steps; returns the field and the report.
fn field(np: usize, extra: &[&str]) -> (Field, Value) {
    let dir = tempdir();
    let out = dir.path().join("heat.png");
    let mut args = vec!["heat", "--size", "61x47", "--steps", "40", "--out", out.to_str().unwrap()];
    args.extend(extra);
    let r = json_run(np, &args);
    let png = std::fs::read(&out).unwrap();
    let res = &r["result"];
    (Field { digest: res["field_digest"].clone(), min: res["min"].clone(), max: res["max"].clone(), png }, r)
}

#[test]
fn the_field_is_identical_for_any_decomposition_thread_count_and_comm() {
    for init in ["modes", "hotspot"] {
        let (want, r) = field(1, &["--init", init, "--comm", "p2p"]);
        assert!(want.png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(r["result"]["grid"], "1x1");
        let runs: &[(usize, &[&str])] = &[
            (1, &["--comm", "collective", "--threads", "2"]),
            (2, &["--comm", "p2p"]),
            (2, &["--comm", "collective", "--grid", "1x2"]),
            (3, &["--comm", "p2p", "--threads", "2"]),
            (3, &["--comm", "collective", "--grid", "1x3"]),
            (4, &["--comm", "p2p"]),
            (4, &["--comm", "collective", "--grid", "4x1"]),
            (6, &["--comm", "collective"]),
            (6, &["--comm", "p2p", "--grid", "2x3"]),
        ];
        for (np, extra) in runs {
            let mut args = vec!["--init", init];
            args.extend(*extra);
            let (got, r) = field(*np, &args);
            assert!(
                got == want,
                "{init}: np={np} {extra:?} gives another field ({:?} vs {:?})",
                got.digest,
                want.digest
            );
            if let Some(i) = extra.iter().position(|a| *a == "--grid") {
                assert_eq!(r["result"]["grid"], extra[i + 1]);
            }
        }
    }
}

#[test]
fn the_report_names_its_parameters_by_flag_and_states_the_bound() {
    let (_, r) = field(2, &["--comm", "p2p"]);
    let p = &r["params"];
    assert_eq!(
        (p["size"].as_str(), p["steps"].as_u64(), p["r"].as_f64(), p["init"].as_str()),
        (Some("61x47"), Some(40), Some(0.2), Some("modes"))
    );
    let (err, bound) = (r["result"]["max_error"].as_f64().unwrap(), r["result"]["error_bound"].as_f64().unwrap());
    assert!(err <= bound && bound < 1e-12, "error {err} bound {bound}");
    assert_eq!(r["per_rank"].as_array().unwrap().len(), 2);
    assert!(r["per_rank"][1]["compute_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_png_shows_the_field_dark_at_the_cold_edges() {
    let (f, _) = field(2, &["--init", "hotspot", "--comm", "p2p"]);
    let img = image::load_from_memory_with_format(&f.png, image::ImageFormat::Png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (61, 47));
    // The field's minimum (0, at the fixed edges far from the hot disc) is
    // black; the hot centre is the brightest pixel there is.
    assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
    let luma = |p: &image::Rgb<u8>| p.0.iter().map(|&c| u32::from(c)).sum::<u32>();
    let brightest = img.pixels().map(luma).max().unwrap();
    assert_eq!(luma(img.get_pixel(30, 23)), brightest);
}

fn refused(run: &Run, needle: &str) {
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.elapsed < Duration::from_secs(30), "took {:?}", run.elapsed);
    assert_eq!(run.stderr.matches(needle).count(), 1, "'{needle}' printed once:\n{run}");
    assert!(!run.stderr.contains("panicked"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
}

#[test]
fn bad_parameters_exit_2_with_one_message() {
    let dir = tempdir();
    let out = dir.path().join("h.png");
    let out = out.to_str().unwrap();
    let cases: &[(usize, &[&str], &str)] = &[
        (2, &["--r", "0.3"], "unstable beyond 1/4"),
        (2, &["--r", "NaN"], "finite"),
        (2, &["--size", "0x5"], "--size 0x5"),
        (2, &["--size", "7"], "is not COLSxROWS"),
        (6, &["--grid", "4x4"], "--grid 4x4 has 16 processes but the job has 6"),
        (2, &["--comm", "dynamic"], "dynamic does not apply"),
        (4, &["--size", "3x1"], "need at least"),
    ];
    for (np, extra, needle) in cases {
        let mut args = vec!["heat", "--steps", "3", "--out", out];
        args.extend(*extra);
        refused(&mpirun(*np, &args), needle);
    }
    assert!(!std::path::Path::new(out).exists(), "nothing written");
}

/// The report gives the step's memory traffic per core: 16 bytes per cell
/// update times the per-core update rate, the one rate the report derives.
#[test]
fn the_report_gives_bytes_per_second_per_core() {
    let (_, r) = field(2, &["--comm", "p2p"]);
    let bytes = r["result"]["bytes_per_s_per_core"].as_f64().expect("bytes_per_s_per_core");
    let per_core = r["throughput"]["per_core_per_s"].as_f64().unwrap();
    assert!(bytes > 0.0 && per_core > 0.0, "{r}");
    assert!((bytes / (16.0 * per_core) - 1.0).abs() < 1e-12, "{bytes} against 16 x {per_core}");
}
