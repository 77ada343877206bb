//! An exact, order-independent accumulator for partial results.

use std::ops::{Add, AddAssign};

/// An exact integer sum of partial results.
///
/// Integer addition is associative, so a `Tally` combined in any grouping, by
/// any number of processes, gives the same bits. Counts (hits, iterations) are
/// stored as they are; real-valued partial sums are stored in fixed point with
/// [`Tally::FRACTION_BITS`] fractional bits, rounded once per work unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tally(pub i128);

impl Tally {
    /// Fractional bits of the fixed-point form used for real values.
    ///
    /// 2^-100 is far below f64 resolution of any unit sum that matters, and
    /// leaves 27 integer bits before an `i128` overflows.
    pub const FRACTION_BITS: i32 = 100;

    /// A tally of a count.
    pub fn count(n: u64) -> Self {
        Tally(i128::from(n))
    }

    /// A real value in fixed point (rounded to the nearest 2^-100).
    ///
    /// The rounding is a function of `x` alone, so it does not depend on who
    /// computed `x`.
    pub fn fixed(x: f64) -> Self {
        debug_assert!(x.is_finite() && x.abs() < 1.0e7);
        Tally((x * 2f64.powi(Self::FRACTION_BITS)).round() as i128)
    }

    /// The fixed-point value as an `f64` (the inverse of [`Tally::fixed`], up to rounding).
    pub fn to_f64_fixed(self) -> f64 {
        self.0 as f64 / 2f64.powi(Self::FRACTION_BITS)
    }

    /// The tally as a count; `None` if it is negative or above `u64::MAX`.
    pub fn to_count(self) -> Option<u64> {
        u64::try_from(self.0).ok()
    }

    /// The tally as four signed 32-bit limbs, least significant first, each
    /// widened to `i64`.
    ///
    /// A plain element-wise `MPI_SUM` of limbs from up to 2^31 processes cannot
    /// overflow an `i64`, and [`Tally::from_limbs`] of the limb-wise sum is the
    /// exact sum of the tallies. This lets the runtime use the built-in reduce.
    pub fn to_limbs(self) -> [i64; 4] {
        let v = self.0 as u128;
        let mut limbs = [0i64; 4];
        for (k, limb) in limbs.iter_mut().enumerate() {
            *limb = ((v >> (32 * k)) & 0xffff_ffff) as i64;
        }
        limbs
    }

    /// The tally whose limbs (possibly summed element-wise) are `limbs`.
    pub fn from_limbs(limbs: [i64; 4]) -> Self {
        let mut v: i128 = 0;
        for (k, &limb) in limbs.iter().enumerate() {
            v = v.wrapping_add((limb as i128).wrapping_shl(32 * k as u32));
        }
        Tally(v)
    }
}

impl Add for Tally {
    type Output = Tally;
    fn add(self, rhs: Tally) -> Tally {
        Tally(self.0 + rhs.0)
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, rhs: Tally) {
        self.0 += rhs.0;
    }
}

impl std::iter::Sum for Tally {
    fn sum<I: Iterator<Item = Tally>>(iter: I) -> Tally {
        iter.fold(Tally::default(), Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limbs_round_trip() {
        for v in [0i128, 1, -1, 42, i128::from(u64::MAX), -(1 << 100), (1 << 126) + 12345] {
            assert_eq!(Tally::from_limbs(Tally(v).to_limbs()), Tally(v), "{v}");
        }
    }

    #[test]
    fn limb_wise_sum_is_exact_sum() {
        let parts = [Tally(-(1 << 90) + 7), Tally(i128::from(u64::MAX)), Tally(-3), Tally(1 << 120)];
        let mut summed = [0i64; 4];
        for p in parts {
            for (s, l) in summed.iter_mut().zip(p.to_limbs()) {
                *s += l;
            }
        }
        assert_eq!(Tally::from_limbs(summed), parts.iter().copied().sum());
    }

    #[test]
    fn fixed_point_is_close_and_deterministic() {
        let x = 0.785_123_456_789_012_3;
        let t = Tally::fixed(x);
        assert_eq!(t, Tally::fixed(x));
        assert!((t.to_f64_fixed() - x).abs() < 1e-16);
        assert_eq!(Tally::fixed(-0.5).0, -(1i128 << 99));
    }
}
