//! `--checkpoint DIR` for heat: the whole field kept every interval (by
//! `--checkpoint-steps N`, or about every `--checkpoint-every` of run time),
//! so a rerun starts from the last kept step.
//!
//! At a checkpoint the blocks are gathered at rank 0
//! ([`crate::spmd::exchange::Team::gather_blocks`]), which writes the field
//! under a temporary name, syncs it and renames it over the last one
//! (`checkpoint::write_state`): a checkpoint counts only once it is whole,
//! its checksum written with it. A rerun reads it on rank 0, checks it,
//! and deals it out as the blocks of the new process grid
//! ([`crate::spmd::exchange::Team::scatter_blocks`]): any process count,
//! grid, `--halo-depth` and `--comm`. The cells are the bits they were, and
//! every step after is the same expression, so the field, its digest and
//! the PNG are those of one uninterrupted run.

use super::Heat;
use crate::checkpoint::{self, Claim};
use crate::report::Checkpoint;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// `--checkpoint` as heat takes it.
pub struct Resume {
    pub dir: PathBuf,
    /// `--checkpoint-steps`: a checkpoint every N steps.
    pub steps: Option<u64>,
    /// `--checkpoint-every`: else about this much run time between checkpoints.
    pub every: Duration,
}

/// Rank 0's journal: the claimed directory and the state it held.
pub struct Start {
    pub claim: Claim,
    /// The step the kept field was taken after (0: none kept).
    pub step: u64,
    /// The kept field, row-major, until it is dealt out.
    pub field: Option<Vec<f64>>,
}

/// The first stretch's share of the steps, before a rate is known (it is
/// not kept: it only measures). Steps cost alike, so its rate sizes every
/// stretch after it; each kept field is a whole field written, so stretches
/// do not start small and grow as unit batches do.
const FIRST_PARTS: u64 = 1024;

impl Heat {
    /// What a journal must belong to: what changes the field (not the grid,
    /// the halo depth or the outputs).
    fn identity(&self) -> Value {
        let p = &self.p;
        json!({
            "pikernels_journal": checkpoint::FORMAT,
            "version": env!("CARGO_PKG_VERSION"),
            "kernel": "heat",
            "size": format!("{}x{}", p.cols, p.rows),
            "steps": p.steps,
            "r": p.r,
            "init": crate::args::value_name(p.init),
        })
    }

    /// Rank 0's pre-flight with `--checkpoint`: claims the directory and
    /// reads the field it holds, if whole.
    pub(super) fn open_journal(&self, r: &Resume) -> Result<Start> {
        let claim = Claim::open(&r.dir, &self.identity())?;
        let (state, note) = checkpoint::read_state(&claim, self.p.cells() as usize);
        if let Some(note) = note {
            eprintln!("pikernels: warning: --checkpoint {}: {note}", r.dir.display());
        }
        let (step, field) = match state {
            Some((step, field)) if step <= self.p.steps => (step, Some(field)),
            Some((step, _)) => {
                eprintln!(
                    "pikernels: warning: --checkpoint {}: the kept field is of step {step}, past the job's {} steps: \
                     not used, starting from the beginning",
                    r.dir.display(),
                    self.p.steps
                );
                (0, None)
            }
            None => (0, None),
        };
        Ok(Start { claim, step, field })
    }

    /// The steps to the next checkpoint: `--checkpoint-steps`, else about
    /// `--checkpoint-every` at the rate of the last stretch (`stretch`
    /// steps in `took`), or a first share of the steps.
    pub(super) fn next_stretch(&self, r: &Resume, last: Option<(u64, Duration)>) -> u64 {
        match (r.steps, last) {
            (Some(n), _) => n,
            (None, Some((steps, took))) => {
                let rate = steps as f64 / took.as_secs_f64().max(1e-6);
                ((rate * r.every.as_secs_f64()) as u64).max(1)
            }
            (None, None) => (self.p.steps / FIRST_PARTS).max(1),
        }
    }
}

/// Rank 0's write of a checkpoint in flight, on a thread of its own.
pub(super) struct Writer(pub Option<std::thread::JoinHandle<std::io::Result<()>>>);

impl Writer {
    /// Waits for the write in flight, if any, and counts it: written, or
    /// failed (warned about once; no more are tried).
    pub fn finish(&mut self, written: &mut u64, failed: &mut bool, dir: &std::path::Path) {
        let Some(handle) = self.0.take() else { return };
        match handle.join() {
            Ok(Ok(())) => *written += 1,
            Ok(Err(e)) => {
                *failed = true;
                eprintln!(
                    "pikernels: warning: cannot keep the field in {} ({e}): the run goes on without checkpoints",
                    dir.display()
                );
            }
            Err(_) => {
                *failed = true;
                eprintln!(
                    "pikernels: warning: writing the field to {} failed: the run goes on without checkpoints",
                    dir.display()
                );
            }
        }
    }
}

/// The report's account of a resumed heat run.
pub(super) fn account(r: &Resume, steps: u64, resumed: u64, written: u64, failed: bool) -> Checkpoint {
    Checkpoint {
        dir: r.dir.display().to_string(),
        unit: "steps".into(),
        units: steps,
        resumed_units: resumed,
        computed_units: steps - resumed,
        records_written: written,
        write_failed: failed,
    }
}
