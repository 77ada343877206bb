//! A unit work run in batches, so that finished batches can be kept
//! (`--checkpoint`): rank 0 cuts the units still missing into batches of
//! about one checkpoint interval each, tells every rank the next batch (one
//! broadcast of two numbers), and the batch runs under the chosen strategy
//! exactly as a whole job would, its units renumbered from 0 (as a
//! `--partition` part runs). After each batch rank 0 has its tally and
//! bytes, which its caller records before the next batch starts.
//!
//! A batch starts at a record's edge or where the one before ended, and
//! ends at a multiple of the work's packing grain (or where the missing
//! range ends), so packed bytes of batches concatenate into those of the
//! whole, and tallies add exactly: the result is the same bits however the
//! units were cut into batches, runs and process counts.

use super::exchange::Team;
use super::strategy::{self, Pack, RankStats, Work};
use super::{Comm, Spmd};
use crate::progress::Progress;
use kernels::Tally;
use std::ops::Range;
use std::time::{Duration, Instant};

/// The first batch's share of the missing units, before a rate is known:
/// small, so that a long job's first record comes early.
const FIRST_BATCH_PARTS: u64 = 4096;

/// How much larger than the one before a batch may be: the rate of one
/// batch is a guess for the next (Mandelbrot's rows differ in cost), so
/// batches grow towards the interval rather than jump to it.
const GROWTH: u64 = 4;

/// What the batches measured on this rank.
pub struct Batches {
    /// This rank's measurements, summed over the batches.
    pub stats: RankStats,
    /// Seconds from the first batch's start to the last one's end.
    pub wall_s: f64,
}

/// Runs `work` over the units `missing` (rank 0's list of ranges; the
/// other ranks pass an empty one and learn each batch) in batches of about
/// `every` each, calling `done` on rank 0 after each with the batch's
/// units, tally and bytes. A collective call: every rank makes it.
pub fn run(
    spmd: &Spmd,
    comm: Comm,
    work: &Work,
    missing: &[Range<u64>],
    every: Duration,
    done: &mut dyn FnMut(Range<u64>, Tally, Vec<u8>),
) -> Batches {
    let mut team: Team = spmd.team();
    let grain = work.pack.as_ref().map_or(1, |p| p.grain);
    let total: u64 = missing.iter().map(|r| r.end - r.start).sum();
    let mut plan = Plan { missing: missing.to_vec(), at: 0, size: (total / FIRST_BATCH_PARTS).max(1) };
    let mut stats = RankStats { threads: spmd.threads() as u64, ..RankStats::default() };
    let start = Instant::now();
    // One progress over the batches (the units still missing), each batch's
    // strategy quiet.
    let progress = Progress::new(spmd.is_root(), total, "units (those not resumed)");
    let mut finished = 0;
    loop {
        if team.size() != spmd.size() {
            // A rank was lost in the batch before (ULFM): the survivors go on.
            team = spmd.team();
        }
        let mut next = [0u64; 2];
        if spmd.is_root() {
            let r = plan.next(grain);
            next = [r.start, r.end];
        }
        team.broadcast(0, &mut next);
        let batch = next[0]..next[1];
        if batch.is_empty() {
            break;
        }
        let t = Instant::now();
        let offset = batch.start;
        let compute = |u: Range<u64>, out: &mut [u8]| (work.compute)(u.start + offset..u.end + offset, out);
        let pack_fn = work.pack.as_ref().map(|p| p.pack);
        let pack = |u: Range<u64>, raw: &[u8]| (pack_fn.expect("packing"))(u.start + offset..u.end + offset, raw);
        let part = Work {
            units: batch.end - batch.start,
            unit_bytes: work.unit_bytes,
            compute: &compute,
            pack: work.pack.as_ref().map(|p| Pack { grain: p.grain, pack: &pack }),
            quiet: true,
        };
        let outcome = strategy::run(spmd, comm, &part);
        add(&mut stats, &outcome.stats);
        if let Some(data) = outcome.data {
            done(batch.clone(), outcome.tally, data);
        }
        finished += batch.end - batch.start;
        progress.set(finished);
        // The next batch: about `every` at the rate this one ran, at most
        // GROWTH times this one.
        let took = t.elapsed().as_secs_f64().max(1e-6);
        let len = batch.end - batch.start;
        let rate = len as f64 / took;
        plan.size = ((rate * every.as_secs_f64()) as u64).clamp(1, len.saturating_mul(GROWTH).max(1));
    }
    progress.finish();
    Batches { stats, wall_s: start.elapsed().as_secs_f64() }
}

/// Rank 0's cutting of the missing ranges into batches.
struct Plan {
    missing: Vec<Range<u64>>,
    /// The range being cut.
    at: usize,
    /// Units the next batch aims for.
    size: u64,
}

impl Plan {
    /// The next batch: from the start of what is left of the current
    /// range, about `size` units, ending at a multiple of `grain` or at the
    /// range's end; empty when nothing is left.
    fn next(&mut self, grain: u64) -> Range<u64> {
        while self.at < self.missing.len() && self.missing[self.at].is_empty() {
            self.at += 1;
        }
        let Some(r) = self.missing.get_mut(self.at) else { return 0..0 };
        let want = r.start.saturating_add(self.size.max(1));
        let end = if want >= r.end { r.end } else { want.next_multiple_of(grain).min(r.end) };
        let batch = r.start..end;
        r.start = end;
        batch
    }
}

fn add(sum: &mut RankStats, s: &RankStats) {
    sum.compute_s += s.compute_s;
    sum.comm_s += s.comm_s;
    sum.pack_s += s.pack_s;
    sum.units += s.units;
    sum.chunks += s.chunks;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_missing_unit_once_and_end_on_grains() {
        let missing = vec![0..10, 17..40, 40..41];
        for (grain, size) in [(1, 3), (4, 3), (4, 100), (7, 1)] {
            let mut plan = Plan { missing: missing.clone(), at: 0, size };
            let mut got = Vec::new();
            loop {
                let b = plan.next(grain);
                if b.is_empty() {
                    break;
                }
                assert!(b.end.is_multiple_of(grain) || missing.iter().any(|r| r.end == b.end), "{b:?} grain {grain}");
                got.extend(b);
            }
            let want: Vec<u64> = missing.iter().cloned().flatten().collect();
            assert_eq!(got, want, "grain {grain} size {size}");
        }
    }
}
