//! The compute kernels of pikernels, free of any MPI type.
//!
//! Every kernel splits its global work into *units* (blocks of samples, blocks
//! of series terms, image rows). A unit's result depends only on the kernel's
//! parameters and the unit's index, never on which process or thread computed
//! it, and partial results combine through an exact integer sum ([`Tally`]).
//! That is what makes results bit-identical for any process count, thread count
//! and communication strategy: the runtime in the `pikernels` binary may cut
//! the unit range however it likes.
//!
//! Each kernel module offers a parallel function over a range of units (rayon
//! inside, in whatever thread pool the caller installs) and a plain sequential
//! reference used by tests and by the run-time verification.
//!
//! ```
//! use kernels::{partition::block_range, pi_mc, Tally};
//!
//! // Cut 100,000 samples into three parts: the hits add up to the same total.
//! let samples = 100_000;
//! let units = pi_mc::units(samples);
//! let parts: Tally = (0..3).map(|i| pi_mc::count_inside(7, samples, block_range(units, 3, i))).sum();
//! assert_eq!(parts.to_count(), Some(pi_mc::count_inside_seq(7, samples)));
//! ```
#![deny(missing_docs)]

pub use mandelbrot::colormap;
pub mod block;
mod counter;
pub mod heat;
mod invalid;
pub use invalid::Invalid;
pub mod leibniz;
pub mod mandelbrot;
pub mod matmul;
pub mod partition;
pub mod pi_mc;
pub mod simd;
pub mod sort;
pub use simd::ENV_SIMD;
mod tally;

pub use tally::Tally;

/// A 64-bit digest of `values`' exact bits, as 16 hex digits: two runs with
/// equal digests computed bit-identical values, barring a 2^-64
/// coincidence. The reports' digest fields, and the platform comparison of
/// `examples/portable_check.rs`.
pub fn digest(values: &[f64]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in values {
        h = (h ^ x.to_bits()).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    format!("{h:016x}")
}
