//! The steps: one rank's block as it evolves, its ghost layers refreshed
//! by the runtime every `K` steps ([`GhostExchange`]) while the cells that
//! need no ghost are updated.

use super::{timed, Layout};
use crate::progress::Progress;
use crate::spmd::halo::GhostExchange;
use crate::spmd::{Comm, RankStats, Spmd};
use kernels::heat::{self, Block, Params};
use std::ops::Range;
use std::time::Instant;

/// One rank's block as it evolves: what [`super::Heat`]'s run advances,
/// any number of steps at a time.
pub(super) struct Evolving {
    /// The block, with `--halo-depth` ghost layers.
    pub b: Block,
    r: f64,
    /// The block's buffer now, and the one the next step writes.
    pub cur: Vec<f64>,
    next: Vec<f64>,
    ghosts: GhostExchange,
}

impl Evolving {
    /// The rank's initial block and its ghost exchange (a collective call:
    /// every rank makes it, before the timed region).
    pub fn new(spmd: &Spmd, comm: Comm, l: &Layout, p: &Params, depth: usize) -> Evolving {
        let b = l.block(depth);
        let cur = b.initial(p, l.rows.clone(), l.cols.clone());
        let ghosts = spmd.ghost_exchange(comm, &l.blocks, b);
        Evolving { b, r: p.r, next: cur.clone(), cur, ghosts }
    }

    /// The rank's block holding `cells` (its block's cells, row-major, as a
    /// kept field dealt them out), and its ghost exchange (collective).
    pub fn from_cells(spmd: &Spmd, comm: Comm, l: &Layout, p: &Params, depth: usize, cells: &[f64]) -> Evolving {
        let b = l.block(depth);
        let cur = b.ghosted(cells);
        let ghosts = spmd.ghost_exchange(comm, &l.blocks, b);
        Evolving { b, r: p.r, next: cur.clone(), cur, ghosts }
    }

    /// Advances the block over the steps `steps` (rank 0 tells `progress`
    /// after each exchange): an exchange every `K` steps, the last covering
    /// what is left. `compute_s` is the stencil; `comm_s` the rest (packing,
    /// the waits, unpacking).
    pub fn advance(&mut self, steps: Range<u64>, stats: &mut RankStats, progress: &Progress) {
        let mut at = steps.start;
        while at < steps.end {
            let m = (steps.end - at).min(self.b.g as u64) as usize;
            self.exchange_and_step(m, stats);
            at += m as u64;
            progress.set(at);
        }
    }

    /// One refresh of the ghosts, then `m` sub-steps (at most the depth):
    /// the interior updated while the first phase travels, the rest of
    /// sub-step 0 once the ghosts are in, and the others over what
    /// [`heat::grown`] allows.
    fn exchange_and_step(&mut self, m: usize, stats: &mut RankStats) {
        let (b, r) = (self.b, self.r);
        if self.ghosts.is_alone() {
            for _ in 0..m {
                stats.compute_s += timed(|| heat::step_block(b, &self.cur, &mut self.next, r)).1;
                std::mem::swap(&mut self.cur, &mut self.next);
            }
            return;
        }
        let t = Instant::now();
        let (cur, next) = (&mut self.cur, &mut self.next);
        let compute_s = self.ghosts.refresh(cur, |cur| timed(|| heat::step_interior(b, cur, next, r)).1);
        stats.comm_s += t.elapsed().as_secs_f64() - compute_s;
        let t = Instant::now();
        let sides = self.ghosts.sides();
        heat::step_around(b, heat::grown(sides, m, 0), cur, next, r);
        std::mem::swap(cur, next);
        for s in 1..m {
            heat::step_interior(b, cur, next, r);
            heat::step_around(b, heat::grown(sides, m, s), cur, next, r);
            std::mem::swap(cur, next);
        }
        stats.compute_s += compute_s + t.elapsed().as_secs_f64();
    }

    /// The block's cells, row-major, without ghosts.
    pub fn cells(&self) -> Vec<f64> {
        self.b.cells(&self.cur)
    }
}
