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

use mpi::point_to_point::{Message, Status};
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
    /// it); counted as time in MPI.
    fn receive(&mut self, rank: usize, message: Message, status: Status) -> Self::Request;
    /// Acts on a received request (stores its result, records its failure).
    fn take_in(&mut self, rank: usize, request: Self::Request);
    /// Answers `rank`'s request if it can; counted as time in MPI.
    fn answer(&mut self, rank: usize) -> Answer;
    /// Waits a little when no request has come; `stopped[r]` tells whether
    /// rank `r` has been told to stop (rank 0 counts as stopped).
    fn idle(&mut self, stopped: &[bool]);
}

/// Rank 0: serves the requests sent to it on `comm` with tag `ask` until
/// every other rank has been told to stop, while `local` works on a second
/// thread. Returns what `local` returned and the seconds spent in MPI.
pub(crate) fn run<R: Send>(
    comm: &SimpleCommunicator,
    ask: Tag,
    desk: &mut impl Desk,
    local: impl FnOnce() -> R + Send,
) -> (R, f64) {
    std::thread::scope(|s| {
        let local = s.spawn(local);
        let comm_s = serve(comm, ask, desk);
        let own = local.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (own, comm_s)
    })
}

/// The serving loop of [`run`].
fn serve(comm: &SimpleCommunicator, ask: Tag, desk: &mut impl Desk) -> f64 {
    let mut stopped = vec![false; comm.size() as usize];
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
        let Some((message, status)) = comm.any_process().immediate_matched_probe_with_tag(ask) else {
            desk.idle(&stopped);
            continue;
        };
        let t = Instant::now();
        let rank = status.source_rank() as usize;
        let request = desk.receive(rank, message, status);
        comm_s += t.elapsed().as_secs_f64();
        desk.take_in(rank, request);
        waiting.push(rank);
    }
    comm_s
}
