//! Outputs written by what their path points at, with real runs: a symbolic
//! link stays a link and its target gets the output; a FIFO, a socket, a
//! character device and `/dev/stdout` are written in place and never
//! replaced; a device that fails (a node with /dev/full's numbers) is an
//! ordinary failure, exit 1, that leaves the node as it was. Every special
//! file is made by the test in its own temporary directory.

use crate::util;

use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;
use util::{direct, files_in, mpirun, tempdir};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn file_type(p: &Path) -> std::fs::FileType {
    std::fs::symlink_metadata(p).unwrap().file_type()
}

#[test]
fn a_symlinked_output_stays_a_link_and_its_target_gets_the_output() {
    let dir = tempdir();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let (link, target) = (dir.path().join("m.png"), shared.join("m.png"));
    std::fs::write(&target, "old").unwrap();
    symlink(&target, &link).unwrap();
    let report_link = dir.path().join("r.json");
    symlink("shared/r.json", &report_link).unwrap(); // dangling, relative
    let r =
        mpirun(2, &["mandelbrot", "--width", "64", "--height", "48", "--out", s(&link), "--report", s(&report_link)]);
    assert!(r.success(), "{r}");
    assert!(file_type(&link).is_symlink() && file_type(&report_link).is_symlink(), "links replaced");
    assert_eq!(&std::fs::read(&target).unwrap()[1..4], b"PNG", "the target holds the picture");
    assert!(std::fs::read_to_string(shared.join("r.json")).unwrap().contains("mandelbrot"));
    assert_eq!(files_in(&shared), ["m.png", "r.json"], "no temporary file left");
}

#[test]
fn fifos_sockets_and_devices_are_written_in_place() {
    let dir = tempdir();
    // A FIFO with a reader.
    let fifo = dir.path().join("report.fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: `c` is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let r = mpirun(2, &["pi-mc", "--samples", "1e5", "--format", "json", "--report", s(&fifo)]);
    assert!(r.success(), "{r}");
    let through = reader.join().unwrap();
    assert_eq!(through, r.stdout, "the FIFO carried the report");
    assert!(file_type(&fifo).is_fifo(), "still a FIFO");

    // A listening socket.
    let sock = dir.path().join("report.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut conn, &mut text).unwrap();
        text
    });
    let r = direct(&["leibniz", "--terms", "1e5", "--format", "csv", "--report", s(&sock)]);
    assert!(r.success(), "{r}");
    assert_eq!(server.join().unwrap(), r.stdout);
    assert!(file_type(&sock).is_socket(), "still a socket");

    // /dev/stdout (a pipe here): the report comes out twice, nothing is replaced.
    let r = direct(&["leibniz", "--terms", "1e5", "--format", "json", "--report", "/dev/stdout"]);
    assert!(r.success(), "{r}");
    assert_eq!(r.stdout.matches("\"kernel\": \"leibniz\"").count(), 2, "{r}");
}

fn mknod_char(path: &Path, major: u32, minor: u32) -> bool {
    let c = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: `c` is a valid C string; makedev is a plain computation.
    unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(major, minor)) == 0 }
}

#[test]
fn device_nodes_are_written_not_replaced() {
    // SAFETY: a plain getter.
    if !util::is_root() {
        assert!(std::env::var("PIKERNELS_REQUIRE_ROOT_TESTS").is_err(), "device nodes need root");
        println!("skipped: making device nodes needs root; CI runs it as root");
        return;
    }
    let dir = tempdir();
    // Nodes with the numbers of /dev/null (1,3) and /dev/full (1,7), made here.
    let (null, full) = (dir.path().join("null"), dir.path().join("full"));
    assert!(mknod_char(&null, 1, 3) && mknod_char(&full, 1, 7), "mknod");
    let r = mpirun(2, &["mandelbrot", "--width", "64", "--height", "48", "--out", s(&null)]);
    assert!(r.success(), "{r}");
    assert!(file_type(&null).is_char_device(), "the null node was replaced");

    let r = mpirun(2, &["pi-mc", "--samples", "1e5", "--report", s(&full)]);
    assert_eq!(r.code, Some(1), "{r}");
    assert_eq!(r.stderr.matches("No space left on device").count(), 1, "{r}");
    assert!(!r.stderr.contains("MPI_ABORT") && !r.stderr.contains("internal error"), "{r}");
    assert!(file_type(&full).is_char_device(), "the full node was replaced");
    assert_eq!(files_in(dir.path()), ["full", "null"]);
}
