//! How a rank leaves when it cannot leave through `main`, and what it says.
//!
//! A rank normally ends by returning from `main`: MPI finalised (the
//! `Universe` drops with [`super::Spmd`]), then one line for a failure. The
//! other ways out, each of which must still tell the user why:
//!
//! | way out | who chooses it | what is said |
//! |---|---|---|
//! | [`abort`]: `MPI_Abort`, then `_exit` | a panic, `--timeout` | the caller's line, before |
//! | a stop signal's `_exit` | `crate::signals` | "stopped by SIGTERM ..." |
//! | `exit()` called inside the MPI library | the library (a failed `MPI_Init`, a lost launcher) | [`last_words`] |
//! | SIGKILL, a crash | the system, the launcher | the launcher's own line |
//!
//! [`abort`] cannot hang: `MPI_Abort` asks the launcher to end the job and
//! waits for it; a launcher that is stopped (SIGSTOP, a frozen node) never
//! answers, so a thread ends the process itself [`ABORT_WITHIN`] later.
//!
//! [`last_words`] runs as an `atexit` handler: an MPI library that gives up
//! (OpenMPI 4.1's `MPI_Init` failing under load, a rank whose link to its
//! launcher broke) calls `exit()` with MPI still initialised and not
//! finalised, which no code of ours chose; the handler names the rank and
//! what it was doing, so a run that fails always says why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// How long [`abort`] lets `MPI_Abort` end the process before it ends
/// itself: `MPI_Abort` returns in milliseconds when the launcher answers.
pub const ABORT_WITHIN: Duration = Duration::from_secs(5);

/// Set once this process has chosen to abort: its message is out, and the
/// `exit()` that `MPI_Abort` makes is expected.
static ABORTING: AtomicBool = AtomicBool::new(false);
/// Set where `MPI_Abort` must not be called (fault tolerance on: see
/// `super::ulfm`); [`abort`] then ends this process alone.
static NO_MPI_ABORT: AtomicBool = AtomicBool::new(false);
/// Set while `MPI_Init` runs: an exit then is the library's, at start-up.
static STARTING: AtomicBool = AtomicBool::new(false);
/// " on rank R of N (host)" for the last words, fixed before MPI starts.
static WHO: OnceLock<String> = OnceLock::new();

/// Arms [`last_words`] for this process before MPI starts; `who` names the
/// rank in messages (empty for a one-rank job). Call once, just before
/// `MPI_Init`; [`started`] after it returns.
pub fn watch_exits(who: String) {
    if WHO.set(who).is_err() {
        return;
    }
    STARTING.store(true, Ordering::SeqCst);
    // SAFETY: registers a handler that takes no arguments and touches only
    // statics; atexit only fails when its table is full.
    if unsafe { libc::atexit(last_words) } != 0 {
        // Without it a library's exit stays unexplained, as before: no reason to fail the run.
    }
}

/// `MPI_Init` has returned.
pub fn started() {
    STARTING.store(false, Ordering::SeqCst);
}

/// Makes sure this process ends with `code` within [`ABORT_WITHIN`]
/// whatever happens next: a thread that `_exit`s then. Started first on
/// every way out that prints or cleans up before it aborts, since a message
/// to a launcher that no longer reads (stopped, its pipe full) blocks, and
/// so can a file removal on a dead network mount. Idempotent.
pub fn backstop(code: i32) {
    if ABORTING.swap(true, Ordering::SeqCst) {
        return;
    }
    let fallback = std::thread::Builder::new().name("pikernels-abort".into()).spawn(move || {
        std::thread::sleep(ABORT_WITHIN);
        // SAFETY: ends the process at once; nothing after it runs.
        unsafe { libc::_exit(code) }
    });
    if fallback.is_err() {
        // No thread to be had: the alarm's default action ends the process.
        // SAFETY: a plain syscall.
        unsafe { libc::alarm(ABORT_WITHIN.as_secs() as u32 + 1) };
    }
}

/// How long `MPI_Finalize` may take after a rank was lost and survived.
pub const FINALIZE_WITHIN: Duration = Duration::from_secs(5);

/// Makes sure this process ends with `code` within [`FINALIZE_WITHIN`] once
/// its work is done and said, even if `MPI_Finalize` never returns: after a
/// lost rank, OpenMPI 5.0's finalize can wait for it forever (its closing
/// fence counts the dead rank; open-mpi/ompi#11404; seen here in 1 run of 3
/// with two ranks lost, in a plain C program too). With fault tolerance on,
/// the launcher takes such an exit as the process's own status.
pub fn finalize_within(code: i32) {
    let _ = std::thread::Builder::new().name("pikernels-finalize".into()).spawn(move || {
        std::thread::sleep(FINALIZE_WITHIN);
        // SAFETY: ends the process at once; nothing after it runs.
        unsafe { libc::_exit(code) }
    });
}

/// From now on [`abort`] ends this process without `MPI_Abort`: the other
/// ranks learn of it at their next message (fault tolerance on).
pub fn without_mpi_abort() {
    NO_MPI_ABORT.store(true, Ordering::SeqCst);
}

/// Ends the job: `MPI_Abort` with `code` (the launcher then ends every
/// rank), and, should the launcher not answer, this process alone within
/// [`ABORT_WITHIN`] ([`backstop`]). The caller has said why already.
pub fn abort(code: i32) -> ! {
    backstop(code);
    if !NO_MPI_ABORT.load(Ordering::SeqCst) && mpi::environment::is_initialized() && !mpi::environment::is_finalized() {
        // SAFETY: MPI is initialised and not finalised; MPI_Abort takes no
        // Rust-owned memory. Called from any thread although MPI runs
        // Funneled: the job is being torn down, and OpenMPI and MPICH allow it.
        unsafe {
            mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, code);
        }
    }
    // SAFETY: ends the process at once (MPI is not up, or the abort returned).
    unsafe { libc::_exit(code) }
}

/// What a rank says when the MPI library ends it with `exit()`: which rank,
/// and what it was doing. Written with one `write(2)` from a stack buffer,
/// without allocating (another thread may hold the allocator's lock).
extern "C" fn last_words() {
    if ABORTING.load(Ordering::SeqCst) {
        return;
    }
    let starting = STARTING.load(Ordering::SeqCst);
    if !starting && (!mpi::environment::is_initialized() || mpi::environment::is_finalized()) {
        return; // an ordinary end: MPI finalised
    }
    let what = if starting { "starting MPI (in MPI_Init)" } else { super::deadline::current_phase() };
    let pieces = [
        "pikernels: error",
        WHO.get().map_or("", String::as_str),
        ": the MPI library ended this process while it was ",
        what,
        ", without finalising MPI (pikernels did not choose this exit); the library's own message, if it \
         printed one, is above\n",
    ];
    // One line in one write (a stack buffer: no allocation), so that it
    // reaches the launcher whole.
    let mut line = [0u8; 1024];
    let mut len = 0;
    for piece in pieces {
        let n = piece.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&piece.as_bytes()[..n]);
        len += n;
    }
    // SAFETY: writes `len` bytes of a buffer on this stack to standard error.
    unsafe {
        libc::write(2, line.as_ptr().cast(), len);
    }
}
