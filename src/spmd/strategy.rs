//! The three communication strategies, written once for every kernel.
//!
//! A kernel hands the runtime a [`Work`]: a number of units and a function
//! that computes a range of units into a byte buffer (`unit_bytes` per unit,
//! zero for scalar kernels) and returns a [`Tally`]. The strategies differ
//! only in how ranges go out and results come back:
//!
//! | strategy     | work out                  | tallies back                   | bytes back                |
//! |--------------|---------------------------|--------------------------------|---------------------------|
//! | `collective` | `MPI_Scatter` of ranges   | `MPI_Reduce` (sum of limbs)    | `MPI_Gatherv`             |
//! | `p2p`        | `MPI_Send` of each range  | `MPI_Send` / `MPI_Recv`        | `MPI_Send` in ≤64 MiB pieces |
//! | `dynamic`    | chunks on request         | with each finished chunk       | with each finished chunk  |
//!
//! All three produce the same tally and the same bytes, since unit results do
//! not depend on where they were computed and tallies add exactly.

use super::{deadline, Spmd};
use crate::progress::{self, Progress};
use kernels::{partition, Tally};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::traits::*;
use mpi::Tag;
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

impl Comm {
    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Comm::Collective => "collective",
            Comm::P2p => "p2p",
            Comm::Dynamic => "dynamic",
        }
    }
}

/// A kernel's work, as the runtime sees it.
pub struct Work<'a> {
    /// Number of work units.
    pub units: u64,
    /// Output bytes per unit (0: the kernel returns only a tally).
    pub unit_bytes: usize,
    /// Computes a range of units into a buffer of `len * unit_bytes` bytes.
    pub compute: &'a (dyn Fn(Range<u64>, &mut [u8]) -> Tally + Sync),
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
}

impl RankStats {
    pub(crate) const FIELDS: usize = 5;

    pub(crate) fn to_array(self) -> [f64; Self::FIELDS] {
        // Counts stay exact as f64 below 2^53.
        [self.compute_s, self.comm_s, self.units as f64, self.chunks as f64, self.threads as f64]
    }

    pub(crate) fn from_slice(a: &[f64]) -> RankStats {
        RankStats { compute_s: a[0], comm_s: a[1], units: a[2] as u64, chunks: a[3] as u64, threads: a[4] as u64 }
    }
}

/// The result of running a [`Work`] on every rank.
pub struct Outcome {
    /// At rank 0 the job's total; elsewhere this rank's own part.
    pub tally: Tally,
    /// At rank 0 the bytes of every unit in unit order (empty when
    /// `unit_bytes` is 0); `None` elsewhere.
    pub data: Option<Vec<u8>>,
    /// This rank's measurements.
    pub stats: RankStats,
    /// Barrier-to-barrier seconds of the whole computation.
    pub wall_s: f64,
}

const TAG_RANGE: Tag = 101;
const TAG_TALLY: Tag = 102;
const TAG_DATA: Tag = 103;
const TAG_WORK: Tag = 104;
const TAG_RESULT: Tag = 105;

/// Largest single message of the point-to-point paths; bigger payloads go in pieces.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

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
    world.barrier();
    Outcome { tally, data, stats: ctx.stats, wall_s: mpi::time() - start }
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
        partition::block_range(self.work.units, self.size(), rank)
    }

    fn bytes_of(&self, units: &Range<u64>) -> usize {
        (units.end - units.start) as usize * self.work.unit_bytes
    }

    /// Computes `units` into `out`, timing it. On rank 0 with a terminal the
    /// range goes in [`progress::PIECES`] pieces so a bar can show progress;
    /// units are independent and tallies exact, so the result is the same.
    fn compute(&mut self, units: Range<u64>, out: &mut [u8]) -> Tally {
        deadline::phase("computing its share");
        let t = Instant::now();
        let n = units.end - units.start;
        let bar = Progress::new(self.spmd.is_root(), n, "rank 0's share");
        let tally = if bar.active() {
            let piece = n.div_ceil(progress::PIECES).max(1);
            let mut tally = Tally::default();
            for c in partition::chunks(n, piece) {
                let (a, b) = (c.start as usize * self.work.unit_bytes, c.end as usize * self.work.unit_bytes);
                tally += (self.work.compute)(units.start + c.start..units.start + c.end, &mut out[a..b]);
                bar.set(c.end);
            }
            bar.finish();
            tally
        } else {
            (self.work.compute)(units, out)
        };
        self.stats.compute_s += t.elapsed().as_secs_f64();
        self.stats.units += n;
        self.stats.chunks += 1;
        tally
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
        let range = mine[0]..mine[1];
        let mut local = vec![0u8; self.bytes_of(&range)];
        super::exchange::nonnull(&mut local);
        let tally = self.compute(range, &mut local);
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
        if !is_root {
            if self.work.unit_bytes > 0 {
                self.comm(|| root.gather_varcount_into(&local[..]));
            }
            return (tally, None);
        }

        let mut all = vec![0u8; self.work.units as usize * self.work.unit_bytes];
        if self.work.unit_bytes > 0 {
            let bytes: Vec<usize> = (0..self.size()).map(|r| self.bytes_of(&self.static_range(r))).collect();
            let (counts, displs) = super::exchange::mpi_counts(&bytes);
            self.comm(|| {
                let mut parts = PartitionMut::new(&mut all[..], counts, &displs[..]);
                root.gather_varcount_into_root(&local[..], &mut parts);
            });
        }
        (Tally::from_limbs(total), Some(all))
    }

    fn p2p(&mut self) -> (Tally, Option<Vec<u8>>) {
        let spmd: &'a Spmd = self.spmd;
        let world = spmd.world();
        let root = world.process_at_rank(0);
        if !self.spmd.is_root() {
            let mut mine = [0u64; 2];
            self.comm(|| root.receive_into_with_tag(&mut mine[..], TAG_RANGE));
            let range = mine[0]..mine[1];
            let mut local = vec![0u8; self.bytes_of(&range)];
            let tally = self.compute(range, &mut local);
            self.comm(|| spmd.checkpoint());
            self.comm(|| {
                root.send_with_tag(&tally.to_limbs()[..], TAG_TALLY);
                for piece in local.chunks(MAX_MESSAGE_BYTES) {
                    root.send_with_tag(piece, TAG_DATA);
                }
            });
            return (tally, None);
        }

        let ranges: Vec<Range<u64>> = (0..self.size()).map(|r| self.static_range(r)).collect();
        self.comm(|| {
            for (r, b) in ranges.iter().enumerate().skip(1) {
                world.process_at_rank(r as i32).send_with_tag(&[b.start, b.end][..], TAG_RANGE);
            }
        });
        // Rank 0's own part is computed straight into its place in the result.
        let mut all = vec![0u8; self.work.units as usize * self.work.unit_bytes];
        let own = self.static_range(0);
        let own_bytes = self.bytes_of(&own);
        let mut total = self.compute(own, &mut all[..own_bytes]);
        self.comm(|| spmd.checkpoint());
        for (r, range) in ranges.iter().enumerate().skip(1) {
            let at = range.start as usize * self.work.unit_bytes;
            let len = self.bytes_of(range);
            let src = world.process_at_rank(r as i32);
            self.comm(|| {
                let mut limbs = [0i64; 4];
                src.receive_into_with_tag(&mut limbs[..], TAG_TALLY);
                total += Tally::from_limbs(limbs);
                for piece in all[at..at + len].chunks_mut(MAX_MESSAGE_BYTES) {
                    src.receive_into_with_tag(piece, TAG_DATA);
                }
            });
        }
        (total, Some(all))
    }

    fn dynamic(&mut self) -> (Tally, Option<Vec<u8>>) {
        let chunk = partition::dynamic_chunk(self.work.units, self.size(), CHUNKS_PER_RANK);
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
                root.send_with_tag(&message[..], TAG_RESULT);
                root.receive_into_with_tag(&mut next[..], TAG_WORK);
            });
            let range = next[0]..next[1];
            if range.is_empty() {
                self.comm(|| spmd.checkpoint());
                return (total, None);
            }
            let mut out = vec![0u8; self.bytes_of(&range)];
            let tally = self.compute(range.clone(), &mut out);
            total += tally;
            message = ResultHeader { start: range.start, end: range.end, tally }.encode(&out);
        }
    }

    /// Rank 0: serves chunk requests on the main thread (the only thread that
    /// calls MPI) while a compute thread takes chunks from the same counter,
    /// so rank 0 computes too instead of sitting idle.
    fn dispatch(&mut self, n_chunks: u64, chunk_range: impl Fn(u64) -> Range<u64> + Sync) -> (Tally, Option<Vec<u8>>) {
        let spmd: &'a Spmd = self.spmd;
        let world = spmd.world();
        let unit_bytes = self.work.unit_bytes;
        let next = AtomicU64::new(0);
        let all = Mutex::new(vec![0u8; self.work.units as usize * unit_bytes]);
        let work = self.work;
        let bar = Progress::new(true, n_chunks, "chunks handed out");
        let (root_part, served) = std::thread::scope(|s| {
            let computer = s.spawn(|| {
                let mut stats = RankStats::default();
                let mut tally = Tally::default();
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= n_chunks {
                        return (tally, stats);
                    }
                    bar.set(c);
                    let range = chunk_range(c);
                    let mut out = vec![0u8; (range.end - range.start) as usize * unit_bytes];
                    let t = Instant::now();
                    tally += (work.compute)(range.clone(), &mut out);
                    stats.compute_s += t.elapsed().as_secs_f64();
                    stats.units += range.end - range.start;
                    stats.chunks += 1;
                    let at = range.start as usize * unit_bytes;
                    all.lock().expect("result buffer")[at..at + out.len()].copy_from_slice(&out);
                }
            });

            let mut tally = Tally::default();
            let mut comm_s = 0.0;
            let mut active = self.size() - 1;
            // Ranks told there is no more work (rank 0 computes its own).
            let mut done = vec![false; spmd.size()];
            done[0] = true;
            let mut pause = deadline::Pause::new();
            while active > 0 {
                let Some(probed) = world.any_process().immediate_matched_probe_with_tag(TAG_RESULT) else {
                    if deadline::expired() {
                        deadline::expire_missing((0..spmd.size()).filter(|&r| !done[r]));
                    }
                    pause.wait();
                    continue;
                };
                pause.reset();
                let t = Instant::now();
                let (bytes, status) = probed.matched_receive_vec::<u8>();
                let (header, data) = ResultHeader::decode(&bytes);
                if header.start < header.end {
                    tally += header.tally;
                    let at = header.start as usize * unit_bytes;
                    all.lock().expect("result buffer")[at..at + data.len()].copy_from_slice(data);
                }
                let c = next.fetch_add(1, Ordering::Relaxed);
                bar.set(c.min(n_chunks));
                let range = if c < n_chunks { chunk_range(c) } else { 0..0 };
                if range.is_empty() {
                    active -= 1;
                    done[status.source_rank() as usize] = true;
                }
                world.process_at_rank(status.source_rank()).send_with_tag(&[range.start, range.end][..], TAG_WORK);
                comm_s += t.elapsed().as_secs_f64();
            }
            let (own, stats) = computer.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            bar.finish();
            (own, (tally, comm_s, stats))
        });
        self.comm(|| spmd.checkpoint());
        let (served_tally, comm_s, stats) = served;
        self.stats.compute_s += stats.compute_s;
        self.stats.units += stats.units;
        self.stats.chunks += stats.chunks;
        self.stats.comm_s += comm_s;
        (root_part + served_tally, Some(all.into_inner().expect("result buffer")))
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
    fn rank_stats_round_trip() {
        let s = RankStats { compute_s: 1.5, comm_s: 0.25, units: 1 << 40, chunks: 16, threads: 2 };
        assert_eq!(RankStats::from_slice(&s.to_array()), s);
    }
}
