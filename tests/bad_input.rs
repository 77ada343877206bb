//! A table of bad inputs, each run under `mpirun -np 3`: every one must end
//! quickly with exit 2, one clear message (not one per rank, no panic), and
//! no file written. Prints its figures: cases tried, cases passed.

use crate::util;

use std::time::Duration;
use util::{files_in, mpirun_cmd, run, tempdir, TIMEOUT};

/// A refused job must end well within this, even on a loaded machine.
// A refusal takes about a second on a quiet machine; one took 22 s under a load
// average above 100. The bound tells a refusal from a run that did the work.
const QUICK: Duration = Duration::from_secs(90);

/// (arguments, a phrase the one message must contain). `{dir}` is replaced by
/// the case's own empty working directory.
const CASES: &[(&[&str], &str)] = &[
    // The command line itself.
    (&[], "Usage"),
    (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    (&["pi-mc", "--bogus"], "unexpected argument '--bogus'"),
    (&["pi-mc", "--samples"], "a value is required for '--samples"),
    (&["pi-mc", "--comm", "carrier-pigeon"], "invalid value 'carrier-pigeon'"),
    (&["pi-mc", "--format", "xml"], "invalid value 'xml'"),
    (&["pi-mc", "--threads", "0"], "must be at least 1"),
    (&["pi-mc", "--threads", "-1"], "is not a whole number of threads"),
    (&["pi-mc", "--threads", "many"], "is not a whole number of threads"),
    (&["pi-mc", "--threads", "100000"], "is more than 16 for each of the"),
    (&["pi-mc", "--seed", "-1"], "invalid value '-1'"),
    (&["pi-mc", "--seed", "1.5"], "invalid value '1.5'"),
    // pi-mc sizes.
    (&["pi-mc", "--samples", "0"], "--samples must be at least 1"),
    (&["pi-mc", "--samples", "-5"], "counts cannot be negative"),
    (&["pi-mc", "--samples", "lots"], "is not a valid count"),
    (&["pi-mc", "--samples", "1e30"], "not a whole number below 2^64"),
    (&["pi-mc", "--samples", "1.5"], "not a whole number below 2^64"),
    (&["pi-mc", "--samples", ""], "it is empty"),
    (&["pi-mc", "--samples", "18446744073709551616"], "below 2^64"),
    (&["pi-mc", "--samples", "NaN"], "is not a valid count"),
    (&["pi-mc", "--out", "{dir}/pi.txt"], "writes no file"),
    // leibniz sizes.
    (&["leibniz", "--terms", "0"], "--terms must be at least 1"),
    (&["leibniz", "--terms", "1e17"], "2^50"),
    (&["leibniz", "--terms", "inf"], "is not a valid count"),
    (&["leibniz", "--terms", "2e-3"], "is not a valid count"),
    // mandelbrot geometry.
    (&["mandelbrot", "--width", "0"], "at least one pixel"),
    (&["mandelbrot", "--height", "0"], "at least one pixel"),
    (&["mandelbrot", "--width", "5e9"], "--width 5000000000 is too large"),
    (&["mandelbrot", "--max-iter", "0"], "--max-iter must be at least 1"),
    (&["mandelbrot", "--xmin", "NaN"], "xmin is not a finite number"),
    (&["mandelbrot", "--ymax", "inf"], "ymax is not a finite number"),
    (&["mandelbrot", "--xmin", "1", "--xmax", "-1"], "the region is empty"),
    (&["mandelbrot", "--ymin", "0.5", "--ymax", "0.5"], "the region is empty"),
    (&["mandelbrot", "--xmin", "1", "--xmax", "1.0000000000000002"], "too small for f64 precision"),
    (&["mandelbrot", "--width", "30000", "--height", "30000"], "more than the 2.0 GiB one gather can carry"),
    (&["mandelbrot", "--center", "0"], "is not X,Y"),
    (&["mandelbrot", "--center", "nan,0"], "two finite numbers"),
    (&["mandelbrot", "--center", "0,0", "--zoom", "-1"], "--zoom must be a positive number"),
    (&["mandelbrot", "--center", "0,0", "--zoom", "0"], "--zoom must be a positive number"),
    (&["mandelbrot", "--zoom", "2"], "required arguments were not provided"),
    (&["mandelbrot", "--xmin", "-1", "--center", "0,0"], "cannot be used with"),
    (&["mandelbrot", "--bailout", "1"], "--bailout must be a finite number of at least 2"),
    (&["mandelbrot", "--bailout", "NaN"], "--bailout must be a finite number of at least 2"),
    (&["mandelbrot", "--colormap", "plaid"], "invalid value 'plaid'"),
    (&["mandelbrot", "--no-output", "--out", "{dir}/m.png"], "cannot be used with"),
    // Outputs that cannot be written (checked on rank 0 before any work).
    (&["mandelbrot", "--width", "64", "--height", "64", "--out", "{dir}/no/such/dir/m.png"], "does not exist"),
    (&["mandelbrot", "--width", "64", "--height", "64", "--out", "{dir}"], "is a directory"),
    (&["mandelbrot", "--width", "64", "--height", "64", "--out", ""], "a value is required for '--out"),
    (&["mandelbrot", "--width", "64", "--height", "64", "--out", "/proc/m.png"], "cannot create files in /proc"),
    (&["pi-mc", "--samples", "1e4", "--report", "{dir}/missing/r.json"], "does not exist"),
    (&["leibniz", "--terms", "1e4", "--report", "{dir}"], "is a directory"),
    // Paths whose last part cannot name a file: refused before any work, not
    // at the final rename (which a trailing '/' or a final '.' would fail).
    (&["mandelbrot", "--width", "64", "--height", "64", "--out", "{dir}/m.png/"], "cannot name a file"),
    (&["mandelbrot", "--width", "64", "--height", "64", "--out", "{dir}/new/."], "cannot name a file"),
    (&["heat", "--size", "64x48", "--steps", "2", "--out", "{dir}/h.png/"], "cannot name a file"),
    (
        &["heat", "--size", "64x48", "--steps", "2", "--frames", "2", "--animation", "{dir}/a.gif/"],
        "cannot name a file",
    ),
    (&["matmul", "--n", "8", "--out", "{dir}/c.npy/"], "cannot name a file"),
    (&["sort", "--keys", "1e3", "--output", "{dir}/k.u64/"], "cannot name a file"),
    (&["pi-mc", "--samples", "1e4", "--report", "{dir}/r.json/"], "cannot name a file"),
    (&["leibniz", "--terms", "1e4", "--report", "{dir}/x/.."], "cannot name a file"),
    // Sizes that would wrap an estimate; refusals name the option to change.
    (
        &["heat", "--size", "2000x1500", "--halo-depth", "4611686018427387904"],
        "--halo-depth 4611686018427387904: deeper than",
    ),
    (&["heat", "--size", "64x48", "--halo-depth", "65"], "give at most 64"),
    (&["heat", "--size", "4294967296x4294967296"], "its 18446744073709551616 cells"),
    (&["sort", "--keys", "1e12"], "give fewer --keys"),
    // Partial runs and merging.
    (&["pi-mc", "--partition", "4/4"], "part 4 of 4 does not exist"),
    (&["pi-mc", "--partition", "half"], "is not INDEX/COUNT"),
    (&["mandelbrot", "--partition", "0/2"], "does not support --partition 0/2"),
    (&["merge", "{dir}/nope.json"], "nope.json"),
    // matmul.
    (&["matmul", "--n", "0"], "--n must be at least 1"),
    (&["matmul", "--n", "1e6"], "is too large"),
    (&["matmul", "--comm", "dynamic"], "dynamic"),
    (&["matmul", "--a", "{dir}/a.npy", "--b", "{dir}/b.npy"], "a.npy"),
    // sort.
    (&["sort", "--keys", "0"], "--keys must be at least 1"),
    (&["sort", "--keys", "2e12"], "more than the supported 2^40"),
    (&["sort", "--keys", "1e12"], "of memory, but only"),
    (&["sort", "--comm", "dynamic"], "--comm dynamic does not apply"),
    (&["sort", "--dist", "bimodal"], "invalid value 'bimodal'"),
    (&["sort", "--input", "{dir}/none.bin"], "cannot read the --input"),
    // Inputs that are not regular files: never opened (a FIFO would block).
    (&["sort", "--input", "/proc/cpuinfo"], "says its size is 0 but has content"),
    (&["sort", "--input", "/dev/zero"], "is a character device"),
    (&["sort", "--input", "{dir}"], "is a directory"),
    (&["matmul", "--a", "/dev/null", "--b", "/dev/null"], "is a character device"),
    (&["sort", "--keys", "1e3", "--output", "{dir}/no/such/dir/k.u64"], "does not exist"),
    (&["sort", "--keys", "1e3", "--output", "{dir}/a.u64", "--out", "{dir}/b.u64"], "cannot be used with"),
    (&["sort", "--keys", "1e3", "--output", ""], "a value is required for '--output"),
    // transcode.
    (&["transcode", "--input", "{dir}/none.mp4", "--output", "{dir}/o.mp4"], "none.mp4"),
    (&["transcode", "--input", "in.mp4", "--output", "out"], "has no extension"),
    (&["transcode", "--input", "in.mp4", "--output", "o.mp4", "--crf", "99"], "--crf must be between 0 and 63"),
    (
        &["transcode", "--input", "in.mp4", "--output", "o.mp4", "--segment-seconds", "0"],
        "--segment-seconds must be a positive",
    ),
    (&["transcode", "--input", "v.mp4", "--output", "v.mp4"], "--output must differ from --input"),
    (&["transcode", "--output", "o.mp4"], "required arguments were not provided"),
    (
        &["transcode", "--input", "in.mp4", "--output", "o.mp4", "--segment-seconds", "1e308"],
        "--segment-seconds must be at most 86400",
    ),
    (&["transcode", "--input", "in.mp4", "--output", "o.mp4", "--item-timeout", "soon"], "'soon' is not a duration"),
];

#[test]
fn every_bad_input_is_refused_cleanly() {
    let mut failures = Vec::new();
    for (args, needle) in CASES {
        let dir = tempdir();
        let d = dir.path().to_str().unwrap().to_string();
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", &d)).collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = mpirun_cmd(3, &argv);
        cmd.current_dir(dir.path());
        let r = run(cmd, TIMEOUT);
        let mut why = refusal_problems(&r, needle, false);
        let left = files_in(dir.path());
        if !left.is_empty() {
            why.push(format!("left files {left:?}"));
        }
        if !why.is_empty() {
            failures.push(format!("{argv:?}: {}\n{r}", why.join("; ")));
        }
    }
    println!(
        "bad input: {} cases tried, {} passed, {} failed",
        CASES.len(),
        CASES.len() - failures.len(),
        failures.len()
    );
    assert!(CASES.len() >= 40);
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n\n"));
}

/// One file given to two options where either writes it, found by identity
/// (the same path, a symbolic or a hard link), and outputs that are neither
/// a file, a link to one, a character device, a FIFO nor a socket: each is
/// refused with exit 2 naming what clashes, before any work, and every file
/// is left exactly as it was.
#[test]
fn clashing_and_unwritable_outputs_are_refused_and_lose_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    // 100 keys, a square matrix, and a partial report to read.
    std::fs::write(d.join("k.bin"), (0u64..100).flat_map(|k| k.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    std::os::unix::fs::symlink(d.join("k.bin"), d.join("k-link.bin")).unwrap();
    std::fs::hard_link(d.join("k.bin"), d.join("k-hard.bin")).unwrap();
    let part = util::direct(&["pi-mc", "--samples", "1e4", "--partition", "0/1", "--format", "json"]);
    assert!(part.success(), "{part}");
    std::fs::write(d.join("part.json"), &part.stdout).unwrap();
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["mandelbrot".into(), "--out".into(), p("x"), "--report".into(), p("x")], "--out"),
        (
            vec![
                "mandelbrot".into(),
                "--out".into(),
                p("y.png"),
                "--report".into(),
                format!("{}/./y.png", d.display()),
            ],
            "one output would be written over the other",
        ),
        (
            vec!["sort".into(), "--input".into(), p("k.bin"), "--report".into(), p("k.bin")],
            "the --report would be written over the --input",
        ),
        (
            vec!["sort".into(), "--input".into(), p("k.bin"), "--output".into(), p("k-link.bin")],
            "after following links",
        ),
        (
            vec!["sort".into(), "--input".into(), p("k-hard.bin"), "--output".into(), p("k.bin")],
            "the --output would be written over the --input",
        ),
        (
            vec!["merge".into(), p("part.json"), "--report".into(), p("part.json")],
            "the --report would be written over the PART",
        ),
    ];
    // A block device node (root only; made here, never a system device).
    // SAFETY: a plain getter.
    if util::is_root() {
        let c = std::ffi::CString::new(p("blk")).unwrap();
        // SAFETY: `c` is a valid C string; makedev is a plain computation.
        let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 200)) == 0 };
        assert!(made, "mknod");
        cases.push((vec!["pi-mc".into(), "--report".into(), p("blk")], "is a block device"));
    }
    let before: Vec<(String, Vec<u8>)> = files_in(d)
        .into_iter()
        .filter(|n| n != "blk")
        .map(|n| {
            let bytes = std::fs::read(d.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    let mut failures = Vec::new();
    for (args, needle) in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(mpirun_cmd(3, &argv), TIMEOUT);
        let mut why = refusal_problems(&r, needle, false);
        let now: Vec<(String, Vec<u8>)> = files_in(d)
            .into_iter()
            .filter(|n| n != "blk")
            .map(|n| {
                let bytes = std::fs::read(d.join(&n)).unwrap();
                (n, bytes)
            })
            .collect();
        if now != before {
            why.push("files changed".into());
        }
        if !why.is_empty() {
            failures.push(format!("{argv:?}: {}\n{r}", why.join("; ")));
        }
    }
    println!(
        "bad input (clashing outputs): {} cases tried, {} passed, {} failed",
        cases.len(),
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What is wrong with a run that should have been refused with exit 2 and
/// `needle` (beyond mpirun's own banner, when `one_line`: nothing else on stderr).
fn refusal_problems(r: &util::Run, needle: &str, one_line: bool) -> Vec<String> {
    let mut why = Vec::new();
    if r.code != Some(2) {
        why.push(format!("exit {:?}, expected 2", r.code));
    }
    if r.elapsed > QUICK {
        why.push(format!("took {:?}", r.elapsed));
    }
    match r.stderr.matches(needle).count() {
        1 => {}
        0 => why.push(format!("no '{needle}' in stderr")),
        n => why.push(format!("'{needle}' printed {n} times")),
    }
    if one_line && r.stderr.lines().filter(|l| !l.trim().is_empty()).count() != 1 {
        why.push("not one line on stderr".into());
    }
    let aborted = ["panicked", "RUST_BACKTRACE", "internal error", "MPI_ABORT"];
    if aborted.iter().any(|a| r.stderr.contains(a)) {
        why.push("a panic or an abort".into());
    }
    if !r.stdout.is_empty() {
        why.push("printed a report".into());
    }
    why
}

/// A part's file: a real `--partition` report, written by the binary.
fn write_part(dir: &std::path::Path, kernel: &str, size: &str, index: u64) -> std::path::PathBuf {
    let flag = if kernel == "pi-mc" { "--samples" } else { "--terms" };
    let part = format!("{index}/3");
    let r = util::direct(&[kernel, flag, size, "--partition", &part, "--format", "json"]);
    assert!(r.success(), "{kernel} --partition {part}:\n{r}");
    let path = dir.join(format!("{kernel}-{index}.json"));
    std::fs::write(&path, &r.stdout).unwrap();
    path
}

/// `pikernels merge` without a launcher.
fn merge_cmd(parts: &[&std::path::Path]) -> std::process::Command {
    let mut cmd = std::process::Command::new(util::bin());
    cmd.arg("merge").args(parts);
    cmd
}

/// Parts edited as a corrupt or hostile file could be: each must be refused
/// with exit 2 and one line naming the file, without a panic, an abort, an
/// allocation sized by a field, or reading forever.
#[test]
fn merge_refuses_parts_that_cannot_be_trusted() {
    use serde_json::{json, Value};
    let dir = tempdir();
    let pi: Vec<_> = (0..3).map(|i| write_part(dir.path(), "pi-mc", "1e6", i)).collect();
    let lz: Vec<_> = (0..3).map(|i| write_part(dir.path(), "leibniz", "1e6", i)).collect();
    // The parts as written merge: every refusal below comes from its edit.
    for set in [&pi, &lz] {
        let paths: Vec<&std::path::Path> = set.iter().map(|p| p.as_path()).collect();
        let r = run(merge_cmd(&paths), TIMEOUT);
        assert!(r.success(), "unedited parts:\n{r}");
    }
    let read = |p: &std::path::Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let pi0 = read(&pi[0]);
    // Samples in part 0 of 3 of 1e6: units 0..6 (65,536 samples each, 16 units in all).
    let p0 = &pi0["partial"];
    let samples_in_part0 = (p0["end_unit"].as_u64().unwrap() - p0["first_unit"].as_u64().unwrap()) * 65_536;

    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, bool, Edit, String)> = vec![
        ("index 9 of 3", true, Box::new(|v| v["partial"]["index"] = json!(9)), "part 9 of 3".into()),
        ("count 0", true, Box::new(|v| v["partial"]["count"] = json!(0)), "1 to 1048576".into()),
        (
            "count 1e15",
            true,
            Box::new(|v| v["partial"]["count"] = json!(1_000_000_000_000_000u64)),
            "1 to 1048576".into(),
        ),
        ("count 2^64-1", true, Box::new(|v| v["partial"]["count"] = json!(u64::MAX)), "1 to 1048576".into()),
        (
            "tally above the samples",
            true,
            Box::new(move |v| v["partial"]["tally"] = json!((samples_in_part0 + 1).to_string())),
            format!("tally {} is impossible", samples_in_part0 + 1),
        ),
        ("tally negative", true, Box::new(|v| v["partial"]["tally"] = json!("-1")), "tally -1 is impossible".into()),
        ("tally not an integer", true, Box::new(|v| v["partial"]["tally"] = json!("3.5")), "not an integer".into()),
        (
            "leibniz tally of 2",
            false,
            Box::new(|v| v["partial"]["tally"] = json!((1i128 << 101).to_string())),
            "is impossible".into(),
        ),
        (
            "first_unit shifted",
            true,
            Box::new(|v| v["partial"]["first_unit"] = json!(v["partial"]["first_unit"].as_u64().unwrap() + 1)),
            "claims units 1..6".into(),
        ),
        (
            "total_units changed",
            true,
            Box::new(|v| v["partial"]["total_units"] = json!(1_000_000)),
            "claims units 0..6".into(),
        ),
        ("schema_version 99", true, Box::new(|v| v["schema_version"] = json!(99)), "schema version 99".into()),
        ("a whole run's report", true, Box::new(|v| v["partial"] = Value::Null), "whole run".into()),
        ("rank rows missing", true, Box::new(|v| v["per_rank"] = json!([])), "0 per-rank rows".into()),
    ];
    let mut failures = Vec::new();
    let mut tried = 0;
    for (what, pi_mc, edit, needle) in &cases {
        tried += 1;
        let set = if *pi_mc { &pi } else { &lz };
        let mut v = read(&set[0]);
        edit(&mut v);
        let edited = dir.path().join(format!("edited-{tried}.json"));
        std::fs::write(&edited, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        let r = run(merge_cmd(&[&edited, &set[1], &set[2]]), TIMEOUT);
        let mut why = refusal_problems(&r, needle, true);
        if !r.stderr.contains(&format!("edited-{tried}.json")) {
            why.push("the message does not name the file".into());
        }
        if !why.is_empty() {
            failures.push(format!("{what}: {}\n{r}", why.join("; ")));
        }
    }

    // Files that are not reports at all, named as such, read no further than the guard.
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 17 << 20]).unwrap();
    let text = dir.path().join("notes.json");
    std::fs::write(&text, "pi is about 3\n").unwrap();
    for (what, path, needle) in [
        ("a 17 MiB file", &big, "is larger than 16.0 MiB"),
        ("a text file", &text, "is not a JSON report of pikernels"),
    ] {
        tried += 1;
        let r = run(merge_cmd(&[path, &pi[1], &pi[2]]), TIMEOUT);
        let mut why = refusal_problems(&r, needle, true);
        if !r.stderr.contains(path.file_name().unwrap().to_str().unwrap()) {
            why.push("the message does not name the file".into());
        }
        if !why.is_empty() {
            failures.push(format!("{what}: {}\n{r}", why.join("; ")));
        }
    }

    // A FIFO whose writer never stops: refused before it is opened (opening a
    // FIFO with no writer would block).
    tried += 1;
    let fifo = dir.path().join("endless.json");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: plain syscall with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            // Blocks until merge opens the FIFO; ends when merge closes it (EPIPE).
            let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&fifo) else { return 0u64 };
            let block = vec![b' '; 1 << 16];
            let mut sent = 0u64;
            while w.write_all(&block).is_ok() {
                sent += block.len() as u64;
            }
            sent
        })
    };
    let r = run(merge_cmd(&[&fifo, &pi[1], &pi[2]]), TIMEOUT);
    // Unblock a writer still waiting for a reader (if merge never opened it).
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo);
    }
    let sent = writer.join().unwrap();
    let mut why = refusal_problems(&r, "is a FIFO; pikernels reads inputs from regular files", true);
    if !r.stderr.contains("endless.json") {
        why.push("the message does not name the FIFO".into());
    }
    // At most what the pipe held when the test's own unblocking reader closed it.
    if sent >= 1 << 20 {
        why.push(format!("{sent} bytes were read from the FIFO: it was opened"));
    }
    if !why.is_empty() {
        failures.push(format!("an endless FIFO: {}\n{r}", why.join("; ")));
    }

    println!("bad input (merge): {tried} cases tried, {} passed, {} failed", tried - failures.len(), failures.len());
    assert!(failures.is_empty(), "{} of {tried} cases failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// Runs `cmd` with its standard output replaced, in the child, by `fd`
/// (`None`: closed), as a shell's `>/dev/full`, `| reader-gone` or `>&-` would.
fn run_with_stdout(mut cmd: std::process::Command, fd: Option<std::os::fd::RawFd>) -> util::Run {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and close are async-signal-safe; the closure runs in the
    // child after its standard streams are set up, before exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = match fd {
                Some(fd) => libc::dup2(fd, 1),
                None => libc::close(1),
            };
            if r == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run(cmd, TIMEOUT)
}

/// A `--report` that cannot be written (a full device) fails the run at its
/// last step, exit 1, and the run leaves none of its outputs: they are put in
/// place only once the report is written.
#[test]
fn a_report_that_cannot_be_written_leaves_no_output() {
    let cases: &[&[&str]] = &[
        &["mandelbrot", "--width", "64", "--height", "48", "--out", "m.png"],
        &["heat", "--size", "64x48", "--steps", "4", "--frames", "2", "--animation", "a.gif", "--out", "h.png"],
        &["sort", "--keys", "1e4", "--output", "k.u64"],
        &["matmul", "--n", "16", "--out", "c.npy"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let dir = tempdir();
        let mut cmd = std::process::Command::new(util::bin());
        util::mpi_env(&mut cmd).args(*args).args(["--report", "/dev/full"]).current_dir(dir.path());
        let r = run(cmd, TIMEOUT);
        let left = files_in(dir.path());
        let ok = r.code == Some(1) && r.stderr.contains("cannot write /dev/full") && left.is_empty();
        println!(
            "fault injected: --report /dev/full for {}: {}",
            args[0],
            if ok { "survived" } else { "NOT survived" }
        );
        if !ok {
            failures.push(format!("{args:?}: left {left:?}\n{r}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Without a launcher MPI makes its session directory under TMPDIR: one it
/// cannot use is refused before MPI starts (exit 2, one line naming TMPDIR),
/// not left to the MPI library's screenful.
#[test]
fn an_unusable_tmpdir_is_refused_before_mpi_starts() {
    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for tmp in [std::path::PathBuf::from("/proc"), file.clone(), dir.path().join("missing")] {
        let mut cmd = std::process::Command::new(util::bin());
        util::mpi_env(&mut cmd).env("TMPDIR", &tmp).args(["pi-mc", "--samples", "1e5"]);
        let r = run(cmd, TIMEOUT);
        let mut why = refusal_problems(&r, "(TMPDIR) is not a directory this process can write", false);
        if r.stderr.contains("MPI_INIT") || r.stderr.contains("orte") {
            why.push("the MPI library's own failure was shown".into());
        }
        assert!(why.is_empty(), "TMPDIR={}: {}\n{r}", tmp.display(), why.join("; "));
    }
    assert_eq!(files_in(dir.path()), ["a-file"]);
}

/// A report that cannot be written to standard output (a full device, a
/// reader that has gone, a closed descriptor) is an ordinary failure: exit 1,
/// one line saying so, no panic and no MPI_Abort banner.
#[test]
fn a_report_that_cannot_reach_stdout_fails_cleanly() {
    use std::os::fd::AsRawFd;
    let dir = tempdir();
    let parts: Vec<_> = (0..3).map(|i| write_part(dir.path(), "pi-mc", "1e5", i)).collect();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let mut ends = [0; 2];
    // SAFETY: plain syscall filling a two-element array.
    assert_eq!(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // The reader is gone before the child starts: its writes fail with EPIPE.
    // SAFETY: closing the read end this test created.
    unsafe { libc::close(ends[0]) };
    let gone = ends[1];
    let kernel = |args: &[&str]| {
        let mut cmd = std::process::Command::new(util::bin());
        util::mpi_env(&mut cmd).args(args);
        cmd
    };
    let cases: Vec<(&str, std::process::Command, Option<i32>, &str)> = vec![
        (
            "pi-mc > /dev/full",
            kernel(&["pi-mc", "--samples", "1e5"]),
            Some(full.as_raw_fd()),
            "No space left on device",
        ),
        ("leibniz | reader gone", kernel(&["leibniz", "--terms", "1e5"]), Some(gone), "Broken pipe"),
        ("pi-mc >&-", kernel(&["pi-mc", "--samples", "1e5", "--format", "json"]), None, "it was closed"),
        ("list > /dev/full", kernel(&["list"]), Some(full.as_raw_fd()), "No space left on device"),
        (
            "merge > /dev/full",
            merge_cmd(&[&parts[0], &parts[1], &parts[2]]),
            Some(full.as_raw_fd()),
            "No space left on device",
        ),
    ];
    let mut lost = 0;
    for (name, cmd, fd, reason) in cases {
        let r = run_with_stdout(cmd, fd);
        let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let what = if name.starts_with("list") { "the list of kernels" } else { "the report" };
        let ok = r.code == Some(1)
            && lines.len() == 1
            && lines[0].contains(&format!("error: cannot write {what} to standard output: "))
            && lines[0].contains(reason)
            && !r.stderr.contains("MPI_ABORT")
            && !r.stderr.contains("internal error")
            && !r.stderr.contains("panicked");
        println!("fault injected: {name}: {}", if ok { "survived" } else { "NOT survived" });
        if !ok {
            lost += 1;
            eprintln!("{name}:\n{r}");
        }
    }
    // SAFETY: closing the write end this test created.
    unsafe { libc::close(gone) };
    assert_eq!(lost, 0, "{lost} output faults not survived (see above)");
}

/// `--threads` beyond 16 per core this rank may use, and a `--center` view
/// finer than f64 resolves, are refused with their figures.
#[test]
fn threads_and_views_beyond_the_machine_are_refused() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let most = 16 * cores;
    let mut failures = Vec::new();
    let mut tried = 0;

    // No launcher: this process's cores are the child's.
    tried += 1;
    let over = (most + 1).to_string();
    let r = util::direct(&["pi-mc", "--samples", "1e5", "--threads", &over]);
    let needle = format!("--threads {over} is more than 16 for each of the {cores} core");
    let mut why = refusal_problems(&r, &needle, true);
    if !r.stderr.contains(&format!("(at most {most})")) {
        why.push("no figure".into());
    }
    if !why.is_empty() {
        failures.push(format!("--threads {over}: {}\n{r}", why.join("; ")));
    }
    // The limit itself is accepted, and the pool starts quickly.
    tried += 1;
    let r = util::direct(&["pi-mc", "--samples", "1e5", "--threads", &most.to_string(), "--format", "json"]);
    if !(r.success() && r.report()["threads_per_rank"] == most && r.elapsed < QUICK) {
        failures.push(format!("--threads {most} (the limit) was not run quickly\n{r}"));
    }

    // Ranks with different limits (one bound to a single core) agree: the job
    // is refused once, by the rank over its limit, and nobody waits.
    if cores >= 2 {
        tried += 1;
        let threads = (16 + 1).to_string();
        let mut cmd = std::process::Command::new("mpirun");
        util::mpi_env(&mut cmd)
            .args(["--oversubscribe", "--bind-to", "none", "-np", "2", "sh", "-c"])
            .arg(r#"if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec taskset -c 0 "$0" "$@"; else exec "$0" "$@"; fi"#)
            .arg(util::bin())
            .args(["pi-mc", "--samples", "1e5", "--threads", &threads]);
        let r = run(cmd, TIMEOUT);
        let why = refusal_problems(&r, "on rank 1 of 2", false);
        if !why.is_empty() || !r.stderr.contains("for each of the 1 core this rank may use (at most 16)") {
            failures.push(format!("rank 1 on one core, --threads {threads}: {}\n{r}", why.join("; ")));
        }
    } else {
        println!("one core only: the case of ranks with different limits is not tried");
    }

    // A view far narrower than f64's spacing at its centre.
    tried += 1;
    let mut cmd = mpirun_cmd(3, &["mandelbrot", "--center", "1e308,1e308", "--no-output"]);
    let view_dir = tempdir();
    cmd.current_dir(view_dir.path());
    let r = run(cmd, TIMEOUT);
    let mut why = refusal_problems(&r, "narrower than f64 can resolve there", false);
    let longest_number = r.stderr.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0);
    if longest_number > 20 || !r.stderr.contains("--center 1e308,1e308") || r.stderr.contains("empty") {
        why.push(format!("a {longest_number}-digit number, or the centre not named, or blamed on an empty region"));
    }
    if !why.is_empty() {
        failures.push(format!("--center 1e308,1e308: {}\n{r}", why.join("; ")));
    }

    println!("bad input (limits): {tried} cases tried, {} passed, {} failed", tried - failures.len(), failures.len());
    assert!(failures.is_empty(), "{} of {tried} cases failed:\n{}", failures.len(), failures.join("\n\n"));
}
