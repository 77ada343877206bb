//! The spellings and parsers that flags on every floor share: an enum
//! value's name, durations, counts of threads, `INDEX/COUNT` parts, points.
//! Pure functions of strings: no module of the crate below or above.

use clap::ValueEnum;

/// The name clap gives a value of a `--flag VALUE` enum: the one spelling
/// of that value on the command line and in reports.
pub fn value_name<T: ValueEnum>(value: T) -> String {
    value.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
}

/// Part `index` of `count` equal parts of a job's work (`--partition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Which part, from 0.
    pub index: u64,
    /// How many parts.
    pub count: u64,
}

/// The most parts a job may be cut into; more is surely a typo.
pub const MAX_PARTITIONS: u64 = 1 << 20;

pub fn parse_partition(s: &str) -> Result<Partition, String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("'{s}' is not INDEX/COUNT, e.g. 0/4"))?;
    let num = |v: &str, what: &str| v.trim().parse::<u64>().map_err(|_| format!("{what} '{v}' is not a whole number"));
    let (index, count) = (num(i, "INDEX")?, num(n, "COUNT")?);
    if count == 0 || count > MAX_PARTITIONS {
        return Err(format!("COUNT must be between 1 and {MAX_PARTITIONS}, not {count}"));
    }
    if index >= count {
        return Err(format!("INDEX counts from 0, so part {index} of {count} does not exist (0..={})", count - 1));
    }
    Ok(Partition { index, count })
}

pub fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|_| format!("'{s}' is not a whole number of threads"))?;
    match n {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// The longest duration a time limit may be: 30 days; more is surely a typo.
pub const MAX_DURATION_S: f64 = 30.0 * 86_400.0;

/// A time limit such as `90s`, `2h`, `1h30m`, `1.5m`, `500ms`, or plain seconds
/// (`600`, as `activeDeadlineSeconds` counts). Written here rather than taken
/// from `humantime`, which refuses plain seconds and fractions.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let text = s.trim();
    let bad = || format!("'{s}' is not a duration: give e.g. 90s, 2h, 1h30m, 500ms or plain seconds");
    if text.is_empty() {
        return Err(bad());
    }
    let mut seconds = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "" if digits == text.len() => 1.0,
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        seconds += value * scale;
    }
    if seconds <= 0.0 {
        return Err(format!("'{s}' is not a positive duration"));
    }
    if seconds > MAX_DURATION_S {
        return Err(format!("'{s}' is longer than the supported 30 days"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

pub fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let (x, y) = s.split_once(',').ok_or_else(|| format!("'{s}' is not X,Y (two numbers separated by a comma)"))?;
    let num = |v: &str| v.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    match (num(x), num(y)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err(format!("'{s}' is not X,Y with two finite numbers")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_and_point_parsers_explain() {
        assert!(parse_threads("0").unwrap_err().contains("at least 1"));
        assert!(parse_threads("x").unwrap_err().contains("whole number"));
        assert_eq!(parse_point("-0.5, 0.25"), Ok((-0.5, 0.25)));
        assert!(parse_point("1").is_err());
        assert!(parse_point("nan,1").is_err());
    }

    #[test]
    fn durations_parse_and_explain() {
        use std::time::Duration;
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "s", "10x", "-5s", "1h-", "1..5s", "h1", "1 h"] {
            assert!(parse_duration(bad).unwrap_err().contains("not a duration"), "{bad}");
        }
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
        assert!(parse_duration("31d").unwrap_err().contains("30 days"));
        assert!(parse_duration("1e308").is_err());
    }

    #[test]
    fn partitions_parse_and_explain() {
        assert_eq!(parse_partition("2/8"), Ok(Partition { index: 2, count: 8 }));
        assert!(parse_partition("8/8").unwrap_err().contains("does not exist"));
        assert!(parse_partition("0/0").unwrap_err().contains("COUNT"));
        assert!(parse_partition("3").unwrap_err().contains("INDEX/COUNT"));
        assert!(parse_partition("a/2").unwrap_err().contains("whole number"));
    }
}
