//! A rectangular block of a 2-D grid held with ghost layers all round, and
//! the copies between its edges and the flat buffers a halo exchange sends.
//!
//! Pure geometry: which cells of the buffer are a block's own, which are
//! its ghosts, and in what order an edge is laid out when it travels. The
//! runtime's halo exchange (`spmd::halo` in the binary) moves the flat
//! buffers; a stencil kernel (heat) updates the cells.

/// A block of a grid with `g` ghost layers all round: `h x w` cells in a
/// row-major buffer of `(h + 2g) x (w + 2g)`, cell `(i, j)` of the block at
/// buffer row `g + i`, column `g + j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Rows of cells (not counting ghosts).
    pub h: usize,
    /// Columns of cells (not counting ghosts).
    pub w: usize,
    /// Ghost layers on each side (at least 1).
    pub g: usize,
}

impl Block {
    /// Elements in one buffer row, ghosts included.
    pub fn stride(&self) -> usize {
        self.w + 2 * self.g
    }

    /// Elements in a buffer of the block, ghosts included.
    pub fn len(&self) -> usize {
        (self.h + 2 * self.g) * self.stride()
    }

    /// Whether the block has no cells.
    pub fn is_empty(&self) -> bool {
        self.h == 0 || self.w == 0
    }

    /// The block's cells without ghosts, row-major `h x w`.
    pub fn cells(&self, buf: &[f64]) -> Vec<f64> {
        let g = self.g;
        buf.chunks(self.stride()).skip(g).take(self.h).flat_map(|line| line[g..g + self.w].iter().copied()).collect()
    }

    /// A buffer of the block holding `cells` (row-major `h x w`), ghosts 0.
    pub fn ghosted(&self, cells: &[f64]) -> Vec<f64> {
        assert_eq!(cells.len(), self.h * self.w, "the block's cells");
        let mut buf = vec![0.0; self.len()];
        let (g, w, stride) = (self.g, self.w, self.stride());
        for (i, row) in cells.chunks(w.max(1)).enumerate().take(self.h) {
            buf[(g + i) * stride + g..][..w].copy_from_slice(row);
        }
        buf
    }

    /// Buffer rows holding the block's own cells.
    pub fn own_rows(&self) -> std::ops::Range<usize> {
        self.g..self.g + self.h
    }

    /// Every buffer row, ghost rows included.
    pub fn all_rows(&self) -> std::ops::Range<usize> {
        0..self.h + 2 * self.g
    }

    /// Copies the block's `g` own rows nearest each row neighbour (over its
    /// own columns, top to bottom, `g * w` values each) into `north` and
    /// `south`.
    pub fn edge_rows(&self, buf: &[f64], north: &mut [f64], south: &mut [f64]) {
        let (g, w, stride) = (self.g, self.w, self.stride());
        for k in 0..g {
            north[k * w..][..w].copy_from_slice(&buf[(g + k) * stride + g..][..w]);
            south[k * w..][..w].copy_from_slice(&buf[(self.h + k) * stride + g..][..w]);
        }
    }

    /// Copies the block's `g` own columns nearest each column neighbour, over
    /// buffer rows `rows` (row by row, left to right, `g * rows.len()`
    /// values each), into `west` and `east`.
    pub fn edge_cols(&self, buf: &[f64], rows: std::ops::Range<usize>, west: &mut [f64], east: &mut [f64]) {
        let (g, stride) = (self.g, self.stride());
        for (n, i) in rows.enumerate() {
            west[n * g..][..g].copy_from_slice(&buf[i * stride + g..][..g]);
            east[n * g..][..g].copy_from_slice(&buf[i * stride + self.w..][..g]);
        }
    }

    /// Copies received rows (laid out as [`Block::edge_rows`] lays them)
    /// into the ghost rows north and south; a side given `None` keeps its
    /// ghosts (a fixed boundary).
    pub fn fill_ghost_rows(&self, north: Option<&[f64]>, south: Option<&[f64]>, buf: &mut [f64]) {
        let (g, w, stride) = (self.g, self.w, self.stride());
        for k in 0..g {
            if let Some(rows) = north {
                buf[k * stride + g..][..w].copy_from_slice(&rows[k * w..][..w]);
            }
            if let Some(rows) = south {
                buf[(g + self.h + k) * stride + g..][..w].copy_from_slice(&rows[k * w..][..w]);
            }
        }
    }

    /// Copies received columns (laid out as [`Block::edge_cols`] lays them)
    /// into the ghost columns west and east over buffer rows `rows`; a side
    /// given `None` keeps its ghosts.
    pub fn fill_ghost_cols(
        &self,
        rows: std::ops::Range<usize>,
        west: Option<&[f64]>,
        east: Option<&[f64]>,
        buf: &mut [f64],
    ) {
        let (g, stride) = (self.g, self.stride());
        for (n, i) in rows.enumerate() {
            if let Some(cols) = west {
                buf[i * stride..][..g].copy_from_slice(&cols[n * g..][..g]);
            }
            if let Some(cols) = east {
                buf[i * stride + g + self.w..][..g].copy_from_slice(&cols[n * g..][..g]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two blocks side by side in a 7 x 10 grid, each with its cells set to
    /// their grid index: after one passes its edge columns to the other, the
    /// receiver's ghost columns hold exactly the grid's cells there.
    #[test]
    fn edges_land_in_the_neighbours_ghosts_as_the_grid_has_them() {
        let (rows, g) = (7, 2);
        let (west_w, east_w) = (6, 4);
        let value = |i: usize, j: usize| (i * 100 + j) as f64;
        let fill = |b: Block, col0: usize| {
            let mut buf = vec![-1.0; b.len()];
            for i in 0..b.h {
                for j in 0..b.w {
                    buf[(g + i) * b.stride() + g + j] = value(i, col0 + j);
                }
            }
            buf
        };
        let (wb, eb) = (Block { h: rows, w: west_w, g }, Block { h: rows, w: east_w, g });
        let (west, mut east) = (fill(wb, 0), fill(eb, west_w));
        let (mut to_west, mut to_east) = (vec![0.0; g * rows], vec![0.0; g * rows]);
        wb.edge_cols(&west, wb.own_rows(), &mut to_west, &mut to_east);
        eb.fill_ghost_cols(eb.own_rows(), Some(&to_east), None, &mut east);
        for i in 0..rows {
            for k in 0..g {
                assert_eq!(east[(g + i) * eb.stride() + k], value(i, west_w - g + k), "row {i}, ghost {k}");
            }
            // The east side had no neighbour: its ghosts are untouched.
            assert_eq!(east[(g + i) * eb.stride() + g + east_w], -1.0);
        }
        // Rows: the north block's southmost rows become the south block's north ghosts.
        let (nb, sb) = (Block { h: 5, w: 3, g }, Block { h: 4, w: 3, g });
        let north = {
            let mut buf = vec![0.0; nb.len()];
            for i in 0..nb.h {
                for j in 0..nb.w {
                    buf[(g + i) * nb.stride() + g + j] = value(i, j);
                }
            }
            buf
        };
        let mut south = vec![-1.0; sb.len()];
        let (mut up, mut down) = (vec![0.0; g * 3], vec![0.0; g * 3]);
        nb.edge_rows(&north, &mut up, &mut down);
        sb.fill_ghost_rows(Some(&down), None, &mut south);
        for k in 0..g {
            for j in 0..3 {
                assert_eq!(south[k * sb.stride() + g + j], value(nb.h - g + k, j));
            }
        }
        assert_eq!(sb.cells(&south).len(), 12);
        // Cells into a ghosted buffer and out again.
        let cells: Vec<f64> = (0..12).map(f64::from).collect();
        let buf = sb.ghosted(&cells);
        assert_eq!(sb.cells(&buf), cells);
        assert_eq!(buf.iter().filter(|&&v| v != 0.0).count(), 11, "ghosts are 0");
    }
}
