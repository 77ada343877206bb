//! Files and machine resources: outputs are written under a temporary name
//! and renamed, so nobody ever finds half a PNG; resource checks estimate
//! what a run needs before anything is allocated.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where an output goes, decided from what its path points at before any work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A regular file, or nothing yet: written under a temporary name in the
    /// same directory and renamed over this path, which is the path given
    /// with every symbolic link resolved (so a link stays a link and its
    /// target is replaced).
    File(PathBuf),
    /// A character device, a FIFO or a socket (`/dev/stdout`, a named pipe):
    /// written directly; nothing is renamed or replaced.
    Stream(PathBuf),
}

/// The most links followed when resolving an output path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Decides how `path` is written: see [`Dest`]. A directory, a block device
/// or anything else is refused with the reason.
pub fn destination(path: &Path, what: &str) -> Result<Dest> {
    if path.as_os_str().is_empty() {
        bail!("the {what} path is empty");
    }
    if !names_a_file(path) {
        bail!(
            "the {what} path {} ends in '/', '.' or '..', so it cannot name a file; give a file name",
            path.display()
        );
    }
    let mut at = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            // Nothing there yet (or a link's missing target): a new file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !names_a_file(&at) {
                    bail!("the {what} path {} is a link to {}, which cannot name a file", path.display(), at.display());
                }
                return Ok(Dest::File(at));
            }
            Err(e) => bail!("cannot write the {what} {}: {e}", path.display()),
        };
        if !meta.file_type().is_symlink() {
            return classify(path, at, &meta, false, what);
        }
        let link = std::fs::read_link(&at).with_context(|| format!("cannot read the link {}", at.display()))?;
        at = if link.is_absolute() { link } else { parent_dir(&at).join(link) };
        // /dev/stdout and /proc/self/fd/N name an open descriptor: its
        // object is written through the path given, never replaced.
        if at.starts_with("/proc/") {
            return match std::fs::metadata(path) {
                Ok(meta) => classify(path, path.to_path_buf(), &meta, true, what),
                Err(e) => bail!("cannot write the {what} {}: {e}", path.display()),
            };
        }
    }
    bail!("cannot write the {what} {}: more than {MAX_LINKS} symbolic links to follow", path.display())
}

/// Whether the last component of `p`, as written, can name a file: not
/// empty (a trailing `/`), not `.` nor `..`. (`Path` itself ignores a
/// trailing slash and a final `.`, so `x.png/` would otherwise pass as
/// `x.png` and fail only at the rename, after the work.)
fn names_a_file(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let last = p.as_os_str().as_bytes().rsplit(|&c| c == b'/').next().unwrap_or(b"");
    !matches!(last, b"" | b"." | b"..")
}

fn classify(given: &Path, at: PathBuf, meta: &std::fs::Metadata, direct: bool, what: &str) -> Result<Dest> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        return Ok(if direct { Dest::Stream(at) } else { Dest::File(at) });
    }
    if t.is_char_device() || t.is_fifo() || t.is_socket() {
        return Ok(Dest::Stream(at));
    }
    if t.is_dir() {
        bail!("the {what} path {} is a directory; give a file name", given.display())
    }
    let kind = if t.is_block_device() { "a block device" } else { "neither a file, a device, a FIFO nor a socket" };
    bail!(
        "the {what} path {} is {kind}; pikernels writes regular files (and links to them), character devices, FIFOs and sockets",
        given.display()
    )
}

/// Checks that the input `path` is a regular file (or a link to one) before
/// anything opens it: opening a FIFO blocks until a writer comes, and a
/// device or a FIFO may never end. Returns its metadata.
pub fn check_input(path: &Path, what: &str) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    input_is_a_file(path, &meta, what)?;
    Ok(meta)
}

fn input_is_a_file(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = match () {
        _ if t.is_file() => return Ok(()),
        _ if t.is_dir() => "a directory",
        _ if t.is_fifo() => "a FIFO",
        _ if t.is_socket() => "a socket",
        _ if t.is_char_device() => "a character device",
        _ if t.is_block_device() => "a block device",
        _ => "not a regular file",
    };
    bail!(
        "the {what} {} is {kind}; pikernels reads inputs from regular files (and links to them) only: copy it to a file first",
        path.display()
    )
}

/// Opens the input `path` for reading once [`check_input`] holds; the
/// opened file is checked again (`fstat`), in case the path was swapped for
/// a FIFO in between (then opened without blocking: `O_NONBLOCK`).
pub fn open_input(path: &Path, what: &str) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    check_input(path, what)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let meta = file.metadata().with_context(|| format!("cannot read the {what} {}", path.display()))?;
    input_is_a_file(path, &meta, what)?;
    Ok(file)
}

/// This host's name as temporary names carry it (a directory may be shared
/// between hosts, and a pid means something only on its own host): the host
/// name (`unknown` if it cannot be read) with `/` and `-` replaced, so that it
/// can sit in a file name between dashes. Transcode's names use it too.
pub fn host_tag() -> String {
    hostname().map_or_else(|| "unknown".into(), |name| name.replace(['/', '-'], "_"))
}

/// This machine's host name as the system gives it (`None` if it cannot be
/// read or is empty); MPI need not be up.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    (ok && end > 0).then(|| String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Longest file name on the file systems pikernels writes to (NAME_MAX).
const NAME_MAX: usize = 255;

/// What every temporary output name holds before the host and the pid.
const TEMP_MARK: &str = ".pikernels-";

/// The temporary name `path` is written under before the rename: a hidden
/// file in the same directory (so the rename is atomic), tagged with the host
/// and the pid (so the leftovers of a killed run can be told from a live
/// run's), with the output's name shortened if it would not fit NAME_MAX.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    let suffix = format!("{TEMP_MARK}{}-{}.tmp", host_tag(), std::process::id());
    let room = NAME_MAX - 1 - suffix.len();
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    path.with_file_name(format!(".{}{suffix}", &name[..cut]))
}

/// Removes the temporary files that runs on this host left in `dir` when
/// they were killed (SIGKILL cannot be caught): those whose pid is no longer
/// alive here. Says so on standard error; returns how many it removed.
pub fn sweep_leftovers(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mark = format!("{TEMP_MARK}{}-", host_tag());
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once(&mark))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && !crate::signals::pid_alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        eprintln!(
            "pikernels: removed {} leftover temporary file{} of killed runs in {}: {}",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            dir.display(),
            removed.join(", ")
        );
    }
    removed.len()
}

/// Writes `path` atomically: `write` fills a temporary file in the same
/// directory, which is synced and renamed over `path` only if every write
/// succeeded; on failure the temporary file is removed and the destination is
/// left as it was. A device, FIFO or socket is written in place (see [`Dest`]).
#[cfg(test)]
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    stage(path, write)?.commit()
}

/// An output written in full under its temporary name and synced, not yet
/// in place: [`Staged::commit`] renames it; dropped uncommitted, it is
/// removed. A job with several outputs stages them all before it commits
/// any, so that a failure in a later one leaves none of them behind.
#[must_use = "a staged output is removed unless committed"]
pub struct Staged {
    /// `(temporary, destination)`; `None` for a stream, written in place
    /// when staged (it cannot be taken back).
    rename: Option<(PathBuf, PathBuf)>,
    /// Bytes written.
    pub len: u64,
    _tracked: Option<crate::signals::Tracked>,
}

/// Writes `path`'s content under its temporary name (or, for a stream, in
/// place): the first half of an atomic write; [`Staged::commit`] is the second.
pub fn stage(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<Staged> {
    let dest = match destination(path, "output")? {
        Dest::Stream(at) => {
            // A stream's size is not known (nor was it before: metadata says 0).
            write_direct(path, &at, write)?;
            return Ok(Staged { rename: None, len: 0, _tracked: None });
        }
        Dest::File(at) => at,
    };
    let tmp = temp_path(&dest);
    let tracked = crate::signals::track(&tmp);
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
        Ok(file.metadata().map(|m| m.len()).unwrap_or(0))
    })();
    match result {
        Ok(len) => Ok(Staged { rename: Some((tmp, dest)), len, _tracked: Some(tracked) }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

impl Staged {
    /// An output a tool has written in full under the temporary name `tmp`
    /// (tracked for stop signals by `tracked`), to be renamed over `dest`.
    pub fn adopt(tmp: PathBuf, dest: PathBuf, tracked: crate::signals::Tracked) -> Staged {
        let len = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
        Staged { rename: Some((tmp, dest)), len, _tracked: Some(tracked) }
    }

    /// Puts the output in place (renames it over its destination); on
    /// failure the temporary file is removed and the destination left as it was.
    pub fn commit(mut self) -> Result<()> {
        let Some((tmp, dest)) = self.rename.take() else { return Ok(()) };
        std::fs::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::Error::new(e).context(format!("cannot rename {} to {}", tmp.display(), dest.display()))
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some((tmp, _)) = &self.rename {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Writes a device, FIFO or socket in place: opened for writing (a socket
/// connected), written, flushed; never created, truncated or renamed.
fn write_direct(path: &Path, at: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::metadata(at).is_ok_and(|m| m.file_type().is_socket());
    let file = if is_socket {
        let stream = std::os::unix::net::UnixStream::connect(at)
            .with_context(|| format!("cannot connect to the socket {}", path.display()))?;
        File::from(std::os::fd::OwnedFd::from(stream))
    } else {
        OpenOptions::new().write(true).open(at).with_context(|| format!("cannot open {}", path.display()))?
    };
    let mut w = BufWriter::new(file);
    write(&mut w)?;
    w.flush().with_context(|| format!("cannot write {}", path.display()))
}

/// Checks that `path` can be written: see [`destination`]; for a file, its
/// directory exists and a file can be created there (tried, then removed),
/// and the leftovers of killed runs there are removed; for a device, FIFO or
/// socket, this process may write it.
pub fn check_writable(path: &Path, what: &str) -> Result<()> {
    let dest = match destination(path, what)? {
        Dest::Stream(at) => {
            use std::os::unix::ffi::OsStrExt;
            let c = std::ffi::CString::new(at.as_os_str().as_bytes())
                .with_context(|| format!("the {what} path {} holds a NUL byte", path.display()))?;
            // SAFETY: `c` is a valid C string.
            if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
                bail!("cannot write the {what} {}: {}", path.display(), std::io::Error::last_os_error());
            }
            return Ok(());
        }
        Dest::File(at) => at,
    };
    let dir = parent_dir(&dest);
    if !dir.is_dir() {
        bail!("cannot write the {what} {}: directory {} does not exist", path.display(), dir.display());
    }
    sweep_leftovers(dir);
    // Created and registered as one step, so that a stop signal while the
    // probe exists removes it too.
    let probe = temp_path(&dest);
    let create = |p: &Path| OpenOptions::new().write(true).create_new(true).open(p).map(drop);
    let tracked = crate::signals::create_tracked(&probe, create).with_context(|| {
        format!("cannot write the {what} {}: cannot create files in {}", path.display(), dir.display())
    })?;
    let _ = std::fs::remove_file(&probe);
    drop(tracked);
    Ok(())
}

/// A file a run reads or writes, named by the option that gave it.
#[derive(Debug, Clone)]
pub struct FileUse {
    /// The option, e.g. `--out`.
    pub option: &'static str,
    /// The path as given.
    pub path: PathBuf,
    /// Whether the run writes it (else it only reads it).
    pub writes: bool,
}

impl FileUse {
    pub fn reads(option: &'static str, path: &Path) -> FileUse {
        FileUse { option, path: path.to_path_buf(), writes: false }
    }

    pub fn writes(option: &'static str, path: &Path) -> FileUse {
        FileUse { option, path: path.to_path_buf(), writes: true }
    }
}

/// Which file a path names: the device and inode of what exists there (links
/// followed, so hard and symbolic links to one file are one file), or for a
/// file still to be created, its full name with the links of its directory
/// resolved.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Name(PathBuf),
}

fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(path) {
        return Some(Identity::Inode(m.dev(), m.ino()));
    }
    let dest = match destination(path, "output") {
        Ok(Dest::File(p)) | Ok(Dest::Stream(p)) => p,
        Err(_) => path.to_path_buf(),
    };
    let dir = std::fs::canonicalize(parent_dir(&dest)).ok()?;
    Some(Identity::Name(dir.join(dest.file_name()?)))
}

/// Refuses two uses of one file where either writes it: an output written
/// over an input, or two outputs over each other, found by identity (after
/// links, by device and inode), before any work.
pub fn check_distinct(uses: &[FileUse]) -> Result<(), String> {
    let ids: Vec<Option<Identity>> = uses.iter().map(|u| identity(&u.path)).collect();
    for (i, a) in uses.iter().enumerate() {
        for (j, b) in uses.iter().enumerate().skip(i + 1) {
            if !(a.writes || b.writes) || ids[i].is_none() || ids[i] != ids[j] {
                continue;
            }
            let how = if a.path == b.path { "" } else { " (after following links)" };
            let harm = match (a.writes, b.writes) {
                (true, true) => "one output would be written over the other".to_string(),
                (true, false) => format!("the {} would be written over the {}", a.option, b.option),
                _ => format!("the {} would be written over the {}", b.option, a.option),
            };
            return Err(format!(
                "{} {} and {} {} are the same file{how}: {harm}; give different paths",
                a.option,
                a.path.display(),
                b.option,
                b.path.display()
            ));
        }
    }
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

/// Memory this process can still allocate, and the limit that sets it: the
/// kernel's `MemAvailable`, lowered to the headroom of any memory-limited
/// cgroup this process is in (a container's or a Kubernetes pod's limit;
/// cgroup v1 and v2) and to what the address-space limit (`ulimit -v`, which
/// batch systems set) leaves of this process's address space.
pub fn available_memory() -> Option<(u64, &'static str)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib.saturating_mul(1024))
    });
    [
        (meminfo, "available"),
        (cgroup_headroom(), "left under this process's memory cgroup limit (a container's or pod's)"),
        (address_space_headroom(), "left under the address-space limit (ulimit -v)"),
    ]
    .into_iter()
    .filter_map(|(bytes, why)| Some((bytes?, why)))
    .min_by_key(|&(bytes, _)| bytes)
}

/// Address space that threads, MPI and the allocator take after the memory
/// check (thread stacks, glibc's per-thread arenas reserve 64 MiB each).
const ADDRESS_SPACE_RESERVE: u64 = 512 << 20;

/// What the address-space limit (`RLIMIT_AS`, `ulimit -v`) leaves of this
/// process's address space, less [`ADDRESS_SPACE_RESERVE`]; `None` when
/// there is no limit.
fn address_space_headroom() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only into `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let pages: u64 = std::fs::read_to_string("/proc/self/statm").ok()?.split_whitespace().next()?.parse().ok()?;
    // SAFETY: a plain getter.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
    let used = pages.saturating_mul(page).saturating_add(ADDRESS_SPACE_RESERVE);
    Some(limit.rlim_cur.saturating_sub(used))
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

/// Fails with an estimate if `need` bytes of memory are not available;
/// `advice` names the options that would lower the need ("give a smaller
/// --size or more processes").
pub fn check_memory(need: u64, what: &str, advice: &str) -> Result<()> {
    if let Some((avail, why)) = available_memory() {
        if need > avail {
            bail!(
                "{what} needs about {} of memory, but only {} is {why}: {advice}",
                human_bytes(need),
                human_bytes(avail)
            );
        }
    }
    Ok(())
}

/// Fails with an estimate if `need` bytes will not fit where `path` goes (a
/// device, FIFO or socket takes no disk space of its own).
pub fn check_disk(path: &Path, need: u64, what: &str) -> Result<()> {
    if matches!(destination(path, what), Ok(Dest::Stream(_))) {
        return Ok(());
    }
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
#[cfg(test)]
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
        // Paths whose last component cannot name a file, refused before any
        // work (Path alone reads `a.png/` as `a.png`, and the rename fails).
        let d = dir.path().display();
        for bad in [format!("{d}/a.png/"), format!("{d}/a.png/."), format!("{d}/nope/.."), ".".into(), "..".into()] {
            let e = check_writable(Path::new(&bad), "image").unwrap_err().to_string();
            assert!(e.contains("cannot name a file"), "{bad}: {e}");
        }
        std::os::unix::fs::symlink("x/", dir.path().join("to-a-dir")).unwrap();
        let e = check_writable(&dir.path().join("to-a-dir"), "image").unwrap_err().to_string();
        assert!(e.contains("is a link to") && e.contains("cannot name a file"), "{e}");
        std::fs::remove_file(dir.path().join("to-a-dir")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing made by a refusal");
    }

    #[test]
    fn outputs_are_written_by_what_they_point_at() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A symlink to a file: the target is replaced, the link stays a link.
        std::fs::write(d.join("target.txt"), "old").unwrap();
        symlink("target.txt", d.join("link.txt")).unwrap();
        assert_eq!(destination(&d.join("link.txt"), "x").unwrap(), Dest::File(d.join("target.txt")));
        write_text(&d.join("link.txt"), "new").unwrap();
        assert!(std::fs::symlink_metadata(d.join("link.txt")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(d.join("target.txt")).unwrap(), "new");
        // A dangling link: its target is created.
        symlink("made.txt", d.join("dangling")).unwrap();
        write_text(&d.join("dangling"), "made").unwrap();
        assert!(std::fs::symlink_metadata(d.join("dangling")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(d.join("made.txt")).unwrap(), "made");
        // A FIFO is written in place, not replaced.
        let fifo = d.join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(destination(&fifo, "x").unwrap(), Dest::Stream(fifo.clone()));
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_text(&fifo, "through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
        // A socket: connected and written.
        let sock = d.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut s, &mut text).unwrap();
            text
        });
        write_text(&sock, "over the socket").unwrap();
        assert_eq!(server.join().unwrap(), "over the socket");
        // A directory is refused.
        assert!(destination(d, "x").unwrap_err().to_string().contains("is a directory"));
        // Nothing else was left behind.
        let mut names: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["dangling", "link.txt", "made.txt", "pipe", "sock", "target.txt"]);
    }

    #[test]
    fn long_names_get_temporary_names_that_fit() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("x".repeat(250));
        assert!(temp_path(&long).file_name().unwrap().len() <= NAME_MAX);
        write_text(&long, "ok").unwrap();
        assert_eq!(std::fs::read_to_string(&long).unwrap(), "ok");
        let multibyte = dir.path().join("\u{e9}".repeat(120));
        assert!(temp_path(&multibyte).file_name().unwrap().len() <= NAME_MAX);
    }

    #[test]
    fn leftovers_of_dead_runs_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let host = host_tag();
        let dead_name = format!(".m.png{TEMP_MARK}{host}-{dead}.tmp");
        let live_name = format!(".m.png{TEMP_MARK}{host}-{}.tmp", std::process::id());
        let other_host = format!(".m.png{TEMP_MARK}elsewhere{host}-{dead}.tmp");
        for n in [&dead_name, &live_name, &other_host] {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        assert_eq!(sweep_leftovers(dir.path()), 1);
        assert!(!dir.path().join(&dead_name).exists());
        assert!(dir.path().join(&live_name).exists() && dir.path().join(&other_host).exists());
    }

    #[test]
    fn one_file_used_twice_is_refused_when_written() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("keys.bin"), "k").unwrap();
        symlink(d.join("keys.bin"), d.join("alias.bin")).unwrap();
        std::fs::hard_link(d.join("keys.bin"), d.join("hard.bin")).unwrap();
        let input = FileUse::reads("--input", &d.join("keys.bin"));
        for other in ["keys.bin", "alias.bin", "hard.bin"] {
            let e = check_distinct(&[input.clone(), FileUse::writes("--report", &d.join(other))]).unwrap_err();
            assert!(e.contains("--input") && e.contains("--report") && e.contains("written over the --input"), "{e}");
        }
        // Two new outputs at one name, spelled differently.
        let e = check_distinct(&[
            FileUse::writes("--out", &d.join("x.png")),
            FileUse::writes("--report", &d.join("./x.png")),
        ])
        .unwrap_err();
        assert!(e.contains("one output would be written over the other"), "{e}");
        // Two reads of one file, and distinct files, are fine.
        assert!(check_distinct(&[input.clone(), FileUse::reads("--b", &d.join("alias.bin"))]).is_ok());
        assert!(check_distinct(&[input, FileUse::writes("--out", &d.join("new.bin"))]).is_ok());
    }

    #[test]
    fn resources_are_read() {
        assert!(available_memory().unwrap().0 > 0);
        assert!(available_disk(Path::new("x")).unwrap() > 0);
        let e = check_memory(u64::MAX, "this", "give less").unwrap_err().to_string();
        assert!(e.contains("needs about") && e.ends_with(": give less"), "{e}");
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
