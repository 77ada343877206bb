//! Rank 0's scheduler, written once for the dynamic strategy
//! ([`super::strategy`]) and the task farm ([`super::tasks`]).
//!
//! Both are the same conversation. A worker rank sends rank 0 a request (with
//! the result of its last piece of work, if any) and waits for the answer:
//! more work, or stop. Rank 0's main thread, the only thread that calls MPI,
//! runs [`run`]: it takes in requests from any rank, answers each one as soon
//! as it can, and returns once every other rank has been told to stop, while
//! a second thread on rank 0 works from the same source, so that rank 0's
//! machine computes too instead of only serving. What a request carries, what
//! an answer is and where the work comes from is the [`Desk`] each side
//! implements.
//!
//! The sources of work stay two, on purpose. The dynamic strategy's chunks
//! are pure computation that cannot fail (a panic aborts the job), so they go
//! out from one atomic counter, a rank is always answered at once (the next
//! chunk, or stop as soon as none is left) and rank 0's own thread never
//! waits. The farm's items can fail and are retried once, on another rank:
//! an item in flight may come back to the queue, so an answer can be
//! [`Answer::Wait`] until it does or the farm ends, and its board needs a lock
//! and a condition variable. One board for both would make every chunk pay
//! for retries it can never have, or make the farm's rules depend on a mode.

use super::ulfm::{self, Lost, Matched, Probe, Ulfm};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Tag;
use std::time::Instant;

/// What rank 0 did with a rank's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Gave it more work; it will send another request.
    Work,
    /// Told it to stop; it sends no more requests.
    Stop,
    /// Nothing to tell it yet: it is asked again after the next request or
    /// idle spell.
    Wait,
}

/// One protocol's side of rank 0's scheduler.
pub(crate) trait Desk {
    /// A request as received, before it is acted on.
    type Request;
    /// Receives the request `message` from `rank` (and any data that follows
    /// it); counted as time in MPI. [`Lost`] if `rank` died before all of it
    /// came (only where errors return, with ULFM).
    fn receive(&mut self, rank: usize, message: Matched) -> Result<Self::Request, Lost>;
    /// Acts on a received request (stores its result, records its failure).
    fn take_in(&mut self, rank: usize, request: Self::Request);
    /// Answers `rank`'s request if it can; counted as time in MPI.
    fn answer(&mut self, rank: usize) -> Answer;
    /// Waits a little when no request has come; `stopped[r]` tells whether
    /// rank `r` has been told to stop (rank 0 counts as stopped).
    fn idle(&mut self, stopped: &[bool]);
    /// `rank` has died (with ULFM): whatever it held must be done by others.
    /// It sends no more requests, and is not answered.
    fn lost(&mut self, _rank: usize) {}
}

/// Rank 0: serves the requests sent to it on `comm` with tag `ask` until
/// every other rank has been told to stop (or has died, where `ulfm` lets
/// the job survive that), while `local` works on a second thread. Returns
/// what `local` returned and the seconds spent in MPI.
pub(crate) fn run<R: Send>(
    comm: &SimpleCommunicator,
    ask: Tag,
    ulfm: Option<&Ulfm>,
    desk: &mut impl Desk,
    local: impl FnOnce() -> R + Send,
) -> (R, f64) {
    // With ULFM, rank 0's calls on `comm` return errors while it serves, so
    // that a worker's death is news rather than the end of the job.
    let returned = ulfm.map(|_| ulfm::return_errors(comm));
    let (own, comm_s) = std::thread::scope(|s| {
        let local = s.spawn(local);
        let comm_s = serve(comm, ask, ulfm, desk);
        let own = local.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (own, comm_s)
    });
    drop(returned);
    (own, comm_s)
}

/// The serving loop of [`run`].
fn serve(comm: &SimpleCommunicator, ask: Tag, ulfm: Option<&Ulfm>, desk: &mut impl Desk) -> f64 {
    let mut stopped = vec![false; comm.size() as usize];
    let mut dead = vec![false; stopped.len()];
    stopped[0] = true;
    let mut left = stopped.len() - 1;
    let mut waiting: Vec<usize> = Vec::new();
    let mut comm_s = 0.0;
    while left > 0 {
        // Answer every waiting rank the desk can now answer.
        let mut still = Vec::new();
        for rank in waiting.drain(..) {
            let t = Instant::now();
            match desk.answer(rank) {
                Answer::Work => {}
                Answer::Stop => {
                    stopped[rank] = true;
                    left -= 1;
                }
                Answer::Wait => still.push(rank),
            }
            comm_s += t.elapsed().as_secs_f64();
        }
        waiting = still;
        if left == 0 {
            break;
        }
        let received = match ulfm::probe(comm, ask) {
            Probe::Nothing => {
                desk.idle(&stopped);
                continue;
            }
            Probe::Message(rank, message) => {
                let t = Instant::now();
                let request = desk.receive(rank, message);
                comm_s += t.elapsed().as_secs_f64();
                request.map(|request| (rank, request))
            }
            Probe::Lost => Err(Lost),
        };
        match received {
            // A request from a rank already counted as dead (sent before it
            // died) is dropped: its work has gone to others.
            Ok((rank, _)) if dead[rank] => {}
            Ok((rank, request)) => {
                desk.take_in(rank, request);
                waiting.push(rank);
            }
            Err(Lost) => {
                let ulfm = ulfm.expect("errors return only with ULFM");
                for rank in ulfm.acknowledge(comm) {
                    if std::mem::replace(&mut dead[rank], true) {
                        continue;
                    }
                    desk.lost(rank);
                    waiting.retain(|&r| r != rank);
                    if !std::mem::replace(&mut stopped[rank], true) {
                        left -= 1;
                    }
                }
            }
        }
    }
    comm_s
}
