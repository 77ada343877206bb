//! Animations: frames point-sampled from a grid ([`Lattice`]) and written
//! as APNG or GIF ([`Format`], [`write`]).
//!
//! APNG goes through the `png` crate (already in the lockfile as `image`'s
//! reader; its encoder writes `acTL`/`fcTL`/`fdAT` with frame delays), GIF
//! through the `gif` crate (the encoder `image` uses): GIF89a with one
//! fixed 256-entry global palette, the caller's colour map sampled at 256
//! levels, a looping extension, and each frame's palette indices LZW-coded.
//! Both outputs depend on the frames' bytes only, so they are the same for
//! any process count.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::ops::Range;
use std::path::Path;

/// Frame delay: a tenth of a second (10 frames per second).
pub const DELAY_CS: u16 = 10;

/// The largest frame side: GIF stores sizes as 16-bit numbers.
pub const MAX_SIDE: u64 = u16::MAX as u64;

/// The file format of an animation, from its path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Animated PNG (`.png`, `.apng`): 8-bit RGB, lossless.
    Apng,
    /// GIF (`.gif`): the fixed 256-colour palette.
    Gif,
}

impl Format {
    /// `.gif` is GIF, `.png` or `.apng` APNG (any case); anything else is refused.
    pub fn of(path: &Path) -> Result<Format, String> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("gif") => Ok(Format::Gif),
            Some("png" | "apng") => Ok(Format::Apng),
            _ => Err(format!(
                "{}: the animation's format follows its extension: .gif (GIF) or .apng / .png (APNG)",
                path.display()
            )),
        }
    }

    /// The most bytes an animation of `frames` frames of `w x h` can take:
    /// APNG deflate stays under 9 bits a byte (plus filter bytes and chunk
    /// framing); GIF's codes are at most 12 bits a pixel, clear codes and
    /// sub-block lengths included, within the same.
    pub fn bound(frames: u64, w: u64, h: u64) -> u64 {
        let raw = h * (3 * w + 1);
        frames * (raw + raw / 8 + raw / 1024 + 1024) + 4096
    }
}

/// A regular lattice of cells of a `rows x cols` grid: every `stride`-th
/// row and column from the first, with the stride the least that keeps the
/// longer side at most `max_side` samples (1 where the grid fits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lattice {
    /// Grid cells between samples, along both axes.
    pub stride: usize,
    /// Samples across (the frame's width).
    pub width: usize,
    /// Samples down (the frame's height).
    pub height: usize,
}

impl Lattice {
    /// The lattice of a `rows x cols` grid (both at least 1) whose longer
    /// side has at most `max_side` (at least 1) samples.
    pub fn new(rows: usize, cols: usize, max_side: usize) -> Lattice {
        let stride = rows.max(cols).div_ceil(max_side.max(1)).max(1);
        Lattice { stride, width: cols.div_ceil(stride), height: rows.div_ceil(stride) }
    }

    /// Samples in a frame.
    pub fn cells(&self) -> usize {
        self.width * self.height
    }

    /// The sample indices whose grid index lies in `grid` (a block's rows
    /// or columns): a block sends exactly these.
    pub fn within(&self, grid: Range<usize>) -> Range<usize> {
        grid.start.div_ceil(self.stride)..grid.end.div_ceil(self.stride)
    }
}

/// Writes `frames` (each `width x height`, as [`write`]'s caller gives
/// them: RGB bytes for APNG, palette indices for GIF) as an animation that
/// loops for ever, [`DELAY_CS`] per frame. `frames` is called once per frame
/// in order, so only one frame's pixels need exist at a time. A GIF's
/// palette is the caller's colour map `colour` sampled at 256 levels
/// ([`palette`]); APNG frames carry their own colours.
pub fn write<F>(
    w: &mut impl Write,
    format: Format,
    colour: impl Fn(f64) -> [u8; 3],
    (width, height): (u32, u32),
    count: u32,
    frames: F,
) -> Result<()>
where
    F: FnMut(u32) -> Vec<u8>,
{
    match format {
        Format::Apng => write_apng(w, width, height, count, frames),
        Format::Gif => write_gif_with(w, &palette(colour), width, height, count, frames),
    }
}

fn write_apng<F: FnMut(u32) -> Vec<u8>>(
    w: &mut impl Write,
    width: u32,
    height: u32,
    count: u32,
    mut frames: F,
) -> Result<()> {
    let mut enc = png::Encoder::new(w, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_animated(count, 0).context("APNG: frame count")?;
    enc.set_frame_delay(DELAY_CS, 100).context("APNG: frame delay")?;
    let mut writer = enc.write_header().context("APNG: header")?;
    for k in 0..count {
        let rgb = frames(k);
        writer.write_image_data(&rgb).with_context(|| format!("APNG: frame {k}"))?;
    }
    writer.finish().context("APNG: end")?;
    Ok(())
}

/// The GIF palette: entry `i` is `colour(i / 255)`.
pub fn palette(colour: impl Fn(f64) -> [u8; 3]) -> Vec<[u8; 3]> {
    (0..256).map(|i| colour(f64::from(i) / 255.0)).collect()
}

/// The palette index of `t` in `[0, 1]` (clamped; NaN is 0): the nearest of
/// the 256 evenly spaced levels [`palette`] samples.
pub fn level(t: f64) -> u8 {
    if t.is_nan() {
        0
    } else {
        (t.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// GIF89a through the `gif` crate: the 256-entry `palette` as the global
/// colour table, a loop for ever, then per frame the delay, the whole
/// screen (no local table, left in place) and the LZW-coded indices.
pub fn write_gif_with<F: FnMut(u32) -> Vec<u8>>(
    w: &mut impl Write,
    palette: &[[u8; 3]],
    width: u32,
    height: u32,
    count: u32,
    mut frames: F,
) -> Result<()> {
    if palette.len() != 256 {
        bail!("a GIF palette has 256 entries here, not {}", palette.len());
    }
    let (Ok(w16), Ok(h16)) = (u16::try_from(width), u16::try_from(height)) else {
        bail!("GIF frames are at most {MAX_SIDE} pixels a side, not {width}x{height}");
    };
    let mut enc = gif::Encoder::new(w, w16, h16, &palette.concat()).context("GIF: header")?;
    enc.set_repeat(gif::Repeat::Infinite).context("GIF: loop extension")?;
    let pixels = width as usize * height as usize;
    for k in 0..count {
        let indices = frames(k);
        if indices.len() != pixels {
            bail!("GIF frame {k} has {} pixels, not {width}x{height}", indices.len());
        }
        let mut frame = gif::Frame::from_indexed_pixels(w16, h16, indices, None);
        frame.delay = DELAY_CS;
        frame.dispose = gif::DisposalMethod::Keep;
        enc.write_frame(&frame).with_context(|| format!("GIF: frame {k}"))?;
    }
    enc.into_inner().context("GIF: trailer")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A colour map for the palette tests: three channels that differ, so
    /// a palette written out of order or with channels swapped shows.
    fn grey(t: f64) -> [u8; 3] {
        let v = (t * 255.0).round() as u8;
        [v, v / 2, 255 - v]
    }

    /// Frames with flat runs, ramps and noise (`k` varies them).
    fn frame(w: usize, h: usize, k: u32, channels: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64 ^ u64::from(k);
        (0..w * h * channels)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match (i / 700 + k as usize) % 3 {
                    0 => k as u8,
                    1 => (i % 97) as u8,
                    _ => x as u8,
                }
            })
            .collect()
    }

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(Format::of(Path::new("a/b.gif")), Ok(Format::Gif));
        assert_eq!(Format::of(Path::new("b.GIF")), Ok(Format::Gif));
        assert_eq!(Format::of(Path::new("b.apng")), Ok(Format::Apng));
        assert_eq!(Format::of(Path::new("b.png")), Ok(Format::Apng));
        for bad in ["b.mp4", "b", "gif"] {
            let e = Format::of(Path::new(bad)).unwrap_err();
            assert!(e.contains(".gif (GIF) or .apng / .png (APNG)"), "{e}");
        }
    }

    #[test]
    fn the_lattice_keeps_the_longer_side_within_the_limit_and_blocks_cover_it() {
        assert_eq!(Lattice::new(47, 61, 640), Lattice { stride: 1, width: 61, height: 47 });
        assert_eq!(Lattice::new(1500, 2000, 640), Lattice { stride: 4, width: 500, height: 375 });
        assert_eq!(Lattice::new(10, 10, 1), Lattice { stride: 10, width: 1, height: 1 });
        for (rows, cols, side) in [(47, 61, 7), (1000, 3, 64), (3, 1000, 999), (641, 641, 640), (1, 1, 5)] {
            let l = Lattice::new(rows, cols, side);
            assert!(l.width.max(l.height) <= side.min(rows.max(cols)), "{rows}x{cols} in {side}: {l:?}");
            assert!((l.width - 1) * l.stride < cols && (l.height - 1) * l.stride < rows);
            // Any cut of the rows into blocks hands out every sample once.
            for parts in 1..=5.min(rows) {
                let got: Vec<usize> =
                    (0..parts).flat_map(|b| l.within(kernels::partition::block_slice(rows, parts, b))).collect();
                assert_eq!(got, (0..l.height).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn apng_decodes_to_the_frames_with_their_count_and_delay() {
        let (w, h, n) = (37, 23, 4);
        let frames: Vec<Vec<u8>> = (0..n).map(|k| frame(w, h, k, 3)).collect();
        let mut file = Vec::new();
        write(&mut file, Format::Apng, grey, (w as u32, h as u32), n, |k| frames[k as usize].clone()).unwrap();
        let mut r = png::Decoder::new(Cursor::new(&file)).read_info().unwrap();
        let actl = r.info().animation_control.unwrap();
        assert_eq!((actl.num_frames, actl.num_plays), (n, 0));
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        for want in &frames {
            let info = r.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (w as u32, h as u32));
            let fc = r.info().frame_control.unwrap();
            assert_eq!((fc.delay_num, fc.delay_den), (DELAY_CS, 100));
            assert!(buf[..info.buffer_size()] == want[..]);
        }
        assert!(r.next_frame(&mut buf).is_err(), "no more frames");
    }

    /// A GIF as the `gif` crate's decoder reads it: the frames' indices and
    /// delays (centiseconds), the screen and the global palette. (The heat
    /// tests read the GIF with ffmpeg's decoder as well.)
    struct Gif {
        width: usize,
        height: usize,
        palette: Vec<u8>,
        frames: Vec<(u16, Vec<u8>)>,
    }

    fn decode_gif(f: &[u8]) -> Gif {
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut d = options.read_info(f).unwrap();
        assert_eq!(d.repeat(), gif::Repeat::Infinite);
        let (width, height) = (usize::from(d.width()), usize::from(d.height()));
        let palette = d.global_palette().expect("a global palette").to_vec();
        let mut frames = Vec::new();
        while let Some(frame) = d.read_next_frame().unwrap() {
            assert_eq!((frame.left, frame.top), (0, 0));
            assert_eq!((usize::from(frame.width), usize::from(frame.height)), (width, height));
            assert!(frame.palette.is_none(), "no local palette");
            frames.push((frame.delay, frame.buffer.to_vec()));
        }
        Gif { width, height, palette, frames }
    }

    #[test]
    fn gif_decodes_to_the_frames_palette_and_delays() {
        let pal = palette(grey);
        assert_eq!(pal[0], [0, 0, 255]);
        assert_eq!(pal[255], [255, 127, 0]);
        // Large noisy frames fill the table and clear it; tiny ones do not.
        for (w, h, n) in [(1, 1, 2), (5, 3, 3), (301, 211, 3), (64, 1, 2)] {
            let frames: Vec<Vec<u8>> = (0..n).map(|k| frame(w, h, k, 1)).collect();
            let mut file = Vec::new();
            write(&mut file, Format::Gif, grey, (w as u32, h as u32), n, |k| frames[k as usize].clone()).unwrap();
            let g = decode_gif(&file);
            assert_eq!((g.width, g.height), (w, h));
            assert_eq!(g.palette, pal.concat());
            assert_eq!(g.frames.len(), n as usize);
            for (got, want) in g.frames.iter().zip(&frames) {
                assert_eq!(got.0, DELAY_CS);
                assert!(&got.1 == want, "{w}x{h}");
            }
        }
    }

    #[test]
    fn levels_are_nearest_and_clamped() {
        assert_eq!(
            [level(-1.0), level(0.0), level(0.5), level(1.0), level(2.0), level(f64::NAN)],
            [0, 0, 128, 255, 255, 0]
        );
    }
}
