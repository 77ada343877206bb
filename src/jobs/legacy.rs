//! TEMPORARY (issue 14 in progress): the old one-shape `Job` trait, kept only
//! until sort, matmul and transcode implement [`super::SpmdJob`] themselves.

use super::{Finished, Preflight, Ran, SpmdJob};
use crate::output;
use crate::spmd::{self, Spmd};
use anyhow::Result;
use kernels::Tally;
use serde_json::Value;
use std::ops::{Range, RangeInclusive};

/// One kernel run with validated parameters.
#[allow(dead_code)]
pub trait Job: Sync + 'static {
    /// Kernel name as on the command line.
    fn kernel(&self) -> &'static str;
    /// Parameters, for the report.
    fn params(&self) -> Value;
    /// Number of work units.
    fn units(&self) -> u64;
    /// Output bytes per unit (0 for scalar kernels).
    fn unit_bytes(&self) -> usize {
        0
    }
    /// Computes `units` into `out` and returns their tally.
    fn compute(&self, units: Range<u64>, out: &mut [u8]) -> Tally;
    /// Units per packed block when the job packs its computed bytes on the
    /// rank that computed them ([`Job::pack`]) instead of sending them as they
    /// are; `None` (the default) sends them as they are.
    fn pack_grain(&self) -> Option<u64> {
        None
    }
    /// Packs the computed bytes of `units` (starting at a multiple of
    /// [`Job::pack_grain`]); packed forms of consecutive ranges concatenate.
    /// [`Job::finish`] then receives the packed form of the whole.
    fn pack(&self, _units: Range<u64>, raw: &[u8]) -> Vec<u8> {
        raw.to_vec()
    }
    /// Checks this machine's resources for this rank's share; runs on every
    /// rank before any message.
    fn preflight(&self, _ctx: &Preflight) -> Result<()> {
        Ok(())
    }
    /// On rank 0: verifies the result, writes file outputs, describes the result.
    fn finish(&self, tally: Tally, data: Vec<u8>) -> Result<Finished>;
    /// For kernels whose data movement is not "units out, tally and bytes
    /// back" (a matrix multiply's broadcasts, a sort's all-to-all): run the
    /// whole distributed computation against the runtime and return what
    /// [`spmd::strategy::run`] would. `None` (the default) uses the generic
    /// strategies.
    fn run_spmd(&self, _spmd: &Spmd, _comm: spmd::Comm) -> Option<spmd::strategy::Outcome> {
        None
    }
    /// Whether `--partition` may cut this job into parts that `pikernels
    /// merge` combines: true only where the whole result is the tally
    /// (opt-in, so a kernel with its own data movement never runs a part as
    /// if it were the whole).
    fn partitionable(&self) -> bool {
        false
    }
    /// The files the job reads and writes (its own options; `--report` is
    /// added by the runtime), checked before any work for one file used twice.
    fn files(&self) -> Vec<output::FileUse> {
        Vec::new()
    }
    /// The tallies a part that computed `units` (in the job's numbering) can
    /// give: `pikernels merge` refuses a part whose tally lies outside, since
    /// a part is data from outside (edited, truncated, from another job).
    /// `None` (the default) for kernels that cannot be partitioned.
    fn tally_bounds(&self, _units: Range<u64>) -> Option<RangeInclusive<i128>> {
        None
    }
}

/// An old-style job run as an SPMD job.
pub struct Legacy<J: Job>(pub J);

impl<J: Job> SpmdJob for Legacy<J> {
    type Prepared = ();
    type Output = ();

    fn params(&self) -> Value {
        self.0.params()
    }

    fn files(&self) -> Vec<output::FileUse> {
        self.0.files()
    }

    fn preflight(&self, ctx: &Preflight) -> Result<()> {
        self.0.preflight(ctx)
    }

    fn run(&self, spmd: &Spmd, comm: spmd::Comm, _prepared: ()) -> Ran<()> {
        let o = self.0.run_spmd(spmd, comm).expect("a legacy job runs its own algorithm");
        Ran { output: o.data.map(|_| ()), stats: o.stats, wall_s: o.wall_s }
    }

    fn finish(&self, _output: ()) -> Result<Finished> {
        self.0.finish(Tally::default(), Vec::new())
    }
}
