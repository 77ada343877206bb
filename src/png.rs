//! PNG from blocks of rows compressed independently, wherever they were
//! computed (the way pigz and mtpng compress in parallel).
//!
//! A picture's rows are cut into blocks of [`rows_per_block`] rows, a number
//! that depends on the width only, so the blocks (and the file) are the same
//! for any process count, thread count and strategy. Each block's scanlines
//! (filter byte 0, then the row's RGB) are raw-deflated on their own and end
//! with a sync flush, so the blocks end on a byte boundary and, concatenated,
//! form one deflate stream; each block's Adler-32 travels with it. The rank
//! that writes the file then only frames them: the PNG signature, `IHDR`, one
//! zlib stream (a header, the blocks, an empty final block, the Adler-32 of
//! the whole, combined from the blocks') in `IDAT` chunks, and `IEND`.
//!
//! The deflate itself is flate2's, on its zlib-rs backend (pure Rust, the
//! zlib-ng algorithms): its level 1 was the fastest well-kept raw deflate
//! with a sync flush measured here. `png` and `image` encode a whole picture
//! in one stream on one thread, and `fdeflate` writes only whole zlib
//! streams, so neither can join blocks made elsewhere; the framing below is
//! the part no crate offers.
//!
//! Filter type 0 (none) on every row: a row's filter must not need the row
//! above when that row sits in another block, and on these pictures the Sub
//! and Up filters bought under 2% of size at level 1 for 10% of the speed.

use anyhow::{bail, ensure, Context, Result};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use rayon::prelude::*;
use std::io::Write;

/// Scanline bytes a block aims for: large enough that restarting the
/// compressor costs next to nothing, small enough that a rank's share holds
/// many blocks for its threads.
pub const BLOCK_BYTES: usize = 256 << 10;

/// Bytes before each block's deflate data in the packed form: its length and
/// its Adler-32, both little-endian `u32`.
const RECORD_HEADER: usize = 8;

const SIGNATURE: [u8; 8] = *b"\x89PNG\r\n\x1a\n";
/// zlib header: deflate with a 32 KiB window, "fastest" level, no dictionary
/// (`0x7801` is a multiple of 31, as the format requires).
const ZLIB_HEADER: [u8; 2] = [0x78, 0x01];
/// An empty final block with fixed codes: BFINAL=1, BTYPE=01, end-of-block.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];
const ADLER_MOD: u32 = 65521;

/// Rows in each block of a picture whose rows are `row_bytes` bytes (the
/// last block may have fewer).
pub fn rows_per_block(row_bytes: usize) -> u64 {
    (BLOCK_BYTES / (row_bytes + 1)).max(1) as u64
}

/// The most bytes [`pack`] can give for `rows` rows of `row_bytes` each.
/// Level 1 codes every block with the fixed Huffman codes, even where
/// storing would be smaller, so incompressible bytes grow by up to 9 bits
/// per byte (random bytes: about 5.5%); add block headers, the sync flush's
/// empty stored block and the record header.
pub fn packed_bound(rows: u64, row_bytes: usize) -> u64 {
    let raw = rows * (row_bytes as u64 + 1);
    let blocks = rows.div_ceil(rows_per_block(row_bytes));
    raw + raw / 8 + raw / 1024 + blocks * (RECORD_HEADER as u64 + 32) + 64
}

/// Compresses `rows` (whole rows of `row_bytes` bytes, starting at a block
/// boundary) into packed blocks, in parallel on the current rayon pool. The
/// packed forms of consecutive ranges concatenate into the packed picture.
pub fn pack(rows: &[u8], row_bytes: usize) -> Vec<u8> {
    assert_eq!(rows.len() % row_bytes.max(1), 0, "pack: whole rows");
    let block = rows_per_block(row_bytes) as usize * row_bytes;
    let records: Vec<Vec<u8>> = rows.par_chunks(block.max(1)).map(|b| pack_block(b, row_bytes)).collect();
    records.concat()
}

/// One block: its scanlines deflated, ending in a sync flush, behind the
/// record header. The scanlines, the deflate output and the compressor are
/// the thread's own, kept from block to block ([`Kept`]); only the record,
/// a few times smaller than the block, is a new allocation.
fn pack_block(rows: &[u8], row_bytes: usize) -> Vec<u8> {
    KEPT.with_borrow_mut(|kept| {
        let Kept { lines, out, z } = kept.get_or_insert_with(|| Kept {
            lines: Vec::new(),
            out: Vec::new(),
            z: Compress::new(Compression::fast(), false),
        });
        lines.clear();
        for row in rows.chunks(row_bytes) {
            lines.push(0);
            lines.extend_from_slice(row);
        }
        let adler = simd_adler32::adler32(&lines.as_slice());
        out.clear();
        out.reserve(RECORD_HEADER + lines.len() + lines.len() / 100 + 64);
        out.resize(RECORD_HEADER, 0);
        z.reset();
        loop {
            let done = z.total_in() as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity());
            }
            z.compress_vec(&lines[done..], out, FlushCompress::Sync).expect("deflate of a block");
            // A sync flush is complete once all input is taken and room was left over.
            if z.total_in() as usize == lines.len() && out.len() < out.capacity() {
                break;
            }
        }
        let len = u32::try_from(out.len() - RECORD_HEADER).expect("a block's deflate data fits in u32");
        out[..4].copy_from_slice(&len.to_le_bytes());
        out[4..8].copy_from_slice(&adler.to_le_bytes());
        out.to_vec()
    })
}

/// A thread's buffers for [`pack_block`]. Made anew for every block, the
/// scanlines and the output's room (half a MiB together) came from `mmap`
/// and went back to the system each time, a page fault per 4 KiB touched
/// (about a tenth of the packing time on a pool thread, docs/benchmarks.md).
struct Kept {
    lines: Vec<u8>,
    out: Vec<u8>,
    z: Compress,
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<Kept>> = const { std::cell::RefCell::new(None) };
}

/// One packed block, borrowed from the packed picture.
#[derive(Clone, Copy, Debug)]
pub struct Block<'a> {
    /// Raw deflate data (non-final blocks, ending in a sync flush).
    pub deflate: &'a [u8],
    /// Adler-32 of the block's scanlines.
    pub adler: u32,
    /// Rows in the block.
    pub rows: u64,
}

/// A packed picture's blocks, checked to be exactly the blocks of a
/// `width`-pixel-wide RGB picture of `height` rows.
pub fn blocks(packed: &[u8], row_bytes: usize, height: u64) -> Result<Vec<Block<'_>>> {
    let per = rows_per_block(row_bytes);
    let n = height.div_ceil(per);
    let mut out = Vec::with_capacity(n as usize);
    let mut rest = packed;
    for i in 0..n {
        ensure!(rest.len() >= RECORD_HEADER, "the packed picture ends inside block {i} of {n}");
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let adler = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        ensure!(rest.len() >= RECORD_HEADER + len, "the packed picture ends inside block {i} of {n}");
        let rows = per.min(height - i * per);
        out.push(Block { deflate: &rest[RECORD_HEADER..RECORD_HEADER + len], adler, rows });
        rest = &rest[RECORD_HEADER + len..];
    }
    ensure!(rest.is_empty(), "{} bytes follow the last of the {n} blocks of the packed picture", rest.len());
    Ok(out)
}

/// The rows of one block, inflated on their own and checked against the
/// block's Adler-32 and filter bytes.
pub fn unpack_block(block: &Block, row_bytes: usize) -> Result<Vec<u8>> {
    let len = block.rows as usize * (row_bytes + 1);
    let mut lines = Vec::with_capacity(len + 1);
    let mut z = Decompress::new(false);
    let status = z.decompress_vec(block.deflate, &mut lines, FlushDecompress::Sync).context("inflating a block")?;
    ensure!(
        z.total_in() as usize == block.deflate.len() && lines.len() == len,
        "a block inflates to {} bytes ({status:?}), not the {len} of its {} rows",
        lines.len(),
        block.rows
    );
    ensure!(status != Status::StreamEnd, "a block carries a final deflate block");
    let adler = simd_adler32::adler32(&lines.as_slice());
    ensure!(adler == block.adler, "a block's Adler-32 is {adler:08x}, its record says {:08x}", block.adler);
    let mut rows = Vec::with_capacity(block.rows as usize * row_bytes);
    for line in lines.chunks(row_bytes + 1) {
        if line[0] != 0 {
            bail!("a scanline has filter type {}, not 0", line[0]);
        }
        rows.extend_from_slice(&line[1..]);
    }
    Ok(rows)
}

/// The Adler-32 of `a` followed by `b`, from the Adler-32s of both and the
/// length of `b`.
///
/// With `A = 1 + sum of bytes` and `B = sum of the A after each byte` (both
/// mod 65521), appending `n` bytes adds their sum to `A`, and to `B` their
/// own `B` plus `n` times the `A` they started from beyond 1.
pub fn adler32_combine(a: u32, b: u32, len_b: u64) -> u32 {
    let m = u64::from(ADLER_MOD);
    let (a1, b1) = (u64::from(a & 0xffff), u64::from(a >> 16));
    let (a2, b2) = (u64::from(b & 0xffff), u64::from(b >> 16));
    let n = len_b % m;
    let lo = (a1 + a2 + m - 1) % m;
    let hi = (b1 + b2 + n * ((a1 + m - 1) % m)) % m;
    (hi << 16 | lo) as u32
}

/// Writes an 8-bit RGB PNG of `width` x `height` from its packed blocks
/// (as [`blocks`] returns them): one `IDAT` chunk per block.
pub fn write(w: &mut impl Write, width: u32, height: u32, blocks: &[Block]) -> std::io::Result<()> {
    let row_bytes = width as usize * 3;
    w.write_all(&SIGNATURE)?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(w, b"IHDR", &[&ihdr])?;
    let mut adler = 1;
    let mut first = true;
    for b in blocks {
        adler = adler32_combine(adler, b.adler, b.rows * (row_bytes as u64 + 1));
        let head: &[u8] = if std::mem::take(&mut first) { &ZLIB_HEADER } else { &[] };
        chunk(w, b"IDAT", &[head, b.deflate])?;
    }
    let head: &[u8] = if first { &ZLIB_HEADER } else { &[] };
    chunk(w, b"IDAT", &[head, &FINAL_BLOCK, &adler.to_be_bytes()])?;
    chunk(w, b"IEND", &[])
}

/// One chunk: length, type, data (given in parts), CRC-32 of type and data.
fn chunk(w: &mut impl Write, kind: &[u8; 4], parts: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len).ok().filter(|&l| l <= i32::MAX as u32).expect("a PNG chunk under 2 GiB");
    w.write_all(&len.to_be_bytes())?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    w.write_all(kind)?;
    for p in parts {
        crc.update(p);
        w.write_all(p)?;
    }
    w.write_all(&crc.finalize().to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture with flat runs, gradients and noise, `w` x `h` RGB.
    fn picture(w: u32, h: u32) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..w as usize * h as usize * 3)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match (i / 3000) % 3 {
                    0 => 0,
                    1 => (i % 251) as u8,
                    _ => x as u8,
                }
            })
            .collect()
    }

    fn png_of(w: u32, h: u32, rgb: &[u8], pieces: &[u64]) -> Vec<u8> {
        let row = w as usize * 3;
        // Pack in the given pieces (block-aligned row ranges), as ranks would.
        let mut packed = Vec::new();
        let mut at = 0;
        for &rows in pieces {
            packed.extend(pack(&rgb[at * row..(at + rows as usize) * row], row));
            at += rows as usize;
        }
        assert_eq!(at, h as usize);
        let b = blocks(&packed, row, u64::from(h)).unwrap();
        let mut file = Vec::new();
        write(&mut file, w, h, &b).unwrap();
        file
    }

    #[test]
    fn the_image_crate_decodes_what_is_written_pixel_for_pixel() {
        for (w, h) in [(1, 1), (3, 2), (157, 61), (1000, 700), (40000, 3)] {
            let rgb = picture(w, h);
            let file = png_of(w, h, &rgb, &[u64::from(h)]);
            let img = image::load_from_memory_with_format(&file, image::ImageFormat::Png).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (w, h));
            assert!(img.as_raw() == &rgb, "{w}x{h}");
        }
    }

    #[test]
    fn the_file_does_not_depend_on_how_rows_were_shared_out() {
        let (w, h) = (700, 1000);
        let rgb = picture(w, h);
        let per = rows_per_block(w as usize * 3);
        assert!(u64::from(h) > 3 * per, "several blocks");
        let whole = png_of(w, h, &rgb, &[u64::from(h)]);
        let split = png_of(w, h, &rgb, &[per, 2 * per, u64::from(h) - 3 * per]);
        assert!(whole == split);
    }

    #[test]
    fn blocks_unpack_to_their_rows_and_damage_is_caught() {
        let (w, h) = (500, 400);
        let (rgb, row) = (picture(w, h), w as usize * 3);
        let mut packed = pack(&rgb, row);
        let b = blocks(&packed, row, u64::from(h)).unwrap();
        let per = rows_per_block(row) as usize;
        for (i, block) in b.iter().enumerate() {
            let rows = unpack_block(block, row).unwrap();
            assert!(rows == rgb[i * per * row..(i * per + block.rows as usize) * row]);
        }
        assert!(blocks(&packed[..packed.len() - 1], row, u64::from(h)).is_err());
        let last = b.last().unwrap().rows;
        assert!(blocks(&packed, row, u64::from(h) - last).is_err(), "one block too many");
        // A flipped Adler-32 in the first record.
        packed[4] ^= 1;
        let b = blocks(&packed, row, u64::from(h)).unwrap();
        assert!(unpack_block(&b[0], row).unwrap_err().to_string().contains("Adler-32"));
    }

    #[test]
    fn combined_adler_equals_the_whole_streams() {
        let data = picture(500, 100);
        for cut in [0, 1, 5551, 65521, 65522, data.len()] {
            let (a, b) = data.split_at(cut);
            let whole = simd_adler32::adler32(&data.as_slice());
            let joined = adler32_combine(simd_adler32::adler32(&a), simd_adler32::adler32(&b), b.len() as u64);
            assert_eq!(joined, whole, "cut at {cut}");
        }
    }

    #[test]
    fn packed_bound_holds_for_noise() {
        let (w, h) = (2000, 200);
        let mut x: u32 = 1;
        let noise: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        let packed = pack(&noise, w * 3);
        assert!(packed.len() as u64 <= packed_bound(h as u64, w * 3), "{}", packed.len());
        assert!(packed.len() > noise.len(), "noise does not compress");
    }
}
