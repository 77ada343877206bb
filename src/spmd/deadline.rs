//! The job-wide time limit (`--timeout`) and waiting without burning a core.
//!
//! Two mechanisms, so that a stopped or stuck rank ends the job with one
//! message and exit status [`EXIT_TIMEOUT`] instead of a hang:
//!
//! - **Checkpoints.** Where ranks wait for each other at the end of the
//!   generic strategies ([`super::Spmd::checkpoint`]) and in the dynamic
//!   scheduler, rank 0 knows which ranks have arrived; when the limit passes
//!   it names the ones that have not and aborts the job. These waits poll a
//!   non-blocking request and sleep between polls ([`Pause`]), so a rank
//!   waiting on a stopped one uses next to no CPU, with or without a limit.
//! - **A watchdog thread** on every rank, armed before MPI starts, for every
//!   other place a rank can wait (MPI start-up, a kernel's own collectives,
//!   writing outputs). It fires a little after the limit, later on higher
//!   ranks (so rank 0's checkpoint, or the lowest stuck rank, speaks first and
//!   its abort ends the rest), and names its own rank and what it was doing.
//!
//! Either way the rank removes its temporary files and aborts the job
//! ([`super::ending::abort`]), which makes the launcher end every rank; a
//! stopped rank is killed with the rest. A launcher that cannot answer (itself
//! stopped) does not keep the job alive: every rank's watchdog fires, and each
//! rank ends itself a few seconds after its abort went unanswered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Exit status of a job ended by `--timeout`.
const EXIT_TIMEOUT: i32 = crate::exit::Exit::TimedOut as i32;

/// How long after the limit rank 0's watchdog fires: rank 0's checkpoint
/// fires at the limit itself, naming every rank that has not arrived.
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);
/// Each higher rank's watchdog (and non-root checkpoint) waits this much
/// longer, up to [`MAX_STAGGER`], so that one rank speaks for the job.
/// A second apiece: time for the launcher to end every rank after the first
/// abort, before the next rank's watchdog would speak.
const STAGGER: Duration = Duration::from_secs(1);
const MAX_STAGGER: Duration = Duration::from_secs(5);

struct Limit {
    limit: Duration,
    start: Instant,
    rank: usize,
    size: usize,
}

static LIMIT: OnceLock<Limit> = OnceLock::new();
static PHASE: Mutex<&'static str> = Mutex::new("starting");
static HOSTS: OnceLock<Vec<String>> = OnceLock::new();
static FIRED: AtomicBool = AtomicBool::new(false);

/// Arms the job-wide limit (if any) for this process, as rank `rank` of
/// `size` (from the launcher's environment: MPI need not be up yet), and
/// starts the watchdog thread.
pub fn arm(limit: Option<Duration>, rank: usize, size: usize) {
    let Some(limit) = limit else { return };
    if LIMIT.set(Limit { limit, start: Instant::now(), rank, size }).is_err() {
        return;
    }
    // A job of one rank has no checkpoint to speak first: its watchdog
    // fires at the limit itself (a job that ends within the grace would
    // otherwise finish late with exit 0).
    let at = if size > 1 { limit + WATCHDOG_GRACE + stagger(rank) } else { limit };
    let spawned = std::thread::Builder::new().name("pikernels-watchdog".into()).spawn(move || {
        let start = LIMIT.get().expect("armed").start;
        loop {
            let left = at.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left);
        }
        let phase = *PHASE.lock().unwrap_or_else(|e| e.into_inner());
        expire(&format!("{} was still {phase}", rank_name(rank)));
    });
    // Without a watchdog the checkpoints still enforce the limit.
    drop(spawned);
}

/// Records what this rank is doing, for the watchdog's message.
pub fn phase(what: &'static str) {
    *PHASE.lock().unwrap_or_else(|e| e.into_inner()) = what;
}

/// What this rank was last recorded doing; never blocks (it may run in an
/// `atexit` handler while another thread holds the lock).
pub fn current_phase() -> &'static str {
    match PHASE.try_lock() {
        Ok(p) => *p,
        Err(std::sync::TryLockError::Poisoned(p)) => *p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => "running",
    }
}

/// Host names by rank (rank 0 learns them before the work), for messages.
pub fn know_hosts(hosts: &[String]) {
    let _ = HOSTS.set(hosts.to_vec());
}

fn stagger(rank: usize) -> Duration {
    STAGGER.saturating_mul(rank.min(u32::MAX as usize) as u32).min(MAX_STAGGER)
}

/// Whether the limit has passed for a wait on this rank: at the limit on
/// rank 0, which can name the missing ranks; a little later elsewhere.
pub fn expired() -> bool {
    LIMIT.get().is_some_and(|l| {
        let extra = if l.rank == 0 { Duration::ZERO } else { WATCHDOG_GRACE / 2 + stagger(l.rank) };
        l.start.elapsed() >= l.limit + extra
    })
}

/// This process's rank as armed (0 without a limit).
pub fn this_rank() -> usize {
    LIMIT.get().map_or(0, |l| l.rank)
}

/// "rank 3 (node-b)", or "rank 3" when the host is not known here.
pub fn rank_name(rank: usize) -> String {
    match HOSTS.get().and_then(|h| h.get(rank)) {
        Some(host) => format!("rank {rank} ({host})"),
        None => format!("rank {rank}"),
    }
}

/// Ends the job because the limit passed: prints one message ending in
/// `detail` (which ranks had not finished), removes this rank's temporary
/// files and aborts every rank with [`EXIT_TIMEOUT`].
pub fn expire(detail: &str) -> ! {
    if FIRED.swap(true, Ordering::SeqCst) || crate::signals::stopping() {
        // The other mechanism, or a stop signal (the launcher ending the job
        // after another rank's abort), is already ending it; should that
        // stall (its message blocked on a launcher that no longer reads),
        // the backstop still ends this rank.
        super::ending::backstop(EXIT_TIMEOUT);
        loop {
            std::thread::park();
        }
    }
    // Before anything that can block (the message, the removals).
    super::ending::backstop(EXIT_TIMEOUT);
    let (limit, size) = LIMIT.get().map_or((Duration::ZERO, 1), |l| (l.limit, l.size));
    let of = if size > 1 { format!(" of {size} ranks") } else { String::new() };
    eprintln!(
        "pikernels: error: timed out: the job{of} did not finish within --timeout {}; {detail} (exit status {EXIT_TIMEOUT})",
        human(limit)
    );
    crate::signals::remove_in_flight();
    super::ending::abort(EXIT_TIMEOUT)
}

/// [`expire`] at a wait on rank 0 that knows which ranks have not finished
/// their share of the work (the others had, and were waiting for them).
pub fn expire_missing(ranks: impl Iterator<Item = usize>) -> ! {
    let names: Vec<String> = ranks.map(rank_name).collect();
    let one = names.len() == 1;
    expire(&format!(
        "{} had not finished {} share, and the other ranks were waiting for {}",
        names.join(", "),
        if one { "its" } else { "their" },
        if one { "it" } else { "them" }
    ))
}

/// `90s`, `2m 30s`, `1h 5m`: a limit as a person reads it.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        return format!("{}s", trim(s));
    }
    let total = d.as_secs();
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

fn trim(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Sleeps between polls of a wait: for the first 50 ms it polls back to back,
/// yielding the core between polls (an ordinary wait for a rank a little
/// behind costs no latency: a barrier's rounds need both sides polling), then
/// sleeps an eighth of the time waited so far, at most 2 ms. A long wait (a
/// stopped rank) thus costs next to no CPU and is lengthened by at most 2 ms.
pub struct Pause {
    since: Option<Instant>,
}

impl Pause {
    const SPIN: Duration = Duration::from_millis(50);
    const SHORTEST: Duration = Duration::from_micros(20);
    const LONGEST: Duration = Duration::from_millis(2);

    pub fn new() -> Pause {
        Pause { since: None }
    }

    /// Starts over after progress.
    pub fn reset(&mut self) {
        self.since = None;
    }

    /// Waits before the next poll.
    pub fn wait(&mut self) {
        let waited = self.since.get_or_insert_with(Instant::now).elapsed();
        if waited < Self::SPIN {
            std::thread::yield_now();
            return;
        }
        std::thread::sleep((waited / 8).clamp(Self::SHORTEST, Self::LONGEST));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(7200)), "2h");
        assert_eq!(human(Duration::from_secs(3725)), "1h 2m 5s");
    }

    #[test]
    fn later_ranks_wait_longer_up_to_a_bound() {
        assert_eq!(stagger(0), Duration::ZERO);
        assert!(stagger(1) < stagger(2));
        assert_eq!(stagger(1_000_000), MAX_STAGGER);
    }

    #[test]
    fn a_long_pause_sleeps_and_a_short_one_does_not() {
        let mut p = Pause::new();
        let t = Instant::now();
        let mut polls = 0u32;
        while t.elapsed() < Pause::SPIN {
            p.wait();
            polls += 1;
        }
        assert!(polls > 10, "the first 50 ms are polled back to back ({polls} polls)");
        // Past a second of waiting every poll sleeps the longest pause.
        p.since = Some(Instant::now() - Duration::from_secs(1));
        let t = Instant::now();
        for _ in 0..5 {
            p.wait();
        }
        assert!(t.elapsed() >= 5 * Pause::LONGEST);
        p.reset();
        let t = Instant::now();
        p.wait();
        assert!(t.elapsed() < Pause::LONGEST, "a reset pause polls at once again");
    }
}
