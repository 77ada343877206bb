//! Files and machine resources: outputs are written under a temporary name
//! and renamed, so nobody ever finds half a PNG; resource checks estimate
//! what a run needs before anything is allocated.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary name `path` is written under before the rename: a hidden
/// file in the same directory (so the rename is atomic), tagged with the pid.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.pikernels-{}.tmp", std::process::id()))
}

/// Writes `path` through `write` into a temporary file that is synced and
/// renamed over `path` only if everything succeeded; on any error the
/// temporary file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let _tracked = crate::signals::track(&tmp);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        let file =
            w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("cannot write {}", path.display()))?;
        file.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Checks that `path` can be written: it is not a directory, its directory
/// exists, and a file can be created there (tried, then removed).
pub fn check_writable(path: &Path, what: &str) -> Result<()> {
    if path.as_os_str().is_empty() {
        bail!("the {what} path is empty");
    }
    if path.is_dir() {
        bail!("the {what} path {} is a directory; give a file name", path.display());
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!("cannot write the {what} {}: directory {} does not exist", path.display(), dir.display());
    }
    let probe = temp_path(path);
    OpenOptions::new().write(true).create_new(true).open(&probe).with_context(|| {
        format!("cannot write the {what} {}: cannot create files in {}", path.display(), dir.display())
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Bytes free for an unprivileged writer on the file system holding `path`'s directory.
pub fn available_disk(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::ffi::CString::new(parent_dir(path).as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is a valid C string and `st` a valid out-pointer.
    if unsafe { libc::statvfs(dir.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Memory this process can still allocate: the kernel's `MemAvailable`,
/// lowered to the headroom of any memory-limited cgroup this process is in
/// (a container's or a Kubernetes pod's limit; cgroup v1 and v2).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let avail = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?
        * 1024;
    Some(cgroup_headroom().map_or(avail, |h| h.min(avail)))
}

/// The smallest `limit - usage` over this process's memory cgroups and their
/// ancestors (limits are inherited), if any is limited.
fn cgroup_headroom() -> Option<u64> {
    let read = |p: &Path| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut best: Option<u64> = None;
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        // (mount point, limit file, usage file): v2's unified hierarchy or v1's memory controller.
        let layouts: &[(&str, &str, &str)] = if controllers.is_empty() {
            &[
                ("/sys/fs/cgroup", "memory.max", "memory.current"),
                ("/sys/fs/cgroup/unified", "memory.max", "memory.current"),
            ]
        } else if controllers.split(',').any(|c| c == "memory") {
            &[("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
        } else {
            continue;
        };
        for (base, limit, usage) in layouts {
            let base = Path::new(base);
            let mut dir = base.join(path.trim_start_matches('/'));
            loop {
                // "max" (v2, unlimited) does not parse and is skipped.
                if let (Some(max), Some(used)) = (read(&dir.join(limit)), read(&dir.join(usage))) {
                    let room = max.saturating_sub(used);
                    best = Some(best.map_or(room, |b| b.min(room)));
                }
                if dir == base || !dir.pop() {
                    break;
                }
            }
        }
    }
    best
}

/// Fails with an estimate if `need` bytes of memory are not available.
pub fn check_memory(need: u64, what: &str) -> Result<()> {
    if let Some(avail) = available_memory() {
        if need > avail {
            bail!("{what} needs about {} of memory, but only {} is available", human_bytes(need), human_bytes(avail));
        }
    }
    Ok(())
}

/// Fails with an estimate if `need` bytes will not fit where `path` goes.
pub fn check_disk(path: &Path, need: u64, what: &str) -> Result<()> {
    if let Some(avail) = available_disk(path) {
        if need > avail {
            bail!(
                "{what} may need up to {} of disk at {}, but only {} is free there",
                human_bytes(need),
                parent_dir(path).display(),
                human_bytes(avail)
            );
        }
    }
    Ok(())
}

/// `n` bytes in binary units, e.g. `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |w| w.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display())))
}

/// Writes `what` (the report, the list of kernels) to standard output and
/// flushes it. A full disk (ENOSPC), a reader that went away (EPIPE: Rust
/// ignores SIGPIPE, so the write fails instead of killing the process) or a
/// standard output that was closed when the process started is an ordinary
/// error for the caller to report (exit 1), never a panic as `print!` would
/// give.
pub fn to_stdout(text: &str, what: &str) -> Result<()> {
    if stdout_was_closed() {
        bail!("cannot write {what} to standard output: it was closed when pikernels started");
    }
    write_flushed(&mut std::io::stdout().lock(), text, what)
}

fn write_flushed(w: &mut impl Write, text: &str, what: &str) -> Result<()> {
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .with_context(|| format!("cannot write {what} to standard output"))
}

/// Whether file descriptor 1 was closed when the process was started
/// (`pikernels ... >&-`). Rust's runtime then opens `/dev/null` on it before
/// `main`, so writes would succeed and the report would vanish; a probe that
/// runs before the runtime's start-up (an ELF constructor) notes it first.
fn stdout_was_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static PROBE_STDOUT: extern "C" fn() = probe_stdout;

#[cfg(target_os = "linux")]
extern "C" fn probe_stdout() {
    // SAFETY: fcntl(F_GETFD) only reads the descriptor table; no Rust state
    // is touched but an atomic.
    let closed = unsafe { libc::fcntl(1, libc::F_GETFD) } == -1;
    STDOUT_CLOSED.store(closed, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            bail!("boom")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        write_text(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn writability_checks_explain() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("a.png"), "image").is_ok());
        assert!(check_writable(dir.path(), "image").unwrap_err().to_string().contains("is a directory"));
        let missing = dir.path().join("nope/a.png");
        assert!(check_writable(&missing, "image").unwrap_err().to_string().contains("does not exist"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
    }

    #[test]
    fn resources_are_read() {
        assert!(available_memory().unwrap() > 0);
        assert!(available_disk(Path::new("x")).unwrap() > 0);
        assert!(check_memory(u64::MAX, "this").unwrap_err().to_string().contains("needs about"));
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10), "10 B");
    }

    #[test]
    fn stdout_errors_are_errors() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = write_flushed(&mut Full, "report\n", "the report").unwrap_err();
        let line = format!("{e:#}");
        assert!(line.starts_with("cannot write the report to standard output: "), "{line}");
        assert!(line.contains("No space left on device"), "{line}");
        let mut sink = Vec::new();
        write_flushed(&mut sink, "report\n", "the report").unwrap();
        assert_eq!(sink, b"report\n");
        assert!(!stdout_was_closed(), "the test harness's standard output is open");
    }
}
