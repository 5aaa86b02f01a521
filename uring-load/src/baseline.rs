//! `--baseline OLD.json [--max-regression 10%]`: the run against a stored `--json` run of
//! the same targets. p50, p99, p99.9 (higher is worse) and requests/s (lower is worse) of
//! the run and of each target are compared; a change worse than the bound is a regression
//! and makes the exit code 99. When the old run's own variation (across its `--runs`, or
//! between its warm-up and its measured run) is larger than the bound, a note says that
//! the bound is inside the noise.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};
use uring_common::stats::Recorder;

use crate::breakdown::Breakdown;
use crate::error::ReportError;
use crate::merge;
use crate::report;
use crate::units::{format_count, format_us};

/// A stored run read back.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub path: String,
    pub rec: Recorder,
    pub elapsed_s: f64,
    pub breakdown: Breakdown,
    /// The old run's own variation in percent, and where it was seen.
    pub noise: Option<(f64, String)>,
}

/// Read `path` (a `uring-load --json` report, or a merge of several).
pub fn read(path: &str) -> Result<Baseline, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|err| ReportError::Read {
        path: path.to_string(),
        err,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|err| ReportError::NotJson {
        path: path.to_string(),
        err,
    })?;
    let r = merge::from_json(path, &v)?;
    Ok(Baseline {
        path: path.to_string(),
        rec: r.recorder,
        elapsed_s: r.elapsed_s,
        breakdown: r.breakdown,
        noise: noise_of(&v),
    })
}

/// The largest relative variation the report shows of itself: the coefficient of
/// variation of its runs' requests/s and p99, or the difference between its warm-up and
/// its measured figures.
pub fn noise_of(v: &Value) -> Option<(f64, String)> {
    let mut worst: Option<(f64, String)> = None;
    let mut consider = |pct: f64, why: String| {
        if pct.is_finite() && !worst.as_ref().is_some_and(|w| pct <= w.0) {
            worst = Some((pct, why));
        }
    };
    let list = |key: &str| -> Vec<f64> {
        v["runs"][key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    for (key, what) in [("rps", "requests/s"), ("p99_us", "p99")] {
        let xs = list(key);
        if xs.len() >= 2 {
            let (mean, sd) = report::mean_stdev(&xs);
            if mean > 0.0 {
                consider(
                    sd * 100.0 / mean,
                    format!(
                        "{what} varied by {:.1}% (stdev/mean) across its {} runs",
                        sd * 100.0 / mean,
                        xs.len()
                    ),
                );
            }
        }
    }
    let warm = &v["warmup"];
    for (what, w, m) in [
        ("requests/s", warm["rps"].as_f64(), v["rps"].as_f64()),
        (
            "p99",
            warm["latency_us"]["p99"].as_f64(),
            v["latency_us"]["p99"].as_f64(),
        ),
    ] {
        if let (Some(w), Some(m)) = (w, m) {
            if m > 0.0 {
                let pct = (w - m).abs() * 100.0 / m;
                consider(
                    pct,
                    format!("its warm-up's {what} differed from its run's by {pct:.1}%"),
                );
            }
        }
    }
    worst
}

/// Parse `--max-regression`: `10%` or `10` (percent).
pub fn parse_bound(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t).trim();
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "--max-regression '{s}' is not a percentage (examples: 10%, 2.5%)"
        )),
    }
}

/// One figure, old and new.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `run`, or the target's label.
    pub scope: String,
    pub metric: &'static str,
    pub old: f64,
    pub new: f64,
    /// Percent, signed: positive is higher.
    pub change_pct: f64,
    pub regressed: bool,
}

/// The comparison of a run with its baseline.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub path: String,
    pub bound_pct: f64,
    pub changes: Vec<Change>,
    /// Set when the old run's own variation is larger than the bound.
    pub noise_note: Option<String>,
}

impl Comparison {
    pub fn regressed(&self) -> bool {
        self.changes.iter().any(|c| c.regressed)
    }
}

/// Refuse a baseline of other targets (before the run: both mixes are known).
pub fn check_targets(base: &Baseline, labels: &[String]) -> Result<(), String> {
    let old: Vec<&str> = base
        .breakdown
        .targets
        .iter()
        .map(|t| t.label.as_str())
        .collect();
    // A single-target report carries no labels; only the count can be checked then.
    let same = if old.is_empty() {
        labels.len() <= 1
    } else {
        old.len() == labels.len() && old.iter().zip(labels).all(|(a, b)| *a == b.as_str())
    };
    if same {
        return Ok(());
    }
    let names = |l: Vec<&str>| {
        if l.len() <= 1 {
            "one target".to_string()
        } else {
            l.join(", ")
        }
    };
    Err(format!(
        "--baseline {}: other targets than this run's ({} vs {})",
        base.path,
        names(old),
        names(labels.iter().map(String::as_str).collect())
    ))
}

/// Compare the run with the baseline, the run as a whole and each target.
pub fn compare(
    base: &Baseline,
    rec: &Recorder,
    elapsed: Duration,
    breakdown: &Breakdown,
    bound_pct: f64,
) -> Comparison {
    let mut changes = Vec::new();
    let new_s = elapsed.as_secs_f64();
    figures(
        "run",
        &base.rec,
        base.elapsed_s,
        rec,
        new_s,
        bound_pct,
        &mut changes,
    );
    for (old, new) in base.breakdown.targets.iter().zip(&breakdown.targets) {
        figures(
            &new.label,
            &old.rec,
            base.elapsed_s,
            &new.rec,
            new_s,
            bound_pct,
            &mut changes,
        );
    }
    let noise_note = base.noise.as_ref().filter(|n| n.0 > bound_pct).map(|(_, why)| {
        format!(
            "note: the baseline's own variation is larger than the bound ({why}; bound {bound_pct}%): a change within it may be noise"
        )
    });
    Comparison {
        path: base.path.clone(),
        bound_pct,
        changes,
        noise_note,
    }
}

fn figures(
    scope: &str,
    old: &Recorder,
    old_s: f64,
    new: &Recorder,
    new_s: f64,
    bound_pct: f64,
    out: &mut Vec<Change>,
) {
    let q = |r: &Recorder, q: f64| {
        if r.latency_us.is_empty() {
            0.0
        } else {
            r.latency_us.value_at_quantile(q) as f64
        }
    };
    let rate = |r: &Recorder, s: f64| {
        if s > 0.0 {
            r.counters.done as f64 / s
        } else {
            0.0
        }
    };
    for (metric, o, n, higher_is_worse) in [
        ("p50", q(old, 0.5), q(new, 0.5), true),
        ("p99", q(old, 0.99), q(new, 0.99), true),
        ("p99.9", q(old, 0.999), q(new, 0.999), true),
        ("req/s", rate(old, old_s), rate(new, new_s), false),
    ] {
        let change_pct = if o > 0.0 { (n - o) * 100.0 / o } else { 0.0 };
        let worse = if higher_is_worse {
            change_pct
        } else {
            -change_pct
        };
        out.push(Change {
            scope: scope.to_string(),
            metric,
            old: o,
            new: n,
            change_pct,
            regressed: worse > bound_pct,
        });
    }
}

fn format_figure(metric: &str, v: f64) -> String {
    if metric == "req/s" {
        format_count(v)
    } else {
        format_us(v)
    }
}

/// The table of changes, a line per figure, and the noise note.
pub fn text(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "baseline {} (max regression {}%): {}",
        c.path,
        c.bound_pct,
        if c.regressed() { "REGRESSED" } else { "ok" }
    );
    let _ = writeln!(
        o,
        "    {:<7} {:>10} {:>10} {:>9}  scope",
        "figure", "old", "new", "change"
    );
    for ch in &c.changes {
        let _ = writeln!(
            o,
            "  {} {:<7} {:>10} {:>10} {:>+8.1}%  {}",
            if ch.regressed { "✗" } else { "✓" },
            ch.metric,
            format_figure(ch.metric, ch.old),
            format_figure(ch.metric, ch.new),
            ch.change_pct,
            ch.scope
        );
    }
    if let Some(note) = &c.noise_note {
        let _ = writeln!(o, "{note}");
    }
    o
}

/// The JSON report's `baseline`.
pub fn json(c: &Comparison) -> Value {
    json!({
        "file": c.path,
        "max_regression_pct": c.bound_pct,
        "regressed": c.regressed(),
        "noise_note": c.noise_note,
        "changes": c.changes.iter().map(|ch| json!({
            "scope": ch.scope,
            "metric": ch.metric,
            "old": ch.old,
            "new": ch.new,
            "change_pct": ch.change_pct,
            "regressed": ch.regressed,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(latency_us: u64, n: u64) -> Recorder {
        let mut r = Recorder::new();
        for _ in 0..n {
            r.counters.record_status(200);
            r.record_latency_us(latency_us);
        }
        r
    }

    fn base(r: Recorder, noise: Option<f64>) -> Baseline {
        Baseline {
            path: "old.json".into(),
            rec: r,
            elapsed_s: 1.0,
            breakdown: Breakdown::default(),
            noise: noise.map(|n| (n, "requests/s varied".to_string())),
        }
    }

    #[test]
    fn slower_latency_and_lower_rate_regress_beyond_the_bound() {
        let b = base(rec(1000, 1000), None);
        let same = compare(
            &b,
            &rec(1000, 1000),
            Duration::from_secs(1),
            &Breakdown::default(),
            10.0,
        );
        assert!(!same.regressed(), "{}", text(&same));
        assert!(same.changes.iter().all(|c| c.change_pct == 0.0));
        // 5% slower: inside a 10% bound.
        let a_bit = compare(
            &b,
            &rec(1050, 1000),
            Duration::from_secs(1),
            &Breakdown::default(),
            10.0,
        );
        assert!(!a_bit.regressed());
        // 30% slower latency: p50, p99, p99.9 regress; the rate is the same.
        let slow = compare(
            &b,
            &rec(1300, 1000),
            Duration::from_secs(1),
            &Breakdown::default(),
            10.0,
        );
        let flagged: Vec<&str> = slow
            .changes
            .iter()
            .filter(|c| c.regressed)
            .map(|c| c.metric)
            .collect();
        assert_eq!(flagged, ["p50", "p99", "p99.9"]);
        // Half the throughput regresses; twice the throughput does not.
        let fewer = compare(
            &b,
            &rec(1000, 500),
            Duration::from_secs(1),
            &Breakdown::default(),
            10.0,
        );
        let flagged: Vec<&str> = fewer
            .changes
            .iter()
            .filter(|c| c.regressed)
            .map(|c| c.metric)
            .collect();
        assert_eq!(flagged, ["req/s"]);
        let more = compare(
            &b,
            &rec(1000, 2000),
            Duration::from_secs(1),
            &Breakdown::default(),
            10.0,
        );
        assert!(!more.regressed());
        let t = text(&slow);
        assert!(t.contains("REGRESSED") && t.contains("+30.0%"), "{t}");
    }

    #[test]
    fn noise_note_when_the_baseline_varies_more_than_the_bound() {
        let noisy = base(rec(1000, 10), Some(25.0));
        let c = compare(
            &noisy,
            &rec(1000, 10),
            Duration::from_secs(1),
            &Breakdown::default(),
            10.0,
        );
        assert!(c.noise_note.as_deref().is_some_and(|n| n.contains("noise")));
        let c = compare(
            &noisy,
            &rec(1000, 10),
            Duration::from_secs(1),
            &Breakdown::default(),
            30.0,
        );
        assert!(c.noise_note.is_none());
    }

    #[test]
    fn noise_is_read_from_runs_and_warmup() {
        let v = json!({
            "rps": 1000.0, "latency_us": {"p99": 100},
            "runs": {"rps": [900.0, 1100.0], "p99_us": [100.0, 100.0]},
            "warmup": {"rps": 950.0, "latency_us": {"p99": 130}},
        });
        let (pct, why) = noise_of(&v).unwrap();
        // The warm-up's p99 is 30% off; the runs' rps vary by 14.1%.
        assert!((pct - 30.0).abs() < 1e-9, "{pct} {why}");
        assert!(why.contains("warm-up"));
        assert!(noise_of(&json!({"rps": 1.0})).is_none());
    }

    #[test]
    fn bounds_parse() {
        assert_eq!(parse_bound("10%"), Ok(10.0));
        assert_eq!(parse_bound("2.5"), Ok(2.5));
        assert!(parse_bound("-1%").is_err());
        assert!(parse_bound("ten").is_err());
    }
}
