//! `pikernels mandelbrot`: the Mandelbrot set as a PNG.

use super::{timed, Finished, Job, Preflight, UsageError};
use crate::cli::{MandelbrotArgs, DEFAULT_MANDELBROT_OUT};
use crate::output;
use anyhow::{bail, Context, Result};
use image::{codecs::png::PngEncoder, ExtendedColorType, ImageEncoder};
use kernels::mandelbrot::{self, Params, Region};
use kernels::Tally;
use serde_json::{json, Value};
use std::ops::Range;
use std::path::PathBuf;

/// Rows rank 0 recomputes with the reference code to verify the image.
pub const VERIFY_ROWS: u32 = 16;

/// The largest image the gather can carry: MPI counts are 32-bit.
const MAX_IMAGE_BYTES: u64 = i32::MAX as u64;

pub struct Mandelbrot {
    p: Params,
    out: Option<PathBuf>,
    /// `--escape-only`: each unit yields its row's iteration total, not RGB.
    escape_only: bool,
}

impl Mandelbrot {
    pub fn new(a: &MandelbrotArgs) -> Result<Mandelbrot, UsageError> {
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
            colormap: a.colormap.into(),
            smooth: !a.banded,
        };
        if let (Some((cx, cy)), true) = (a.center, width > 0 && height > 0) {
            if !p.resolvable() {
                return Err(UsageError(too_fine(cx, cy, a.zoom.unwrap_or(1.0), width)));
            }
        }
        p.validate().map_err(UsageError)?;
        if p.image_bytes() > MAX_IMAGE_BYTES {
            return Err(UsageError(format!(
                "a {width}x{height} image is {} of RGB, more than the {} one gather can carry (about 26000x26000 pixels)",
                output::human_bytes(p.image_bytes()),
                output::human_bytes(MAX_IMAGE_BYTES)
            )));
        }
        let out = if a.no_output || a.escape_only {
            None
        } else {
            Some(a.common.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_MANDELBROT_OUT)))
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

    fn write_png(&self, path: &std::path::Path, rgb: &[u8]) -> Result<u64> {
        output::write_atomic(path, |w| {
            PngEncoder::new(w)
                .write_image(rgb, self.p.width, self.p.height, ExtendedColorType::Rgb8)
                .with_context(|| format!("cannot write {}", path.display()))
        })?;
        Ok(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
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

impl Job for Mandelbrot {
    fn kernel(&self) -> &'static str {
        "mandelbrot"
    }

    fn params(&self) -> Value {
        let (p, r) = (&self.p, &self.p.region);
        json!({
            "width": p.width, "height": p.height, "max_iter": p.max_iter,
            "xmin": r.xmin, "xmax": r.xmax, "ymin": r.ymin, "ymax": r.ymax,
            "bailout": p.bailout, "colormap": p.colormap.name(), "smooth": p.smooth,
            "escape_only": self.escape_only,
        })
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

    fn files(&self) -> Vec<output::FileUse> {
        self.out.iter().map(|p| output::FileUse::writes("--out", p)).collect()
    }

    fn preflight(&self, ctx: &Preflight) -> Result<()> {
        let image = self.units() * self.unit_bytes() as u64;
        let share = ctx.max_units_held(self.units()) * self.unit_bytes() as u64;
        if ctx.is_root() {
            // The gathered image, the root's own share, and the PNG encoder's buffers.
            output::check_memory(2 * image + share, "rank 0 (gathering and encoding the image)")?;
            if let Some(path) = &self.out {
                output::check_writable(path, "image")?;
                // Worst case: incompressible pixels, stored.
                output::check_disk(path, image + image / 100 + (1 << 16), "the PNG")?;
            }
        } else {
            output::check_memory(2 * share, "this rank's share of the image")?;
        }
        Ok(())
    }

    fn finish(&self, tally: Tally, rgb: Vec<u8>) -> Result<Finished> {
        let rows = self.verify_rows();
        let (mismatch, verify_s) = timed(|| {
            rows.iter().copied().find(|&row| {
                let (bytes, total) = mandelbrot::render_row_reference(&self.p, row);
                let (len, at) = (self.unit_bytes(), row as usize * self.unit_bytes());
                if self.escape_only {
                    total.to_le_bytes()[..] != rgb[at..at + len]
                } else {
                    bytes != rgb[at..at + len]
                }
            })
        });
        let iterations = tally.to_count().unwrap_or(0);
        let pixels = u64::from(self.p.width) * u64::from(self.p.height);
        if iterations < pixels.min(1) {
            bail!("the ranks' iteration counts add up to {}, which cannot be right for {pixels} pixels", tally.0);
        }
        let (png_bytes, output_s) = match &self.out {
            Some(path) => {
                let (written, s) = timed(|| self.write_png(path, &rgb));
                (Some(written?), s)
            }
            None => (None, 0.0),
        };
        let verification = match mismatch {
            None if self.escape_only => {
                format!("{} sampled rows' iteration totals equal the sequential reference's", rows.len())
            }
            None => format!("{} sampled rows equal the sequential reference, byte for byte", rows.len()),
            Some(row) => format!("row {row} differs from the sequential reference"),
        };
        Ok(Finished {
            result: json!({
                "output": self.out.as_ref().map(|p| p.display().to_string()),
                "png_bytes": png_bytes,
                "pixels": pixels,
                "total_iterations": iterations,
                "mean_iterations": iterations as f64 / pixels as f64,
            }),
            verified: mismatch.is_none(),
            verification,
            item: ("pixel-iterations", iterations as f64),
            verify_s,
            output_s,
        })
    }
}
