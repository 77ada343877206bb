//! Progress of long runs, shown by rank 0 alone and with no message of its own.
//!
//! Two forms (`--progress`): a bar, redrawn in place, when standard error is
//! a terminal; plain lines at a steady pace (`--progress-every`, default
//! [`DEFAULT_EVERY`]) where it is not: a log under `mpirun`, `kubectl logs
//! -f`, Slurm's output file or CI, where a long job would otherwise look
//! like a hang until it ends. `auto` (the default) picks by whether standard
//! error is a terminal; `off` shows nothing. Nothing shows before the run has
//! taken [`SHOW_AFTER`] (a bar) or one interval (lines), and progress counts
//! what rank 0 sees without any message: its own share under the static
//! strategies, and every chunk handed out under the dynamic one.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a run goes before its bar appears.
pub const SHOW_AFTER: Duration = Duration::from_secs(2);

/// The pace of progress lines unless `--progress-every` says otherwise: three a minute.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(20);

/// Pieces rank 0 cuts its own share into so the progress can move.
pub const PIECES: u64 = 100;

/// How progress is shown (`--progress`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Style {
    /// A bar on a terminal, lines elsewhere.
    #[default]
    Auto,
    /// A bar, on a terminal only.
    Bar,
    /// Plain lines at a steady pace, wherever standard error goes.
    Lines,
    /// Nothing.
    Off,
}

/// How this run shows progress: set once by the run (before any work), read
/// where progress is counted.
static CHOSEN: OnceLock<(Style, Duration)> = OnceLock::new();

/// Chooses the form of progress for this process (first call wins).
pub fn choose(style: Style, every: Duration) {
    // At least a millisecond: a zero interval would never move on.
    let _ = CHOSEN.set((style, every.max(Duration::from_millis(1))));
}

/// What is drawn, if anything.
enum Shown {
    Bar(ProgressBar),
    Lines { every: Duration, next: Mutex<Duration> },
}

/// Progress over `total` units (hidden until it has something to say), or nothing.
pub struct Progress {
    shown: Option<Shown>,
    total: u64,
    what: String,
    start: Instant,
}

impl Progress {
    /// Progress for rank 0 in the form [`choose`] set; inert elsewhere.
    pub fn new(is_root: bool, total: u64, what: &str) -> Progress {
        let (style, every) = CHOSEN.get().copied().unwrap_or((Style::Auto, DEFAULT_EVERY));
        let terminal = std::io::stderr().is_terminal();
        let shown = match style {
            _ if !is_root || total == 0 => None,
            Style::Off => None,
            Style::Bar | Style::Auto if terminal => Some(Shown::Bar(bar(total, what))),
            Style::Bar => None,
            Style::Lines | Style::Auto => Some(Shown::Lines { every, next: Mutex::new(every) }),
        };
        Progress { shown, total, what: what.to_string(), start: Instant::now() }
    }

    /// Progress that never shows (ranks and threads that draw nothing).
    pub fn none() -> Progress {
        Progress { shown: None, total: 0, what: String::new(), start: Instant::now() }
    }

    /// Whether anything may be shown (callers split work only then).
    pub fn active(&self) -> bool {
        self.shown.is_some()
    }

    /// Whether a run expected to take `estimate` should be cut into pieces
    /// so that progress can move: only if it would show before the end.
    pub fn worth_pieces(&self, estimate: Duration) -> bool {
        match &self.shown {
            None => false,
            Some(Shown::Bar(_)) => estimate >= SHOW_AFTER,
            Some(Shown::Lines { every, .. }) => estimate >= *every,
        }
    }

    /// Records `done` units of the total.
    pub fn set(&self, done: u64) {
        match &self.shown {
            None => {}
            Some(Shown::Bar(bar)) => {
                if bar.is_hidden() && self.start.elapsed() >= SHOW_AFTER {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                }
                bar.set_position(done);
            }
            Some(Shown::Lines { every, next }) => {
                let elapsed = self.start.elapsed();
                let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                if elapsed < *next {
                    return;
                }
                // The next line one interval on, skipping those a slow piece overran.
                while *next <= elapsed {
                    *next += *every;
                }
                drop(next);
                let line = line(&self.what, done.min(self.total), self.total, elapsed);
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// Removes the bar, leaving the terminal as it was (lines stay: a log keeps them).
    pub fn finish(&self) {
        if let Some(Shown::Bar(bar)) = &self.shown {
            bar.finish_and_clear();
        }
    }
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {percent:>3}% eta {eta}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// One progress line: `pikernels: progress: rank 0's share 42% (420 of 1000),
/// 1m 5s elapsed, about 1m 30s left`.
fn line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let fraction = if total == 0 { 1.0 } else { done as f64 / total as f64 };
    let left = if done == 0 {
        "time left not yet known".to_string()
    } else {
        let rest = elapsed.as_secs_f64() * (1.0 - fraction) / fraction;
        if rest < 1.0 {
            "less than a second left".to_string()
        } else {
            format!("about {} left", clock(Duration::from_secs_f64(rest.min(1e9))))
        }
    };
    format!(
        "pikernels: progress: {what} {:.0}% ({done} of {total}), {} elapsed, {left}",
        fraction * 100.0,
        clock(elapsed)
    )
}

/// `45s`, `2m 5s`, `1h 3m`: a span as a log line shows it, to the second.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_how_far_how_long_and_how_much_is_left() {
        let l = line("rank 0's share", 25, 100, Duration::from_secs(65));
        assert_eq!(l, "pikernels: progress: rank 0's share 25% (25 of 100), 1m 5s elapsed, about 3m 15s left");
        let l = line("chunks handed out", 0, 40, Duration::from_secs(3));
        assert!(l.ends_with("3s elapsed, time left not yet known"), "{l}");
        assert_eq!(clock(Duration::from_secs(7322)), "2h 2m");
    }

    #[test]
    fn lines_come_at_most_once_an_interval() {
        let p = Progress {
            shown: Some(Shown::Lines { every: Duration::from_millis(50), next: Mutex::new(Duration::from_millis(50)) }),
            total: 10,
            what: "x".into(),
            start: Instant::now(),
        };
        let next = || match &p.shown {
            Some(Shown::Lines { next, .. }) => *next.lock().unwrap(),
            _ => unreachable!(),
        };
        p.set(1);
        assert_eq!(next(), Duration::from_millis(50), "nothing before the first interval");
        std::thread::sleep(Duration::from_millis(120));
        p.set(2);
        let after = next();
        assert!(after > Duration::from_millis(120) && after <= Duration::from_millis(170), "{after:?}");
        p.set(3);
        assert_eq!(next(), after, "one line per interval");
    }
}
