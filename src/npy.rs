//! Square `float64` matrices in NumPy's `.npy` format (through `npyz`), the
//! format `matmul --a/--b/--out` reads and writes: what `numpy.save` writes
//! for a 2-D float64 array, C or Fortran order, little- or big-endian.

use crate::output;
use anyhow::{bail, Context, Result};
use npyz::{DType, NpyFile, Order, WriterBuilder};
use std::io::BufReader;
use std::path::Path;

/// The order of the square matrix in `path`, from its header alone.
pub fn square_order(path: &Path) -> Result<usize> {
    let file = output::open_input(path, "matrix")?;
    let npy = NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{} is not a readable .npy file", path.display()))?;
    check_header(path, &npy)
}

fn check_header<R: std::io::Read>(path: &Path, npy: &NpyFile<R>) -> Result<usize> {
    match npy.dtype() {
        DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 8 => {}
        other => bail!("{} holds {} entries; matmul needs float64", path.display(), other.descr()),
    }
    match npy.shape() {
        [r, c] if r == c && *r > 0 => usize::try_from(*r).with_context(|| format!("{} is too large", path.display())),
        shape => bail!("{} has shape {shape:?}; matmul needs a non-empty square 2-D matrix", path.display()),
    }
}

/// Reads the square matrix in `path` as row-major `f64`; fails on a bad
/// header, a short or unreadable body, or a non-finite entry.
pub fn read_square(path: &Path) -> Result<(usize, Vec<f64>)> {
    let file = output::open_input(path, "matrix")?;
    let npy = NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{} is not a readable .npy file", path.display()))?;
    let n = check_header(path, &npy)?;
    let order = npy.order();
    let data: Vec<f64> =
        npy.into_vec().with_context(|| format!("cannot read the entries of {} (truncated?)", path.display()))?;
    if data.len() != n * n {
        bail!("{} holds {} entries, not the {} its {n}x{n} header promises", path.display(), data.len(), n * n);
    }
    let data = match order {
        Order::C => data,
        Order::Fortran => {
            let mut t = vec![0.0; n * n];
            for (j, col) in data.chunks(n).enumerate() {
                for (i, &x) in col.iter().enumerate() {
                    t[i * n + j] = x;
                }
            }
            t
        }
    };
    if let Some(at) = data.iter().position(|x| !x.is_finite()) {
        bail!("{} has a non-finite entry ({}) at row {}, column {}", path.display(), data[at], at / n, at % n);
    }
    Ok((n, data))
}

/// Writes the row-major `n x n` matrix `data` for `path` under its
/// temporary name (`output::Staged::commit` puts it in place).
pub fn write_square(path: &Path, n: usize, data: &[f64]) -> Result<output::Staged> {
    output::stage(path, |w| encode(w, n, data).with_context(|| format!("cannot write {}", path.display())))
}

/// Writes `data` as an `n x n` C-order float64 `.npy` to `w`.
fn encode(w: impl std::io::Write, n: usize, data: &[f64]) -> std::io::Result<()> {
    let mut writer = npyz::WriteOptions::new().default_dtype().shape(&[n as u64, n as u64]).writer(w).begin_nd()?;
    writer.extend(data.iter().copied())?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        let m = [1.0, -2.5, 3.0, 4.25];
        // `encode`, not `write_square`: the signals unit test empties the
        // process-wide list of tracked temporary files while tests run in parallel.
        encode(std::fs::File::create(&p).unwrap(), 2, &m).unwrap();
        assert_eq!(square_order(&p).unwrap(), 2);
        assert_eq!(read_square(&p).unwrap(), (2, m.to_vec()));

        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(read_square(&p).unwrap_err().to_string().contains("cannot read the entries"));
        std::fs::write(&p, b"not numpy at all").unwrap();
        assert!(square_order(&p).unwrap_err().to_string().contains("not a readable .npy"));

        npyz::to_file_1d(&p, [1.0f64, 2.0]).unwrap();
        assert!(square_order(&p).unwrap_err().to_string().contains("square 2-D"));
        let mut buf = vec![];
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&[1, 1]).writer(&mut buf).begin_nd().unwrap();
        w.push(&7i32).unwrap();
        w.finish().unwrap();
        std::fs::write(&p, &buf).unwrap();
        assert!(square_order(&p).unwrap_err().to_string().contains("float64"));

        encode(std::fs::File::create(&p).unwrap(), 1, &[f64::NAN]).unwrap();
        assert!(read_square(&p).unwrap_err().to_string().contains("non-finite"));
    }
}
