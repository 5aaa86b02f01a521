//! `--latency-log FILE`: interval histograms in HdrHistogram's histogram log format (the
//! text format of Java's `HistogramLogWriter`, read by its `HistogramLogReader` and
//! `HistogramLogProcessor`), and the reader `uring-load report` uses.
//!
//! The file starts with comment headers, then one line per interval:
//!
//! ```text
//! #[Logged with uring-load 0.1.0]
//! #[Histogram log format version 1.3]
//! #[StartTime: 1764501600.000 (seconds since epoch), 2025-11-30 11:20:00 UTC]
//! #[BaseTime: 1764501600.000 (seconds since epoch)]
//! #[Latency values in microseconds; Interval_Max in milliseconds]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! 0.000,1.000,1.234,HISTFAAAAB...
//! ```
//!
//! Timestamps are seconds since `BaseTime` (the run's start); each payload is the interval's
//! histogram in the V2 compressed encoding, base64 (what `histogram_to_base64` writes).
//! Values are microseconds, so Java's tools want `-outputValueUnitRatio 1000` for
//! milliseconds (their default assumes nanoseconds).

use crate::error::LogError;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::Histogram;
use uring_common::stats::summary::{histogram_from_base64, histogram_to_base64};

use crate::intervals::Interval;

/// The log format version of Java's `HistogramLogWriter` that this matches.
const FORMAT_VERSION: &str = "1.3";

/// Writes a latency log, one line per merged interval, flushed as it goes (so `tail -f`
/// and a run stopped by Ctrl-C still leave a readable file).
pub struct LatencyLogWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// The wall-clock time zero of the file (the first run's start).
    base: Option<SystemTime>,
}

impl LatencyLogWriter {
    /// Create (or truncate) `path` now, so a bad path fails before the load starts.
    pub fn create(path: &Path) -> Result<LatencyLogWriter, LogError> {
        let file = File::create(path).map_err(|err| LogError::Create {
            path: path.to_path_buf(),
            err,
        })?;
        Ok(LatencyLogWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            base: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one interval (the headers go out with the first).
    pub fn write(&mut self, interval: &Interval) -> io::Result<()> {
        let base = match self.base {
            Some(b) => b,
            None => {
                let b = interval.origin_wall;
                write_header(&mut self.out, b)?;
                self.base = Some(b);
                b
            }
        };
        // Later runs (`--runs`) continue on the same time line.
        let run_offset = interval
            .origin_wall
            .duration_since(base)
            .unwrap_or(Duration::ZERO);
        let start = run_offset + interval.offset;
        let max_ms = if interval.latency_us.is_empty() {
            0.0
        } else {
            interval.latency_us.max() as f64 / 1000.0
        };
        writeln!(
            self.out,
            "{:.3},{:.3},{:.3},{}",
            start.as_secs_f64(),
            interval.length.as_secs_f64(),
            max_ms,
            histogram_to_base64(&interval.latency_us)
        )?;
        self.out.flush()
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn write_header(out: &mut impl Write, base: SystemTime) -> io::Result<()> {
    let secs = base
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64();
    writeln!(
        out,
        "#[Logged with uring-load {}]",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "#[Histogram log format version {FORMAT_VERSION}]")?;
    writeln!(
        out,
        "#[StartTime: {secs:.3} (seconds since epoch), {}]",
        utc_date(secs as u64)
    )?;
    writeln!(out, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
    writeln!(
        out,
        "#[Latency values in microseconds; Interval_Max in milliseconds]"
    )?;
    writeln!(
        out,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (civil-from-days, proleptic Gregorian).
pub fn utc_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// One interval read back from a log.
#[derive(Debug, Clone)]
pub struct LoggedInterval {
    pub tag: Option<String>,
    /// Seconds since the log's BaseTime (or as written when it has none).
    pub start_s: f64,
    pub length_s: f64,
    pub latency_us: Histogram<u64>,
}

impl LoggedInterval {
    pub fn rps(&self) -> f64 {
        if self.length_s > 0.0 {
            self.latency_us.len() as f64 / self.length_s
        } else {
            0.0
        }
    }
}

/// A whole latency log.
#[derive(Debug, Clone, Default)]
pub struct LatencyLog {
    pub start_time_s: Option<f64>,
    pub intervals: Vec<LoggedInterval>,
}

impl LatencyLog {
    /// Every interval's histogram added together.
    pub fn total(&self) -> Histogram<u64> {
        let mut total = Histogram::<u64>::new(3).expect("3 significant digits is valid");
        total.auto(true);
        for i in &self.intervals {
            // Auto-resizing: adding cannot run out of range.
            let _ = total.add(&i.latency_us);
        }
        total
    }

    /// Seconds from the first interval's start to the last one's end.
    pub fn span_s(&self) -> f64 {
        let first = self.intervals.first().map(|i| i.start_s).unwrap_or(0.0);
        let last = self
            .intervals
            .iter()
            .map(|i| i.start_s + i.length_s)
            .fold(first, f64::max);
        last - first
    }
}

/// Is this text a histogram log (rather than a JSON report)?
pub fn looks_like_log(text: &str) -> bool {
    text.trim_start().starts_with('#')
        || text.trim_start().starts_with("\"StartTimestamp\"")
        || text.trim_start().starts_with("Tag=")
        || text
            .lines()
            .next()
            .is_some_and(|l| l.split(',').count() == 4 && l.contains("HIST"))
}

/// Parse a histogram log; the error names the line.
pub fn parse_log(text: &str) -> Result<LatencyLog, LogError> {
    let mut log = LatencyLog::default();
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        match entry {
            Ok(LogEntry::StartTime(t)) => log.start_time_s = Some(t.as_secs_f64()),
            Ok(LogEntry::BaseTime(_)) => {}
            Ok(LogEntry::Interval(i)) => {
                let latency_us = histogram_from_base64(i.encoded_histogram()).map_err(|e| {
                    LogError::BadInterval {
                        at_s: i.start_timestamp().as_secs_f64(),
                        why: e.to_string(),
                    }
                })?;
                log.intervals.push(LoggedInterval {
                    tag: i.tag().map(|t| t.as_str().to_string()),
                    start_s: i.start_timestamp().as_secs_f64(),
                    length_s: i.duration().as_secs_f64(),
                    latency_us,
                });
            }
            Err(e) => {
                let line = match e {
                    hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                        offset,
                    } => text[..offset.min(text.len())].matches('\n').count() + 1,
                };
                return Err(LogError::NotALogLine { line });
            }
        }
    }
    if log.intervals.is_empty() {
        return Err(LogError::NoIntervals);
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::stats::recorder::new_latency_histogram;

    fn interval(index: u64, origin: SystemTime, values: &[u64]) -> Interval {
        let mut h = new_latency_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        Interval {
            index,
            offset: Duration::from_secs(index),
            origin_wall: origin,
            length: Duration::from_secs(1),
            latency_us: h,
            done: values.len() as u64,
            errored: 0,
            non_2xx: 0,
        }
    }

    #[test]
    fn written_log_reads_back_with_hdrhistograms_reader() {
        let dir = std::env::temp_dir().join(format!("uring-load-ll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.hlog");
        let origin = UNIX_EPOCH + Duration::from_millis(1_764_501_600_250);
        let mut w = LatencyLogWriter::create(&path).unwrap();
        let a = interval(0, origin, &[100, 200, 300]);
        let b = interval(1, origin, &[5_000, 7]);
        let empty = interval(2, origin, &[]);
        w.write(&a).unwrap();
        w.write(&b).unwrap();
        w.write(&empty).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "#[Histogram log format version 1.3]");
        assert_eq!(
            lines[2],
            "#[StartTime: 1764501600.250 (seconds since epoch), 2025-11-30 11:20:00 UTC]"
        );
        assert_eq!(
            lines[3],
            "#[BaseTime: 1764501600.250 (seconds since epoch)]"
        );
        assert!(lines[5].starts_with("\"StartTimestamp\""));
        assert!(
            lines[6].starts_with("0.000,1.000,0.300,HISTF"),
            "{}",
            lines[6]
        );
        assert!(
            lines[7].starts_with("1.000,1.000,5.003,HISTF"),
            "{}",
            lines[7]
        );
        assert!(looks_like_log(&text));
        let log = parse_log(&text).unwrap();
        assert_eq!(log.start_time_s, Some(1_764_501_600.25));
        assert_eq!(log.intervals.len(), 3);
        assert_eq!(log.intervals[0].latency_us, a.latency_us);
        assert_eq!(log.intervals[1].latency_us, b.latency_us);
        assert_eq!(log.intervals[1].start_s, 1.0);
        assert!(log.intervals[2].latency_us.is_empty());
        assert_eq!(log.total().len(), 5);
        assert_eq!(log.span_s(), 3.0);
        assert_eq!(log.intervals[0].rps(), 3.0);
    }

    #[test]
    fn a_later_run_continues_the_time_line() {
        let dir = std::env::temp_dir().join(format!("uring-load-ll2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.hlog");
        let origin = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut w = LatencyLogWriter::create(&path).unwrap();
        w.write(&interval(0, origin, &[1])).unwrap();
        w.write(&interval(0, origin + Duration::from_secs(10), &[2]))
            .unwrap();
        w.finish().unwrap();
        let log = parse_log(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(log.intervals[1].start_s, 10.0);
    }

    #[test]
    fn bad_logs_are_errors_naming_the_line() {
        let err = parse_log("#[BaseTime: 0.000 (seconds since epoch)]\n0.0,1.0,2.0\n").unwrap_err();
        assert!(matches!(err, LogError::NotALogLine { line: 2 }), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse_log("#only a comment\n").unwrap_err();
        assert!(matches!(err, LogError::NoIntervals), "{err}");
        let err = parse_log("0.000,1.000,2.000,AAAA\n").unwrap_err();
        assert!(err.to_string().contains("interval at 0.000s"), "{err}");
        assert!(!looks_like_log("{\"rps\": 1}"));
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(1_764_501_600), "2025-11-30 11:20:00 UTC");
    }
}
