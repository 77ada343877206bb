//! What the distributed sample sort ([`super::sample_sort`]) needs from the
//! ranks it runs on: the [`Exchange`] trait, and [`InProcess`], one thread
//! per simulated rank, on which this crate's tests run the real sequencing.
//! The binary implements the trait over MPI (`src/jobs/sort.rs`).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The collectives of the sample sort, on a group of ranks. Every rank of
/// the group calls each method, in the same order (they are collectives).
pub trait Exchange {
    /// This rank's place in the group, `0..size()`.
    fn rank(&self) -> usize;

    /// Number of ranks in the group.
    fn size(&self) -> usize;

    /// Every rank's `mine`, all of the same length, concatenated in rank order.
    fn all_gather(&self, mine: &[u64]) -> Vec<u64>;

    /// Every rank's `mine`, of any length, concatenated in rank order.
    fn all_gather_varcount(&self, mine: &[u64]) -> Vec<u64>;

    /// The variable-count all-to-all: `send` holds, in rank order, the
    /// `counts[d]` consecutive elements for each rank `d`; `recv` is
    /// overwritten (its capacity reused) with what the other ranks send this
    /// one, in source-rank order. With [`Own::Keep`] the rank's piece for
    /// itself stays in `send` and is not in `recv`. Returns the count from
    /// each source (the rank's own count at its own place in both modes).
    ///
    /// If any rank would hold more than one call carries (received plus
    /// kept, or sent), every rank gets `Err` with the largest such total,
    /// and no data moves.
    fn all_to_all(&self, send: &[u64], counts: &[usize], recv: &mut Vec<u64>, own: Own) -> Result<Vec<usize>, usize>;
}

/// What [`Exchange::all_to_all`] does with a rank's piece for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Own {
    /// Sent like the others: it lands in `recv` at the rank's place.
    Send,
    /// Left where it is in `send` (saving the copy).
    Keep,
}

/// One simulated rank of an in-process group (see [`InProcess::run`]).
pub struct InProcess<'a> {
    rank: usize,
    group: &'a Group,
}

/// What one rank put on the table for a collective.
#[derive(Default)]
struct Slot {
    data: Vec<u64>,
    counts: Vec<usize>,
}

/// The state the threads of one [`InProcess::run`] share.
struct Group {
    size: usize,
    /// Most elements one rank may hold in one all-to-all (MPI's is `i32::MAX`).
    limit: usize,
    slots: Mutex<Vec<Slot>>,
    gate: Gate,
}

impl InProcess<'_> {
    /// Runs `f` on `size` threads, one per simulated rank, each with its
    /// exchange, and returns their results in rank order. An all-to-all in
    /// which a rank would hold more than `limit` elements fails as one MPI
    /// call past its 32-bit count does. If one rank panics, the others panic
    /// at their next collective instead of waiting for it forever.
    pub fn run<R: Send>(size: usize, limit: usize, f: impl Fn(&InProcess) -> R + Sync) -> Vec<R> {
        let slots = Mutex::new((0..size).map(|_| Slot::default()).collect());
        let group = Group { size, limit, slots, gate: Gate::default() };
        std::thread::scope(|s| {
            let ranks: Vec<_> = (0..size)
                .map(|rank| {
                    let (group, f) = (&group, &f);
                    s.spawn(move || {
                        let _breaks = BreakOnPanic(&group.gate);
                        f(&InProcess { rank, group })
                    })
                })
                .collect();
            ranks.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        })
    }

    /// A collective: every rank puts its slot on the table, then each reads
    /// all of them; nobody leaves before all have read, so the table is free
    /// for the next collective.
    fn collective<T>(&self, mine: Slot, read: impl FnOnce(&[Slot]) -> T) -> T {
        self.slots()[self.rank] = mine;
        self.group.gate.wait(self.group.size);
        let out = read(&self.slots());
        self.group.gate.wait(self.group.size);
        out
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.group.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Exchange for InProcess<'_> {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.group.size
    }

    fn all_gather(&self, mine: &[u64]) -> Vec<u64> {
        let all = self.all_gather_varcount(mine);
        assert_eq!(all.len(), mine.len() * self.size(), "all_gather: pieces of different lengths");
        all
    }

    fn all_gather_varcount(&self, mine: &[u64]) -> Vec<u64> {
        let slot = Slot { data: mine.to_vec(), ..Slot::default() };
        self.collective(slot, |all| all.iter().flat_map(|s| s.data.iter().copied()).collect())
    }

    fn all_to_all(&self, send: &[u64], counts: &[usize], recv: &mut Vec<u64>, own: Own) -> Result<Vec<usize>, usize> {
        assert_eq!(counts.len(), self.size());
        assert_eq!(send.len(), counts.iter().sum::<usize>());
        let slot = Slot { data: send.to_vec(), counts: counts.to_vec() };
        let (me, limit) = (self.rank, self.group.limit);
        self.collective(slot, |all| {
            // What each rank would hold: everything addressed to it (its own
            // piece received or kept), or what it sends if that is more.
            let holds = |d: usize| all.iter().map(|s| s.counts[d]).sum::<usize>().max(all[d].data.len());
            let worst = (0..all.len()).map(holds).max().unwrap_or(0);
            if worst > limit {
                return Err(worst);
            }
            recv.clear();
            let mut from = Vec::with_capacity(all.len());
            for (s, slot) in all.iter().enumerate() {
                let at: usize = slot.counts[..me].iter().sum();
                let piece = &slot.data[at..at + slot.counts[me]];
                if !(s == me && own == Own::Keep) {
                    recv.extend_from_slice(piece);
                }
                from.push(piece.len());
            }
            Ok(from)
        })
    }
}

/// A reusable barrier that a panicking rank breaks, so that the others
/// panic too (a test fails) rather than wait forever.
#[derive(Default)]
struct Gate {
    /// Ranks arrived in this round, the round's number, whether broken.
    state: Mutex<(usize, u64, bool)>,
    turn: Condvar,
}

impl Gate {
    fn wait(&self, size: usize) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let round = s.1;
        s.0 += 1;
        if s.0 == size {
            *s = (0, round + 1, s.2);
            self.turn.notify_all();
        }
        while s.1 == round && !s.2 {
            s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        assert!(!s.2, "another simulated rank panicked");
    }
}

/// Breaks its gate when dropped by a panicking thread.
struct BreakOnPanic<'a>(&'a Gate);

impl Drop for BreakOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.state.lock().unwrap_or_else(PoisonError::into_inner).2 = true;
            self.0.turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_collectives_follow_the_mpi_contract() {
        let got = InProcess::run(3, usize::MAX, |x| {
            let r = x.rank() as u64;
            let gathered = x.all_gather(&[r, 10 + r]);
            let varcount = x.all_gather_varcount(&vec![r; x.rank()]);
            // Rank r sends d + 1 copies of 100r + d to each rank d.
            let counts: Vec<usize> = (0..3).map(|d| d + 1).collect();
            let send: Vec<u64> = (0..3u64).flat_map(|d| vec![100 * r + d; d as usize + 1]).collect();
            let (mut sent, mut kept) = (vec![7], vec![7]);
            let from_sent = x.all_to_all(&send, &counts, &mut sent, Own::Send);
            let from_kept = x.all_to_all(&send, &counts, &mut kept, Own::Keep);
            (gathered, varcount, sent, from_sent, kept, from_kept)
        });
        for (d, (gathered, varcount, sent, from_sent, kept, from_kept)) in got.into_iter().enumerate() {
            assert_eq!(gathered, [0, 10, 1, 11, 2, 12]);
            assert_eq!(varcount, [1, 2, 2]);
            let want: Vec<u64> = (0..3u64).flat_map(|s| vec![100 * s + d as u64; d + 1]).collect();
            assert_eq!(sent, want, "rank {d}");
            assert_eq!(from_sent, Ok(vec![d + 1; 3]));
            let others: Vec<u64> = want.iter().copied().filter(|k| k / 100 != d as u64).collect();
            assert_eq!(kept, others, "rank {d}");
            assert_eq!(from_kept, Ok(vec![d + 1; 3]));
        }
    }

    #[test]
    fn an_all_to_all_past_the_limit_fails_on_every_rank_before_moving_data() {
        // Rank 1 would receive 2 + 3 = 5 (the limit is 4); rank 0 sends 2.
        let got = InProcess::run(2, 4, |x| {
            let counts = if x.rank() == 0 { [0, 2] } else { [0, 3] };
            let send = vec![1; counts.iter().sum()];
            let mut recv = vec![9];
            (x.all_to_all(&send, &counts, &mut recv, Own::Keep), recv)
        });
        assert_eq!(got, [(Err(5), vec![9]), (Err(5), vec![9])]);
    }

    #[test]
    fn a_panicking_rank_fails_the_run_instead_of_hanging_it() {
        let run = std::panic::catch_unwind(|| {
            InProcess::run(3, usize::MAX, |x| {
                assert_ne!(x.rank(), 1, "rank 1 fails");
                x.all_gather(&[1])
            })
        });
        assert!(run.is_err());
    }
}
