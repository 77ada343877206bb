//! The run report: one serde type, four renderings.
//!
//! Rank 0 builds one [`Report`] per run. JSON is the machine-readable form
//! (with `schema_version`); text, CSV and Markdown show the same data for
//! people and spreadsheets.

use crate::spmd::{Comm, RankStats};
/// A result field's digest of f64 bits (the kernels crate's, one place).
pub use kernels::digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;

/// Bumped whenever a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// Report formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A short human-readable summary with a per-rank table.
    #[default]
    Text,
    /// The whole report as JSON.
    Json,
    /// One row per rank, run-level columns repeated (tidy data).
    Csv,
    /// Summary and per-rank tables in Markdown.
    Markdown,
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Version of this layout.
    pub schema_version: u32,
    /// Kernel name, as on the command line.
    pub kernel: String,
    /// The kernel's parameters after defaults were applied.
    pub params: Value,
    /// Number of MPI ranks.
    pub ranks: usize,
    /// Rayon threads per rank (the largest, if ranks differ; see `per_rank`).
    pub threads_per_rank: usize,
    /// Communication strategy.
    pub comm: Comm,
    /// Processor name of each rank, in rank order.
    pub hosts: Vec<String>,
    /// Kernel-specific results (e.g. `pi`, `abs_error`; mandelbrot: `output`, `total_iterations`).
    pub result: Value,
    /// Whether the run's own check of its result passed.
    pub verified: bool,
    /// What was checked, in words.
    pub verification: String,
    /// Where the time went.
    pub timing: Timing,
    /// Work items per second.
    pub throughput: Throughput,
    /// Per-rank details, in rank order.
    pub per_rank: Vec<RankRow>,
    /// Each node (ranks grouped by host name): its ranks, their threads and
    /// its cores. Empty in older reports.
    #[serde(default)]
    pub nodes: Vec<NodeUse>,
    /// Cores the threads ran on: per node the smaller of its threads and
    /// its cores, summed over nodes (0 in older reports).
    #[serde(default)]
    pub cores_used: u64,
    /// Whether some node ran more threads than it has cores (the threads
    /// then took turns, and per-core rates are per core used, not per thread).
    #[serde(default)]
    pub oversubscribed: bool,
    /// The build and machine that produced the report.
    pub build: Build,
    /// Set only by a `--partition I/N` run: which part it computed and its
    /// exact tally, for `pikernels merge`. Such a report is not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Partial>,
    /// Set only by a `--checkpoint` run: what the journal gave and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Ranks that died while the job carried on without them (ULFM); empty
    /// otherwise. `ranks` and `per_rank` count the ranks that finished,
    /// `hosts` every rank started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostRank>,
}

/// A rank the job lost and survived (`--comm dynamic` under ULFM).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostRank {
    /// The rank, as started.
    pub rank: usize,
    /// Its host.
    pub host: String,
    /// Chunks it held when it died, computed again by other ranks.
    pub chunks_redone: u64,
    /// Work units in those chunks.
    pub units_redone: u64,
}

/// What a `--checkpoint DIR` run took from its journal and added to it.
/// The throughput counts the work this run computed: the job's items times
/// the share of units it computed (an estimate where units differ in cost).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The journal's directory.
    pub dir: String,
    /// What the counts below count: `units` (of a unit job), or `steps` (heat).
    #[serde(default = "units_word")]
    pub unit: String,
    /// Units of the job (of its part, for a `--partition` run; heat: steps).
    pub units: u64,
    /// Units whose results came from the journal, not computed again.
    pub resumed_units: u64,
    /// Units this run computed.
    pub computed_units: u64,
    /// Records this run added to the journal.
    pub records_written: u64,
    /// Whether writing a record failed (warned about once; the run went on
    /// without checkpoints after it).
    pub write_failed: bool,
}

fn units_word() -> String {
    "units".into()
}

/// One part of a job cut into `count` parts (an Indexed Job's pod).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// Which part, from 0.
    pub index: u64,
    /// How many parts the job was cut into.
    pub count: u64,
    /// First work unit of this part.
    pub first_unit: u64,
    /// One past the last work unit of this part.
    pub end_unit: u64,
    /// Work units of the whole job.
    pub total_units: u64,
    /// The part's exact tally (an `i128`) as a decimal string, so that no
    /// JSON reader rounds it through a double.
    pub tally: String,
}

/// Timings, in seconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timing {
    /// Barrier to barrier around the distributed computation (not MPI start-up,
    /// verification or output).
    pub wall_s: f64,
    /// Time each rank spent computing.
    pub compute_s: Spread,
    /// Time each rank spent in MPI calls (waiting included).
    pub comm_s: Spread,
    /// Time each rank spent packing its computed bytes before they travel
    /// (mandelbrot: filtering and deflating its blocks of the PNG); zeros
    /// for kernels that send their bytes as they are. Absent in older reports.
    #[serde(default)]
    pub pack_s: Spread,
    /// Verification on rank 0.
    pub verify_s: f64,
    /// Writing the file output on rank 0.
    pub output_s: f64,
}

/// A per-rank quantity with its summary.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Median value.
    pub median: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub mean: f64,
    /// Load imbalance, `max / mean`: 1.0 is perfect balance; 1.25 means the
    /// slowest rank took 25% longer than the average, time the others idled.
    pub imbalance: f64,
    /// Values in rank order.
    pub per_rank: Vec<f64>,
}

impl Spread {
    /// The spread of `values` (not empty).
    pub fn of(values: Vec<f64>) -> Spread {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let max = sorted[n - 1];
        Spread {
            min: sorted[0],
            median,
            max,
            mean,
            imbalance: if mean > 0.0 { max / mean } else { 1.0 },
            per_rank: values,
        }
    }
}

/// Work items per second.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Throughput {
    /// What an item is (samples, terms, pixel-iterations).
    pub item: String,
    /// Items processed.
    pub count: f64,
    /// Items per second of wall time.
    pub per_s: f64,
    /// Items per second per core: `count / sum over ranks of (compute_s *
    /// threads)`, each node's sum scaled by `cores / threads` where it ran
    /// more threads than cores, so that it counts the cores used.
    pub per_core_per_s: f64,
}

/// One rank's row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RankRow {
    /// Rank.
    pub rank: usize,
    /// Processor name.
    pub host: String,
    /// Rayon threads.
    pub threads: u64,
    /// Work units computed.
    pub units: u64,
    /// Pieces of work taken.
    pub chunks: u64,
    /// Seconds computing.
    pub compute_s: f64,
    /// Seconds in MPI calls.
    pub comm_s: f64,
    /// Seconds packing computed bytes (absent in older reports).
    #[serde(default)]
    pub pack_s: f64,
    /// Cores of the rank's node (0 where unknown: older reports).
    #[serde(default)]
    pub node_cores: u64,
}

/// One node's use of its cores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUse {
    /// Host name.
    pub host: String,
    /// Ranks on the node.
    pub ranks: u64,
    /// Their threads, summed.
    pub threads: u64,
    /// Cores the node's ranks may use between them.
    pub cores: u64,
}

impl NodeUse {
    /// Cores its threads ran on.
    pub fn cores_used(&self) -> u64 {
        self.threads.min(self.cores)
    }
}

/// How a job's ranks used their nodes' cores.
pub struct CoreUse {
    /// Per node, in order of first rank.
    pub nodes: Vec<NodeUse>,
    /// Cores the threads ran on, summed over nodes.
    pub cores_used: u64,
    /// Whether some node ran more threads than cores.
    pub oversubscribed: bool,
    /// Core-seconds of compute: threads x compute seconds, each node's
    /// scaled down to its cores where it ran more threads than cores.
    pub core_seconds: f64,
}

impl CoreUse {
    /// From per-rank rows (a row whose node's cores are unknown counts as
    /// one core per thread).
    pub fn of(rows: &[RankRow]) -> CoreUse {
        let mut nodes: Vec<(NodeUse, f64)> = Vec::new();
        for r in rows {
            let cores = if r.node_cores == 0 { r.threads } else { r.node_cores };
            let i = match nodes.iter().position(|(n, _)| n.host == r.host) {
                Some(i) => i,
                None => {
                    nodes.push((NodeUse { host: r.host.clone(), ranks: 0, threads: 0, cores: 0 }, 0.0));
                    nodes.len() - 1
                }
            };
            let (n, thread_s) = &mut nodes[i];
            n.ranks += 1;
            n.threads += r.threads;
            n.cores = n.cores.max(cores);
            *thread_s += r.compute_s * r.threads as f64;
        }
        let core_seconds =
            nodes.iter().map(|(n, thread_s)| thread_s * (n.cores_used() as f64 / n.threads.max(1) as f64)).sum();
        CoreUse {
            cores_used: nodes.iter().map(|(n, _)| n.cores_used()).sum(),
            oversubscribed: nodes.iter().any(|(n, _)| n.threads > n.cores),
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
            core_seconds,
        }
    }
}

/// Build and machine facts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Build {
    /// pikernels version.
    pub version: String,
    /// CPU architecture of rank 0.
    pub arch: String,
    /// The SIMD path the kernels run on rank 0 (`PIKERNELS_SIMD`): `avx512`,
    /// `avx2`, `neon` or `scalar`, and after it, where the job's hot loop is
    /// a hand-written `std::arch` twin, which (e.g. `avx512 (mandelbrot
    /// avx512 (std::arch))`).
    pub isa: String,
    /// The MPI library rank 0 runs with, as it names itself
    /// (`MPI_Get_library_version`'s first line, e.g. "Open MPI v4.1.4" or
    /// "MPICH Version: 4.0.2"): the one loaded, which is not always the one
    /// the binary was built with. Empty in reports of older versions.
    #[serde(default)]
    pub mpi: String,
}

impl Build {
    /// This build on this machine, running `kernel`, whose hot loop is
    /// `implementation` (`None`: the path's generic code, or no loop of ours).
    pub fn current(kernel: &str, implementation: Option<&str>) -> Build {
        let path = kernels::simd::path().name();
        let isa = match implementation {
            Some(loop_name) if loop_name != path => format!("{path} ({kernel} {loop_name})"),
            _ => path.to_string(),
        };
        Build {
            version: env!("CARGO_PKG_VERSION").into(),
            arch: std::env::consts::ARCH.into(),
            isa,
            mpi: crate::spmd::mpi_library(),
        }
    }
}

/// Rank 0's account of a finished job.
pub struct Finished {
    /// Kernel-specific result fields.
    pub result: Value,
    /// Whether verification passed.
    pub verified: bool,
    /// What verification checked.
    pub verification: String,
    /// The throughput item and how many were processed.
    pub item: (&'static str, f64),
    /// Memory traffic per item, for a memory-bound kernel: the report then
    /// adds `bytes_per_s_per_core` (this times the per-core item rate) to
    /// the result.
    pub bytes_per_item: Option<f64>,
    /// Seconds spent verifying.
    pub verify_s: f64,
    /// Seconds spent writing outputs.
    pub output_s: f64,
    /// The job's output files, written in full but not yet in place: they
    /// are renamed into place only once the report is out (`jobs::run::publish`),
    /// so a run that fails at its last step leaves none of them.
    pub outputs: Vec<crate::output::Staged>,
}

/// What a report is assembled from: the same for a run and for a merge of
/// partial runs.
pub struct Assembly {
    /// Kernel name.
    pub kernel: String,
    /// The kernel's parameters.
    pub params: Value,
    /// Communication strategy.
    pub comm: Comm,
    /// Host of each rank, in rank order.
    pub hosts: Vec<String>,
    /// Each rank's row, in rank order.
    pub per_rank: Vec<RankRow>,
    /// Rank 0's account of the result.
    pub finished: Finished,
    /// Seconds the job took.
    pub wall_s: f64,
    /// The build that computed it.
    pub build: Build,
    /// A partial run's part.
    pub partial: Option<Partial>,
    /// A `--checkpoint` run's account.
    pub checkpoint: Option<Checkpoint>,
    /// The ranks lost and survived.
    pub lost: Vec<LostRank>,
}

impl Report {
    /// The report of a run or merge: the spreads, core use and throughput
    /// are derived here from the per-rank rows, the one place they are.
    pub fn assemble(a: Assembly) -> Report {
        let rows = &a.per_rank;
        let spread = |f: fn(&RankRow) -> f64| Spread::of(rows.iter().map(f).collect());
        let cores = CoreUse::of(rows);
        let (item, mut count) = a.finished.item;
        if let Some(c) = a.checkpoint.as_ref().filter(|c| c.units > 0) {
            count *= c.computed_units as f64 / c.units as f64;
        }
        let rate = |seconds: f64| if seconds > 0.0 { count / seconds } else { 0.0 };
        let per_core_per_s = rate(cores.core_seconds);
        let mut result = a.finished.result;
        if let (Some(bytes), Value::Object(fields)) = (a.finished.bytes_per_item, &mut result) {
            fields.insert("bytes_per_s_per_core".into(), (bytes * per_core_per_s).into());
        }
        Report {
            schema_version: SCHEMA_VERSION,
            kernel: a.kernel,
            params: a.params,
            ranks: rows.len(),
            threads_per_rank: rows.iter().map(|r| r.threads as usize).max().unwrap_or(1),
            comm: a.comm,
            hosts: a.hosts,
            result,
            verified: a.finished.verified,
            verification: a.finished.verification,
            timing: Timing {
                wall_s: a.wall_s,
                compute_s: spread(|r| r.compute_s),
                comm_s: spread(|r| r.comm_s),
                pack_s: spread(|r| r.pack_s),
                verify_s: a.finished.verify_s,
                output_s: a.finished.output_s,
            },
            throughput: Throughput { item: item.into(), count, per_s: rate(a.wall_s), per_core_per_s },
            nodes: cores.nodes,
            cores_used: cores.cores_used,
            oversubscribed: cores.oversubscribed,
            per_rank: a.per_rank,
            build: a.build,
            partial: a.partial,
            checkpoint: a.checkpoint,
            lost: a.lost,
        }
    }

    /// Per-rank rows from the host of every rank started, the rank each
    /// statistics row's rank was started as, and the statistics.
    pub fn rows(hosts: &[String], started_as: &[usize], stats: &[RankStats]) -> Vec<RankRow> {
        started_as
            .iter()
            .zip(stats)
            .map(|(&rank, s)| RankRow {
                rank,
                host: hosts.get(rank).cloned().unwrap_or_default(),
                threads: s.threads,
                units: s.units,
                chunks: s.chunks,
                compute_s: s.compute_s,
                comm_s: s.comm_s,
                pack_s: s.pack_s,
                node_cores: s.node_cores,
            })
            .collect()
    }

    /// The report in `format`, ending with a newline.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string_pretty(self).expect("a report always serialises") + "\n",
            Format::Text => self.text(),
            Format::Csv => self.csv(),
            Format::Markdown => self.markdown(),
        }
    }

    fn hosts_summary(&self) -> String {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for h in &self.hosts {
            match counts.iter_mut().find(|(n, _)| n == h) {
                Some((_, c)) => *c += 1,
                None => counts.push((h, 1)),
            }
        }
        counts.iter().map(|(h, c)| format!("{h} ({c})")).collect::<Vec<_>>().join(", ")
    }

    fn text(&self) -> String {
        let t = &self.timing;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pikernels {}: {} rank{} x {} thread{}, comm {}, hosts: {}",
            self.kernel,
            self.ranks,
            plural(self.ranks),
            self.threads_per_rank,
            plural(self.threads_per_rank),
            crate::args::value_name(self.comm),
            self.hosts_summary()
        );
        let _ = writeln!(s, "  params    {}", pairs(&self.params).join("  "));
        let _ = writeln!(s, "  result    {}", pairs(&self.result).join("  "));
        let _ = writeln!(s, "  verified  {}: {}", if self.verified { "yes" } else { "NO" }, self.verification);
        if let Some(c) = &self.checkpoint {
            let failed = if c.write_failed { ", then a record could not be written" } else { "" };
            let _ = writeln!(
                s,
                "  resumed   {} of {} {} from {}; computed {}, {} record{} written{failed}",
                c.resumed_units,
                c.units,
                c.unit,
                c.dir,
                c.computed_units,
                c.records_written,
                plural(c.records_written as usize)
            );
        }
        for l in &self.lost {
            let _ = writeln!(
                s,
                "  lost      rank {} ({}) died; the job went on without it, {} chunk{} ({} units) it held redone by the others",
                l.rank,
                l.host,
                l.chunks_redone,
                plural(l.chunks_redone as usize),
                l.units_redone
            );
        }
        let pack = if t.pack_s.max > 0.0 { format!(" | pack max {:.4} s", t.pack_s.max) } else { String::new() };
        let _ = writeln!(
            s,
            "  time      wall {:.4} s | compute min {:.4} / median {:.4} / max {:.4} s, imbalance {:.3}{pack} | comm max {:.4} s | verify {:.3} s | output {:.3} s",
            t.wall_s, t.compute_s.min, t.compute_s.median, t.compute_s.max, t.compute_s.imbalance, t.comm_s.max, t.verify_s, t.output_s
        );
        let _ = writeln!(
            s,
            "  rate      {} {}/s, {} {}/s per core ({})",
            sci(self.throughput.per_s),
            self.throughput.item,
            sci(self.throughput.per_core_per_s),
            self.throughput.item,
            self.build.isa
        );
        for n in self.nodes.iter().filter(|n| n.threads > n.cores) {
            let _ = writeln!(
                s,
                "  cores     OVERSUBSCRIBED: {} runs {} rank{} with {} thread{} in all on {} core{}; per-core rates count the {} used",
                n.host,
                n.ranks,
                plural(n.ranks as usize),
                n.threads,
                plural(n.threads as usize),
                n.cores,
                plural(n.cores as usize),
                n.cores_used()
            );
        }
        if self.ranks > 1 {
            let _ = writeln!(
                s,
                "  {:>5}  {:<20} {:>7} {:>12} {:>7} {:>10} {:>10}",
                "rank", "host", "threads", "units", "chunks", "compute_s", "comm_s"
            );
            for r in &self.per_rank {
                let _ = writeln!(
                    s,
                    "  {:>5}  {:<20} {:>7} {:>12} {:>7} {:>10.4} {:>10.4}",
                    r.rank, r.host, r.threads, r.units, r.chunks, r.compute_s, r.comm_s
                );
            }
        }
        s
    }

    /// Run-level columns: name and value, in a fixed order.
    fn run_columns(&self) -> Vec<(String, String)> {
        let t = &self.timing;
        let mut cols = vec![
            ("kernel".to_string(), self.kernel.clone()),
            ("ranks".into(), self.ranks.to_string()),
            ("threads_per_rank".into(), self.threads_per_rank.to_string()),
            ("cores_used".into(), self.cores_used.to_string()),
            ("oversubscribed".into(), self.oversubscribed.to_string()),
            ("comm".into(), crate::args::value_name(self.comm)),
        ];
        cols.extend(flat("params", &self.params));
        cols.extend(flat("result", &self.result));
        cols.extend([
            ("verified".into(), self.verified.to_string()),
            ("wall_s".into(), t.wall_s.to_string()),
            ("compute_min_s".into(), t.compute_s.min.to_string()),
            ("compute_median_s".into(), t.compute_s.median.to_string()),
            ("compute_max_s".into(), t.compute_s.max.to_string()),
            ("imbalance".into(), t.compute_s.imbalance.to_string()),
            ("comm_max_s".into(), t.comm_s.max.to_string()),
            ("pack_max_s".into(), t.pack_s.max.to_string()),
            ("items_per_s".into(), self.throughput.per_s.to_string()),
            ("items_per_core_per_s".into(), self.throughput.per_core_per_s.to_string()),
        ]);
        cols
    }

    fn csv(&self) -> String {
        let run = self.run_columns();
        let mut w = csv::Writer::from_writer(Vec::new());
        let rank_cols = ["rank", "host", "threads", "units", "chunks", "rank_compute_s", "rank_comm_s"];
        let header: Vec<&str> = run.iter().map(|(k, _)| k.as_str()).chain(rank_cols).collect();
        w.write_record(&header).expect("in-memory CSV");
        for r in &self.per_rank {
            let own = [
                r.rank.to_string(),
                r.host.clone(),
                r.threads.to_string(),
                r.units.to_string(),
                r.chunks.to_string(),
                r.compute_s.to_string(),
                r.comm_s.to_string(),
            ];
            let record: Vec<&str> = run.iter().map(|(_, v)| v.as_str()).chain(own.iter().map(String::as_str)).collect();
            w.write_record(&record).expect("in-memory CSV");
        }
        String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("CSV of UTF-8 fields")
    }

    fn markdown(&self) -> String {
        let mut s = format!("## pikernels {}\n\n| field | value |\n|---|---|\n", self.kernel);
        for (k, v) in self.run_columns() {
            let _ = writeln!(s, "| {k} | {} |", v.replace('|', "\\|"));
        }
        let _ = writeln!(s, "| hosts | {} |", self.hosts_summary());
        let _ = writeln!(s, "| verification | {} |", self.verification.replace('|', "\\|"));
        s.push_str(
            "\n| rank | host | threads | units | chunks | compute_s | comm_s |\n|---:|---|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.per_rank {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.4} | {:.4} |",
                r.rank, r.host, r.threads, r.units, r.chunks, r.compute_s, r.comm_s
            );
        }
        s
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn sci(x: f64) -> String {
    format!("{x:.3e}")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `key=value` pairs of a JSON object, in order.
fn pairs(v: &Value) -> Vec<String> {
    flat("", v).into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// A JSON object's fields as `prefix.key` columns (nested objects flattened).
fn flat(prefix: &str, v: &Value) -> Vec<(String, String)> {
    match v {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flat(&key, v)
            })
            .collect(),
        other => vec![(prefix.to_string(), scalar(other))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Report {
        let stats = [
            RankStats { compute_s: 1.0, comm_s: 0.1, units: 10, chunks: 1, threads: 2, pack_s: 0.0, node_cores: 2 },
            RankStats { compute_s: 3.0, comm_s: 0.2, units: 20, chunks: 1, threads: 2, pack_s: 0.0, node_cores: 2 },
        ];
        let hosts = vec!["a".to_string(), "b".to_string()];
        Report {
            schema_version: SCHEMA_VERSION,
            kernel: "pi-mc".into(),
            params: json!({"samples": 100, "seed": 1}),
            ranks: 2,
            threads_per_rank: 2,
            comm: Comm::P2p,
            per_rank: Report::rows(&hosts, &[0, 1], &stats),
            nodes: Vec::new(),
            cores_used: 4,
            oversubscribed: false,
            hosts,
            result: json!({"pi": 3.25, "abs_error": 0.0016}),
            verified: true,
            verification: "within 5 standard errors".into(),
            timing: Timing {
                wall_s: 3.5,
                compute_s: Spread::of(vec![1.0, 3.0]),
                comm_s: Spread::of(vec![0.1, 0.2]),
                pack_s: Spread::of(vec![0.0, 0.0]),
                verify_s: 0.0,
                output_s: 0.0,
            },
            throughput: Throughput { item: "samples".into(), count: 100.0, per_s: 28.6, per_core_per_s: 12.5 },
            build: Build::current("pi-mc", None),
            partial: None,
            checkpoint: None,
            lost: Vec::new(),
        }
    }

    #[test]
    fn oversubscribed_nodes_count_the_cores_they_have() {
        let row = |host: &str, threads: u64, node_cores: u64| RankRow {
            rank: 0,
            host: host.into(),
            threads,
            units: 1,
            chunks: 1,
            compute_s: 1.0,
            comm_s: 0.0,
            pack_s: 0.0,
            node_cores,
        };
        // Twelve ranks of two threads on a 2-core node, and a node with room to spare.
        let mut rows: Vec<RankRow> = (0..12).map(|_| row("small", 2, 2)).collect();
        rows.push(row("big", 4, 8));
        let u = CoreUse::of(&rows);
        assert!(u.oversubscribed);
        assert_eq!(u.cores_used, 2 + 4);
        assert_eq!(u.nodes[0], NodeUse { host: "small".into(), ranks: 12, threads: 24, cores: 2 });
        // 24 thread-seconds on 2 cores are 2 core-seconds; 4 on an idle-enough node stay 4.
        assert_eq!(u.core_seconds, 2.0 + 4.0);
        let fits = CoreUse::of(&[row("a", 1, 2), row("a", 1, 2)]);
        assert!(!fits.oversubscribed);
        assert_eq!((fits.cores_used, fits.core_seconds), (2, 2.0));
        // Older reports (cores unknown) count a core per thread.
        assert_eq!(CoreUse::of(&[row("a", 3, 0)]).core_seconds, 3.0);
    }

    #[test]
    fn spread_summarises() {
        let s = Spread::of(vec![3.0, 1.0, 2.0, 6.0]);
        assert_eq!((s.min, s.median, s.max, s.mean), (1.0, 2.5, 6.0, 3.0));
        assert_eq!(s.imbalance, 2.0);
        assert_eq!(s.per_rank, vec![3.0, 1.0, 2.0, 6.0]);
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: Report = serde_json::from_str(&r.render(Format::Json)).unwrap();
        assert_eq!(back.result["pi"], 3.25);
        assert_eq!(back.timing.compute_s.imbalance, 1.5);
        assert_eq!(back.comm, Comm::P2p);
    }

    #[test]
    fn csv_has_a_row_per_rank_with_the_same_columns() {
        let out = sample().render(Format::Csv);
        let mut rd = csv::Reader::from_reader(out.as_bytes());
        let header = rd.headers().unwrap().clone();
        assert!(header.iter().any(|h| h == "result.pi"));
        let rows: Vec<_> = rd.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert_eq!(&rows[1][col("host")], "b");
        assert_eq!(&rows[0][col("imbalance")], "1.5");
    }

    #[test]
    fn text_and_markdown_show_the_result_and_ranks() {
        let r = sample();
        for f in [Format::Text, Format::Markdown] {
            let s = r.render(f);
            assert!(s.contains("3.25"), "{f:?}: {s}");
            assert!(s.contains("1.5"), "{f:?} shows the imbalance");
            assert!(s.lines().any(|l| l.contains('b') && l.contains("3.0000")), "{f:?}: {s}");
        }
    }
}
