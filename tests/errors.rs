//! Refusals that need more than the table in bad_input.rs: which rank is
//! named, several outputs at once, --help.

use crate::util;

use util::{files_in, mpirun, refused, tempdir};

#[test]
fn unwritable_outputs_are_refused_before_any_work() {
    let dir = tempdir();
    let missing = dir.path().join("no/such/dir/m.png");
    let run = mpirun(3, &["mandelbrot", "--width", "64", "--height", "64", "--out", missing.to_str().unwrap()]);
    refused(&run, 2, "does not exist");
    assert!(run.stderr.contains("rank 0"), "names the rank: {run}");

    let run = mpirun(3, &["mandelbrot", "--width", "64", "--height", "64", "--out", dir.path().to_str().unwrap()]);
    refused(&run, 2, "is a directory");

    let run = mpirun(2, &["pi-mc", "--samples", "1e5", "--report", missing.to_str().unwrap()]);
    refused(&run, 2, "does not exist");
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn read_only_directory_is_refused() {
    if util::is_root() {
        // Root writes anywhere; use a read-only bind of /proc-like place instead.
        let run = mpirun(2, &["mandelbrot", "--width", "8", "--height", "8", "--out", "/proc/m.png"]);
        refused(&run, 2, "cannot create files in /proc");
        return;
    }
    let dir = tempdir();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    let run = mpirun(2, &["mandelbrot", "--width", "8", "--height", "8", "--out", ro.join("m.png").to_str().unwrap()]);
    refused(&run, 2, "cannot create files");
}

#[test]
fn help_explains_units_and_defaults() {
    let run = util::direct(&["mandelbrot", "--help"]);
    assert!(run.success(), "{run}");
    for needle in [
        "--width <PIXELS>",
        "[default: 3200]",
        "--max-iter",
        "[default: 32]",
        "--comm",
        "--threads",
        "--format",
        "--seed",
        "--out",
    ] {
        assert!(run.stdout.contains(needle), "help lacks {needle}:\n{}", run.stdout);
    }
    let list = util::direct(&["list"]);
    for k in ["pi-mc", "leibniz", "mandelbrot"] {
        assert!(list.stdout.contains(k), "{list}");
    }
}
