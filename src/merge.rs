//! `pikernels merge`: combines the partial reports of `--partition I/N`
//! runs (e.g. the pods of a Kubernetes Indexed Job) into the report one run
//! over all units would give.
//!
//! The parts' tallies are exact integers, so their sum is bit for bit the
//! whole job's tally; the job is rebuilt from the reports' parameters and
//! finished (verified) exactly as a single run finishes. No MPI is involved.
//!
//! A part is data from outside (a pod's log, a file anyone may edit), so
//! every field is checked before it is used, in an order where nothing is
//! allocated or indexed by an unchecked field: the file's size (read at most
//! [`MAX_PART_BYTES`]), its schema version, the part's number, count and
//! unit range, its tally (an integer within [`crate::jobs::UnitJob::tally_bounds`]
//! of the rebuilt job). Every refusal is exit 2 and names the file.

use crate::args::MAX_PARTITIONS;
use crate::cli::MergeArgs;
use crate::exit::{Exit, Stop};
use crate::jobs::{partial, run::publish, Finished, UsageError};
use crate::output;
use crate::report::{Assembly, Partial, RankRow, Report, SCHEMA_VERSION};
use kernels::{partition, Tally};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The largest part file `merge` reads. A part's report is a few KiB (about
/// 300 bytes per rank); anything larger is not one, and reading stops here,
/// so `/dev/zero` or a FIFO that never ends cannot make `merge` read forever.
pub const MAX_PART_BYTES: u64 = 16 << 20;

/// How many missing parts a refusal names before it only counts the rest.
const MISSING_NAMED: usize = 10;

/// Runs `pikernels merge`.
pub fn run(args: &MergeArgs) -> Result<(), Stop> {
    let refuse = |e: String| Stop::line(Exit::Usage, format!("pikernels merge: error: {e}"));
    let parts =
        args.parts.iter().map(|p| read_part(p).map(|r| (name(p), r))).collect::<Result<_, _>>().map_err(refuse)?;
    if let Some(path) = &args.report {
        let mut files: Vec<output::FileUse> = args.parts.iter().map(|p| output::FileUse::reads("PART", p)).collect();
        files.push(output::FileUse::writes("--report", path));
        output::check_distinct(&files).map_err(refuse)?;
        output::check_writable(path, "report").map_err(|e| refuse(format!("{e:#}")))?;
    }
    let report = merge(parts).map_err(|e| match e {
        MergeError::Usage(e) => refuse(e),
        MergeError::Failed(e) => Stop::line(Exit::Failure, format!("pikernels merge: error: {e:#}")),
    })?;
    publish(&report, args.format, args.report.as_deref(), "pikernels merge", Vec::new())
}

/// Why a merge did not produce a report.
#[derive(Debug)]
pub enum MergeError {
    /// The inputs do not form one complete job (exit 2).
    Usage(String),
    /// The job's own final step failed (exit 1).
    Failed(anyhow::Error),
}

impl From<UsageError> for MergeError {
    fn from(e: UsageError) -> Self {
        MergeError::Usage(e.0)
    }
}

/// Reads one part's report: at most [`MAX_PART_BYTES`], JSON, of the schema
/// this build writes. Every message names the file.
fn read_part(path: &Path) -> Result<Report, String> {
    let name = name(path);
    let mut file = output::open_input(path, "part").map_err(|e| format!("{e:#}"))?;
    let mut bytes = Vec::new();
    (&mut file).take(MAX_PART_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > MAX_PART_BYTES {
        return Err(format!(
            "{name} is larger than {}: not the report of a part (a part's JSON report is a few KiB)",
            output::human_bytes(MAX_PART_BYTES)
        ));
    }
    parse_part(&name, &bytes)
}

/// A part's report from its bytes: the schema version first (so a report
/// from a build with another layout is named as such), then the layout.
fn parse_part(name: &str, bytes: &[u8]) -> Result<Report, String> {
    let not_json = |e: &dyn std::fmt::Display| {
        format!("{name} is not a JSON report of pikernels (run the parts with --format json): {e}")
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| not_json(&e))?;
    match value.get("schema_version") {
        Some(v) if v.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
        Some(v) => return Err(unknown_schema(name, v)),
        None => return Err(not_json(&"it has no schema_version")),
    }
    serde_json::from_value(value).map_err(|e| not_json(&e))
}

fn unknown_schema(name: &str, version: &dyn std::fmt::Display) -> String {
    format!(
        "{name} has report schema version {version}, which this build does not know: it reads schema version \
         {SCHEMA_VERSION} only (merge the parts with the pikernels that wrote them)"
    )
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

/// Checks what a part says about itself, before anything is sized or
/// indexed by it: the part exists in a cut `--partition` can make, its unit
/// range is the one `block_range` gives that part, its tally is an integer,
/// and its per-rank rows match its rank count.
fn check_part(name: &str, r: &Report) -> Result<(Partial, i128), String> {
    let p = r.partial.clone().ok_or_else(|| {
        format!("{name} is the report of a whole run, not of a part (run the parts with --partition I/N)")
    })?;
    if r.schema_version != SCHEMA_VERSION {
        return Err(unknown_schema(name, &r.schema_version));
    }
    if p.count == 0 || p.count > MAX_PARTITIONS {
        return Err(format!(
            "{name} says the job has {} parts, but --partition cuts a job into 1 to {MAX_PARTITIONS}",
            p.count
        ));
    }
    if p.index >= p.count {
        return Err(format!(
            "{name} says it is part {} of {}, but parts count from 0 (0..={})",
            p.index,
            p.count,
            p.count - 1
        ));
    }
    let expected = partition::block_range(p.total_units, p.count, p.index);
    if (p.first_unit, p.end_unit) != (expected.start, expected.end) {
        return Err(format!(
            "{name} claims units {}..{} for part {} of {} ({} units), but that part is {}..{}",
            p.first_unit, p.end_unit, p.index, p.count, p.total_units, expected.start, expected.end
        ));
    }
    let tally: i128 = p.tally.trim().parse().map_err(|e: std::num::ParseIntError| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            format!("{name}: the tally '{}' is beyond what any part can hold (±2^127)", p.tally)
        }
        _ => format!("{name}: the tally '{}' is not an integer", p.tally),
    })?;
    // `hosts` names every rank started, the lost (ULFM) too.
    if r.per_rank.is_empty() || r.per_rank.len() != r.ranks || r.hosts.len() != r.ranks + r.lost.len() {
        return Err(format!(
            "{name} says {} ranks ran the part ({} lost), but lists {} per-rank rows and {} hosts",
            r.ranks,
            r.lost.len(),
            r.per_rank.len(),
            r.hosts.len()
        ));
    }
    check_numbers(name, r)?;
    Ok((p, tally))
}

/// The longest time a part's report may claim for anything: a year.
const MAX_PART_SECONDS: f64 = 366.0 * 86400.0;
/// The most threads (or cores) a rank's row may claim.
const MAX_RANK_THREADS: u64 = 1 << 20;

/// Checks every number of a part that the merged report uses: times are
/// finite, between 0 and [`MAX_PART_SECONDS`]; thread and core counts below
/// [`MAX_RANK_THREADS`].
fn check_numbers(name: &str, r: &Report) -> Result<(), String> {
    let seconds = |what: String, v: f64| {
        if v.is_finite() && (0.0..=MAX_PART_SECONDS).contains(&v) {
            Ok(())
        } else {
            Err(format!("{name}: {what} is {v:e} s, but a time must lie between 0 and {MAX_PART_SECONDS} s (a year)"))
        }
    };
    seconds("timing.wall_s".into(), r.timing.wall_s)?;
    seconds("timing.verify_s".into(), r.timing.verify_s)?;
    seconds("timing.output_s".into(), r.timing.output_s)?;
    for row in &r.per_rank {
        for (field, v) in [("compute_s", row.compute_s), ("comm_s", row.comm_s), ("pack_s", row.pack_s)] {
            seconds(format!("rank {}'s {field}", row.rank), v)?;
        }
        if row.threads == 0 || row.threads > MAX_RANK_THREADS || row.node_cores > MAX_RANK_THREADS {
            return Err(format!(
                "{name}: rank {} says it ran {} threads on a node of {} cores; a rank runs 1 to {MAX_RANK_THREADS}",
                row.rank, row.threads, row.node_cores
            ));
        }
    }
    Ok(())
}

/// A part: its file's name, its report, what it says about itself (checked
/// by [`check_part`]) and its tally.
type Part<'a> = (&'a str, &'a Report, &'a Partial, i128);

/// Merges named partial reports into the whole job's report.
pub fn merge(mut parts: Vec<(String, Report)>) -> Result<Report, MergeError> {
    if parts.is_empty() {
        return Err(MergeError::Usage("no parts to merge".into()));
    }
    let mut partials: Vec<(Partial, i128)> = Vec::with_capacity(parts.len());
    for (name, r) in &parts {
        partials.push(check_part(name, r).map_err(MergeError::Usage)?);
    }
    let checked: Vec<Part> = parts.iter().zip(&partials).map(|((n, r), (p, t))| (n.as_str(), r, p, *t)).collect();
    check_one_job(&checked).map_err(MergeError::Usage)?;
    check_complete(&checked).map_err(MergeError::Usage)?;
    let finished = finish(&checked)?;
    let count = checked[0].2.count;

    // Parts in rank order of part index; ranks renumbered across parts.
    parts.sort_by_key(|(_, r)| r.partial.as_ref().map(|p| p.index));
    let mut per_rank: Vec<RankRow> = Vec::new();
    let mut hosts = Vec::new();
    for (_, r) in &parts {
        for row in &r.per_rank {
            per_rank.push(RankRow { rank: per_rank.len(), ..row.clone() });
            hosts.push(row.host.clone());
        }
    }
    // The parts of an Indexed Job run at the same time: the job took as long as its slowest part.
    let wall_s = parts.iter().map(|(_, r)| r.timing.wall_s).fold(0.0, f64::max);
    let first = &parts[0].1;
    Ok(Report::assemble(Assembly {
        kernel: first.kernel.clone(),
        params: first.params.clone(),
        comm: first.comm,
        hosts,
        per_rank,
        finished: Finished {
            verification: format!("{} (merged from {count} parts)", finished.verification),
            output_s: 0.0,
            ..finished
        },
        wall_s,
        build: first.build.clone(),
        partial: None,
        checkpoint: None,
        // A part that lost a rank finished its units all the same; its own
        // report names the rank.
        lost: Vec::new(),
    }))
}

/// Every part belongs to the first's job: kernel, parameters, version, cut.
fn check_one_job(parts: &[Part]) -> Result<(), String> {
    let (first_name, first, first_part, _) = parts[0];
    for &(name, r, p, _) in parts {
        if r.kernel != first.kernel || r.params != first.params {
            return Err(format!(
                "{name} is a part of `{} {}`, but {first_name} of `{} {}`: parts of different jobs",
                r.kernel, r.params, first.kernel, first.params
            ));
        }
        if r.build.version != first.build.version {
            return Err(format!(
                "{name} comes from pikernels {}, {first_name} from {}: merge parts of one version",
                r.build.version, first.build.version
            ));
        }
        if p.count != first_part.count || p.total_units != first_part.total_units {
            return Err(format!(
                "{name} is part {} of {} ({} units), {first_name} part {} of {} ({} units)",
                p.index, p.count, p.total_units, first_part.index, first_part.count, first_part.total_units
            ));
        }
    }
    Ok(())
}

/// Every part of the cut is given exactly once.
fn check_complete(parts: &[Part]) -> Result<(), String> {
    let count = parts[0].2.count;
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for &(name, _, p, _) in parts {
        if let Some(other) = seen.insert(p.index, name) {
            return Err(format!("part {} of {count} is given twice: {other} and {name}", p.index));
        }
    }
    let missing_count = count - seen.len() as u64;
    if missing_count == 0 {
        return Ok(());
    }
    let named: Vec<String> =
        (0..count).filter(|i| !seen.contains_key(i)).take(MISSING_NAMED).map(|i| i.to_string()).collect();
    let more = missing_count - named.len() as u64;
    Err(format!(
        "the job has {count} parts, but part{} {}{} {} missing",
        if missing_count == 1 { "" } else { "s" },
        named.join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() },
        if missing_count == 1 { "is" } else { "are" }
    ))
}

/// The job rebuilt from the parts' parameters, their tallies checked
/// against it and added, and the job finished as a single run finishes.
fn finish(parts: &[Part]) -> Result<Finished, MergeError> {
    let usage = MergeError::Usage;
    let (first_name, first, first_part, _) = parts[0];
    let rebuilt = partial::from_params(&first.kernel, &first.params)?;
    let Some(job) = rebuilt.partitionable() else {
        return Err(usage(format!(
            "{first_name} is a part of {}, which cannot be computed in parts and merged (only {})",
            first.kernel,
            crate::jobs::partitionable_kernels().join(" and ")
        )));
    };
    if job.params() != first.params {
        return Err(usage(format!(
            "the parts' params {} are not those of a {} job: this build describes that job as {}",
            first.params,
            first.kernel,
            job.params()
        )));
    }
    if job.units() != first_part.total_units {
        return Err(usage(format!(
            "the parts say the job has {} units, but `{} {}` has {} in this build",
            first_part.total_units,
            first.kernel,
            first.params,
            job.units()
        )));
    }
    let mut tally = Tally::default();
    for &(name, _, p, t) in parts {
        let bounds = job.tally_bounds(p.first_unit..p.end_unit).ok_or_else(|| {
            usage(format!("{name} is a part of {}, whose tallies have no known bounds", first.kernel))
        })?;
        if !bounds.contains(&t) {
            return Err(usage(format!(
                "{name}: the tally {t} is impossible for units {}..{} of `{} {}` (it lies between {} and {})",
                p.first_unit,
                p.end_unit,
                first.kernel,
                first.params,
                bounds.start(),
                bounds.end()
            )));
        }
        tally.0 = tally.0.checked_add(t).ok_or_else(|| usage("the parts' tallies overflow".into()))?;
    }
    job.finish(tally, Vec::new()).map_err(MergeError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Build, Spread, Throughput, Timing};
    use crate::spmd::Comm;
    use kernels::pi_mc;
    use serde_json::json;

    /// The report a `pi-mc --partition index/count` run would write.
    fn part(samples: u64, seed: u64, index: u64, count: u64) -> (String, Report) {
        let total = pi_mc::units(samples);
        let units = partition::block_range(total, count, index);
        let tally = pi_mc::count_inside(seed, samples, units.clone());
        report_of("pi-mc", json!({ "samples": samples, "seed": seed }), index, count, total, tally)
    }

    /// The report a `leibniz --partition index/count` run would write.
    fn leibniz_part(terms: u64, index: u64, count: u64) -> (String, Report) {
        let total = kernels::leibniz::units(terms);
        let units = partition::block_range(total, count, index);
        let tally = kernels::leibniz::sum_units(terms, units);
        report_of("leibniz", json!({ "terms": terms }), index, count, total, tally)
    }

    /// A part's report, through JSON as the files travel.
    fn report_of(kernel: &str, params: Value, index: u64, count: u64, total: u64, tally: Tally) -> (String, Report) {
        let units = partition::block_range(total, count, index);
        let row = RankRow {
            rank: 0,
            host: format!("pod-{index}"),
            threads: 1,
            units: 0,
            chunks: 1,
            compute_s: 0.1,
            comm_s: 0.0,
            pack_s: 0.0,
            node_cores: 1,
        };
        let report = Report {
            schema_version: SCHEMA_VERSION,
            kernel: kernel.into(),
            params,
            ranks: 1,
            threads_per_rank: 1,
            comm: Comm::Collective,
            hosts: vec![row.host.clone()],
            result: json!({}),
            verified: false,
            verification: "a part".into(),
            timing: Timing {
                wall_s: 0.1,
                compute_s: Spread::of(vec![0.1]),
                comm_s: Spread::of(vec![0.0]),
                pack_s: Spread::of(vec![0.0]),
                verify_s: 0.0,
                output_s: 0.0,
            },
            throughput: Throughput { item: "samples".into(), count: 0.0, per_s: 0.0, per_core_per_s: 0.0 },
            per_rank: vec![row],
            nodes: Vec::new(),
            cores_used: 1,
            oversubscribed: false,
            build: Build::current(kernel, None),
            partial: Some(Partial {
                index,
                count,
                first_unit: units.start,
                end_unit: units.end,
                total_units: total,
                tally: tally.0.to_string(),
            }),
            checkpoint: None,
            lost: Vec::new(),
        };
        let text = serde_json::to_string(&report).unwrap();
        (format!("part-{index}.json"), serde_json::from_str(&text).unwrap())
    }

    /// Three parts of a small pi-mc job, the first edited by `edit`: the
    /// refusal's message, which must name the edited part.
    fn refused(edit: impl FnOnce(&mut Report)) -> String {
        let mut parts: Vec<_> = (0..3).map(|i| part(500_000, 7, i, 3)).collect();
        edit(&mut parts[0].1);
        match merge(parts) {
            Err(MergeError::Usage(m)) => m,
            Err(MergeError::Failed(e)) => panic!("an edited part failed as a run would (exit 1): {e:#}"),
            Ok(_) => panic!("an edited part was merged"),
        }
    }

    fn edit_partial(r: &mut Report, f: impl FnOnce(&mut Partial)) {
        f(r.partial.as_mut().unwrap());
    }

    #[test]
    fn impossible_part_numbers_are_refused_before_anything_is_sized_by_them() {
        for (count, phrase) in
            [(0, "1 to 1048576"), (1_000_000_000_000_000, "1 to 1048576"), (u64::MAX, "1 to 1048576")]
        {
            let m = refused(|r| edit_partial(r, |p| p.count = count));
            assert!(m.contains("part-0.json") && m.contains(phrase), "count {count}: {m}");
        }
        let m = refused(|r| edit_partial(r, |p| p.index = 9));
        assert!(m.contains("part-0.json") && m.contains("part 9 of 3"), "{m}");
        // Consistent with itself but not with the others: a different cut.
        let m = refused(|r| {
            let (_, other) = part(500_000, 7, 0, 2);
            *r = other;
        });
        assert!(m.contains("part-0.json") && m.contains("part 0 of 2"), "{m}");
    }

    #[test]
    fn times_and_thread_counts_must_be_sane() {
        let m = refused(|r| r.timing.wall_s = -1.0);
        assert!(m.contains("part-0.json: timing.wall_s is -1e0 s") && m.contains("between 0 and"), "{m}");
        let m = refused(|r| r.per_rank[0].compute_s = 1e308);
        assert!(m.contains("rank 0's compute_s is 1e308 s"), "{m}");
        let m = refused(|r| r.timing.output_s = f64::MAX);
        assert!(m.contains("timing.output_s"), "{m}");
        let m = refused(|r| r.per_rank[0].threads = u64::MAX);
        assert!(m.contains("rank 0 says it ran 18446744073709551615 threads"), "{m}");
        let m = refused(|r| r.per_rank[0].threads = 0);
        assert!(m.contains("ran 0 threads"), "{m}");
    }

    #[test]
    fn unit_ranges_must_be_the_parts_own() {
        let m = refused(|r| edit_partial(r, |p| p.first_unit += 1));
        assert!(m.contains("part-0.json") && m.contains("claims units 1..3"), "{m}");
        let m = refused(|r| edit_partial(r, |p| p.end_unit = u64::MAX));
        assert!(m.contains("part-0.json") && m.contains("claims units"), "{m}");
        let m = refused(|r| edit_partial(r, |p| p.total_units += 1));
        assert!(m.contains("part-0.json"), "{m}");
        // Every part agrees on another total, cut as block_range cuts it: the
        // rebuilt job has a different number of units.
        let mut parts: Vec<_> = (0..3).map(|i| part(500_000, 7, i, 3)).collect();
        for (_, r) in &mut parts {
            edit_partial(r, |p| {
                let units = partition::block_range(100, 3, p.index);
                (p.first_unit, p.end_unit, p.total_units) = (units.start, units.end, 100);
            });
        }
        let Err(MergeError::Usage(m)) = merge(parts) else { panic!("a part of another size was merged") };
        assert!(m.contains("the parts say the job has 100 units") && m.contains("8 in this build"), "{m}");
    }

    #[test]
    fn tallies_must_be_possible_for_the_parts_units() {
        // Part 0 of 3 of 500,000 samples: units 0..3, 196,608 samples.
        let m = refused(|r| edit_partial(r, |p| p.tally = "196609".into()));
        assert!(m.contains("part-0.json") && m.contains("tally 196609 is impossible") && m.contains("196608"), "{m}");
        let m = refused(|r| edit_partial(r, |p| p.tally = "-1".into()));
        assert!(m.contains("part-0.json") && m.contains("tally -1 is impossible"), "{m}");
        let m = refused(|r| edit_partial(r, |p| p.tally = "1e5".into()));
        assert!(m.contains("part-0.json") && m.contains("not an integer"), "{m}");
        let m = refused(|r| edit_partial(r, |p| p.tally = "170141183460469231731687303715884105728".into()));
        assert!(m.contains("part-0.json") && m.contains("beyond what any part can hold"), "beyond i128: {m}");
        let mut parts: Vec<_> = (0..2).map(|i| leibniz_part(300_000, i, 2)).collect();
        edit_partial(&mut parts[1].1, |p| p.tally = (1i128 << 101).to_string());
        let Err(MergeError::Usage(m)) = merge(parts) else { panic!("a leibniz part summing to 2 was merged") };
        assert!(m.contains("part-1.json") && m.contains("impossible"), "{m}");
    }

    #[test]
    fn honest_leibniz_tallies_lie_within_their_bounds() {
        for (terms, count) in [(1u64, 1u64), (1, 3), (300_000, 2), (1_000_003, 5), (65_536 * 7, 7)] {
            let parts: Vec<_> = (0..count).map(|i| leibniz_part(terms, i, count)).collect();
            let merged = merge(parts).unwrap_or_else(|e| panic!("terms {terms}, {count} parts: {e:?}"));
            assert!(merged.verified, "terms {terms}");
        }
        // Single units across the largest job, including its last, short one.
        let job = partial::from_params("leibniz", &json!({ "terms": kernels::leibniz::MAX_TERMS - 5 })).unwrap();
        let job = job.partitionable().expect("leibniz is partitionable");
        let n = job.units();
        for u in [0, 1, 2, 1000, n / 2, n - 2, n - 1] {
            let t = job.compute(u..u + 1, &mut []);
            let bounds = job.tally_bounds(u..u + 1).unwrap();
            assert!(bounds.contains(&t.0), "unit {u}: {} outside {bounds:?}", t.0);
            assert!(t.0 > 0, "unit {u}: a unit's sum is positive");
        }
        assert_eq!(job.tally_bounds(n..n), Some(0..=0), "an empty part sums to nothing");
    }

    #[test]
    fn reports_that_are_not_parts_of_this_build_are_refused() {
        let m = refused(|r| r.schema_version = 7);
        assert!(
            m.contains("part-0.json") && m.contains("schema version 7") && m.contains("reads schema version 1"),
            "{m}"
        );
        let m = refused(|r| r.partial = None);
        assert!(m.contains("part-0.json") && m.contains("whole run"), "{m}");
        let m = refused(|r| r.per_rank.clear());
        assert!(m.contains("part-0.json") && m.contains("0 per-rank rows"), "{m}");
        let m = refused(|r| r.build.version = "0.0.1".into());
        assert!(m.contains("part-0.json") && m.contains("0.0.1"), "{m}");
        // Params the CLI accepts but that are not the job's own.
        let mut parts: Vec<_> = (0..3).map(|i| part(500_000, 7, i, 3)).collect();
        for (_, r) in &mut parts {
            r.params["threads"] = json!(1);
        }
        let Err(MergeError::Usage(m)) = merge(parts) else { panic!("params with a stray key were merged") };
        assert!(m.contains("are not those of a pi-mc job"), "{m}");
        // A kernel that cannot be partitioned: refused before its finish could write anything.
        let parts = vec![report_of("mandelbrot", json!({ "width": 8, "height": 8 }), 0, 1, 8, Tally(0))];
        let Err(MergeError::Usage(m)) = merge(parts) else { panic!("a mandelbrot part was merged") };
        assert!(m.contains("part-0.json") && m.contains("cannot be computed in parts"), "{m}");
    }

    #[test]
    fn part_files_are_read_with_a_size_guard_and_their_schema_first() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_PART_BYTES as usize + 1]).unwrap();
        let m = read_part(&big).unwrap_err();
        assert!(m.contains("big.json") && m.contains("larger than 16.0 MiB"), "{m}");
        // A report of another schema is named as such even if its layout differs.
        let m = parse_part("v2.json", br#"{"schema_version": 2, "kernel": 5}"#).unwrap_err();
        assert!(m.contains("v2.json") && m.contains("schema version 2") && m.contains("reads schema version 1"), "{m}");
        let m = parse_part("x.json", br#"{"kernel": "pi-mc"}"#).unwrap_err();
        assert!(m.contains("x.json") && m.contains("no schema_version"), "{m}");
        let m = parse_part("t.json", b"pi = 3.14").unwrap_err();
        assert!(m.contains("t.json") && m.contains("not a JSON report"), "{m}");
        // A part as written survives the reading.
        let (_, r) = part(1000, 1, 0, 1);
        let good = dir.path().join("good.json");
        std::fs::write(&good, serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(read_part(&good).unwrap().partial, r.partial);
    }

    #[test]
    fn many_missing_parts_are_counted_not_listed() {
        let mut parts: Vec<_> = (0..2).map(|i| part(500_000, 7, i, 2)).collect();
        for (_, r) in &mut parts {
            edit_partial(r, |p| {
                p.count = 1000;
                let units = partition::block_range(p.total_units, 1000, p.index);
                (p.first_unit, p.end_unit) = (units.start, units.end);
            });
        }
        // Units 0..8 cut into 1000 parts: parts 0 and 1 hold one unit each, the tallies stay possible.
        for (_, r) in &mut parts {
            edit_partial(r, |p| p.tally = "0".into());
        }
        let Err(MergeError::Usage(m)) = merge(parts) else { panic!("an incomplete set was merged") };
        assert!(m.contains("parts 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 988 more are missing"), "{m}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        #[test]
        fn merged_parts_equal_the_whole_in_any_order(
            samples in 1u64..400_000,
            seed in 0u64..1000,
            count in 1u64..9,
            rotate in 0usize..9,
        ) {
            let mut parts: Vec<_> = (0..count).map(|i| part(samples, seed, i, count)).collect();
            let shift = rotate % parts.len();
            parts.rotate_left(shift);
            let merged = merge(parts).unwrap_or_else(|_| panic!("merge refused a complete set"));
            let whole = pi_mc::count_inside_seq(seed, samples);
            proptest::prop_assert_eq!(merged.result["hits"].as_u64(), Some(whole));
            proptest::prop_assert_eq!(merged.ranks as u64, count);
        }

        #[test]
        fn an_incomplete_or_doubled_set_is_refused(samples in 1u64..200_000, count in 2u64..6, drop in 0u64..6) {
            let mut parts: Vec<_> = (0..count).map(|i| part(samples, 1, i, count)).collect();
            let gone = parts.remove((drop % count) as usize);
            proptest::prop_assert!(matches!(merge(parts.clone()), Err(MergeError::Usage(_))));
            parts.push(parts[0].clone());
            parts.push(gone);
            proptest::prop_assert!(matches!(merge(parts), Err(MergeError::Usage(_))));
        }
    }
}
