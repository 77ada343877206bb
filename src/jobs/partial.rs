//! Partial runs (`--partition INDEX/COUNT`) and rebuilding a job from a
//! report's parameters (for `pikernels merge`).
//!
//! A Kubernetes Indexed Job runs one pod per part without MPI between them;
//! each computes the units `kernels::partition::block_range(units, COUNT,
//! INDEX)` and reports its exact tally. Because tallies add exactly, the sum
//! of the parts' tallies is bit for bit the tally one run over all units
//! gives, and `merge` verifies and reports it as that run would.

use super::Common;
use super::{Finished, Job, UnitJob, UsageError};
use crate::args::Partition;
use crate::report::Partial;
use kernels::{partition, Tally};
use serde_json::Value;
use std::ops::Range;

/// Rejects `--partition` for kernels whose parts cannot be merged.
pub fn check(kernel: &str, job: &Job, common: &Common) -> Result<(), UsageError> {
    match common.partition {
        Some(p) if job.partitionable().is_none() => Err(UsageError(format!(
            "{kernel} does not support --partition {}/{}: only kernels whose whole result is an exact tally \
             ({}) can be computed in parts and merged",
            p.index,
            p.count,
            super::partitionable_kernels().join(", ")
        ))),
        _ => Ok(()),
    }
}

/// The units this run computes: all of them, or its part's.
pub fn units(job: &dyn UnitJob, part: Option<Partition>) -> Range<u64> {
    match part {
        Some(p) => partition::block_range(job.units(), p.count, p.index),
        None => 0..job.units(),
    }
}

/// Rank 0's account of a partial run: no verification (a part alone cannot
/// be checked against pi), the exact tally for `merge`.
pub fn finished(part: Partition, range: &Range<u64>, total_units: u64, tally: Tally) -> (Finished, Partial) {
    let partial = Partial {
        index: part.index,
        count: part.count,
        first_unit: range.start,
        end_unit: range.end,
        total_units,
        tally: tally.0.to_string(),
    };
    let finished = Finished {
        result: serde_json::to_value(&partial).expect("a partial serialises"),
        verified: false,
        verification: format!(
            "partial run, part {} of {} numbered from 0 (units {}..{} of {}): checked only when `pikernels merge` combines all parts",
            part.index, part.count, range.start, range.end, total_units
        ),
        item: ("units", (range.end - range.start) as f64),
        bytes_per_item: None,
        verify_s: 0.0,
        output_s: 0.0,
        outputs: Vec::new(),
    };
    (finished, partial)
}

/// The job a report's `kernel` and `params` describe, built through the same
/// command-line parsing and validation as a run (every parameter becomes
/// `--name value`).
pub fn from_params(kernel: &str, params: &Value) -> Result<Job, UsageError> {
    let map =
        params.as_object().ok_or_else(|| UsageError(format!("the report's params are not an object: {params}")))?;
    let mut argv = vec!["pikernels".to_string(), kernel.to_string()];
    for (name, value) in map {
        argv.push(format!("--{}", name.replace('_', "-")));
        argv.push(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    let kernel = super::parse(&argv).map_err(|e| match e.kind() {
        clap::error::ErrorKind::InvalidSubcommand => UsageError(format!("`{kernel}` is not a kernel")),
        kind => UsageError(format!("cannot rebuild the job `{}`: {kind}", argv[1..].join(" "))),
    })?;
    super::from_cli(&kernel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_are_rebuilt_from_their_params() {
        let job = from_params("pi-mc", &json!({"samples": 1_000_000, "seed": 9})).unwrap();
        assert_eq!(job.params(), json!({"samples": 1_000_000, "seed": 9}));
        let job = from_params("leibniz", &json!({"terms": 12345})).unwrap();
        assert_eq!(job.params(), json!({"terms": 12345}));
        assert!(from_params("leibniz", &json!({"terms": 0})).is_err());
        assert!(from_params("nope", &json!({})).is_err());
    }

    #[test]
    fn parts_tile_the_units_and_their_tallies_sum_to_the_whole() {
        let job = from_params("leibniz", &json!({"terms": 1_000_003})).unwrap();
        let job = job.partitionable().expect("leibniz is partitionable");
        let whole = job.compute(0..job.units(), &mut []);
        let mut next = 0;
        let mut sum = Tally::default();
        for index in 0..5 {
            let r = units(job, Some(Partition { index, count: 5 }));
            assert_eq!(r.start, next);
            next = r.end;
            let t = job.compute(r.clone(), &mut []);
            let (_, p) = finished(Partition { index, count: 5 }, &r, job.units(), t);
            sum += Tally(p.tally.parse().unwrap());
        }
        assert_eq!(next, job.units());
        assert_eq!(sum, whole, "parts add up exactly");
    }
}
