//! `pikernels mandelbrot`: the Mandelbrot set as a PNG.

use super::examples::{Example, Examples};
use super::{timed, Finished, Job, Preflight, UnitJob, UsageError};
use super::Common;
use crate::args::value_name;
use crate::size::Size;
use kernels::colormap::Colormap;
use crate::output;
use crate::png;
use crate::spmd::strategy;
use anyhow::{bail, Context, Result};
use kernels::mandelbrot::{self, Params, Region};
use kernels::Tally;
use serde_json::{json, Value};
use std::ops::Range;
use std::path::PathBuf;

/// Rows rank 0 recomputes with the reference code to verify the image.
pub const VERIFY_ROWS: u32 = 16;

/// The most bytes the gather can carry: MPI counts are 32-bit. The picture's
/// compressed blocks travel; an image is refused if even stored (its pixels
/// incompressible) they could exceed this.
const MAX_GATHER_BYTES: u64 = crate::spmd::MAX_COUNT as u64;

/// Default PNG path.
pub const DEFAULT_OUT: &str = "mandelbrot.png";

/// Runs of `mandelbrot` for the scripts and benchmarks that cover every kernel.
pub const EXAMPLES: Examples = Examples {
    output: Some("--out"),
    small: &[
        Example { label: "", args: &["--width", "320", "--height", "240", "--max-iter", "200"] },
        Example { label: "p2p", args: &["--width", "320", "--height", "240", "--comm", "p2p"] },
        Example { label: "dynamic", args: &["--width", "320", "--height", "240", "--comm", "dynamic"] },
    ],
    // The same picture twice (a region where most points escape fast, so
    // the loop, not the colouring, is what the first measures).
    bench: &[
        Example { label: "escape", args: &[
            "--width", "4000", "--height", "4000", "--max-iter", "50", "--xmin", "-1.5", "--xmax", "0.5",
            "--ymin", "-1", "--ymax", "1", "--bailout", "2", "--escape-only",
        ] },
        Example { label: "coloured", args: &[
            "--width", "4000", "--height", "4000", "--max-iter", "50", "--xmin", "-1.5", "--xmax", "0.5",
            "--ymin", "-1", "--ymax", "1", "--bailout", "2", "--no-output",
        ] },
    ],
    simd_paths: true,
    no_small_because: None,
    run_keys: &["output"],
};

/// Options of `mandelbrot`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image width in pixels.
    #[arg(long, value_name = "PIXELS", allow_hyphen_values = true, default_value_t = Size(Params::SEED.width.into()))]
    pub width: Size,
    /// Image height in pixels.
    #[arg(long, value_name = "PIXELS", allow_hyphen_values = true, default_value_t = Size(Params::SEED.height.into()))]
    pub height: Size,
    /// Iteration limit per pixel.
    #[arg(long, value_name = "K", allow_hyphen_values = true, default_value_t = Size(Params::SEED.max_iter.into()))]
    pub max_iter: Size,
    /// Real part at the left edge [default: -2, the seed's view].
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["center", "zoom"])]
    pub xmin: Option<f64>,
    /// Real part at the right edge [default: 1].
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["center", "zoom"])]
    pub xmax: Option<f64>,
    /// Imaginary part at the bottom edge [default: -1].
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["center", "zoom"])]
    pub ymin: Option<f64>,
    /// Imaginary part at the top edge [default: 1].
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["center", "zoom"])]
    pub ymax: Option<f64>,
    /// Centre of the view as X,Y (instead of --xmin/--xmax/--ymin/--ymax), e.g. -0.745,0.113.
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true, value_parser = crate::args::parse_point)]
    pub center: Option<(f64, f64)>,
    /// Magnification relative to the seed's 3-wide view (with --center; default 1).
    #[arg(long, value_name = "Z", allow_hyphen_values = true, requires = "center")]
    pub zoom: Option<f64>,
    /// Escape radius (the seed used 200; larger is smoother).
    #[arg(long, value_name = "R", allow_hyphen_values = true, default_value_t = Params::SEED.bailout)]
    pub bailout: f64,
    /// Colour map.
    #[arg(long, value_enum, default_value_t = Colormap::Rainbow)]
    pub colormap: Colormap,
    /// Integer escape-time bands instead of smooth colouring.
    #[arg(long)]
    pub banded: bool,
    /// Compute and verify, but write no PNG (for benchmarks).
    #[arg(long, conflicts_with = "out")]
    pub no_output: bool,
    /// Time the escape-time kernel alone: no colouring and no PNG (implies --no-output);
    /// verification compares sampled rows' iteration counts with the reference.
    #[arg(long, conflicts_with_all = ["out", "banded"])]
    pub escape_only: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The job `a` describes.
pub fn job(a: &Args) -> Result<Job, UsageError> {
    Ok(Job::units(Mandelbrot::new(a)?))
}

pub struct Mandelbrot {
    p: Params,
    out: Option<PathBuf>,
    /// `--escape-only`: each unit yields its row's iteration total, not RGB.
    escape_only: bool,
}

impl Mandelbrot {
    pub fn new(a: &Args) -> Result<Mandelbrot, UsageError> {
        let dim = |name: &str, v: u64| {
            u32::try_from(v).map_err(|_| UsageError(format!("--{name} {v} is too large (at most {})", u32::MAX)))
        };
        let (width, height, max_iter) =
            (dim("width", a.width.0)?, dim("height", a.height.0)?, dim("max-iter", a.max_iter.0)?);
        let region = match a.center {
            Some((cx, cy)) => {
                let zoom = a.zoom.unwrap_or(1.0);
                if !(zoom.is_finite() && zoom > 0.0) {
                    return Err(UsageError(format!("--zoom must be a positive number (got {zoom})")));
                }
                Region::centered(cx, cy, zoom, f64::from(height) / f64::from(width.max(1)))
            }
            None => Region {
                xmin: a.xmin.unwrap_or(Region::SEED.xmin),
                xmax: a.xmax.unwrap_or(Region::SEED.xmax),
                ymin: a.ymin.unwrap_or(Region::SEED.ymin),
                ymax: a.ymax.unwrap_or(Region::SEED.ymax),
            },
        };
        let p = Params {
            width,
            height,
            max_iter,
            region,
            bailout: a.bailout,
            colormap: a.colormap,
            smooth: !a.banded,
        };
        if let (Some((cx, cy)), true) = (a.center, width > 0 && height > 0) {
            if !p.resolvable() {
                return Err(UsageError(too_fine(cx, cy, a.zoom.unwrap_or(1.0), width)));
            }
        }
        p.validate()?;
        if png::packed_bound(u64::from(height), p.row_bytes()) > MAX_GATHER_BYTES {
            return Err(UsageError(format!(
                "a {width}x{height} image is {} of RGB, more than the {} one gather can carry (about 25000x25000 pixels)",
                output::human_bytes(p.image_bytes()),
                output::human_bytes(MAX_GATHER_BYTES)
            )));
        }
        let out = if a.no_output || a.escape_only {
            None
        } else {
            Some(a.common.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OUT)))
        };
        Ok(Mandelbrot { p, out, escape_only: a.escape_only })
    }

    /// Evenly spread rows, first and last included.
    fn verify_rows(&self) -> Vec<u32> {
        let h = self.p.height;
        let k = VERIFY_ROWS.min(h);
        let mut rows: Vec<u32> =
            (0..k).map(|i| (u64::from(i) * u64::from(h - 1) / u64::from((k - 1).max(1))) as u32).collect();
        rows.dedup();
        rows
    }

    /// The PNG written in full under its temporary name (put in place with the report).
    fn write_png(&self, path: &std::path::Path, blocks: &[png::Block]) -> Result<output::Staged> {
        output::stage(path, |w| {
            png::write(w, self.p.width, self.p.height, blocks)
                .with_context(|| format!("cannot write {}", path.display()))
        })
    }

    /// Bytes that travel for `rows` rows at most: iteration totals, or the
    /// rows' compressed blocks (bounded by their stored size).
    fn travelling_bytes(&self, rows: u64) -> u64 {
        if self.escape_only {
            rows * mandelbrot::ESCAPE_ROW_BYTES as u64
        } else {
            png::packed_bound(rows, self.p.row_bytes())
        }
    }

    /// The first sampled row that differs from the reference: in the
    /// escape-only form, its total; else its pixels, inflated from the
    /// compressed block that holds it (whose framing and Adler-32 are
    /// checked on the way).
    fn first_mismatch(&self, rows: &[u32], data: &[u8]) -> Result<Option<u32>> {
        if self.escape_only {
            let len = self.unit_bytes();
            return Ok(rows.iter().copied().find(|&row| {
                let at = row as usize * len;
                mandelbrot::render_row_reference(&self.p, row).1.to_le_bytes()[..] != data[at..at + len]
            }));
        }
        let row_bytes = self.p.row_bytes();
        let blocks = png::blocks(data, row_bytes, u64::from(self.p.height))?;
        let per = png::rows_per_block(row_bytes);
        let mut inflated: Option<(u64, Vec<u8>)> = None;
        for &row in rows {
            let b = u64::from(row) / per;
            if inflated.as_ref().is_none_or(|(i, _)| *i != b) {
                let pixels = png::unpack_block(&blocks[b as usize], row_bytes)
                    .with_context(|| format!("the compressed block of rows {}.. is damaged", b * per))?;
                inflated = Some((b, pixels));
            }
            let at = (u64::from(row) - b * per) as usize * row_bytes;
            let pixels = &inflated.as_ref().expect("inflated above").1[at..at + row_bytes];
            if mandelbrot::render_row_reference(&self.p, row).0 != pixels {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}

/// Why a view from `--center` and `--zoom` cannot be drawn: narrower than
/// f64 resolves at that centre (numbers in exponent form, never 300 digits).
fn too_fine(cx: f64, cy: f64, zoom: f64, width: u32) -> String {
    let at = cx.abs().max(cy.abs());
    let spacing = at.next_up() - at;
    let view = 3.0 / zoom;
    format!(
        "--center {cx:?},{cy:?} with --zoom {zoom:?} asks for a view {view:.3e} wide, narrower than f64 can \
         resolve there: near {at:.3e} neighbouring f64 numbers are {spacing:.3e} apart, so the {width} pixels \
         across (steps of {:.3e}) would coincide; use a smaller --zoom or a centre nearer 0",
        view / f64::from(width)
    )
}

impl UnitJob for Mandelbrot {
    fn params(&self) -> Value {
        let (p, r) = (&self.p, &self.p.region);
        json!({
            "width": p.width, "height": p.height, "max_iter": p.max_iter,
            "xmin": r.xmin, "xmax": r.xmax, "ymin": r.ymin, "ymax": r.ymax,
            "bailout": p.bailout, "colormap": value_name(p.colormap), "smooth": p.smooth,
            "escape_only": self.escape_only,
        })
    }

    fn implementation(&self) -> Option<&'static str> {
        Some(mandelbrot::implementation())
    }

    fn units(&self) -> u64 {
        u64::from(self.p.height)
    }

    fn unit_bytes(&self) -> usize {
        if self.escape_only {
            mandelbrot::ESCAPE_ROW_BYTES
        } else {
            self.p.row_bytes()
        }
    }

    fn compute(&self, rows: Range<u64>, out: &mut [u8]) -> Tally {
        if self.escape_only {
            mandelbrot::escape_rows(&self.p, rows, out)
        } else {
            mandelbrot::render_rows(&self.p, rows, out)
        }
    }

    /// Coloured rows travel as the PNG's compressed blocks, so rank 0
    /// receives about a seventh of the RGB and only frames the file.
    fn pack_grain(&self) -> Option<u64> {
        (!self.escape_only).then(|| png::rows_per_block(self.p.row_bytes()))
    }

    fn pack(&self, _rows: Range<u64>, rgb: &[u8]) -> Vec<u8> {
        png::pack(rgb, self.p.row_bytes())
    }

    fn packed_bound(&self, rows: u64) -> u64 {
        png::packed_bound(rows, self.p.row_bytes())
    }

    fn files(&self) -> Vec<output::FileUse> {
        self.out.iter().map(|p| output::FileUse::writes("--out", p)).collect()
    }

    fn preflight(&self, ctx: &Preflight) -> Result<()> {
        let grain = self.pack_grain().unwrap_or(1);
        let held = ctx.max_units_held(self.units(), grain);
        // Raw rows exist only for the piece being computed and packed.
        let raw = match self.pack_grain() {
            Some(g) => strategy::pack_piece(g, ctx.threads).min(held) * self.unit_bytes() as u64,
            None => held * self.unit_bytes() as u64,
        };
        if ctx.is_root() {
            // The gathered blocks (twice under --comm dynamic, joined from
            // chunks) and the piece of rows being computed.
            let whole = self.travelling_bytes(self.units());
            output::check_memory(
                2 * whole + raw,
                "rank 0 (gathering the image's compressed blocks)",
                "give a smaller --width and --height, or --no-output",
            )?;
            if let Some(path) = &self.out {
                output::check_writable(path, "image")?;
                // Worst case: incompressible pixels, stored, and a chunk header per block.
                output::check_disk(path, whole + 12 * self.units() + (1 << 16), "the PNG")?;
            }
        } else {
            output::check_memory(
                2 * self.travelling_bytes(held) + raw,
                "this rank's share of the image",
                "give a smaller --width and --height, or more processes",
            )?;
        }
        Ok(())
    }

    fn finish(&self, tally: Tally, data: Vec<u8>) -> Result<Finished> {
        let rows = self.verify_rows();
        let (mismatch, verify_s) = timed(|| self.first_mismatch(&rows, &data));
        let mismatch = mismatch?;
        let iterations = tally.to_count().unwrap_or(0);
        let pixels = u64::from(self.p.width) * u64::from(self.p.height);
        if iterations < pixels.min(1) {
            bail!("the ranks' iteration counts add up to {}, which cannot be right for {pixels} pixels", tally.0);
        }
        // Only a verified picture is written.
        let (png, output_s) = match &self.out {
            Some(path) if mismatch.is_none() => {
                // Checked whole by `first_mismatch` already.
                let blocks = png::blocks(&data, self.p.row_bytes(), u64::from(self.p.height))?;
                let (written, s) = timed(|| self.write_png(path, &blocks));
                (Some(written?), s)
            }
            _ => (None, 0.0),
        };
        let png_bytes = png.as_ref().map(|p| p.len);
        let verification = match mismatch {
            None if self.escape_only => {
                format!("{} sampled rows' iteration totals equal the sequential reference's", rows.len())
            }
            None => format!(
                "{} sampled rows, inflated from the PNG's compressed blocks, equal the sequential reference, byte for byte",
                rows.len()
            ),
            Some(row) => format!(
                "row {row} differs from the sequential reference{}",
                if self.out.is_some() { "; the picture was not written" } else { "" }
            ),
        };
        Ok(Finished {
            result: json!({
                "output": self.out.as_ref().filter(|_| mismatch.is_none()).map(|p| p.display().to_string()),
                "png_bytes": png_bytes,
                "pixels": pixels,
                "total_iterations": iterations,
                "mean_iterations": iterations as f64 / pixels as f64,
            }),
            verified: mismatch.is_none(),
            verification,
            item: ("pixel-iterations", iterations as f64),
            bytes_per_item: None,
            verify_s,
            output_s,
            outputs: png.into_iter().collect(),
        })
    }
}
