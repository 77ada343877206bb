//! `pikernels leibniz`: the Leibniz series for pi.

use super::examples::{Example, Examples};
use super::{no_file_output, timed, Finished, Job, UnitJob, UsageError};
use super::Common;
use crate::size::Size;
use anyhow::Result;
use kernels::{leibniz, Tally};
use serde_json::{json, Value};
use std::f64::consts::PI;
use std::ops::{Range, RangeInclusive};

/// Rounding allowance added to the truncation bound: the blocked sum's own
/// floating-point error stays far below it for any supported term count.
const ROUNDING: f64 = 1e-14;

/// What a unit's floating-point sum may differ from its exact value by, for
/// [`UnitJob::tally_bounds`], in tally units: 2^-40, far above the error of a
/// few hundred rounded additions (below 1e-14 for the first unit, whose sum
/// is about pi/4, and less for the later, smaller ones).
const UNIT_SLACK: i128 = 1 << (Tally::FRACTION_BITS - 40);

/// Default Leibniz terms (`--terms`).
pub const DEFAULT_TERMS: u64 = 1_000_000_000;

/// Runs of `leibniz` for the scripts and benchmarks that cover every kernel.
pub const EXAMPLES: Examples = Examples {
    output: None,
    small: &[Example { label: "", args: &["--terms", "1e8"] }],
    bench: &[Example { label: "", args: &["--terms", "2e9"] }],
    simd_paths: true,
    no_small_because: None,
    run_keys: &[],
};

/// Options of `leibniz`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of series terms, e.g. 1e9, 10G.
    #[arg(long, short = 'n', value_name = "N", allow_hyphen_values = true, default_value_t = Size(DEFAULT_TERMS))]
    pub terms: Size,
    #[command(flatten)]
    pub common: Common,
}

/// The job `a` describes.
pub fn job(a: &Args) -> Result<Job, UsageError> {
    Ok(Job::units(Leibniz::new(a)?))
}

pub struct Leibniz {
    terms: u64,
}

impl Leibniz {
    pub fn new(a: &Args) -> Result<Leibniz, UsageError> {
        no_file_output("leibniz", &a.common)?;
        match a.terms.0 {
            0 => Err(UsageError("--terms must be at least 1".into())),
            n if n > leibniz::MAX_TERMS => Err(UsageError(format!(
                "--terms {} is more than the supported {} (2^50): beyond it the f64 denominators lose exactness",
                Size(n),
                leibniz::MAX_TERMS
            ))),
            n => Ok(Leibniz { terms: n }),
        }
    }
}

impl UnitJob for Leibniz {
    /// The tally is the whole result: parts may be computed apart and merged.
    fn tally_bounds(&self, units: Range<u64>) -> Option<RangeInclusive<i128>> {
        let at = |u: u64| u.saturating_mul(leibniz::UNIT).min(self.terms);
        let (first, end) = (at(units.start), at(units.end));
        if first >= end {
            return Some(0..=0); // no terms: an empty sum
        }
        // Terms first..end alternate in sign from a positive one (units start
        // at even terms) and shrink, so their exact sum lies in
        // [0, 1/(2 first + 1)]. Each unit's sum adds its floating-point error
        // and its rounding to fixed point.
        let slack = i128::from(units.end - units.start) * (UNIT_SLACK + 1);
        let first_term = (1i128 << Tally::FRACTION_BITS) / (2 * i128::from(first) + 1) + 1;
        Some(-slack..=first_term + slack)
    }

    fn params(&self) -> Value {
        json!({ "terms": self.terms })
    }

    fn implementation(&self) -> Option<&'static str> {
        Some(leibniz::implementation())
    }

    fn units(&self) -> u64 {
        leibniz::units(self.terms)
    }

    fn compute(&self, units: Range<u64>, _out: &mut [u8]) -> Tally {
        leibniz::sum_units(self.terms, units)
    }

    fn finish(&self, tally: Tally, _data: Vec<u8>) -> Result<Finished> {
        let ((pi, err, bound, predicted), verify_s) = timed(|| {
            let pi = leibniz::pi_from(tally);
            (pi, PI - pi, leibniz::truncation_bound(self.terms), leibniz::predicted_error(self.terms))
        });
        let verified = err.abs() <= bound + ROUNDING;
        Ok(Finished {
            result: json!({
                "pi": pi,
                "abs_error": err.abs(),
                "truncation_bound": bound,
                "predicted_error": predicted,
                "deviation_from_prediction": (err - predicted).abs(),
            }),
            verified,
            verification: format!(
                "|pi - 4 S_N| = {:.3e} is {} the alternating-series bound 4/(2N+1) = {bound:.3e}",
                err.abs(),
                if verified { "within" } else { "OUTSIDE" }
            ),
            item: ("terms", self.terms as f64),
            bytes_per_item: None,
            verify_s,
            output_s: 0.0,
            outputs: Vec::new(),
        })
    }
}
