//! After the steps: each rank checks, bounds and digests its own block
//! where it lies, and five numbers a rank, all-gathered, make the field's
//! [`Summary`] and its verdict. No rank gathers the field.

use super::{Heat, Layout};
use kernels::heat::{self, Init};

/// Cells checked against the sequential reference for `--init hotspot`.
pub(super) const SAMPLED_CELLS: usize = 5;

/// The final field described without gathering it: each rank checks,
/// bounds and digests its own block, and these combine the blocks' figures.
pub(super) struct Summary {
    /// `--init modes`: the largest error against the closed form.
    pub max_error: f64,
    /// `--init hotspot`: the first sampled cell that differs from the
    /// sequential reference, if any.
    pub bad: Option<(usize, usize)>,
    pub lo: f64,
    pub hi: f64,
    pub digest: String,
}

/// One rank's figures for [`Summary`], as they travel: `[max error, lo, hi]`
/// and `[first bad sample's index or u64::MAX, digest share]`.
pub(super) type Checks = ([f64; 3], [u64; 2]);

impl Heat {
    /// This rank's checks of its block (`cells`, row-major): the modes'
    /// largest error against the closed form (0 for hotspot), the block's
    /// range, the first of the sampled cells it holds that differs from the
    /// sequential reference over its light cone (hotspot), and its share of
    /// the digest.
    pub(super) fn check_block(&self, l: &Layout, cells: &[f64]) -> Checks {
        let p = &self.p;
        let (rows, cols) = (l.rows.clone(), l.cols.clone());
        let max_error = match p.init {
            Init::Modes => heat::max_error(p, rows.clone(), cols.clone(), cells),
            Init::Hotspot => 0.0,
        };
        let bad = match p.init {
            Init::Modes => None,
            Init::Hotspot => self.sampled_cells().into_iter().position(|(i, j)| {
                if !rows.contains(&i) || !cols.contains(&j) {
                    return false;
                }
                // The cell's light cone: T cells each way, clipped to the grid.
                let t = p.steps.min(p.rows.max(p.cols) as u64) as usize;
                let (cone_r, cone_c) = (i.saturating_sub(t)..(i + t + 1).min(p.rows), j.saturating_sub(t)..(j + t + 1).min(p.cols));
                let window = heat::reference(p, cone_r.clone(), cone_c.clone());
                let want = window[(i - cone_r.start) * cone_c.len() + (j - cone_c.start)];
                want.to_bits() != cells[(i - rows.start) * cols.len() + (j - cols.start)].to_bits()
            }),
        };
        let (lo, hi) = cells.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let share = heat::digest_share(p, rows, cols, cells);
        ([max_error, lo, hi], [bad.map_or(u64::MAX, |k| k as u64), share])
    }

    /// The verdict on the field: (passed, what was checked, the modes' max error).
    pub(super) fn verdict(&self, s: &Summary) -> (bool, String, Option<f64>) {
        let p = &self.p;
        match p.init {
            Init::Modes => {
                let (err, bound) = (s.max_error, heat::error_bound(p));
                let ok = err <= bound;
                let verdict = if ok { "within" } else { "FAILED: beyond" };
                let text = format!(
                    "every cell against the closed form of the decaying sine modes: max error {err:.3e}, {verdict} \
                     the rounding bound 20(T+1)A u = {bound:.3e}"
                );
                (ok, text, Some(err))
            }
            Init::Hotspot => match s.bad {
                None => (true, format!("{SAMPLED_CELLS} sampled cells equal the sequential reference bit for bit"), None),
                Some((i, j)) => (false, format!("cell (row {i}, column {j}) differs from the sequential reference"), None),
            },
        }
    }

    /// The centre, the corners' neighbourhood and points between.
    pub(super) fn sampled_cells(&self) -> Vec<(usize, usize)> {
        let (h, w) = (self.p.rows, self.p.cols);
        let mut cells = vec![(h / 2, w / 2), (0, 0), (h - 1, w - 1), (h / 3, 2 * w / 3), (2 * h / 3, w / 5)];
        cells.truncate(SAMPLED_CELLS);
        cells
    }
}

/// Combines every rank's [`Checks`] (in rank order, as `all_gather` lays
/// them out) into the field's [`Summary`]; `sampled` names the cells the
/// hotspot indices count.
pub(super) fn summarise(sampled: &[(usize, usize)], f: &[f64], u: &[u64]) -> Summary {
    let (mut max_error, mut lo, mut hi) = (0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for c in f.chunks(3) {
        (max_error, lo, hi) = (max_error.max(c[0]), lo.min(c[1]), hi.max(c[2]));
    }
    let first_bad = u.chunks(2).map(|c| c[0]).min().unwrap_or(u64::MAX);
    let bad = usize::try_from(first_bad).ok().and_then(|k| sampled.get(k).copied());
    let digest = heat::digest_hex(u.chunks(2).map(|c| c[1]));
    Summary { max_error, bad, lo, hi, digest }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_takes_the_largest_error_the_range_and_the_first_bad_sample_of_all_ranks() {
        let sampled = [(5, 5), (0, 0), (9, 9)];
        // Three ranks: [error, lo, hi] and [first bad sample or none, share].
        let f = [1e-15, -0.5, 0.25, 3e-15, 0.0, 0.75, 2e-15, f64::INFINITY, f64::NEG_INFINITY];
        let u = [u64::MAX, 1, 2, u64::MAX - 1, 1, 5];
        let s = summarise(&sampled, &f, &u);
        assert_eq!((s.max_error, s.lo, s.hi), (3e-15, -0.5, 0.75));
        assert_eq!(s.bad, Some((0, 0)), "sample 1 is the first bad one");
        assert_eq!(s.digest, heat::digest_hex([1, u64::MAX - 1, 5]));
        let clean = summarise(&sampled, &f, &[u64::MAX, 1, u64::MAX, 2, u64::MAX, 3]);
        assert_eq!(clean.bad, None);
    }
}
