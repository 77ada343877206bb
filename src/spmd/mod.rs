//! The SPMD runtime: everything that talks MPI lives here.
//!
//! [`Spmd`] owns the MPI universe (initialised once, `Threading::Funneled`:
//! only the main thread calls MPI, rayon threads only compute) and the
//! per-rank rayon pool. The communication strategies in [`strategy`] move a
//! kernel's work and results; [`Spmd::agree`] turns a per-rank check into one
//! job-wide decision so that no rank waits on a rank that has given up.
//!
//! The plumbing the protocols share is written once: every message tag is in
//! [`tags`], MPI's count limit is [`MAX_COUNT`], a payload of any size moves
//! point to point through [`pieces`], and rank 0's side of the two
//! request/answer protocols (the dynamic strategy and the task farm [`tasks`])
//! is `scheduler`.

pub mod blocks;
pub mod deadline;
pub mod ending;
pub mod exchange;
pub mod grid;
pub mod halo;
pub mod pieces;
pub mod resume;
pub(crate) mod scheduler;
pub mod strategy;
pub mod tags;
pub mod tasks;
pub mod threads;
pub mod ulfm;

/// The most elements one MPI call moves to or from one rank: counts and
/// displacements are C `int`s (`i32::MAX`). Every call that moves a
/// caller-sized buffer checks against it or cuts the buffer to fit.
pub const MAX_COUNT: usize = i32::MAX as usize;

pub use strategy::{Comm, RankStats, Work};

use anyhow::{anyhow, Context, Result};
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::cell::{OnceCell, RefCell};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where this process stands in the job before MPI is initialised, read from
/// the launcher's environment. Used only to print usage errors once.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    /// This process's rank as the launcher numbered it (0 without a launcher).
    pub rank: u32,
    /// Number of processes the launcher started (1 without a launcher).
    pub size: u32,
}

impl Launch {
    /// Reads OpenMPI's, PMIx's and MPICH's (PMI) rank and size variables.
    pub fn from_env() -> Launch {
        let first = |vars: &[&str]| vars.iter().find_map(|v| std::env::var(v).ok()?.parse().ok());
        Launch {
            rank: first(&["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"]).unwrap_or(0),
            size: first(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]).unwrap_or(1),
        }
    }

    /// Checks what MPI needs of this machine before it starts. Without a
    /// launcher the MPI library makes its session directory under the
    /// temporary directory (`TMPDIR`, else `/tmp`); one it cannot write ends
    /// the process inside `MPI_Init` with the library's own screenful and no
    /// word of what to change. (Under a launcher, the launcher made it.)
    pub fn check_environment(self) -> Result<(), String> {
        if self.size > 1 || std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() {
            return Ok(());
        }
        let tmp = std::env::temp_dir();
        // Tried, as MPI will (root passes every permission check, and still
        // cannot make a directory in /proc).
        let probe = tmp.join(format!(".pikernels-probe-{}", std::process::id()));
        let writable = std::fs::create_dir(&probe).is_ok_and(|()| std::fs::remove_dir(&probe).is_ok());
        if writable {
            Ok(())
        } else {
            Err(format!(
                "the temporary directory {} (TMPDIR) is not a directory this process can write: MPI keeps its \
                 session files there; set TMPDIR to one it can (or unset it for /tmp)",
                tmp.display()
            ))
        }
    }

    /// Whether this process prints job-wide messages (it is rank 0).
    pub fn is_root(self) -> bool {
        self.rank == 0
    }

    /// Ends a job whose command line was refused, with `print` run once.
    ///
    /// Every rank refuses the same argv, but a rank that exits non-zero makes
    /// mpirun kill the others, possibly before rank 0's message is out. So
    /// under a launcher every rank starts MPI and waits at a barrier until
    /// rank 0 has printed; no message is sent before that.
    pub fn refuse(self, print: impl FnOnce()) {
        let universe = if self.size > 1 { mpi::initialize() } else { None };
        if self.is_root() {
            print();
            use std::io::Write;
            let _ = std::io::stderr().flush();
        }
        if let Some(universe) = universe {
            universe.world().barrier();
        }
    }
}

/// A failed job-wide check (already reported by the failing rank).
#[derive(Debug)]
pub struct Failure;

/// The running SPMD job as one process sees it.
pub struct Spmd {
    /// The ranks the job runs on: those it started with, and after each
    /// loss survived (ULFM) the survivors.
    members: Members,
    /// The MPI library's fault tolerance, where this job has it.
    ulfm: Option<ulfm::Ulfm>,
    /// The ranks lost so far, and what of their work was redone.
    losses: RefCell<Vec<Loss>>,
    threads: usize,
    node: Node,
    host: String,
    // Dropped last (fields drop in declaration order): finalises MPI, after
    // the members' communicators have been freed.
    _universe: mpi::environment::Universe,
}

/// The ranks a job runs on at one time, and their communicators.
struct Members {
    world: SimpleCommunicator,
    /// A duplicate of `world` for the checkpoints' messages alone, so that
    /// they never meet a strategy's or a kernel's.
    watch: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// The rank each member was started as (its rank in `MPI_COMM_WORLD`).
    started_as: Vec<usize>,
    /// The survivors, once a member has been lost (set once; each loss
    /// adds a link).
    after_loss: OnceCell<Box<Members>>,
}

impl Members {
    fn new(world: SimpleCommunicator, started_as: Vec<usize>) -> Members {
        let watch = world.duplicate();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Members { world, watch, rank, size, started_as, after_loss: OnceCell::new() }
    }
}

/// A rank the job lost and carried on without (ULFM), as rank 0 saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    /// The rank as the job started it.
    pub rank: usize,
    /// Chunks of work it held when it died, given to the survivors.
    pub chunks_redone: u64,
    /// Units in those chunks.
    pub units_redone: u64,
}

impl Drop for Spmd {
    /// Before MPI is finalised (the universe drops after this): one byte
    /// from every rank to every other, on `world`, waited for. Every pair's
    /// connection is then open and idle when MPI closes it. Without it,
    /// MPICH 4.0 over UCX's TCP transport hung in `MPI_Finalize` in most runs
    /// across hosts: a rank whose connection to a peer was still being set up
    /// (or busy) waits in finalize for that peer's progress, while the peer
    /// already waits in the launcher's PMI barrier and makes none
    /// (docs/deploy-k3s.md, "MPICH"). Every rank ends through here (a failing
    /// rank returns its error the same way; aborts and the deadline do not
    /// finalise), so no rank waits for one that will not come.
    fn drop(&mut self) {
        let (size, me) = (self.size(), self.rank());
        if size < 2 || std::thread::panicking() {
            return;
        }
        let world = self.world();
        let token = [0u8];
        let mut inbox = vec![0u8; size];
        mpi::request::scope(|scope| {
            let mut requests = Vec::with_capacity(2 * size);
            for (peer, slot) in inbox.chunks_mut(1).enumerate().filter(|(peer, _)| *peer != me) {
                let process = world.process_at_rank(peer as mpi::Rank);
                requests.push(process.immediate_receive_into_with_tag(scope, slot, tags::FAREWELL));
            }
            for peer in (0..size).filter(|peer| *peer != me) {
                let process = world.process_at_rank(peer as mpi::Rank);
                requests.push(process.immediate_send_with_tag(scope, &token[..], tags::FAREWELL));
            }
            for request in requests {
                request.wait();
            }
        });
    }
}

static PANICKED: AtomicBool = AtomicBool::new(false);

impl Spmd {
    /// Initialises MPI for a rank that will run `threads` rayon threads
    /// (default: [`Node::default_threads`], the cores this process may use
    /// shared with the ranks on its node that may use them too); the pool
    /// itself is started by [`Spmd::start_pool`], once the job has agreed that
    /// every rank's thread count is sane.
    pub fn init(threads: Option<usize>) -> Result<Spmd> {
        let launch = Launch::from_env();
        ending::watch_exits(whereabouts(
            launch.rank as usize,
            launch.size as usize,
            &crate::output::hostname().unwrap_or_else(|| "unknown".into()),
        ));
        deadline::phase("starting MPI");
        let (universe, _provided) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| anyhow!("MPI was already initialised"))?;
        ending::started();
        deadline::phase("learning its node (MPI_Comm_split_type)");
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let node = Node::of(&world);
        let ulfm = ulfm::Ulfm::detect(&world);
        let threads = threads.unwrap_or(node.default_threads());
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "unknown".into());
        deadline::phase("checking its resources");
        install_panic_hook(rank, host.clone());
        crate::signals::install(whereabouts(rank, size, &host), launch.size > 1)
            .context("cannot install the signal handler")?;
        let members = Members::new(world, (0..size).collect());
        Ok(Spmd { _universe: universe, members, ulfm, losses: RefCell::new(Vec::new()), threads, node, host })
    }

    /// Starts this rank's rayon pool of [`Spmd::threads`] threads (before
    /// any parallel work: the first use of rayon would start a default pool).
    pub fn start_pool(&self) -> Result<()> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("pikernels-worker-{i}"))
            .build_global()
            .context("cannot start the rayon thread pool")
    }

    /// The ranks the job runs on now.
    fn members(&self) -> &Members {
        let mut m = &self.members;
        while let Some(next) = m.after_loss.get() {
            m = next;
        }
        m
    }

    /// This process's rank (among the survivors, after a loss: rank 0 stays 0).
    pub fn rank(&self) -> usize {
        self.members().rank
    }

    /// Number of ranks (that are left, after a loss).
    pub fn size(&self) -> usize {
        self.members().size
    }

    /// The rank each rank was started as, in rank order: `0..size` until a
    /// rank is lost.
    pub fn started_as(&self) -> &[usize] {
        &self.members().started_as
    }

    /// Whether this is rank 0, which prints the report and writes outputs.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Whether a rank's death can be survived: the MPI library has ULFM and
    /// the job was started with fault tolerance on.
    pub(crate) fn ulfm(&self) -> Option<&ulfm::Ulfm> {
        self.ulfm.as_ref()
    }

    /// The ranks lost so far (on rank 0 with what was redone of theirs).
    pub fn losses(&self) -> Vec<Loss> {
        self.losses.borrow().clone()
    }

    /// Where the ranks meet after the dynamic strategy's requests: with
    /// ULFM, the survivors first make a communicator of themselves (every
    /// rank calls this; a rank that died is left out), and every later call
    /// runs on it; then the [`Spmd::checkpoint`]. `redone` (rank 0's) lists
    /// the chunks of lost ranks that were given to others, by the rank that
    /// held them (numbered as before the loss).
    pub(crate) fn regroup(&self, redone: &[(usize, Range<u64>)]) {
        if let Some(ulfm) = &self.ulfm {
            deadline::phase("regrouping after the dynamic strategy (MPIX_Comm_shrink)");
            let before = self.members();
            let survivors = ulfm.shrink(&before.world);
            if (survivors.size() as usize) < before.size {
                let me = [before.started_as[before.rank] as u64];
                let mut all = vec![0u64; survivors.size() as usize];
                survivors.all_gather_into(&me[..], &mut all[..]);
                let started_as: Vec<usize> = all.iter().map(|&r| r as usize).collect();
                let mut losses = self.losses.borrow_mut();
                for (r, &rank) in before.started_as.iter().enumerate() {
                    if started_as.contains(&rank) {
                        continue;
                    }
                    let theirs = redone.iter().filter(|(holder, _)| *holder == r);
                    losses.push(Loss {
                        rank,
                        chunks_redone: theirs.clone().count() as u64,
                        units_redone: theirs.map(|(_, u)| u.end - u.start).sum(),
                    });
                    if self.is_root() {
                        let l = losses.last().expect("just pushed");
                        eprintln!(
                            "pikernels: warning: lost {}; {} of its work redone by the others ({} chunk(s), {} units); \
                             going on with {} of {} ranks",
                            deadline::rank_name(rank),
                            if l.chunks_redone > 0 { "the unfinished part" } else { "none" },
                            l.chunks_redone,
                            l.units_redone,
                            started_as.len(),
                            self.members.size
                        );
                    }
                }
                let next = Members::new(survivors, started_as);
                if before.after_loss.set(Box::new(next)).is_err() {
                    unreachable!("the last members have no successor yet");
                }
            }
        }
        self.checkpoint();
    }

    /// Rayon threads of this rank.
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub(crate) fn world(&self) -> &SimpleCommunicator {
        &self.members().world
    }

    /// Combines a check every rank made on its own into one decision: `Ok` on
    /// every rank if all passed, else a `Failure` on every rank. The lowest
    /// failing rank alone prints `message` (once for the job), and every rank
    /// waits until it has, since mpirun kills the rest as soon as one rank
    /// exits non-zero.
    pub fn agree(&self, local: Result<()>, message: impl FnOnce(&anyhow::Error)) -> Result<(), Failure> {
        let rank = self.rank();
        let mine = if local.is_err() { rank as u64 } else { u64::MAX };
        let mut lowest = u64::MAX;
        // Non-blocking and polled: a rank waiting here for a stopped one
        // sleeps, and the watchdog can end the job.
        mpi::request::scope(|scope| {
            let request = self.world().immediate_all_reduce_into(scope, &mine, &mut lowest, SystemOperation::min());
            wait_gently(request);
        });
        if lowest == u64::MAX {
            return Ok(());
        }
        if let (true, Err(e)) = (lowest as usize == rank, &local) {
            message(e);
            use std::io::Write;
            let _ = std::io::stderr().flush();
        }
        // The job ends here, its message out (the barrier waits for the
        // rank that says it): from now on a stop signal is mpirun's answer
        // to the first rank out, not news for the user.
        crate::signals::ending_quietly();
        self.world().barrier();
        Err(Failure)
    }

    /// Where every rank has finished its share of the work and waits for the
    /// others before results travel: rank 0 collects one note from every
    /// rank, then all meet at a barrier. Both waits poll and sleep, so a rank
    /// waiting here for a stopped or slow rank uses next to no CPU; when the
    /// `--timeout` passes, rank 0 names the ranks that have not arrived and
    /// ends the job (see [`deadline`]).
    pub fn checkpoint(&self) {
        deadline::phase("waiting for the other ranks to finish their share");
        let members = self.members();
        checkpoint_on(&members.watch, &members.started_as);
        deadline::phase("sending results");
    }

    /// A label for messages: empty for a one-rank job, else " on rank R (host)".
    pub fn whereabouts(&self) -> String {
        whereabouts(self.members.rank, self.members.size, &self.host)
    }

    /// Gathers every rank's host name at rank 0 (`None` elsewhere).
    pub fn gather_hosts(&self) -> Option<Vec<String>> {
        const LEN: usize = 256; // MPI_MAX_PROCESSOR_NAME in OpenMPI and MPICH
        let mut mine = [0u8; LEN];
        let bytes = self.host.as_bytes();
        mine[..bytes.len().min(LEN)].copy_from_slice(&bytes[..bytes.len().min(LEN)]);
        let root = self.world().process_at_rank(0);
        if !self.is_root() {
            root.gather_into(&mine[..]);
            return None;
        }
        let mut all = vec![0u8; LEN * self.size()];
        root.gather_into_root(&mine[..], &mut all[..]);
        Some(
            all.chunks(LEN)
                .map(|c| String::from_utf8_lossy(&c[..c.iter().position(|&b| b == 0).unwrap_or(LEN)]).into_owned())
                .collect(),
        )
    }

    /// Gathers every rank's statistics at rank 0 (`None` elsewhere).
    pub fn gather_stats(&self, stats: RankStats) -> Option<Vec<RankStats>> {
        let mine = RankStats { node_cores: self.node.cores as u64, ..stats }.to_array();
        let root = self.world().process_at_rank(0);
        if !self.is_root() {
            root.gather_into(&mine[..]);
            return None;
        }
        let mut all = vec![0.0f64; RankStats::FIELDS * self.size()];
        root.gather_into_root(&mine[..], &mut all[..]);
        Some(all.chunks(RankStats::FIELDS).map(RankStats::from_slice).collect())
    }
}

/// The MPI library this binary runs with: the first line of
/// `MPI_Get_library_version` (callable before `MPI_Init`), without
/// OpenMPI's package and date details.
pub fn mpi_library() -> String {
    let full = mpi::environment::library_version().unwrap_or_default();
    let first = full.lines().next().unwrap_or("").trim_matches(char::from(0)).trim();
    let name = first.split(", package:").next().unwrap_or(first);
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Words of a CPU mask: 1024 CPUs, glibc's `cpu_set_t`.
const MASK_WORDS: usize = 16;

/// A rank's view of its node (the ranks that share memory with it,
/// `MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`), learnt once at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// Cores this rank may use (affinity mask and cgroup quota).
    pub cores_mine: usize,
    /// Ranks on the node whose CPU masks overlap this rank's, itself included:
    /// the ranks that compete for its cores.
    pub sharing: usize,
    /// Ranks on the node.
    pub ranks: usize,
    /// Cores the node's ranks may use between them: the union of their
    /// masks, capped by what ranks may use per distinct mask (a cgroup quota
    /// shared by a container's ranks).
    pub cores: usize,
}

impl Node {
    /// Learns the node from its ranks' masks (a collective call on `world`).
    fn of(world: &SimpleCommunicator) -> Node {
        let node = world.split_shared(world.rank());
        let mut mine = [0u64; MASK_WORDS + 1];
        mine[..MASK_WORDS].copy_from_slice(&affinity());
        mine[MASK_WORDS] = threads::max_threads().0 as u64;
        let mut all = vec![0u64; (MASK_WORDS + 1) * node.size() as usize];
        node.all_gather_into(&mine[..], &mut all[..]);
        Node::from_masks(&mine, &all)
    }

    /// The node seen from `mine` (mask words then core count), given every
    /// node rank's in `all`.
    fn from_masks(mine: &[u64], all: &[u64]) -> Node {
        let ranks: Vec<&[u64]> = all.chunks(MASK_WORDS + 1).collect();
        let overlaps = |other: &[u64]| mine[..MASK_WORDS].iter().zip(other).any(|(a, b)| a & b != 0);
        let union: u32 = (0..MASK_WORDS).map(|w| ranks.iter().fold(0u64, |acc, r| acc | r[w]).count_ones()).sum();
        // Per distinct mask the most cores a rank with it may use (ranks in
        // one container share its quota), summed over the distinct masks.
        let mut masks: Vec<(&[u64], u64)> = Vec::new();
        for r in &ranks {
            match masks.iter_mut().find(|(m, _)| *m == &r[..MASK_WORDS]) {
                Some((_, most)) => *most = (*most).max(r[MASK_WORDS]),
                None => masks.push((&r[..MASK_WORDS], r[MASK_WORDS])),
            }
        }
        let quota: u64 = masks.iter().map(|(_, most)| most).sum();
        Node {
            cores_mine: mine[MASK_WORDS] as usize,
            sharing: ranks.iter().filter(|r| overlaps(r)).count().max(1),
            ranks: ranks.len(),
            cores: (union as usize).min(quota as usize).max(1),
        }
    }

    /// The default `--threads`: this rank's cores divided among the ranks
    /// that compete for them, at least 1. Ranks bound to their own cores
    /// (OpenMPI's default for up to two ranks) use all of theirs; twelve
    /// unbound ranks on two cores get one thread each.
    pub fn default_threads(&self) -> usize {
        (self.cores_mine / self.sharing.max(1)).max(1)
    }
}

/// This process's CPU affinity mask; all CPUs where it cannot be read.
fn affinity() -> [u64; MASK_WORDS] {
    let mut words = [0u64; MASK_WORDS];
    // SAFETY: a zeroed cpu_set_t is a valid empty set, sched_getaffinity
    // writes at most its size, and CPU_ISSET reads within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return [u64::MAX; MASK_WORDS];
        }
        for cpu in 0..MASK_WORDS * 64 {
            if libc::CPU_ISSET(cpu, &set) {
                words[cpu / 64] |= 1 << (cpu % 64);
            }
        }
    }
    words
}

/// A barrier on `comm` that knows who is missing: every rank sends rank 0 of
/// `comm` a note, rank 0 collects them, then all meet at a barrier. Both
/// waits poll and sleep ([`deadline::Pause`]); when the `--timeout` passes,
/// rank 0 names the ranks (`world_ranks[r]` for rank `r` of `comm`) whose
/// note has not come and ends the job. Its notes use [`tags::CHECKPOINT`],
/// which no other message uses.
pub(crate) fn checkpoint_on(comm: &SimpleCommunicator, world_ranks: &[usize]) {
    let (rank, size) = (comm.rank() as usize, comm.size() as usize);
    if size == 1 {
        return;
    }
    if rank == 0 {
        let mut arrived = vec![false; size];
        arrived[0] = true;
        let mut missing = size - 1;
        let mut pause = deadline::Pause::new();
        while missing > 0 {
            if let Some(probed) = comm.any_process().immediate_matched_probe_with_tag(tags::CHECKPOINT) {
                let (_, status): (Vec<u8>, _) = mpi::point_to_point::MatchedReceiveVec::matched_receive_vec(probed);
                if !std::mem::replace(&mut arrived[status.source_rank() as usize], true) {
                    missing -= 1;
                }
                pause.reset();
                continue;
            }
            if deadline::expired() {
                deadline::expire_missing((0..size).filter(|&r| !arrived[r]).map(|r| world_ranks[r]));
            }
            pause.wait();
        }
    } else {
        comm.process_at_rank(0).send_with_tag(&[1u8][..], tags::CHECKPOINT);
    }
    wait_gently(comm.immediate_barrier());
}

/// Waits for a non-blocking request by polling it, sleeping between polls;
/// past the `--timeout` the job ends, naming rank 0 as the one not answering
/// (a wait that rank 0 could have ended).
pub fn wait_gently<'a, D: ?Sized, S: mpi::request::Scope<'a>>(mut request: mpi::request::Request<'a, D, S>) {
    let mut pause = deadline::Pause::new();
    loop {
        match request.test() {
            Ok(_) => return,
            Err(pending) => request = pending,
        }
        if deadline::expired() {
            deadline::expire(&format!(
                "{} was still waiting for the other ranks, and no rank ended the job first",
                deadline::rank_name(deadline::this_rank())
            ));
        }
        pause.wait();
    }
}

fn whereabouts(rank: usize, size: usize, host: &str) -> String {
    if size == 1 {
        String::new()
    } else {
        format!(" on rank {rank} of {size} ({host})")
    }
}

/// A panic anywhere (any rank, any thread) prints one line naming the rank
/// and aborts the MPI job, so no other rank waits forever on this one.
fn install_panic_hook(rank: usize, host: String) {
    std::panic::set_hook(Box::new(move |info| {
        if PANICKED.swap(true, Ordering::SeqCst) {
            return;
        }
        ending::backstop(crate::exit::Exit::Internal as i32);
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("pikernels: internal error on rank {rank} ({host}): {what}{at}");
        ending::abort(crate::exit::Exit::Internal as i32);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rank's mask words and core count, as `Node::of` gathers them.
    fn rank(cpus: &[usize], cores: u64) -> Vec<u64> {
        let mut r = vec![0u64; MASK_WORDS + 1];
        for &c in cpus {
            r[c / 64] |= 1 << (c % 64);
        }
        r[MASK_WORDS] = cores;
        r
    }

    #[test]
    fn unbound_ranks_share_the_node_and_bound_ones_do_not() {
        // Twelve unbound ranks on two cores: one thread each, oversubscribed.
        let all: Vec<u64> = (0..12).flat_map(|_| rank(&[0, 1], 2)).collect();
        let n = Node::from_masks(&rank(&[0, 1], 2), &all);
        assert_eq!((n.sharing, n.ranks, n.cores, n.default_threads()), (12, 12, 2, 1));
        // Three unbound ranks on eight cores: two threads each (8 / 3).
        let all: Vec<u64> = (0..3).flat_map(|_| rank(&[0, 1, 2, 3, 4, 5, 6, 7], 8)).collect();
        assert_eq!(Node::from_masks(&rank(&[0, 1, 2, 3, 4, 5, 6, 7], 8), &all).default_threads(), 2);
        // Two ranks bound to a core each: each keeps its core.
        let all = [rank(&[0], 1), rank(&[1], 1)].concat();
        let n = Node::from_masks(&rank(&[1], 1), &all);
        assert_eq!((n.sharing, n.ranks, n.cores, n.default_threads()), (1, 2, 2, 1));
        // Two ranks bound to four cores each on a 1000-CPU machine (high words).
        let all = [rank(&[0, 1, 2, 3], 4), rank(&[960, 961, 962, 963], 4)].concat();
        let n = Node::from_masks(&rank(&[960, 961, 962, 963], 4), &all);
        assert_eq!((n.sharing, n.cores, n.default_threads()), (1, 8, 4));
        // A container quota of 2 CPUs over a 16-CPU mask, two ranks: one thread each.
        let cpus: Vec<usize> = (0..16).collect();
        let all = [rank(&cpus, 2), rank(&cpus, 2)].concat();
        let n = Node::from_masks(&rank(&cpus, 2), &all);
        assert_eq!((n.cores, n.default_threads()), (2, 1));
    }
}
