//! Helpers for integration tests: run the `pikernels` binary directly or
//! under `mpirun`, always with a timeout, and parse its JSON report.

use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Default limit for one spawned job. Generous for a loaded 2-core CI
/// machine; a job that needs longer has hung.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pikernels"))
}

/// What a finished process left.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The JSON report on stdout (panics with the run's output if there is none).
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("no JSON report ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// The environment every mpirun of the tests gets: root allowed (CI runs as
/// root), oversubscription allowed (more ranks than the 2 cores), and idle
/// ranks yield the CPU instead of spinning.
pub fn mpi_env(cmd: &mut Command) -> &mut Command {
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .env("OMPI_MCA_mpi_yield_when_idle", "1")
}

/// `mpirun -np N pikernels ARGS...`
pub fn mpirun_cmd(np: usize, args: &[&str]) -> Command {
    let mut cmd = Command::new("mpirun");
    mpi_env(&mut cmd).args(["--oversubscribe", "-np", &np.to_string()]).arg(bin()).args(args);
    cmd
}

/// Runs `pikernels ARGS` under `mpirun -np N` with the default timeout.
pub fn mpirun(np: usize, args: &[&str]) -> Run {
    run(mpirun_cmd(np, args), TIMEOUT)
}

/// Runs `pikernels ARGS` with no launcher (one rank).
pub fn direct(args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    mpi_env(&mut cmd).args(args);
    run(cmd, TIMEOUT)
}

/// Runs `cmd` in its own process group; if it outlives `timeout`, the whole
/// group is killed and the test fails, so no test can hang.
pub fn run(cmd: Command, timeout: Duration) -> Run {
    run_with(cmd, timeout, None)
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// File names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Like [`run`], but once `ready()` holds (polled every 10 ms) sends `signal`
/// to the command's process (for `mpirun`, which forwards it to the ranks).
/// The whole group is still killed if it outlives `timeout`.
pub fn run_signalled(cmd: Command, ready: impl Fn() -> bool, signal: i32, timeout: Duration) -> Run {
    run_with(cmd, timeout, Some((&ready as &dyn Fn() -> bool, signal)))
}

/// Runs `cmd` in its own process group, reading its output, optionally
/// signalling it once `ready()` holds, and killing the group at `timeout`.
fn run_with(mut cmd: Command, timeout: Duration, signal: Option<(&dyn Fn() -> bool, i32)>) -> Run {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id() as i32;
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out_t = read_all(Box::new(child.stdout.take().unwrap()));
    let err_t = read_all(Box::new(child.stderr.take().unwrap()));
    let mut sent = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if let Some((ready, sig)) = signal {
            if !sent && ready() {
                // SAFETY: plain syscall on the child this function started.
                unsafe { libc::kill(pid, sig) };
                sent = true;
            }
        }
        if start.elapsed() > timeout {
            // SAFETY: plain syscall on the process group this function created.
            unsafe { libc::killpg(pid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        elapsed: start.elapsed(),
    };
    assert!(status.is_some(), "timed out after {timeout:?}: {cmd:?}\n{run}");
    assert!(signal.is_none() || sent, "the signal was never sent (the job ended first):\n{run}");
    run
}

/// Runs `pikernels ARGS --format json` under `mpirun -np N`, asserts it
/// succeeded on `np` ranks with its result verified, and returns the report.
pub fn json_run(np: usize, args: &[&str]) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--format", "json"]);
    let run = mpirun(np, &all);
    assert!(run.success(), "np={np} {args:?}:\n{run}");
    let report = run.report();
    assert_eq!(report["ranks"], np, "{run}");
    assert_eq!(report["verified"], true, "{run}");
    report
}

/// How long a refusal may take: about a second on a quiet machine, more
/// than twenty seconds seen under a load average above 100; the bound tells
/// a refusal from a run that did the work.
pub const REFUSED_WITHIN: Duration = Duration::from_secs(90);

/// Checks that `run` was refused: exit `code`, within [`REFUSED_WITHIN`],
/// `needle` printed exactly once (once for the job, not once per rank), no
/// panic and no report.
pub fn refused(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, Some(code), "{run}");
    assert!(run.elapsed < REFUSED_WITHIN, "took {:?}:\n{run}", run.elapsed);
    assert_eq!(run.stderr.matches(needle).count(), 1, "'{needle}' printed once:\n{run}");
    assert!(!run.stderr.contains("panicked"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
}

/// Whether the tests run as root (CI does).
pub fn is_root() -> bool {
    // SAFETY: a plain getter.
    unsafe { libc::geteuid() == 0 }
}

/// The processes of launcher `launcher` (pid) that are MPI ranks: those
/// whose parent it is, or it itself (a singleton), with the rank
/// `OMPI_COMM_WORLD_RANK` gives them.
pub fn ranks_of(launcher: i32) -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name, which is in parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let ppid: i32 = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid != launcher && pid != launcher {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let rank = env
            .split(|&b| b == 0)
            .find_map(|kv| std::str::from_utf8(kv).ok()?.strip_prefix("OMPI_COMM_WORLD_RANK=")?.parse().ok());
        if let Some(rank) = rank {
            out.push((pid, rank));
        }
    }
    out
}
