//! Ramps (`--stages 10s:1000,30s:5000,10s:0`, k6's stages): the open model's rate moves
//! linearly from each stage's start value to its target over the stage's duration,
//! starting from 0. Request `k` of a share `f` of the rate is due when the ramp's
//! cumulative count reaches `k / f`; latency counts from that intended time, so
//! coordinated omission stays corrected through the ramp. After the last stage the rate
//! stays at its last target (the run ends there unless `-d` says otherwise).
//!
//! `--stages-connections 5s:10,20s:200` uses the same shape for the closed model's number
//! of open connections (see [`Ramp::value_at`]).

use std::fmt::Write as _;
use std::time::Duration;

use crate::units;

/// One stage: move to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// A piecewise-linear profile from 0 through the stages' targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    pub stages: Vec<Stage>,
}

/// What the values of a ramp are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Requests per second (`--stages`): fractions allowed.
    Rate,
    /// Connections (`--stages-connections`): whole numbers.
    Connections,
}

impl Ramp {
    /// Parse `DURATION:VALUE[,DURATION:VALUE...]`; `flag` names the flag in errors.
    pub fn parse(text: &str, unit: Unit, flag: &str) -> Result<Ramp, String> {
        let mut stages = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let bad = |why: String| format!("{flag} '{text}': stage '{part}': {why}");
            let (d, v) = part
                .split_once(':')
                .ok_or_else(|| bad("expected DURATION:TARGET, e.g. 10s:1000".into()))?;
            let duration = units::parse_duration(d).map_err(|e| bad(e.to_string()))?;
            let target = match (unit, v.trim()) {
                (_, "0") => 0.0,
                (Unit::Rate, v) => units::parse_rate(v).map_err(|e| bad(e.to_string()))?,
                (Unit::Connections, v) => {
                    units::parse_count(v).map_err(|e| bad(e.to_string()))? as f64
                }
            };
            stages.push(Stage { duration, target });
        }
        let ramp = Ramp { stages };
        if ramp.total().is_zero() {
            return Err(format!("{flag} '{text}': the stages last no time"));
        }
        if ramp.peak() == 0.0 {
            return Err(format!("{flag} '{text}': every target is 0"));
        }
        Ok(ramp)
    }

    /// How long the stages last together.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The highest target.
    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(0.0, f64::max)
    }

    /// The ramp with every value multiplied by `f` (a shard's share).
    pub fn scaled(&self, f: f64) -> Ramp {
        Ramp {
            stages: (self.stages.iter())
                .map(|s| Stage {
                    target: s.target * f,
                    ..*s
                })
                .collect(),
        }
    }

    /// Each stage as (start second, length in seconds, start value, end value).
    fn pieces(&self) -> impl Iterator<Item = (f64, f64, f64, f64)> + '_ {
        let mut t = 0.0;
        let mut from = 0.0;
        self.stages.iter().map(move |s| {
            let piece = (t, s.duration.as_secs_f64(), from, s.target);
            t += piece.1;
            from = s.target;
            piece
        })
    }

    fn last(&self) -> f64 {
        self.stages.last().map_or(0.0, |s| s.target)
    }

    /// The value at `t` seconds from the start.
    pub fn value_at(&self, t: f64) -> f64 {
        for (t0, len, r0, r1) in self.pieces() {
            if t < t0 + len {
                let x = if len > 0.0 { (t - t0) / len } else { 1.0 };
                return r0 + (r1 - r0) * x.clamp(0.0, 1.0);
            }
        }
        self.last()
    }

    /// Requests due by `t` seconds: the integral of the rate.
    pub fn cumulative(&self, t: f64) -> f64 {
        let mut sum = 0.0;
        for (t0, len, r0, r1) in self.pieces() {
            if t <= t0 {
                return sum;
            }
            let x = (t - t0).min(len);
            let slope = if len > 0.0 { (r1 - r0) / len } else { 0.0 };
            sum += r0 * x + slope * x * x / 2.0;
            if t < t0 + len {
                return sum;
            }
        }
        let end: f64 = self.total().as_secs_f64();
        sum + self.last() * (t - end).max(0.0)
    }

    /// When the cumulative count reaches `count` (seconds from the start); `None` if it
    /// never does (the ramp ends at 0 before).
    pub fn time_of(&self, count: f64) -> Option<f64> {
        if count <= 0.0 {
            return Some(0.0);
        }
        let mut before = 0.0;
        for (t0, len, r0, r1) in self.pieces() {
            let slope = if len > 0.0 { (r1 - r0) / len } else { 0.0 };
            let area = r0 * len + slope * len * len / 2.0;
            if before + area >= count {
                // r0 x + slope x^2 / 2 = c, in the form that stays exact when slope is 0
                // or negative: x = 2c / (r0 + sqrt(r0^2 + 2 slope c)).
                let c = count - before;
                let root = (r0 * r0 + 2.0 * slope * c).max(0.0).sqrt();
                let x = if r0 + root > 0.0 {
                    2.0 * c / (r0 + root)
                } else {
                    0.0
                };
                return Some(t0 + x.min(len));
            }
            before += area;
        }
        let last = self.last();
        (last > 0.0).then(|| self.total().as_secs_f64() + (count - before) / last)
    }

    /// `10s:1000,30s:5000,10s:0` again (for the report).
    pub fn describe(&self) -> String {
        let mut o = String::new();
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{}s:{}", s.duration.as_secs_f64(), s.target);
        }
        o
    }
}

/// One row of the report's rate table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRow {
    /// Start of the interval, seconds from the run's start.
    pub start: f64,
    pub length: f64,
    /// Mean of the ramp over the interval (a rate, or connections).
    pub intended: f64,
    /// Responses completed per second in the interval.
    pub achieved: f64,
}

/// The report's table: per interval, the ramp's value (`what`: rate or connections) and
/// the requests per second achieved.
pub fn rate_table(ramp: Option<&Ramp>, rows: &[RateRow], what: &str) -> String {
    let mut o = String::new();
    if rows.is_empty() {
        return o;
    }
    match ramp {
        Some(r) => {
            let _ = writeln!(o, "{what} per interval (stages {}):", r.describe());
        }
        None => {
            let _ = writeln!(o, "{what} per interval:");
        }
    }
    let rate = what == "rate";
    let _ = writeln!(
        o,
        "  {:>8} {:>12} {:>12} {:>8}",
        "t (s)",
        if rate { "intended" } else { "connections" },
        "req/s",
        if rate { "ratio" } else { "" }
    );
    for row in rows {
        let ratio = match (rate, row.intended > 0.0) {
            (true, true) => format!("{:.3}", row.achieved / row.intended),
            (true, false) => "-".into(),
            (false, _) => String::new(),
        };
        let _ = writeln!(
            o,
            "  {:>8.1} {:>12.1} {:>12.1} {:>8}",
            row.start, row.intended, row.achieved, ratio
        );
    }
    o
}

impl RateRow {
    /// The row of an interval of a connection ramp: the mean connections intended.
    pub fn connections(ramp: &Ramp, start: f64, length: f64, done: u64) -> RateRow {
        let mut row = RateRow::of(ramp, start, length, done);
        if length <= 0.0 {
            row.intended = ramp.value_at(start);
        }
        row
    }

    /// The row of an interval `[start, start + length)` seconds into the run.
    pub fn of(ramp: &Ramp, start: f64, length: f64, done: u64) -> RateRow {
        let (intended, achieved) = if length > 0.0 {
            (
                (ramp.cumulative(start + length) - ramp.cumulative(start)) / length,
                done as f64 / length,
            )
        } else {
            (0.0, 0.0)
        };
        RateRow {
            start,
            length,
            intended,
            achieved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(s: &str) -> Ramp {
        Ramp::parse(s, Unit::Rate, "--stages").unwrap()
    }

    #[test]
    fn parses_and_refuses_with_the_stage_named() {
        let r = ramp("10s:1000,30s:5k,10s:0");
        assert_eq!(r.stages.len(), 3);
        assert_eq!(r.stages[1].target, 5000.0);
        assert_eq!(r.total(), Duration::from_secs(50));
        for (bad, why) in [
            ("10s", "expected DURATION:TARGET"),
            ("10s:fast", "not a rate"),
            ("soon:10", "not a duration"),
            ("0s:10", "last no time"),
            ("10s:0,5s:0", "every target is 0"),
        ] {
            let e = Ramp::parse(bad, Unit::Rate, "--stages").unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.starts_with("--stages '"), "{e}");
        }
        let c = Ramp::parse("5s:10,20s:200", Unit::Connections, "--stages-connections").unwrap();
        assert_eq!(c.value_at(2.5), 5.0);
        assert!(Ramp::parse("5s:1.5", Unit::Connections, "--stages-connections").is_err());
    }

    #[test]
    fn rate_and_cumulative_follow_the_lines() {
        let r = ramp("10s:1000,10s:1000,10s:0");
        assert_eq!(r.value_at(0.0), 0.0);
        assert_eq!(r.value_at(5.0), 500.0);
        assert_eq!(r.value_at(15.0), 1000.0);
        assert_eq!(r.value_at(25.0), 500.0);
        assert_eq!(r.value_at(99.0), 0.0);
        assert_eq!(r.cumulative(10.0), 5000.0);
        assert_eq!(r.cumulative(20.0), 15000.0);
        assert_eq!(r.cumulative(30.0), 20000.0);
        assert_eq!(r.cumulative(40.0), 20000.0);
    }

    #[test]
    fn time_of_inverts_cumulative_on_every_piece() {
        let r = ramp("10s:1000,10s:1000,10s:200,5s:200");
        for k in [
            1.0, 10.0, 4999.0, 5000.0, 5001.0, 12_345.0, 15_000.0, 19_000.0, 21_000.0,
        ] {
            let t = r.time_of(k).unwrap();
            assert!(
                (r.cumulative(t) - k).abs() < 1e-6,
                "{k}: t {t}, {}",
                r.cumulative(t)
            );
        }
        // After the last stage the rate stays at its target.
        let end = r.cumulative(35.0);
        assert!((r.time_of(end + 400.0).unwrap() - 37.0).abs() < 1e-9);
        // A ramp that ends at 0 never reaches more than its area.
        let down = ramp("10s:100,10s:0");
        assert_eq!(down.cumulative(20.0), 1000.0);
        assert!(down.time_of(1000.5).is_none());
        // Ramping down from a rate: the first requests come at that rate.
        let d = ramp("1s:100,10s:0");
        assert!((d.time_of(50.0).unwrap() - 1.0).abs() < 1e-9);
        assert!((d.cumulative(d.time_of(300.0).unwrap()) - 300.0).abs() < 1e-6);
    }

    #[test]
    fn rows_compare_with_the_mean_of_the_ramp() {
        let r = ramp("10s:1000");
        let row = RateRow::of(&r, 2.0, 1.0, 250);
        assert_eq!(row.intended, 250.0);
        assert_eq!(row.achieved, 250.0);
        let t = rate_table(Some(&r), &[row], "rate");
        assert!(t.contains("stages 10s:1000"), "{t}");
        assert!(t.contains("1.000"), "{t}");
    }
}
