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
/// lowered to the cgroup (container) limit's headroom where one is set.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let mut avail = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?
        * 1024;
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u64>().ok());
    if let (Some(max), Some(used)) = (read("/sys/fs/cgroup/memory.max"), read("/sys/fs/cgroup/memory.current")) {
        avail = avail.min(max.saturating_sub(used));
    }
    Some(avail)
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
}
