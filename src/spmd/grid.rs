//! A 2-D process grid with a communicator per grid row and per grid column,
//! for algorithms that broadcast along rows and columns (SUMMA).
//!
//! Rank `r` sits at grid row `r / cols`, column `r % cols` (row-major). The
//! grid is the most nearly square factorisation `rows x cols = size` with
//! `rows <= cols` ([`shape`]), so every process count has one; a prime
//! count gets a `1 x p` grid, where SUMMA degenerates to a 1-D algorithm
//! (whole panels of `A` broadcast to every rank, `B` never moves).

use super::exchange::Team;
use super::Spmd;
use mpi::topology::Color;
use mpi::traits::*;

/// The grid shape for `size` ranks: `(rows, cols)` with `rows * cols == size`,
/// `rows <= cols` and `rows` as large as possible.
pub fn shape(size: usize) -> (usize, usize) {
    assert!(size > 0);
    let rows = (1..=size).take_while(|r| r * r <= size).filter(|r| size.is_multiple_of(*r)).last().unwrap_or(1);
    (rows, size / rows)
}

/// This rank's place in a 2-D grid and the teams of its row and column.
pub struct Grid {
    /// Grid rows.
    pub rows: usize,
    /// Grid columns.
    pub cols: usize,
    /// This rank's grid row.
    pub row: usize,
    /// This rank's grid column.
    pub col: usize,
    /// The ranks of this grid row, numbered by grid column.
    pub row_team: Team,
    /// The ranks of this grid column, numbered by grid row.
    pub col_team: Team,
}

impl Spmd {
    /// Builds the job's process grid (a collective call: every rank must
    /// make it).
    pub fn grid(&self) -> Grid {
        let (rows, cols) = shape(self.size());
        let (row, col) = (self.rank() / cols, self.rank() % cols);
        let world = self.world();
        let split = |color: usize, key: usize| {
            world
                .split_by_color_with_key(Color::with_value(color as i32), key as i32)
                .expect("every rank has a colour, so every rank gets a communicator")
        };
        let row_team = Team::new(split(row, col));
        let col_team = Team::new(split(col, row));
        Grid { rows, cols, row, col, row_team, col_team }
    }
}

/// The rank at grid position `(row, col)` of a grid with `cols` columns.
pub fn rank_at(cols: usize, row: usize, col: usize) -> usize {
    row * cols + col
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_nearly_square_and_cover_every_count() {
        assert_eq!(shape(1), (1, 1));
        assert_eq!(shape(2), (1, 2));
        assert_eq!(shape(4), (2, 2));
        assert_eq!(shape(6), (2, 3));
        assert_eq!(shape(7), (1, 7));
        assert_eq!(shape(12), (3, 4));
        assert_eq!(shape(16), (4, 4));
        for p in 1..200 {
            let (r, c) = shape(p);
            assert_eq!(r * c, p);
            assert!(r <= c);
        }
    }
}
