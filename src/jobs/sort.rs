//! `pikernels sort`: distributed sample sort of `u64` keys (issue 4).
//!
//! Each rank holds a block of the keys (generated in place, or cut from
//! `--input` at rank 0 and scattered). The timed part is the sort itself. On
//! the fast path: strided samples of the unsorted keys all-gathered, the same
//! splitters chosen on every rank, the keys grouped by destination in one
//! partitioning step, one variable-count all-to-all, and one radix sort of
//! what each rank received. If a rank would receive too many keys, every rank
//! takes the sorted path instead (local sort, regular samples, all-to-all,
//! merge of the received runs). Afterwards (untimed) every rank summarises
//! its part, rank 0 checks that the parts are sorted across rank boundaries
//! and that the multiset's fingerprint is the input's, and writes `--output`
//! (or `--out`) if asked.

use super::{Finished, Preflight, UsageError};
use super::legacy::{Job, Legacy};
use crate::cli::{DistArg, LocalSortArg, SortArgs};
use crate::output;
use crate::spmd::exchange::{Team, MAX_COUNT};
use crate::spmd::strategy::{Outcome, RankStats};
use crate::spmd::{Comm, Spmd};
use anyhow::{bail, Context, Result};
use kernels::buckets::{self, Room};
use kernels::partition::{block_range, offsets};
use kernels::sort::{self, Dist, Fingerprint, LocalSort, Tagged};
use kernels::Tally;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;
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

/// Most keys: far beyond any machine's memory, and the counts stay exact in
/// the report's f64 fields.
pub const MAX_KEYS: u64 = 1 << 40;

#[derive(Clone, Debug)]
enum Source {
    Generated(Dist),
    File(PathBuf),
}

/// One rank's account of its sorted part: count, first and last key,
/// whether it is sorted, and its fingerprint sums; plus its input fingerprint.
const SUMMARY: usize = 8;

#[derive(Default)]
struct Stash {
    input: Option<Vec<u64>>,
    summaries: Vec<[u64; SUMMARY]>,
    sorted: Vec<u64>,
    error: Option<String>,
}

pub struct Sort {
    n: u64,
    source: Source,
    seed: u64,
    local_sort: LocalSort,
    out: Option<PathBuf>,
    stash: Mutex<Stash>,
}

impl Sort {
    pub fn new(a: &SortArgs) -> Result<Sort, UsageError> {
        if a.common.comm == Comm::Dynamic {
            return Err(UsageError("sort exchanges keys all-to-all: --comm dynamic does not apply".into()));
        }
        let (n, source) = match &a.input {
            Some(path) => {
                let len = std::fs::metadata(path)
                    .map_err(|e| UsageError(format!("cannot read --input {}: {e}", path.display())))?
                    .len();
                if len % 8 != 0 {
                    return Err(UsageError(format!(
                        "--input {} is {len} bytes, not a whole number of 8-byte keys",
                        path.display()
                    )));
                }
                (len / 8, Source::File(path.clone()))
            }
            None => (
                a.keys.0,
                Source::Generated(match a.dist {
                    DistArg::Uniform => Dist::Uniform,
                    DistArg::Equal => Dist::Equal,
                    DistArg::Sorted => Dist::Sorted,
                    DistArg::Reverse => Dist::Reverse,
                    DistArg::Few => Dist::Few,
                    DistArg::Zipf => Dist::Zipf,
                }),
            ),
        };
        if n == 0 {
            return Err(UsageError(match source {
                Source::File(p) => format!("--input {} holds no keys", p.display()),
                Source::Generated(_) => "--keys must be at least 1".into(),
            }));
        }
        if n > MAX_KEYS {
            return Err(UsageError(format!("{n} keys is more than the supported 2^40")));
        }
        // `--output` is the spelling, `--out` the common one.
        let out = a.output.clone().or_else(|| a.common.out.clone());
        let gathered = out.is_some() || matches!(source, Source::File(_));
        if gathered && n > MAX_COUNT as u64 {
            return Err(UsageError(format!(
                "{n} keys cannot pass through rank 0 in one MPI call (at most {MAX_COUNT} with --input or --output)"
            )));
        }
        let local_sort = match a.local_sort {
            LocalSortArg::Radix => LocalSort::Radix,
            LocalSortArg::Std => LocalSort::Std,
        };
        Ok(Sort { n, source, seed: a.common.seed, local_sort, out, stash: Mutex::new(Stash::default()) })
    }

    fn stash(&self) -> std::sync::MutexGuard<'_, Stash> {
        self.stash.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn block(&self, p: usize, r: usize) -> Range<u64> {
        block_range(self.n, p as u64, r as u64)
    }

    /// This rank's keys before the sort.
    fn local_keys(&self, team: &Team, spmd: &Spmd) -> Vec<u64> {
        let (p, rank) = (team.size(), team.rank());
        match &self.source {
            Source::Generated(dist) => {
                let _ = spmd;
                sort::generate(self.seed, *dist, self.n, self.block(p, rank))
            }
            Source::File(_) => {
                let all = if rank == 0 { self.stash().input.take().expect("read in pre-flight") } else { Vec::new() };
                let counts: Vec<usize> =
                    (0..p).map(|r| (self.block(p, r).end - self.block(p, r).start) as usize).collect();
                let mut mine = vec![0u64; counts[rank]];
                team.scatter(0, &all, &counts, &mut mine);
                mine
            }
        }
    }
}

fn read_keys(path: &std::path::Path, n: u64) -> Result<Vec<u64>> {
    let mut bytes = Vec::with_capacity(n as usize * 8);
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read --input {}", path.display()))?;
    if bytes.len() as u64 != n * 8 {
        bail!("--input {} changed size while being read", path.display());
    }
    Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

fn write_keys(path: &std::path::Path, keys: &[u64]) -> Result<()> {
    output::write_atomic(path, |w| {
        for chunk in keys.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|k| k.to_le_bytes()).collect();
            w.write_all(&bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })
}

impl Job for Sort {
    fn kernel(&self) -> &'static str {
        "sort"
    }

    fn params(&self) -> Value {
        let (dist, input) = match &self.source {
            Source::Generated(d) => (Some(d.name()), None),
            Source::File(p) => (None, Some(p.display().to_string())),
        };
        json!({ "keys": self.n, "dist": dist, "input": input, "seed": self.seed, "local_sort": self.local_sort.name() })
    }

    fn units(&self) -> u64 {
        self.n
    }

    fn compute(&self, _units: Range<u64>, _out: &mut [u8]) -> Tally {
        unreachable!("sort runs its own distributed algorithm (run_spmd)")
    }

    fn files(&self) -> Vec<output::FileUse> {
        let mut files: Vec<output::FileUse> = self.out.iter().map(|p| output::FileUse::writes("--output", p)).collect();
        if let Source::File(p) = &self.source {
            files.push(output::FileUse::reads("--input", p));
        }
        files
    }

    fn preflight(&self, ctx: &Preflight) -> Result<()> {
        // The most either path holds at once. Sorted path: own keys, the
        // radix sort's room (a copy and 2 bytes a key), the received keys
        // (at most about 1.25 shares with regular sampling) and the merge's
        // output. Fast path (less): own keys with room for 1.0625 shares,
        // as much room for the partition, 2 bytes a key for the classes and
        // as much again for the bucket sort's output (dropped before the
        // sorted path allocates).
        let share = self.n.div_ceil(ctx.size as u64) * 8;
        let mut need = 2 * share + 2 * (share + share / 4);
        if ctx.is_root() {
            let whole = self.n * 8;
            if matches!(self.source, Source::File(_)) {
                need += whole;
            }
            if let Some(path) = &self.out {
                need += whole;
                output::check_writable(path, "sorted keys")?;
                output::check_disk(path, whole, "the sorted keys")?;
            }
        }
        output::check_memory(need, "this rank's share of the keys")?;
        if let (true, Source::File(path)) = (ctx.is_root(), &self.source) {
            self.stash().input = Some(read_keys(path, self.n)?);
        }
        Ok(())
    }

    fn run_spmd(&self, spmd: &Spmd, _comm: Comm) -> Option<Outcome> {
        let team = spmd.team();
        let (p, rank) = (team.size(), team.rank());
        let mut stats = RankStats { threads: spmd.threads() as u64, chunks: 1, ..RankStats::default() };
        let mut keys = self.local_keys(&team, spmd);
        let input_print = Fingerprint::of(&keys);
        let compute = |stats: &mut RankStats, f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            stats.compute_s += t.elapsed().as_secs_f64();
        };
        let comm_time = |stats: &mut RankStats, t: Instant| stats.comm_s += t.elapsed().as_secs_f64();

        // The buffers are allocated and touched here, untimed like the keys:
        // room in `keys` to receive the largest share the fast path accepts,
        // and as much in `room` (the partition's output and the keys'
        // classes; the radix sort's room on one rank) and in `out` (the
        // bucket sort's output, beside its input in `keys` and `room`).
        // A first touch costs as much as a pass over the keys on the
        // benchmark machine.
        let mut room = Room::default();
        let capacity = if p > 1 { sort::fast_path_limit(self.n, p) as usize } else { keys.len() };
        if p > 1 || self.local_sort == LocalSort::Radix {
            let len = keys.len();
            keys.reserve(capacity.saturating_sub(len));
            keys.resize(keys.capacity(), 0);
            keys.truncate(len);
            room = Room::touched(capacity);
        }
        let mut out = Vec::new();
        if p > 1 && self.local_sort == LocalSort::Radix {
            out = buckets::touched(capacity);
        }

        team.barrier();
        let start = team.now();
        let mut sorted = Vec::new();
        let mut too_many = None;
        if p == 1 {
            compute(&mut stats, &mut || sort::sort_local_with(self.local_sort, &mut keys, &mut room));
            sorted = std::mem::take(&mut keys);
        } else {
            // Fast path: splitters from samples of the unsorted keys, the
            // keys partitioned by destination and bucket in one pass,
            // exchanged, and each rank's buckets sorted.
            let samples: Vec<u64> =
                sort::regular_samples(&keys, rank as u64, STRIDED_SAMPLES).into_iter().flatten().collect();
            let t = Instant::now();
            let (all, _) = team.all_gather_varcount(&samples);
            comm_time(&mut stats, t);
            // Every rank buckets alike: the same samples, splitters and bits.
            let bits = sort::partition_bits(self.n, p);
            let (mut counts, mut classes) = (Vec::new(), None);
            compute(&mut stats, &mut || {
                let tagged: Vec<Tagged> = all.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
                let (lo, hi) = sort::sample_range(&tagged);
                let c = sort::Classes::new(rank as u64, &sort::splitters(tagged, p), lo, hi, bits);
                counts = sort::partition_into(&keys, &c, &mut room);
                classes = Some(c);
            });
            let classes = classes.expect("set above");
            let to = classes.destination_counts(&counts);
            let t = Instant::now();
            let shares = team.all_gather(&to.iter().map(|&c| c as u64).collect::<Vec<u64>>());
            comm_time(&mut stats, t);
            let most = (0..p).map(|d| shares.iter().skip(d).step_by(p).sum::<u64>()).max().unwrap_or(0);
            if most <= sort::fast_path_limit(self.n, p) {
                // The keys are in `room` now: receive into their buffer,
                // with each source's bucket counts. The bucket sort reads
                // the rank's own piece where the partition left it (a copy
                // saved); another local sort wants all the keys together.
                let radix = self.local_sort == LocalSort::Radix;
                let t = Instant::now();
                let exchanged = if radix {
                    team.all_to_all_others_into(&room.keys, &to, &mut keys)
                } else {
                    team.all_to_all_into(&room.keys, &to, &mut keys)
                };
                let per: Vec<usize> = (0..p).map(|d| classes.of_destination(d).len()).collect();
                let bucket_counts = team.all_to_all(&counts.iter().map(|&c| c as u64).collect::<Vec<u64>>(), &per);
                comm_time(&mut stats, t);
                match (exchanged, bucket_counts) {
                    (Ok(sizes), Ok((from, _))) => {
                        let from: Vec<usize> = from.into_iter().map(|c| c as usize).collect();
                        if radix {
                            compute(&mut stats, &mut || {
                                let own = offsets(&to)[rank];
                                let mut sources = Vec::with_capacity(p);
                                let mut rest = &keys[..];
                                for (s, &n) in sizes.iter().enumerate() {
                                    if s == rank {
                                        sources.push(&room.keys[own..own + n]);
                                    } else {
                                        let (piece, r) = rest.split_at(n);
                                        sources.push(piece);
                                        rest = r;
                                    }
                                }
                                out.resize(sizes.iter().sum(), 0);
                                let mine = classes.of_destination(rank).len();
                                buckets::sort_buckets(&sources, &from, mine, classes.span(), &mut out);
                            });
                            sorted = std::mem::take(&mut out);
                        } else {
                            compute(&mut stats, &mut || sort::sort_local_with(self.local_sort, &mut keys, &mut room));
                            sorted = std::mem::take(&mut keys);
                        }
                    }
                    (Err(worst), _) | (_, Err(worst)) => too_many = Some(worst),
                }
            } else {
                // A share too large (keys whose order defeats strided
                // samples): regular sampling of sorted keys bounds every share.
                // The fast path's output buffer is not needed here.
                drop(std::mem::take(&mut out));
                compute(&mut stats, &mut || sort::sort_local_with(self.local_sort, &mut keys, &mut room));
                drop(std::mem::take(&mut room));
                let samples: Vec<u64> =
                    sort::regular_samples(&keys, rank as u64, SAMPLES_PER_PART * p).into_iter().flatten().collect();
                let t = Instant::now();
                let (all, _) = team.all_gather_varcount(&samples);
                comm_time(&mut stats, t);
                let tagged: Vec<Tagged> = all.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
                let mut splitters = Vec::new();
                compute(&mut stats, &mut || splitters = sort::splitters(tagged.clone(), p));
                let counts = sort::partition_counts(&keys, rank as u64, &splitters);
                let t = Instant::now();
                let exchanged = team.all_to_all(&keys, &counts);
                comm_time(&mut stats, t);
                match exchanged {
                    Ok((recv, recv_counts)) => {
                        drop(std::mem::take(&mut keys));
                        let mut recv = Some(recv);
                        compute(&mut stats, &mut || {
                            sorted = sort::merge_runs(recv.take().expect("once"), &recv_counts);
                        });
                    }
                    Err(worst) => too_many = Some(worst),
                }
            }
        }
        if let (Some(worst), 0) = (too_many, rank) {
            self.stash().error = Some(format!(
                "one rank would receive {worst} keys, more than one MPI call carries ({MAX_COUNT}); use more ranks"
            ));
        }
        team.barrier();
        let wall_s = team.now() - start;
        stats.units = sorted.len() as u64;

        // Untimed: summarise, check at rank 0, gather for --out.
        let print = Fingerprint::of(&sorted);
        let summary: [u64; SUMMARY] = [
            sorted.len() as u64,
            sorted.first().copied().unwrap_or(0),
            sorted.last().copied().unwrap_or(0),
            u64::from(sort::is_sorted(&sorted)),
            print.sum1,
            print.sum2,
            input_print.sum1,
            input_print.sum2,
        ];
        let summaries = team.all_gather(&summary);
        let counts: Vec<usize> = summaries.chunks(SUMMARY).map(|s| s[0] as usize).collect();
        let gathered = if self.out.is_some() && counts.iter().sum::<usize>() as u64 == self.n {
            let mut all = if rank == 0 { vec![0u64; self.n as usize] } else { Vec::new() };
            team.gather(0, &sorted, &counts, (rank == 0).then_some(&mut all[..]));
            all
        } else {
            Vec::new()
        };
        if rank != 0 {
            return Some(Outcome { tally: Tally::default(), data: None, stats, wall_s });
        }
        let mut stash = self.stash();
        stash.summaries = summaries.chunks(SUMMARY).map(|s| s.try_into().expect("summary")).collect();
        stash.sorted = gathered;
        Some(Outcome { tally: Tally::default(), data: Some(Vec::new()), stats, wall_s })
    }

    fn finish(&self, _tally: Tally, _data: Vec<u8>) -> Result<Finished> {
        let stash = std::mem::take(&mut *self.stash());
        if let Some(e) = stash.error {
            bail!(e);
        }
        let t = Instant::now();
        let s = &stash.summaries;
        let total: u64 = s.iter().map(|x| x[0]).sum();
        let fold = |i: usize| s.iter().fold(0u64, |a, x| a.wrapping_add(x[i]));
        let (out_print, in_print) = ((total, fold(4), fold(5)), (self.n, fold(6), fold(7)));
        let nonempty: Vec<&[u64; SUMMARY]> = s.iter().filter(|x| x[0] > 0).collect();
        let locally_sorted = s.iter().all(|x| x[3] == 1);
        let boundary = nonempty.windows(2).position(|w| w[0][2] > w[1][1]);
        let verify_s = t.elapsed().as_secs_f64();
        let mut problems = Vec::new();
        if !locally_sorted {
            problems.push("a rank's part is not sorted".to_string());
        }
        if let Some(i) = boundary {
            problems.push(format!("keys out of order across the boundary after the {}th non-empty rank", i + 1));
        }
        if out_print != in_print {
            problems.push(format!("the multiset changed: {} keys in, {total} out, or their checksums differ", self.n));
        }
        let verified = problems.is_empty();
        let verification = if verified {
            format!(
                "each rank's keys are sorted, the {} rank boundaries are in order, and the {} keys' count and checksums equal the input's",
                nonempty.len().saturating_sub(1),
                self.n
            )
        } else {
            problems.join("; ")
        };
        let output_s = match &self.out {
            Some(path) if verified => {
                let t = Instant::now();
                write_keys(path, &stash.sorted)?;
                t.elapsed().as_secs_f64()
            }
            _ => 0.0,
        };
        let per_rank: Vec<u64> = s.iter().map(|x| x[0]).collect();
        let most = per_rank.iter().copied().max().unwrap_or(0);
        Ok(Finished {
            result: json!({
                "keys": self.n,
                "min": nonempty.first().map(|x| x[1]),
                "max": nonempty.last().map(|x| x[2]),
                "keys_per_rank": per_rank,
                "imbalance": most as f64 / (self.n as f64 / s.len() as f64),
                "checksum": format!("{:016x}{:016x}", out_print.1, out_print.2),
                "output": self.out.as_ref().map(|p| p.display().to_string()),
            }),
            verified,
            verification,
            item: ("keys", self.n as f64),
            verify_s,
            output_s,
        })
    }
}

/// `pikernels sort`'s arguments.
pub use crate::cli::SortArgs as Args;

/// The job `a` describes.
pub fn job(a: &Args) -> Result<super::Job, UsageError> {
    Ok(super::Job::spmd(Legacy(Sort::new(a)?)))
}
