//! `--partition I/N` runs and `pikernels merge`: the merged report's result
//! equals a single run's bit for bit, however the job was cut and however
//! each part ran; incomplete or mixed inputs are refused with one message.

use crate::util;

use serde_json::Value;
use std::path::{Path, PathBuf};
use util::{direct, mpirun, tempdir};

fn json(r: &util::Run, what: &str) -> Value {
    assert!(r.success(), "{what}:\n{r}");
    r.report()
}

/// Runs part `index` of `count` (under mpirun when `np > 1`) and saves its JSON report.
fn part(dir: &Path, args: &[&str], index: u64, count: u64, np: usize) -> PathBuf {
    let spec = format!("{index}/{count}");
    let mut a = args.to_vec();
    a.extend(["--partition", &spec, "--format", "json", "--comm", "dynamic"]);
    let r = if np > 1 { mpirun(np, &a) } else { direct(&a) };
    let report = json(&r, &format!("part {spec}"));
    assert_eq!(report["verified"], false, "a part alone is not verified: {r}");
    assert_eq!(report["partial"]["index"], index);
    let path = dir.join(format!("part-{index}-of-{count}.json"));
    std::fs::write(&path, &r.stdout).unwrap();
    path
}

fn merge(paths: &[PathBuf], extra: &[&str]) -> util::Run {
    let mut a: Vec<&str> = vec!["merge"];
    a.extend(paths.iter().map(|p| p.to_str().unwrap()));
    a.extend(extra);
    direct(&a)
}

#[test]
fn merged_parts_equal_a_single_run_bit_for_bit() {
    let dir = tempdir();
    for args in [vec!["pi-mc", "--samples", "2500003", "--seed", "11"], vec!["leibniz", "--terms", "3000001"]] {
        let mut whole_args = args.clone();
        whole_args.extend(["--format", "json"]);
        let whole = json(&direct(&whole_args), "single run");
        assert_eq!(whole["verified"], true);
        // 1 part, an uneven cut, and more parts than some have units.
        for (count, np) in [(1, 1), (3, 2), (7, 1)] {
            let paths: Vec<PathBuf> = (0..count).rev().map(|i| part(dir.path(), &args, i, count, np)).collect();
            let report_path = dir.path().join("merged.json");
            let r = merge(&paths, &["--format", "json", "--report", report_path.to_str().unwrap()]);
            let merged = json(&r, &format!("{args:?} merged from {count}"));
            assert_eq!(merged["result"], whole["result"], "{args:?} in {count} parts: {r}");
            assert_eq!(merged["params"], whole["params"]);
            assert_eq!(merged["verified"], true);
            assert!(merged.get("partial").is_none());
            assert_eq!(merged["ranks"], (count as usize * np), "every part's ranks are listed");
            if let Some(pi) = whole["result"]["pi"].as_f64() {
                assert_eq!(merged["result"]["pi"].as_f64().unwrap().to_bits(), pi.to_bits());
            }
            let saved: Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
            assert_eq!(saved["result"], whole["result"]);
        }
    }
}

#[test]
fn incomplete_or_mixed_parts_are_refused() {
    let dir = tempdir();
    let pi = ["pi-mc", "--samples", "300000"];
    let p0 = part(dir.path(), &pi, 0, 3, 1);
    let p1 = part(dir.path(), &pi, 1, 3, 1);
    let p2 = part(dir.path(), &pi, 2, 3, 1);
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = part(&other_dir, &["pi-mc", "--samples", "300001"], 2, 3, 1);
    let whole = dir.path().join("whole.json");
    std::fs::write(&whole, direct(&["pi-mc", "--samples", "300000", "--format", "json"]).stdout).unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();

    let cases: Vec<(Vec<PathBuf>, &str)> = vec![
        (vec![p0.clone(), p1.clone()], "part 2 is missing"),
        (vec![p0.clone(), p1.clone(), p1.clone(), p2.clone()], "given twice"),
        (vec![p0.clone(), p1.clone(), other], "parts of different jobs"),
        (vec![p0.clone(), whole], "not of a part"),
        (vec![p0.clone(), garbage], "is not a JSON report"),
        (vec![p0.clone(), dir.path().join("absent.json")], "cannot read"),
    ];
    for (paths, message) in cases {
        let r = merge(&paths, &[]);
        assert_eq!(r.code, Some(2), "{message}: {r}");
        assert!(r.stderr.contains(message), "expected '{message}':\n{r}");
        assert_eq!(r.stderr.lines().count(), 1, "one message: {r}");
        assert!(r.stdout.is_empty());
    }
    assert!(merge(&[p0, p1, p2], &[]).success());

    for bad in ["3/3", "1", "0/0"] {
        let r = direct(&["leibniz", "--partition", bad]);
        assert_eq!(r.code, Some(2), "--partition {bad}: {r}");
    }
    let r = direct(&["mandelbrot", "--partition", "0/2", "--no-output"]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(r.stderr.contains("does not support --partition"), "{r}");
}
