//! The distributed sample sort's sequencing, written once against
//! [`Exchange`]: the job runs it over MPI, this crate's tests over
//! [`super::InProcess`] for many rank counts and distributions.
//!
//! Fast path: [`regular_samples`] of the unsorted keys all-gathered, the
//! same [`splitters`] and [`Classes`] on every rank, the keys grouped by
//! class in one [`partition_into`], the shares all-gathered, and if no rank
//! would receive more than [`fast_path_limit`], one all-to-all of the keys
//! (and of the bucket counts) and one bucket sort of what arrived. Otherwise
//! every rank takes the sorted path: local sort, regular samples of the
//! sorted keys, [`partition_counts`], all-to-all, [`merge_runs`].

use super::buckets::{self, Room};
use super::exchange::{Exchange, Own};
use super::{
    fast_path_limit, merge_runs, partition_bits, partition_counts, partition_into, regular_samples, sample_range,
    sort_local_with, splitters, Classes, LocalSort, Tagged,
};
use crate::partition::offsets;
use std::mem::take;
use std::time::Instant;

/// Samples of its sorted keys each rank contributes per destination rank on
/// the sorted path: enough that no rank receives much more than its share (regular sampling bounds the excess by
/// about `n / SAMPLES_PER_PART` keys), few enough to all-gather in microseconds.
pub const SAMPLES_PER_PART: usize = 64;

/// Samples of its unsorted keys each rank contributes on the fast path:
/// the splitters then cut every share within a fraction of a percent of
/// `n / p` for keys in no adversarial order, and the gathered samples sort in
/// milliseconds.
pub const STRIDED_SAMPLES: usize = 1 << 14;

/// What every rank of one sort agrees on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Keys on all ranks together.
    pub keys: u64,
    /// How a rank sorts its keys.
    pub local_sort: LocalSort,
    /// Samples per rank on the fast path ([`STRIDED_SAMPLES`]).
    pub strided_samples: usize,
    /// Samples per rank and destination on the sorted path ([`SAMPLES_PER_PART`]).
    pub samples_per_part: usize,
}

impl Plan {
    /// The plan for `keys` keys in all, with the default sampling rates.
    pub fn new(keys: u64, local_sort: LocalSort) -> Plan {
        Plan { keys, local_sort, strided_samples: STRIDED_SAMPLES, samples_per_part: SAMPLES_PER_PART }
    }
}

/// A rank's keys with the memory the sort works in, allocated and touched
/// beforehand ([`Staged::new`]) so that the first touch of the pages, as
/// costly as a pass over the keys on the benchmark machine, is not timed.
/// The sort leaves what it no longer needs here: the caller decides when
/// that memory goes.
pub struct Staged {
    /// The rank's keys, with room to receive the largest share the fast path accepts.
    keys: Vec<u64>,
    /// The partition's output and the keys' classes (the radix sort's room on one rank).
    room: Room,
    /// The bucket sort's output, beside its input in `keys` and `room`.
    out: Vec<u64>,
}

impl Staged {
    /// Stages this rank's `keys` for a sort by `plan` on `parts` ranks.
    pub fn new(plan: &Plan, parts: usize, mut keys: Vec<u64>) -> Staged {
        let mut room = Room::default();
        let radix = plan.local_sort == LocalSort::Radix;
        let capacity = if parts > 1 { fast_path_limit(plan.keys, parts) as usize } else { keys.len() };
        if parts > 1 || radix {
            let len = keys.len();
            keys.reserve(capacity.saturating_sub(len));
            keys.resize(keys.capacity(), 0);
            keys.truncate(len);
            room = Room::touched(capacity);
        }
        let mut out = Vec::new();
        if parts > 1 && radix {
            out = buckets::touched(capacity);
        }
        Staged { keys, room, out }
    }
}

/// Which way a sort went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// One rank: a local sort, no exchange.
    Local,
    /// Splitters from samples of the unsorted keys, one partition, one sort.
    Fast,
    /// A share too large for the fast path: local sort, regular samples, merge.
    Sorted,
}

/// One rank's result of [`sample_sort`].
#[derive(Debug)]
pub struct Sorted {
    /// This rank's part of the sorted keys (all of them below the next
    /// rank's), or, on every rank alike, `Err` with the most keys one rank
    /// would have held in an all-to-all that the exchange cannot carry.
    pub keys: Result<Vec<u64>, usize>,
    /// Seconds of this rank's computation (the exchange's own time is the
    /// exchange's to measure).
    pub compute_s: f64,
    /// Which way the sort went.
    pub path: Path,
}

/// Sorts the keys staged on every rank of `x` by `plan` (a collective:
/// every rank calls it with the same plan). The sequencing of the module
/// documentation.
pub fn sample_sort<X: Exchange + ?Sized>(x: &X, plan: &Plan, staged: &mut Staged) -> Sorted {
    let mut clock = Clock::default();
    let (path, keys) = if x.size() == 1 {
        clock.time(|| sort_local_with(plan.local_sort, &mut staged.keys, &mut staged.room));
        (Path::Local, Ok(take(&mut staged.keys)))
    } else if let Some(keys) = fast_path(x, plan, staged, &mut clock) {
        (Path::Fast, keys)
    } else {
        (Path::Sorted, sorted_path(x, plan, staged, &mut clock))
    };
    Sorted { keys, compute_s: clock.0, path }
}

/// Seconds spent in the timed closures.
#[derive(Default)]
struct Clock(f64);

impl Clock {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.0 += t.elapsed().as_secs_f64();
        out
    }
}

/// Samples as they travel: the triples flattened.
fn flat(samples: Vec<Tagged>) -> Vec<u64> {
    samples.into_iter().flatten().collect()
}

/// Gathered samples back as triples.
fn tagged(all: &[u64]) -> Vec<Tagged> {
    all.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn as_u64(counts: &[usize]) -> Vec<u64> {
    counts.iter().map(|&c| c as u64).collect()
}

/// The fast path up to the shares; `None` if a rank would receive more
/// than [`fast_path_limit`] (keys whose order defeats strided samples).
fn fast_path<X: Exchange + ?Sized>(
    x: &X,
    plan: &Plan,
    st: &mut Staged,
    clock: &mut Clock,
) -> Option<Result<Vec<u64>, usize>> {
    let (p, rank) = (x.size(), x.rank());
    let all = x.all_gather_varcount(&flat(regular_samples(&st.keys, rank as u64, plan.strided_samples)));
    // Every rank buckets alike: the same samples, splitters and bits.
    let bits = partition_bits(plan.keys, p);
    let (classes, counts) = clock.time(|| {
        let tagged = tagged(&all);
        let (lo, hi) = sample_range(&tagged);
        let classes = Classes::new(rank as u64, &splitters(tagged, p), lo, hi, bits);
        let counts = partition_into(&st.keys, &classes, &mut st.room);
        (classes, counts)
    });
    let to = classes.destination_counts(&counts);
    let shares = x.all_gather(&as_u64(&to));
    let most = (0..p).map(|d| shares.iter().skip(d).step_by(p).sum::<u64>()).max().unwrap_or(0);
    if most > fast_path_limit(plan.keys, p) {
        return None;
    }
    Some(exchange_classes(x, plan, st, clock, &classes, &counts))
}

/// The fast path's exchange and sort: `counts` keys of each class in
/// `st.room.keys`, the partition's output.
fn exchange_classes<X: Exchange + ?Sized>(
    x: &X,
    plan: &Plan,
    st: &mut Staged,
    clock: &mut Clock,
    classes: &Classes,
    counts: &[usize],
) -> Result<Vec<u64>, usize> {
    let (p, rank) = (x.size(), x.rank());
    let to = classes.destination_counts(counts);
    // The keys are in `room` now: receive into their buffer, with each
    // source's bucket counts. The bucket sort reads the rank's own piece
    // where the partition left it (a copy saved); another local sort wants
    // all the keys together.
    let radix = plan.local_sort == LocalSort::Radix;
    let own = if radix { Own::Keep } else { Own::Send };
    let exchanged = x.all_to_all(&st.room.keys, &to, &mut st.keys, own);
    let per: Vec<usize> = (0..p).map(|d| classes.of_destination(d).len()).collect();
    let mut from = Vec::new();
    let bucket_counts = x.all_to_all(&as_u64(counts), &per, &mut from, Own::Send);
    let sizes = match (exchanged, bucket_counts) {
        (Ok(sizes), Ok(_)) => sizes,
        (Err(worst), _) | (_, Err(worst)) => return Err(worst),
    };
    if !radix {
        clock.time(|| sort_local_with(plan.local_sort, &mut st.keys, &mut st.room));
        return Ok(take(&mut st.keys));
    }
    let from: Vec<usize> = from.into_iter().map(|c| c as usize).collect();
    clock.time(|| {
        let own = offsets(&to)[rank];
        let mut sources = Vec::with_capacity(p);
        let mut rest = &st.keys[..];
        for (s, &n) in sizes.iter().enumerate() {
            if s == rank {
                sources.push(&st.room.keys[own..own + n]);
            } else {
                let (piece, r) = rest.split_at(n);
                sources.push(piece);
                rest = r;
            }
        }
        st.out.resize(sizes.iter().sum(), 0);
        let mine = classes.of_destination(rank).len();
        buckets::sort_buckets(&sources, &from, mine, classes.span(), &mut st.out);
    });
    Ok(take(&mut st.out))
}

/// The sorted path: regular sampling of sorted keys bounds every share.
fn sorted_path<X: Exchange + ?Sized>(
    x: &X,
    plan: &Plan,
    st: &mut Staged,
    clock: &mut Clock,
) -> Result<Vec<u64>, usize> {
    let (p, rank) = (x.size(), x.rank());
    // The fast path's output buffer is not needed here.
    drop(take(&mut st.out));
    clock.time(|| sort_local_with(plan.local_sort, &mut st.keys, &mut st.room));
    drop(take(&mut st.room));
    let all = x.all_gather_varcount(&flat(regular_samples(&st.keys, rank as u64, plan.samples_per_part * p)));
    let tagged = tagged(&all);
    let cuts = clock.time(|| splitters(tagged, p));
    let counts = partition_counts(&st.keys, rank as u64, &cuts);
    let mut recv = Vec::new();
    let from = x.all_to_all(&st.keys, &counts, &mut recv, Own::Send)?;
    drop(take(&mut st.keys));
    Ok(clock.time(|| merge_runs(recv, &from)))
}

#[cfg(test)]
mod tests {
    use super::super::{generate, Dist, Fingerprint, InProcess};
    use super::*;

    const DISTS: [Dist; 7] =
        [Dist::Uniform, Dist::Equal, Dist::Sorted, Dist::Reverse, Dist::Few, Dist::Zipf, Dist::NpbIs];

    /// The sort of `all`, cut in blocks over `p` in-process ranks whose
    /// all-to-all carries at most `limit` keys per rank: each rank's result.
    fn sort_on(all: &[u64], p: usize, plan: &Plan, limit: usize) -> Vec<Sorted> {
        InProcess::run(p, limit, |x| {
            let b = crate::partition::block_range(all.len() as u64, p as u64, x.rank() as u64);
            let mut staged = Staged::new(plan, p, all[b.start as usize..b.end as usize].to_vec());
            sample_sort(x, plan, &mut staged)
        })
    }

    /// Each rank's part, and the path, which every rank must agree on.
    fn parts(sorted: Vec<Sorted>) -> (Vec<Vec<u64>>, Path) {
        let path = sorted[0].path;
        assert!(sorted.iter().all(|s| s.path == path), "the ranks took different paths");
        (sorted.into_iter().map(|s| s.keys.expect("the exchange carries every share")).collect(), path)
    }

    #[test]
    fn sample_sort_sorts_every_distribution_and_balances_ties() {
        let mut paths = [0; 3];
        for dist in DISTS {
            for (n, p) in [(1000u64, 1), (1001, 2), (997, 3), (4099, 4), (3, 4), (0, 2), (20_000, 3), (30_011, 7)] {
                let all = generate(7, dist, n, 0..n);
                let mut want = all.clone();
                want.sort_unstable();
                // Few samples (8 per rank) sometimes leave a share too large.
                for strided in [8, 1 << 14] {
                    let mut by_sort = Vec::new();
                    for how in [LocalSort::Radix, LocalSort::Std] {
                        let plan = Plan { strided_samples: strided, ..Plan::new(n, how) };
                        let (parts, path) = parts(sort_on(&all, p, &plan, usize::MAX));
                        paths[path as usize] += 1;
                        assert_eq!(path == Path::Local, p == 1);
                        let got = parts.concat();
                        assert_eq!(got, want, "{dist:?} n={n} p={p} {how:?}");
                        assert_eq!(Fingerprint::of(&got), Fingerprint::of(&all));
                        // No part much above n/p, whichever path ran.
                        let most = parts.iter().map(Vec::len).max().unwrap() as u64;
                        assert!(most <= n / p as u64 + n / (4 * p as u64) + 2, "{dist:?} n={n} p={p}: {most}");
                        by_sort.push((parts, path));
                    }
                    // The local sort changes how, not where: the same parts.
                    assert_eq!(by_sort[0], by_sort[1], "{dist:?} n={n} p={p} strided={strided}");
                }
            }
        }
        assert!(paths.iter().all(|&c| c > 0), "every path ran: {paths:?}");
    }

    #[test]
    fn keys_that_fool_strided_samples_take_the_sorted_path() {
        // Every sampled position holds 0 and every other key is large, so
        // the fast path's splitters would send nearly all keys to the last rank.
        let (n, p, strided) = (4000usize, 4, 8);
        let mut all = generate(1, Dist::Uniform, n as u64, 0..n as u64);
        for (r, block) in all.chunks_mut(n / p).enumerate() {
            for [_, _, j] in regular_samples(block, r as u64, strided) {
                block[j as usize] = 0;
            }
        }
        let mut want = all.clone();
        want.sort_unstable();
        for how in [LocalSort::Radix, LocalSort::Std] {
            let plan = Plan { strided_samples: strided, ..Plan::new(n as u64, how) };
            let (parts, path) = parts(sort_on(&all, p, &plan, usize::MAX));
            assert_eq!(path, Path::Sorted);
            assert_eq!(parts.concat(), want);
            let lens: Vec<usize> = parts.iter().map(Vec::len).collect();
            assert!(lens.iter().all(|&len| len <= n / p + n / (4 * p) + 2), "{lens:?}");
        }
    }

    #[test]
    fn a_share_the_exchange_cannot_carry_fails_on_every_rank() {
        // 3000 keys on 3 ranks: each rank holds about 1000 in the
        // all-to-all, more than the 900 this exchange carries.
        let all = generate(2, Dist::Uniform, 3000, 0..3000);
        let mut want = all.clone();
        want.sort_unstable();
        for (how, strided) in [(LocalSort::Radix, 1 << 14), (LocalSort::Std, 1 << 14), (LocalSort::Radix, 8)] {
            let plan = Plan { strided_samples: strided, ..Plan::new(3000, how) };
            let sorted = sort_on(&all, 3, &plan, 900);
            let worst = sorted[0].keys.as_ref().expect_err("too many keys for the exchange");
            assert!((1000..1100).contains(worst), "{worst}");
            assert!(sorted.iter().all(|s| s.keys.as_ref().err() == Some(worst) && s.path == sorted[0].path));
            // A limit at the largest share passes.
            assert_eq!(parts(sort_on(&all, 3, &plan, *worst)).0.concat(), want);
        }
    }
}
