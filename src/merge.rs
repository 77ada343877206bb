//! `pikernels merge`: combines the partial reports of `--partition I/N`
//! runs (e.g. the pods of a Kubernetes Indexed Job) into the report one run
//! over all units would give.
//!
//! The parts' tallies are exact integers, so their sum is bit for bit the
//! whole job's tally; the job is rebuilt from the reports' parameters and
//! finished (verified) exactly as a single run finishes. No MPI is involved.

use crate::cli::MergeArgs;
use crate::jobs::{partial, UsageError, EXIT_FAILURE, EXIT_UNVERIFIED, EXIT_USAGE};
use crate::output;
use crate::report::{Partial, RankRow, Report, Spread, Throughput, Timing};
use anyhow::{Context, Result};
use kernels::{partition, Tally};
use std::path::Path;
use std::process::ExitCode;

/// Runs `pikernels merge`.
pub fn run(args: &MergeArgs) -> ExitCode {
    let parts = match read_parts(&args.parts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pikernels merge: error: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(path) = &args.report {
        let mut files: Vec<output::FileUse> = args.parts.iter().map(|p| output::FileUse::reads("PART", p)).collect();
        files.push(output::FileUse::writes("--report", path));
        if let Err(e) = output::check_distinct(&files) {
            eprintln!("pikernels merge: error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        if let Err(e) = output::check_writable(path, "report") {
            eprintln!("pikernels merge: error: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let report = match merge(parts) {
        Ok(r) => r,
        Err(MergeError::Usage(e)) => {
            eprintln!("pikernels merge: error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(MergeError::Failed(e)) => {
            eprintln!("pikernels merge: error: {e:#}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let rendered = report.render(args.format);
    print!("{rendered}");
    if let Some(path) = &args.report {
        if let Err(e) = output::write_text(path, &rendered) {
            eprintln!("pikernels merge: error: {e:#}");
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    if report.verified {
        ExitCode::SUCCESS
    } else {
        eprintln!("pikernels merge: verification FAILED: {}", report.verification);
        ExitCode::from(EXIT_UNVERIFIED)
    }
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

fn read_parts(paths: &[std::path::PathBuf]) -> Result<Vec<(String, Report)>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            let report: Report = serde_json::from_str(&text).with_context(|| {
                format!("{} is not a JSON report of pikernels (run the parts with --format json)", p.display())
            })?;
            Ok((name(p), report))
        })
        .collect()
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

/// Merges named partial reports into the whole job's report.
pub fn merge(mut parts: Vec<(String, Report)>) -> Result<Report, MergeError> {
    let usage = |m: String| MergeError::Usage(m);
    let mut partials: Vec<Partial> = Vec::with_capacity(parts.len());
    for (name, r) in &parts {
        let p = r.partial.clone().ok_or_else(|| {
            usage(format!("{name} is the report of a whole run, not of a part (run the parts with --partition I/N)"))
        })?;
        partials.push(p);
    }
    let (first_name, first) = (&parts[0].0, &parts[0].1);
    let first_part = &partials[0];
    for ((name, r), p) in parts.iter().zip(&partials) {
        if r.kernel != first.kernel || r.params != first.params {
            return Err(usage(format!(
                "{name} is a part of `{} {}`, but {first_name} of `{} {}`: parts of different jobs",
                r.kernel, r.params, first.kernel, first.params
            )));
        }
        if r.build.version != first.build.version || r.schema_version != first.schema_version {
            return Err(usage(format!(
                "{name} comes from pikernels {}, {first_name} from {}: merge parts of one version",
                r.build.version, first.build.version
            )));
        }
        if p.count != first_part.count || p.total_units != first_part.total_units {
            return Err(usage(format!(
                "{name} is part {} of {} ({} units), {first_name} part {} of {} ({} units)",
                p.index, p.count, p.total_units, first_part.index, first_part.count, first_part.total_units
            )));
        }
        let expected = partition::block_range(p.total_units, p.count, p.index);
        if (p.first_unit, p.end_unit) != (expected.start, expected.end) {
            return Err(usage(format!(
                "{name} claims units {}..{} for part {} of {}, but that part is {}..{}",
                p.first_unit, p.end_unit, p.index, p.count, expected.start, expected.end
            )));
        }
    }
    let count = first_part.count;
    let mut seen = vec![None::<&str>; count as usize];
    for ((name, _), p) in parts.iter().zip(&partials) {
        if let Some(other) = seen[p.index as usize].replace(name) {
            return Err(usage(format!("part {} of {count} is given twice: {other} and {name}", p.index)));
        }
    }
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(usage(format!(
            "the job has {count} parts, but part{} {} {} missing",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        )));
    }

    let mut tally = Tally::default();
    for ((name, _), p) in parts.iter().zip(&partials) {
        let t: i128 = p.tally.parse().map_err(|_| usage(format!("{name}: tally '{}' is not an integer", p.tally)))?;
        tally.0 = tally.0.checked_add(t).ok_or_else(|| usage("the parts' tallies overflow".into()))?;
    }

    let job = partial::from_params(&first.kernel, &first.params)?;
    if job.units() != first_part.total_units {
        return Err(usage(format!(
            "the parts say the job has {} units, but `{} {}` has {} in this build",
            first_part.total_units,
            first.kernel,
            first.params,
            job.units()
        )));
    }
    let finished = job.finish(tally, Vec::new()).map_err(MergeError::Failed)?;

    // Parts in rank order of part index; ranks renumbered across parts.
    parts.sort_by_key(|(_, r)| r.partial.as_ref().map(|p| p.index));
    let mut per_rank: Vec<RankRow> = Vec::new();
    let mut hosts = Vec::new();
    for (_, r) in &parts {
        for row in &r.per_rank {
            per_rank.push(RankRow { rank: per_rank.len(), ..row.clone() });
        }
        hosts.extend(r.hosts.iter().cloned());
    }
    // The parts of an Indexed Job run at the same time: the job took as long as its slowest part.
    let wall_s = parts.iter().map(|(_, r)| r.timing.wall_s).fold(0.0, f64::max);
    let core_seconds: f64 = per_rank.iter().map(|r| r.compute_s * r.threads as f64).sum();
    let (item, n) = finished.item;
    let rate = |s: f64| if s > 0.0 { n / s } else { 0.0 };
    let first = &parts[0].1;
    Ok(Report {
        schema_version: first.schema_version,
        kernel: first.kernel.clone(),
        params: first.params.clone(),
        ranks: per_rank.len(),
        threads_per_rank: per_rank.iter().map(|r| r.threads as usize).max().unwrap_or(1),
        comm: first.comm,
        hosts,
        result: finished.result,
        verified: finished.verified,
        verification: format!("{} (merged from {count} parts)", finished.verification),
        timing: Timing {
            wall_s,
            compute_s: Spread::of(per_rank.iter().map(|r| r.compute_s).collect()),
            comm_s: Spread::of(per_rank.iter().map(|r| r.comm_s).collect()),
            verify_s: finished.verify_s,
            output_s: 0.0,
        },
        throughput: Throughput { item: item.into(), count: n, per_s: rate(wall_s), per_core_per_s: rate(core_seconds) },
        per_rank,
        build: first.build.clone(),
        partial: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Build, SCHEMA_VERSION};
    use crate::spmd::Comm;
    use kernels::pi_mc;
    use serde_json::json;

    /// The report a `pi-mc --partition index/count` run would write.
    fn part(samples: u64, seed: u64, index: u64, count: u64) -> (String, Report) {
        let total = pi_mc::units(samples);
        let units = partition::block_range(total, count, index);
        let tally = pi_mc::count_inside(seed, samples, units.clone());
        let row = RankRow {
            rank: 0,
            host: format!("pod-{index}"),
            threads: 1,
            units: 0,
            chunks: 1,
            compute_s: 0.1,
            comm_s: 0.0,
        };
        let report = Report {
            schema_version: SCHEMA_VERSION,
            kernel: "pi-mc".into(),
            params: json!({ "samples": samples, "seed": seed }),
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
                verify_s: 0.0,
                output_s: 0.0,
            },
            throughput: Throughput { item: "samples".into(), count: 0.0, per_s: 0.0, per_core_per_s: 0.0 },
            per_rank: vec![row],
            build: Build::current(),
            partial: Some(Partial {
                index,
                count,
                first_unit: units.start,
                end_unit: units.end,
                total_units: total,
                tally: tally.0.to_string(),
            }),
        };
        // Through JSON, as the files travel.
        let text = serde_json::to_string(&report).unwrap();
        (format!("part-{index}.json"), serde_json::from_str(&text).unwrap())
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
