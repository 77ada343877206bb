//! Stopping cleanly: on SIGTERM (what `kubectl delete` and `mpirun` send),
//! SIGINT (Ctrl-C) or SIGHUP, every temporary file or directory this process
//! has in flight is removed before it exits, so a stopped job leaves nothing
//! half-written behind.
//!
//! The tools a job starts (ffmpeg in `transcode`) are registered too, through
//! [`spawn`]: the stop path kills them (their whole process group) and waits
//! until they are gone *before* it removes the paths, so no tool can create a
//! file after the cleanup ran. The stop path then keeps the registry locked
//! until the process ends, so no thread can register (and so create, with
//! [`create_tracked`], or start a tool, with [`spawn`]) anything after it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a stop signal must clean up.
struct Registry {
    /// Temporary files and directories.
    paths: Vec<PathBuf>,
    /// Tools started by [`spawn`] and not yet reaped: each leads its own
    /// process group, whose id stays reserved until the owner reaps it.
    children: Vec<u32>,
}

/// Set once a stop signal has arrived: the job is ending that way, so the
/// `--timeout` watchdog stays quiet (see `spmd::deadline::expire`).
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a stop signal has arrived and this process is cleaning up to exit.
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// Set once this rank knows the job is ending with its message already out
/// (a failed job-wide check: [`ending_quietly`]).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks the job as ending on a failure every rank has agreed on and whose
/// message is out. `mpirun` answers the first rank's non-zero exit with
/// SIGTERM to the ranks still on their way out; the stop path then still
/// removes what is in flight, but says nothing: a "stopped by SIGTERM" line
/// there would be a second message for one error (seen: a rank refusing
/// `--threads 17` was followed by its own "stopped by SIGTERM").
pub fn ending_quietly() {
    QUIET.store(true, std::sync::atomic::Ordering::SeqCst);
}

static IN_FLIGHT: Mutex<Registry> = Mutex::new(Registry { paths: Vec::new(), children: Vec::new() });

/// How long the stop path waits for killed tools to be gone: SIGKILL ends a
/// process at once unless it is stuck in the kernel (a dead NFS server);
/// `mpirun` may SIGKILL the rank itself soon after its SIGTERM.
const KILLED_WITHIN: Duration = Duration::from_secs(1);

/// How long a stopped rank of a job of several ranks waits after its cleanup
/// before it exits. `mpirun` (OpenMPI 4.1, measured) answers SIGTERM with
/// SIGCONT, then a second later SIGTERM to every rank, then SIGKILL to all
/// the others as soon as *one* rank exits (or a second later): the first
/// rank to finish its cleanup would cut the others' short and leave their
/// files behind. Cleanup takes milliseconds, so waiting this long lets every
/// rank finish it and still exit before the launcher's own second is up.
const LINGER: Duration = Duration::from_millis(400);

/// A temporary path that a signal must not leave behind. Dropping the guard
/// forgets the path (it does not delete it: the owner renames or removes it).
#[must_use = "the path is forgotten when the guard is dropped"]
pub struct Tracked(PathBuf);

/// Registers `path` (a file or a directory) for removal if a stop signal arrives.
/// A path that may not exist yet (a tool creates it later) can be tracked
/// this way; one this thread creates itself should use [`create_tracked`].
pub fn track(path: &Path) -> Tracked {
    lock().paths.push(path.to_path_buf());
    Tracked(path.to_path_buf())
}

/// Creates `path` with `create` (a directory, a file, a rename onto it) and
/// registers it, as one step with respect to a stop signal: the signal either
/// finds the path registered, or comes first, in which case `create` never
/// runs (this thread waits until the process has ended). Creating first and
/// tracking after would leave a moment in which a signal misses the path.
pub fn create_tracked(path: &Path, create: impl FnOnce(&Path) -> std::io::Result<()>) -> std::io::Result<Tracked> {
    let mut registry = lock();
    create(path)?;
    registry.paths.push(path.to_path_buf());
    Ok(Tracked(path.to_path_buf()))
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut registry = lock();
        if let Some(i) = registry.paths.iter().rposition(|p| *p == self.0) {
            registry.paths.swap_remove(i);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tool started by [`spawn`]: the stop path kills it (and every process in
/// its group) before removing the temporary paths. Drop the guard once
/// [`Running::exited`] holds and *before* reaping the child (`Child::wait`),
/// so that the registry never holds the pid of a process already reaped,
/// which the system could give to a stranger.
#[must_use = "the tool is forgotten when the guard is dropped"]
pub struct Running(u32);

/// Starts `cmd` as the leader of a new process group and registers it, as
/// one step with respect to a stop signal (as [`create_tracked`]): a tool is
/// never started after the stop path has killed the registered ones.
pub fn spawn(cmd: &mut Command) -> std::io::Result<(Child, Running)> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let mut registry = lock();
    let child = cmd.spawn()?;
    let pid = child.id();
    registry.children.push(pid);
    Ok((child, Running(pid)))
}

impl Running {
    /// Whether the tool has ended. It is not reaped here (`WNOWAIT`), so
    /// its pid stays reserved until the owner waits for it.
    pub fn exited(&self) -> bool {
        has_exited(self.0)
    }

    /// Kills the tool and every process in its group (a wrapper script's
    /// children too).
    pub fn kill(&self) {
        kill_group(self.0);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut registry = lock();
        if let Some(i) = registry.children.iter().position(|&p| p == self.0) {
            registry.children.swap_remove(i);
        }
    }
}

/// Whether child `pid` has ended (or was already reaped), without reaping it.
fn has_exited(pid: u32) -> bool {
    let id: libc::id_t = pid;
    // SAFETY: waitid writes only into `info`, which lives on this stack.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; WNOHANG makes it return at once.
    let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    // SAFETY: si_pid is valid for the SIGCHLD-style records waitid fills in.
    r != 0 || unsafe { info.si_pid() } != 0
}

/// SIGKILL to the process group led by `pid`, and to `pid` itself (in case
/// it left the group).
fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: plain syscalls; the pid is an unreaped child of this process.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Starts the thread that waits for stop signals. `whereabouts` names this
/// rank in the message; `linger` (a job of several ranks) waits [`LINGER`]
/// before exiting, so that every rank finishes its cleanup.
pub fn install(whereabouts: String, linger: bool) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new().name("pikernels-signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
            let removed = remove_in_flight();
            let name = match sig {
                SIGTERM => "SIGTERM",
                SIGINT => "SIGINT",
                _ => "SIGHUP",
            };
            if !QUIET.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!(
                    "pikernels: stopped by {name}{whereabouts}; removed {removed} temporary path{} (process {})",
                    if removed == 1 { "" } else { "s" },
                    std::process::id()
                );
            }
            if linger {
                std::thread::sleep(LINGER);
            }
            // _exit, not exit: MPI's atexit handlers may wait on threads
            // that will never finish now.
            // SAFETY: ends the process immediately; nothing after it runs.
            unsafe { libc::_exit(128 + sig) }
        }
    })?;
    Ok(())
}

/// Whether a process with this pid exists on this host (it may belong to
/// another user): how leftovers of dead runs, whose names carry the pid of
/// the process that made them, are told from files of runs still going. A
/// zombie (killed, not yet reaped: a rank orphaned when `mpirun` exits first)
/// counts as dead: it will never touch its files again.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, Some('Z' | 'X')) {
            return false;
        }
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// On the way out: kills every registered tool and waits (up to
/// [`KILLED_WITHIN`]) until each is gone, then removes every tracked path;
/// returns how many existed. The registry stays locked until the process
/// ends, so nothing can be registered, created or started after this: call
/// it only on a path that ends the process.
pub(crate) fn remove_in_flight() -> usize {
    let registry = lock();
    registry.children.iter().for_each(|&pid| kill_group(pid));
    let start = Instant::now();
    while !registry.children.iter().all(|&pid| has_exited(pid)) && start.elapsed() < KILLED_WITHIN {
        std::thread::sleep(Duration::from_millis(1));
    }
    let removed = remove(&registry.paths);
    // Never unlocked: the process is about to end.
    std::mem::forget(registry);
    removed
}

/// Removes files and directories; returns how many existed.
fn remove(paths: &[PathBuf]) -> usize {
    paths.iter().filter(|p| remove_path(p)).count()
}

/// Removes a file or a directory tree. A directory is tried a few times: a
/// child process (ffmpeg in `transcode`) may create a file in it while it is
/// being emptied, which makes the final `rmdir` fail once.
fn remove_path(p: &Path) -> bool {
    if !p.is_dir() {
        return std::fs::remove_file(p).is_ok();
    }
    for _ in 0..5 {
        if std::fs::remove_dir_all(p).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_paths_are_removed_and_guards_forget() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tmp"), dir.path().join("sub"));
        std::fs::write(&a, "x").unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("f"), "y").unwrap();
        let c = dir.path().join("c.tmp");
        std::fs::write(&c, "z").unwrap();
        let _ga = track(&a);
        let _gb = track(&b);
        {
            let _gc = track(&c);
            assert!(lock().paths.contains(&c));
        }
        // Other tests track their own files in the same registry at the same
        // time, so look only at this test's entries.
        let mine: Vec<PathBuf> = lock().paths.iter().filter(|p| p.starts_with(dir.path())).cloned().collect();
        assert_eq!(mine.len(), 2, "c was forgotten when its guard dropped: {mine:?}");
        assert_eq!(remove(&mine), 2);
        assert!(!a.exists() && !b.exists());
        assert!(c.exists(), "forgetting does not delete");
    }

    #[test]
    fn created_paths_are_tracked_and_failed_creations_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("made");
        let guard = create_tracked(&d, |p| std::fs::create_dir(p)).unwrap();
        assert!(d.is_dir() && lock().paths.contains(&d));
        let e = create_tracked(&d, |p| std::fs::create_dir(p)).err().expect("it exists already");
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(lock().paths.iter().filter(|p| **p == d).count(), 1, "the failure registered nothing");
        drop(guard);
        assert!(!lock().paths.contains(&d));
    }

    #[test]
    fn a_spawned_tool_and_its_children_are_killed_and_seen_to_end() {
        use std::io::BufRead;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 60 & echo $!; wait"]).stdout(std::process::Stdio::piped());
        let (mut child, running) = spawn(&mut cmd).unwrap();
        assert!(lock().children.contains(&child.id()));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        assert!(!running.exited() && pid_alive(grandchild));
        running.kill();
        let t = Instant::now();
        while !running.exited() || pid_alive(grandchild) {
            assert!(t.elapsed() < Duration::from_secs(20), "the tool and its child did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!pid_alive(child.id()), "an unreaped (zombie) tool counts as dead");
        drop(running);
        assert!(!lock().children.contains(&child.id()));
        assert!(!child.wait().unwrap().success(), "killed, not finished");
    }

    #[test]
    fn live_and_dead_pids_are_told_apart() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_alive(1), "init exists (and may belong to another user)");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid), "a reaped child is gone");
        assert!(!pid_alive(0) && !pid_alive(u32::MAX));
    }
}
