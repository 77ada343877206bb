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

use super::examples::{Example, Examples};
use super::{Finished, Job, Preflight, Ran, SpmdJob, UsageError};
use super::Common;
use crate::args::value_name;
use crate::output;
use crate::size::Size;
use crate::spmd::exchange::Team;
use crate::spmd::strategy::RankStats;
use crate::spmd::{Comm, Spmd, MAX_COUNT};
use anyhow::{bail, Context, Result};
use kernels::partition::block_range;
use kernels::sort::{self, Dist, Exchange, Fingerprint, LocalSort, Own, Plan, Staged};
use serde_json::{json, Value};
use std::cell::Cell;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

/// Default number of keys of `sort --keys`.
pub const DEFAULT_KEYS: u64 = 100_000_000;

/// Runs of `sort` for the scripts and benchmarks that cover every kernel.
pub const EXAMPLES: Examples = Examples {
    output: Some("--output"),
    small: &[Example { label: "", args: &["--keys", "1e6", "--dist", "zipf"] }],
    bench: &[Example { label: "", args: &["--keys", "5e7"] }],
    simd_paths: false,
    no_small_because: None,
    run_keys: &["output", "imbalance", "keys_per_rank"],
};

/// Options of `sort`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of u64 keys, e.g. 1e8, 250M (ignored with --input, whose size decides).
    #[arg(long, short = 'n', value_name = "N", allow_hyphen_values = true, default_value_t = Size(DEFAULT_KEYS))]
    pub keys: Size,
    /// Distribution of the generated keys.
    #[arg(long, value_enum, default_value_t = Dist::Uniform, conflicts_with = "input")]
    pub dist: Dist,
    /// Read the keys from this file of raw little-endian u64 (rank 0 reads it).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the sorted keys to this file, raw little-endian u64 like --input (gathered at
    /// rank 0); the same as the common --out.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    pub output: Option<PathBuf>,
    /// Local sort of each rank: radix (pikernels' bucket radix sort, fused with the exchange) or
    /// std (sort_unstable of the received keys), for comparison.
    #[arg(long, value_enum, default_value_t = LocalSort::Radix)]
    pub local_sort: LocalSort,
    #[command(flatten)]
    pub common: Common,
}

/// The job `a` describes.
pub fn job(a: &Args) -> Result<Job, UsageError> {
    Ok(Job::spmd(Sort::new(a)?))
}

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

/// What rank 0 holds after the sort, for [`SpmdJob::finish`].
pub struct Gathered {
    /// Every rank's summary ([`SUMMARY`]), in rank order.
    summaries: Vec<[u64; SUMMARY]>,
    /// All the sorted keys, with `--output` (else empty).
    sorted: Vec<u64>,
}

pub struct Sort {
    n: u64,
    source: Source,
    seed: u64,
    local_sort: LocalSort,
    out: Option<PathBuf>,
}

impl Sort {
    pub fn new(a: &Args) -> Result<Sort, UsageError> {
        if a.common.comm == Comm::Dynamic {
            return Err(UsageError("sort exchanges keys all-to-all: --comm dynamic does not apply".into()));
        }
        let (n, source) = match &a.input {
            Some(path) => {
                let len = output::check_input(path, "--input")
                    .map_err(|e| UsageError(format!("{e:#}")))?
                    .len();
                if len == 0 && has_content(path) {
                    return Err(UsageError(format!(
                        "--input {} says its size is 0 but has content (a /proc or /sys file, whose size is not \
                         known before it is read): sort needs a file whose size gives the number of 8-byte keys; \
                         copy it to a regular file first",
                        path.display()
                    )));
                }
                if len % 8 != 0 {
                    return Err(UsageError(format!(
                        "--input {} is {len} bytes, not a whole number of 8-byte keys",
                        path.display()
                    )));
                }
                (len / 8, Source::File(path.clone()))
            }
            None => (a.keys.0, Source::Generated(a.dist)),
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
        Ok(Sort { n, source, seed: a.common.seed, local_sort: a.local_sort, out })
    }

    fn block(&self, p: usize, r: usize) -> Range<u64> {
        block_range(self.n, p as u64, r as u64)
    }

    /// This rank's keys before the sort (`input`: rank 0's keys read from
    /// `--input` in pre-flight).
    fn local_keys(&self, team: &Team, input: Option<Vec<u64>>) -> Vec<u64> {
        let (p, rank) = (team.size(), team.rank());
        match &self.source {
            Source::Generated(dist) => sort::generate(self.seed, *dist, self.n, self.block(p, rank)),
            Source::File(_) => {
                let all = if rank == 0 { input.expect("rank 0 reads --input in pre-flight") } else { Vec::new() };
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
    fn collect(&self, team: &Team, sorted: &[u64], input: Fingerprint) -> Gathered {
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
        let summaries = summaries.chunks(SUMMARY).map(|s| s.try_into().expect("summary")).collect();
        Gathered { summaries, sorted: gathered }
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

/// Whether a file whose size reads 0 yields a byte anyway (procfs, sysfs).
fn has_content(path: &std::path::Path) -> bool {
    output::open_input(path, "--input").is_ok_and(|mut f| f.read(&mut [0u8; 1]).is_ok_and(|n| n > 0))
}

fn read_keys(path: &std::path::Path, n: u64) -> Result<Vec<u64>> {
    let mut bytes = Vec::with_capacity(n as usize * 8);
    output::open_input(path, "--input")?
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read --input {}", path.display()))?;
    if bytes.len() as u64 != n * 8 {
        bail!("--input {} changed size while being read", path.display());
    }
    Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// The sorted keys written for `path` under its temporary name.
fn write_keys(path: &std::path::Path, keys: &[u64]) -> Result<output::Staged> {
    output::stage(path, |w| {
        for chunk in keys.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|k| k.to_le_bytes()).collect();
            w.write_all(&bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })
}

impl SpmdJob for Sort {
    /// Rank 0's keys, read from `--input` (`None` for generated keys and on
    /// the other ranks).
    type Prepared = Option<Vec<u64>>;
    /// The gathered summaries and keys, or why the sort could not run.
    type Output = Result<Gathered, String>;

    fn params(&self) -> Value {
        let (dist, input) = match &self.source {
            Source::Generated(d) => (Some(value_name(*d)), None),
            Source::File(p) => (None, Some(p.display().to_string())),
        };
        json!({ "keys": self.n, "dist": dist, "input": input, "seed": self.seed, "local_sort": value_name(self.local_sort) })
    }

    fn files(&self) -> Vec<output::FileUse> {
        let mut files: Vec<output::FileUse> = self.out.iter().map(|p| output::FileUse::writes("--output", p)).collect();
        if let Source::File(p) = &self.source {
            files.push(output::FileUse::reads("--input", p));
        }
        files
    }

    fn preflight(&self, ctx: &Preflight) -> Result<Option<Vec<u64>>> {
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
        output::check_memory(
            need,
            "this rank's share of the keys",
            "give fewer --keys (a smaller --input), more processes, or no --output",
        )?;
        match (ctx.is_root(), &self.source) {
            (true, Source::File(path)) => Ok(Some(read_keys(path, self.n)?)),
            _ => Ok(None),
        }
    }

    fn run(&self, spmd: &Spmd, _comm: Comm, input: Option<Vec<u64>>) -> Ran<Self::Output> {
        let x = Mpi { team: spmd.team(), comm_s: Cell::new(0.0) };
        let team = &x.team;
        let keys = self.local_keys(team, input);
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
        let gathered = self.collect(team, &sorted, input_print);
        let output = (team.rank() == 0).then(|| match too_many {
            None => Ok(gathered),
            Some(worst) => Err(format!(
                "one rank would receive {worst} keys, more than one MPI call carries ({MAX_COUNT}); use more ranks"
            )),
        });
        Ran { output, stats, wall_s }
    }

    fn finish(&self, output: Result<Gathered, String>) -> Result<Finished> {
        let gathered = output.map_err(anyhow::Error::msg)?;
        let t = Instant::now();
        let s = &gathered.summaries;
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
        let (keys_file, output_s) = match &self.out {
            Some(path) if verified => {
                let t = Instant::now();
                let staged = write_keys(path, &gathered.sorted)?;
                (Some(staged), t.elapsed().as_secs_f64())
            }
            _ => (None, 0.0),
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
            bytes_per_item: None,
            verify_s,
            output_s,
            outputs: keys_file.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// The report parameters of `pikernels sort LINE...`.
    fn params(line: &[&str]) -> Value {
        let kernel = crate::jobs::parse(&[&["pikernels", "sort"][..], line].concat()).expect("parses");
        let crate::jobs::Kernel::Sort(a) = kernel else { panic!("not sort") };
        SpmdJob::params(&Sort::new(&a).expect("a valid sort"))
    }

    #[test]
    fn the_report_spells_dist_and_local_sort_as_the_cli_and_as_before() {
        // The spellings of report schema 1 (the kernels' former `name()`s).
        let dists = ["uniform", "equal", "sorted", "reverse", "few", "zipf", "npb-is"];
        assert_eq!(Dist::value_variants().iter().map(|&d| value_name(d)).collect::<Vec<_>>(), dists);
        let sorts = ["radix", "std"];
        assert_eq!(LocalSort::value_variants().iter().map(|&l| value_name(l)).collect::<Vec<_>>(), sorts);
        for d in dists {
            assert_eq!(params(&["--dist", d])["dist"], d);
        }
        for l in sorts {
            assert_eq!(params(&["--local-sort", l])["local_sort"], l);
        }
    }

    #[test]
    fn the_defaults_are_those_the_cli_had() {
        let want = json!({ "keys": 100_000_000, "dist": "uniform", "input": null, "seed": 1, "local_sort": "radix" });
        assert_eq!(params(&[]), want);
        assert_eq!(params(&["-n", "2.5e3", "--dist", "zipf", "--local-sort", "std", "--seed", "9"])["keys"], 2500);
    }
}
