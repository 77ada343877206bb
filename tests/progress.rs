//! Progress on rank 0: a bar when stderr is a terminal and the run is long,
//! nothing otherwise. The terminal is a real pseudo-terminal from `script`
//! (util-linux), which passes the job's exit status through (`-e`).

use crate::util;

use std::process::Command;
use util::{bin, mpi_env, run, TIMEOUT};

/// A run that takes well over `progress::SHOW_AFTER` (2 s) on one thread
/// whatever the machine: leibniz with the terms this machine sums in about
/// 8 s, from a timed run of 4e9 (a fixed 8e10 took 1.9 s on a Zen 5 core,
/// and the bar never showed).
fn long() -> String {
    static ARGS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ARGS.get_or_init(|| {
        let r = util::direct(&["leibniz", "--terms", "4e9", "--threads", "1", "--format", "json"]);
        assert!(r.success(), "{r}");
        let rep: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let s = rep["timing"]["compute_s"]["max"].as_f64().unwrap().max(1e-3);
        let terms = (4e9 * 8.0 / s).clamp(2e10, 2e12);
        format!("leibniz --terms {terms:.0} --threads 1 --format json")
    })
    .clone()
}

fn in_terminal(cmdline: &str) -> util::Run {
    let mut cmd = Command::new("script");
    mpi_env(&mut cmd).args(["-qec", cmdline, "/dev/null"]);
    run(cmd, TIMEOUT)
}

#[test]
fn no_terminal_no_progress() {
    let long = long();
    let r = util::direct(&long.split(' ').collect::<Vec<_>>());
    assert!(r.success(), "{r}");
    assert_eq!(r.stderr, "", "stderr must stay empty without a terminal");
}

#[test]
fn terminal_shows_rank_0_share() {
    // stdout (the report) goes to a file; the pty carries stderr only.
    let dir = util::tempdir();
    let report = dir.path().join("r.json");
    let cmdline = format!("{} {} > {}", bin().display(), long(), report.display());
    let r = in_terminal(&cmdline);
    assert!(r.success(), "{r}");
    assert!(r.stdout.contains("rank 0's share"), "no progress bar on the terminal:\n{r}");
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["verified"], true, "the split compute must give the verified result");
}

#[test]
fn terminal_shows_dynamic_dispatch() {
    let cmdline = format!("{} {} --comm dynamic > /dev/null", bin().display(), long());
    let r = in_terminal(&cmdline);
    assert!(r.success(), "{r}");
    assert!(r.stdout.contains("chunks handed out"), "no dispatcher progress:\n{r}");
}

#[test]
fn under_mpirun_stderr_is_a_pipe_so_no_bar() {
    // OpenMPI forwards the ranks' stderr through a pipe even when mpirun's
    // own stderr is a terminal: the ranks rightly see no terminal.
    let cmdline = format!("mpirun --oversubscribe -np 2 {} {} > /dev/null", bin().display(), long());
    let r = in_terminal(&cmdline);
    assert!(r.success(), "{r}");
    assert!(!r.stdout.contains("share"), "unexpected bar:\n{r}");
}
