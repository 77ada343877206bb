//! `pikernels pi-mc`: Monte Carlo pi.

use super::examples::{Example, Examples};
use super::{no_file_output, timed, Finished, Job, UnitJob, UsageError};
use super::Common;
use crate::size::Size;
use anyhow::{anyhow, Result};
use kernels::{pi_mc, Tally};
use serde_json::{json, Value};
use std::f64::consts::PI;
use std::ops::{Range, RangeInclusive};

/// How many standard errors from pi an estimate may be and still pass.
pub const SIGMAS: f64 = 5.0;

/// Default Monte Carlo samples (`--samples`).
pub const DEFAULT_SAMPLES: u64 = 1_000_000_000;

/// Runs of `pi-mc` for the scripts and benchmarks that cover every kernel.
pub const EXAMPLES: Examples = Examples {
    output: None,
    small: &[Example { label: "", args: &["--samples", "2e8", "--seed", "7"] }],
    bench: &[Example { label: "", args: &["--samples", "1e9"] }],
    simd_paths: true,
    no_small_because: None,
    run_keys: &[],
};

/// Options of `pi-mc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of random points, e.g. 1e9, 250M, 4G.
    #[arg(long, short = 'n', value_name = "N", allow_hyphen_values = true, default_value_t = Size(DEFAULT_SAMPLES))]
    pub samples: Size,
    #[command(flatten)]
    pub common: Common,
}

/// The job `a` describes.
pub fn job(a: &Args) -> Result<Job, UsageError> {
    Ok(Job::units(PiMc::new(a)?))
}

pub struct PiMc {
    samples: u64,
    seed: u64,
}

impl PiMc {
    pub fn new(a: &Args) -> Result<PiMc, UsageError> {
        no_file_output("pi-mc", &a.common)?;
        if a.samples.0 == 0 {
            return Err(UsageError("--samples must be at least 1".into()));
        }
        Ok(PiMc { samples: a.samples.0, seed: a.common.seed })
    }
}

impl UnitJob for PiMc {
    /// The tally is the whole result: parts may be computed apart and merged.
    fn tally_bounds(&self, units: Range<u64>) -> Option<RangeInclusive<i128>> {
        // Each sample of the units is a hit or not.
        let at = |u: u64| u.saturating_mul(pi_mc::UNIT).min(self.samples);
        Some(0..=i128::from(at(units.end) - at(units.start)))
    }

    fn params(&self) -> Value {
        json!({ "samples": self.samples, "seed": self.seed })
    }

    fn implementation(&self) -> Option<&'static str> {
        Some(pi_mc::implementation())
    }

    fn units(&self) -> u64 {
        pi_mc::units(self.samples)
    }

    fn compute(&self, units: Range<u64>, _out: &mut [u8]) -> Tally {
        pi_mc::count_inside(self.seed, self.samples, units)
    }

    fn finish(&self, tally: Tally, _data: Vec<u8>) -> Result<Finished> {
        let (checked, verify_s) = timed(|| {
            let hits = tally.to_count().filter(|&h| h <= self.samples);
            hits.map(|h| {
                let pi = pi_mc::estimate(h, self.samples);
                (h, pi, pi - PI, pi_mc::standard_error(self.samples))
            })
        });
        let (hits, pi, err, se) = checked
            .ok_or_else(|| anyhow!("the ranks' hit counts add up to {} for {} samples", tally.0, self.samples))?;
        let verified = err.abs() <= SIGMAS * se;
        Ok(Finished {
            result: json!({
                "pi": pi,
                "abs_error": err.abs(),
                "hits": hits,
                "std_error": se,
                "error_in_std_errors": err / se,
            }),
            verified,
            verification: format!(
                "estimate is {:.2} standard errors from pi (limit {SIGMAS}); hits counted exactly",
                (err / se).abs()
            ),
            item: ("samples", self.samples as f64),
            bytes_per_item: None,
            verify_s,
            output_s: 0.0,
            outputs: Vec::new(),
        })
    }
}
