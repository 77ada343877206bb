//! The report's documented fields, parsed with serde from real runs, and the
//! other formats showing the same data.

mod util;

use serde::Deserialize;
use util::mpirun;

#[derive(Deserialize)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
    imbalance: f64,
    per_rank: Vec<f64>,
}

#[derive(Deserialize)]
struct Timing {
    wall_s: f64,
    compute_s: Spread,
    comm_s: Spread,
}

#[derive(Deserialize)]
struct Report {
    schema_version: u32,
    kernel: String,
    params: serde_json::Value,
    ranks: usize,
    threads_per_rank: usize,
    comm: String,
    hosts: Vec<String>,
    result: serde_json::Value,
    verified: bool,
    timing: Timing,
}

#[test]
fn json_report_has_every_documented_field() {
    let run = mpirun(3, &["pi-mc", "--samples", "2e6", "--threads", "1", "--comm", "p2p", "--format", "json"]);
    assert!(run.success(), "{run}");
    let r: Report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{run}"));
    assert_eq!(r.schema_version, 1);
    assert_eq!(r.kernel, "pi-mc");
    assert_eq!(r.params["samples"], 2_000_000);
    assert_eq!((r.ranks, r.threads_per_rank, r.comm.as_str()), (3, 1, "p2p"));
    let me = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(r.hosts, vec![me.trim().to_string(); 3]);
    let pi = r.result["pi"].as_f64().unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.01);
    assert_eq!(r.result["abs_error"].as_f64().unwrap(), (pi - std::f64::consts::PI).abs());
    assert!(r.verified);
    let c = &r.timing.compute_s;
    assert_eq!(c.per_rank.len(), 3);
    assert!(c.min <= c.median && c.median <= c.max && c.max <= r.timing.wall_s + 1e-3);
    assert!(c.imbalance >= 1.0);
    assert_eq!(r.timing.comm_s.per_rank.len(), 3);
}

#[test]
fn text_csv_and_markdown_show_the_same_run() {
    for (format, needle) in [("text", "verified  yes"), ("csv", "result.pi"), ("markdown", "| rank | host |")] {
        let run = mpirun(2, &["leibniz", "--terms", "1e6", "--format", format]);
        assert!(run.success(), "{run}");
        assert!(run.stdout.contains(needle), "{format}: {run}");
        assert!(run.stdout.contains("3.14159"), "{format} shows pi: {run}");
    }
    let csv = mpirun(2, &["leibniz", "--terms", "1e6", "--format", "csv"]);
    assert_eq!(csv.stdout.lines().count(), 3, "a header and one row per rank:\n{csv}");
}

#[test]
fn report_file_is_written_too() {
    let dir = util::tempdir();
    let path = dir.path().join("r.json");
    let run = mpirun(2, &["pi-mc", "--samples", "1e5", "--format", "json", "--report", path.to_str().unwrap()]);
    assert!(run.success(), "{run}");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(saved, run.stdout);
    assert_eq!(util::files_in(dir.path()), vec!["r.json"]);
}
