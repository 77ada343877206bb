//! Faults injected into running jobs: a rank killed, the job stopped with
//! SIGTERM or SIGINT, a full disk, too little memory. Each must end the job
//! within seconds, non-zero, leaving no partial output or temporary file.
//! Prints its figures: faults injected, faults survived.

use crate::util;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::{files_in, mpirun_cmd, tempdir};

/// How long a job may take to end after a fault. A fault ends a job in about
/// a second when the machine is quiet; the bound is for a hang, with room for
/// a CI machine many times overloaded.
const ENDS_WITHIN: Duration = Duration::from_secs(60);

/// One line per fault, which scripts/test.sh counts.
fn tally(what: &str, survived: bool) {
    println!("fault injected: {what}: {}", if survived { "survived" } else { "NOT survived" });
}

/// Root-only tests run when root; elsewhere they say why and pass, unless
/// PIKERNELS_REQUIRE_ROOT_TESTS=1 (set by CI, which is root) makes them fail.
fn need_root(what: &str) -> bool {
    if util::is_root() {
        return true;
    }
    let required = std::env::var("PIKERNELS_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1");
    assert!(!required, "{what} needs root, and PIKERNELS_REQUIRE_ROOT_TESTS=1");
    println!("skipped: {what} needs root (mount, cgroups); CI runs it as root");
    false
}

/// A running job in its own process group, its output going to files.
struct Job {
    child: Child,
    dir: tempfile::TempDir,
}

impl Job {
    fn start(mut cmd: Command) -> Job {
        let dir = tempdir();
        use std::os::unix::process::CommandExt;
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .process_group(0);
        let child = cmd.spawn().expect("start mpirun");
        Job { child, dir }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Pids of processes whose parent is the launcher, with their MPI rank.
    fn ranks(&self) -> Vec<(i32, u32)> {
        util::ranks_of(self.pid())
    }

    /// Waits until `n` ranks run and each has installed its stop-signal
    /// handler (its `pikernels-signals` thread exists: a rank signalled
    /// before that would die of the signal's default action, before MPI is
    /// even up on a loaded machine), then `settle` longer (so they compute).
    fn wait_for_ranks(&self, n: usize, settle: Duration) -> Vec<(i32, u32)> {
        // A thread's name as /proc shows it: 15 bytes at most.
        let handler_ready = |pid: i32| {
            std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|rd| {
                rd.flatten().any(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == "pikernels-signa")
                })
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.ranks();
            if r.len() >= n && r.iter().all(|&(pid, _)| handler_ready(pid)) {
                std::thread::sleep(settle);
                return r;
            }
            assert!(Instant::now() < deadline, "ranks did not start: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After SIGSTOP: waits until every thread of the process is stopped (or
    /// the process has ended), so that nothing it does can happen any more.
    fn wait_until_stopped(&self) {
        let state = |stat: &str| stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let tasks: Vec<Option<char>> = std::fs::read_dir(format!("/proc/{}/task", self.pid()))
                .map(|rd| {
                    rd.flatten()
                        .map(|t| state(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            let ended = tasks.is_empty() || tasks.iter().any(|s| matches!(s, Some('Z' | 'X')));
            if ended || tasks.iter().all(|s| *s == Some('T')) {
                return;
            }
            assert!(Instant::now() < deadline, "the process did not stop: {tasks:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the end; `None` if it outlives `limit` (then the group is killed).
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(
                    status.code().unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)),
                );
            }
            if start.elapsed() > limit {
                // SAFETY: plain syscall on the group this test created.
                unsafe { libc::killpg(self.pid(), libc::SIGKILL) };
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Files the job left besides its captured output.
    fn left(&self, out_dir: &Path) -> Vec<String> {
        files_in(out_dir).into_iter().filter(|f| f != "stdout" && f != "stderr").collect()
    }

    fn processes_gone(&self, pids: &[(i32, u32)]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|(p, _)| Path::new(&format!("/proc/{p}")).exists()) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: as above; harmless if the group is gone.
        unsafe { libc::killpg(self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A long job: 10^13 samples would take hours, so it is surely mid-run.
fn long_pi(comm: &str) -> Vec<String> {
    ["pi-mc", "--samples", "1e13", "--threads", "1", "--comm", comm, "--report", "report.json"]
        .map(String::from)
        .to_vec()
}

fn check_end(job: &mut Job, what: &str, expect_message: &str, ranks: &[(i32, u32)]) {
    let t = Instant::now();
    let code = job.wait(ENDS_WITHIN);
    let err = job.stderr();
    let survived = code.is_some_and(|c| c != 0)
        && err.contains(expect_message)
        && job.left(job.dir.path()).is_empty()
        && job.processes_gone(ranks);
    tally(what, survived);
    assert!(code.is_some(), "{what}: still running {ENDS_WITHIN:?} after the fault\n{err}");
    assert_ne!(code, Some(0), "{what}: exit 0 after a fault\n{err}");
    assert!(err.contains(expect_message), "{what}: no '{expect_message}' in\n{err}");
    assert!(job.left(job.dir.path()).is_empty(), "{what}: left {:?}", job.left(job.dir.path()));
    assert!(job.processes_gone(ranks), "{what}: ranks still alive");
    println!("{what}: ended in {:?} with exit {code:?}", t.elapsed());
}

#[test]
fn a_killed_worker_rank_ends_the_job() {
    for comm in ["collective", "dynamic"] {
        let args = long_pi(comm);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut job = Job::start(mpirun_cmd(3, &argv));
        let ranks = job.wait_for_ranks(3, Duration::from_millis(700));
        let (victim, _) = *ranks.iter().find(|(_, r)| *r == 1).expect("rank 1");
        // SAFETY: plain syscall on a process this test started.
        unsafe { libc::kill(victim, libc::SIGKILL) };
        check_end(&mut job, &format!("SIGKILL rank 1 ({comm})"), "signal 9", &ranks);
    }
}

#[test]
fn sigterm_to_mpirun_stops_every_rank() {
    let args = long_pi("dynamic");
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut job = Job::start(mpirun_cmd(3, &argv));
    let ranks = job.wait_for_ranks(3, Duration::from_millis(700));
    // SAFETY: plain syscall on a process this test started.
    unsafe { libc::kill(job.pid(), libc::SIGTERM) };
    check_end(&mut job, "SIGTERM to mpirun", "pikernels: stopped by SIGTERM", &ranks);
}

#[test]
fn ctrl_c_stops_every_rank() {
    // A terminal's Ctrl-C sends SIGINT to the whole foreground process group.
    let args = long_pi("collective");
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut job = Job::start(mpirun_cmd(2, &argv));
    let ranks = job.wait_for_ranks(2, Duration::from_millis(700));
    // SAFETY: plain syscall on the group this test created.
    unsafe { libc::killpg(job.pid(), libc::SIGINT) };
    // mpirun turns SIGINT into SIGTERM for the ranks it started; either way they stop cleanly.
    check_end(&mut job, "SIGINT to the process group", "pikernels: stopped by SIG", &ranks);
}

/// A big picture written to `dir/m.png` with no launcher (the process writes
/// the PNG itself), returned *stopped* (SIGSTOP) while its temporary file
/// holds bytes. Writing the file takes only milliseconds (24 ms for these
/// 19 MB here, less on a faster machine), so a signal sent after merely
/// seeing the file could land after the rename: the process is frozen
/// first, and the file looked for again once it is frozen, when nothing can
/// rename it any more; a try that finds it already renamed starts again.
/// (An empty `.tmp` may be the probe the preflight makes and removes at once
/// to check the directory is writable, with the same name: a signal there
/// finds the probe, or nothing, not the file being written.)
fn stopped_while_writing_a_big_png(dir: &Path) -> Job {
    let written = |f: &String| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0);
    let writing = || files_in(dir).iter().any(|f| f.ends_with(".tmp") && written(f));
    for try_ in 1..=10 {
        let mut cmd = Command::new(util::bin());
        util::mpi_env(&mut cmd).args(["mandelbrot", "--width", "9000", "--height", "9000", "--max-iter", "8", "--out"]);
        cmd.arg(dir.join("m.png"));
        let mut job = Job::start(cmd);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut ended = false;
        while !writing() && Instant::now() < deadline {
            if job.child.try_wait().unwrap().is_some() {
                ended = true; // reaped: its pid is no longer ours to signal
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if !ended {
            // SAFETY: plain syscall on a process this test started and has not reaped.
            unsafe { libc::kill(job.pid(), libc::SIGSTOP) };
            job.wait_until_stopped();
            if writing() {
                return job;
            }
            // SAFETY: as above.
            unsafe { libc::kill(job.pid(), libc::SIGCONT) };
        }
        // Too late (or it ended first): let it finish and try again.
        println!("try {try_}: the temporary file was renamed before the process stopped; again");
        let code = job.wait(ENDS_WITHIN);
        assert_eq!(code, Some(0), "{}", job.stderr());
        std::fs::remove_file(dir.join("m.png")).unwrap();
    }
    panic!("never caught the process with its temporary file written: {:?}", files_in(dir));
}

#[test]
fn sigterm_while_writing_removes_the_temporary_file() {
    let dir = tempdir();
    let mut job = stopped_while_writing_a_big_png(dir.path());
    // SAFETY: plain syscalls on a process this test started; SIGTERM stays
    // pending until SIGCONT resumes it.
    unsafe {
        libc::kill(job.pid(), libc::SIGTERM);
        libc::kill(job.pid(), libc::SIGCONT);
    }
    let code = job.wait(ENDS_WITHIN);
    let left = files_in(dir.path());
    let survived = code == Some(143) && left.is_empty() && job.stderr().contains("removed 1 temporary path");
    tally("SIGTERM while writing the PNG", survived);
    assert_eq!(code, Some(143), "{}", job.stderr());
    assert!(left.is_empty(), "left {left:?}");
    assert!(job.stderr().contains("stopped by SIGTERM; removed 1 temporary path"), "{}", job.stderr());
}

/// A small tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempdir();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "pikernels-test"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount a tmpfs");
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    if !need_root("the full-disk test") {
        return;
    }
    let disk = Tmpfs::new("256k");
    // Too small for the picture: refused before any work, with the estimate.
    let png = disk.path().join("m.png");
    let r = util::mpirun(3, &["mandelbrot", "--width", "1000", "--height", "1000", "--out", png.to_str().unwrap()]);
    let refused =
        r.code == Some(2) && r.stderr.contains("may need up to 3.3 MiB of disk") && files_in(disk.path()).is_empty();
    tally("a disk too small for the picture", refused);
    assert!(refused, "{r}");

    // Full while writing: the report cannot be written after the run.
    std::fs::write(disk.path().join("filler"), vec![1u8; 256 * 1024]).ok();
    let report = disk.path().join("r.json");
    let r = util::mpirun(2, &["pi-mc", "--samples", "1e5", "--format", "json", "--report", report.to_str().unwrap()]);
    let clean =
        r.code == Some(1) && r.stderr.contains("No space left on device") && files_in(disk.path()) == ["filler"];
    tally("a disk full when the report is written", clean);
    assert!(clean, "{r}\nleft {:?}", files_in(disk.path()));
}

#[test]
fn too_little_memory_is_refused_with_the_estimate() {
    if !need_root("the memory-limit test") {
        return;
    }
    // A memory cgroup (v1 or v2) with a 300 MB limit, inside this process's own.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let (base, limit_file) = if let Some(path) = own.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p)) {
        (format!("/sys/fs/cgroup/memory{path}"), "memory.limit_in_bytes")
    } else {
        let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/");
        (format!("/sys/fs/cgroup{path}"), "memory.max")
    };
    let cg = Path::new(&base).join(format!("pikernels-test-{}", std::process::id()));
    if std::fs::create_dir(&cg).is_err() || std::fs::write(cg.join(limit_file), "300000000").is_err() {
        let _ = std::fs::remove_dir(&cg);
        println!("skipped: no writable memory cgroup at {base}");
        return;
    }
    let procs = cg.join("cgroup.procs");
    // One thread each: the estimate counts the rows a rank computes at a time, per thread.
    let mut cmd =
        mpirun_cmd(3, &["mandelbrot", "--width", "8000", "--height", "8000", "--threads", "1", "--out", "m.png"]);
    let dir = tempdir();
    cmd.current_dir(dir.path());
    let procs2 = procs.clone();
    // SAFETY: the closure only writes a file, which is safe between fork and exec here.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || std::fs::write(&procs2, std::process::id().to_string()));
    }
    let r = util::run(cmd, util::TIMEOUT);
    std::thread::sleep(Duration::from_millis(200));
    let _ = std::fs::remove_dir(&cg);
    let ok = r.code == Some(2)
        && r.stderr.matches("needs about 413.3 MiB of memory, but only").count() == 1
        && files_in(dir.path()).is_empty();
    tally("a memory cgroup too small for the picture", ok);
    assert!(ok, "{r}");
}

/// An address-space limit (`ulimit -v`, as batch systems set it) too small
/// for the job: refused before any work, exit 2, with the estimate, the
/// limit that binds and the options to change (the allocation would
/// otherwise fail mid-run and the rank abort with exit 134). A job that fits
/// under the same limit runs.
#[test]
fn an_address_space_limit_is_respected_before_any_work() {
    let dir = tempdir();
    let limited = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        // 1.5 GiB of address space: MPI and the binary take a few hundred MiB of it.
        cmd.arg("-c").arg("ulimit -v 1572864 && exec \"$0\" \"$@\"").arg(util::bin()).args(args);
        util::mpi_env(&mut cmd).current_dir(dir.path());
        util::run(cmd, util::TIMEOUT)
    };
    let r = limited(&["heat", "--size", "8000x8000", "--steps", "1", "--out", "h.png"]);
    let ok = r.code == Some(2)
        && r.stderr.contains("needs about")
        && r.stderr.contains("under the address-space limit (ulimit -v): give a smaller --size or --halo-depth")
        && files_in(dir.path()).is_empty();
    tally("an address-space limit (ulimit -v) too small for heat", ok);
    assert!(ok, "{r}\nleft {:?}", files_in(dir.path()));
    let fits = limited(&["heat", "--size", "200x150", "--steps", "2", "--out", "h.png"]);
    assert!(fits.success(), "a job that fits under the limit runs:\n{fits}");
}

/// CPU seconds (user + system) from a /proc `stat` file.
fn stat_cpu_seconds(stat: &str) -> f64 {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let field = |i: usize| rest.split_whitespace().nth(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: a plain getter.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (field(11) + field(12)) / ticks
}

/// CPU seconds a process has used, all its threads together; the process
/// must still exist (a vanished one would read as idle).
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    stat_cpu_seconds(&stat.unwrap_or_else(|e| panic!("process {pid} is gone: {e}")))
}

/// CPU seconds a rank's compute threads (its rayon pool, `pikernels-worker-*`)
/// have used: what MPI's start-up spends is not counted.
fn worker_cpu_seconds(pid: i32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0.0 };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("pikernels-worke")))
        .map(|t| stat_cpu_seconds(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
        .sum()
}

/// Samples of a pi-mc run that keeps each of 2 single-threaded ranks busy
/// for about 2 s on this machine, from a timed run of 1e9: long enough that
/// rank 1 is surely stopped mid-share, short enough that rank 0 (which under
/// `--comm dynamic` goes on to take every chunk left) is idle long before
/// the limit. (A fixed 2.4e10 was 3 s a share on one machine and 1.2 s on
/// another.)
fn two_second_shares() -> String {
    let r = util::direct(&["pi-mc", "--samples", "1e9", "--threads", "1", "--format", "json"]);
    assert!(r.success(), "{r}");
    let rep: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let s = rep["timing"]["compute_s"]["max"].as_f64().unwrap().max(1e-3);
    format!("{:.0}", (1e9 / s * 2.0 * 2.0).clamp(4e9, 2e11))
}

/// A rank stopped with SIGSTOP mid-computation: the job would wait for it
/// forever. With `--timeout`, rank 0 ends the job at the limit, naming the
/// stopped rank, with exit status 4; while it waits, the waiting rank sleeps
/// instead of spinning on a core.
#[test]
fn a_stopped_rank_ends_the_job_at_the_timeout_and_nobody_spins() {
    const LIMIT_S: u64 = 30;
    let samples = two_second_shares();
    for comm in ["collective", "dynamic"] {
        let what = format!("SIGSTOP rank 1 with --timeout ({comm})");
        let limit = format!("{LIMIT_S}s");
        let argv = ["pi-mc", "--samples", &samples, "--threads", "1", "--comm", comm, "--report", "r.json"];
        let mut args: Vec<&str> = argv.to_vec();
        args.extend(["--timeout", &limit]);
        let start = Instant::now();
        let mut job = Job::start(mpirun_cmd(2, &args));
        let ranks = job.wait_for_ranks(2, Duration::ZERO);
        let pid = |rank| ranks.iter().find(|(_, r)| *r == rank).expect("rank").0;
        let (root, victim) = (pid(0), pid(1));
        // Stop rank 1 once it is surely computing (its pool has used CPU time).
        let computing = Instant::now() + Duration::from_secs(60);
        while worker_cpu_seconds(victim) < 0.2 {
            assert!(Instant::now() < computing, "{what}: rank 1 never computed\n{}", job.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: plain syscall on a process this test started.
        unsafe { libc::kill(victim, libc::SIGSTOP) };
        // Rank 0 finishes its share and waits: over the last seconds before
        // the limit it must be nearly idle (spinning would use the window).
        let window = Duration::from_secs(6);
        std::thread::sleep(Duration::from_secs(LIMIT_S - 8).saturating_sub(start.elapsed()));
        let cpu_before = cpu_seconds(root);
        std::thread::sleep(window);
        let busy = (cpu_seconds(root) - cpu_before) / window.as_secs_f64();
        let code = job.wait(Duration::from_secs(LIMIT_S) + ENDS_WITHIN);
        let elapsed = start.elapsed();
        let err = job.stderr();
        let survived = code == Some(4)
            && err.matches("timed out").count() == 1
            && err.contains("rank 1 (")
            && err.contains("had not finished its share")
            && elapsed >= Duration::from_secs(LIMIT_S)
            && busy < 0.25
            && job.left(job.dir.path()).is_empty()
            && job.processes_gone(&ranks);
        tally(&what, survived);
        assert_eq!(code, Some(4), "{what}: exit status\n{err}");
        assert_eq!(err.matches("timed out").count(), 1, "{what}: one message\n{err}");
        assert!(
            err.contains("job of 2 ranks did not finish within --timeout 30s; rank 1 ("),
            "{what}: names rank 1\n{err}"
        );
        assert!(elapsed >= Duration::from_secs(LIMIT_S), "{what}: ended before the limit ({elapsed:?})\n{err}");
        assert!(busy < 0.25, "{what}: rank 0 used {:.0}% of a core while waiting", busy * 100.0);
        assert!(job.left(job.dir.path()).is_empty(), "{what}: left {:?}", job.left(job.dir.path()));
        assert!(job.processes_gone(&ranks), "{what}: ranks still alive (the stopped one too)");
        println!("{what}: exit 4 after {elapsed:?}; rank 0 used {:.1}% of a core while waiting", busy * 100.0);
    }
}

/// Every rank still computing at the limit (a job far too big for it): the
/// watchdog ends the job just after the limit, saying what the rank was doing.
#[test]
fn a_job_still_computing_at_the_timeout_ends_with_exit_4() {
    let mut args = long_pi("collective");
    // 10 s, not less: the limit counts from the start, and MPI's start-up on
    // a loaded machine can take seconds ("was still starting" is another message).
    args.extend(["--timeout".into(), "10s".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    let mut job = Job::start(mpirun_cmd(2, &argv));
    let ranks = job.wait_for_ranks(2, Duration::ZERO);
    let code = job.wait(ENDS_WITHIN);
    let err = job.stderr();
    let ok = code == Some(4)
        && err.matches("timed out").count() == 1
        && err.contains("was still computing its share")
        && start.elapsed() >= Duration::from_secs(10)
        && job.left(job.dir.path()).is_empty()
        && job.processes_gone(&ranks);
    tally("--timeout passed while every rank computes", ok);
    assert!(ok, "exit {code:?} after {:?}\n{err}\nleft {:?}", start.elapsed(), job.left(job.dir.path()));
}

/// SIGKILL (which nothing can catch) while the PNG is written leaves the
/// temporary file; the next run writing to the same place removes it, says
/// so, and writes its own picture.
#[test]
fn sigkill_while_writing_leaves_a_leftover_that_the_next_run_removes() {
    let dir = tempdir();
    let png = dir.path().join("m.png");
    let mut job = stopped_while_writing_a_big_png(dir.path());
    // SAFETY: plain syscall on a process this test started (a stopped
    // process dies of SIGKILL as any other).
    unsafe { libc::kill(job.pid(), libc::SIGKILL) };
    let _ = job.wait(ENDS_WITHIN);
    let leftovers: Vec<String> = files_in(dir.path()).into_iter().filter(|f| f.ends_with(".tmp")).collect();
    assert_eq!(leftovers.len(), 1, "SIGKILL leaves the temporary file: {:?}", files_in(dir.path()));
    let r = util::direct(&["mandelbrot", "--width", "64", "--height", "48", "--out", png.to_str().unwrap()]);
    let ok = r.success()
        && r.stderr.contains(&format!("removed 1 leftover temporary file of killed runs in {}", dir.path().display()))
        && r.stderr.contains(&leftovers[0])
        && files_in(dir.path()) == ["m.png"];
    tally("SIGKILL while writing the PNG, then a second run", ok);
    assert!(ok, "{r}\nleft {:?}", files_in(dir.path()));
}

/// Whether a process has ended: gone, or a zombie its (stopped) parent has
/// not reaped yet.
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => matches!(stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()), Some('Z' | 'X')),
    }
}

/// `mpirun` itself stopped (SIGSTOP: a frozen launcher node) while the job
/// computes: `MPI_Abort` asks the launcher to end the job and nobody
/// answers. `--timeout` must still end every rank: each rank's watchdog
/// fires, and a rank whose abort goes unanswered ends itself.
#[test]
fn the_timeout_ends_every_rank_even_when_mpirun_is_stopped() {
    const LIMIT_S: u64 = 8;
    let what = "SIGSTOP mpirun with --timeout";
    let mut args = long_pi("collective");
    args.extend(["--timeout".into(), format!("{LIMIT_S}s")]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    let mut job = Job::start(mpirun_cmd(2, &argv));
    let ranks = job.wait_for_ranks(2, Duration::ZERO);
    // SAFETY: plain syscall on a process this test started.
    unsafe { libc::kill(job.pid(), libc::SIGSTOP) };
    // The limit, the watchdogs' grace (2 s and 3 s), the unanswered abort
    // (5 s), and room for a loaded machine.
    let bound = Duration::from_secs(LIMIT_S) + ENDS_WITHIN;
    while !ranks.iter().all(|&(pid, _)| ended(pid)) && start.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(50));
    }
    let all_ended = ranks.iter().all(|&(pid, _)| ended(pid));
    let when = start.elapsed();
    // SAFETY: as above; the launcher then reaps its ranks and reports.
    unsafe { libc::kill(job.pid(), libc::SIGCONT) };
    let code = job.wait(ENDS_WITHIN);
    let err = job.stderr();
    let ok =
        all_ended && code.is_some_and(|c| c != 0) && err.contains("timed out") && job.left(job.dir.path()).is_empty();
    tally(what, ok);
    assert!(all_ended, "{what}: ranks still running {when:?} after the start (limit {LIMIT_S} s)\n{err}");
    assert!(when >= Duration::from_secs(LIMIT_S), "{what}: ended before the limit ({when:?})\n{err}");
    assert!(code.is_some_and(|c| c != 0), "{what}: mpirun's exit {code:?}\n{err}");
    assert!(err.contains("did not finish within --timeout 8s"), "{what}: no timeout message\n{err}");
    assert!(!err.contains("the MPI library ended"), "{what}: our own abort is no library exit\n{err}");
    assert!(job.left(job.dir.path()).is_empty(), "{what}: left {:?}", job.left(job.dir.path()));
    println!("{what}: every rank ended {when:?} after the start; mpirun exit {code:?} once continued");
}

/// A shared library that, preloaded into the ranks, makes the MPI function
/// `function` call `exit(1)` on rank 0 (and work as usual elsewhere): what
/// an MPI library does when it gives up inside a call (OpenMPI 4.1 when its
/// start-up fails, or a rank loses its launcher).
fn exit_inside(dir: &Path, function: &str, params: &str, args: &str) -> std::path::PathBuf {
    let c = dir.join(format!("{function}.c"));
    let so = dir.join(format!("{function}.so"));
    std::fs::write(
        &c,
        format!(
            "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <stdlib.h>\n#include <string.h>\n\
             int {function}({params}) {{\n\
               const char *rank = getenv(\"OMPI_COMM_WORLD_RANK\");\n\
               if (!rank || strcmp(rank, \"0\") == 0) exit(1);\n\
               int (*real)({params}) = dlsym(RTLD_NEXT, \"{function}\");\n\
               return real({args});\n}}\n"
        ),
    )
    .unwrap();
    let built = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&so).arg(&c).arg("-ldl").status();
    assert!(built.is_ok_and(|s| s.success()), "cannot build {}", c.display());
    so
}

/// The MPI library ends a rank with `exit()` (no signal, no MPI_Abort, MPI
/// not finalised): the launcher then says only that the rank "exited
/// improperly". The rank itself must say which rank it was and what it was
/// doing, with and without a launcher; a run that ends normally (or through
/// pikernels' own abort) says nothing of the kind.
#[test]
fn an_exit_inside_the_mpi_library_is_explained() {
    let dir = tempdir();
    let cases = [
        (
            exit_inside(
                dir.path(),
                "MPI_Init_thread",
                "int *argc, char ***argv, int required, int *provided",
                "argc, argv, required, provided",
            ),
            "starting MPI (in MPI_Init)",
        ),
        (
            exit_inside(
                dir.path(),
                "MPI_Comm_split_type",
                "void *comm, int type, int key, void *info, void *out",
                "comm, type, key, info, out",
            ),
            "learning its node",
        ),
    ];
    for (shim, doing) in &cases {
        let preload = format!("LD_PRELOAD={}", shim.display());
        for np in [1, 2] {
            let what = format!("exit(1) inside the MPI library while {doing}, np {np}");
            let args = ["pi-mc", "--samples", "1e6"];
            let run = if np == 1 {
                let mut cmd = Command::new(util::bin());
                util::mpi_env(&mut cmd).env("LD_PRELOAD", shim).args(args);
                util::run(cmd, util::TIMEOUT)
            } else {
                let mut cmd = Command::new("mpirun");
                util::mpi_env(&mut cmd)
                    .args(["--oversubscribe", "-np", "2", "-x", &preload])
                    .arg(util::bin())
                    .args(args);
                util::run(cmd, util::TIMEOUT)
            };
            let whose =
                if np == 1 { "pikernels: error: ".to_string() } else { "pikernels: error on rank 0 of 2 (".into() };
            let said = run.stderr.lines().any(|l| {
                l.starts_with(&whose)
                    && l.contains(&format!("the MPI library ended this process while it was {doing}"))
                    && l.contains("without finalising MPI")
            });
            let ok = run.code.is_some_and(|c| c != 0) && said;
            tally(&what, ok);
            assert!(ok, "{what}: no explanation\n{run}");
        }
    }
    // Control: the same job without the fault says nothing of the kind.
    let run = util::mpirun(2, &["pi-mc", "--samples", "1e6"]);
    assert!(run.success() && !run.stderr.contains("MPI library ended"), "{run}");
}
