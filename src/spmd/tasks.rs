//! A task farm: rank 0 hands out opaque work items carrying bytes, one at a
//! time, to whichever rank asks; results come back the same way; a failed
//! item is retried once on another rank.
//!
//! This is the pattern of kernels whose work items are files rather than
//! ranges of units (transcode's video segments): items differ in cost, so
//! they go out on request, in the order the kernel gives (longest first keeps
//! the tail short), and every payload travels in messages of at most
//! `chunk_bytes` ([`super::pieces`]), so no single message grows with the input.
//!
//! | message            | from → to   | tag (`super::tags`) | content                                 |
//! |--------------------|-------------|---------------------|-----------------------------------------|
//! | ask                | worker → 0  | `ASK`               | `[kind, item, len]`: ready, done, failed |
//! | ask data           | worker → 0  | `ASK_DATA`          | the result or error text, in chunks     |
//! | give               | 0 → worker  | `GIVE`              | `[kind, item, len, limit_ms]`: stop or an item |
//! | give data          | 0 → worker  | `GIVE_DATA`         | the item's payload, in chunks          |
//!
//! A worker sends an ask and then waits for a give, so every exchange is
//! strictly paired and neither side can wait on the other. Rank 0's main
//! thread (the only thread that calls MPI) serves asks through the shared
//! `super::scheduler`, the dynamic strategy's too, while a second thread on
//! rank 0 works on items from the same `Board`: on a small cluster rank 0's
//! machine is a worker too. The board is the farm's own (the scheduler's docs
//! say why the dynamic strategy's chunks do not go through it): an item may
//! fail and come back, so an ask can be answered later (`Answer::Wait`).
//!
//! Failure handling: the first failure of an item puts it back at the front
//! of the queue, barred from the rank that failed it (unless the job has one
//! rank). A second failure ends the farm: no new items go out, items in
//! flight finish, every rank is told to stop, and rank 0 returns the error.
//! No rank is ever left waiting.
//!
//! Per-item time limit: rank 0 gives every item a limit (`Farm::limit`,
//! sent with it, in milliseconds, 0 for none) and the work function must
//! give up at the limit and return `Err` (transcode kills its ffmpeg and the
//! processes it started). A stuck item is thus a failed one: retried once on
//! another rank, and an item stuck on both tries ends the farm with both
//! reasons, instead of looping or hanging. A rank that is itself stuck (not
//! its tool) is the job-wide `--timeout`'s business.
//!
//! Waiting ranks do not spin: workers waiting for an answer and every rank
//! at the closing checkpoint poll and sleep (`deadline::Pause`), and rank 0's
//! main thread sleeps on the board between polls.

use super::scheduler::{self, Answer, Desk};
use super::ulfm::{Lost, Matched};
use super::{deadline, pieces, tags, RankStats, Spmd};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

const ASK_READY: u64 = 0;
const ASK_DONE: u64 = 1;
const ASK_FAILED: u64 = 2;
const GIVE_STOP: u64 = 0;
const GIVE_ITEM: u64 = 1;

/// Default bound on one message of a payload.
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;

/// How long rank 0's main thread sleeps when no ask is waiting, so that it
/// does not spin on a core its own worker thread (and its ffmpeg) needs.
const SERVE_POLL: Duration = Duration::from_millis(1);

/// What the farm needs from the kernel.
pub struct Farm<'a> {
    /// Number of items (meaningful on rank 0 only; other ranks pass 0).
    pub items: usize,
    /// Bytes per message of a payload or result (at least 1).
    pub chunk_bytes: usize,
    /// On rank 0: the payload of an item for its attempt (0 first, 1 the
    /// retry), read when it is handed out, so only items in flight are held
    /// in memory.
    pub load: &'a (dyn Fn(usize, u32) -> Result<Vec<u8>, String> + Sync),
    /// On rank 0: how long the work on an item may take (`None`: no limit);
    /// it travels with the item to the rank that works on it.
    pub limit: &'a (dyn Fn(usize) -> Option<Duration> + Sync),
    /// On every rank: works on an item's payload within the item's limit
    /// (the third argument), giving up with `Err` when it passes; `Err`
    /// carries the reason (for transcode, ffmpeg's stderr tail).
    pub work: &'a (dyn Fn(usize, Vec<u8>, Option<Duration>) -> Result<Vec<u8>, String> + Sync),
    /// On rank 0: takes an item's result as it arrives.
    pub store: &'a (dyn Fn(usize, Vec<u8>) -> Result<(), String> + Sync),
}

/// Why a farm stopped early.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskError {
    /// The item that failed (`None`: rank 0 could not load or store one).
    pub item: Option<usize>,
    /// Each failed attempt: the rank and its reason, in order.
    pub attempts: Vec<(usize, String)>,
}

/// What one rank got out of a farm.
pub struct FarmOutcome {
    /// This rank's measurements: `units` items done, `chunks` items taken
    /// (attempts, failed ones included), `compute_s` inside `work`,
    /// `comm_s` in MPI calls.
    pub stats: RankStats,
    /// On rank 0: the error that stopped the farm, if any.
    pub error: Option<TaskError>,
    /// On rank 0: items that failed once and were retried successfully.
    pub retried: usize,
}

/// Runs `farm` on every rank. Collective: every rank must call it.
pub fn run(spmd: &Spmd, farm: &Farm) -> FarmOutcome {
    let world = spmd.world();
    world.barrier();
    let stats = RankStats { threads: spmd.threads() as u64, ..RankStats::default() };
    deadline::phase("working on its items");
    let (stats, error, retried) = if spmd.is_root() { serve(spmd, farm, stats) } else { ask(spmd, farm, stats) };
    // Ranks that finish early wait here for the last item, which may take
    // minutes: the checkpoint polls and sleeps instead of spinning on a core
    // that another rank's ffmpeg may need.
    spmd.checkpoint();
    FarmOutcome { stats, error, retried }
}

/// A worker rank: asks for an item, works on it, returns the result with the
/// next ask, until told to stop.
fn ask(spmd: &Spmd, farm: &Farm, mut stats: RankStats) -> (RankStats, Option<TaskError>, usize) {
    let root = spmd.world().process_at_rank(0);
    let mut reply: (u64, u64, Vec<u8>) = (ASK_READY, 0, Vec::new());
    loop {
        let t = Instant::now();
        let (kind, item, len) = (reply.0, reply.1, reply.2.len() as u64);
        root.send_with_tag(&[kind, item, len][..], tags::ASK);
        pieces::send(&root, &reply.2, farm.chunk_bytes, tags::ASK_DATA);
        // Rank 0 may defer its answer (nothing this rank may take yet):
        // wait by polling, not in a blocking receive that spins a core.
        let mut pause = deadline::Pause::new();
        let msg = loop {
            if let Some((msg, _)) = root.immediate_matched_probe_with_tag(tags::GIVE) {
                break msg;
            }
            pause.wait();
        };
        let mut give = [0u64; 4];
        msg.matched_receive_into(&mut give[..]);
        if give[0] == GIVE_STOP {
            stats.comm_s += t.elapsed().as_secs_f64();
            return (stats, None, 0);
        }
        let payload = pieces::receive(&root, give[2] as usize, farm.chunk_bytes, tags::GIVE_DATA);
        stats.comm_s += t.elapsed().as_secs_f64();
        let item = give[1] as usize;
        let limit = (give[3] > 0).then(|| Duration::from_millis(give[3]));
        let t = Instant::now();
        let result = (farm.work)(item, payload, limit);
        stats.compute_s += t.elapsed().as_secs_f64();
        stats.chunks += 1;
        reply = match result {
            Ok(bytes) => {
                stats.units += 1;
                (ASK_DONE, item as u64, bytes)
            }
            Err(why) => (ASK_FAILED, item as u64, why.into_bytes()),
        };
    }
}

/// Rank 0: serves asks on the main thread ([`scheduler::run`] with a
/// [`FarmDesk`]) while a second thread works on items from the same board.
fn serve(spmd: &Spmd, farm: &Farm, mut stats: RankStats) -> (RankStats, Option<TaskError>, usize) {
    let board = Board::new(farm.items, spmd.size());
    let mut desk = FarmDesk { world: spmd.world(), farm, board: &board };
    let (own, comm_s) = scheduler::run(spmd.world(), tags::ASK, None, &mut desk, || work_on_root(farm, &board));
    stats.compute_s += own.compute_s;
    stats.units += own.units;
    stats.chunks += own.chunks;
    stats.comm_s += comm_s;
    let state = board.state.into_inner().unwrap_or_else(|e| e.into_inner());
    (stats, state.error, state.retried)
}

/// Rank 0's working thread: takes items from the board until the farm is
/// over, loading, working on and storing each itself.
fn work_on_root(farm: &Farm, board: &Board) -> RankStats {
    let mut own = RankStats::default();
    while let Some(item) = board.take_blocking(0) {
        let outcome = (farm.load)(item, board.attempt(item)).map_err(|e| (false, e)).and_then(|payload| {
            let t = Instant::now();
            let r = (farm.work)(item, payload, (farm.limit)(item));
            own.compute_s += t.elapsed().as_secs_f64();
            own.chunks += 1;
            r.map_err(|e| (true, e))
        });
        match outcome {
            Ok(bytes) => match (farm.store)(item, bytes) {
                Ok(()) => {
                    own.units += 1;
                    board.done(item);
                }
                Err(e) => board.fatal(e),
            },
            Err((true, why)) => board.failed(item, 0, why),
            Err((false, e)) => board.fatal(e),
        }
    }
    own
}

/// Rank 0's side of the farm for the [`scheduler`]: an ask carries a
/// worker's last result or failure, which goes to the board; the answer is
/// the next item the worker may take with its payload, stop once the farm is
/// over, or a wait while the only items left are barred to it or in flight.
struct FarmDesk<'s> {
    world: &'s SimpleCommunicator,
    farm: &'s Farm<'s>,
    board: &'s Board,
}

impl Desk for FarmDesk<'_> {
    /// The ask's kind and item, and its data.
    type Request = (u64, usize, Vec<u8>);

    fn receive(&mut self, rank: usize, message: Matched) -> Result<Self::Request, Lost> {
        let mut ask = [0u64; 3];
        message.words(&mut ask[..])?;
        let src = self.world.process_at_rank(rank as i32);
        let data = pieces::receive(&src, ask[2] as usize, self.farm.chunk_bytes, tags::ASK_DATA);
        Ok((ask[0], ask[1] as usize, data))
    }

    fn take_in(&mut self, rank: usize, (kind, item, data): Self::Request) {
        match kind {
            ASK_DONE => match (self.farm.store)(item, data) {
                Ok(()) => self.board.done(item),
                Err(e) => self.board.fatal(e),
            },
            ASK_FAILED => self.board.failed(item, rank, String::from_utf8_lossy(&data).into_owned()),
            _ => {}
        }
    }

    fn answer(&mut self, rank: usize) -> Answer {
        let dest = self.world.process_at_rank(rank as i32);
        match self.board.take(rank) {
            Take::Item(item) => match (self.farm.load)(item, self.board.attempt(item)) {
                Ok(payload) => {
                    let limit_ms = (self.farm.limit)(item).map_or(0, limit_ms);
                    let give = [GIVE_ITEM, item as u64, payload.len() as u64, limit_ms];
                    dest.send_with_tag(&give[..], tags::GIVE);
                    pieces::send(&dest, &payload, self.farm.chunk_bytes, tags::GIVE_DATA);
                    Answer::Work
                }
                Err(e) => {
                    self.board.fatal(e);
                    Answer::Wait // answered with stop on the next pass
                }
            },
            Take::Stop => {
                dest.send_with_tag(&[GIVE_STOP, 0, 0, 0][..], tags::GIVE);
                Answer::Stop
            }
            Take::Wait => Answer::Wait,
        }
    }

    fn idle(&mut self, _stopped: &[bool]) {
        self.board.wait_for_change(SERVE_POLL);
    }
}

/// A limit as sent with an item: whole milliseconds, at least 1 (0 means none).
fn limit_ms(limit: Duration) -> u64 {
    u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// What the board says to a rank that asks for work.
#[derive(Debug, PartialEq, Eq)]
enum Take {
    Item(usize),
    /// Nothing this rank may take now, but items are still in flight (one
    /// may fail and need a retry) or queued for other ranks.
    Wait,
    Stop,
}

/// Rank 0's record of the items: shared by its serving and working threads.
struct Board {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    queue: VecDeque<usize>,
    /// The rank an item failed on once, if it did.
    failed_on: Vec<Option<(usize, String)>>,
    remaining: usize,
    ranks: usize,
    error: Option<TaskError>,
    retried: usize,
}

impl State {
    fn take(&mut self, rank: usize) -> Take {
        if self.error.is_some() || self.remaining == 0 {
            return Take::Stop;
        }
        let barred = |s: &State, item: usize| s.ranks > 1 && matches!(&s.failed_on[item], Some((r, _)) if *r == rank);
        match self.queue.iter().position(|&i| !barred(self, i)) {
            Some(at) => Take::Item(self.queue.remove(at).expect("position is in the queue")),
            None => Take::Wait,
        }
    }
}

impl Board {
    fn new(items: usize, ranks: usize) -> Board {
        Board {
            state: Mutex::new(State {
                queue: (0..items).collect(),
                failed_on: vec![None; items],
                remaining: items,
                ranks,
                error: None,
                retried: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, rank: usize) -> Take {
        self.lock().take(rank)
    }

    /// For rank 0's working thread: the next item, waiting while there is
    /// none it may take yet; `None` when the farm is over.
    fn take_blocking(&self, rank: usize) -> Option<usize> {
        let mut s = self.lock();
        loop {
            match s.take(rank) {
                Take::Item(i) => return Some(i),
                Take::Stop => return None,
                Take::Wait => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Sleeps until the board changes or `timeout` passes.
    fn wait_for_change(&self, timeout: Duration) {
        let s = self.lock();
        drop(self.changed.wait_timeout(s, timeout));
    }

    /// Which attempt at `item` is being handed out: 0 first, 1 the retry.
    fn attempt(&self, item: usize) -> u32 {
        u32::from(self.lock().failed_on[item].is_some())
    }

    fn done(&self, item: usize) {
        let mut s = self.lock();
        s.remaining -= 1;
        if s.failed_on[item].is_some() {
            s.retried += 1;
        }
        self.changed.notify_all();
    }

    fn failed(&self, item: usize, rank: usize, why: String) {
        let mut s = self.lock();
        match s.failed_on[item].take() {
            Some(first) => {
                if s.error.is_none() {
                    s.error = Some(TaskError { item: Some(item), attempts: vec![first, (rank, why)] });
                }
                s.queue.clear();
            }
            None => {
                s.failed_on[item] = Some((rank, why));
                s.queue.push_front(item);
            }
        }
        self.changed.notify_all();
    }

    fn fatal(&self, why: String) {
        let mut s = self.lock();
        if s.error.is_none() {
            s.error = Some(TaskError { item: None, attempts: vec![(0, why)] });
        }
        s.queue.clear();
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_go_out_in_order_and_the_farm_stops_when_all_are_done() {
        let b = Board::new(3, 2);
        assert_eq!(b.take(1), Take::Item(0));
        assert_eq!(b.take(0), Take::Item(1));
        assert_eq!(b.take(1), Take::Item(2));
        assert_eq!(b.take(0), Take::Wait, "items in flight may still fail");
        (0..3).for_each(|i| b.done(i));
        assert_eq!(b.take(0), Take::Stop);
        assert_eq!(b.lock().retried, 0);
    }

    #[test]
    fn a_failed_item_is_retried_first_and_on_another_rank() {
        let b = Board::new(3, 3);
        assert_eq!(b.take(1), Take::Item(0));
        b.failed(0, 1, "boom".into());
        assert_eq!(b.take(1), Take::Item(1), "rank 1 may not retry item 0");
        assert_eq!(b.take(2), Take::Item(0), "the retry goes to the front");
        assert_eq!((b.attempt(0), b.attempt(1)), (1, 0));
        b.done(0);
        assert_eq!(b.lock().retried, 1);
        assert!(b.lock().error.is_none());
    }

    #[test]
    fn a_rank_that_may_only_retry_its_own_failure_waits() {
        let b = Board::new(1, 2);
        assert_eq!(b.take(1), Take::Item(0));
        b.failed(0, 1, "boom".into());
        assert_eq!(b.take(1), Take::Wait);
        assert_eq!(b.take(0), Take::Item(0));
    }

    #[test]
    fn with_one_rank_the_retry_runs_on_it() {
        let b = Board::new(1, 1);
        assert_eq!(b.take(0), Take::Item(0));
        b.failed(0, 0, "boom".into());
        assert_eq!(b.take(0), Take::Item(0));
    }

    #[test]
    fn a_second_failure_stops_the_farm_with_both_reasons() {
        let b = Board::new(4, 3);
        assert_eq!(b.take(1), Take::Item(0));
        b.failed(0, 1, "first".into());
        assert_eq!(b.take(2), Take::Item(0));
        assert_eq!(b.take(0), Take::Item(1));
        b.failed(0, 2, "second".into());
        assert_eq!(b.take(1), Take::Stop, "no new items after the job failed");
        let e = b.lock().error.clone().unwrap();
        assert_eq!(e.item, Some(0));
        assert_eq!(e.attempts, vec![(1, "first".to_string()), (2, "second".to_string())]);
    }

    #[test]
    fn limits_travel_as_whole_milliseconds_never_as_none() {
        assert_eq!(limit_ms(Duration::from_secs(90)), 90_000);
        assert_eq!(limit_ms(Duration::from_micros(10)), 1, "a tiny limit is not 'no limit'");
        assert_eq!(limit_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn an_empty_farm_stops_at_once() {
        assert_eq!(Board::new(0, 4).take(3), Take::Stop);
        assert_eq!(Board::new(0, 1).take_blocking(0), None);
    }
}
