//! The local radix sort of the sample sort: keys scattered into buckets by
//! their leading bits, then each bucket sorted where it fits in cache.
//!
//! A sort of 5·10^7 uniform `u64` keys on one core of the benchmark machine
//! spends most of its time moving keys between memory and the core, so the
//! design counts passes over memory:
//!
//! 1. [`scatter`] reads the keys twice (a counting pass, which notes each
//!    key's class in two bytes, then the scatter) and writes them once,
//!    grouped by *class*. On the sample sort's fast path a class is a bucket
//!    of the sampled key range on its way to one rank
//!    ([`crate::sort::Classes`]), so this one pass both routes the keys for
//!    the exchange and does the first radix step. Keys go to memory a cache
//!    line at a time: each class fills a 64-byte line buffer, and a full line
//!    is written with non-temporal stores on x86-64 (no read of the line it
//!    replaces).
//! 2. [`sort_buckets`] sorts each bucket (about 12,000 keys, 100 KB, up to a
//!    few times that for large inputs) from wherever its pieces arrived into
//!    its place in the output: two least-significant-digit passes over the 16
//!    bits below the bucket's bits, in a scratch buffer that stays in the L2
//!    cache, then an insertion sort, which has almost nothing left to move
//!    (the bucket and the two digits sort the leading `log2(n) + 16` bits, so
//!    keys that share them are rare), and one copy out.
//!
//! A bucket that holds far more than its share (skewed keys: few distinct
//! values, Zipf) is sorted by `voracious_radix_sort` instead, and an end
//! bucket that holds keys from beyond the span (the sample sort takes its
//! span from samples) by std's sort, so no distribution makes a bucket
//! quadratic or its scratch large.
//!
//! On the benchmark machine this takes about 0.63 CPU-seconds for 5·10^7
//! uniform keys where `voracious_mt_sort` takes 0.85–0.9 (`docs/kernels.md`).

use crate::partition::offsets;
use rayon::prelude::*;
use voracious_radix_sort::RadixSort;

/// Keys a bucket is meant to hold, about: small enough that a bucket and its
/// scratch stay in a 1-2 MB L2 cache.
const BUCKET_KEYS: u64 = 12 * 1024;

/// Most bucket bits: 4096 buckets per range (more measured slower here:
/// their line buffers no longer fit the L2 cache beside everything else).
pub const MAX_BITS: u32 = 12;

/// Bits each of the two in-cache passes sorts, at most.
const DIGIT_BITS: u32 = 8;

/// Above this many keys a bucket is sorted by voracious (skewed keys).
const LARGE_BUCKET: usize = 1 << 16;

/// Up to this many keys a bucket is sorted by insertion alone.
const SMALL_BUCKET: usize = 32;

/// Most offset bits below a bucket's that a bucket is counted over rather
/// than sorted ([`count_bucket`]): a 16 KB histogram, in the L1 cache.
const COUNT_BITS: u32 = 12;

/// How keys map to at most `2^bits` buckets: by the leading bits of their
/// offset `key - lo` in a range `lo..=hi`, keys outside the range counted
/// as its nearest end (so the map stays monotone whatever the keys: the
/// sample sort takes its range from samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    lo: u64,
    top: u64,
    shift: u32,
}

impl Span {
    /// The buckets of the keys `lo..=hi` (`lo <= hi`), `2^bits` of them at
    /// most (`bits` from [`bucket_bits`], at least 1, so the shift stays
    /// below 64).
    pub fn new(lo: u64, hi: u64, bits: u32) -> Span {
        assert!(lo <= hi && (1..=MAX_BITS).contains(&bits));
        let width = u64::BITS - (hi - lo).leading_zeros();
        Span { lo, top: hi - lo, shift: width.saturating_sub(bits) }
    }

    /// The offset of `key` in the range, clamped to it.
    #[inline(always)]
    fn offset(&self, key: u64) -> u64 {
        key.saturating_sub(self.lo).min(self.top)
    }

    /// The bucket of `key`.
    #[inline(always)]
    pub fn of(&self, key: u64) -> usize {
        (self.offset(key) >> self.shift) as usize
    }

    /// How many buckets there are: the last one's number plus one.
    pub fn buckets(&self) -> usize {
        (self.top >> self.shift) as usize + 1
    }
}

/// Bucket bits for ranges of about `keys` keys: enough that a bucket holds
/// about [`BUCKET_KEYS`], at least 1 and at most [`MAX_BITS`]. Every rank
/// computes it from numbers they all know, so they all bucket alike.
pub fn bucket_bits(keys: u64) -> u32 {
    let want = keys.div_ceil(BUCKET_KEYS);
    (u64::BITS - want.saturating_sub(1).leading_zeros()).clamp(1, MAX_BITS)
}

/// One cache line of keys.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u64; 8]);

/// Most classes [`scatter`] takes: class numbers are kept as `u16`.
pub const MAX_CLASSES: usize = 1 << 16;

/// `keys` grouped by class into `out` (the same length): class `c`'s keys
/// (`class(i, key)` for key `i`, below `classes`, at most [`MAX_CLASSES`])
/// follow those of the classes before it, in no particular order. Returns
/// the count of each class. A counting pass notes each key's class in `ids`
/// (resized to the keys' length: pass a buffer already touched to keep page
/// faults out of a timing), and the scattering pass reads them back: two
/// bytes a key cost less here than asking `class` again (measured on the
/// sample sort's fast path). Both passes run in parallel over chunks of the
/// keys on the current rayon pool.
pub fn scatter(
    keys: &[u64],
    classes: usize,
    class: impl Fn(usize, u64) -> usize + Sync,
    out: &mut [u64],
    ids: &mut Vec<u16>,
) -> Vec<usize> {
    assert_eq!(keys.len(), out.len());
    assert!(classes <= MAX_CLASSES);
    ids.resize(keys.len(), 0);
    let chunk = keys.len().div_ceil(4 * rayon::current_num_threads()).clamp(1 << 16, u32::MAX as usize);
    let hists: Vec<Vec<u32>> = keys
        .par_chunks(chunk)
        .zip(ids.par_chunks_mut(chunk))
        .enumerate()
        .map(|(c, (ch, id))| {
            // `u32` counts (a chunk holds fewer keys): half the cache lines.
            let mut h = vec![0u32; classes];
            for (i, (&k, id)) in ch.iter().zip(id).enumerate() {
                let d = class(c * chunk + i, k);
                h[d] += 1;
                *id = d as u16;
            }
            h
        })
        .collect();
    let counts: Vec<usize> = (0..classes).map(|d| hists.iter().map(|h| h[d] as usize).sum()).collect();
    // Chunk c writes class d's keys after those of earlier chunks.
    let mut next = offsets(&counts);
    let mut offsets = Vec::with_capacity(hists.len());
    for h in &hists {
        offsets.push(next.clone());
        for (n, &c) in next.iter_mut().zip(h) {
            *n += c as usize;
        }
    }
    let out = SharedOut(out.as_mut_ptr());
    keys.par_chunks(chunk).zip(ids.par_chunks(chunk)).zip(offsets).for_each(|((ch, id), first)| {
        // SAFETY: this chunk owns positions first[d] .. first[d] + (its
        // count of class d) of `out` for each class d: no other chunk
        // writes them, and they lie inside `out` (the counts add up to its
        // length); `id` holds the classes counted.
        unsafe { scatter_chunk(ch, id, first, &out) };
    });
    counts
}

/// The output pointer [`scatter`]'s chunks share; each writes only the
/// positions its offsets reserve.
struct SharedOut(*mut u64);
// SAFETY: see `scatter`: writes through it are disjoint.
unsafe impl Sync for SharedOut {}

/// Scatters one chunk (key `i` of it in class `ids[i]`) through line
/// buffers. Positions are counted from the cache line that holds `out.0`, so
/// that a position that is a multiple of 8 starts a line. A line buffer goes
/// out when its last slot is filled: whole, streamed, if all of its line is
/// this chunk's and class's; otherwise only the positions that are. What is
/// left in the buffers goes out at the end.
///
/// # Safety
/// As in [`scatter`]: `first[d]` plus the chunk's count of class `d` stays
/// within `out`, and those positions are this chunk's alone.
unsafe fn scatter_chunk(keys: &[u64], ids: &[u16], first: Vec<usize>, out: &SharedOut) {
    let skew = (out.0 as usize / 8) % 8;
    let line0 = out.0.wrapping_sub(skew);
    let begin: Vec<usize> = first.iter().map(|&f| f + skew).collect();
    let mut at = begin.clone();
    let mut lines = vec![Line([0; 8]); begin.len()];
    for (&k, &d) in keys.iter().zip(ids) {
        let d = usize::from(d);
        let (q, line) = (&mut at[d], &mut lines[d]);
        line.0[*q % 8] = k;
        *q += 1;
        if *q % 8 == 0 {
            let (start, from) = (*q - 8, begin[d]);
            if start >= from {
                // SAFETY: the whole line is this chunk's (caller's contract).
                unsafe { write_line(line0.add(start), line) };
            } else {
                // SAFETY: positions from..q are this chunk's.
                unsafe { std::ptr::copy_nonoverlapping(line.0.as_ptr().add(from - start), line0.add(from), *q - from) };
            }
        }
    }
    for ((&q, &from), line) in at.iter().zip(&begin).zip(&lines) {
        let start = (q - q % 8).max(from);
        // SAFETY: positions start..q are this chunk's and not yet written.
        unsafe { std::ptr::copy_nonoverlapping(line.0.as_ptr().add(start % 8), line0.add(start), q - start) };
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86-64; the fence orders the streamed stores
    // before whatever the caller does next.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// Writes a whole cache line at `to` (64-byte aligned): with non-temporal
/// stores on x86-64 (SSE2, always there), plainly elsewhere.
///
/// # Safety
/// `to` is valid for 8 writes and 64-byte aligned.
#[inline(always)]
unsafe fn write_line(to: *mut u64, line: &Line) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_load_si128, _mm_stream_si128};
        let (src, dst) = (line.0.as_ptr() as *const __m128i, to as *mut __m128i);
        // SAFETY: both are 64-byte aligned and 64 bytes long (caller).
        unsafe {
            for j in 0..4 {
                _mm_stream_si128(dst.add(j), _mm_load_si128(src.add(j)));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: `to` is valid for 8 writes (caller).
    unsafe {
        std::ptr::copy_nonoverlapping(line.0.as_ptr(), to, 8)
    };
}

/// Sorts keys that arrived bucketed into `out`: `sources[s]` holds buckets
/// `0..buckets` of `span` in order, `counts[s * buckets + b]` keys in bucket
/// `b`. `out` (as long as all the sources) gets them all in order. Buckets
/// run in parallel on the current rayon pool.
pub fn sort_buckets(sources: &[&[u64]], counts: &[usize], buckets: usize, span: Span, out: &mut [u64]) {
    assert!(buckets > 0 && counts.len() == sources.len() * buckets);
    for (s, source) in sources.iter().enumerate() {
        assert_eq!(counts[s * buckets..(s + 1) * buckets].iter().sum::<usize>(), source.len());
    }
    assert_eq!(sources.iter().map(|s| s.len()).sum::<usize>(), out.len());
    let n_sources = sources.len();
    // Where each source's bucket starts in it.
    let at: Vec<usize> = counts.chunks(buckets).flat_map(offsets).collect();
    // Each bucket's slice of `out`, in bucket order.
    let mut rest = out;
    let mut dsts = Vec::with_capacity(buckets);
    for b in 0..buckets {
        let m: usize = (0..n_sources).map(|s| counts[s * buckets + b]).sum();
        let (d, r) = std::mem::take(&mut rest).split_at_mut(m);
        dsts.push(d);
        rest = r;
    }
    dsts.into_par_iter().enumerate().for_each_init(Vec::new, |scratch, (b, dst)| {
        let pieces = (0..n_sources).map(|s| &sources[s][at[s * buckets + b]..][..counts[s * buckets + b]]);
        // Only the span's end buckets can hold keys from outside it, and
        // those are the first and last of some caller's buckets.
        sort_bucket(pieces, span, dst, scratch, b == 0 || b + 1 == buckets);
    });
}

/// Sorts the keys of one bucket, given as `pieces`, into `dst` (their total
/// length), with `scratch` as room. Only an `edge` bucket may hold keys from
/// outside the span.
fn sort_bucket<'a>(
    pieces: impl Iterator<Item = &'a [u64]> + Clone,
    span: Span,
    dst: &mut [u64],
    scratch: &mut Vec<u64>,
    edge: bool,
) {
    let m = dst.len();
    let copy = |dst: &mut [u64]| {
        let mut at = 0;
        for p in pieces.clone() {
            dst[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
    };
    // Keys outside the span (clamped onto its end buckets) break the
    // digit order; std's sort takes a bucket that has any.
    let outside = |k: u64| edge && k.wrapping_sub(span.lo) > span.top;
    if m <= SMALL_BUCKET {
        copy(dst);
        insertion_sort(dst);
    } else if m > LARGE_BUCKET {
        copy(dst);
        dst.voracious_mt_sort(1);
    } else if span.shift == 0 {
        // One offset: one key value, unless keys outside were clamped onto it.
        copy(dst);
        if dst.iter().any(|&k| outside(k)) {
            dst.sort_unstable();
        }
    } else if span.shift <= COUNT_BITS && (1usize << span.shift) <= 4 * m {
        // Few values, many keys (NPB IS's keys: small integers): count them.
        if !count_bucket(pieces.clone(), span, dst, edge) {
            copy(dst);
            dst.sort_unstable();
        }
    } else {
        // Two LSD passes over the bits [low, span.shift), then insertion.
        let low = span.shift.saturating_sub(2 * DIGIT_BITS);
        let width = span.shift - low;
        let (w0, w1) = (width / 2, width - width / 2);
        // Below 2^8 by the mask, and then by the type: no bounds checks.
        let digit0 = |k: u64| usize::from((((k.wrapping_sub(span.lo)) >> low) & ((1 << w0) - 1)) as u8);
        let digit1 = |k: u64| usize::from((((k.wrapping_sub(span.lo)) >> (low + w0)) & ((1 << w1) - 1)) as u8);
        let (mut h0, mut h1) = ([0u32; 1 << DIGIT_BITS], [0u32; 1 << DIGIT_BITS]);
        let mut any_outside = false;
        for p in pieces.clone() {
            for &k in p {
                h0[digit0(k)] += 1;
                h1[digit1(k)] += 1;
            }
            any_outside |= edge && p.iter().any(|&k| outside(k));
        }
        if any_outside {
            copy(dst);
            dst.sort_unstable();
            return;
        }
        exclusive_prefix(&mut h0);
        exclusive_prefix(&mut h1);
        scratch.resize(2 * m, 0);
        let (s0, s1) = scratch.split_at_mut(m);
        for p in pieces {
            for &k in p {
                let at = &mut h0[digit0(k)];
                s0[*at as usize] = k;
                *at += 1;
            }
        }
        for &k in s0.iter() {
            let at = &mut h1[digit1(k)];
            s1[*at as usize] = k;
            *at += 1;
        }
        // Keys that agree on all the bits sorted so far are still in
        // arrival order.
        if low > 0 {
            insertion_sort_into(s1, dst);
        } else {
            dst.copy_from_slice(s1);
        }
    }
}

/// Sorts a bucket whose keys differ only in the `span.shift` offset bits
/// below the bucket's (at most [`COUNT_BITS`]) by counting each value and
/// writing it out that many times: one read of the keys and one write,
/// where the radix passes read and write them three times. Returns `false`,
/// with `dst` untouched, when a key of an `edge` bucket lies outside the
/// span (clamped onto the bucket, it is not the value its offset says).
fn count_bucket<'a>(pieces: impl Iterator<Item = &'a [u64]> + Clone, span: Span, dst: &mut [u64], edge: bool) -> bool {
    let values = 1usize << span.shift;
    let mask = values as u64 - 1;
    let Some(&first) = pieces.clone().flat_map(|p| p.first()).next() else { return true };
    // The bucket's first offset: every key of the bucket shares the bits above.
    let base = first.wrapping_sub(span.lo) & !mask;
    let mut counts = [0u32; 1 << COUNT_BITS];
    let counts = &mut counts[..values];
    for p in pieces {
        if edge && p.iter().any(|&k| k.wrapping_sub(span.lo) > span.top) {
            return false;
        }
        for &k in p {
            // Below `values` by the mask: no bounds check once inlined.
            counts[(k.wrapping_sub(span.lo) & mask) as usize] += 1;
        }
    }
    let mut at = 0;
    for (v, &c) in counts.iter().enumerate() {
        let key = span.lo.wrapping_add(base + v as u64);
        dst[at..at + c as usize].fill(key);
        at += c as usize;
    }
    debug_assert_eq!(at, dst.len());
    true
}

/// Turns counts into starting positions.
fn exclusive_prefix(h: &mut [u32]) {
    let mut at = 0;
    for c in h {
        (*c, at) = (at, at + *c);
    }
}

/// Insertion sort: fast when every key is near its place.
fn insertion_sort(a: &mut [u64]) {
    for i in 1..a.len() {
        let k = a[i];
        let mut j = i;
        while j > 0 && a[j - 1] > k {
            a[j] = a[j - 1];
            j -= 1;
        }
        a[j] = k;
    }
}

/// Insertion sort of `src` into `dst` (as long), for keys that are almost
/// all at most one place from where they belong: each key is put in place
/// with its predecessor by a branch-free min and max (the branch a plain
/// insertion sort takes for every key that moves is a misprediction), and
/// only a key that belongs further back takes the insertion loop.
fn insertion_sort_into(src: &[u64], dst: &mut [u64]) {
    assert_eq!(src.len(), dst.len());
    let Some((&first, rest)) = src.split_first() else { return };
    // dst[..=i] is sorted, `last` is dst[i] and `before` dst[i - 1] (0 below
    // the start: no key is less).
    dst[0] = first;
    let (mut before, mut last) = (0, first);
    for (i, &k) in (1..).zip(rest) {
        let (lo, hi) = (last.min(k), last.max(k));
        dst[i - 1] = lo;
        dst[i] = hi;
        if before > lo {
            // `lo` is `k`, and belongs before `before`.
            let mut j = i - 1;
            while j > 0 && dst[j - 1] > lo {
                dst[j] = dst[j - 1];
                j -= 1;
            }
            dst[j] = lo;
            before = dst[i - 1];
        } else {
            before = lo;
        }
        last = hi;
    }
}

/// Working memory for [`sort`] and [`scatter`]: room for the keys and for
/// their classes. A caller that times a sort creates it with
/// [`Room::touched`] beforehand, so the first touch of its pages (as costly
/// as a pass over the keys on the benchmark machine) is not timed.
#[derive(Default)]
pub struct Room {
    /// Room for `n` keys.
    pub keys: Vec<u64>,
    /// Room for `n` class numbers.
    pub ids: Vec<u16>,
}

impl Room {
    /// Room for `n` keys, every page written once: both vectors are `n`
    /// long, so that the users' `resize` to at most `n` writes nothing (a
    /// resize up from empty would be one more timed pass of zeros).
    pub fn touched(n: usize) -> Room {
        Room { keys: touched(n), ids: touched(n) }
    }
}

/// `n` zeros, every page written: `vec![0; n]` would take fresh zero pages
/// from the system and leave them untouched, for a timed pass to fault in.
pub fn touched<T: Clone + Default>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    v.resize(n, T::default());
    v
}

/// Sorts `keys` with the bucket sort on the current rayon pool, with `room`
/// as working memory (grown if needed).
pub fn sort(keys: &mut [u64], room: &mut Room) {
    if keys.is_empty() {
        return;
    }
    let (lo, hi) = keys
        .par_iter()
        .fold(|| (u64::MAX, 0), |(lo, hi), &k| (lo.min(k), hi.max(k)))
        .reduce(|| (u64::MAX, 0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    let bits = bucket_bits(keys.len() as u64);
    let span = Span::new(lo, hi, bits);
    room.keys.resize(keys.len(), 0);
    let counts = scatter(keys, span.buckets(), |_, k| span.of(k), &mut room.keys, &mut room.ids);
    sort_buckets(&[&room.keys], &counts, span.buckets(), span, keys);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize, seed: u64, f: impl Fn(u64) -> u64) -> Vec<u64> {
        let mut z = seed;
        (0..n)
            .map(|_| {
                z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut q = z;
                q = (q ^ (q >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                q = (q ^ (q >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                f(q ^ (q >> 31))
            })
            .collect()
    }

    fn check(mut k: Vec<u64>) {
        let mut want = k.clone();
        want.sort_unstable();
        sort(&mut k, &mut Room::default());
        assert!(k == want, "{} keys", k.len());
    }

    #[test]
    fn sorts_every_shape_of_keys() {
        for n in [0, 1, 2, 31, 33, 1000, 70_000, 300_001] {
            check(keys(n, 1, |q| q));
            check(keys(n, 2, |q| q >> 40)); // narrow range, many repeats
            check(keys(n, 3, |q| q % 5)); // five values
            check(keys(n, 4, |q| u64::MAX - (q >> 60))); // at the top of the range
            check(keys(n, 5, |q| 1u64 << (q % 64))); // powers of two: buckets far from even
            check(keys(n, 8, |q| q >> 50)); // NPB IS-like: small integers, counted
            check(keys(n, 9, |q| q % 100_000)); // counted with a bucket's full 12 bits
            check(keys(n, 10, |q| u64::MAX - (q >> 51))); // counted at the top of the range
            check(vec![7; n]);
            check((0..n as u64).collect());
            check((0..n as u64).rev().map(|i| i << 20).collect());
        }
        // One bucket far above the large-bucket bound among small ones.
        check(keys(200_000, 6, |q| if q % 3 == 0 { q } else { 1 << 40 | q >> 50 }));
        // The full range, both ends present.
        let mut k = keys(100_000, 7, |q| q);
        k.extend([0, u64::MAX, 0, u64::MAX]);
        check(k);
    }

    #[test]
    fn insertion_into_sorts_keys_near_and_far_from_their_places() {
        let mut cases: Vec<Vec<u64>> = vec![vec![], vec![5], vec![2, 1], vec![0, 0, 0], vec![3, 2, 1, 0]];
        // Sorted runs with keys moved one place, two, and to the front.
        let sorted: Vec<u64> = (0..200).map(|i| 10 * i).collect();
        for (from, to) in [(5, 4), (9, 7), (150, 0), (199, 1), (0, 0)] {
            let mut v = sorted.clone();
            let k = v.remove(from);
            v.insert(to, k);
            cases.push(v);
        }
        // Random keys, each within a few places of its own, ties included.
        for spread in [1, 3, 50] {
            cases.push(
                keys(5000, spread, |q| q % 1000)
                    .into_iter()
                    .enumerate()
                    .map(|(i, q)| i as u64 * 10 + q % (10 * spread))
                    .collect(),
            );
        }
        for src in cases {
            let mut want = src.clone();
            want.sort_unstable();
            let mut got = vec![u64::MAX; src.len()];
            insertion_sort_into(&src, &mut got);
            assert_eq!(got, want, "{src:?}");
        }
    }

    #[test]
    fn scatter_groups_by_class_and_keeps_every_key() {
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            // Odd lengths and an odd offset into the output, so lines straddle classes and chunks.
            for n in [0, 5, 1000, 250_003] {
                let k = keys(n, 9, |q| q);
                let mut backing = vec![0u64; n + 3];
                let out = &mut backing[3..];
                let class = |i: usize, key: u64| ((key % 7) as usize + i % 2) % 6;
                let counts = pool.install(|| scatter(&k, 6, class, out, &mut Vec::new()));
                let at = offsets(&counts);
                for d in 0..6 {
                    let mut got = out[at[d]..at[d] + counts[d]].to_vec();
                    let mut want: Vec<u64> =
                        k.iter().enumerate().filter(|&(i, &key)| class(i, key) == d).map(|(_, &key)| key).collect();
                    got.sort_unstable();
                    want.sort_unstable();
                    assert_eq!(got, want, "n {n} class {d}");
                }
            }
        }
    }

    #[test]
    fn buckets_follow_key_order_and_cover_the_range() {
        for (lo, hi) in [(0, u64::MAX), (5, 5), (100, 100 + (1 << 20)), (u64::MAX - 3, u64::MAX)] {
            for bits in [1, 2, 11, 12] {
                let s = Span::new(lo, hi, bits);
                assert_eq!(s.of(lo), 0);
                assert!(s.of(hi) < 1 << bits, "{lo} {hi} {bits}");
                let mid = lo + (hi - lo) / 2;
                assert!(s.of(lo) <= s.of(mid) && s.of(mid) <= s.of(hi));
            }
        }
        assert_eq!(bucket_bits(0), 1);
        assert_eq!(bucket_bits(2 * BUCKET_KEYS), 1);
        assert_eq!(bucket_bits(2 * BUCKET_KEYS + 1), 2);
        assert_eq!(bucket_bits(50_000_000), 12);
        assert_eq!(bucket_bits(100_000_000), 12);
        assert_eq!(bucket_bits(u64::MAX), MAX_BITS);
        // Keys outside the range go to the end buckets.
        let s = Span::new(1000, 2000, 4);
        assert_eq!((s.of(0), s.of(999), s.of(2001), s.of(u64::MAX)), (0, 0, s.of(2000), s.of(2000)));
        assert_eq!(s.buckets(), s.of(2000) + 1);
    }
}
