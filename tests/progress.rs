//! Progress on rank 0: a bar when stderr is a terminal and the run is long,
//! nothing otherwise. The terminal is a real pseudo-terminal from `script`
//! (util-linux), which passes the job's exit status through (`-e`).

use crate::util;

use std::process::Command;
use util::{bin, mpi_env, run, TIMEOUT};

/// A run that takes well over `progress::SHOW_AFTER` (2 s) on one thread.
const LONG: &[&str] = &["leibniz", "--terms", "8e10", "--threads", "1", "--format", "json"];

fn in_terminal(cmdline: &str) -> util::Run {
    let mut cmd = Command::new("script");
    mpi_env(&mut cmd).args(["-qec", cmdline, "/dev/null"]);
    run(cmd, TIMEOUT)
}

#[test]
fn no_terminal_no_progress() {
    let r = util::direct(LONG);
    assert!(r.success(), "{r}");
    assert_eq!(r.stderr, "", "stderr must stay empty without a terminal");
}

#[test]
fn terminal_shows_rank_0_share() {
    // stdout (the report) goes to a file; the pty carries stderr only.
    let dir = util::tempdir();
    let report = dir.path().join("r.json");
    let cmdline = format!("{} {} > {}", bin().display(), LONG.join(" "), report.display());
    let r = in_terminal(&cmdline);
    assert!(r.success(), "{r}");
    assert!(r.stdout.contains("rank 0's share"), "no progress bar on the terminal:\n{r}");
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["verified"], true, "the split compute must give the verified result");
}

#[test]
fn terminal_shows_dynamic_dispatch() {
    let cmdline = format!("{} {} --comm dynamic > /dev/null", bin().display(), LONG.join(" "));
    let r = in_terminal(&cmdline);
    assert!(r.success(), "{r}");
    assert!(r.stdout.contains("chunks handed out"), "no dispatcher progress:\n{r}");
}

#[test]
fn under_mpirun_stderr_is_a_pipe_so_no_bar() {
    // OpenMPI forwards the ranks' stderr through a pipe even when mpirun's
    // own stderr is a terminal: the ranks rightly see no terminal.
    let cmdline = format!("mpirun --oversubscribe -np 2 {} {} > /dev/null", bin().display(), LONG.join(" "));
    let r = in_terminal(&cmdline);
    assert!(r.success(), "{r}");
    assert!(!r.stdout.contains("share"), "unexpected bar:\n{r}");
}
