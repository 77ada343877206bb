//! The report's documented fields, parsed with serde from real runs, and the
//! other formats showing the same data.

use crate::util;

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

#[test]
fn default_threads_share_the_node_and_oversubscription_is_reported() {
    let json = |extra: &[&str]| {
        let args = [&["pi-mc", "--samples", "1e7", "--format", "json"][..], extra].concat();
        let run = mpirun(3, &args);
        assert!(run.success(), "{run}");
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{run}"))
    };
    let machine = std::thread::available_parallelism().unwrap().get() as u64;
    // Per-core rates count a node's cores, not its threads, when threads outnumber them.
    let check_rate = |r: &serde_json::Value| {
        let node = &r["nodes"][0];
        let (threads, cores) = (node["threads"].as_u64().unwrap(), node["cores"].as_u64().unwrap());
        let thread_s: f64 = r["per_rank"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["compute_s"].as_f64().unwrap() * x["threads"].as_f64().unwrap())
            .sum();
        let core_s = thread_s * threads.min(cores) as f64 / threads as f64;
        let expected = r["throughput"]["count"].as_f64().unwrap() / core_s;
        let got = r["throughput"]["per_core_per_s"].as_f64().unwrap();
        assert!((got - expected).abs() <= 1e-9 * expected, "per core {got}, expected {expected}");
        assert_eq!(r["cores_used"].as_u64().unwrap(), threads.min(cores));
        assert_eq!(r["oversubscribed"], threads > cores, "{threads} threads on {cores} cores");
        (threads, cores)
    };

    // By default the three ranks share the cores: never more threads than
    // cores unless there are fewer cores than ranks (one thread each then).
    let r = json(&[]);
    assert_eq!(r["nodes"].as_array().unwrap().len(), 1);
    let (threads, cores) = check_rate(&r);
    assert!(cores <= machine, "{cores} cores on a {machine}-core machine");
    assert_eq!(threads, 3 * r["threads_per_rank"].as_u64().unwrap());
    assert!(threads <= cores.max(3), "{threads} threads by default on {cores} cores");
    if machine == 2 {
        assert_eq!((r["threads_per_rank"].as_u64(), r["oversubscribed"].as_bool()), (Some(1), Some(true)));
    }

    // An explicit --threads is honoured, and the text says when it oversubscribes.
    let r = json(&["--threads", "2"]);
    assert_eq!(r["threads_per_rank"], 2);
    let (threads, cores) = check_rate(&r);
    assert_eq!(threads, 6);
    let text = mpirun(3, &["pi-mc", "--samples", "1e7", "--threads", "2"]);
    assert!(text.success(), "{text}");
    assert_eq!(text.stdout.contains("OVERSUBSCRIBED"), 6 > cores, "{text}");
}
