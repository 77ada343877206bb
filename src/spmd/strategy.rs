//! The three communication strategies, written once for every kernel.
//!
//! A kernel hands the runtime a [`Work`]: a number of units and a function
//! that computes a range of units into a byte buffer (`unit_bytes` per unit,
//! zero for scalar kernels) and returns a [`Tally`]. The strategies differ
//! only in how ranges go out and results come back:
//!
//! | strategy     | work out                  | tallies back                   | bytes back                |
//! |--------------|---------------------------|--------------------------------|---------------------------|
//! | `collective` | `MPI_Scatter` of ranges   | `MPI_Reduce` (sum of limbs)    | lengths by `MPI_Gather`, then `MPI_Gatherv` |
//! | `p2p`        | `MPI_Send` of each range  | `MPI_Send` / `MPI_Recv`        | a length, then `MPI_Send` in ≤64 MiB pieces |
//! | `dynamic`    | chunks on request         | with each finished chunk       | with each finished chunk  |
//!
//! All three produce the same tally and the same bytes, since unit results do
//! not depend on where they were computed and tallies add exactly.
//!
//! A work may [`Pack`] its bytes on the rank that computed them (Mandelbrot:
//! compressed PNG blocks): ranges are then cut in whole grains, computed and
//! packed in pieces, and what travels is the packed form, joined in unit order.
//!
//! Their messages use the tags of [`super::tags`] (`RANGE`, `TALLY`, `DATA`,
//! `WORK`, `RESULT`); `p2p` moves bytes with [`super::pieces`]; rank 0's side
//! of `dynamic` is the shared `super::scheduler`, with the chunk counter as
//! its source of work.

use super::exchange::{with_real_address, with_real_address_mut};
use super::scheduler::{self, Answer, Desk};
use super::ulfm::{Lost, Matched};
use super::{deadline, pieces, tags, Spmd};
use crate::progress::{self, Progress};
use kernels::{partition, Tally};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How work and results travel between ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comm {
    /// Root scatters ranges; results come back by reduce and gather-varcount.
    Collective,
    /// The same data movement with explicit sends and receives.
    P2p,
    /// Self-scheduling: rank 0 hands out chunks on request and computes too.
    Dynamic,
}

/// A kernel's work, as the runtime sees it.
pub struct Work<'a> {
    /// Number of work units.
    pub units: u64,
    /// Output bytes per unit (0: the kernel returns only a tally).
    pub unit_bytes: usize,
    /// Computes a range of units into a buffer of `len * unit_bytes` bytes.
    pub compute: &'a (dyn Fn(Range<u64>, &mut [u8]) -> Tally + Sync),
    /// How the computed bytes travel: as they are (`None`) or packed by the
    /// kernel on the rank that computed them.
    pub pack: Option<Pack<'a>>,
    /// Whether the caller shows the progress itself (a run in batches),
    /// so the strategy shows none.
    pub quiet: bool,
}

/// Packs a range of units from their computed bytes.
pub type PackFn<'a> = dyn Fn(Range<u64>, &[u8]) -> Vec<u8> + Sync + 'a;

/// A kernel's packing of its computed bytes before they travel (the
/// Mandelbrot picture's rows: compressed blocks of a PNG).
pub struct Pack<'a> {
    /// Units per packed block: every range a rank computes and packs starts
    /// at a multiple of it, so the blocks never depend on the decomposition.
    pub grain: u64,
    /// Packs a range (starting at a multiple of `grain`) from its computed
    /// bytes; the packed forms of consecutive ranges concatenate into the
    /// packed form of the whole.
    pub pack: &'a PackFn<'a>,
}

impl Work<'_> {
    /// Units per grain (1 when bytes travel unpacked).
    fn grain(&self) -> u64 {
        self.pack.as_ref().map_or(1, |p| p.grain.max(1))
    }
}

/// Rank `rank`'s units under the static strategies: an even share of whole
/// grains.
pub fn static_range(units: u64, grain: u64, size: u64, rank: u64) -> Range<u64> {
    let g = partition::block_range(units.div_ceil(grain), size, rank);
    (g.start * grain).min(units)..(g.end * grain).min(units)
}

/// Units per chunk of the dynamic strategy: about [`CHUNKS_PER_RANK`] chunks
/// per rank, whole grains.
pub fn dynamic_chunk(units: u64, grain: u64, size: u64) -> u64 {
    partition::dynamic_chunk(units.div_ceil(grain), size, CHUNKS_PER_RANK) * grain
}

/// The most units one rank computes in one piece under `comm`.
pub fn largest_share(comm: Comm, units: u64, grain: u64, size: u64) -> u64 {
    match comm {
        Comm::Dynamic => dynamic_chunk(units, grain, size).min(units),
        // Rank 0's share is never smaller than another's.
        _ => static_range(units, grain, size, 0).end,
    }
}

/// Grains per thread a packing rank computes before it packs them: its raw
/// bytes are held only for such a piece, never for its whole share.
pub const PACK_GRAINS_PER_THREAD: u64 = 4;

/// Units a packing rank with `threads` threads computes at a time.
pub fn pack_piece(grain: u64, threads: usize) -> u64 {
    grain.max(1) * PACK_GRAINS_PER_THREAD * threads.max(1) as u64
}

/// What one rank measured about its own part.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RankStats {
    /// Seconds inside the kernel's compute function.
    pub compute_s: f64,
    /// Seconds inside MPI calls of the strategy (waiting included).
    pub comm_s: f64,
    /// Work units this rank computed.
    pub units: u64,
    /// Pieces of work it took (1 for the static strategies).
    pub chunks: u64,
    /// Rayon threads it computed with.
    pub threads: u64,
    /// Seconds inside the kernel's packing of its bytes (0 without packing).
    pub pack_s: f64,
    /// Cores of this rank's node ([`super::Node::cores`]; set by `gather_stats`).
    pub node_cores: u64,
}

impl RankStats {
    pub(crate) const FIELDS: usize = 7;

    pub(crate) fn to_array(self) -> [f64; Self::FIELDS] {
        // Counts stay exact as f64 below 2^53.
        let counts = [self.units, self.chunks, self.threads, self.node_cores].map(|c| c as f64);
        [self.compute_s, self.comm_s, counts[0], counts[1], counts[2], self.pack_s, counts[3]]
    }

    pub(crate) fn from_slice(a: &[f64]) -> RankStats {
        RankStats {
            compute_s: a[0],
            comm_s: a[1],
            units: a[2] as u64,
            chunks: a[3] as u64,
            threads: a[4] as u64,
            pack_s: a[5],
            node_cores: a[6] as u64,
        }
    }
}

/// The result of running a [`Work`] on every rank.
pub struct Outcome {
    /// At rank 0 the job's total; elsewhere this rank's own part.
    pub tally: Tally,
    /// At rank 0 the bytes of every unit in unit order, packed if the work
    /// packs (empty when `unit_bytes` is 0); `None` elsewhere.
    pub data: Option<Vec<u8>>,
    /// This rank's measurements.
    pub stats: RankStats,
    /// Barrier-to-barrier seconds of the whole computation.
    pub wall_s: f64,
}

/// Chunks per rank the dynamic scheduler aims for: enough to even out uneven
/// units, few enough that a request's round trip stays negligible.
pub const CHUNKS_PER_RANK: u64 = 16;

/// Runs `work` on every rank with strategy `comm`.
pub fn run(spmd: &Spmd, comm: Comm, work: &Work) -> Outcome {
    let world = spmd.world();
    world.barrier();
    let start = mpi::time();
    let mut ctx = Ctx { spmd, work, stats: RankStats { threads: spmd.threads() as u64, ..RankStats::default() } };
    let (tally, data) = match comm {
        Comm::Collective => ctx.collective(),
        Comm::P2p => ctx.p2p(),
        Comm::Dynamic => ctx.dynamic(),
    };
    // After the dynamic strategy, possibly among fewer ranks (ULFM).
    spmd.world().barrier();
    Outcome { tally, data, stats: ctx.stats, wall_s: mpi::time() - start }
}

/// Computes `units` and returns their tally and the bytes that travel (packed
/// if the work packs), adding to `stats`. With a live `bar` (rank 0's own
/// share) the range goes in pieces so the bar can move; units are
/// independent and tallies exact, so the result is the same.
fn produce(work: &Work, units: Range<u64>, threads: usize, stats: &mut RankStats, bar: &Progress) -> (Tally, Vec<u8>) {
    let n = units.end - units.start;
    let bytes = |r: &Range<u64>| (r.end - r.start) as usize * work.unit_bytes;
    let piece = match &work.pack {
        Some(p) => pack_piece(p.grain, threads),
        None if bar.active() => n.div_ceil(progress::PIECES).max(1),
        None => n.max(1),
    };
    let mut tally = Tally::default();
    let mut raw = Vec::new();
    let mut out = Vec::new();
    // The pieces are computed and packed on one of the pool's threads, so
    // each piece's parallel loops start where the workers are instead of
    // handing their work from this thread to a pool that fell asleep while
    // the piece before was packed (two context switches a piece, about
    // 30 us each on a 2-vCPU VM: 1.5 ms of a 50 ms picture at one thread,
    // docs/benchmarks.md). Nothing here calls MPI.
    // Pieces cut for progress alone stop after the first if the share will
    // be done before anything shows (its time times the pieces left): a
    // short run is not cut into a hundred pieces for nothing.
    let for_progress = work.pack.is_none() && piece < n;
    let mut pieces = partition::chunks(n, piece).peekable();
    rayon::scope(|_| {
        let started = Instant::now();
        while let Some(mut c) = pieces.next() {
            if for_progress && c.start > 0 && c.start == piece {
                let estimate = started.elapsed().mul_f64(n as f64 / c.start as f64);
                if !bar.worth_pieces(estimate) {
                    c.end = n;
                    pieces.by_ref().for_each(drop);
                }
            }
            let r = units.start + c.start..units.start + c.end;
            let t = Instant::now();
            let dest = if work.pack.is_some() || piece < n {
                raw.resize(bytes(&r), 0);
                &mut raw
            } else {
                out.resize(bytes(&r), 0);
                &mut out
            };
            tally += (work.compute)(r.clone(), dest);
            stats.compute_s += t.elapsed().as_secs_f64();
            match &work.pack {
                Some(p) => {
                    let t = Instant::now();
                    out.extend((p.pack)(r, &raw));
                    stats.pack_s += t.elapsed().as_secs_f64();
                }
                None if piece < n => out.extend_from_slice(&raw),
                None => {}
            }
            bar.set(c.end);
        }
    });
    bar.finish();
    stats.units += n;
    stats.chunks += 1;
    (tally, out)
}

struct Ctx<'a> {
    spmd: &'a Spmd,
    work: &'a Work<'a>,
    stats: RankStats,
}

impl<'a> Ctx<'a> {
    fn size(&self) -> u64 {
        self.spmd.size() as u64
    }

    fn static_range(&self, rank: u64) -> Range<u64> {
        static_range(self.work.units, self.work.grain(), self.size(), rank)
    }

    /// This rank's static share, computed (and packed).
    fn produce(&mut self, units: Range<u64>) -> (Tally, Vec<u8>) {
        deadline::phase("computing its share");
        let bar = Progress::new(self.spmd.is_root() && !self.work.quiet, units.end - units.start, "rank 0's share");
        produce(self.work, units, self.spmd.threads(), &mut self.stats, &bar)
    }

    /// Runs an MPI step, adding its time to `comm_s`.
    fn comm<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.stats.comm_s += t.elapsed().as_secs_f64();
        r
    }

    fn collective(&mut self) -> (Tally, Option<Vec<u8>>) {
        let spmd: &'a Spmd = self.spmd;
        let world = spmd.world();
        let root = world.process_at_rank(0);
        let is_root = spmd.is_root();

        // The root decides the decomposition and scatters each rank its range.
        let mut mine = [0u64; 2];
        let ranges: Vec<u64> = if is_root {
            (0..self.size())
                .flat_map(|r| {
                    let b = self.static_range(r);
                    [b.start, b.end]
                })
                .collect()
        } else {
            Vec::new()
        };
        self.comm(|| {
            if is_root {
                root.scatter_into_root(&ranges[..], &mut mine[..]);
            } else {
                root.scatter_into(&mut mine[..]);
            }
        });
        let (tally, local) = self.produce(mine[0]..mine[1]);
        self.comm(|| spmd.checkpoint());

        let limbs = tally.to_limbs();
        let mut total = [0i64; 4];
        self.comm(|| {
            if is_root {
                root.reduce_into_root(&limbs[..], &mut total[..], SystemOperation::sum());
            } else {
                root.reduce_into(&limbs[..], SystemOperation::sum());
            }
        });
        if self.work.unit_bytes == 0 {
            return (if is_root { Tally::from_limbs(total) } else { tally }, is_root.then(Vec::new));
        }
        // Packed shares differ in length: the root learns each first.
        let len = local.len() as u64;
        if !is_root {
            self.comm(|| {
                root.gather_into(&len);
                with_real_address(&local, |local| root.gather_varcount_into(local));
            });
            return (tally, None);
        }
        let mut lens = vec![0u64; spmd.size()];
        self.comm(|| root.gather_into_root(&len, &mut lens[..]));
        let bytes: Vec<usize> = lens.iter().map(|&l| l as usize).collect();
        let mut all = vec![0u8; bytes.iter().sum()];
        let (counts, displs) = super::exchange::mpi_counts(&bytes);
        self.comm(|| {
            with_real_address(&local, |local| {
                with_real_address_mut(&mut all, |all| {
                    root.gather_varcount_into_root(local, &mut PartitionMut::new(all, counts, &displs[..]))
                })
            })
        });
        (Tally::from_limbs(total), Some(all))
    }

    fn p2p(&mut self) -> (Tally, Option<Vec<u8>>) {
        let spmd: &'a Spmd = self.spmd;
        let world = spmd.world();
        let root = world.process_at_rank(0);
        if !self.spmd.is_root() {
            let mut mine = [0u64; 2];
            self.comm(|| root.receive_into_with_tag(&mut mine[..], tags::RANGE));
            let (tally, local) = self.produce(mine[0]..mine[1]);
            self.comm(|| spmd.checkpoint());
            self.comm(|| {
                root.send_with_tag(&tally.to_limbs()[..], tags::TALLY);
                root.send_with_tag(&(local.len() as u64), tags::DATA);
                pieces::send(&root, &local, pieces::MAX_MESSAGE_BYTES, tags::DATA);
            });
            return (tally, None);
        }

        let ranges: Vec<Range<u64>> = (0..self.size()).map(|r| self.static_range(r)).collect();
        self.comm(|| {
            for (r, b) in ranges.iter().enumerate().skip(1) {
                world.process_at_rank(r as i32).send_with_tag(&[b.start, b.end][..], tags::RANGE);
            }
        });
        // Rank 0's own part starts the result; the others' follow in rank order.
        let (mut total, mut all) = self.produce(ranges[0].clone());
        self.comm(|| spmd.checkpoint());
        for r in 1..ranges.len() {
            let src = world.process_at_rank(r as i32);
            self.comm(|| {
                let mut limbs = [0i64; 4];
                src.receive_into_with_tag(&mut limbs[..], tags::TALLY);
                total += Tally::from_limbs(limbs);
                let mut len = 0u64;
                src.receive_into_with_tag(&mut len, tags::DATA);
                let at = all.len();
                all.resize(at + len as usize, 0);
                pieces::receive_into(&src, &mut all[at..], pieces::MAX_MESSAGE_BYTES, tags::DATA);
            });
        }
        (total, Some(all))
    }

    fn dynamic(&mut self) -> (Tally, Option<Vec<u8>>) {
        let chunk = dynamic_chunk(self.work.units, self.work.grain(), self.size());
        let n_chunks = self.work.units.div_ceil(chunk);
        let units = self.work.units;
        let chunk_range = move |c: u64| c * chunk..((c + 1) * chunk).min(units);
        if self.spmd.is_root() {
            self.dispatch(n_chunks, chunk_range)
        } else {
            self.request_chunks()
        }
    }

    /// A worker: asks rank 0 for a chunk, computes it, returns it with the
    /// next request, until rank 0 answers with an empty range.
    fn request_chunks(&mut self) -> (Tally, Option<Vec<u8>>) {
        let spmd: &'a Spmd = self.spmd;
        let root = spmd.world().process_at_rank(0);
        let mut total = Tally::default();
        let mut message = ResultHeader::NONE.encode(&[]);
        loop {
            let mut next = [0u64; 2];
            self.comm(|| {
                root.send_with_tag(&message[..], tags::RESULT);
                root.receive_into_with_tag(&mut next[..], tags::WORK);
            });
            let range = next[0]..next[1];
            if range.is_empty() {
                self.comm(|| spmd.regroup(&[]));
                return (total, None);
            }
            deadline::phase("computing its share");
            let (tally, out) = produce(self.work, range.clone(), spmd.threads(), &mut self.stats, &Progress::none());
            total += tally;
            message = ResultHeader { start: range.start, end: range.end, tally }.encode(&out);
        }
    }

    /// Rank 0: serves chunk requests on the main thread (the only thread that
    /// calls MPI, through [`scheduler::run`]) while a compute thread takes
    /// chunks from the same counter, so rank 0 computes too instead of sitting
    /// idle. Results (of any length, packed or not) are kept by first unit and
    /// joined in unit order. With ULFM, a worker that dies has its chunk in
    /// hand given to another rank (or computed here, when none is left).
    fn dispatch(&mut self, n_chunks: u64, chunk_range: impl Fn(u64) -> Range<u64> + Sync) -> (Tally, Option<Vec<u8>>) {
        let spmd: &'a Spmd = self.spmd;
        let next = AtomicU64::new(0);
        let results: Mutex<Vec<(u64, Vec<u8>, usize)>> = Mutex::new(Vec::with_capacity(n_chunks as usize));
        let work = self.work;
        let threads = spmd.threads();
        let bar = Progress::new(!work.quiet, n_chunks, "chunks handed out");
        let mut desk = ChunkDesk {
            world: spmd.world(),
            started_as: spmd.started_as(),
            next: &next,
            n_chunks,
            chunk_range: &chunk_range,
            results: &results,
            bar: &bar,
            tally: Tally::default(),
            pause: deadline::Pause::new(),
            survive: spmd.ulfm().is_some(),
            in_hand: vec![None; spmd.size()],
            redo: Vec::new(),
            redone: Vec::new(),
        };
        let ((root_part, stats), comm_s) = scheduler::run(spmd.world(), tags::RESULT, spmd.ulfm(), &mut desk, || {
            let mut stats = RankStats::default();
            let mut tally = Tally::default();
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= n_chunks {
                    return (tally, stats);
                }
                bar.set(c);
                let range = chunk_range(c);
                let (t, out) = produce(work, range.clone(), threads, &mut stats, &Progress::none());
                tally += t;
                results.lock().expect("result list").push((range.start, out, 0));
            }
        });
        let (served_tally, leftover, redone) = (desk.tally, desk.redo, desk.redone);
        // Chunks of lost ranks that no rank was left to take.
        let mut own = root_part;
        for range in leftover {
            let (t, out) = produce(work, range.clone(), threads, &mut self.stats, &Progress::none());
            own += t;
            results.lock().expect("result list").push((range.start, out, 0));
        }
        bar.finish();
        self.comm(|| spmd.regroup(&redone));
        self.stats.compute_s += stats.compute_s;
        self.stats.pack_s += stats.pack_s;
        self.stats.units += stats.units;
        self.stats.chunks += stats.chunks;
        self.stats.comm_s += comm_s;
        let mut results = results.into_inner().expect("result list");
        results.sort_unstable_by_key(|r| r.0);
        let mut all = Vec::with_capacity(results.iter().map(|r| r.1.len() - r.2).sum());
        for (_, bytes, skip) in results {
            all.extend_from_slice(&bytes[skip..]);
        }
        (own + served_tally, Some(all))
    }
}

/// Rank 0's side of the dynamic strategy for the [`scheduler`]: a request
/// carries a worker's last result ([`ResultHeader`] and bytes); the answer is
/// the next chunk from the counter rank 0's compute thread also takes from,
/// or an empty range once none is left. A chunk cannot fail, so without
/// ULFM the answer is never a wait. With ULFM a rank that asks when the
/// counter is spent waits while another worker still holds a chunk: should
/// that worker die, its chunk goes to the first rank that asks.
struct ChunkDesk<'s, F> {
    world: &'s SimpleCommunicator,
    /// The rank each rank was started as, for messages.
    started_as: &'s [usize],
    next: &'s AtomicU64,
    n_chunks: u64,
    chunk_range: &'s F,
    /// Results by first unit: the bytes, and how many leading bytes to skip.
    results: &'s Mutex<Vec<(u64, Vec<u8>, usize)>>,
    bar: &'s Progress,
    /// The tally of the workers' results.
    tally: Tally,
    pause: deadline::Pause,
    /// Whether a worker's death is survived (ULFM).
    survive: bool,
    /// The chunk each worker holds (answered, its result not yet back).
    in_hand: Vec<Option<Range<u64>>>,
    /// Chunks of dead workers, to be given out again.
    redo: Vec<Range<u64>>,
    /// Each chunk given out again, with the worker that had held it.
    redone: Vec<(usize, Range<u64>)>,
}

impl<F: Fn(u64) -> Range<u64> + Sync> Desk for ChunkDesk<'_, F> {
    type Request = ();

    fn receive(&mut self, rank: usize, message: Matched) -> Result<(), Lost> {
        self.pause.reset();
        let bytes = message.bytes()?;
        let header = ResultHeader::decode(&bytes).0;
        if header.start < header.end {
            self.in_hand[rank] = None;
            self.tally += header.tally;
            // The message itself is kept; its header is skipped when joining.
            self.results.lock().expect("result list").push((header.start, bytes, ResultHeader::LEN));
        }
        Ok(())
    }

    fn take_in(&mut self, _rank: usize, _request: ()) {}

    fn answer(&mut self, rank: usize) -> Answer {
        let range = match self.redo.pop() {
            Some(range) => range,
            None => {
                let c = self.next.fetch_add(1, Ordering::Relaxed);
                self.bar.set(c.min(self.n_chunks));
                if c < self.n_chunks {
                    (self.chunk_range)(c)
                } else if self.survive && self.in_hand.iter().any(Option::is_some) {
                    return Answer::Wait;
                } else {
                    0..0
                }
            }
        };
        self.world.process_at_rank(rank as i32).send_with_tag(&[range.start, range.end][..], tags::WORK);
        if range.is_empty() {
            Answer::Stop
        } else {
            self.in_hand[rank] = Some(range);
            Answer::Work
        }
    }

    fn idle(&mut self, stopped: &[bool]) {
        if deadline::expired() {
            deadline::expire_missing((0..stopped.len()).filter(|&r| !stopped[r]).map(|r| self.started_as[r]));
        }
        self.pause.wait();
    }

    fn lost(&mut self, rank: usize) {
        if let Some(range) = self.in_hand[rank].take() {
            self.redone.push((rank, range.clone()));
            self.redo.push(range);
        }
    }
}

/// The header of a dynamic worker's result message: the range it computed
/// and its tally, followed by the range's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ResultHeader {
    start: u64,
    end: u64,
    tally: Tally,
}

impl ResultHeader {
    const LEN: usize = 16 + 16;
    /// The first request, which carries no result.
    const NONE: ResultHeader = ResultHeader { start: 0, end: 0, tally: Tally(0) };

    fn encode(&self, data: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(Self::LEN + data.len());
        m.extend_from_slice(&self.start.to_le_bytes());
        m.extend_from_slice(&self.end.to_le_bytes());
        m.extend_from_slice(&self.tally.0.to_le_bytes());
        m.extend_from_slice(data);
        m
    }

    fn decode(m: &[u8]) -> (ResultHeader, &[u8]) {
        let word = |i: usize| u64::from_le_bytes(m[i..i + 8].try_into().expect("8 bytes"));
        let tally = i128::from_le_bytes(m[16..32].try_into().expect("16 bytes"));
        (ResultHeader { start: word(0), end: word(8), tally: Tally(tally) }, &m[Self::LEN..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_header_round_trips() {
        let h = ResultHeader { start: 7, end: 19, tally: Tally(-(1 << 100) + 3) };
        let m = h.encode(&[1, 2, 3]);
        assert_eq!(ResultHeader::decode(&m), (h, &[1u8, 2, 3][..]));
        assert_eq!(ResultHeader::decode(&ResultHeader::NONE.encode(&[])).0, ResultHeader::NONE);
    }

    #[test]
    fn shares_are_whole_grains_that_cover_every_unit_once() {
        for (units, grain, size) in [(120, 43, 4), (120, 43, 2), (7, 3, 5), (1, 555, 3), (1000, 1, 7)] {
            let mut next = 0;
            for rank in 0..size {
                let r = static_range(units, grain, size, rank);
                assert_eq!(r.start, next, "{units} {grain} {size}");
                let whole = |u: u64| u.is_multiple_of(grain) || u == units;
                assert!(whole(r.start) && whole(r.end), "{r:?}");
                assert!(r.end - r.start <= largest_share(Comm::P2p, units, grain, size));
                next = r.end;
            }
            assert_eq!(next, units);
            let chunk = dynamic_chunk(units, grain, size);
            assert!(chunk.is_multiple_of(grain) && chunk > 0);
        }
    }

    #[test]
    fn rank_stats_round_trip() {
        let s = RankStats {
            compute_s: 1.5,
            comm_s: 0.25,
            units: 1 << 40,
            chunks: 16,
            threads: 2,
            pack_s: 0.125,
            node_cores: 96,
        };
        assert_eq!(RankStats::from_slice(&s.to_array()), s);
    }
}
