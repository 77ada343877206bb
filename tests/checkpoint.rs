//! `--checkpoint DIR`: a run killed part way keeps its finished batches,
//! the rerun (on another process count and strategy) computes only what is
//! missing and gives the same bits; a journal of another job, a damaged
//! journal and two jobs on one directory behave as docs/reliability.md says.

use crate::util;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::{json_run, refused, tempdir};

/// Units a journal's intact records cover, read independently of the
/// binary's reader: records are `pkunits1`, start, end (u64 LE), a 16-byte
/// tally, a u64 length, the bytes and a 4-byte checksum (not checked here).
fn journal_units(dir: &Path) -> u64 {
    let log = std::fs::read(dir.join("units.log")).unwrap_or_default();
    let (mut at, mut units) = (0, 0);
    let u64_at = |i: usize| u64::from_le_bytes(log[i..i + 8].try_into().unwrap());
    while log.len() >= at + 52 && &log[at..at + 8] == b"pkunits1" {
        let total = 52 + u64_at(at + 40) as usize;
        if log.len() < at + total {
            break;
        }
        units += u64_at(at + 16) - u64_at(at + 8);
        at += total;
    }
    units
}

/// Starts `args` under `mpirun -np NP` in its own process group.
fn start(np: usize, args: &[&str]) -> Child {
    let mut cmd: Command = util::mpirun_cmd(np, args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().unwrap()
}

/// Waits for `child` to end within `limit` (killing its group past it);
/// returns its exit code.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            // SAFETY: plain syscall on the process group `start` created.
            unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            panic!("the job outlived {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The step of the field a heat journal keeps (0: none), read from its
/// state file's header (`pkstate1`, then the step).
fn journal_step(dir: &Path) -> u64 {
    let state = std::fs::read(dir.join("state.bin")).unwrap_or_default();
    if state.len() >= 16 && &state[..8] == b"pkstate1" {
        u64::from_le_bytes(state[8..16].try_into().unwrap())
    } else {
        0
    }
}

/// Runs `args` with `--checkpoint` under `mpirun -np NP` and SIGKILLs rank
/// `victim` once the journal covers at least `min_units`, before it
/// covers `max_units` (else the job ran too fast to be killed part way);
/// returns the units the journal covered when the rank was killed.
fn kill_part_way(np: usize, args: &[&str], dir: &Path, victim: u32, (min_units, max_units): (u64, u64)) -> u64 {
    kill_when(np, args, || journal_units(dir), victim, (min_units, max_units))
}

/// Waits, while `job` runs, until `covered()` reaches `min` (within
/// `limit`); returns it.
fn wait_for(job: &mut Child, covered: impl Fn() -> u64, min: u64, limit: Duration) -> u64 {
    let began = Instant::now();
    loop {
        let now = covered();
        if now >= min {
            return now;
        }
        assert!(job.try_wait().unwrap().is_none(), "the job ended before the journal covered {min} units");
        assert!(began.elapsed() < limit, "the journal covers only {now} units after {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`kill_part_way`] with the journal's progress read by `covered`.
fn kill_when(
    np: usize,
    args: &[&str],
    covered: impl Fn() -> u64,
    victim: u32,
    (min_units, max_units): (u64, u64),
) -> u64 {
    let mut job = start(np, args);
    let covered = wait_for(&mut job, covered, min_units, Duration::from_secs(240));
    let ranks = util::ranks_of(job.id() as i32);
    let (pid, _) = *ranks.iter().find(|(_, r)| *r == victim).expect("the rank to kill is running");
    // SAFETY: plain syscall on a rank process of the job this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(covered < max_units, "the job was nearly done ({covered} of {max_units} units) when killed");
    let code = wait(&mut job, Duration::from_secs(120));
    assert_ne!(code, Some(0), "a job that lost a rank must fail");
    covered
}

/// Reruns `args` under `mpirun -np NP` after its journal was damaged: it
/// succeeds, warns of the damage (`warning`), resumes nothing, and its
/// result's `key` is `want`.
fn recomputes_everything(np: usize, args: &[&str], warning: &str, key: &str, want: &serde_json::Value) {
    let run = util::mpirun(np, &[args, &["--format", "json"]].concat());
    assert!(run.success(), "{run}");
    assert!(run.stderr.contains(warning), "{run}");
    assert_eq!(run.report()["checkpoint"]["resumed_units"], 0, "{run}");
    assert_eq!(&run.report()["result"][key], want, "{run}");
}

fn checkpoint_of(report: &serde_json::Value) -> (u64, u64, u64) {
    let c = &report["checkpoint"];
    (c["units"].as_u64().unwrap(), c["resumed_units"].as_u64().unwrap(), c["computed_units"].as_u64().unwrap())
}

#[test]
fn a_killed_worker_loses_only_unrecorded_batches_and_the_rerun_on_other_ranks_is_identical() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    let job = ["pi-mc", "--samples", "6e10", "--seed", "11", "--threads", "1"];
    let with_ck = |extra: &[&'static str]| {
        let mut a = job.to_vec();
        a.extend(["--checkpoint", ck_s, "--checkpoint-every", "200ms"]);
        a.extend(extra);
        a
    };
    let units = 6e10 as u64 / 65_536 + 1;
    let covered = kill_part_way(2, &with_ck(&["--comm", "dynamic"]), &ck, 1, (units / 5, units * 4 / 5));
    // The rerun: three ranks, another strategy.
    let resumed = json_run(3, &with_ck(&["--comm", "p2p"]));
    let (all, from_journal, computed) = checkpoint_of(&resumed);
    assert_eq!(all, units);
    assert!(from_journal >= covered, "resumed {from_journal}, but the journal covered {covered} when the rank died");
    assert_eq!(from_journal + computed, units);
    // Against one uninterrupted run without a journal.
    let whole = json_run(2, &job);
    assert_eq!(resumed["result"]["hits"], whole["result"]["hits"]);
    assert_eq!(resumed["result"]["pi"], whole["result"]["pi"]);
    // Finished: a rerun computes nothing and gives the same.
    let again = json_run(1, &with_ck(&[]));
    assert_eq!(checkpoint_of(&again), (units, units, 0));
    assert_eq!(again["result"]["hits"], whole["result"]["hits"]);
    assert_eq!(again["per_rank"][0]["units"], 0);
}

#[test]
fn a_killed_rank_0_loses_the_job_but_the_rerun_writes_the_same_picture() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let (ck_s, out, whole_png) = (ck.to_str().unwrap(), dir.path().join("m.png"), dir.path().join("whole.png"));
    let job = ["mandelbrot", "--width", "4000", "--height", "3000", "--max-iter", "40000", "--threads", "1"];
    let with = |out: &Path, extra: &[&str]| {
        let mut a: Vec<String> = job.iter().map(|s| s.to_string()).collect();
        a.extend(["--out".into(), out.to_str().unwrap().into()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let ck_args = ["--checkpoint", ck_s, "--checkpoint-every", "200ms"];
    let first = with(&out, &[&ck_args[..], &["--comm", "collective"]].concat());
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let covered = kill_part_way(2, &first, &ck, 0, (300, 2700));
    assert!(!out.exists(), "a killed job leaves no picture");
    let rerun = with(&out, &[&ck_args[..], &["--comm", "dynamic"]].concat());
    let rerun: Vec<&str> = rerun.iter().map(String::as_str).collect();
    let resumed = json_run(3, &rerun);
    let (all, from_journal, _) = checkpoint_of(&resumed);
    assert_eq!(all, 3000);
    assert!(from_journal >= covered);
    let whole = with(&whole_png, &[]);
    let whole: Vec<&str> = whole.iter().map(String::as_str).collect();
    json_run(2, &whole);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&whole_png).unwrap(), "the PNGs differ");
}

#[test]
fn heat_killed_part_way_resumes_on_another_grid_with_the_same_field() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    let (out, whole_png) = (dir.path().join("h.png"), dir.path().join("whole.png"));
    let (out_s, whole_s) = (out.to_str().unwrap(), whole_png.to_str().unwrap());
    let job = ["heat", "--size", "1000x800", "--steps", "6000", "--threads", "1"];
    fn with<'a>(job: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [job, extra].concat()
    }
    // Three ranks on a 3x1 grid, depth 2, a checkpoint every 250 steps.
    let first = with(&job, &["--checkpoint", ck_s, "--checkpoint-steps", "250", "--halo-depth", "2", "--out", out_s]);
    let kept = kill_when(3, &first, || journal_step(&ck), 1, (1200, 4800));
    assert!(kept.is_multiple_of(250), "kept the field after step {kept}");
    // Resumed on two ranks stacked (a 1x2 grid), depth 1, another comm.
    let rerun = with(&job, &["--checkpoint", ck_s, "--grid", "1x2", "--comm", "p2p", "--out", out_s]);
    let resumed = json_run(2, &rerun);
    assert_eq!(resumed["checkpoint"]["unit"], "steps");
    assert!(resumed["checkpoint"]["resumed_units"].as_u64().unwrap() >= kept);
    let whole = json_run(1, &with(&job, &["--out", whole_s]));
    assert_eq!(resumed["result"]["field_digest"], whole["result"]["field_digest"]);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&whole_png).unwrap(), "the PNGs differ");
    // Finished: instant and the same.
    let again = json_run(2, &rerun);
    assert_eq!(again["checkpoint"]["computed_units"], 0);
    assert_eq!(again["result"]["field_digest"], whole["result"]["field_digest"]);
    // A damaged field is not used: the run starts over, with the same result.
    let state = ck.join("state.bin");
    let mut bytes = std::fs::read(&state).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&state, &bytes).unwrap();
    recomputes_everything(2, &rerun, "is damaged", "field_digest", &whole["result"]["field_digest"]);
}

#[test]
fn a_journal_of_other_parameters_is_refused_and_left_as_it_was() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    json_run(2, &["leibniz", "--terms", "3e7", "--checkpoint", ck_s]);
    let before: Vec<_> = ["job.json", "units.log"].map(|f| std::fs::read(ck.join(f)).unwrap()).to_vec();
    let other = util::mpirun(2, &["leibniz", "--terms", "4e7", "--checkpoint", ck_s]);
    refused(&other, 2, "holds the journal of another job: params.terms is 30000000 there, 40000000 here");
    let kernel = util::mpirun(1, &["pi-mc", "--checkpoint", ck_s]);
    refused(&kernel, 2, "kernel is \"leibniz\" there, \"pi-mc\" here");
    let after: Vec<_> = ["job.json", "units.log"].map(|f| std::fs::read(ck.join(f)).unwrap()).to_vec();
    assert!(before == after, "the journal was changed");
}

#[test]
fn a_damaged_journal_is_recomputed_where_damaged_and_never_used() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    let args = ["pi-mc", "--samples", "3e9", "--seed", "5", "--checkpoint", ck_s, "--checkpoint-every", "20ms"];
    let with_json = [&args[..], &["--format", "json"]].concat();
    let first = json_run(2, &args);
    let units = checkpoint_of(&first).0;
    let log = std::fs::read(ck.join("units.log")).unwrap();
    assert!(log.len() >= 3 * 52, "at least three records ({} bytes)", log.len());
    for (what, damaged) in [
        ("a flipped byte in the second record", {
            let mut l = log.clone();
            l[52 + 30] ^= 1;
            l
        }),
        ("a record cut short", log[..log.len() - 7].to_vec()),
        ("garbage after the records", [&log[..], b"not a record at all"].concat()),
    ] {
        std::fs::write(ck.join("units.log"), &damaged).unwrap();
        let run = util::mpirun(2, &with_json);
        assert!(run.success(), "{what}:\n{run}");
        assert!(run.stderr.contains("are damaged"), "{what}: no warning:\n{run}");
        let report = run.report();
        let (_, resumed, computed) = checkpoint_of(&report);
        assert!(computed > 0 || what.starts_with("garbage"), "{what}: nothing recomputed");
        assert_eq!(resumed + computed, units, "{what}");
        assert_eq!(report["result"]["hits"], first["result"]["hits"], "{what}");
        // The journal is whole again: a rerun resumes everything.
        assert_eq!(checkpoint_of(&json_run(1, &args)).1, units, "{what}");
    }
}

/// A record rewritten with a tally its units cannot give, its checksum
/// made good (a deliberate edit, not an accident): not used, recomputed.
#[test]
fn a_record_with_an_impossible_tally_is_recomputed_not_used() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    let args = ["pi-mc", "--samples", "2e9", "--seed", "3", "--checkpoint", ck_s, "--checkpoint-every", "20ms"];
    let first = json_run(1, &args);
    let log = ck.join("units.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let units =
        u64::from_le_bytes(bytes[16..24].try_into().unwrap()) - u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    // More hits than the first record's samples (65,536 a unit).
    let tally = i128::from(units) * 65_536 + 1;
    bytes[24..40].copy_from_slice(&tally.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..48]);
    bytes[48..52].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&log, &bytes).unwrap();
    recomputes_everything(1, &args, "are damaged", "hits", &first["result"]["hits"]);
}

#[test]
fn a_journal_directory_removed_mid_run_is_warned_about_once_and_the_run_finishes() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    let args = [
        "pi-mc",
        "--samples",
        "3e10",
        "--threads",
        "1",
        "--checkpoint",
        ck_s,
        "--checkpoint-every",
        "100ms",
        "--format",
        "json",
    ];
    let mut job = start(1, &args);
    wait_for(&mut job, || journal_units(&ck), 1, Duration::from_secs(120));
    std::fs::remove_dir_all(&ck).unwrap();
    let out = job.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("cannot write a checkpoint").count(), 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["checkpoint"]["write_failed"], true);
    assert_eq!(report["verified"], true);
}

#[test]
fn two_jobs_on_one_journal_the_second_is_refused() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    let args = ["pi-mc", "--samples", "1e11", "--threads", "1", "--checkpoint", ck_s, "--checkpoint-every", "100ms"];
    let mut first = start(1, &args);
    wait_for(&mut first, || journal_units(&ck), 1, Duration::from_secs(120));
    let second = util::mpirun(1, &args);
    // SAFETY: plain syscall on the process group `start` created.
    unsafe { libc::killpg(first.id() as i32, libc::SIGKILL) };
    let _ = first.wait();
    refused(&second, 2, "is in use by another job (process");
}

#[test]
fn kernels_that_cannot_resume_refuse_checkpoint_and_the_interval_needs_it() {
    let dir = tempdir();
    let ck = dir.path().join("ck");
    let ck_s = ck.to_str().unwrap();
    for kernel in ["matmul", "sort"] {
        let run = util::mpirun(1, &[kernel, "--checkpoint", ck_s]);
        refused(&run, 2, &format!("{kernel} cannot resume yet"));
    }
    refused(
        &util::mpirun(1, &["pi-mc", "--checkpoint-every", "5s"]),
        2,
        "--checkpoint-every applies with --checkpoint DIR",
    );
    refused(
        &util::mpirun(1, &["pi-mc", "--checkpoint", ck_s, "--checkpoint-every", "0s"]),
        2,
        "is not a positive duration",
    );
    // heat's own: steps need the journal, one way to say when, no frames yet.
    refused(
        &util::mpirun(1, &["heat", "--checkpoint-steps", "10"]),
        2,
        "--checkpoint-steps applies with --checkpoint DIR",
    );
    let both = ["heat", "--checkpoint", ck_s, "--checkpoint-steps", "10", "--checkpoint-every", "1s"];
    refused(&util::mpirun(1, &both), 2, "both say when to keep the field: give one");
    refused(&util::mpirun(1, &["heat", "--checkpoint", ck_s, "--frames", "3"]), 2, "--checkpoint with --frames");
    assert!(!ck.exists(), "a refused run made the directory");
    // An output in the journal's directory could replace its files: refused
    // on the first run too (rank 0 judges it once the directory exists, and
    // every rank agrees).
    let first = ck.join("r.json");
    let run =
        util::mpirun(2, &["leibniz", "--terms", "1e6", "--checkpoint", ck_s, "--report", first.to_str().unwrap()]);
    refused(&run, 2, "which holds the journal only");
    assert!(!first.exists());
    json_run(1, &["leibniz", "--terms", "1e6", "--checkpoint", ck_s]);
    let inside = ck.join("job.json");
    let run =
        util::mpirun(1, &["leibniz", "--terms", "1e6", "--checkpoint", ck_s, "--report", inside.to_str().unwrap()]);
    refused(&run, 2, "which holds the journal only");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    refused(&util::mpirun(1, &["pi-mc", "--checkpoint", file.to_str().unwrap()]), 2, "is not a directory");
}
