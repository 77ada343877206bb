//! Progress on rank 0: a bar when stderr is a terminal and the run is long,
//! nothing otherwise. The terminal is a real pseudo-terminal from `script`
//! (util-linux), which passes the job's exit status through (`-e`).

use crate::util;

use std::process::Command;
use util::{bin, mpi_env, run, TIMEOUT};

/// The terms of a leibniz run that takes well over `progress::SHOW_AFTER`
/// (2 s) on one thread whatever the machine: about 8 s from a timed run of
/// 4e9 (a fixed 8e10 took 1.9 s on a Zen 5 core, and the bar never showed).
/// The timed run may be slowed by a neighbouring test, which makes this too
/// few: [`long_enough`] checks what each run really took.
fn long_terms() -> f64 {
    static TERMS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TERMS.get_or_init(|| {
        let r = util::direct(&["leibniz", "--terms", "4e9", "--threads", "1", "--format", "json"]);
        assert!(r.success(), "{r}");
        let rep: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let s = rep["timing"]["compute_s"]["max"].as_f64().unwrap().max(1e-3);
        (4e9 * 8.0 / s).clamp(2e10, 2e12)
    })
}

/// Shortest compute that makes a bar's presence or absence mean something:
/// well past the 2 s after which the bar appears.
const LONG_ENOUGH_S: f64 = 3.0;

/// Runs `run(args)` with the arguments of a long leibniz run (which also
/// writes its report, JSON, to a file read here) until the run's own timing
/// shows a compute of at least [`LONG_ENOUGH_S`] on every rank; a shorter one
/// is run again with more terms (at most three times). Returns the long run.
fn long_enough(run: impl Fn(&str) -> util::Run) -> util::Run {
    let dir = util::tempdir();
    let report = dir.path().join("r.json");
    let mut terms = long_terms();
    for _ in 0..3 {
        let args = format!("leibniz --terms {terms:.0} --threads 1 --format json --report {}", report.display());
        let r = run(&args);
        assert!(r.success(), "{r}");
        let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(rep["verified"], true, "{r}");
        let s = rep["timing"]["compute_s"]["min"].as_f64().unwrap();
        if s >= LONG_ENOUGH_S {
            return r;
        }
        println!("{terms:.0} terms took {s:.2} s, under {LONG_ENOUGH_S} s: again with more");
        terms = (terms * 8.0 / s.max(1e-3)).min(1e13);
    }
    panic!("no run took {LONG_ENOUGH_S} s");
}

fn in_terminal(cmdline: &str) -> util::Run {
    let mut cmd = Command::new("script");
    mpi_env(&mut cmd).args(["-qec", cmdline, "/dev/null"]);
    run(cmd, TIMEOUT)
}

#[test]
fn no_terminal_no_progress() {
    let r = long_enough(|args| util::direct(&args.split(' ').collect::<Vec<_>>()));
    assert_eq!(r.stderr, "", "stderr must stay empty without a terminal");
}

#[test]
fn terminal_shows_rank_0_share() {
    // stdout (the report) goes to /dev/null; the pty carries stderr only.
    let r = long_enough(|args| in_terminal(&format!("{} {args} > /dev/null", bin().display())));
    assert!(r.stdout.contains("rank 0's share"), "no progress bar on the terminal:\n{r}");
}

#[test]
fn terminal_shows_dynamic_dispatch() {
    let r = long_enough(|args| in_terminal(&format!("{} {args} --comm dynamic > /dev/null", bin().display())));
    assert!(r.stdout.contains("chunks handed out"), "no dispatcher progress:\n{r}");
}

#[test]
fn under_mpirun_stderr_is_a_pipe_so_no_bar() {
    // OpenMPI forwards the ranks' stderr through a pipe even when mpirun's
    // own stderr is a terminal: the ranks rightly see no terminal.
    let r = long_enough(|args| {
        in_terminal(&format!("mpirun --oversubscribe -np 2 {} {args} > /dev/null", bin().display()))
    });
    assert!(!r.stdout.contains("share"), "unexpected bar:\n{r}");
}
