//! Stopping cleanly: on SIGTERM (what `kubectl delete` and `mpirun` send),
//! SIGINT (Ctrl-C) or SIGHUP, every temporary file or directory this process
//! has in flight is removed before it exits, so a stopped job leaves nothing
//! half-written behind.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary path that a signal must not leave behind. Dropping the guard
/// forgets the path (it does not delete it: the owner renames or removes it).
#[must_use = "the path is forgotten when the guard is dropped"]
pub struct Tracked(PathBuf);

/// Registers `path` (a file or a directory) for removal if a stop signal arrives.
pub fn track(path: &Path) -> Tracked {
    lock().push(path.to_path_buf());
    Tracked(path.to_path_buf())
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut paths = lock();
        if let Some(i) = paths.iter().rposition(|p| *p == self.0) {
            paths.swap_remove(i);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the thread that waits for stop signals. `whereabouts` names this
/// rank in the message.
pub fn install(whereabouts: String) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new().name("pikernels-signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let removed = remove_in_flight();
            let name = match sig {
                SIGTERM => "SIGTERM",
                SIGINT => "SIGINT",
                _ => "SIGHUP",
            };
            eprintln!(
                "pikernels: stopped by {name}{whereabouts}; removed {removed} temporary path{}",
                if removed == 1 { "" } else { "s" }
            );
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
/// the process that made them, are told from files of runs still going.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes every tracked path; returns how many existed.
pub(crate) fn remove_in_flight() -> usize {
    let paths = std::mem::take(&mut *lock());
    remove(&paths)
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
            assert!(lock().contains(&c));
        }
        // Other tests track their own files in the same registry at the same
        // time, so look only at this test's entries.
        let mine: Vec<PathBuf> = lock().iter().filter(|p| p.starts_with(dir.path())).cloned().collect();
        assert_eq!(mine.len(), 2, "c was forgotten when its guard dropped: {mine:?}");
        assert_eq!(remove(&mine), 2);
        assert!(!a.exists() && !b.exists());
        assert!(c.exists(), "forgetting does not delete");
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
