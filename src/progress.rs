//! Progress of long runs on rank 0's terminal.
//!
//! Only rank 0 shows anything, only when its stderr is a terminal, and only
//! once the run has taken more than [`SHOW_AFTER`]; otherwise nothing is
//! drawn and the compute path is unchanged. Progress counts what rank 0 can
//! see without any message: its own share under the static strategies, and
//! every chunk handed out under the dynamic one.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How long a run goes before its bar appears.
pub const SHOW_AFTER: Duration = Duration::from_secs(2);

/// Pieces rank 0 cuts its own share into so the bar can move.
pub const PIECES: u64 = 100;

/// A bar over `total` units (hidden until [`SHOW_AFTER`]), or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
}

impl Progress {
    /// A bar for rank 0 when its stderr is a terminal; otherwise inert.
    pub fn new(is_root: bool, total: u64, what: &str) -> Progress {
        let bar = (is_root && total > 0 && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {percent:>3}% eta {eta}")
            {
                bar.set_style(style);
            }
            bar.set_message(what.to_string());
            bar
        });
        Progress { bar, start: Instant::now() }
    }

    /// A bar that never shows (ranks and threads that draw nothing).
    pub fn none() -> Progress {
        Progress { bar: None, start: Instant::now() }
    }

    /// Whether anything may be drawn (callers split work only then).
    pub fn active(&self) -> bool {
        self.bar.is_some()
    }

    /// Records `done` units of the total.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.start.elapsed() >= SHOW_AFTER {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            bar.set_position(done);
        }
    }

    /// Removes the bar, leaving the terminal as it was.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
