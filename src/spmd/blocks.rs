//! A 2-D field cut into blocks on a process grid: where each rank's block
//! lies ([`Blocks`]), and the two ways a grid kernel's blocks move once its
//! steps are done: gathered at one rank into the whole field
//! ([`Team::gather_blocks`]), or dealt out as bands of whole rows, one band
//! per rank ([`Team::blocks_to_bands`]; the PNG is compressed by bands).
//!
//! Rank `r` sits at grid row `r / cols`, column `r % cols` (as in
//! [`super::grid`]; its neighbours as [`super::halo::neighbours`] finds
//! them) and owns `block_slice` of the field's rows and columns:
//! blocks differ by at most one row or column, and every rank computes
//! every block's place alike, with no message.

use super::exchange::Team;
use super::Comm;
use kernels::partition::block_slice;
use mpi::traits::Equivalence;
use std::ops::Range;

/// A field of `field.0` rows by `field.1` columns cut on a `dims.0 x dims.1`
/// process grid (rows, columns of ranks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocks {
    /// The field: rows and columns of cells.
    pub field: (usize, usize),
    /// The process grid: rows and columns of ranks.
    pub dims: (usize, usize),
}

impl Blocks {
    /// The most nearly square process grid for `size` ranks
    /// ([`super::grid::shape`]) with its longer side along the field's
    /// longer side. It may not [`Blocks::fit`] a small field.
    pub fn near_square(field: (usize, usize), size: usize) -> Blocks {
        let (a, b) = super::grid::shape(size);
        let dims = if field.0 > field.1 { (b, a) } else { (a, b) };
        Blocks { field, dims }
    }

    /// Whether every rank gets at least one cell.
    pub fn fit(&self) -> bool {
        self.dims.0 <= self.field.0 && self.dims.1 <= self.field.1
    }

    /// The number of ranks on the grid.
    pub fn ranks(&self) -> usize {
        self.dims.0 * self.dims.1
    }

    /// Rank `r`'s grid position: (grid row, grid column).
    pub fn position(&self, r: usize) -> (usize, usize) {
        (r / self.dims.1, r % self.dims.1)
    }

    /// Where rank `r`'s block lies in the field: (rows, columns).
    pub fn place(&self, r: usize) -> (Range<usize>, Range<usize>) {
        let (gr, gc) = self.position(r);
        (block_slice(self.field.0, self.dims.0, gr), block_slice(self.field.1, self.dims.1, gc))
    }

    /// The fewest rows and the fewest columns any block has.
    pub fn thinnest(&self) -> (usize, usize) {
        let thinnest = |n: usize, parts: usize| (0..parts).map(|i| block_slice(n, parts, i).len()).min().unwrap_or(0);
        (thinnest(self.field.0, self.dims.0), thinnest(self.field.1, self.dims.1))
    }
}

impl Team {
    /// Every rank's `mine` gathered at rank 0 and placed: rank `r`'s values
    /// are the rows and columns `places[r]` (row-major) of a row-major whole
    /// `width` wide, which rank 0 gets (the others `None`). The places must
    /// tile the whole (a block of the field, or the samples of a lattice
    /// that fall in each block). One `MPI_Gatherv`, or its point-to-point
    /// twin under `Comm::P2p`.
    pub fn gather_blocks<T: Equivalence + Default + Copy>(
        &self,
        comm: Comm,
        places: &[(Range<usize>, Range<usize>)],
        width: usize,
        mine: &[T],
    ) -> Option<Vec<T>> {
        let counts: Vec<usize> = places.iter().map(|(rows, cols)| rows.len() * cols.len()).collect();
        let total: usize = counts.iter().sum();
        let root = self.rank() == 0;
        let mut blocks = if root { vec![T::default(); total] } else { Vec::new() };
        let recv = root.then_some(&mut blocks[..]);
        match comm {
            Comm::P2p => self.gather_p2p(0, mine, &counts, recv),
            _ => self.gather(0, mine, &counts, recv),
        }
        if !root {
            return None;
        }
        let mut whole = vec![T::default(); total];
        let mut at = 0;
        for ((rows, cols), &count) in places.iter().zip(&counts) {
            let w = cols.len();
            for (i, src) in rows.clone().zip(blocks[at..at + count].chunks(w.max(1))) {
                whole[i * width + cols.start..][..w].copy_from_slice(src);
            }
            at += count;
        }
        Some(whole)
    }

    /// The inverse of [`Team::gather_blocks`] for the blocks themselves:
    /// rank 0's `whole` field (row-major, ignored elsewhere) cut into every
    /// rank's block on `blocks`, each rank getting its own, row-major. One
    /// `MPI_Scatterv`, or its point-to-point twin under `Comm::P2p`.
    pub fn scatter_blocks<T: Equivalence + Default + Copy>(&self, comm: Comm, blocks: &Blocks, whole: &[T]) -> Vec<T> {
        let places: Vec<_> = (0..blocks.ranks()).map(|r| blocks.place(r)).collect();
        let counts: Vec<usize> = places.iter().map(|(rows, cols)| rows.len() * cols.len()).collect();
        let send: Vec<T> = if self.rank() == 0 {
            let width = blocks.field.1;
            places
                .iter()
                .flat_map(|(rows, cols)| {
                    rows.clone().flat_map(move |i| whole[i * width + cols.start..][..cols.len()].iter().copied())
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut mine = vec![T::default(); counts[self.rank()]];
        match comm {
            Comm::P2p => self.scatter_p2p(0, &send, &counts, &mut mine),
            _ => self.scatter(0, &send, &counts, &mut mine),
        }
        mine
    }

    /// Turns blocks into bands: this rank's block `mine` (its place on
    /// `blocks`, row-major, `per_cell` values a cell) is cut by the bands of
    /// whole field rows `bands` (one per rank, in order down the field), and
    /// each band's rank gets its rows whole. Returns this rank's band,
    /// row-major, `field.1 * per_cell` values a row. One `MPI_Alltoallv`
    /// under either comm; `Err` with the largest receive if a rank's band is
    /// more than one call can carry (every rank learns it before data moves).
    pub fn blocks_to_bands<T: Equivalence + Default + Copy>(
        &self,
        blocks: &Blocks,
        bands: &[Range<usize>],
        per_cell: usize,
        mine: &[T],
    ) -> Result<Vec<T>, usize> {
        let (rank, row_len) = (self.rank(), blocks.field.1 * per_cell);
        let overlap =
            |a: &Range<usize>, b: &Range<usize>| a.start.max(b.start)..a.end.min(b.end).max(a.start.max(b.start));
        // This block's rows go out in order, and the bands follow each
        // other down the field, so each band's part is the next slice.
        let (rows, cols) = blocks.place(rank);
        let counts: Vec<usize> = bands.iter().map(|band| overlap(&rows, band).len() * cols.len() * per_cell).collect();
        let mut pieces = Vec::new();
        let from = self.all_to_all_into(mine, &counts, &mut pieces)?;
        let band = &bands[rank];
        let mut out = vec![T::default(); band.len() * row_len];
        let mut at = 0;
        for (r, &count) in from.iter().enumerate() {
            let (their_rows, cols) = blocks.place(r);
            let w = cols.len() * per_cell;
            for (i, src) in overlap(&their_rows, band).zip(pieces[at..at + count].chunks(w.max(1))) {
                out[(i - band.start) * row_len + cols.start * per_cell..][..w].copy_from_slice(src);
            }
            at += count;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spmd::halo::{neighbours, OPPOSITE};

    #[test]
    fn every_process_count_tiles_the_field_and_neighbours_agree() {
        for field in [(30, 50), (50, 30), (13, 13)] {
            for size in 1..=13 {
                let blocks = Blocks::near_square(field, size);
                let (pr, pc) = blocks.dims;
                assert_eq!(blocks.ranks(), size);
                // The grid's longer side lies along the field's.
                let along = if field.1 > field.0 { pc >= pr } else { field.0 == field.1 || pr >= pc };
                assert!(along, "{field:?} on {size}: {pr}x{pc}");
                let mut covered = vec![0u8; field.0 * field.1];
                for r in 0..size {
                    let (rows, cols) = blocks.place(r);
                    for i in rows {
                        for j in cols.clone() {
                            covered[i * field.1 + j] += 1;
                        }
                    }
                    let around = |r| neighbours(blocks.dims, blocks.position(r));
                    for (d, n) in around(r).into_iter().enumerate() {
                        if let Some(n) = n {
                            assert_eq!(around(n)[OPPOSITE[d]], Some(r));
                        }
                    }
                }
                assert!(covered.iter().all(|&c| c == 1), "{field:?} on {size}: every cell in one block");
            }
        }
    }

    #[test]
    fn the_thinnest_block_and_the_fit_are_the_grids_own() {
        let b = Blocks { field: (5, 60), dims: (2, 2) };
        assert_eq!(b.thinnest(), (2, 30));
        assert!(b.fit());
        assert!(!Blocks::near_square((2, 2), 6).fit());
    }
}
