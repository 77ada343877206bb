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
fn progress_off_keeps_the_log_clean() {
    let r = long_enough(|args| {
        let args = format!("{args} --progress off --progress-every 1s");
        util::direct(&args.split(' ').collect::<Vec<_>>())
    });
    assert_eq!(r.stderr, "", "stderr must stay empty with --progress off");
}

/// The progress lines in `stderr`, checked to be plain text (no bar, no
/// carriage return or escape sequence), each naming `what`.
fn lines<'a>(stderr: &'a str, what: &str) -> Vec<&'a str> {
    assert!(!stderr.contains('\r') && !stderr.contains('\u{1b}'), "terminal control in a log:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("pikernels: progress: ")).collect();
    for l in &lines {
        assert!(l.contains(what) && l.contains("% (") && l.contains("elapsed"), "{l}");
    }
    lines
}

/// Without a terminal (a log: a file, a pipe, `kubectl logs`), rank 0 prints
/// plain lines at the pace asked, neither more often nor never.
#[test]
fn a_log_gets_plain_progress_lines_at_a_steady_pace() {
    let r = long_enough(|args| {
        let args = format!("{args} --progress-every 1s");
        util::direct(&args.split(' ').collect::<Vec<_>>())
    });
    let seen = lines(&r.stderr, "rank 0's share");
    let rep: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let compute = rep["timing"]["compute_s"]["max"].as_f64().unwrap();
    // One a second after the first second; a line may be late (a piece
    // still computing), never early.
    assert!(
        !seen.is_empty() && seen.len() as f64 <= compute + 1.0,
        "{} lines in {compute:.1} s:\n{}",
        seen.len(),
        r.stderr
    );
    assert!(seen.iter().any(|l| l.contains("left")), "{}", r.stderr);
}

/// Under mpirun the ranks' stderr is a pipe: the dispatcher's progress comes
/// as lines (the default, auto), as a user reading `kubectl logs -f` sees it.
#[test]
fn under_mpirun_progress_comes_as_lines() {
    let r = long_enough(|args| {
        let args = format!("{args} --comm dynamic --progress-every 1s");
        util::mpirun(2, &args.split(' ').collect::<Vec<_>>())
    });
    assert!(!lines(&r.stderr, "chunks handed out").is_empty(), "no progress lines:\n{r}");
}

/// heat counts its steps (rank 0's own loop, no message).
#[test]
fn heat_shows_its_steps() {
    let r = util::mpirun(
        2,
        &[
            "heat",
            "--size",
            "1000x800",
            "--steps",
            "3000",
            "--progress",
            "lines",
            "--progress-every",
            "100ms",
            "--format",
            "json",
            "--out",
            "/dev/null",
        ],
    );
    assert!(r.success(), "{r}");
    let wall = r.report()["timing"]["wall_s"].as_f64().unwrap();
    let seen = lines(&r.stderr, "steps");
    assert!(wall < 0.3 || !seen.is_empty(), "{wall:.2} s of steps and no line:\n{r}");
    assert!(seen.len() as f64 <= wall / 0.1 + 1.0, "{} lines in {wall:.2} s", seen.len());
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
        in_terminal(&format!("mpirun --oversubscribe -np 2 {} {args} --progress bar > /dev/null", bin().display()))
    });
    assert!(!r.stdout.contains("share"), "unexpected bar:\n{r}");
}
