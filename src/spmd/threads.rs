//! How many rayon threads a rank may run: the limit every rank checks in
//! the job-wide pre-flight, and the cores the node discovery counts.

/// The most threads a rank may ask for per core it may use. The kernels
/// keep every thread busy, so past one per core threads only queue for a
/// core; a few more allow oversubscription experiments, and this many is
/// surely a typo. It also bounds the pool's start: rayon's idle workers
/// search each other's queues (crossbeam's epoch walks every thread's entry),
/// a cost that grows faster than the square of the thread count: on 2 cores a
/// one-sample pi-mc took 0.4 s with 32 threads, 1.4 s with 1024, 8 s with
/// 2048 and 51 s with 4096.
pub const THREADS_PER_CORE: usize = 16;

/// The cores this rank may use (its affinity mask and cgroup CPU quota, as
/// `available_parallelism` reads them) and the most threads it may run:
/// [`THREADS_PER_CORE`] per core.
pub fn max_threads() -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores, cores.saturating_mul(THREADS_PER_CORE))
}

/// Checks `--threads` against this rank's cores. Run in the job-wide
/// pre-flight, not by the parser: ranks may differ (see `jobs::run`).
pub fn check_threads(n: usize) -> Result<(), String> {
    let (cores, most) = max_threads();
    if n > most {
        return Err(format!(
            "--threads {n} is more than {THREADS_PER_CORE} for each of the {cores} core{} this rank may use \
             (at most {most})",
            if cores == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_limit_explains() {
        let (cores, most) = max_threads();
        assert_eq!(most, cores * THREADS_PER_CORE);
        assert_eq!(check_threads(most), Ok(()));
        let refused = check_threads(most + 1).unwrap_err();
        assert!(
            refused.contains(&format!("--threads {} is more than 16 for each of the {cores} core", most + 1)),
            "{refused}"
        );
        assert!(refused.contains(&format!("(at most {most})")), "{refused}");
    }
}
