//! Sample sort of `u64` keys (issue 4): key generation, sampling, splitter
//! selection, routing keys to ranks, the local sort, the merge of sorted runs
//! and the checks, and their sequencing across ranks, [`sample_sort`],
//! written once against the small [`Exchange`] trait of the collectives it
//! needs: the job implements it over MPI, the tests in process
//! ([`InProcess`], a thread per rank).
//!
//! The fast path sorts once: splitters from [`regular_samples`] of the
//! unsorted keys, [`partition_into`] groups the keys by [`Classes`] (buckets
//! of the sampled key range, each on its way to one rank: the first step of
//! the local radix sort, [`buckets`]), the exchange moves them, and
//! each rank sorts its buckets ([`buckets::sort_buckets`]). Strided samples
//! of unsorted keys bound no share, so when one would pass
//! [`fast_path_limit`] every rank takes the sorted path instead: local sort,
//! [`regular_samples`], [`partition_counts`], exchange, [`merge_runs`].
//!
//! Ties are broken by position: key `j` of rank `r` is the triple
//! `(key, r, j)` (`j` its index in the rank's unsorted keys on the fast path,
//! in its sorted keys on the sorted path), and samples and splitters are
//! triples too. All triples differ, so splitters cut even a run of equal keys
//! at regular positions, and no distribution (all keys equal, a few distinct
//! values, Zipf) can pile every key on one rank. A rank's keys at or below
//! splitter `s_0` go to rank 0, those above `s_{d-1}` and at or below `s_d`
//! to rank `d`.
//!
//! The local sort is this crate's bucket radix sort ([`buckets`]):
//! leading bits first, then each bucket in cache, with `voracious_radix_sort`
//! for buckets that skewed keys make large. It takes about 0.63 CPU-seconds
//! for 5·10^7 uniform keys here, against 0.85–0.9 for `voracious_mt_sort` alone
//! (and 1.2 for an earlier hand-written MSD sort, 1.6 for the `rdst` crate),
//! and on the fast path its first pass is the partition for the exchange.
//! The sorted result of a multiset is unique, so the output is identical for
//! any process count.

use crate::counter;
use buckets::{Room, Span};
use rayon::prelude::*;
use std::ops::Range;

pub mod buckets;
mod distributed;
mod exchange;

pub use distributed::{sample_sort, Path, Plan, Sorted, Staged, SAMPLES_PER_PART, STRIDED_SAMPLES};
pub use exchange::{Exchange, InProcess, Own};

/// How generated keys are distributed (`sort --dist`). The first line of
/// each variant's documentation is the CLI's help for the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Dist {
    /// Uniform over all of u64.
    Uniform,
    /// Every key the same.
    Equal,
    /// Already in ascending order.
    ///
    /// Key `i` is `i`.
    Sorted,
    /// In descending order.
    ///
    /// Key `i` is `n - 1 - i`.
    Reverse,
    /// Only 16 distinct values.
    ///
    /// Random ones, from the seed.
    Few,
    /// Zipf-like: key k with probability 1/((k+1)(k+2)), half the keys are 0.
    ///
    /// Key `floor(1/u) - 1` for uniform `u` in `(0, 1]`.
    Zipf,
    /// NPB IS's keys: small integers, below n/16, bunched in the middle.
    ///
    /// As the NAS Parallel Benchmarks' integer sort makes them (every class
    /// has 16 keys per value of its range): the mean of four uniform
    /// numbers in `[0, 1)`, times `n / 16`, rounded down.
    NpbIs,
}

/// Key `i` of `n` generated keys.
#[inline]
pub fn key(stream: u64, dist: Dist, n: u64, i: u64) -> u64 {
    match dist {
        Dist::Uniform => counter::at(stream, i),
        Dist::Equal => stream,
        Dist::Sorted => i,
        Dist::Reverse => n - 1 - i,
        Dist::Few => counter::mix(stream ^ (counter::at(stream, i) & 15)),
        Dist::Zipf => {
            let u = (counter::at(stream, i) >> 11) + 1; // in [1, 2^53]
            (1u64 << 53) / u - 1
        }
        Dist::NpbIs => {
            // Four uniform 16-bit numbers; their sum is below 2^18.
            let r = counter::at(stream, i);
            let sum = (r & 0xffff) + (r >> 16 & 0xffff) + (r >> 32 & 0xffff) + (r >> 48);
            ((u128::from(sum) * u128::from((n / 16).max(1))) >> 18) as u64
        }
    }
}

/// The key stream of `seed`.
pub fn stream(seed: u64) -> u64 {
    counter::stream_key(seed, 0x534f_5254) // "SORT"
}

/// Keys `range` of `n` generated keys, in parallel.
pub fn generate(seed: u64, dist: Dist, n: u64, range: Range<u64>) -> Vec<u64> {
    let s = stream(seed);
    range.into_par_iter().map(|i| key(s, dist, n, i)).collect()
}

/// The algorithm of the local sort (`sort --local-sort`). The first line of
/// each variant's documentation is the CLI's help for the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LocalSort {
    /// Bucket radix sort: leading bits first (fused with the exchange), then each bucket in cache.
    ///
    /// The bucket radix sort of [`buckets`].
    Radix,
    /// The standard library's pattern-defeating quicksort.
    ///
    /// `sort_unstable` (rayon's `par_sort_unstable` above one thread), for comparison.
    Std,
}

/// Sorts `keys` with the radix sort on the current rayon pool.
pub fn sort_local(keys: &mut [u64]) {
    sort_local_with(LocalSort::Radix, keys, &mut Room::default());
}

/// Sorts `keys` with `how` on the current rayon pool; the radix sort works
/// in `room` ([`Room::touched`] keeps page faults out of a timing).
pub fn sort_local_with(how: LocalSort, keys: &mut [u64], room: &mut Room) {
    match (how, rayon::current_num_threads() <= 1) {
        (LocalSort::Radix, _) => buckets::sort(keys, room),
        (LocalSort::Std, true) => keys.sort_unstable(),
        (LocalSort::Std, false) => keys.par_sort_unstable(),
    }
}

/// A key with its position: `(key, rank, index)`, the index in the rank's
/// keys as they stand when sampled (see the module documentation).
pub type Tagged = [u64; 3];

/// `count` samples of rank `rank`'s `keys` at regular positions, as
/// `(key, rank, index)` (`count` is capped at the number of keys). Both paths
/// use it: on the sorted path the keys are sorted and regular sampling bounds
/// every rank's share; on the fast path they are in their original order
/// and bound nothing, so [`sample_sort`] checks the shares ([`fast_path_limit`]).
pub fn regular_samples(keys: &[u64], rank: u64, count: usize) -> Vec<Tagged> {
    let n = keys.len();
    let count = count.min(n);
    (0..count)
        .map(|s| {
            // Positions (s + 1/2) n / count: centred in equal strides.
            let j = ((2 * s + 1) as u128 * n as u128 / (2 * count) as u128) as usize;
            [keys[j], rank, j as u64]
        })
        .collect()
}

/// The `parts - 1` splitters chosen from every rank's samples: the samples
/// sorted, then taken at regular positions. Every rank gets the same ones
/// from the same samples.
pub fn splitters(mut samples: Vec<Tagged>, parts: usize) -> Vec<Tagged> {
    samples.sort_unstable();
    if samples.is_empty() {
        return vec![[u64::MAX, u64::MAX, u64::MAX]; parts.saturating_sub(1)];
    }
    (1..parts).map(|d| samples[(d * samples.len() / parts).min(samples.len() - 1)]).collect()
}

/// How many of rank `rank`'s sorted `keys` go to each of `splitters.len() + 1`
/// ranks: key `j` goes to the first rank `d` with `(key, rank, j) <= s_d`
/// (the last rank if none).
pub fn partition_counts(keys: &[u64], rank: u64, splitters: &[Tagged]) -> Vec<usize> {
    let mut bounds: Vec<usize> =
        splitters.iter().map(|s| keys.partition_point(|&k| k < s[0]) + tie_count(keys, rank, s)).collect();
    // Splitters are sorted, so bounds are too; make sure of it anyway.
    for i in 1..bounds.len() {
        bounds[i] = bounds[i].max(bounds[i - 1]);
    }
    bounds.push(keys.len());
    let mut prev = 0;
    bounds
        .into_iter()
        .map(|b| {
            let c = b - prev;
            prev = b;
            c
        })
        .collect()
}

/// How many keys equal to splitter `s`'s key are at or below `s` by position.
fn tie_count(keys: &[u64], rank: u64, s: &Tagged) -> usize {
    let lo = keys.partition_point(|&k| k < s[0]);
    let hi = keys.partition_point(|&k| k <= s[0]);
    match rank.cmp(&s[1]) {
        std::cmp::Ordering::Less => hi - lo,
        std::cmp::Ordering::Greater => 0,
        // Same rank: positions lo..hi, those with index <= s[2].
        std::cmp::Ordering::Equal => ((s[2] + 1).saturating_sub(lo as u64) as usize).min(hi - lo),
    }
}

/// The largest share of `n` keys that one of `parts` ranks may receive on
/// the fast path (samples of unsorted keys, [`partition_into`]): `n / parts` plus
/// 1/16. When a rank would get more, every rank takes the sorted path
/// instead ([`regular_samples`], [`partition_counts`], [`merge_runs`]), whose
/// shares regular sampling bounds.
pub fn fast_path_limit(n: u64, parts: usize) -> u64 {
    n.div_ceil(parts as u64) + n / (16 * parts as u64) + 1
}

/// Where the keys of one rank go: the splitters seen from that rank, so a
/// key's destination takes no branch on the key (random keys would
/// mispredict half of them).
pub struct Router {
    /// Per splitter: its key and the first index of this rank above it when
    /// a key ties (0: all, `u64::MAX`: none, as indices stay below 2^40).
    cuts: Vec<(u64, u64)>,
    splitters: Vec<Tagged>,
    rank: u64,
}

/// Above this many splitters a binary search beats counting them all.
const LINEAR_CUTS: usize = 16;

impl Router {
    /// The router of rank `rank` for `splitters` (sorted, as from [`splitters`]).
    pub fn new(rank: u64, splitters: &[Tagged]) -> Router {
        let cuts = splitters
            .iter()
            .map(|s| {
                let first_above = match rank.cmp(&s[1]) {
                    std::cmp::Ordering::Less => u64::MAX,
                    std::cmp::Ordering::Greater => 0,
                    std::cmp::Ordering::Equal => s[2].saturating_add(1),
                };
                (s[0], first_above)
            })
            .collect();
        Router { cuts, splitters: splitters.to_vec(), rank }
    }

    /// The rank that this rank's key `key` at `index` goes to: the first `d`
    /// with `(key, rank, index) <= s_d` (the last rank if none).
    #[inline(always)]
    pub fn destination(&self, key: u64, index: u64) -> usize {
        if self.cuts.len() > LINEAR_CUTS {
            return self.splitters.partition_point(|s| *s < [key, self.rank, index]);
        }
        // Splitters are sorted, so the destination is how many lie below.
        self.cuts.iter().map(|&(k, first)| usize::from(key > k) + usize::from((key == k) & (index >= first))).sum()
    }
}

/// How the fast path classifies keys: `2^bits` buckets of the key range
/// the samples span ([`Span`]; keys beyond it count as its nearest end),
/// each sent whole to the rank whose splitter range holds it, except the
/// buckets that hold a splitter, which are cut among the ranks the
/// splitters give (by the triple order, as [`Router`] decides). A class is a
/// (destination, bucket) pair, numbered destination-major, so a rank's
/// classes are consecutive and in bucket order. Every rank builds the same
/// classes from the same samples; only the router (the rank in the triples)
/// differs.
///
/// Finding a key's class takes a bucket and a table lookup, plus the
/// router for the few keys in cut buckets (a branch that is rarely taken, or,
/// for keys piled on a few values, nearly always): cheaper than routing
/// every key first and then finding its bucket in its rank's range (the
/// sort ran at 99-103 M keys/s that way, 110-118 this way, on 2 ranks here).
pub struct Classes {
    span: Span,
    /// Per bucket: its class, or [`CUT`] plus an index into `cut`.
    class: Vec<u32>,
    /// Per cut bucket: its first destination and that destination's class
    /// for it (the next destinations' classes follow).
    cut: Vec<(usize, usize)>,
    router: Router,
    /// Where each destination's classes start, and the total at the end.
    starts: Vec<usize>,
}

/// Marks a cut bucket in [`Classes`]' table.
const CUT: u32 = 1 << 31;

impl Classes {
    /// The classes of rank `rank`'s keys for `splitters` (as from
    /// [`splitters`]) and buckets of `lo..=hi`.
    pub fn new(rank: u64, splitters: &[Tagged], lo: u64, hi: u64, bits: u32) -> Classes {
        let span = Span::new(lo, hi, bits);
        let buckets = span.buckets();
        // Destination d's buckets run from that of s_{d-1} to that of s_d.
        let held: Vec<usize> = splitters.iter().map(|s| span.of(s[0])).collect();
        let first = |d: usize| d.checked_sub(1).map_or(0, |e| held[e]);
        let last = |d: usize| held.get(d).copied().unwrap_or(buckets - 1);
        let (mut class, mut cut, mut starts) = (vec![0u32; buckets], Vec::new(), Vec::new());
        let mut next = 0;
        for d in 0..=splitters.len() {
            starts.push(next);
            for (b, slot) in class.iter_mut().enumerate().take(last(d) + 1).skip(first(d)) {
                if held.binary_search(&b).is_err() {
                    *slot = next as u32;
                } else if *slot & CUT == 0 {
                    // A cut bucket, met first by its first destination.
                    *slot = CUT | cut.len() as u32;
                    cut.push((d, next));
                }
                next += 1;
            }
        }
        starts.push(next);
        Classes { span, class, cut, router: Router::new(rank, splitters), starts }
    }

    /// How many classes there are.
    pub fn len(&self) -> usize {
        self.starts[self.starts.len() - 1]
    }

    /// Whether there are no classes (never: every destination has one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The classes of destination `d`: consecutive, in bucket order.
    pub fn of_destination(&self, d: usize) -> Range<usize> {
        self.starts[d]..self.starts[d + 1]
    }

    /// The buckets, as the destination sorts them.
    pub fn span(&self) -> Span {
        self.span
    }

    /// The class of this rank's key `key` at `index`.
    #[inline(always)]
    pub fn of(&self, key: u64, index: u64) -> usize {
        let c = self.class[self.span.of(key)];
        if c & CUT == 0 {
            return c as usize;
        }
        let (d0, base) = self.cut[(c & !CUT) as usize];
        base + self.router.destination(key, index) - d0
    }

    /// Per destination, the sum of its classes' counts.
    pub fn destination_counts(&self, counts: &[usize]) -> Vec<usize> {
        self.starts.windows(2).map(|w| counts[w[0]..w[1]].iter().sum()).collect()
    }
}

/// Rank `rank`'s unsorted `keys` grouped by class ([`Classes`]) into
/// `room.keys` (its capacity reused), in no order within a class. Returns
/// the count of each class. One counting pass and one scattering pass
/// ([`buckets::scatter`]), in parallel over chunks.
pub fn partition_into(keys: &[u64], classes: &Classes, room: &mut Room) -> Vec<usize> {
    // Every position is written: resize without clearing, so a buffer of
    // the right length costs no pass.
    room.keys.resize(keys.len(), 0);
    buckets::scatter(keys, classes.len(), |i, k| classes.of(k, i as u64), &mut room.keys, &mut room.ids)
}

/// The bucket bits of the fast path for `n` keys on `parts` ranks: about
/// 12,000 keys per bucket ([`buckets::bucket_bits`]), and few enough that
/// the classes (at most the buckets plus one per splitter) stay within
/// [`buckets::MAX_CLASSES`].
pub fn partition_bits(n: u64, parts: usize) -> u32 {
    let room = buckets::MAX_CLASSES.saturating_sub(parts).max(2);
    buckets::bucket_bits(n).min(room.ilog2())
}

/// The range of the sampled keys, `lo <= hi` (`(0, 0)` for no samples): the
/// buckets' range on the fast path.
pub fn sample_range(samples: &[Tagged]) -> (u64, u64) {
    let lo = samples.iter().map(|s| s[0]).min().unwrap_or(0);
    let hi = samples.iter().map(|s| s[0]).max().unwrap_or(0);
    (lo, hi)
}

/// Merges consecutive sorted runs of `data` (lengths `counts`) into one
/// sorted vector, pairwise (each round halves the runs, in parallel).
pub fn merge_runs(data: Vec<u64>, counts: &[usize]) -> Vec<u64> {
    assert_eq!(data.len(), counts.iter().sum::<usize>());
    let mut runs: Vec<Range<usize>> = crate::partition::offsets(counts)
        .into_iter()
        .zip(counts)
        .map(|(start, &c)| start..start + c)
        .filter(|r| !r.is_empty())
        .collect();
    let mut src = data;
    if runs.len() <= 1 {
        return src;
    }
    let mut dst = vec![0u64; src.len()];
    while runs.len() > 1 {
        let pairs: Vec<(Range<usize>, Option<Range<usize>>)> =
            runs.chunks(2).map(|p| (p[0].clone(), p.get(1).cloned())).collect();
        // Split dst into the disjoint output ranges of each pair.
        let mut outs: Vec<&mut [u64]> = Vec::with_capacity(pairs.len());
        let mut rest: &mut [u64] = &mut dst;
        for (a, b) in &pairs {
            let len = a.len() + b.as_ref().map_or(0, |b| b.len());
            let (head, tail) = rest.split_at_mut(len);
            outs.push(head);
            rest = tail;
        }
        let s = &src;
        pairs.par_iter().zip(outs).for_each(|((a, b), out)| match b {
            Some(b) => merge2(&s[a.clone()], &s[b.clone()], out),
            None => out.copy_from_slice(&s[a.clone()]),
        });
        runs = pairs.iter().map(|(a, b)| a.start..b.as_ref().map_or(a.end, |b| b.end)).collect();
        std::mem::swap(&mut src, &mut dst);
    }
    src
}

/// Merges sorted `a` and `b` into `out` (ties: `a` first). Branch-free in
/// the main loop: which side advances is data, not a jump, so random keys
/// cost no mispredictions.
fn merge2(a: &[u64], b: &[u64], out: &mut [u64]) {
    let (mut i, mut j, mut o) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        let take_b = usize::from(y < x);
        out[o] = if take_b == 1 { y } else { x };
        j += take_b;
        i += 1 - take_b;
        o += 1;
    }
    out[o..o + a.len() - i].copy_from_slice(&a[i..]);
    o += a.len() - i;
    out[o..].copy_from_slice(&b[j..]);
}

/// An order-independent fingerprint of a multiset of keys: the count and two
/// wrapping sums of independent hashes of each key. Sums commute, so any
/// permutation, cut into any parts, gives the same fingerprint; losing,
/// adding or changing a key changes it (barring a 2^-128 coincidence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Number of keys.
    pub count: u64,
    /// Wrapping sum of `h1(key)`.
    pub sum1: u64,
    /// Wrapping sum of `h2(key)`.
    pub sum2: u64,
}

impl Fingerprint {
    /// The fingerprint of `keys`, in parallel.
    pub fn of(keys: &[u64]) -> Fingerprint {
        let (sum1, sum2) = keys
            .par_iter()
            .map(|&k| (counter::mix(k ^ 0x243f_6a88_85a3_08d3), counter::mix(k.wrapping_add(0x1319_8a2e_0370_7344))))
            .reduce(|| (0, 0), |a, b| (a.0.wrapping_add(b.0), a.1.wrapping_add(b.1)));
        Fingerprint { count: keys.len() as u64, sum1, sum2 }
    }

    /// The fingerprint of the union of two multisets.
    pub fn combine(self, o: Fingerprint) -> Fingerprint {
        Fingerprint {
            count: self.count + o.count,
            sum1: self.sum1.wrapping_add(o.sum1),
            sum2: self.sum2.wrapping_add(o.sum2),
        }
    }
}

/// Whether `keys` is in ascending order.
pub fn is_sorted(keys: &[u64]) -> bool {
    keys.par_windows(2).all(|w| w[0] <= w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISTS: [Dist; 7] =
        [Dist::Uniform, Dist::Equal, Dist::Sorted, Dist::Reverse, Dist::Few, Dist::Zipf, Dist::NpbIs];

    #[test]
    fn router_agrees_with_the_triple_order() {
        let spl = vec![[5, 1, 10], [5, 1, 20], [9, 0, 3], [9, 2, 0]];
        for rank in 0..3u64 {
            let router = Router::new(rank, &spl);
            for key in [0, 5, 6, 9, 10] {
                for index in [0, 3, 4, 10, 11, 20, 21] {
                    let want = spl.iter().filter(|s| **s < [key, rank, index]).count();
                    assert_eq!(router.destination(key, index), want, "{key} {rank} {index}");
                }
            }
        }
        // Past LINEAR_CUTS splitters: the binary search.
        let many: Vec<Tagged> = (0..40).map(|i| [i / 2, i % 2, 7]).collect();
        let router = Router::new(1, &many);
        for key in 0..22 {
            for index in [0, 7, 8] {
                assert_eq!(router.destination(key, index), many.iter().filter(|s| **s < [key, 1, index]).count());
            }
        }
    }

    #[test]
    fn generated_keys_do_not_depend_on_the_cut() {
        for dist in DISTS {
            let whole = generate(3, dist, 100, 0..100);
            assert_eq!(generate(3, dist, 100, 40..77), whole[40..77]);
        }
        assert_eq!(generate(1, Dist::Reverse, 4, 0..4), [3, 2, 1, 0]);
        assert_eq!(generate(1, Dist::Sorted, 3, 0..3), [0, 1, 2]);
        let few = generate(1, Dist::Few, 10_000, 0..10_000);
        let mut distinct = few.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 16);
        let zipf = generate(1, Dist::Zipf, 100_000, 0..100_000);
        let zeros = zipf.iter().filter(|&&k| k == 0).count();
        assert!((45_000..55_000).contains(&zeros), "{zeros}");
        assert_ne!(generate(1, Dist::Uniform, 5, 0..5), generate(2, Dist::Uniform, 5, 0..5));
        // IS's keys: below n/16, their mean in the middle of that range.
        let n = 1u64 << 20;
        let is = generate(1, Dist::NpbIs, n, 0..n);
        assert!(is.iter().all(|&k| k < n / 16));
        let mean = is.iter().sum::<u64>() as f64 / n as f64;
        assert!((mean / (n / 16) as f64 - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn local_sort_matches_std_for_both_paths() {
        let mut a = generate(5, Dist::Uniform, 200_000, 0..200_000);
        let mut want = a.clone();
        want.sort_unstable();
        for how in [LocalSort::Radix, LocalSort::Std] {
            for threads in [1, 2] {
                let mut b = a.clone();
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| sort_local_with(how, &mut b, &mut Room::default()));
                assert_eq!(b, want, "{how:?} threads={threads}");
            }
        }
        sort_local(&mut a);
        assert_eq!(a, want);
    }

    #[test]
    fn partition_bits_keep_classes_within_bounds() {
        assert_eq!(partition_bits(100_000_000, 2), 12);
        assert_eq!(partition_bits(1000, 3), 1);
        for p in [1, 2, 3, 16, 17, 1000, 32_768, 60_000] {
            let bits = partition_bits(u64::MAX, p);
            assert!(bits >= 1 && (1 << bits) + p <= buckets::MAX_CLASSES, "{p} {bits}");
        }
    }

    #[test]
    fn classes_agree_with_the_router_and_the_buckets() {
        // Splitters with ties, two in one bucket, and keys beyond the sampled range.
        let spl = vec![[100, 0, 5], [100, 1, 0], [101, 0, 2], [1 << 40, 0, 9]];
        for rank in 0..3u64 {
            let classes = Classes::new(rank, &spl, 50, 1 << 41, 4);
            let router = Router::new(rank, &spl);
            let mut seen = Vec::new();
            for key in [0, 50, 99, 100, 101, 102, 1 << 39, 1 << 40, (1 << 40) + 1, 1 << 41, u64::MAX] {
                for index in [0, 2, 3, 5, 6, 9, 10] {
                    let c = classes.of(key, index);
                    let d = router.destination(key, index);
                    assert!(classes.of_destination(d).contains(&c), "{key} {rank} {index}: class {c}, rank {d}");
                    seen.push((key, index, c));
                }
            }
            // Classes follow the triple order: a larger key never gets a smaller class.
            for &(k1, i1, c1) in &seen {
                for &(k2, i2, c2) in &seen {
                    if [k1, rank, i1] < [k2, rank, i2] {
                        assert!(c1 <= c2, "{k1}/{i1} -> {c1} but {k2}/{i2} -> {c2}");
                    }
                }
            }
        }
        // All keys equal: one bucket, cut among every rank.
        let same = vec![[7, 0, 3], [7, 1, 3]];
        let classes = Classes::new(0, &same, 7, 7, 3);
        assert_eq!(classes.len(), 3);
        assert_eq!((classes.of(7, 3), classes.of(7, 4)), (0, 1));
    }

    #[test]
    fn fingerprint_is_order_independent_and_catches_changes() {
        let keys = generate(9, Dist::Few, 1000, 0..1000);
        let mut shuffled = keys.clone();
        shuffled.reverse();
        let f = Fingerprint::of(&keys);
        assert_eq!(Fingerprint::of(&shuffled), f);
        assert_eq!(Fingerprint::of(&keys[..300]).combine(Fingerprint::of(&keys[300..])), f);
        let mut changed = keys.clone();
        changed[5] ^= 1;
        assert_ne!(Fingerprint::of(&changed), f);
        // Swapping one copy of a duplicate for another value keeps the count but not the sums.
        let mut dup = keys.clone();
        dup[0] = dup[1];
        assert!(dup[0] == keys[0] || Fingerprint::of(&dup) != f);
    }

    #[test]
    fn merge_handles_empty_and_odd_run_counts() {
        assert_eq!(merge_runs(vec![], &[0, 0]), Vec::<u64>::new());
        assert_eq!(merge_runs(vec![1, 5, 2, 3, 0, 9], &[2, 0, 2, 2]), [0, 1, 2, 3, 5, 9]);
        assert_eq!(merge_runs(vec![4, 4, 4], &[1, 1, 1]), [4, 4, 4]);
        let (a, b) = (generate(1, Dist::Few, 999, 0..999), generate(2, Dist::Uniform, 1234, 0..1234));
        let (mut a, mut b) = (a, b);
        a.sort_unstable();
        b.sort_unstable();
        let mut want = [a.clone(), b.clone()].concat();
        want.sort_unstable();
        assert_eq!(merge_runs([a, b].concat(), &[999, 1234]), want);
        assert!(is_sorted(&[1, 1, 2]) && !is_sorted(&[2, 1]));
    }
}
