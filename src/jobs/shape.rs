//! The two shapes a job takes, and the phases the runtime drives them through.
//!
//! - [`UnitJob`]: the result is a tally, or bytes placed by unit, over
//!   numbered work units (pi-mc, leibniz, mandelbrot). The runtime owns the
//!   data movement: the generic strategies (`--comm collective | p2p |
//!   dynamic`) hand units out and bring tallies and bytes back, and
//!   `--partition I/N` runs a part for `pikernels merge`.
//! - [`SpmdJob`]: the kernel moves its own data (sort's all-to-all, matmul's
//!   broadcasts, transcode's task farm). What its pre-flight prepares is
//!   handed, typed, to its run, and what rank 0 holds after the run to its
//!   finish.
//!
//! Both reach the runtime as a [`Job`]; [`Phases`] is what
//! `jobs::run::execute` calls, in order, on every rank.

use crate::args::Partition;
use crate::checkpoint::{self, Journal};
use crate::output::FileUse;
pub use crate::report::Finished;
use crate::report::{Checkpoint, Partial};
use crate::spmd::{self, strategy::RankStats, Comm, Spmd, Work};
use anyhow::Result;
use kernels::Tally;
use serde_json::Value;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

/// A kernel whose result is a tally (and bytes placed by unit) over work units.
pub trait UnitJob: Sync {
    /// Parameters, for the report; keys are the kernel's flag names, so that
    /// `pikernels merge` can rebuild the job from them.
    fn params(&self) -> Value;
    /// Number of work units.
    fn units(&self) -> u64;
    /// The name of the hot loop this process runs, for the report's
    /// `build.isa` (the kernels' `implementation()`); `None`: no loop of ours.
    fn implementation(&self) -> Option<&'static str> {
        None
    }
    /// Output bytes per unit (0 for scalar kernels).
    fn unit_bytes(&self) -> usize {
        0
    }
    /// Computes `units` into `out` and returns their tally.
    fn compute(&self, units: Range<u64>, out: &mut [u8]) -> Tally;
    /// Units per packed block when the job packs its computed bytes on the
    /// rank that computed them ([`UnitJob::pack`]) instead of sending them as
    /// they are; `None` (the default) sends them as they are.
    fn pack_grain(&self) -> Option<u64> {
        None
    }
    /// Packs the computed bytes of `units` (starting at a multiple of
    /// [`UnitJob::pack_grain`]); packed forms of consecutive ranges
    /// concatenate. [`UnitJob::finish`] then receives the packed form of the whole.
    fn pack(&self, _units: Range<u64>, raw: &[u8]) -> Vec<u8> {
        raw.to_vec()
    }
    /// The most bytes the packed form of `units` units can take (a journal's
    /// record longer than this is damage); without packing, their bytes.
    fn packed_bound(&self, units: u64) -> u64 {
        units.saturating_mul(self.unit_bytes() as u64)
    }
    /// Checks this machine's resources for this rank's share; runs on every
    /// rank before any message.
    fn preflight(&self, _ctx: &Preflight) -> Result<()> {
        Ok(())
    }
    /// The files the job reads and writes (its own options; `--report` is
    /// added by the runtime), checked before any work for one file used twice.
    fn files(&self) -> Vec<FileUse> {
        Vec::new()
    }
    /// The tallies a part that computed `units` can give, for a job whose
    /// whole result is the tally and which `--partition` may therefore cut
    /// into parts: `pikernels merge` refuses a part whose tally lies outside,
    /// since a part is data from outside (edited, truncated, from another
    /// job). `None` (the default): the job cannot be cut into parts.
    fn tally_bounds(&self, _units: Range<u64>) -> Option<RangeInclusive<i128>> {
        None
    }
    /// On rank 0: verifies the result, writes file outputs, describes the result.
    fn finish(&self, tally: Tally, data: Vec<u8>) -> Result<Finished>;
}

/// A kernel with its own data movement: the whole distributed computation
/// is its own, and typed state flows pre-flight → run → finish.
pub trait SpmdJob: Sync + 'static {
    /// What a rank's pre-flight leaves for its run (rank 0's input read from
    /// a file, a working directory); `()` if nothing.
    type Prepared: Send;
    /// What rank 0 holds after the run, for [`SpmdJob::finish`] (a failure
    /// during the run travels in it).
    type Output: Send;
    /// Parameters, for the report; keys are the kernel's flag names.
    fn params(&self) -> Value;
    /// The hot loop this process runs, as in [`UnitJob::implementation`].
    fn implementation(&self) -> Option<&'static str> {
        None
    }
    /// The files the job reads and writes, as in [`UnitJob::files`].
    fn files(&self) -> Vec<FileUse> {
        Vec::new()
    }
    /// Checks this machine's resources for this rank's share (every rank,
    /// before any message; a failure anywhere is agreed job-wide) and
    /// prepares the run.
    fn preflight(&self, ctx: &Preflight) -> Result<Self::Prepared>;
    /// The distributed computation, on every rank; rank 0 returns `output: Some`.
    fn run(&self, spmd: &Spmd, comm: Comm, prepared: Self::Prepared) -> Ran<Self::Output>;
    /// On rank 0: verifies, writes outputs, describes the result.
    fn finish(&self, output: Self::Output) -> Result<Finished>;
    /// Whether the job keeps checkpoints itself (`--checkpoint`); the others
    /// refuse the flag.
    fn resumes(&self) -> bool {
        false
    }
    /// On rank 0, before `finish`: what `--checkpoint` resumed and kept.
    fn resumed(&self, _output: &Self::Output) -> Option<Checkpoint> {
        None
    }
}

/// What one rank's run of an [`SpmdJob`] gives back.
pub struct Ran<T> {
    /// Rank 0: what `finish` needs; `None` on the other ranks.
    pub output: Option<T>,
    /// This rank's measurements.
    pub stats: RankStats,
    /// Barrier-to-barrier seconds of the distributed part.
    pub wall_s: f64,
}

/// What a rank knows when it checks its resources.
pub struct Preflight {
    /// This rank.
    pub rank: usize,
    /// Number of ranks.
    pub size: usize,
    /// Communication strategy.
    pub comm: Comm,
    /// This rank's rayon threads.
    pub threads: usize,
}

impl Preflight {
    /// Whether this rank is rank 0.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// The most units one rank computes in one piece under the strategy,
    /// shares cut in grains of `grain` units.
    pub fn max_units_held(&self, units: u64, grain: u64) -> u64 {
        spmd::strategy::largest_share(self.comm, units, grain, self.size as u64)
    }
}

/// A job with validated parameters, in its shape.
pub enum Job {
    /// Units, tallies and placed bytes: the runtime moves the data.
    Units(Box<dyn UnitJob>),
    /// The kernel moves its own data.
    Spmd(Box<dyn ErasedSpmd>),
}

impl Job {
    /// A unit-shaped job.
    pub fn units(job: impl UnitJob + 'static) -> Job {
        Job::Units(Box::new(job))
    }

    /// An SPMD-shaped job.
    pub fn spmd(job: impl SpmdJob) -> Job {
        Job::Spmd(Box::new(job))
    }

    /// Parameters, for the report.
    pub fn params(&self) -> Value {
        match self {
            Job::Units(j) => j.params(),
            Job::Spmd(j) => j.params(),
        }
    }

    /// The hot loop this process runs, for the report.
    pub fn implementation(&self) -> Option<&'static str> {
        match self {
            Job::Units(j) => j.implementation(),
            Job::Spmd(j) => j.implementation(),
        }
    }

    /// The files the job reads and writes.
    pub fn files(&self) -> Vec<FileUse> {
        match self {
            Job::Units(j) => j.files(),
            Job::Spmd(j) => j.files(),
        }
    }

    /// Whether `--checkpoint` applies: every unit job, and the SPMD jobs that
    /// keep checkpoints themselves.
    pub fn resumes(&self) -> bool {
        match self {
            Job::Units(_) => true,
            Job::Spmd(j) => j.resumes(),
        }
    }

    /// The job as a unit job whose parts `--partition` may cut and `merge`
    /// may combine (its whole result is the tally), or `None`.
    pub fn partitionable(&self) -> Option<&dyn UnitJob> {
        match self {
            Job::Units(j) if j.tally_bounds(0..0).is_some() => Some(j.as_ref()),
            _ => None,
        }
    }

    /// The phases of a run of this job (`part`: the `--partition` part, for
    /// a partitionable job; `resume`: `--checkpoint`, for a unit job).
    pub fn phases(&self, part: Option<Partition>, resume: Option<Resume>) -> Box<dyn Phases + '_> {
        match self {
            Job::Units(j) => Box::new(UnitPhases::new(j.as_ref(), part, resume)),
            Job::Spmd(j) => j.phases(),
        }
    }
}

/// An [`SpmdJob`] with its types erased, so jobs of every kernel fit one
/// [`Job`]; implemented for every `SpmdJob`.
pub trait ErasedSpmd: Sync {
    /// [`SpmdJob::params`].
    fn params(&self) -> Value;
    /// [`SpmdJob::implementation`].
    fn implementation(&self) -> Option<&'static str>;
    /// [`SpmdJob::files`].
    fn files(&self) -> Vec<FileUse>;
    /// [`SpmdJob::resumes`].
    fn resumes(&self) -> bool;
    /// The phases of a run, holding the typed state between them.
    fn phases(&self) -> Box<dyn Phases + '_>;
}

impl<J: SpmdJob> ErasedSpmd for J {
    fn params(&self) -> Value {
        SpmdJob::params(self)
    }

    fn implementation(&self) -> Option<&'static str> {
        SpmdJob::implementation(self)
    }

    fn files(&self) -> Vec<FileUse> {
        SpmdJob::files(self)
    }

    fn resumes(&self) -> bool {
        SpmdJob::resumes(self)
    }

    fn phases(&self) -> Box<dyn Phases + '_> {
        Box::new(SpmdPhases { job: self, prepared: None, output: None, account: None })
    }
}

/// What the run of a job gave one rank: its measurements and the
/// barrier-to-barrier seconds.
pub struct RunStats {
    /// This rank's measurements.
    pub stats: RankStats,
    /// Seconds of the distributed part.
    pub wall_s: f64,
}

/// The phases the runtime drives a job through, in this order, on every
/// rank; `finish` on rank 0 only. Each holds what the next needs.
pub trait Phases {
    /// Checks this rank's resources and prepares its run.
    fn preflight(&mut self, ctx: &Preflight) -> Result<()>;
    /// Runs the distributed computation.
    fn run(&mut self, spmd: &Spmd, comm: Comm) -> RunStats;
    /// On rank 0: the job's account, and a part's exact tally for a partial run.
    fn finish(&mut self) -> Result<(Finished, Option<Partial>)>;
    /// On rank 0, after the run: what `--checkpoint` resumed and kept.
    fn checkpoint(&self) -> Option<Checkpoint> {
        None
    }
}

/// `--checkpoint`: where the journal is, how much work a record holds (in
/// run time), and the kernel (part of what the journal belongs to).
pub struct Resume {
    /// The journal's directory (`--checkpoint`).
    pub dir: PathBuf,
    /// About how long a batch runs before it is recorded (`--checkpoint-every`).
    pub every: Duration,
    /// The kernel's name.
    pub kernel: &'static str,
}

/// Default `--checkpoint-every`.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

/// A unit job's phases: the generic strategies, or a part of the units;
/// with `--checkpoint`, in batches recorded as they finish.
struct UnitPhases<'a> {
    job: &'a dyn UnitJob,
    part: Option<Partition>,
    /// The units this run computes: all of them, or its part's.
    mine: Range<u64>,
    /// `--checkpoint`, and on rank 0 after the pre-flight its open journal.
    resume: Option<Resume>,
    journal: Option<Journal>,
    /// Rank 0, after the run: the tally and the (packed) bytes.
    result: Option<(Tally, Vec<u8>)>,
    /// Rank 0, after a `--checkpoint` run: its account.
    account: Option<Checkpoint>,
    /// Rank 0: why the journal's records could not be joined.
    journal_error: Option<String>,
}

impl<'a> UnitPhases<'a> {
    fn new(job: &'a dyn UnitJob, part: Option<Partition>, resume: Option<Resume>) -> Self {
        let mine = super::partial::units(job, part);
        UnitPhases { job, part, mine, resume, journal: None, result: None, account: None, journal_error: None }
    }

    /// What a journal must belong to: everything that changes a unit's result.
    fn identity(&self, kernel: &str) -> Value {
        serde_json::json!({
            "pikernels_journal": checkpoint::FORMAT,
            "version": env!("CARGO_PKG_VERSION"),
            "kernel": kernel,
            "params": self.job.params(),
            "units": [self.mine.start, self.mine.end],
            "unit_bytes": self.job.unit_bytes(),
            "pack_grain": self.job.pack_grain(),
        })
    }

    /// A `--checkpoint` run: the missing units in batches, each recorded on
    /// rank 0 as it finishes; then rank 0 joins the journal's records and
    /// the new ones in unit order (a batch whose record could not be
    /// written is still this run's).
    fn run_resuming(&mut self, spmd: &Spmd, comm: Comm, work: &Work, every: Duration) -> RunStats {
        let mut journal = self.journal.take();
        let missing = journal.as_ref().map_or(Vec::new(), |j| checkpoint::missing(self.mine.clone(), j.records()));
        let resumed: u64 =
            journal.as_ref().map_or(0, |j| j.records().iter().map(|r| r.units.end - r.units.start).sum());
        let (mut written, mut unrecorded) = (0, Vec::new());
        let batches = spmd::resume::run(spmd, comm, work, &missing, every, &mut |units, tally, bytes| {
            let record = checkpoint::Record { units, tally: tally.0, bytes };
            let kept = journal.as_mut().is_some_and(|j| j.append(record.clone()));
            if kept {
                written += 1;
            } else {
                unrecorded.push(record);
            }
        });
        if let (Some(j), Some(resume)) = (journal, &self.resume) {
            let mut all: Vec<&checkpoint::Record> = j.records().iter().chain(&unrecorded).collect();
            all.sort_by_key(|r| r.units.start);
            let tally = all.iter().try_fold(0i128, |a, r| a.checked_add(r.tally)).map(Tally);
            let data = all.iter().flat_map(|r| r.bytes.iter().copied()).collect();
            let units = self.mine.end - self.mine.start;
            self.result = match tally {
                Some(tally) => Some((tally, data)),
                None => {
                    self.journal_error = Some(format!(
                        "the journal in {} holds tallies whose sum overflows: it was edited; give another directory",
                        resume.dir.display()
                    ));
                    None
                }
            };
            self.account = Some(Checkpoint {
                dir: resume.dir.display().to_string(),
                unit: "units".into(),
                units,
                resumed_units: resumed,
                computed_units: units - resumed,
                records_written: written,
                write_failed: !unrecorded.is_empty(),
            });
        }
        RunStats { stats: batches.stats, wall_s: batches.wall_s }
    }
}

impl Phases for UnitPhases<'_> {
    fn preflight(&mut self, ctx: &Preflight) -> Result<()> {
        self.job.preflight(ctx)?;
        // Rank 0 alone reads and writes the journal; a journal it cannot
        // use (another job's, in use, not a directory) is refused job-wide.
        if let (Some(resume), true) = (&self.resume, ctx.is_root()) {
            let claim = checkpoint::Claim::open(&resume.dir, &self.identity(resume.kernel))?;
            // A record's tally must be one its units can give (where the job
            // bounds it), and its bytes as many as its units make (where they
            // travel unpacked): anything else is damage, recomputed.
            let job = self.job;
            let end = self.mine.end;
            let plausible = |r: &checkpoint::Record| {
                let tally = job.tally_bounds(r.units.clone()).is_none_or(|b| b.contains(&r.tally));
                let n = (r.units.end - r.units.start) as usize;
                let bytes = match job.pack_grain() {
                    // Packed: on the grain (so the batches after it are), within the bound.
                    Some(g) => {
                        r.units.start.is_multiple_of(g)
                            && (r.units.end.is_multiple_of(g) || r.units.end == end)
                            && (r.bytes.len() as u64) <= job.packed_bound(n as u64)
                    }
                    None => n.checked_mul(job.unit_bytes()) == Some(r.bytes.len()),
                };
                tally && bytes
            };
            let (journal, note) = Journal::open(claim, self.mine.clone(), &plausible)?;
            if let Some(note) = note {
                eprintln!("pikernels: warning: {note}");
            }
            self.journal = Some(journal);
        }
        Ok(())
    }

    fn run(&mut self, spmd: &Spmd, comm: Comm) -> RunStats {
        let job = self.job;
        if let Some(every) = self.resume.as_ref().map(|r| r.every) {
            // The batches number units as the journal does: the job's own.
            let compute = |units: Range<u64>, out: &mut [u8]| job.compute(units, out);
            let pack = |units: Range<u64>, raw: &[u8]| job.pack(units, raw);
            let work = Work {
                units: self.mine.end,
                unit_bytes: job.unit_bytes(),
                compute: &compute,
                pack: job.pack_grain().map(|grain| spmd::strategy::Pack { grain, pack: &pack }),
                quiet: true,
            };
            return self.run_resuming(spmd, comm, &work, every);
        }
        // A partial run hands the runtime its part's units, renumbered from 0.
        let offset = self.mine.start;
        let compute = |units: Range<u64>, out: &mut [u8]| job.compute(units.start + offset..units.end + offset, out);
        let pack = |units: Range<u64>, raw: &[u8]| job.pack(units.start + offset..units.end + offset, raw);
        let work = Work {
            units: self.mine.end - self.mine.start,
            unit_bytes: job.unit_bytes(),
            compute: &compute,
            pack: job.pack_grain().map(|grain| spmd::strategy::Pack { grain, pack: &pack }),
            quiet: false,
        };
        let outcome = spmd::strategy::run(spmd, comm, &work);
        self.result = outcome.data.map(|data| (outcome.tally, data));
        RunStats { stats: outcome.stats, wall_s: outcome.wall_s }
    }

    fn finish(&mut self) -> Result<(Finished, Option<Partial>)> {
        if let Some(e) = self.journal_error.take() {
            anyhow::bail!(e);
        }
        let (tally, data) = self.result.take().ok_or_else(|| anyhow::anyhow!("rank 0 holds no result"))?;
        match self.part {
            Some(part) => {
                let (finished, partial) = super::partial::finished(part, &self.mine, self.job.units(), tally);
                Ok((finished, Some(partial)))
            }
            None => Ok((self.job.finish(tally, data)?, None)),
        }
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        self.account.clone()
    }
}

/// An SPMD job's phases: what pre-flight prepared goes to the run, what the
/// run left on rank 0 goes to finish.
struct SpmdPhases<'a, J: SpmdJob> {
    job: &'a J,
    prepared: Option<J::Prepared>,
    output: Option<J::Output>,
    account: Option<Checkpoint>,
}

impl<J: SpmdJob> Phases for SpmdPhases<'_, J> {
    fn preflight(&mut self, ctx: &Preflight) -> Result<()> {
        self.prepared = Some(self.job.preflight(ctx)?);
        Ok(())
    }

    fn run(&mut self, spmd: &Spmd, comm: Comm) -> RunStats {
        let prepared = self.prepared.take().expect("the runtime runs a job only after its pre-flight passed");
        let ran = self.job.run(spmd, comm, prepared);
        self.output = ran.output;
        RunStats { stats: ran.stats, wall_s: ran.wall_s }
    }

    fn finish(&mut self) -> Result<(Finished, Option<Partial>)> {
        let output = self.output.take().ok_or_else(|| anyhow::anyhow!("rank 0 holds no result"))?;
        self.account = self.job.resumed(&output);
        Ok((self.job.finish(output)?, None))
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        self.account.clone()
    }
}
