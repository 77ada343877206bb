//! Parsing of counts written the way people write them: `1e9`, `10M`, `2G`,
//! `1_000_000`, `4Ki`.

use std::fmt;

/// A count of things (samples, terms, pixels), parsed from human notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

/// Why a size did not parse.
#[derive(Debug, PartialEq, Eq)]
pub struct SizeError(String);

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SizeError {}

const SUFFIXES: [(&str, u64); 8] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("K", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
];

impl std::str::FromStr for Size {
    type Err = SizeError;

    /// Accepts a whole number with optional `_` separators, a decimal mantissa
    /// with an exponent (`1e9`, `2.5e6`), or a number with a decimal suffix
    /// `K M G T` (powers of 1000, also lower case `k`) or a binary suffix
    /// `Ki Mi Gi Ti` (powers of 1024). The value must be a whole number that
    /// fits in 64 bits.
    fn from_str(text: &str) -> Result<Size, SizeError> {
        let err = |why: &str| SizeError(format!("'{text}' is not a valid count: {why}"));
        let s: String = text.trim().chars().filter(|&c| c != '_').collect();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.starts_with('-') {
            return Err(err("counts cannot be negative"));
        }
        let (num, mult) = SUFFIXES
            .iter()
            .find_map(|&(suf, m)| {
                s.strip_suffix(suf).or_else(|| if suf == "K" { s.strip_suffix('k') } else { None }).map(|n| (n, m))
            })
            .unwrap_or((s.as_str(), 1));
        if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+')) {
            return Err(err(
                "expected digits with an optional exponent or K/M/G/T/Ki/Mi/Gi/Ti suffix, e.g. 1e9, 10M, 2G",
            ));
        }
        if let Ok(n) = num.parse::<u64>() {
            return n.checked_mul(mult).map(Size).ok_or_else(|| err("it is larger than 2^64 - 1"));
        }
        exact_decimal(num, mult)
            .ok_or_else(|| {
                err("expected digits with an optional exponent or K/M/G/T/Ki/Mi/Gi/Ti suffix, e.g. 1e9, 10M, 2G")
            })?
            .and_then(|n| u64::try_from(n).ok())
            .map(Size)
            .ok_or_else(|| err("it is not a whole number below 2^64"))
    }
}

/// The exact value of `digits[.digits][e[+]exp] * mult`; `Some(None)` when it
/// is not a whole number or too large, `None` when it is malformed.
fn exact_decimal(s: &str, mult: u64) -> Option<Option<u128>> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].strip_prefix('+').unwrap_or(&s[i + 1..]).parse::<u32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let digits: u128 = match format!("{int}{frac}").trim_start_matches('0') {
        "" => return Some(Some(0)),
        d if d.len() > 38 => return Some(None),
        d => d.parse().ok()?,
    };
    // value = digits * 10^exp * mult / 10^frac_len, exactly, or not at all.
    let value = (|| {
        let mut num = digits.checked_mul(u128::from(mult))?;
        let mut den_exp = frac.len() as u32;
        let common = den_exp.min(exp);
        den_exp -= common;
        num = num.checked_mul(10u128.checked_pow(exp - common)?)?;
        let den = 10u128.checked_pow(den_exp)?;
        (num % den == 0).then(|| num / den)
    })();
    Some(value)
}

impl fmt::Display for Size {
    /// Round powers-of-ten multiples print as `1e9`, others in full.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n >= 10_000 {
            let zeros = n.trailing_zeros_decimal();
            let mantissa = n / 10u64.pow(zeros);
            if zeros >= 4 && mantissa < 10 {
                return write!(f, "{mantissa}e{zeros}");
            }
        }
        write!(f, "{n}")
    }
}

trait DecimalZeros {
    fn trailing_zeros_decimal(self) -> u32;
}

impl DecimalZeros for u64 {
    fn trailing_zeros_decimal(mut self) -> u32 {
        let mut z = 0;
        while self != 0 && self.is_multiple_of(10) {
            self /= 10;
            z += 1;
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> u64 {
        s.parse::<Size>().unwrap_or_else(|e| panic!("{s}: {e}")).0
    }

    fn bad(s: &str) -> String {
        s.parse::<Size>().unwrap_err().to_string()
    }

    #[test]
    fn accepts_the_usual_notations() {
        assert_eq!(ok("1e9"), 1_000_000_000);
        assert_eq!(ok("1E9"), 1_000_000_000);
        assert_eq!(ok("2.5e6"), 2_500_000);
        assert_eq!(ok("10M"), 10_000_000);
        assert_eq!(ok("2G"), 2_000_000_000);
        assert_eq!(ok("3k"), 3_000);
        assert_eq!(ok("1.5K"), 1_500);
        assert_eq!(ok("4Ki"), 4096);
        assert_eq!(ok("1_000_000"), 1_000_000);
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("18446744073709551615"), u64::MAX);
        assert_eq!(ok("1e19"), 10_000_000_000_000_000_000);
        assert_eq!(ok("0.0e5"), 0);
        assert_eq!(ok("1e+3"), 1000);
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(bad("").contains("empty"));
        assert!(bad("-5").contains("negative"));
        assert!(bad("abc").contains("e.g. 1e9"));
        assert!(bad("1.5").contains("whole number"));
        assert!(bad("1e-3").contains("e.g."));
        assert!(bad("2e19").contains("below 2^64"));
        assert!(bad("18446744073709551616").contains("below 2^64"));
        assert!(bad("20000000000T").contains("2^64"));
        assert!(bad("1e400").contains("below 2^64"));
        assert!(bad("NaN").contains("e.g."));
        assert!(bad("inf").contains("e.g."));
        assert!(bad("1..2").contains("e.g."));
        assert!(bad("1e").contains("e.g."));
        assert!(bad("e5").contains("e.g."));
    }

    proptest::proptest! {
        #[test]
        fn every_u64_round_trips(n: u64) {
            proptest::prop_assert_eq!(ok(&n.to_string()), n);
            proptest::prop_assert_eq!(ok(&Size(n).to_string()), n);
        }

        #[test]
        fn suffixes_multiply_exactly(n in 0u64..18_446_744_073u64, i in 0usize..8) {
            let (suffix, mult) = SUFFIXES[i];
            let text = format!("{n}{suffix}");
            match n.checked_mul(mult) {
                Some(v) => proptest::prop_assert_eq!(ok(&text), v),
                None => proptest::prop_assert!(text.parse::<Size>().is_err()),
            }
        }

        #[test]
        fn exponents_are_exact(m in 0u64..100_000, e in 0u32..25) {
            let text = format!("{m}e{e}");
            match 10u64.checked_pow(e).and_then(|p| m.checked_mul(p)) {
                Some(v) => proptest::prop_assert_eq!(ok(&text), v),
                None => proptest::prop_assert!(text.parse::<Size>().is_err()),
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Size>();
        }
    }

    #[test]
    fn displays_compactly_and_round_trips() {
        for (n, s) in [(1_000_000_000u64, "1e9"), (50_000, "5e4"), (3200, "3200"), (12_345_000, "12345000"), (0, "0")] {
            assert_eq!(Size(n).to_string(), s);
            assert_eq!(ok(s), n);
        }
    }
}
