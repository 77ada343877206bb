//! A table of bad inputs, each run under `mpirun -np 3`: every one must end
//! quickly with exit 2, one clear message (not one per rank, no panic), and
//! no file written. Prints its figures: cases tried, cases passed.

mod util;

use std::time::Duration;
use util::{files_in, mpirun_cmd, run, tempdir, TIMEOUT};

/// A refused job must end well within this, even on a loaded machine.
const QUICK: Duration = Duration::from_secs(20);

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
    (&["sort", "--input", "{dir}/none.bin"], "cannot read --input"),
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
        if r.stderr.contains("panicked") || r.stderr.contains("RUST_BACKTRACE") {
            why.push("a panic".into());
        }
        if !r.stdout.is_empty() && !args.is_empty() {
            why.push("printed a report".into());
        }
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
