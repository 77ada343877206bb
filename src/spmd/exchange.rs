//! Data movement for kernels that run their own distributed algorithm
//! (`jobs::SpmdJob`s such as matmul and sort): the collectives they need, each with an
//! explicit point-to-point twin where a kernel compares the two, on a [`Team`]
//! (the whole job or a row or column of a process grid, see [`super::grid`]).
//!
//! Buffers are typed slices (`f64`, `u64`, ...); counts are in elements. MPI
//! counts and displacements are 32-bit, so every function checks that what it
//! moves in one call fits ([`MAX_COUNT`] elements) and panics otherwise: the
//! kernels validate sizes before the first message, so reaching that panic
//! is a bug, and the panic hook then aborts the whole job instead of hanging.
//! The point-to-point twins move each part with [`super::pieces`], in
//! messages of at most [`MAX_MESSAGE_BYTES`] with the tag [`tags::PIECE`].

use super::pieces::{self, MAX_MESSAGE_BYTES};
use super::{tags, Spmd};
use kernels::partition::offsets;
use mpi::collective::SystemOperation;
/// What a [`Team`] can move: MPI's fixed-size element types (re-exported so
/// that a kernel generic over them needs no `mpi` import of its own).
pub use mpi::datatype::Equivalence;
use mpi::datatype::{Partition, PartitionMut};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use mpi::Count;

/// MPI's count limit, defined once in [`super::MAX_COUNT`] (re-exported for
/// the code that imports it from here).
pub use super::MAX_COUNT;

/// A group of ranks that communicate among themselves: the whole job
/// ([`Spmd::team`]) or a row or column of a process grid.
pub struct Team {
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// The job-wide rank of each member, for messages.
    world_ranks: Vec<usize>,
}

impl Spmd {
    /// All ranks of the job, on a communicator of their own (a duplicate of
    /// the world, so a kernel's messages never match the runtime's).
    pub fn team(&self) -> Team {
        Team::new(self.world().duplicate())
    }
}

fn count(n: usize) -> Count {
    assert!(n <= MAX_COUNT, "{n} elements exceed one MPI call's 32-bit count");
    n as Count
}

/// MPI counts and displacements of `counts`, checked against MPI's 32-bit limit.
pub(crate) fn mpi_counts(counts: &[usize]) -> (Vec<Count>, Vec<Count>) {
    let displs = offsets(counts);
    if let (Some(d), Some(c)) = (displs.last(), counts.last()) {
        count(d + c);
    }
    (counts.iter().map(|&c| count(c)).collect(), displs.iter().map(|&d| count(d)).collect())
}

/// Runs `f` on `send`, or, if `send` is empty, on an empty slice of a real
/// allocation. An empty slice (an empty `Vec` too) points at address 1 for
/// a one-byte type, and 1 is OpenMPI's `MPI_IN_PLACE`, which it rejects on
/// the non-root ranks of a gather: a rank with nothing to send must still
/// pass a genuine (empty) buffer. Every borrowed buffer MPI reads goes
/// through here; [`with_real_address_mut`] is its twin for buffers MPI writes.
pub(crate) fn with_real_address<T, R>(send: &[T], f: impl FnOnce(&[T]) -> R) -> R {
    if send.is_empty() {
        let spare: Vec<T> = Vec::with_capacity(1);
        f(&spare[..])
    } else {
        f(send)
    }
}

/// [`with_real_address`] for a buffer MPI writes into (an empty receive
/// buffer at address 1 would be `MPI_IN_PLACE` as well).
pub(crate) fn with_real_address_mut<T, R>(recv: &mut [T], f: impl FnOnce(&mut [T]) -> R) -> R {
    if recv.is_empty() {
        let mut spare: Vec<T> = Vec::with_capacity(1);
        f(&mut spare[..])
    } else {
        f(recv)
    }
}

impl Team {
    pub(crate) fn new(comm: SimpleCommunicator) -> Team {
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        let members: Vec<mpi::Rank> = (0..size as mpi::Rank).collect();
        let world = SimpleCommunicator::world().group();
        let world_ranks =
            comm.group().translate_ranks(&members, &world).into_iter().map(|r| r.unwrap_or(0) as usize).collect();
        Team { comm, rank, size, world_ranks }
    }

    /// This rank's place in the team.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks in the team.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Waits until every rank of the team arrives.
    pub fn barrier(&self) {
        self.arrive();
    }

    /// A barrier that polls and sleeps and knows who is missing (see
    /// [`super::checkpoint_on`]). Every collective and point-to-point movement
    /// below starts with it: once all ranks are there the movement itself
    /// completes promptly, so a rank waiting for a stopped or slow one sleeps
    /// here instead of spinning inside MPI, and at the `--timeout` the team's
    /// first rank names the missing ranks. (The blocking calls are kept for
    /// the data itself: their algorithms are the tuned ones.)
    fn arrive(&self) {
        super::checkpoint_on(&self.comm, &self.world_ranks);
    }

    /// Seconds on MPI's clock (`MPI_Wtime`).
    pub fn now(&self) -> f64 {
        mpi::time()
    }

    /// `MPI_Bcast` of `buf` from `root` (in pieces of at most `MAX_COUNT` elements).
    pub fn broadcast<T: Equivalence>(&self, root: usize, buf: &mut [T]) {
        self.arrive();
        let root = self.comm.process_at_rank(root as i32);
        for piece in buf.chunks_mut(MAX_COUNT) {
            root.broadcast_into(piece);
        }
    }

    /// The same as [`Team::broadcast`] with `MPI_Send` from the root to each
    /// rank in turn (the root's link carries `size - 1` copies), in pieces of
    /// at most 64 MiB.
    pub fn broadcast_p2p<T: Equivalence>(&self, root: usize, buf: &mut [T]) {
        self.arrive();
        if self.rank == root {
            for r in (0..self.size).filter(|&r| r != root) {
                self.send_part(r, buf);
            }
        } else {
            self.receive_part(root, buf);
        }
    }

    /// Sends `part` to team rank `to` in pieces ([`tags::PIECE`]).
    fn send_part<T: Equivalence>(&self, to: usize, part: &[T]) {
        pieces::send(&self.comm.process_at_rank(to as i32), part, MAX_MESSAGE_BYTES, tags::PIECE);
    }

    /// Receives all of `part` from team rank `from`, sent by [`Team::send_part`].
    fn receive_part<T: Equivalence>(&self, from: usize, part: &mut [T]) {
        pieces::receive_into(&self.comm.process_at_rank(from as i32), part, MAX_MESSAGE_BYTES, tags::PIECE);
    }

    /// `MPI_Scatterv`: rank `r` receives `counts[r]` consecutive elements of
    /// the root's `send` (ignored elsewhere) into `recv` (`counts[rank]` long).
    pub fn scatter<T: Equivalence>(&self, root: usize, send: &[T], counts: &[usize], recv: &mut [T]) {
        self.arrive();
        assert_eq!(counts.len(), self.size);
        assert_eq!(recv.len(), counts[self.rank]);
        let proc = self.comm.process_at_rank(root as i32);
        with_real_address_mut(recv, |recv| {
            if self.rank == root {
                assert_eq!(send.len(), counts.iter().sum::<usize>());
                let (c, d) = mpi_counts(counts);
                with_real_address(send, |send| proc.scatter_varcount_into_root(&Partition::new(send, c, &d[..]), recv));
            } else {
                proc.scatter_varcount_into(recv);
            }
        })
    }

    /// [`Team::scatter`] with `MPI_Send` / `MPI_Recv`, in pieces of at most 64 MiB.
    pub fn scatter_p2p<T: Equivalence + Copy>(&self, root: usize, send: &[T], counts: &[usize], recv: &mut [T]) {
        self.arrive();
        assert_eq!(counts.len(), self.size);
        assert_eq!(recv.len(), counts[self.rank]);
        if self.rank == root {
            let displs = offsets(counts);
            for r in 0..self.size {
                let part = &send[displs[r]..displs[r] + counts[r]];
                if r == root {
                    recv.copy_from_slice(part);
                } else {
                    self.send_part(r, part);
                }
            }
        } else {
            self.receive_part(root, recv);
        }
    }

    /// `MPI_Gatherv`: every rank's `send` (`counts[rank]` elements) lands,
    /// in rank order, in the root's `recv` (`None` elsewhere).
    pub fn gather<T: Equivalence>(&self, root: usize, send: &[T], counts: &[usize], recv: Option<&mut [T]>) {
        self.arrive();
        assert_eq!(counts.len(), self.size);
        assert_eq!(send.len(), counts[self.rank]);
        let proc = self.comm.process_at_rank(root as i32);
        with_real_address(send, |send| {
            if self.rank == root {
                let recv = recv.expect("the root receives");
                assert_eq!(recv.len(), counts.iter().sum::<usize>());
                let (c, d) = mpi_counts(counts);
                with_real_address_mut(recv, |recv| {
                    proc.gather_varcount_into_root(send, &mut PartitionMut::new(recv, c, &d[..]))
                });
            } else {
                proc.gather_varcount_into(send);
            }
        })
    }

    /// [`Team::gather`] with `MPI_Send` / `MPI_Recv`, in pieces of at most 64 MiB.
    pub fn gather_p2p<T: Equivalence + Copy>(&self, root: usize, send: &[T], counts: &[usize], recv: Option<&mut [T]>) {
        self.arrive();
        assert_eq!(counts.len(), self.size);
        assert_eq!(send.len(), counts[self.rank]);
        if self.rank == root {
            let recv = recv.expect("the root receives");
            let displs = offsets(counts);
            for r in 0..self.size {
                let part = &mut recv[displs[r]..displs[r] + counts[r]];
                if r == root {
                    part.copy_from_slice(send);
                } else {
                    self.receive_part(r, part);
                }
            }
        } else {
            self.send_part(root, send);
        }
    }

    /// Every rank's `mine`, of any length, at `root`, in rank order (`None`
    /// elsewhere): the lengths first (an all-gather), then [`Team::gather`],
    /// or [`Team::gather_p2p`] if `p2p`.
    pub fn gather_varcount<T: Equivalence + Default + Copy>(
        &self,
        root: usize,
        mine: &[T],
        p2p: bool,
    ) -> Option<Vec<T>> {
        let counts: Vec<usize> = self.all_gather(&[mine.len() as u64]).into_iter().map(|c| c as usize).collect();
        let at_root = self.rank == root;
        let mut all = if at_root { vec![T::default(); counts.iter().sum()] } else { Vec::new() };
        let recv = at_root.then_some(&mut all[..]);
        if p2p {
            self.gather_p2p(root, mine, &counts, recv);
        } else {
            self.gather(root, mine, &counts, recv);
        }
        at_root.then_some(all)
    }

    /// `MPI_Allgather` of one equal-sized piece per rank, in rank order.
    pub fn all_gather<T: Equivalence + Default + Clone>(&self, mine: &[T]) -> Vec<T> {
        self.arrive();
        let mut all = vec![T::default(); mine.len() * self.size];
        with_real_address(mine, |mine| with_real_address_mut(&mut all, |all| self.comm.all_gather_into(mine, all)));
        all
    }

    /// `MPI_Allgatherv`: every rank's `mine`, of any length, in rank order,
    /// with each rank's length.
    pub fn all_gather_varcount<T: Equivalence + Default + Clone>(&self, mine: &[T]) -> (Vec<T>, Vec<usize>) {
        let lens: Vec<usize> = self.all_gather(&[mine.len() as u64]).into_iter().map(|l| l as usize).collect();
        let mut all = vec![T::default(); lens.iter().sum()];
        let (c, d) = mpi_counts(&lens);
        with_real_address(mine, |mine| {
            with_real_address_mut(&mut all, |all| {
                self.comm.all_gather_varcount_into(mine, &mut PartitionMut::new(all, c, &d[..]))
            })
        });
        (all, lens)
    }

    /// `MPI_Allreduce` maximum of one `u64`.
    pub fn max_u64(&self, x: u64) -> u64 {
        self.arrive();
        let mut out = 0u64;
        self.comm.all_reduce_into(&x, &mut out, SystemOperation::max());
        out
    }

    /// The variable-count all-to-all: rank `r` of the team receives the
    /// `send_counts[r]` consecutive elements of each rank's `send` that are
    /// addressed to it, in source-rank order, into `recv` (overwritten; its
    /// capacity is reused, so a caller can receive into memory it has
    /// already touched). Returns the count from each source.
    ///
    /// The counts travel first (`MPI_Alltoall`); if any rank would receive
    /// more than one call can carry, every rank learns it from one
    /// all-reduce and gets `Err` with the largest total, before any data moves.
    pub fn all_to_all_into<T: Equivalence + Default + Clone>(
        &self,
        send: &[T],
        send_counts: &[usize],
        recv: &mut Vec<T>,
    ) -> Result<Vec<usize>, usize> {
        self.exchange_into(send, send_counts, recv, false)
    }

    /// [`Team::all_to_all_into`] for every piece but the rank's own, which
    /// stays where it is in `send`: the copy MPI would make of it is saved.
    /// `recv` gets the other ranks' pieces, in rank order. Returns the count
    /// from each source, the rank's own count at its own place (those keys
    /// being in `send`).
    pub fn all_to_all_others_into<T: Equivalence + Default + Clone>(
        &self,
        send: &[T],
        send_counts: &[usize],
        recv: &mut Vec<T>,
    ) -> Result<Vec<usize>, usize> {
        self.exchange_into(send, send_counts, recv, true)
    }

    /// Both of the above: `keep_own` leaves the rank's own piece in `send`.
    fn exchange_into<T: Equivalence + Default + Clone>(
        &self,
        send: &[T],
        send_counts: &[usize],
        recv: &mut Vec<T>,
        keep_own: bool,
    ) -> Result<Vec<usize>, usize> {
        self.arrive();
        assert_eq!(send_counts.len(), self.size);
        assert_eq!(send.len(), send_counts.iter().sum::<usize>());
        let kept = if keep_own { send_counts[self.rank] } else { 0 };
        let mut sent = send_counts.to_vec();
        sent[self.rank] -= kept;
        let out: Vec<u64> = sent.iter().map(|&c| c as u64).collect();
        let mut inc = vec![0u64; self.size];
        self.comm.all_to_all_into(&out[..], &mut inc[..]);
        let recv_counts: Vec<usize> = inc.iter().map(|&c| c as usize).collect();
        let total: usize = recv_counts.iter().sum();
        let worst = self.max_u64((total + kept).max(send.len()) as u64) as usize;
        if worst > MAX_COUNT {
            return Err(worst);
        }
        // MPI overwrites every element: keep the old ones rather than clear
        // (a pass over the buffer); only growth is written.
        recv.resize(total, T::default());
        // The pieces keep their places in `send`; a kept one is not sent.
        let (_, sd) = mpi_counts(send_counts);
        let sc: Vec<Count> = sent.into_iter().map(count).collect();
        let (rc, rd) = mpi_counts(&recv_counts);
        with_real_address(send, |send| {
            with_real_address_mut(recv, |recv| {
                self.comm.all_to_all_varcount_into(
                    &Partition::new(send, sc, &sd[..]),
                    &mut PartitionMut::new(recv, rc, &rd[..]),
                )
            })
        });
        let mut from = recv_counts;
        from[self.rank] += kept;
        Ok(from)
    }
}
