//! `pikernels sort`: distributed sample sort of `u64` keys (issue 4).
//!
//! Each rank holds a block of the keys (generated in place, or cut from
//! `--input` at rank 0 and scattered). The timed part is the sort itself,
//! [`kernels::sort::sample_sort`], whose sequencing lives in the kernels
//! crate and runs here over MPI through [`Mpi`], this file's adaptor of
//! [`Exchange`] to the job's [`Team`] (which also times the communication). On
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
use kernels::partition::block_range;
use kernels::sort::{self, Dist, Exchange, Fingerprint, LocalSort, Own, Plan, Staged};
use kernels::Tally;
use serde_json::{json, Value};
use std::cell::Cell;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

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
    fn local_keys(&self, team: &Team) -> Vec<u64> {
        let (p, rank) = (team.size(), team.rank());
        match &self.source {
            Source::Generated(dist) => sort::generate(self.seed, *dist, self.n, self.block(p, rank)),
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

    /// Untimed, after the sort: every rank's summary of its `sorted` part
    /// (and of its `input`), all-gathered; and with `--output` all the keys
    /// gathered at rank 0 (empty elsewhere, and if keys went missing).
    fn collect(&self, team: &Team, sorted: &[u64], input: Fingerprint) -> (Vec<[u64; SUMMARY]>, Vec<u64>) {
        let print = Fingerprint::of(sorted);
        let summary: [u64; SUMMARY] = [
            sorted.len() as u64,
            sorted.first().copied().unwrap_or(0),
            sorted.last().copied().unwrap_or(0),
            u64::from(sort::is_sorted(sorted)),
            print.sum1,
            print.sum2,
            input.sum1,
            input.sum2,
        ];
        let summaries = team.all_gather(&summary);
        let counts: Vec<usize> = summaries.chunks(SUMMARY).map(|s| s[0] as usize).collect();
        let root = team.rank() == 0;
        let gathered = if self.out.is_some() && counts.iter().sum::<usize>() as u64 == self.n {
            let mut all = if root { vec![0u64; self.n as usize] } else { Vec::new() };
            team.gather(0, sorted, &counts, root.then_some(&mut all[..]));
            all
        } else {
            Vec::new()
        };
        (summaries.chunks(SUMMARY).map(|s| s.try_into().expect("summary")).collect(), gathered)
    }
}

/// The sort's [`Exchange`] over MPI: the job's team, every call timed as
/// communication (the sort times its computation itself).
struct Mpi {
    team: Team,
    comm_s: Cell<f64>,
}

impl Mpi {
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.comm_s.set(self.comm_s.get() + t.elapsed().as_secs_f64());
        out
    }
}

impl Exchange for Mpi {
    fn rank(&self) -> usize {
        self.team.rank()
    }

    fn size(&self) -> usize {
        self.team.size()
    }

    fn all_gather(&self, mine: &[u64]) -> Vec<u64> {
        self.timed(|| self.team.all_gather(mine))
    }

    fn all_gather_varcount(&self, mine: &[u64]) -> Vec<u64> {
        self.timed(|| self.team.all_gather_varcount(mine).0)
    }

    fn all_to_all(&self, send: &[u64], counts: &[usize], recv: &mut Vec<u64>, own: Own) -> Result<Vec<usize>, usize> {
        self.timed(|| match own {
            Own::Send => self.team.all_to_all_into(send, counts, recv),
            Own::Keep => self.team.all_to_all_others_into(send, counts, recv),
        })
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
        let x = Mpi { team: spmd.team(), comm_s: Cell::new(0.0) };
        let team = &x.team;
        let keys = self.local_keys(team);
        let input_print = Fingerprint::of(&keys);
        let plan = Plan::new(self.n, self.local_sort);
        // The sort's buffers are allocated and touched here, untimed like
        // the keys, and kept to the end like them.
        let mut staged = Staged::new(&plan, team.size(), keys);
        team.barrier();
        let start = team.now();
        let sorted = sort::sample_sort(&x, &plan, &mut staged);
        team.barrier();
        let wall_s = team.now() - start;
        let compute_s = sorted.compute_s;
        let (sorted, too_many) = match sorted.keys {
            Ok(keys) => (keys, None),
            Err(worst) => (Vec::new(), Some(worst)),
        };
        let stats = RankStats {
            threads: spmd.threads() as u64,
            chunks: 1,
            units: sorted.len() as u64,
            compute_s,
            comm_s: x.comm_s.get(),
            ..RankStats::default()
        };
        let (summaries, gathered) = self.collect(team, &sorted, input_print);
        if team.rank() != 0 {
            return Some(Outcome { tally: Tally::default(), data: None, stats, wall_s });
        }
        let mut stash = self.stash();
        stash.error = too_many.map(|worst| {
            format!("one rank would receive {worst} keys, more than one MPI call carries ({MAX_COUNT}); use more ranks")
        });
        stash.summaries = summaries;
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
