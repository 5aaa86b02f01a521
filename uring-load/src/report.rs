//! The report: weighttp's summary lines, wrk's latency table and distribution, the error
//! breakdown and `Requests/sec:`; the JSON form (schema in docs/report-schema.md) with
//! a few run facts added; and the mean and standard deviation over `--runs`. (Progress
//! during the run is the live view, in `live.rs`.)

use std::fmt::Write as _;
use std::time::Duration;

use uring_common::stats::summary::report_json;
use uring_common::stats::{ErrorKind, Recorder, Summary};

use crate::units::{format_bytes, format_count, format_us};

/// Facts about a run that the recorder does not hold.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// `-n` if given, else the requests started.
    pub total: u64,
    pub elapsed: Duration,
    pub interrupted: bool,
    /// `-R`: the intended rate of the open model.
    pub rate: Option<f64>,
    /// The tier the run used (an io_uring tier or epoll), for the text report.
    pub tier: Option<String>,
    /// The protocol line of an HTTP/2 run ("HTTP/2, 32 streams per connection").
    pub protocol: Option<String>,
}

/// Complete responses per second (the JSON report's `rps`).
fn rps(rec: &Recorder, elapsed: Duration) -> f64 {
    let done = rec.counters.done;
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        done as f64 / s
    } else {
        0.0
    }
}

/// Share of samples within one standard deviation of the mean (wrk's `+/- Stdev`).
fn within_stdev(rec: &Recorder, s: &Summary) -> f64 {
    let h = &rec.latency_us;
    if h.is_empty() {
        return 0.0;
    }
    let lo = (s.mean - s.stdev).max(0.0) as u64;
    let hi = (s.mean + s.stdev).ceil() as u64;
    let inside: u64 = h
        .iter_recorded()
        .filter(|v| {
            let x = v.value_iterated_to();
            x >= lo && x <= hi
        })
        .map(|v| v.count_at_value())
        .sum();
    inside as f64 * 100.0 / h.len() as f64
}

/// The text report.
pub fn text(rec: &Recorder, facts: &RunFacts) -> String {
    let c = &rec.counters;
    let secs = facts.elapsed.as_secs_f64();
    let rate = rps(rec, facts.elapsed);
    let mut o = String::new();
    if facts.interrupted {
        let _ = writeln!(o, "interrupted: partial report");
    }
    let _ = writeln!(
        o,
        "finished in {:.3}s, {:.2} req/s, {}/s",
        secs,
        rate,
        format_bytes(if secs > 0.0 {
            c.bytes_total as f64 / secs
        } else {
            0.0
        })
    );
    let _ = writeln!(
        o,
        "requests: {} total, {} started, {} done, {} succeeded, {} failed, {} errored",
        facts.total, c.started, c.done, c.succeeded, c.failed, c.errored
    );
    let _ = write!(
        o,
        "status codes: {} 2xx, {} 3xx, {} 4xx, {} 5xx",
        c.class(2),
        c.class(3),
        c.class(4),
        c.class(5)
    );
    let exact: Vec<String> = c
        .by_code
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, n)| format!("{}: {n}", i + 100))
        .collect();
    if !exact.is_empty() {
        let _ = write!(o, " ({})", exact.join(", "));
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "traffic: {} bytes total, {} bytes http, {} bytes data",
        c.bytes_total, c.bytes_headers, c.bytes_body
    );
    if let Some(r) = facts.rate {
        let _ = writeln!(
            o,
            "open model: {r:.0} req/s intended; latency counts from each request's intended send time"
        );
    }
    let _ = write!(
        o,
        "connections: {} opened, {} reconnects",
        c.connections_opened, c.reconnects
    );
    match &facts.tier {
        Some(t) => {
            let _ = writeln!(o, " (tier: {t})");
        }
        None => {
            let _ = writeln!(o);
        }
    }
    if let Some(p) = &facts.protocol {
        let _ = writeln!(o, "protocol: {p}");
    }
    let _ = write!(
        o,
        "errors: {} connect, {} read, {} write, {} timeout, {} parse",
        c.errors_connect, c.errors_read, c.errors_write, c.errors_timeout, c.errors_parse
    );
    let http2 = facts
        .protocol
        .as_deref()
        .is_some_and(|p| p.starts_with("HTTP/2"));
    if http2 || ErrorKind::HTTP2.iter().any(|&k| c.errors_of(k) > 0) {
        for k in ErrorKind::HTTP2 {
            let _ = write!(o, ", {} {}", c.errors_of(k), k.name());
        }
    }
    let _ = writeln!(o);
    let first = first_error_lines(rec);
    if !first.is_empty() {
        let _ = writeln!(o, "first error of each class:");
        for line in first {
            let _ = writeln!(o, "  {line}");
        }
    }
    let _ = writeln!(o);
    latency_table(&mut o, rec);
    let _ = writeln!(o);
    let _ = writeln!(o, "Requests/sec: {rate:>10.2}");
    let _ = writeln!(
        o,
        "Transfer/sec: {:>10}",
        format_bytes(if secs > 0.0 {
            c.bytes_total as f64 / secs
        } else {
            0.0
        })
    );
    o
}

/// wrk's latency lines: average, deviation, maximum, then the distribution.
fn latency_table(o: &mut String, rec: &Recorder) {
    let s = Summary::of(rec);
    let _ = writeln!(
        o,
        "  {:<10}{:>10}{:>10}{:>10}{:>11}",
        "", "Avg", "Stdev", "Max", "+/- Stdev"
    );
    let _ = writeln!(
        o,
        "  {:<10}{:>10}{:>10}{:>10}{:>10.2}%",
        "Latency",
        format_us(s.mean),
        format_us(s.stdev),
        format_us(s.max as f64),
        within_stdev(rec, &s)
    );
    let _ = writeln!(o, "  Latency Distribution");
    for (label, v) in [
        ("50%", s.p50),
        ("75%", s.p75),
        ("90%", s.p90),
        ("99%", s.p99),
        ("99.9%", s.p99_9),
        ("99.99%", s.p99_99),
        ("100%", s.max),
    ] {
        let _ = writeln!(o, "  {label:>7}  {:>10}", format_us(v as f64));
    }
}

/// One line per error class that had errors: its count and its first cause,
/// "connect: 10 × Connection refused (os error 111) to 127.0.0.1:1".
pub fn first_error_lines(rec: &Recorder) -> Vec<String> {
    ErrorKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let n = rec.counters.errors_of(kind);
            if n == 0 {
                return None;
            }
            let cause = rec
                .first_errors
                .get(kind)
                .map(|e| e.message.as_str())
                .unwrap_or_else(|| kind.generic_cause());
            Some(format!("{}: {n} × {cause}", kind.name()))
        })
        .collect()
}

/// No request got a response and some ended in errors: the run measured nothing but
/// the failure, and the binary exits 1.
pub fn every_request_failed(rec: &Recorder) -> bool {
    rec.counters.done == 0 && rec.counters.errored > 0
}

/// The JSON report: the common schema plus `total` and `interrupted`.
pub fn json(rec: &Recorder, facts: &RunFacts) -> serde_json::Value {
    let mut v = report_json(rec, facts.elapsed.as_secs_f64());
    if let Some(obj) = v.as_object_mut() {
        obj.insert("total".into(), facts.total.into());
        obj.insert("interrupted".into(), facts.interrupted.into());
    }
    v
}

/// Mean and sample standard deviation.
pub fn mean_stdev(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Per-run figures kept for the `--runs` table.
#[derive(Debug, Clone, Copy)]
pub struct RunLine {
    pub rps: f64,
    pub p50: u64,
    pub p99: u64,
    pub errored: u64,
}

impl RunLine {
    pub fn of(rec: &Recorder, elapsed: Duration) -> RunLine {
        let s = Summary::of(rec);
        RunLine {
            rps: rps(rec, elapsed),
            p50: s.p50,
            p99: s.p99,
            errored: rec.counters.errored,
        }
    }
}

/// The `--runs` table: one line per run, then mean and standard deviation.
pub fn runs_text(lines: &[RunLine]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "runs: {}", lines.len());
    let _ = writeln!(
        o,
        "  {:>4}  {:>12}  {:>10}  {:>10}  {:>8}",
        "run", "req/s", "p50", "p99", "errored"
    );
    for (k, l) in lines.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {:>4}  {:>12.2}  {:>10}  {:>10}  {:>8}",
            k + 1,
            l.rps,
            format_us(l.p50 as f64),
            format_us(l.p99 as f64),
            l.errored
        );
    }
    let (m, sd) = mean_stdev(&lines.iter().map(|l| l.rps).collect::<Vec<_>>());
    let (m50, sd50) = mean_stdev(&lines.iter().map(|l| l.p50 as f64).collect::<Vec<_>>());
    let (m99, sd99) = mean_stdev(&lines.iter().map(|l| l.p99 as f64).collect::<Vec<_>>());
    let _ = writeln!(
        o,
        "  mean  {:>12.2}  {:>10}  {:>10}",
        m,
        format_us(m50),
        format_us(m99)
    );
    let _ = writeln!(
        o,
        "  stdev {:>12.2}  {:>10}  {:>10}",
        sd,
        format_us(sd50),
        format_us(sd99)
    );
    let _ = writeln!(
        o,
        "Requests/sec (mean of {} runs): {m:.2} +/- {sd:.2} ({})",
        lines.len(),
        format_count(m)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_error_lines_count_and_cause() {
        let mut rec = Recorder::new();
        assert!(first_error_lines(&rec).is_empty());
        assert!(!every_request_failed(&rec));
        for _ in 0..10 {
            rec.counters.record_error(ErrorKind::Connect);
        }
        rec.note_error(
            ErrorKind::Connect,
            &"Connection refused (os error 111) to 127.0.0.1:1",
        );
        rec.counters.record_error(ErrorKind::Timeout);
        assert_eq!(
            first_error_lines(&rec),
            [
                "connect: 10 × Connection refused (os error 111) to 127.0.0.1:1".to_string(),
                format!("timeout: 1 × {}", ErrorKind::Timeout.generic_cause()),
            ]
        );
        assert!(every_request_failed(&rec));
        rec.counters.record_status(200);
        assert!(!every_request_failed(&rec));
    }

    #[test]
    fn http2_classes_show_for_http2_runs_or_when_counted() {
        let errors_line = |rec: &Recorder, protocol: Option<&str>| {
            let facts = RunFacts {
                total: 1,
                elapsed: Duration::from_secs(1),
                interrupted: false,
                rate: None,
                tier: None,
                protocol: protocol.map(str::to_string),
            };
            let t = text(rec, &facts);
            t.lines()
                .find(|l| l.starts_with("errors:"))
                .unwrap()
                .to_string()
        };
        let mut rec = Recorder::new();
        let plain = "errors: 0 connect, 0 read, 0 write, 0 timeout, 0 parse";
        assert_eq!(errors_line(&rec, None), plain);
        assert_eq!(
            errors_line(&rec, Some("HTTP/2, 8 streams per connection")),
            format!("{plain}, 0 reset, 0 goaway, 0 flow_control, 0 protocol")
        );
        rec.counters.record_error(ErrorKind::FlowControl);
        rec.note_error(ErrorKind::FlowControl, &"stalled");
        assert_eq!(
            errors_line(&rec, None),
            format!("{plain}, 0 reset, 0 goaway, 1 flow_control, 0 protocol")
        );
        assert_eq!(first_error_lines(&rec), ["flow_control: 1 × stalled"]);
    }

    #[test]
    fn mean_and_stdev() {
        let (m, sd) = mean_stdev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert!((sd - 2.138).abs() < 0.001);
        assert_eq!(mean_stdev(&[3.0]), (3.0, 0.0));
    }
}
