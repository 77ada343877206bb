//! The scaling study script (`scripts/scale.py`): a real sweep under mpirun
//! (through tests/util: timeout and process-group kill cover the script's
//! mpirun children), its table and its SVG plot.

use crate::util;

use std::process::Command;
use util::{bin, mpi_env, run, tempdir, TIMEOUT};

fn scale(args: &[&str]) -> util::Run {
    let mut cmd = Command::new("python3");
    mpi_env(&mut cmd)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/scale.py"))
        .args(args)
        .args(["--bin", bin().to_str().unwrap()]);
    run(cmd, TIMEOUT)
}

#[test]
fn sweep_prints_the_table_and_draws_the_plot() {
    let dir = tempdir();
    let svg = dir.path().join("s.svg");
    let json = dir.path().join("rows.json");
    let r = scale(&[
        "pi-mc",
        "--samples",
        "2e6",
        "--np",
        "1,2",
        "--threads",
        "1",
        "--repeat",
        "1",
        "--markdown",
        "--svg",
        svg.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(r.success(), "{r}");
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(lines.len(), 4, "header, rule and one row per rank count:\n{r}");
    for col in ["speedup", "eff", "karp-flatt", "imbalance", "launch s"] {
        assert!(lines[0].contains(col), "no {col} column:\n{r}");
    }
    let cells = |l: &str| l.split('|').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect::<Vec<_>>();
    let (one, two) = (cells(lines[2]), cells(lines[3]));
    assert_eq!((one[0].as_str(), one[4].as_str(), one[5].as_str()), ("1", "1.000", "100.0%"), "{r}");
    assert_eq!(two[0], "2");
    // The relation on the unrounded values the script computed (the table
    // rounds them: sub-millisecond times would make a check on it noise).
    let rows: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let f = |i: usize, k: &str| rows[i][k].as_f64().unwrap_or_else(|| panic!("row {i} has no {k}: {rows}"));
    let (t1, t2) = (f(0, "time"), f(1, "time"));
    assert!(t1 > 0.0 && t2 > 0.0, "{rows}");
    assert_eq!(f(0, "speedup"), 1.0);
    assert!((f(1, "speedup") - t1 / t2).abs() <= 1e-12 * (t1 / t2), "speedup is time(1)/time(2): {rows}");
    assert!((f(1, "eff") - f(1, "speedup") / 2.0).abs() <= 1e-12, "efficiency is speedup/cores: {rows}");
    // And the table shows those values, rounded.
    assert_eq!(two[3], format!("{t2:.4}"), "{r}");
    assert_eq!(two[4], format!("{:.3}", f(1, "speedup")), "{r}");
    let plot = std::fs::read_to_string(&svg).expect("the SVG plot");
    assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
    assert!(plot.contains("ideal") && plot.contains("<polyline"), "{plot}");
}

#[test]
fn bad_lists_are_usage_errors() {
    let r = scale(&["pi-mc", "--np", "0,1"]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(r.stderr.contains("at least 1"), "{r}");
}
