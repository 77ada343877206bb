//! The pictures: the final field as a PNG heat map, compressed in bands
//! where it lies, and with `--frames` an animation of lattice samples
//! gathered at rank 0 at each frame's step.

use super::{Heat, Layout};
use crate::spmd::exchange::Team;
use crate::spmd::{Comm, RankStats};
use crate::{animation, output, png};
use anyhow::{Context, Result};
use kernels::heat;
use std::ops::Range;
use std::time::Instant;

impl Heat {
    /// After a stop of the step loop: with `--frames`, this rank's lattice
    /// cells of `cur` (a buffer of its block with `depth` ghost layers)
    /// gathered at rank 0, which gets the frame (the others `None`);
    /// without, nothing and no message.
    pub(super) fn frame(
        &self,
        team: &Team,
        comm: Comm,
        l: &Layout,
        cur: &[f64],
        stats: &mut RankStats,
    ) -> Option<Vec<f64>> {
        let lat = self.anim.as_ref()?.lattice;
        let t = Instant::now();
        let places: Vec<_> = (0..l.blocks.ranks())
            .map(|r| {
                let (rows, cols) = l.blocks.place(r);
                (lat.within(rows), lat.within(cols))
            })
            .collect();
        let (rows, cols) = &places[team.rank()];
        let b = l.block(self.depth);
        let (stride, g) = (b.stride(), b.g);
        let mine: Vec<f64> = rows
            .clone()
            .flat_map(|i| {
                let at = (i * lat.stride - l.rows.start + g) * stride + g;
                cols.clone().map(move |j| at + j * lat.stride - l.cols.start)
            })
            .map(|at| cur[at])
            .collect();
        let frame = team.gather_blocks(comm, &places, lat.width, &mine);
        stats.comm_s += t.elapsed().as_secs_f64();
        frame
    }

    /// Rank `k`'s band of the PNG on `size` ranks: the rows of its share of
    /// the PNG's blocks of rows (whole blocks, so the compressed bytes are
    /// the same for any process count and grid).
    pub(super) fn band(&self, size: usize, k: usize) -> Range<usize> {
        let per = png::rows_per_block(self.p.cols * 3) as usize;
        let blocks = kernels::partition::block_slice(self.p.rows.div_ceil(per), size, k);
        (blocks.start * per).min(self.p.rows)..(blocks.end * per).min(self.p.rows)
    }

    /// This rank's coloured block (`colours`, row-major RGB) dealt into the
    /// ranks' [`Heat::band`]s ([`Team::blocks_to_bands`]), and its own band's
    /// PNG blocks compressed on this rank's threads, in [`png::pack`]'s form.
    pub(super) fn pack_band(&self, team: &Team, l: &Layout, colours: &[u8]) -> Vec<u8> {
        let bands: Vec<Range<usize>> = (0..team.size()).map(|k| self.band(team.size(), k)).collect();
        let rows = team
            .blocks_to_bands(&l.blocks, &bands, 3, colours)
            .expect("the PNG's bytes were checked against MPI's count limit before the run");
        png::pack(&rows, self.p.cols * 3)
    }

    /// With `--frames`: colours every frame over the first frame's range and
    /// stages the animation (not yet in place).
    pub(super) fn write_animation(&self, frames: &[Vec<f64>]) -> Result<Option<output::Staged>> {
        let Some(a) = &self.anim else { return Ok(None) };
        let first = frames.first().context("no frames were gathered")?;
        let (lo, hi) = first.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let (w, h) = (u32::try_from(a.lattice.width)?, u32::try_from(a.lattice.height)?);
        let count = u32::try_from(frames.len())?;
        let pixels = |k: u32| {
            let f = &frames[k as usize];
            match a.format {
                animation::Format::Apng => heat::colour(f, lo, hi),
                // The palette's nearest level; the span as heat::colour takes it.
                animation::Format::Gif => {
                    let span = if hi > lo { hi - lo } else { 1.0 };
                    f.iter().map(|&v| animation::level((v - lo) / span)).collect()
                }
            }
        };
        let staged = output::stage(&a.path, |f| {
            animation::write(f, a.format, heat::cubehelix, (w, h), count, pixels)
                .with_context(|| format!("cannot write {}", a.path.display()))
        })?;
        Ok(Some(staged))
    }

    /// Writes the PNG from its compressed blocks, staged (not yet in place).
    pub(super) fn write_png(&self, packed: &[u8]) -> Result<output::Staged> {
        let row_bytes = self.p.cols * 3;
        let blocks = png::blocks(packed, row_bytes, self.p.rows as u64)?;
        let (w, h) = (u32::try_from(self.p.cols)?, u32::try_from(self.p.rows)?);
        output::stage(&self.out, |f| {
            png::write(f, w, h, &blocks).with_context(|| format!("cannot write {}", self.out.display()))
        })
    }
}
