//! Parsing of the numbers (`10k`, `1M`) and durations (`500ms`, `10s`, `2m`) the command
//! line accepts. Errors are one short sentence, printed as is by the binary.

use std::fmt;
use std::time::Duration;

/// A command-line value that is not the number, rate or duration its flag wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub input: String,
    /// What was expected, with examples ("a count (examples: 100, 10k, 1M)").
    pub expected: &'static str,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not {}", self.input, self.expected)
    }
}

impl std::error::Error for UnitError {}

fn unit_error(input: &str, expected: &'static str) -> UnitError {
    UnitError {
        input: input.to_string(),
        expected,
    }
}

/// A count with an optional decimal suffix: `k` (1e3), `M` (1e6), `G` (1e9).
/// `1.5k` is accepted when the result is whole.
pub fn parse_count(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k') | Some(b'K') => (&t[..t.len() - 1], 1_000u64),
        Some(b'm') | Some(b'M') => (&t[..t.len() - 1], 1_000_000),
        Some(b'g') | Some(b'G') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (t, 1),
    };
    let bad = || unit_error(s, "a count (examples: 100, 10k, 1M)");
    if num.is_empty() {
        return Err(bad());
    }
    if let Ok(v) = num.parse::<u64>() {
        return v.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let v = f * mult as f64;
    if !f.is_finite() || f < 0.0 || v.fract() != 0.0 || v > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as u64)
}

/// A rate (requests per second) with the same suffixes as [`parse_count`]; fractions allowed.
pub fn parse_rate(s: &str) -> Result<f64, UnitError> {
    let t = s.trim();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k') | Some(b'K') => (&t[..t.len() - 1], 1e3),
        Some(b'm') | Some(b'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v * mult),
        _ => Err(unit_error(
            s,
            "a rate in requests per second (examples: 1000, 50k)",
        )),
    }
}

/// A duration: a number followed by `us`, `ms`, `s`, `m` or `h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let t = s.trim();
    let bad = || unit_error(s, "a duration (examples: 500ms, 10s, 2m)");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `1.23ms`, `456.00us`, `2.50s`: wrk's latency formatting.
pub fn format_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// Byte counts in binary units, as wrk prints them (`1.23MB`).
pub fn format_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2}{}", UNITS[i])
}

/// Large counts with a suffix, as wrk prints requests per second (`56.20k`).
pub fn format_count(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.2}k", v / 1e3)
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("10000"), Ok(10_000));
        assert_eq!(parse_count("10k"), Ok(10_000));
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert_eq!(parse_count("1.5k"), Ok(1_500));
        assert_eq!(parse_count("0"), Ok(0));
        assert!(parse_count("").is_err());
        assert!(parse_count("k").is_err());
        assert!(parse_count("-5").is_err());
        assert!(parse_count("1.2345k").is_err());
        assert!(parse_count("ten").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("50k"), Ok(50_000.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("x").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_us(635.91), "635.91us");
        assert_eq!(format_us(1_500.0), "1.50ms");
        assert_eq!(format_us(2_500_000.0), "2.50s");
        assert_eq!(format_bytes(2048.0), "2.00KB");
        assert_eq!(format_count(56_200.0), "56.20k");
    }
}
