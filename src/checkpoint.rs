//! `--checkpoint DIR`: the journal of a unit job's finished work, so that
//! a rerun of the same command does only what is missing.
//!
//! A directory holds one job's journal:
//!
//! - `job.json`: what the journal belongs to (the kernel, its parameters,
//!   the units, the bytes per unit, the packing grain and the format
//!   version: everything that changes a unit's result). Written once, by the
//!   first run, through a temporary name and a rename; a later run whose
//!   job differs is refused (exit 2) naming what differs, and nothing in the
//!   directory is touched.
//! - `units.log`: records appended as batches of units finish, each made
//!   durable (`fsync`) before the next batch starts: a magic number, the
//!   unit range, the exact tally, the batch's bytes (a unit job's bytes as
//!   they travel: Mandelbrot's compressed PNG blocks) and a CRC-32 of all of
//!   it. Reading stops at the first record that is short, fails its
//!   checksum or overlaps another (a run killed while writing, a file edited
//!   or truncated): the records before it are used, the units after it are
//!   computed again, and the damaged tail is cut off before new records are
//!   appended. A record is never used unless its checksum holds.
//! - `lock`: locked (`flock`) by the run that uses the journal, for as long
//!   as it runs, and holding its host and process id: a second job on the
//!   same directory is refused while the first runs.
//!
//! Only rank 0 reads and writes the journal (the directory must be there
//! for rank 0 alone: a volume on the launcher's node, not a shared file
//! system). A record that cannot be written (a full disk, the directory
//! removed) is warned about once and the run goes on without checkpoints.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The journal's format; a journal of another format is another job's.
pub const FORMAT: u64 = 1;

/// A record's first bytes.
const MAGIC: [u8; 8] = *b"pkunits1";

/// Bytes of a record before its data: magic, start, end, tally, data length.
const HEAD: usize = 8 + 8 + 8 + 16 + 8;

/// A batch of finished units: their range, exact tally and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The units, in the job's numbering.
    pub units: Range<u64>,
    /// Their exact tally.
    pub tally: i128,
    /// Their bytes as the job's units give them (packed if the job packs).
    pub bytes: Vec<u8>,
}

/// An open journal, locked for this run.
pub struct Journal {
    log: File,
    /// The directory's claim, held for the run.
    claim: Claim,
    records: Vec<Record>,
    /// Set once a record could not be written: no more are tried.
    failed: bool,
}

/// A journal directory claimed for this run: created if missing, locked,
/// and holding this job's description (`job.json`).
pub struct Claim {
    dir: PathBuf,
    /// Held for the run: the lock is the open file's.
    _lock: File,
}

impl Claim {
    /// Claims `dir` for the job `identity` (an object): creates it if
    /// missing, locks it, and checks that its journal is this job's (or
    /// starts one). Refuses (an error to show as a usage error) another
    /// job's journal, a directory in use, and a path that is not a directory.
    pub fn open(dir: &Path, identity: &Value) -> Result<Claim> {
        let shown = dir.display();
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) if dir.is_dir() => {} // a link to a directory
            Ok(_) => bail!("--checkpoint {shown} is not a directory"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(dir)
                .with_context(|| format!("--checkpoint {shown}: cannot create the directory"))?,
            Err(e) => bail!("--checkpoint {shown}: {e}"),
        }
        // The journal's files are regular files or absent: a link or a device
        // in their place (a FIFO that blocks, /dev/zero that never ends) is
        // refused, not read.
        for name in ["lock", "job.json", "units.log", STATE] {
            match std::fs::symlink_metadata(dir.join(name)) {
                Ok(m) if !m.file_type().is_file() => bail!(
                    "--checkpoint {shown}: {name} there is not a regular file (a link, a directory or a device): \
                     this is not a pikernels journal; give another directory"
                ),
                _ => {}
            }
        }
        // Another job's journal is refused before anything here is touched
        // (the lock included).
        let job_path = dir.join("job.json");
        let belongs = |job_path: &Path| -> Result<bool> {
            match std::fs::read(job_path) {
                Ok(text) => {
                    let theirs: Value = serde_json::from_slice(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "--checkpoint {shown}: {} is not a pikernels journal's job description ({e}); \
                             nothing in the directory was changed: give another directory",
                            job_path.display()
                        )
                    })?;
                    if let Some(what) = differences(&theirs, identity) {
                        bail!(
                            "--checkpoint {shown} holds the journal of another job: {what}; nothing in the \
                             directory was changed: rerun with the same parameters, or give another directory"
                        );
                    }
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Records or a field without the description of their job
                    // could be any job's: never used.
                    if let Some(name) = ["units.log", STATE].into_iter().find(|n| dir.join(n).exists()) {
                        bail!(
                            "--checkpoint {shown} holds {name} but no job.json saying which job it belongs to: \
                             it cannot be trusted; nothing in the directory was changed: give another directory"
                        );
                    }
                    Ok(false)
                }
                Err(e) => bail!("--checkpoint {shown}: cannot read {}: {e}", job_path.display()),
            }
        };
        belongs(&job_path)?;
        let lock_path = dir.join("lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("--checkpoint {shown}: cannot open {}", lock_path.display()))?;
        if let Err(e) = lock.try_lock() {
            if let std::fs::TryLockError::Error(e) = e {
                bail!(
                    "--checkpoint {shown}: the file system there cannot lock {} ({e}): give a local directory",
                    lock_path.display()
                );
            }
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            let holder = holder.trim();
            let by = if holder.is_empty() { String::new() } else { format!(" ({holder})") };
            bail!("--checkpoint {shown} is in use by another job{by}: wait for it to end, or give another directory");
        }
        // Under the lock, again: a job that started beside this one may have
        // written the description meanwhile.
        if !belongs(&job_path)? {
            let staged = dir.join(".job.json.tmp");
            let text = serde_json::to_vec_pretty(identity).expect("the identity serialises");
            let written = std::fs::write(&staged, text)
                .and_then(|()| File::open(&staged)?.sync_all())
                .and_then(|()| std::fs::rename(&staged, &job_path));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&staged);
                bail!("--checkpoint {shown}: cannot write {}: {e}", job_path.display());
            }
            sync_dir(dir);
        }
        // Who holds it, for the message a second job shows.
        let _ = lock.set_len(0);
        let _ = writeln!(
            lock,
            "process {} on {}",
            std::process::id(),
            crate::output::hostname().unwrap_or_else(|| "this host".into())
        );
        Ok(Claim { dir: dir.to_path_buf(), _lock: lock })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Journal {
    /// Opens the unit journal of a claimed directory, whose job's units
    /// are `units`, and reads its intact records. Returns the journal and,
    /// if part of it was damaged, a line saying so (the damaged tail is
    /// cut off).
    pub fn open(
        claim: Claim,
        units: Range<u64>,
        plausible: &dyn Fn(&Record) -> bool,
    ) -> Result<(Journal, Option<String>)> {
        let (dir, shown) = (claim.dir.clone(), claim.dir.display().to_string());
        let log_path = dir.join("units.log");
        let new = !log_path.exists();
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .with_context(|| format!("--checkpoint {shown}: cannot open {}", log_path.display()))?;
        if new {
            sync_dir(&dir); // the new file's name, durable with its records
        }
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).with_context(|| format!("--checkpoint {shown}: cannot read the journal"))?;
        let (records, intact) = parse(&bytes, units, plausible);
        let note = (intact < bytes.len()).then(|| {
            format!(
                "--checkpoint {shown}: {} of the journal's {} bytes after its record {} are damaged (a run killed \
                 while writing, or an edit): they are not used, and any units they held are computed again",
                bytes.len() - intact,
                bytes.len(),
                records.len()
            )
        });
        if intact < bytes.len() {
            log.set_len(intact as u64).with_context(|| format!("--checkpoint {shown}: cannot cut the damaged tail"))?;
        }
        log.seek(SeekFrom::End(0))?;
        Ok((Journal { log, claim, records, failed: false }, note))
    }

    /// The intact records, in the order they were written.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Appends `record` durably. A failure is warned about once on standard
    /// error and ends the checkpoints, never the run; returns whether the
    /// record was written.
    pub fn append(&mut self, record: Record) -> bool {
        if self.failed {
            return false;
        }
        let bytes = encode(&record);
        let before = self.log.stream_position();
        let written = self.log.write_all(&bytes).and_then(|()| self.log.sync_data()).and_then(|()| self.still_there());
        match written {
            Ok(()) => {
                self.records.push(record);
                true
            }
            Err(e) => {
                self.failed = true;
                // What a failed write left of the record is taken back, so the
                // journal does not look damaged to the next run.
                if let Ok(at) = before {
                    let _ = self.log.set_len(at);
                }
                eprintln!(
                    "pikernels: warning: cannot write a checkpoint in {} ({e}): the run goes on without checkpoints",
                    self.claim.dir.display()
                );
                false
            }
        }
    }

    /// Whether the journal's file is still the one this run writes (a
    /// directory removed or replaced under a run leaves writes that land
    /// nowhere anyone will read).
    fn still_there(&self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let (ours, named) = (self.log.metadata()?, std::fs::metadata(self.claim.dir.join("units.log"))?);
        if (ours.dev(), ours.ino()) == (named.dev(), named.ino()) {
            Ok(())
        } else {
            Err(std::io::Error::other("the journal there was replaced"))
        }
    }
}

/// The state file of a job that keeps its whole state (heat's field).
const STATE: &str = "state.bin";

/// A state file's first bytes.
const STATE_MAGIC: [u8; 8] = *b"pkstate1";

/// The state a claimed directory holds, if it holds one that is whole: the
/// step it was taken after and its `len` values; with a line saying why a
/// state file there was not used (damaged, or of another length).
pub fn read_state(claim: &Claim, len: usize) -> (Option<(u64, Vec<f64>)>, Option<String>) {
    let path = claim.dir.join(STATE);
    let whole = 8 + 8 + 8 + len * 8 + 4;
    // The size first: a file of another size is not read at all.
    match std::fs::metadata(&path) {
        Ok(m) if m.len() != whole as u64 => {
            return (
                None,
                Some(format!("{} is damaged or of another size: starting from the beginning", path.display())),
            )
        }
        _ => {}
    }
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, None),
        Err(e) => return (None, Some(format!("cannot read {} ({e}): starting from the beginning", path.display()))),
    };
    let ok = bytes.len() == whole
        && bytes[..8] == STATE_MAGIC
        && u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) == len as u64
        && crc32fast::hash(&bytes[..whole - 4]).to_le_bytes() == bytes[whole - 4..];
    if !ok {
        return (None, Some(format!("{} is damaged or of another size: starting from the beginning", path.display())));
    }
    let step = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let values =
        bytes[24..whole - 4].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
    (Some((step, values)), None)
}

/// Writes the state after `step` (`values`) to a claimed directory `dir`
/// (the claim's, held by the caller while this runs, on any thread): under
/// a temporary name, synced, then renamed over the last one, so the
/// directory always holds one whole state.
pub fn write_state(dir: &Path, step: u64, values: &[f64]) -> std::io::Result<()> {
    let staged = dir.join(format!(".{STATE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, File::create(&staged)?);
        let mut crc = crc32fast::Hasher::new();
        let mut put = |f: &mut std::io::BufWriter<File>, b: &[u8]| {
            crc.update(b);
            f.write_all(b)
        };
        put(&mut f, &STATE_MAGIC)?;
        put(&mut f, &step.to_le_bytes())?;
        put(&mut f, &(values.len() as u64).to_le_bytes())?;
        for chunk in values.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            put(&mut f, &bytes)?;
        }
        let sum = crc.finalize();
        f.write_all(&sum.to_le_bytes())?;
        let file = f.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&staged, dir.join(STATE))?;
        sync_dir(dir);
        Ok(())
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    r
}

/// A record as stored.
fn encode(r: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + r.bytes.len() + 4);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&r.units.start.to_le_bytes());
    out.extend_from_slice(&r.units.end.to_le_bytes());
    out.extend_from_slice(&r.tally.to_le_bytes());
    out.extend_from_slice(&(r.bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&r.bytes);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The intact records at the start of `bytes` whose units lie in `units`,
/// overlap no earlier record's and which the job finds `plausible` (a
/// tally its units can give), and the length they take.
fn parse(bytes: &[u8], units: Range<u64>, plausible: &dyn Fn(&Record) -> bool) -> (Vec<Record>, usize) {
    let mut records: Vec<Record> = Vec::new();
    let mut at = 0;
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    while bytes.len() - at >= HEAD + 4 {
        if bytes[at..at + 8] != MAGIC {
            break;
        }
        let (start, end) = (u64_at(at + 8), u64_at(at + 16));
        let tally = i128::from_le_bytes(bytes[at + 24..at + 40].try_into().expect("16 bytes"));
        let len = u64_at(at + 40);
        let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(HEAD + 4)) else { break };
        if bytes.len() - at < total {
            break;
        }
        let body = &bytes[at..at + total - 4];
        let crc = u32::from_le_bytes(bytes[at + total - 4..at + total].try_into().expect("4 bytes"));
        if crc32fast::hash(body) != crc {
            break;
        }
        let inside = start < end && units.start <= start && end <= units.end;
        if !inside || records.iter().any(|r| r.units.start < end && start < r.units.end) {
            break;
        }
        let record = Record { units: start..end, tally, bytes: body[HEAD..].to_vec() };
        if !plausible(&record) {
            break;
        }
        records.push(record);
        at += total;
    }
    (records, at)
}

/// Makes a rename in `dir` durable (best effort: not every file system
/// lets a directory be synced).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What differs between the job a journal belongs to (`theirs`) and this
/// one (`ours`), said by key (`samples is 1000 there, 2000 here`), or `None`.
fn differences(theirs: &Value, ours: &Value) -> Option<String> {
    let mut out = Vec::new();
    walk("", theirs, ours, &mut out);
    (!out.is_empty()).then(|| out.join("; "))
}

fn walk(path: &str, theirs: &Value, ours: &Value, out: &mut Vec<String>) {
    match (theirs, ours) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(&p, a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), out);
            }
        }
        (a, b) if a != b => out.push(format!("{path} is {a} there, {b} here")),
        _ => {}
    }
}

/// The units of `all` that no record covers, in order, as ranges.
pub fn missing(all: Range<u64>, records: &[Record]) -> Vec<Range<u64>> {
    let mut done: Vec<Range<u64>> = records.iter().map(|r| r.units.clone()).collect();
    done.sort_by_key(|r| r.start);
    let mut out = Vec::new();
    let mut at = all.start;
    for d in done {
        if d.start > at {
            out.push(at..d.start);
        }
        at = at.max(d.end);
    }
    if at < all.end {
        out.push(at..all.end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(units: Range<u64>, tally: i128, bytes: &[u8]) -> Record {
        Record { units, tally, bytes: bytes.to_vec() }
    }

    #[test]
    fn records_round_trip_and_damage_ends_the_intact_prefix() {
        let (a, b) = (rec(0..4, -7, b"abc"), rec(4..9, i128::MAX, b""));
        let mut log = encode(&a);
        log.extend(encode(&b));
        assert_eq!(parse(&log, 0..9, &|_| true), (vec![a.clone(), b.clone()], log.len()));
        // Truncated anywhere in the second record: the first only.
        let first = encode(&a).len();
        for cut in first..log.len() {
            assert_eq!(parse(&log[..cut], 0..9, &|_| true), (vec![a.clone()], first), "cut at {cut}");
        }
        // One flipped bit anywhere in the first record: nothing is used.
        for i in 0..first {
            let mut bad = log.clone();
            bad[i] ^= 0x10;
            assert_eq!(parse(&bad, 0..9, &|_| true).0, [], "bit flipped in byte {i}");
        }
        // A tally the job finds impossible ends the intact prefix too.
        assert_eq!(parse(&log, 0..9, &|r| r.tally >= 0).0, []);
        // Units outside the job's, or overlapping an earlier record: not used.
        assert_eq!(parse(&log, 0..8, &|_| true).0, std::slice::from_ref(&a));
        let mut twice = encode(&a);
        twice.extend(encode(&rec(3..5, 1, b"x")));
        assert_eq!(parse(&twice, 0..9, &|_| true).0, [a]);
    }

    #[test]
    fn missing_units_are_the_gaps_between_records() {
        let r = [rec(4..6, 0, b""), rec(0..2, 0, b""), rec(9..10, 0, b"")];
        assert_eq!(missing(0..10, &r), [2..4, 6..9]);
        assert_eq!(missing(0..10, &[]), vec![0..10u64]);
        assert_eq!(missing(3..10, &[rec(3..10, 0, b"")]), Vec::<Range<u64>>::new());
    }

    #[test]
    fn a_state_is_read_back_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let claim = Claim::open(&dir.path().join("ck"), &serde_json::json!({"kernel": "heat"})).unwrap();
        assert_eq!(read_state(&claim, 3), (None, None));
        write_state(claim.dir(), 7, &[1.5, -0.0, f64::MIN_POSITIVE]).unwrap();
        let (state, note) = read_state(&claim, 3);
        assert_eq!(note, None);
        let (step, values) = state.unwrap();
        assert_eq!(
            (step, values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
            (7, [1.5, -0.0, f64::MIN_POSITIVE].map(f64::to_bits).to_vec())
        );
        assert!(read_state(&claim, 4).1.unwrap().contains("damaged or of another size"));
        let path = claim.dir().join(STATE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_state(&claim, 3).0, None);
        assert!(!claim.dir().join(format!(".{STATE}.tmp")).exists());
    }

    #[test]
    fn differences_name_each_key_that_differs() {
        let a = serde_json::json!({"kernel": "pi-mc", "params": {"samples": 10, "seed": 1}});
        let b = serde_json::json!({"kernel": "pi-mc", "params": {"samples": 20, "seed": 1}});
        assert_eq!(differences(&a, &a), None);
        assert_eq!(differences(&a, &b).unwrap(), "params.samples is 10 there, 20 here");
    }

    #[test]
    fn a_journal_reopens_with_its_records_refuses_another_job_and_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("ck");
        let id = serde_json::json!({"kernel": "leibniz", "units": 10});
        let (mut journal, note) = Claim::open(&j, &id).and_then(|c| Journal::open(c, 0..10, &|_| true)).unwrap();
        assert!(note.is_none());
        assert!(journal.append(rec(0..3, 5, b"xy")));
        // Locked while open.
        let e = Claim::open(&j, &id).and_then(|c| Journal::open(c, 0..10, &|_| true)).err().unwrap().to_string();
        assert!(e.contains("is in use by another job"), "{e}");
        drop(journal);
        let (journal, _) = Claim::open(&j, &id).and_then(|c| Journal::open(c, 0..10, &|_| true)).unwrap();
        assert_eq!(journal.records(), [rec(0..3, 5, b"xy")]);
        drop(journal);
        let before = std::fs::read(j.join("units.log")).unwrap();
        let lock_before =
            (std::fs::read(j.join("lock")).unwrap(), std::fs::metadata(j.join("lock")).unwrap().modified().unwrap());
        let other = serde_json::json!({"kernel": "leibniz", "units": 11});
        let e = Claim::open(&j, &other).and_then(|c| Journal::open(c, 0..11, &|_| true)).err().unwrap().to_string();
        assert!(e.contains("units is 10 there, 11 here"), "{e}");
        assert_eq!(std::fs::read(j.join("units.log")).unwrap(), before, "nothing changed");
        let lock_after =
            (std::fs::read(j.join("lock")).unwrap(), std::fs::metadata(j.join("lock")).unwrap().modified().unwrap());
        assert_eq!(lock_after, lock_before, "a refusal leaves the lock as it was");
        // Records without the description of their job are never used.
        let orphan = dir.path().join("orphan");
        std::fs::create_dir(&orphan).unwrap();
        std::fs::write(orphan.join("units.log"), &before).unwrap();
        let e = Claim::open(&orphan, &id).err().unwrap().to_string();
        assert!(e.contains("holds units.log but no job.json"), "{e}");
        assert_eq!(std::fs::read_dir(&orphan).unwrap().count(), 1, "nothing added");
        // A damaged tail is noted and cut before new records.
        let mut log = before.clone();
        log.extend_from_slice(b"pkunits1 torn");
        std::fs::write(j.join("units.log"), &log).unwrap();
        let (mut journal, note) = Claim::open(&j, &id).and_then(|c| Journal::open(c, 0..10, &|_| true)).unwrap();
        assert!(note.unwrap().contains("are damaged"));
        assert!(journal.append(rec(3..10, 1, b"")));
        drop(journal);
        let (journal, note) = Claim::open(&j, &id).and_then(|c| Journal::open(c, 0..10, &|_| true)).unwrap();
        assert!(note.is_none());
        assert_eq!(journal.records().len(), 2);
        // A link in place of the journal's files is refused, not followed.
        let linked = dir.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink("/dev/zero", linked.join("units.log")).unwrap();
        let e = Claim::open(&linked, &id).and_then(|c| Journal::open(c, 0..10, &|_| true)).err().unwrap().to_string();
        assert!(e.contains("units.log there is not a regular file"), "{e}");
        // A file where the directory should be.
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(Claim::open(&file, &id)
            .and_then(|c| Journal::open(c, 0..10, &|_| true))
            .err()
            .unwrap()
            .to_string()
            .contains("is not a directory"));
    }
}
