//! How a range of work units is cut into parts.
//!
//! One function decides who owns what, so the static strategies, the dynamic
//! scheduler and the Indexed-Job style partial runs all agree.

use std::ops::Range;

/// The half-open range of the `n` units that part `i` of `parts` owns.
///
/// Parts are contiguous and in order; the first `n % parts` parts get one unit
/// more than the others, so sizes differ by at most one. Parts may be empty
/// when `n < parts`.
///
/// # Panics
/// If `parts == 0` or `i >= parts`.
pub fn block_range(n: u64, parts: u64, i: u64) -> Range<u64> {
    assert!(parts > 0 && i < parts, "block_range: part {i} of {parts}");
    let base = n / parts;
    let extra = n % parts;
    let start = i * base + i.min(extra);
    let len = base + u64::from(i < extra);
    start..start + len
}

/// [`block_range`] for indexing: part `i` of `0..n` cut in `parts`, in `usize`.
pub fn block_slice(n: usize, parts: usize, i: usize) -> Range<usize> {
    let r = block_range(n as u64, parts as u64, i as u64);
    r.start as usize..r.end as usize
}

/// Where consecutive blocks of the given sizes start: the exclusive prefix
/// sums of `counts` (MPI's displacements, a scatter's class starts).
pub fn offsets(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0, |at, &c| {
            let start = *at;
            *at += c;
            Some(start)
        })
        .collect()
}

/// Consecutive chunks of at most `chunk` units covering `0..n`.
///
/// # Panics
/// If `chunk == 0`.
pub fn chunks(n: u64, chunk: u64) -> impl Iterator<Item = Range<u64>> {
    assert!(chunk > 0, "chunks: chunk size must be positive");
    (0..n.div_ceil(chunk)).map(move |c| c * chunk..((c + 1) * chunk).min(n))
}

/// The chunk size the dynamic scheduler uses: about `per_worker` chunks for
/// each of `workers` workers, at least one unit each.
pub fn dynamic_chunk(n: u64, workers: u64, per_worker: u64) -> u64 {
    (n / (workers.max(1) * per_worker.max(1))).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_exclusive_prefix_sums() {
        assert_eq!(offsets(&[3, 0, 2, 5]), [0, 3, 3, 5]);
        assert!(offsets(&[]).is_empty());
    }

    fn covers_once(n: u64, parts: u64) {
        let mut next = 0;
        for i in 0..parts {
            let r = block_range(n, parts, i);
            assert_eq!(r.start, next, "n={n} parts={parts} i={i}");
            assert!(r.end >= r.start);
            next = r.end;
        }
        assert_eq!(next, n);
        let sizes: Vec<u64> = (0..parts).map(|i| block_range(n, parts, i).count() as u64).collect();
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(hi - lo <= 1, "sizes {sizes:?}");
    }

    #[test]
    fn block_ranges_cover_every_unit_once() {
        for n in [0, 1, 2, 3, 5, 7, 10, 100, 1001] {
            for parts in 1..=9 {
                covers_once(n, parts);
            }
        }
    }

    #[test]
    fn fewer_units_than_parts_leaves_empty_parts() {
        assert_eq!(block_range(2, 4, 0), 0..1);
        assert_eq!(block_range(2, 4, 1), 1..2);
        assert!(block_range(2, 4, 2).is_empty());
        assert!(block_range(2, 4, 3).is_empty());
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let n = u64::MAX;
        let last = block_range(n, 3, 2);
        assert_eq!(last.end, n);
        covers_once(u64::MAX - 1, 7);
    }

    proptest::proptest! {
        #[test]
        fn any_count_and_rank_count_is_covered_exactly_once(n in 0u64..u64::MAX, parts in 1u64..5000) {
            // Check the cut points: contiguous, starting at 0, ending at n, sizes within one.
            let mut next = 0;
            let probe: Vec<u64> = if parts <= 64 { (0..parts).collect() } else { vec![0, 1, parts / 2, parts - 2, parts - 1] };
            for &i in &probe {
                let r = block_range(n, parts, i);
                if i == 0 { proptest::prop_assert_eq!(r.start, 0); }
                if parts <= 64 { proptest::prop_assert_eq!(r.start, next); }
                let len = r.end - r.start;
                proptest::prop_assert!(len == n / parts || len == n / parts + 1);
                next = r.end;
            }
            proptest::prop_assert_eq!(block_range(n, parts, parts - 1).end, n);
        }

        #[test]
        fn small_counts_are_covered_exactly_once_index_by_index(n in 0u64..2000, parts in 1u64..40) {
            let mut seen = vec![0u8; n as usize];
            for i in 0..parts {
                for u in block_range(n, parts, i) {
                    seen[u as usize] += 1;
                }
            }
            proptest::prop_assert!(seen.iter().all(|&c| c == 1));
        }

        #[test]
        fn dynamic_chunks_cover_exactly_once(n in 0u64..100_000, workers in 1u64..64) {
            let chunk = dynamic_chunk(n, workers, 16);
            let mut next = 0;
            for r in chunks(n, chunk) {
                proptest::prop_assert_eq!(r.start, next);
                proptest::prop_assert!(!r.is_empty() && r.end - r.start <= chunk);
                next = r.end;
            }
            proptest::prop_assert_eq!(next, n);
        }
    }

    #[test]
    fn chunks_cover_in_order() {
        let c: Vec<_> = chunks(10, 4).collect();
        assert_eq!(c, vec![0..4, 4..8, 8..10]);
        assert_eq!(chunks(0, 3).count(), 0);
        assert_eq!(dynamic_chunk(10, 4, 8), 1);
        assert_eq!(dynamic_chunk(1000, 2, 10), 50);
    }
}
