//! `uring-load report RUN.json|LOG [more ...] [--svg OUT.svg] [--html OUT.html]`: the
//! charts people look at, from `--json` reports and `--latency-log` files.
//!
//! Every input becomes one series: its latency percentile distribution (all inputs
//! overlaid on Gil Tene's log-scale percentile plot) and, for latency logs, requests/s
//! and p50/p99 over time. Without `--svg`/`--html` the summary table goes to stdout
//! (it always does); `--svg` writes the charts stacked in one SVG file, `--html` a
//! self-contained page (inline SVG, CSS and script; nothing fetched) with the table.

use crate::error::LogError;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use hdrhistogram::Histogram;
use uring_common::stats::summary::recorder_from_json;

use crate::latency_log::{looks_like_log, parse_log};
use crate::plot::{self, Chart, Series, XAxis, YAxis};
use crate::units::{format_count, format_us};

#[derive(Parser, Debug)]
#[command(
    name = "uring-load report",
    about = "Charts and a summary table from uring-load --json reports and --latency-log files",
    after_help = "Examples:\n  uring-load report before.json after.json\n  \
        uring-load report run.hlog --svg run.svg\n  \
        uring-load report nginx.hlog uring.hlog --html compare.html"
)]
struct ReportCli {
    /// `--json` reports (or `merge` output) and `--latency-log` files; one series each.
    #[arg(required = true, value_name = "RUN.json|LOG")]
    inputs: Vec<PathBuf>,

    /// Write the charts as one SVG file.
    #[arg(long = "svg", value_name = "OUT.svg")]
    svg: Option<PathBuf>,

    /// Write a self-contained HTML page with the charts and the summary table.
    #[arg(long = "html", value_name = "OUT.html")]
    html: Option<PathBuf>,

    /// Title of the page and charts.
    #[arg(
        long = "title",
        value_name = "TEXT",
        default_value = "uring-load report"
    )]
    title: String,
}

/// Requests/s and latency of one interval of a latency log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimePoint {
    /// End of the interval, seconds since the log's start.
    pub t: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// One input: a run's histogram and what else its file tells.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub name: String,
    pub latency_us: Histogram<u64>,
    /// Complete responses (JSON) or latencies logged (log).
    pub done: u64,
    /// Only JSON reports know these.
    pub errored: Option<u64>,
    pub non_2xx: Option<u64>,
    pub elapsed_s: f64,
    /// Only latency logs have one.
    pub timeline: Option<Vec<TimePoint>>,
}

impl RunInput {
    pub fn rps(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.done as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

/// Read one input file: a JSON report or a latency log, told apart by content.
pub fn load_input(path: &Path, name: String) -> Result<RunInput, LogError> {
    let text = std::fs::read_to_string(path).map_err(|err| LogError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    if looks_like_log(&text) {
        let log = parse_log(&text).map_err(|err| LogError::InFile {
            path: path.to_path_buf(),
            err: Box::new(err),
        })?;
        let latency_us = log.total();
        let first = log.intervals.first().map(|i| i.start_s).unwrap_or(0.0);
        // A run that ends just after an interval boundary leaves a last interval of a
        // few microseconds: its rate and percentiles are noise, so it is not drawn (its
        // latencies still count in the distribution).
        let longest = log.intervals.iter().map(|i| i.length_s).fold(0.0, f64::max);
        let timeline = log
            .intervals
            .iter()
            .filter(|i| i.length_s >= longest / 10.0)
            .map(|i| {
                let q = |p| {
                    if i.latency_us.is_empty() {
                        0.0
                    } else {
                        i.latency_us.value_at_quantile(p) as f64
                    }
                };
                TimePoint {
                    t: i.start_s + i.length_s - first,
                    rps: i.rps(),
                    p50_us: q(0.5),
                    p99_us: q(0.99),
                }
            })
            .collect();
        Ok(RunInput {
            name,
            done: latency_us.len(),
            latency_us,
            errored: None,
            non_2xx: None,
            elapsed_s: log.span_s(),
            timeline: Some(timeline),
        })
    } else {
        let not_a_report = |why: String| LogError::NotAReport {
            path: path.to_path_buf(),
            why,
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| not_a_report(e.to_string()))?;
        let (rec, elapsed_s) = recorder_from_json(&v)
            .map_err(|e| not_a_report(format!("not a uring-load report: {e}")))?;
        let c = &rec.counters;
        Ok(RunInput {
            name,
            done: c.done,
            errored: Some(c.errored),
            non_2xx: Some(c.failed),
            elapsed_s,
            latency_us: rec.latency_us,
            timeline: None,
        })
    }
}

/// Series names: file stems, or whole paths when two stems are the same.
pub fn names(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let file = |p: &PathBuf| {
        p.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let stems: Vec<String> = paths.iter().map(stem).collect();
    let files: Vec<String> = paths.iter().map(file).collect();
    let unique = |all: &[String], s: &String| all.iter().filter(|t| *t == s).count() == 1;
    paths
        .iter()
        .enumerate()
        .map(|(k, p)| {
            if unique(&stems, &stems[k]) {
                stems[k].clone()
            } else if unique(&files, &files[k]) {
                files[k].clone()
            } else {
                p.display().to_string()
            }
        })
        .collect()
}

/// The summary table: a header row and one row per input.
pub fn summary_rows(runs: &[RunInput]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "run", "requests", "errors", "non-2xx", "req/s", "p50", "p90", "p99", "p99.9", "max",
    ];
    let rows = runs
        .iter()
        .map(|r| {
            let h = &r.latency_us;
            let q = |p: f64| {
                if h.is_empty() {
                    "-".to_string()
                } else {
                    format_us(h.value_at_quantile(p) as f64)
                }
            };
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
            vec![
                r.name.clone(),
                r.done.to_string(),
                opt(r.errored),
                opt(r.non_2xx),
                format_count(r.rps()),
                q(0.5),
                q(0.9),
                q(0.99),
                q(0.999),
                if h.is_empty() {
                    "-".into()
                } else {
                    format_us(h.max() as f64)
                },
            ]
        })
        .collect();
    (header, rows)
}

/// The table as aligned text.
pub fn summary_text(runs: &[RunInput]) -> String {
    let (header, rows) = summary_rows(runs);
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut o = String::new();
    let line = |cells: Vec<String>, o: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(k, (c, w))| {
                if k == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        o.push_str(parts.join("  ").trim_end());
        o.push('\n');
    };
    line(header.iter().map(|s| s.to_string()).collect(), &mut o);
    for r in rows {
        line(r, &mut o);
    }
    o
}

/// The charts: percentiles of every input; requests/s and latency over time when any
/// input is a latency log.
pub fn charts(runs: &[RunInput], title: &str) -> Vec<Chart> {
    let mut out = vec![Chart {
        id: "percentiles".into(),
        title: format!("{title}: latency by percentile"),
        x: XAxis::Percentile,
        y: YAxis::Latency,
        x_label: "percentile (log scale of 1/(1-p))".into(),
        y_label: "latency".into(),
        series: runs
            .iter()
            .enumerate()
            .map(|(k, r)| Series {
                name: r.name.clone(),
                index: k,
                points: plot::percentile_points(&r.latency_us),
                dashed: false,
            })
            .collect(),
    }];
    let timed: Vec<(usize, &RunInput, &Vec<TimePoint>)> = runs
        .iter()
        .enumerate()
        .filter_map(|(k, r)| r.timeline.as_ref().map(|t| (k, r, t)))
        .collect();
    if !timed.is_empty() {
        out.push(Chart {
            id: "rps".into(),
            title: format!("{title}: requests/s over time"),
            x: XAxis::Seconds,
            y: YAxis::PerSecond,
            x_label: "time since start".into(),
            y_label: "responses per second".into(),
            series: timed
                .iter()
                .map(|&(k, r, t)| Series {
                    name: r.name.clone(),
                    index: k,
                    points: t.iter().map(|p| (p.t, p.rps)).collect(),
                    dashed: false,
                })
                .collect(),
        });
        let mut series = Vec::new();
        for &(k, r, t) in &timed {
            series.push(Series {
                name: format!("{} p99", r.name),
                index: k,
                points: t.iter().map(|p| (p.t, p.p99_us)).collect(),
                dashed: false,
            });
            series.push(Series {
                name: format!("{} p50", r.name),
                index: k,
                points: t.iter().map(|p| (p.t, p.p50_us)).collect(),
                dashed: true,
            });
        }
        out.push(Chart {
            id: "latency-over-time".into(),
            title: format!("{title}: p99 and p50 over time"),
            x: XAxis::Seconds,
            y: YAxis::Latency,
            x_label: "time since start".into(),
            y_label: "latency".into(),
            series,
        });
    }
    out
}

/// Run `uring-load report` with the arguments after `report`.
pub fn main(args: &[String]) -> ExitCode {
    let argv = std::iter::once("uring-load report".to_string()).chain(args.iter().cloned());
    let cli = match ReportCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let rendered = e.render().to_string();
            let line = rendered.lines().next().unwrap_or("bad arguments");
            eprintln!("uring-load: report: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("uring-load: report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &ReportCli) -> Result<String, LogError> {
    let names = names(&cli.inputs);
    let runs = cli
        .inputs
        .iter()
        .zip(names)
        .map(|(p, n)| load_input(p, n))
        .collect::<Result<Vec<_>, _>>()?;
    let charts = charts(&runs, &cli.title);
    if let Some(p) = &cli.svg {
        std::fs::write(p, plot::svg_document(&charts)).map_err(|err| LogError::Write {
            path: p.clone(),
            err,
        })?;
    }
    if let Some(p) = &cli.html {
        let (header, rows) = summary_rows(&runs);
        let page = crate::html::page(&cli.title, &header, &rows, &charts);
        std::fs::write(p, page).map_err(|err| LogError::Write {
            path: p.clone(),
            err,
        })?;
    }
    Ok(summary_text(&runs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::stats::recorder::new_latency_histogram;

    fn run_with(values: &[u64], timeline: bool) -> RunInput {
        let mut h = new_latency_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        RunInput {
            name: "r".into(),
            done: h.len(),
            latency_us: h,
            errored: Some(1),
            non_2xx: None,
            elapsed_s: 2.0,
            timeline: timeline.then(|| {
                vec![
                    TimePoint {
                        t: 1.0,
                        rps: 10.0,
                        p50_us: 5.0,
                        p99_us: 9.0,
                    },
                    TimePoint {
                        t: 2.0,
                        rps: 12.0,
                        p50_us: 6.0,
                        p99_us: 8.0,
                    },
                ]
            }),
        }
    }

    #[test]
    fn names_are_stems_unless_ambiguous() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(names(&[p("a/x.json"), p("b/y.hlog")]), ["x", "y"]);
        assert_eq!(
            names(&[p("a/x.json"), p("b/x.json")]),
            ["a/x.json", "b/x.json"]
        );
        assert_eq!(
            names(&[p("a/x.json"), p("a/x.hlog"), p("z.hlog")]),
            ["x.json", "x.hlog", "z"]
        );
    }

    #[test]
    fn table_has_a_row_per_run() {
        let runs = [run_with(&[100, 200, 300, 400], false), run_with(&[], true)];
        let t = summary_text(&runs);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("run"), "{t}");
        assert!(lines[1].contains("2.00"), "{t}"); // 4 requests in 2 s
        assert!(lines[1].contains("400.00us") || lines[1].contains("400.")); // max
        assert!(lines[2].contains(" - "), "{t}");
    }

    #[test]
    fn charts_over_time_only_with_a_log() {
        assert_eq!(charts(&[run_with(&[1, 2], false)], "t").len(), 1);
        let c = charts(&[run_with(&[1, 2], false), run_with(&[3], true)], "t");
        assert_eq!(
            c.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["percentiles", "rps", "latency-over-time"]
        );
        // The log's series keeps its colour (index 1) in every chart.
        assert_eq!(c[1].series[0].index, 1);
        assert_eq!(c[2].series.len(), 2);
        assert_eq!(c[2].series[0].points, [(1.0, 9.0), (2.0, 8.0)]);
        assert!(c[2].series[1].dashed);
    }
}
