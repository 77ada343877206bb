//! Nearest-neighbour halo exchange on a 2-D process grid, for stencil
//! kernels whose ranks each own a block of a 2-D field.
//!
//! A [`Halo`] is one rank's view of a non-periodic `rows x cols` process grid
//! (rank `r` at grid row `r / cols`, column `r % cols`, as in
//! [`super::grid`]): its four neighbours, `None` at the grid's edge (where a
//! kernel keeps its fixed boundary), and one buffer of `f64`s per direction
//! to send and one to receive. Each exchange the caller fills the outgoing
//! edges ([`Halo::outgoing`]), then [`Halo::exchange`] starts the messages,
//! runs the caller's closure while they travel (the cells that need no
//! ghost), waits, and hands back what each neighbour sent.
//!
//! A stencil kernel need not pack edges itself: a [`GhostExchange`] refreshes
//! the ghost layers of a block (`kernels::block::Block`, any depth) from
//! one or two halos, the corners included.
//!
//! - [`Comm::P2p`]: non-blocking receives and sends with each neighbour on a
//!   communicator of the halo's own (a duplicate of the world), tagged by
//!   the direction a message travels ([`tags::HALO_NORTH`] ...). A direction
//!   of length 0 sends and receives nothing (both ends know it is empty),
//!   so a halo may carry only the rows, or only the columns.
//! - [`Comm::Collective`]: one MPI-3 `MPI_Ineighbor_alltoallv` on a
//!   Cartesian communicator (rsmpi's `MPI_Cart_create`, no reordering, made
//!   when the halo is built, so before a kernel's timed region; freed with
//!   the halo). rsmpi 0.8 has no neighbourhood collectives, so that one call
//!   goes through `mpi::ffi`; a missing neighbour is `MPI_PROC_NULL` there
//!   and its receive buffer is left alone.
//!
//! Both move the same values to the same places, so a kernel's results do
//! not depend on `--comm`.

use super::blocks::Blocks;
use super::exchange::mpi_counts;
use super::{tags, Comm, Spmd};
use kernels::block::Block;
use mpi::raw::AsRaw;
use mpi::topology::{CartesianCommunicator, SimpleCommunicator};
use mpi::traits::*;
use mpi::{Rank, Tag};
use std::ops::Range;

/// Directions, in the order of a Cartesian communicator's neighbourhood
/// (dimension 0 = grid rows, then 1 = grid columns; minus side first): the
/// neighbour one grid row up.
pub const NORTH: usize = 0;
/// The neighbour one grid row down.
pub const SOUTH: usize = 1;
/// The neighbour one grid column left.
pub const WEST: usize = 2;
/// The neighbour one grid column right.
pub const EAST: usize = 3;
/// The direction opposite each: what arrives from the north travelled south.
pub const OPPOSITE: [usize; 4] = [SOUTH, NORTH, EAST, WEST];

/// The tag of a message travelling in each direction (`p2p`).
const TRAVELLING: [Tag; 4] = [tags::HALO_NORTH, tags::HALO_SOUTH, tags::HALO_WEST, tags::HALO_EAST];

/// The neighbours (north, south, west, east; `None` at the edge) of grid
/// position `(row, col)` on a non-periodic `rows x cols` grid, as job-wide
/// ranks.
pub fn neighbours((rows, cols): (usize, usize), (row, col): (usize, usize)) -> [Option<usize>; 4] {
    let at = |r: Option<usize>, c: Option<usize>| match (r, c) {
        (Some(r), Some(c)) if r < rows && c < cols => Some(super::grid::rank_at(cols, r, c)),
        _ => None,
    };
    [
        at(row.checked_sub(1), Some(col)),
        at(Some(row + 1), Some(col)),
        at(Some(row), col.checked_sub(1)),
        at(Some(row), Some(col + 1)),
    ]
}

/// One rank's halo exchange on a process grid.
pub struct Halo {
    /// The halo's own duplicate of the world (`p2p`).
    comm: SimpleCommunicator,
    /// The Cartesian communicator (`collective`).
    cart: Option<CartesianCommunicator>,
    neighbours: [Option<usize>; 4],
    /// Elements per direction (north, south, west, east).
    lens: [usize; 4],
    /// The outgoing edges, one after another in direction order.
    send: Vec<f64>,
    /// The received halos, laid out as `send`.
    recv: Vec<f64>,
}

impl Spmd {
    /// This rank's halo exchange on a `rows x cols` process grid (`dims`,
    /// whose product must be the job's size), where this rank sits at `at`
    /// = `(row, col)` (its rank is `row * cols + col`), moving `lens[d]`
    /// values in each direction `d`. A neighbour's count towards this rank must equal
    /// this rank's count towards it (a kernel's row edges are as long as its
    /// column neighbours' and its column edges as its row neighbours').
    ///
    /// A collective call: every rank must make it. `comm` is `P2p` or
    /// `Collective` (the kernel refuses `Dynamic` before any message).
    pub fn halo(&self, comm: Comm, dims: (usize, usize), at: (usize, usize), lens: [usize; 4]) -> Halo {
        let (rows, cols) = dims;
        assert_eq!(rows * cols, self.size(), "a {rows}x{cols} process grid for {} ranks", self.size());
        assert_eq!(super::grid::rank_at(cols, at.0, at.1), self.rank(), "rank {} placed at {at:?}", self.rank());
        assert_ne!(comm, Comm::Dynamic, "a halo exchange has no dynamic form");
        let comm_dup = self.world().duplicate();
        let cart = (comm == Comm::Collective).then(|| {
            let (dims, periods) = ([rows as Rank, cols as Rank], [false, false]);
            comm_dup
                .create_cartesian_communicator(&dims, &periods, false)
                .expect("every rank is on the grid, so every rank gets the Cartesian communicator")
        });
        let total: usize = lens.iter().sum();
        mpi_counts(&lens); // every count and displacement fits MPI's 32 bits
        Halo {
            comm: comm_dup,
            cart,
            neighbours: neighbours(dims, at),
            lens,
            send: vec![0.0; total],
            recv: vec![0.0; total],
        }
    }
}

impl Halo {
    /// Whether this rank has no neighbour at all (a 1x1 grid: nothing to
    /// exchange; every rank of a larger grid has one).
    pub fn is_alone(&self) -> bool {
        self.neighbours.iter().all(Option::is_none)
    }

    /// The four outgoing edges (north, south, west, east), for the caller to
    /// fill before [`Halo::exchange`]; those towards no neighbour are not sent.
    pub fn outgoing(&mut self) -> [&mut [f64]; 4] {
        split_mut(&mut self.send, self.lens)
    }

    /// Sends the outgoing edges to the neighbours and receives theirs,
    /// running `overlap` while the messages travel; returns its value and
    /// the halo received from each direction (`None` where there is no
    /// neighbour).
    pub fn exchange<R>(&mut self, overlap: impl FnOnce() -> R) -> (R, [Option<&[f64]>; 4]) {
        let value = if self.cart.is_some() { self.exchange_collective(overlap) } else { self.exchange_p2p(overlap) };
        let spans = spans(self.lens);
        let received = [0, 1, 2, 3].map(|d| self.neighbours[d].map(|_| &self.recv[spans[d].clone()]));
        (value, received)
    }

    /// Non-blocking receives and sends with each neighbour, `overlap` run
    /// while they travel.
    fn exchange_p2p<R>(&mut self, overlap: impl FnOnce() -> R) -> R {
        let (comm, neighbours, spans) = (&self.comm, self.neighbours, spans(self.lens));
        let (send, recv) = (&self.send, split_mut(&mut self.recv, self.lens));
        mpi::request::scope(|scope| {
            let mut requests = Vec::with_capacity(8);
            for (d, part) in recv.into_iter().enumerate() {
                if let (Some(from), false) = (neighbours[d], part.is_empty()) {
                    let tag = TRAVELLING[OPPOSITE[d]];
                    requests.push(comm.process_at_rank(from as Rank).immediate_receive_into_with_tag(scope, part, tag));
                }
            }
            for (d, span) in spans.into_iter().enumerate() {
                if let (Some(to), false) = (neighbours[d], span.is_empty()) {
                    let part = &send[span];
                    requests.push(comm.process_at_rank(to as Rank).immediate_send_with_tag(scope, part, TRAVELLING[d]));
                }
            }
            let value = overlap();
            for request in requests {
                request.wait();
            }
            value
        })
    }

    /// `MPI_Ineighbor_alltoallv` of the four edges on the Cartesian
    /// communicator, `overlap` run while it travels.
    fn exchange_collective<R>(&mut self, overlap: impl FnOnce() -> R) -> R {
        use mpi::ffi;
        let cart = self.cart.as_ref().expect("a collective halo has its Cartesian communicator").as_raw();
        let (counts, displs) = mpi_counts(&self.lens);
        // SAFETY: reading a handle constant.
        let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: `send` and `recv` hold the sum of `lens` doubles, within
        // which the counts and displacements (four each, one per neighbour
        // of the 2-D Cartesian communicator) stay; neither buffer is moved
        // or touched until MPI_Wait below returns (`overlap` cannot reach
        // them: they are borrowed by this call).
        let rc = unsafe {
            ffi::MPI_Ineighbor_alltoallv(
                self.send.as_ptr().cast(),
                counts.as_ptr(),
                displs.as_ptr(),
                ffi::RSMPI_DOUBLE,
                self.recv.as_mut_ptr().cast(),
                counts.as_ptr(),
                displs.as_ptr(),
                ffi::RSMPI_DOUBLE,
                cart,
                &mut request,
            )
        };
        assert_eq!(rc, 0, "MPI_Ineighbor_alltoallv failed");
        let value = overlap();
        // SAFETY: `request` is the pending request started above.
        let rc = unsafe { ffi::MPI_Wait(&mut request, ffi::RSMPI_STATUS_IGNORE) };
        assert_eq!(rc, 0, "MPI_Wait failed");
        value
    }
}

/// A block's ghost layers refreshed from its neighbours' edges: what a
/// stencil kernel whose ranks each own a [`Block`] of a field on a process
/// grid ([`Blocks`]) calls once every `g` steps, `g` being the block's
/// ghost layers (its halo depth).
///
/// - Depth 1: one phase carries all four sides, the block's edge rows and
///   columns over its own cells; no corner is ever read.
/// - Depth `K > 1`: a ghost cell updated by a later sub-step needs the
///   diagonal neighbours' cells (a cell `a` layers north and `b` west of
///   the block depends on them from sub-step 2 on). They travel in two
///   phases: first the rows (north and south, over the block's own
///   columns), then the columns (west and east) over every buffer row, the
///   ghost rows just received included, so a west neighbour passes on what
///   its north neighbour sent it. A Cartesian communicator's neighbourhood
///   has only the four sides, so this works unchanged for the collective;
///   eight neighbours would need a graph communicator and four more
///   messages of `K x K`. The second phase has nothing to overlap.
pub struct GhostExchange {
    block: Block,
    /// The first phase: rows north and south, and with depth 1 the columns
    /// west and east too.
    rows: Halo,
    /// The second phase (depth above 1): columns west and east over every
    /// buffer row, carrying the corners.
    cols: Option<Halo>,
}

/// The values each phase of a [`GhostExchange`] carries per direction
/// (north, south, west, east): depth 1, one phase of the edges; depth
/// `K > 1`, `K` rows of `w`, then `K` columns of all `h + 2K` buffer rows.
pub fn phase_lens(b: Block) -> ([usize; 4], Option<[usize; 4]>) {
    let (k, h, w) = (b.g, b.h, b.w);
    if k == 1 {
        ([w, w, h, h], None)
    } else {
        let col = k * (h + 2 * k);
        ([k * w, k * w, 0, 0], Some([0, 0, col, col]))
    }
}

impl Spmd {
    /// This rank's [`GhostExchange`] for its `block` (its place on
    /// `blocks`, with the ghost layers it keeps). A collective call: every
    /// rank must make it, before a kernel's timed region.
    pub fn ghost_exchange(&self, comm: Comm, blocks: &Blocks, block: Block) -> GhostExchange {
        let (first, second) = phase_lens(block);
        let halo = |lens| self.halo(comm, blocks.dims, blocks.position(self.rank()), lens);
        GhostExchange { block, rows: halo(first), cols: second.map(halo) }
    }
}

impl GhostExchange {
    /// Whether this rank has no neighbour (a 1x1 grid: nothing to refresh).
    pub fn is_alone(&self) -> bool {
        self.rows.is_alone()
    }

    /// Which sides (north, south, west, east) have a neighbour; the others
    /// keep their ghosts (a fixed boundary).
    pub fn sides(&self) -> [bool; 4] {
        self.rows.neighbours.map(|n| n.is_some())
    }

    /// Fills `buf`'s ghost layers (a buffer of the block) with the
    /// neighbours' edges, and runs `overlap` on `buf` while the first phase
    /// travels (it must not need the ghosts: the cells a stencil can update
    /// without them). Returns `overlap`'s value.
    pub fn refresh<R>(&mut self, buf: &mut [f64], overlap: impl FnOnce(&[f64]) -> R) -> R {
        let b = self.block;
        let [north, south, west, east] = self.rows.outgoing();
        b.edge_rows(buf, north, south);
        if self.cols.is_none() {
            b.edge_cols(buf, b.own_rows(), west, east);
        }
        let shared: &[f64] = buf;
        let (value, [north, south, west, east]) = self.rows.exchange(|| overlap(shared));
        b.fill_ghost_rows(north, south, buf);
        match &mut self.cols {
            Some(cols) => {
                let [_, _, west, east] = cols.outgoing();
                b.edge_cols(buf, b.all_rows(), west, east);
                let ((), [_, _, west, east]) = cols.exchange(|| ());
                b.fill_ghost_cols(b.all_rows(), west, east, buf);
            }
            None => b.fill_ghost_cols(b.own_rows(), west, east, buf),
        }
        value
    }
}

/// Where each direction's values lie in a buffer of the four, in order.
fn spans(lens: [usize; 4]) -> [Range<usize>; 4] {
    let mut start = 0;
    lens.map(|len| {
        start += len;
        start - len..start
    })
}

/// `buf` cut into the four directions' parts.
fn split_mut(buf: &mut [f64], lens: [usize; 4]) -> [&mut [f64]; 4] {
    let (north, rest) = buf.split_at_mut(lens[0]);
    let (south, rest) = rest.split_at_mut(lens[1]);
    let (west, rest) = rest.split_at_mut(lens[2]);
    [north, south, west, &mut rest[..lens[3]]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_are_mutual_and_absent_only_at_the_edge() {
        for (rows, cols) in [(1, 1), (1, 5), (5, 1), (2, 3), (4, 4)] {
            for rank in 0..rows * cols {
                let at = (rank / cols, rank % cols);
                let n = neighbours((rows, cols), at);
                assert_eq!(n[NORTH].is_none(), at.0 == 0);
                assert_eq!(n[SOUTH].is_none(), at.0 == rows - 1);
                assert_eq!(n[WEST].is_none(), at.1 == 0);
                assert_eq!(n[EAST].is_none(), at.1 == cols - 1);
                for (d, other) in n.into_iter().enumerate() {
                    if let Some(o) = other {
                        assert_eq!(neighbours((rows, cols), (o / cols, o % cols))[OPPOSITE[d]], Some(rank));
                    }
                }
            }
        }
    }

    #[test]
    fn the_four_parts_tile_the_buffer_in_order() {
        let lens = [3, 3, 2, 2];
        assert_eq!(spans(lens), [0..3, 3..6, 6..8, 8..10]);
        let mut buf: Vec<f64> = (0..10).map(f64::from).collect();
        let parts = split_mut(&mut buf, lens);
        assert_eq!(parts.map(|p| p.to_vec()), [vec![0., 1., 2.], vec![3., 4., 5.], vec![6., 7.], vec![8., 9.]]);
    }
}
