//! Animations: frames point-sampled from a grid ([`Lattice`]) and written
//! as APNG or GIF ([`Format`], [`write`]).
//!
//! APNG goes through the `png` crate (already in the lockfile as `image`'s
//! reader; its encoder writes `acTL`/`fcTL`/`fdAT` with frame delays). No
//! GIF encoder is in the offline registry, so the GIF writer is here: GIF89a
//! with one fixed 256-entry global palette, a looping extension, and each
//! frame's palette indices LZW-coded (variable code width 9-12 bits, a clear
//! code whenever the 4096-entry table fills). Both outputs depend on the
//! frames' bytes only, so they are the same for any process count.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
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
/// in order, so only one frame's pixels need exist at a time.
pub fn write<F>(w: &mut impl Write, format: Format, width: u32, height: u32, count: u32, frames: F) -> Result<()>
where
    F: FnMut(u32) -> Vec<u8>,
{
    match format {
        Format::Apng => write_apng(w, width, height, count, frames),
        Format::Gif => write_gif(w, width, height, count, frames),
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

/// GIF89a with a global palette set by [`write_gif_with`]'s caller.
fn write_gif<F: FnMut(u32) -> Vec<u8>>(
    w: &mut impl Write,
    width: u32,
    height: u32,
    count: u32,
    frames: F,
) -> Result<()> {
    write_gif_with(w, &palette(kernels::heat::cubehelix), width, height, count, frames)
}

/// GIF89a: the header, the 256-entry `palette`, the looping extension, then
/// per frame a graphic control extension (the delay), an image descriptor
/// and the LZW-coded indices in sub-blocks of up to 255 bytes.
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
    let (w16, h16) = match (u16::try_from(width), u16::try_from(height)) {
        (Ok(a), Ok(b)) => (a.to_le_bytes(), b.to_le_bytes()),
        _ => bail!("GIF frames are at most {MAX_SIDE} pixels a side, not {width}x{height}"),
    };
    w.write_all(b"GIF89a")?;
    w.write_all(&w16)?;
    w.write_all(&h16)?;
    // Global colour table of 2^(7+1) entries, 8 bits per primary; background 0; square pixels.
    w.write_all(&[0xf7, 0, 0])?;
    for c in palette {
        w.write_all(c)?;
    }
    // NETSCAPE2.0 application extension: loop for ever.
    w.write_all(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")?;
    let pixels = width as usize * height as usize;
    let mut coder = Lzw::default();
    for k in 0..count {
        let indices = frames(k);
        if indices.len() != pixels {
            bail!("GIF frame {k} has {} pixels, not {width}x{height}", indices.len());
        }
        // Graphic control: disposal 1 (leave in place), no transparency, the delay.
        let d = DELAY_CS.to_le_bytes();
        w.write_all(&[0x21, 0xf9, 0x04, 0x04, d[0], d[1], 0x00, 0x00])?;
        // Image descriptor: the whole screen, no local table, not interlaced.
        w.write_all(&[0x2c, 0, 0, 0, 0, w16[0], w16[1], h16[0], h16[1], 0])?;
        w.write_all(&[8])?; // LZW minimum code size: 8-bit indices.
        let data = coder.encode(&indices);
        for block in data.chunks(255) {
            w.write_all(&[block.len() as u8])?;
            w.write_all(block)?;
        }
        w.write_all(&[0])?;
    }
    w.write_all(&[0x3b])?;
    Ok(())
}

const CLEAR: u16 = 256;
const END: u16 = 257;
const FIRST_FREE: u16 = 258;
const MAX_CODES: u16 = 4096;

/// GIF's LZW for 8-bit symbols: codes written least significant bit first,
/// 9 bits wide after a clear, one bit wider each time the next free code
/// reaches a power of two (as the decoder's table, one entry behind, sees
/// it), at most 12; a clear code when the table is full.
#[derive(Default)]
struct Lzw {
    table: HashMap<(u16, u8), u16>,
    out: Vec<u8>,
    acc: u32,
    bits: u32,
    width: u32,
    next: u16,
}

impl Lzw {
    fn emit(&mut self, code: u16) {
        self.acc |= u32::from(code) << self.bits;
        self.bits += self.width;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    fn clear(&mut self) {
        self.emit(CLEAR);
        self.table.clear();
        self.width = 9;
        self.next = FIRST_FREE;
    }

    /// One image's code stream: a clear, the codes, the end code, padded to a byte.
    fn encode(&mut self, symbols: &[u8]) -> Vec<u8> {
        self.out = Vec::with_capacity(symbols.len() / 2 + 16);
        (self.acc, self.bits, self.width) = (0, 0, 9);
        self.clear();
        let Some((&first, rest)) = symbols.split_first() else {
            self.emit(END);
            return self.finish();
        };
        let mut prefix = u16::from(first);
        for &s in rest {
            if let Some(&code) = self.table.get(&(prefix, s)) {
                prefix = code;
                continue;
            }
            self.emit(prefix);
            if self.next < MAX_CODES {
                self.table.insert((prefix, s), self.next);
                if u32::from(self.next) == 1 << self.width && self.width < 12 {
                    self.width += 1;
                }
                self.next += 1;
            } else {
                self.clear();
            }
            prefix = u16::from(s);
        }
        self.emit(prefix);
        // The decoder adds an entry on reading that last code and may widen.
        if u32::from(self.next) == 1 << self.width && self.width < 12 {
            self.width += 1;
        }
        self.emit(END);
        self.finish()
    }

    fn finish(&mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
        (self.acc, self.bits) = (0, 0);
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

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
        write(&mut file, Format::Apng, w as u32, h as u32, n, |k| frames[k as usize].clone()).unwrap();
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

    /// A GIF decoder from the format's description, for the tests: the
    /// frames' indices, delays (centiseconds), the screen and the palette.
    struct Gif {
        width: usize,
        height: usize,
        palette: Vec<u8>,
        frames: Vec<(u16, Vec<u8>)>,
    }

    fn decode_gif(f: &[u8]) -> Gif {
        assert_eq!(&f[..6], b"GIF89a");
        let le = |i: usize| usize::from(u16::from_le_bytes([f[i], f[i + 1]]));
        let (width, height) = (le(6), le(8));
        assert_eq!(f[10], 0xf7);
        let palette = f[13..13 + 768].to_vec();
        let mut at = 13 + 768;
        let mut frames = Vec::new();
        let mut delay = 0;
        let sub_blocks = |at: &mut usize| {
            let mut data = Vec::new();
            while f[*at] != 0 {
                let n = usize::from(f[*at]);
                data.extend_from_slice(&f[*at + 1..*at + 1 + n]);
                *at += 1 + n;
            }
            *at += 1;
            data
        };
        loop {
            match f[at] {
                0x3b => break,
                0x21 => {
                    let label = f[at + 1];
                    at += 2;
                    let data = sub_blocks(&mut at);
                    if label == 0xf9 {
                        delay = u16::from_le_bytes([data[1], data[2]]);
                    }
                }
                0x2c => {
                    assert_eq!((le(at + 5), le(at + 7), f[at + 9]), (width, height, 0));
                    assert_eq!(f[at + 10], 8);
                    at += 11;
                    let data = sub_blocks(&mut at);
                    frames.push((delay, lzw_decode(&data)));
                }
                b => panic!("unexpected block {b:#x} at {at}"),
            }
        }
        assert_eq!(at + 1, f.len());
        Gif { width, height, palette, frames }
    }

    fn lzw_decode(data: &[u8]) -> Vec<u8> {
        let mut table: Vec<Vec<u8>> = Vec::new();
        let reset = |t: &mut Vec<Vec<u8>>| {
            *t = (0..=255u8).map(|b| vec![b]).collect();
            t.push(Vec::new());
            t.push(Vec::new());
        };
        reset(&mut table);
        let (mut width, mut acc, mut bits, mut pos) = (9u32, 0u32, 0u32, 0usize);
        let mut prev: Option<Vec<u8>> = None;
        let mut out = Vec::new();
        loop {
            while bits < width {
                acc |= u32::from(data[pos]) << bits;
                pos += 1;
                bits += 8;
            }
            let code = (acc & ((1 << width) - 1)) as usize;
            acc >>= width;
            bits -= width;
            if code == 256 {
                reset(&mut table);
                width = 9;
                prev = None;
                continue;
            }
            if code == 257 {
                break;
            }
            let entry = match (&prev, table.get(code)) {
                (_, Some(e)) => e.clone(),
                (Some(p), None) => {
                    assert_eq!(code, table.len(), "a code beyond the table");
                    let mut e = p.clone();
                    e.push(p[0]);
                    e
                }
                (None, None) => panic!("first code {code} not a symbol"),
            };
            if let Some(p) = prev {
                if table.len() < 4096 {
                    let mut e = p;
                    e.push(entry[0]);
                    table.push(e);
                }
                if table.len() == 1 << width && width < 12 {
                    width += 1;
                }
            }
            out.extend_from_slice(&entry);
            prev = Some(entry);
        }
        assert!(pos == data.len(), "codes after the end code");
        out
    }

    #[test]
    fn gif_decodes_to_the_frames_palette_and_delays() {
        let pal = palette(kernels::heat::cubehelix);
        assert_eq!(pal[0], [0, 0, 0]);
        assert_eq!(pal[255], [255, 255, 255]);
        // Large noisy frames fill the table and clear it; tiny ones do not.
        for (w, h, n) in [(1, 1, 2), (5, 3, 3), (301, 211, 3), (64, 1, 2)] {
            let frames: Vec<Vec<u8>> = (0..n).map(|k| frame(w, h, k, 1)).collect();
            let mut file = Vec::new();
            write(&mut file, Format::Gif, w as u32, h as u32, n, |k| frames[k as usize].clone()).unwrap();
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
    fn lzw_round_trips_at_every_code_width_change() {
        // Runs of one symbol grow the table one entry per code, so the
        // lengths walk the width changes at 512, 1024, 2048 and the clear at 4096.
        let mut coder = Lzw::default();
        for n in [0, 1, 2, 255, 256, 257, 300, 5000, 140_000, 9_000_000] {
            let run = vec![7u8; n];
            assert!(lzw_decode(&coder.encode(&run)) == run, "run of {n}");
        }
        let mut x = 1u32;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        let coded = coder.encode(&noise);
        assert!(lzw_decode(&coded) == noise);
        // At most a 12-bit code per symbol, and the clears: within Format::bound (3 bytes a pixel).
        assert!(coded.len() * 2 <= noise.len() * 3 + 1024, "{} bytes", coded.len());
        assert!(coded.len() * 2 > noise.len() * 2, "noise does not compress");
    }

    #[test]
    fn levels_are_nearest_and_clamped() {
        assert_eq!(
            [level(-1.0), level(0.0), level(0.5), level(1.0), level(2.0), level(f64::NAN)],
            [0, 0, 128, 255, 255, 0]
        );
    }
}
