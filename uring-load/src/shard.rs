//! One run across many machines: each machine runs one shard of it (`--shard I/N`, or the
//! index from a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` with `--shards N`), all
//! shards start together (`--start-at`), and `uring-load merge` adds their reports.
//!
//! What a shard does: with `-n`, its exact share (the shares sum to `-n`: the first
//! `n % N` shards send one more); with `-R`, `1/N` of the rate; `-c`, `-t` and `-d` are
//! per machine. There is no cluster protocol: the shards agree because they were given
//! the same flags, and the run id is derived from those flags when `--run-id` is absent.
//!
//! Times are wall-clock (`SystemTime`): `--start-at` takes a Unix time (`1796040000`,
//! `1796040000.5`) or RFC 3339 (`2026-11-30T12:00:00Z`, `2026-11-30T13:00:00+01:00`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How late a shard may be for `--start-at` before it refuses to skew the run.
pub const START_TOLERANCE: Duration = Duration::from_secs(1);

/// The environment variable a Kubernetes Indexed Job sets in every pod.
pub const JOB_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// This process's part of a run: shard `index` of `count` (0-based, like
/// `JOB_COMPLETION_INDEX` and pdsh's `%n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why the sharding flags make no run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// `--shard` is not `I/N` with `0 <= I < N`.
    BadShard(String),
    /// `--shards N` without `JOB_COMPLETION_INDEX`, or with a bad one.
    NoIndex {
        shards: u32,
        env: Option<String>,
    },
    /// `--shard` and `--shards` together.
    Both,
    /// Fewer requests than shards: some shard would have nothing to send.
    TooFewRequests {
        requests: u64,
        shards: u32,
    },
    /// `--start-at` does not parse.
    BadTime(String),
    /// `--start-at` is more than [`START_TOLERANCE`] in the past by this clock.
    StartPassed {
        start_at: String,
        late: Duration,
    },
    BadRunId(String),
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardError::BadShard(s) => write!(
                f,
                "bad --shard '{s}': expected I/N with 0 <= I < N (0-based, e.g. --shard 0/3)"
            ),
            ShardError::NoIndex { shards, env: None } => write!(
                f,
                "--shards {shards} takes this shard's index from {JOB_INDEX_ENV} (a Kubernetes Indexed Job sets it), which is not set: use --shard I/{shards}"
            ),
            ShardError::NoIndex {
                shards,
                env: Some(v),
            } => write!(
                f,
                "{JOB_INDEX_ENV}='{v}' is not a shard index below --shards {shards}"
            ),
            ShardError::Both => f.write_str("give --shard I/N or --shards N, not both"),
            ShardError::TooFewRequests { requests, shards } => write!(
                f,
                "-n {requests} is fewer requests than the {shards} shards: every shard needs at least one"
            ),
            ShardError::BadTime(s) => write!(
                f,
                "bad --start-at '{s}': expected a Unix time (1796040000) or RFC 3339 (2026-11-30T12:00:00Z)"
            ),
            ShardError::StartPassed { start_at, late } => write!(
                f,
                "--start-at {start_at} passed {:.3}s ago by this machine's clock (tolerance {}s): refusing to start late and skew the run; check the clocks (NTP) or pick a later time",
                late.as_secs_f64(),
                START_TOLERANCE.as_secs()
            ),
            ShardError::BadRunId(s) => write!(
                f,
                "bad --run-id '{s}': use 1 to 64 letters, digits, '-', '_' or '.'"
            ),
        }
    }
}

impl std::error::Error for ShardError {}

impl Shard {
    /// The whole run on one machine.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `I/N`.
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::BadShard(s.to_string());
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// From the flags: `--shard I/N`, or `--shards N` with the index from
    /// `JOB_COMPLETION_INDEX` (`env` is that variable's value), or the whole run.
    pub fn from_flags(
        shard: Option<&str>,
        shards: Option<u32>,
        env: Option<&str>,
    ) -> Result<Shard, ShardError> {
        match (shard, shards) {
            (Some(_), Some(_)) => Err(ShardError::Both),
            (Some(s), None) => Shard::parse(s),
            (None, Some(count)) => {
                let no_index = || ShardError::NoIndex {
                    shards: count,
                    env: env.map(str::to_string),
                };
                let index: u32 = env
                    .ok_or_else(no_index)?
                    .trim()
                    .parse()
                    .map_err(|_| no_index())?;
                if count == 0 || index >= count {
                    return Err(no_index());
                }
                Ok(Shard { index, count })
            }
            (None, None) => Ok(Shard::WHOLE),
        }
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// This shard's exact share of `total` requests: the shares of all shards sum to it.
    pub fn share_of_requests(self, total: u64) -> Result<u64, ShardError> {
        if total < u64::from(self.count) {
            return Err(ShardError::TooFewRequests {
                requests: total,
                shards: self.count,
            });
        }
        let n = u64::from(self.count);
        Ok(total / n + u64::from(u64::from(self.index) < total % n))
    }

    /// This shard's share of a total rate.
    pub fn share_of_rate(self, rate: f64) -> f64 {
        rate / f64::from(self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--run-id`: a label safe in file names and shell lines.
pub fn check_run_id(id: &str) -> Result<(), ShardError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ShardError::BadRunId(id.to_string()))
    }
}

/// A run id every shard derives alike from the flags they share (FNV-1a, 64 bits, of
/// the canonical parameters): `r-` and 16 hex digits.
pub fn derive_run_id(shared_parameters: &[(&str, String)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in shared_parameters {
        for b in k.bytes().chain([b'=']).chain(v.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("r-{h:016x}")
}

/// This machine's host name (what `hostname` prints), or "unknown".
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // (or truncates, and the last byte stays 0).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Parse `--start-at`: Unix seconds (fraction allowed) or RFC 3339.
pub fn parse_time(s: &str) -> Result<SystemTime, ShardError> {
    let t = s.trim();
    let bad = || ShardError::BadTime(s.to_string());
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|_| bad())?;
        if !secs.is_finite() || secs > 1e12 {
            return Err(bad());
        }
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    parse_rfc3339(t).ok_or_else(bad)
}

fn parse_rfc3339(t: &str) -> Option<SystemTime> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = t.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &t[19..];
    let mut nanos: u64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u64>().ok()? * 10u64.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' {
                return None;
            }
            let (h, m): (i64, i64) = (rest[1..3].parse().ok()?, rest[4..6].parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// RFC 3339 in UTC with microseconds: `2026-11-30T12:00:00.000000Z`.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Microseconds since the Unix epoch.
pub fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// How long until `start_at` by this clock; an error when it passed more than
/// [`START_TOLERANCE`] ago (a start a little late is a start now).
pub fn until_start(start_at: SystemTime, now: SystemTime) -> Result<Duration, ShardError> {
    match start_at.duration_since(now) {
        Ok(wait) => Ok(wait),
        Err(e) if e.duration() <= START_TOLERANCE => Ok(Duration::ZERO),
        Err(e) => Err(ShardError::StartPassed {
            start_at: format_time(start_at),
            late: e.duration(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_flags() {
        assert_eq!(Shard::parse("0/3").unwrap(), Shard { index: 0, count: 3 });
        assert_eq!(
            Shard::parse(" 2 / 3 ").unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2", "1/2/3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Shard::from_flags(None, None, Some("5")).unwrap(),
            Shard::WHOLE
        );
        assert_eq!(
            Shard::from_flags(None, Some(4), Some("3")).unwrap(),
            Shard { index: 3, count: 4 }
        );
        assert_eq!(
            Shard::from_flags(None, Some(4), None).unwrap_err(),
            ShardError::NoIndex {
                shards: 4,
                env: None
            }
        );
        assert!(Shard::from_flags(None, Some(4), Some("4")).is_err());
        assert!(Shard::from_flags(None, Some(4), Some("a")).is_err());
        assert_eq!(
            Shard::from_flags(Some("0/2"), Some(2), Some("0")).unwrap_err(),
            ShardError::Both
        );
    }

    #[test]
    fn shares_of_n_sum_to_n_exactly() {
        for total in [3u64, 7, 10, 1000, 1001, 999_999] {
            for count in 1..=7u32 {
                if total < u64::from(count) {
                    continue;
                }
                let shares: Vec<u64> = (0..count)
                    .map(|index| Shard { index, count }.share_of_requests(total).unwrap())
                    .collect();
                assert_eq!(shares.iter().sum::<u64>(), total, "{total} over {count}");
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "{shares:?}");
            }
        }
        assert_eq!(
            Shard { index: 0, count: 3 }.share_of_requests(10).unwrap(),
            4
        );
        assert_eq!(
            Shard { index: 2, count: 3 }.share_of_requests(10).unwrap(),
            3
        );
        assert!(Shard { index: 0, count: 3 }.share_of_requests(2).is_err());
        assert_eq!(Shard { index: 1, count: 4 }.share_of_rate(1000.0), 250.0);
    }

    #[test]
    fn times_parse_both_ways_and_format_back() {
        let t = parse_time("2026-11-30T12:00:00Z").unwrap();
        assert_eq!(unix_us(t), 1_796_040_000_000_000);
        assert_eq!(parse_time("1796040000").unwrap(), t);
        assert_eq!(parse_time("2026-11-30T13:00:00+01:00").unwrap(), t);
        assert_eq!(parse_time("2026-11-30t11:30:00-00:30").unwrap(), t);
        let frac = parse_time("2026-11-30T12:00:00.25Z").unwrap();
        assert_eq!(unix_us(frac), 1_796_040_000_250_000);
        assert_eq!(parse_time("1796040000.25").unwrap(), frac);
        assert_eq!(format_time(frac), "2026-11-30T12:00:00.250000Z");
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_time(parse_time("2024-02-29T23:59:59Z").unwrap()),
            "2024-02-29T23:59:59.000000Z"
        );
        for bad in [
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-30T12:00:00",
            "2026-11-30T12:00:00+1:00",
            "2026-11-30T24:00:00Z",
            "tomorrow",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_start_passed_by_more_than_a_second_is_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let later = now + Duration::from_millis(1500);
        assert_eq!(
            until_start(later, now).unwrap(),
            Duration::from_millis(1500)
        );
        let just = now - Duration::from_millis(900);
        assert_eq!(until_start(just, now).unwrap(), Duration::ZERO);
        let late = now - Duration::from_millis(1100);
        let e = until_start(late, now).unwrap_err();
        assert!(e.to_string().contains("passed 1.100s ago"), "{e}");
    }

    #[test]
    fn run_ids() {
        let a = derive_run_id(&[("url", "http://h/".into()), ("n", "100".into())]);
        let b = derive_run_id(&[("url", "http://h/".into()), ("n", "100".into())]);
        let c = derive_run_id(&[("url", "http://h/".into()), ("n", "101".into())]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("r-") && a.len() == 18, "{a}");
        assert!(check_run_id(&a).is_ok());
        assert!(check_run_id("bench-2026.11.30_a").is_ok());
        for bad in ["", "a b", "x;rm", &"x".repeat(65)] {
            assert!(check_run_id(bad).is_err(), "{bad}");
        }
        assert!(!host_name().is_empty());
    }
}
