//! Pass/fail gates on a finished run, for CI (`--threshold EXPR`, k6's thresholds): each
//! expression names a figure of the report (a percentile, the error share, the request
//! rate, a status class), a comparison and a bound, optionally for one target of a mix
//! (`target=NAME:p99<20ms`). They are parsed before the run (a bad one is one line and
//! exit 2) and judged on the merged report; any failure makes the exit code 99 (k6's).
//! The outcomes go into the text report, the JSON (`thresholds`) and a JUnit file
//! (`--junit`).

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde_json::{json, Value};
use uring_common::stats::Recorder;

use crate::breakdown::Breakdown;
use crate::units::{self, format_us};

/// The exit code of a run whose thresholds (or baseline) failed: k6's.
pub const EXIT_THRESHOLD_FAILED: u8 = 99;

/// The figure a threshold judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile (50, 90, 99, 99.9, ...), in microseconds.
    Percentile(f64),
    /// Requests that ended without a response, as a share of those that ended.
    Errors,
    /// Responses per second.
    Rps,
    /// Responses of a status class (1..=5).
    StatusClass(u16),
}

/// How the measured value is compared with the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    fn holds(self, measured: f64, bound: f64) -> bool {
        match self {
            Cmp::Lt => measured < bound,
            Cmp::Le => measured <= bound,
            Cmp::Gt => measured > bound,
            Cmp::Ge => measured >= bound,
            Cmp::Eq => measured == bound,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "=",
        }
    }
}

/// What a count-like bound counts: a number, or a share of the requests in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Count,
    Percent,
}

/// One parsed `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written, for the report.
    pub expr: String,
    /// `target=NAME:` (a number of the targets table, a label, or part of exactly one label).
    pub target: Option<String>,
    pub metric: Metric,
    pub cmp: Cmp,
    /// Microseconds for percentiles; a count or a percentage (see `scale`) otherwise.
    pub bound: f64,
    pub scale: Scale,
}

/// Why an expression is not a threshold; printed as one line, exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError {
    pub expr: String,
    pub why: String,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--threshold '{}': {}", self.expr, self.why)
    }
}

impl std::error::Error for ThresholdError {}

const FORMS: &str = "expected p50/p90/p99/p99.9<DURATION, errors<X% (or a count), rps>N, \
                     status5xx=0 (1xx..5xx, a count or X%), optionally after target=NAME:";

/// Parse one expression: `p99<20ms`, `p99.9<=100ms`, `errors<0.1%`, `rps>10000`,
/// `status5xx=0`, `status4xx<1%`, `target=/api:p99<20ms`.
pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
    let err = |why: String| ThresholdError {
        expr: expr.to_string(),
        why,
    };
    let text = expr.trim();
    let (target, rule) = match text.strip_prefix("target=") {
        Some(rest) => {
            // The rule has no ':'; a label may ("GET http://host:80/"), so split at the last.
            let (name, rule) = rest
                .rsplit_once(':')
                .ok_or_else(|| err("target=NAME must be followed by ':' and a rule".into()))?;
            if name.is_empty() {
                return Err(err("target= names no target".into()));
            }
            (Some(name.to_string()), rule)
        }
        None => (None, text),
    };
    let at = rule
        .find(['<', '>', '='])
        .ok_or_else(|| err(format!("no comparison (<, <=, >, >=, =): {FORMS}")))?;
    let (name, rest) = rule.split_at(at);
    let (cmp, value) = if let Some(v) = rest.strip_prefix("<=") {
        (Cmp::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Cmp::Ge, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Cmp::Lt, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Cmp::Gt, v)
    } else {
        (Cmp::Eq, rest.strip_prefix("==").unwrap_or(&rest[1..]))
    };
    let (name, value) = (name.trim(), value.trim());
    if value.is_empty() {
        return Err(err("no bound after the comparison".into()));
    }
    let metric =
        metric_named(name).ok_or_else(|| err(format!("unknown figure '{name}': {FORMS}")))?;
    let (bound, scale) = match metric {
        Metric::Percentile(_) => {
            let d = units::parse_duration(value).map_err(|e| err(e.to_string()))?;
            (d.as_secs_f64() * 1e6, Scale::Count)
        }
        Metric::Rps => {
            let v = units::parse_rate(value)
                .or_else(|e| if value.trim() == "0" { Ok(0.0) } else { Err(e) })
                .map_err(|e| err(e.to_string()))?;
            (v, Scale::Count)
        }
        Metric::Errors | Metric::StatusClass(_) => match value.strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=100.0).contains(&v) => (v, Scale::Percent),
                _ => {
                    return Err(err(format!(
                        "'{value}' is not a percentage from 0% to 100%"
                    )))
                }
            },
            None => {
                let n = units::parse_count(value).map_err(|e| err(e.to_string()))?;
                (n as f64, Scale::Count)
            }
        },
    };
    Ok(Threshold {
        expr: text.to_string(),
        target,
        metric,
        cmp,
        bound,
        scale,
    })
}

fn metric_named(name: &str) -> Option<Metric> {
    match name {
        "errors" => return Some(Metric::Errors),
        "rps" => return Some(Metric::Rps),
        _ => {}
    }
    if let Some(class) = name.strip_prefix("status") {
        let digit = class.strip_suffix("xx")?;
        return match digit {
            "1" | "2" | "3" | "4" | "5" => digit.parse().ok().map(Metric::StatusClass),
            _ => None,
        };
    }
    let p: f64 = name.strip_prefix('p')?.parse().ok()?;
    (p > 0.0 && p <= 100.0).then_some(Metric::Percentile(p))
}

/// The figures a threshold is judged on: one recorder and how long it ran.
#[derive(Debug, Clone, Copy)]
pub struct Figures<'a> {
    pub rec: &'a Recorder,
    pub elapsed: Duration,
}

impl Figures<'_> {
    fn value(&self, t: &Threshold) -> f64 {
        let c = &self.rec.counters;
        let ended = (c.done + c.errored) as f64;
        let share = |n: u64| {
            if t.scale == Scale::Percent {
                if ended > 0.0 {
                    n as f64 * 100.0 / ended
                } else {
                    0.0
                }
            } else {
                n as f64
            }
        };
        match t.metric {
            Metric::Percentile(p) => {
                let h = &self.rec.latency_us;
                if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(p / 100.0) as f64
                }
            }
            Metric::Errors => share(c.errored),
            Metric::StatusClass(k) => share(c.class(k)),
            Metric::Rps => {
                let s = self.elapsed.as_secs_f64();
                if s > 0.0 {
                    c.done as f64 / s
                } else {
                    0.0
                }
            }
        }
    }
}

/// Which recorder a `target=NAME` names: its number in the targets table (1-based), its
/// label, or a part of exactly one label. A single-target run is target 1 (and its label).
pub fn find_target(name: &str, labels: &[String]) -> Result<usize, String> {
    if let Ok(n) = name.parse::<usize>() {
        return if (1..=labels.len()).contains(&n) {
            Ok(n - 1)
        } else {
            Err(format!(
                "target {n} does not exist (the mix has {} target{})",
                labels.len(),
                if labels.len() == 1 { "" } else { "s" }
            ))
        };
    }
    if let Some(i) = labels.iter().position(|l| l == name) {
        return Ok(i);
    }
    let hits: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i].contains(name))
        .collect();
    match hits.as_slice() {
        [i] => Ok(*i),
        [] => Err(format!("no target's label contains '{name}'")),
        _ => Err(format!(
            "'{name}' is part of {} targets' labels ({}): name one by its number or whole label",
            hits.len(),
            hits.iter()
                .map(|&i| labels[i].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Check before the run that every `target=` names exactly one target.
pub fn check_targets(thresholds: &[Threshold], labels: &[String]) -> Result<(), ThresholdError> {
    for t in thresholds {
        if let Some(name) = &t.target {
            find_target(name, labels).map_err(|why| ThresholdError {
                expr: t.expr.clone(),
                why,
            })?;
        }
    }
    Ok(())
}

/// A judged threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub threshold: Threshold,
    pub measured: f64,
    pub passed: bool,
}

impl Outcome {
    /// The measured value in the threshold's own unit (`12.30ms`, `0.05%`, `1234.5`).
    pub fn measured_text(&self) -> String {
        format_value(&self.threshold, self.measured)
    }
}

fn format_value(t: &Threshold, v: f64) -> String {
    match (t.metric, t.scale) {
        (Metric::Percentile(_), _) => format_us(v),
        (Metric::Rps, _) => format!("{v:.2}"),
        (_, Scale::Percent) => format!("{v:.3}%"),
        (_, Scale::Count) => format!("{v:.0}"),
    }
}

/// Judge every threshold on the run (`all`) or on its target's recorder.
pub fn judge(
    thresholds: &[Threshold],
    all: Figures<'_>,
    breakdown: &Breakdown,
    labels: &[String],
) -> Vec<Outcome> {
    thresholds
        .iter()
        .map(|t| {
            let figures = match &t.target {
                None => all,
                Some(name) => match find_target(name, labels) {
                    Ok(i) => breakdown.targets.get(i).map_or(all, |ts| Figures {
                        rec: &ts.rec,
                        elapsed: all.elapsed,
                    }),
                    // Checked before the run; judged on the whole run if it slipped.
                    Err(_) => all,
                },
            };
            let measured = figures.value(t);
            Outcome {
                passed: t.cmp.holds(measured, t.bound),
                measured,
                threshold: t.clone(),
            }
        })
        .collect()
}

pub fn all_passed(outcomes: &[Outcome]) -> bool {
    outcomes.iter().all(|o| o.passed)
}

/// The text report's block: one line per threshold, measured value and ✓ or ✗.
pub fn text(outcomes: &[Outcome]) -> String {
    let mut o = String::new();
    if outcomes.is_empty() {
        return o;
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    let _ = writeln!(
        o,
        "thresholds: {} passed, {failed} failed",
        outcomes.len() - failed
    );
    let width = outcomes
        .iter()
        .map(|o| o.threshold.expr.len())
        .max()
        .unwrap_or(0);
    for out in outcomes {
        let _ = writeln!(
            o,
            "  {} {:<width$}  measured {}",
            if out.passed { "✓" } else { "✗" },
            out.threshold.expr,
            out.measured_text()
        );
    }
    o
}

/// The JSON report's `thresholds` (docs/report-schema.md).
pub fn json(outcomes: &[Outcome]) -> Value {
    Value::Array(
        outcomes
            .iter()
            .map(|o| {
                let t = &o.threshold;
                let (metric, unit) = match (t.metric, t.scale) {
                    (Metric::Percentile(p), _) => (format!("p{p}"), "us"),
                    (Metric::Errors, s) => ("errors".to_string(), scale_unit(s)),
                    (Metric::StatusClass(k), s) => (format!("status{k}xx"), scale_unit(s)),
                    (Metric::Rps, _) => ("rps".to_string(), "req/s"),
                };
                json!({
                    "expr": t.expr,
                    "target": t.target,
                    "metric": metric,
                    "op": t.cmp.symbol(),
                    "bound": t.bound,
                    "measured": o.measured,
                    "unit": unit,
                    "passed": o.passed,
                })
            })
            .collect(),
    )
}

fn scale_unit(s: Scale) -> &'static str {
    match s {
        Scale::Count => "count",
        Scale::Percent => "percent",
    }
}

/// A JUnit test case: a name, and a failure message when it failed.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub failure: Option<String>,
}

impl From<&Outcome> for Case {
    fn from(o: &Outcome) -> Case {
        let measured = o.measured_text();
        Case {
            name: o.threshold.expr.clone(),
            failure: (!o.passed).then(|| {
                format!(
                    "measured {measured}, bound {}{}",
                    o.threshold.cmp.symbol(),
                    format_value(&o.threshold, o.threshold.bound)
                )
            }),
        }
    }
}

/// A JUnit XML document (the form Jenkins, GitLab and GitHub's test reporters read): one
/// suite named `suite`, a test case per entry.
pub fn junit(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites tests="{}" failures="{failures}">"#,
        cases.len()
    );
    let _ = writeln!(
        o,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="0">"#,
        xml_escape(suite),
        cases.len()
    );
    for c in cases {
        let name = xml_escape(&c.name);
        match &c.failure {
            None => {
                let _ = writeln!(o, r#"    <testcase classname="uring-load" name="{name}"/>"#);
            }
            Some(msg) => {
                let msg = xml_escape(msg);
                let _ = writeln!(o, r#"    <testcase classname="uring-load" name="{name}">"#);
                let _ = writeln!(o, r#"      <failure message="{msg}">{msg}</failure>"#);
                let _ = writeln!(o, "    </testcase>");
            }
        }
    }
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(o, "</testsuites>");
    o
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(expr: &str) -> Threshold {
        parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    #[test]
    fn parses_every_form() {
        let t = ok("p99<20ms");
        assert_eq!(
            (t.metric, t.cmp, t.bound),
            (Metric::Percentile(99.0), Cmp::Lt, 20_000.0)
        );
        let t = ok("p99.9<=100ms");
        assert_eq!(
            (t.metric, t.cmp, t.bound),
            (Metric::Percentile(99.9), Cmp::Le, 100_000.0)
        );
        assert_eq!(ok("p50<500us").bound, 500.0);
        let t = ok("errors<0.1%");
        assert_eq!(
            (t.metric, t.bound, t.scale),
            (Metric::Errors, 0.1, Scale::Percent)
        );
        let t = ok("errors=0");
        assert_eq!((t.cmp, t.bound, t.scale), (Cmp::Eq, 0.0, Scale::Count));
        let t = ok("rps>10k");
        assert_eq!((t.metric, t.cmp, t.bound), (Metric::Rps, Cmp::Gt, 10_000.0));
        let t = ok("status5xx=0");
        assert_eq!(
            (t.metric, t.cmp, t.bound),
            (Metric::StatusClass(5), Cmp::Eq, 0.0)
        );
        let t = ok("status4xx<1%");
        assert_eq!(
            (t.metric, t.scale),
            (Metric::StatusClass(4), Scale::Percent)
        );
        let t = ok("target=GET http://127.0.0.1:80/a:p99<20ms");
        assert_eq!(t.target.as_deref(), Some("GET http://127.0.0.1:80/a"));
        assert_eq!(t.metric, Metric::Percentile(99.0));
        assert_eq!(ok(" rps >= 5 ").cmp, Cmp::Ge);
    }

    #[test]
    fn bad_expressions_say_why() {
        for (expr, why) in [
            ("p99", "no comparison"),
            ("p99<", "no bound"),
            ("p99<20", ""), // a bare number is seconds: accepted
            ("p99<fast", "not a duration"),
            ("p0<1ms", "unknown figure"),
            ("p101<1ms", "unknown figure"),
            ("latency<1ms", "unknown figure"),
            ("status6xx=0", "unknown figure"),
            ("errors<150%", "percentage"),
            ("errors<-1", "not a count"),
            ("rps>lots", "not a rate"),
            ("target=:p99<1ms", "names no target"),
            ("target=abc", "followed by ':'"),
        ] {
            match parse(expr) {
                Ok(_) => assert!(why.is_empty(), "{expr} should be refused"),
                Err(e) => {
                    assert!(!why.is_empty(), "{expr} refused: {e}");
                    assert!(e.to_string().contains(why), "{expr}: {e}");
                    assert!(e.to_string().starts_with(&format!("--threshold '{expr}'")));
                }
            }
        }
    }

    fn recorder(latencies_ms: &[u64], errored: u64, five_xx: u64) -> Recorder {
        let mut r = Recorder::new();
        for &ms in latencies_ms {
            r.counters.record_status(200);
            r.record_latency_us(ms * 1000);
        }
        for _ in 0..five_xx {
            r.counters.record_status(503);
            r.record_latency_us(1000);
        }
        for _ in 0..errored {
            r.counters
                .record_error(uring_common::stats::ErrorKind::Timeout);
        }
        r
    }

    #[test]
    fn judges_against_the_measured_figures() {
        // 98 fast, 2 slow: p50 1ms, p99 100ms.
        let mut lat = vec![1u64; 98];
        lat.extend([100, 100]);
        let rec = recorder(&lat, 1, 1);
        let all = Figures {
            rec: &rec,
            elapsed: Duration::from_secs(2),
        };
        let ts: Vec<Threshold> = [
            "p50<2ms",
            "p99<20ms",
            "errors<1%",
            "errors<2%",
            "rps>40",
            "rps>60",
            "status5xx=0",
            "status5xx<=1",
        ]
        .iter()
        .map(|e| ok(e))
        .collect();
        let out = judge(&ts, all, &Breakdown::default(), &["GET /".into()]);
        let passed: Vec<bool> = out.iter().map(|o| o.passed).collect();
        assert_eq!(passed, [true, false, true, true, true, false, false, true]);
        // errors: 1 of 102 ended = 0.98%.
        assert!((out[2].measured - 100.0 / 102.0).abs() < 1e-9);
        assert_eq!(out[4].measured, 50.5);
        assert!(!all_passed(&out));
        let text = text(&out);
        assert!(text.contains("thresholds: 5 passed, 3 failed"), "{text}");
        assert!(text.contains("✗ p99<20ms"), "{text}");
        assert!(text.contains("✓ p50<2ms"), "{text}");
        let j = json(&out);
        assert_eq!(j[1]["passed"], false);
        assert_eq!(j[1]["metric"], "p99");
        assert_eq!(j[1]["bound"], 20000.0);
    }

    #[test]
    fn target_names_resolve_to_exactly_one() {
        let labels: Vec<String> = ["GET http://h:1/a", "GET http://h:1/ab", "POST http://h:1/c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(find_target("2", &labels), Ok(1));
        assert_eq!(find_target("GET http://h:1/a", &labels), Ok(0));
        assert_eq!(find_target("POST", &labels), Ok(2));
        assert!(find_target("/a", &labels)
            .unwrap_err()
            .contains("part of 2"));
        assert!(find_target("4", &labels)
            .unwrap_err()
            .contains("does not exist"));
        assert!(find_target("/zzz", &labels)
            .unwrap_err()
            .contains("no target"));
        let bad = [ok("target=/zzz:p99<1ms")];
        assert!(check_targets(&bad, &labels).is_err());
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let cases = [
            Case {
                name: "p99<20ms".into(),
                failure: Some("measured 25ms & more".into()),
            },
            Case {
                name: "rps>1".into(),
                failure: None,
            },
        ];
        let x = junit("uring-load", &cases);
        assert!(x.contains(r#"<testsuites tests="2" failures="1">"#), "{x}");
        assert!(x.contains(r#"name="p99&lt;20ms""#), "{x}");
        assert!(x.contains("25ms &amp; more"), "{x}");
        assert!(
            x.contains(r#"<testcase classname="uring-load" name="rps&gt;1"/>"#),
            "{x}"
        );
    }
}
