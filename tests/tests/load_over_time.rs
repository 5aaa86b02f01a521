//! Latency over time and the reports people look at: `--latency-log` (read back by
//! HdrHistogram's own Java `HistogramLogProcessor`), `uring-load report` (SVG and a
//! self-contained HTML page rendered by headless Chromium), and the live view.

use std::process::Command;
use std::time::Duration;

use uring_common::stats::summary::histogram_from_base64;
use uring_tests::load::{num, run_load, TempDir};

const LIMIT: Duration = Duration::from_secs(60);

/// HdrHistogram's Java library, from Debian's libhdrhistogram-java
/// (scripts/install-test-deps.sh installs it).
const HDR_JAR: &str = "/usr/share/java/hdrhistogram.jar";

/// The interval lines of a latency log: (start, length, histogram count).
fn intervals(log: &str) -> Vec<(f64, f64, u64)> {
    log.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('"'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            let h = histogram_from_base64(f[3]).unwrap_or_else(|e| panic!("{e}: {l}"));
            (f[0].parse().unwrap(), f[1].parse().unwrap(), h.len())
        })
        .collect()
}

#[test]
fn latency_log_intervals_add_up_to_the_run() {
    let dir = TempDir::new("latency-log");
    let log_path = dir.path().join("run.hlog");
    let log_arg = log_path.to_str().unwrap();
    // Two load threads against the embedded server: intervals of both are merged.
    let r = run_load(
        &[
            "-d",
            "2300ms",
            "-c",
            "4",
            "-t",
            "2",
            "-k",
            "--no-pin",
            "--json",
            "--latency-log",
            log_arg,
            "--interval",
            "500ms",
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let done = num(&r.json(), &["requests", "done"]);
    assert!(done > 0);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let head: Vec<&str> = log.lines().take(6).collect();
    assert!(head[0].starts_with("#[Logged with uring-load"), "{log}");
    assert_eq!(head[1], "#[Histogram log format version 1.3]");
    assert!(head[2].starts_with("#[StartTime: "), "{log}");
    assert!(head[3].starts_with("#[BaseTime: "), "{log}");
    assert!(head[5].starts_with("\"StartTimestamp\""), "{log}");
    let iv = intervals(&log);
    // 2.3 s in 0.5 s intervals: four whole ones and a last short one.
    assert_eq!(iv.len(), 5, "{log}");
    for (k, &(start, length, _)) in iv.iter().enumerate() {
        assert!((start - 0.5 * k as f64).abs() < 1e-9, "{log}");
        if k < 4 {
            assert_eq!(length, 0.5, "{log}");
        } else {
            assert!(length > 0.2 && length <= 0.5, "{log}");
        }
    }
    // Every response's latency is in exactly one interval.
    assert_eq!(iv.iter().map(|i| i.2).sum::<u64>(), done, "{log}");
    assert!(iv[..4].iter().all(|i| i.2 > 0), "{log}");

    // HdrHistogram's own processor reads the file and counts the same.
    let out = Command::new("java")
        .args(["-cp", HDR_JAR, "org.HdrHistogram.HistogramLogProcessor"])
        .args(["-i", log_arg, "-outputValueUnitRatio", "1000"])
        .output()
        .expect("java (default-jre-headless; scripts/install-test-deps.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = text
        .lines()
        .find_map(|l| l.split("Total count    =").nth(1))
        .unwrap_or_else(|| panic!("no total in:\n{text}"));
    assert_eq!(
        total
            .trim()
            .trim_end_matches(']')
            .trim()
            .parse::<u64>()
            .ok(),
        Some(done),
        "{text}"
    );
}

#[test]
fn latency_log_bad_path_or_interval_is_one_line_and_exit_2() {
    for args in [
        &["-n", "10", "--latency-log", "/nonexistent-dir/x.hlog"][..],
        &[
            "-n",
            "10",
            "--latency-log",
            "/tmp/x.hlog",
            "--interval",
            "0s",
        ],
        &["-n", "10", "--interval", "5ms"],
    ] {
        let r = run_load(args, LIMIT);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    }
    let r = run_load(
        &["-n", "10", "--latency-log", "/nonexistent-dir/x.hlog"],
        LIMIT,
    );
    assert!(r.stderr.contains("/nonexistent-dir/x.hlog"), "{}", r.stderr);
}

/// Headless Chromium (Debian's `chromium`, installed by scripts/install-test-deps.sh; the
/// test fails rather than skips without it), run as root as the tests are.
fn chromium(extra: &[&str], page: &std::path::Path, profile: &TempDir) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (scripts/install-test-deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (stdout, stderr)
}

/// Script errors and console messages the page caused (Chromium's own chatter about
/// D-Bus and the like is not the page's).
fn page_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains(":CONSOLE") || l.contains("Refused to"))
        .collect()
}

/// Pixels of `rgb` (within a small tolerance for anti-aliasing) in rows `rows` of `png`.
fn count_color(png: &std::path::Path, rgb: [u8; 3], rows: std::ops::Range<usize>) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let mut n = 0;
    for y in rows.start..rows.end.min(info.height as usize) {
        let row = &buf[y * info.line_size..(y + 1) * info.line_size];
        for px in row.chunks(channels) {
            if px[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 24) {
                n += 1;
            }
        }
    }
    n
}

fn hex(c: &str) -> [u8; 3] {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[test]
fn report_html_renders_in_headless_chromium() {
    let dir = TempDir::new("report");
    let p = |name: &str| dir.path().join(name);
    // Two runs to compare: a JSON report and a latency log.
    let r = run_load(&["-d", "1200ms", "-c", "2", "-k", "--json", "-q"], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(p("small.json"), &r.stdout).unwrap();
    let log = p("wide.hlog");
    let r = run_load(
        &[
            "-d",
            "1500ms",
            "-c",
            "16",
            "-k",
            "-q",
            "--interval",
            "250ms",
            "--latency-log",
            log.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (html, svg) = (p("report.html"), p("report.svg"));
    let r = run_load(
        &[
            "report",
            p("small.json").to_str().unwrap(),
            log.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The summary table on stdout: a header and one row per input.
    let rows: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    assert!(
        rows[1].starts_with("small ") && rows[2].starts_with("wide "),
        "{}",
        r.stdout
    );

    // The page's script ran: it marks the body and the title.
    let profile = TempDir::new("chromium");
    let (dom, stderr) = chromium(&["--dump-dom"], &html, &profile);
    assert!(dom.contains(r#"data-charts-ready="3""#), "{dom}");
    assert!(dom.contains("(ready)</title>"), "{dom}");
    assert!(page_errors(&stderr).is_empty(), "{stderr}");

    // The charts rendered: the two runs' colours fill many pixels below the table
    // (the table's colour marks are a few dozen pixels each).
    let shot = p("report.png");
    let (_, stderr) = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,1700",
            "--hide-scrollbars",
        ],
        &html,
        &profile,
    );
    assert!(page_errors(&stderr).is_empty(), "{stderr}");
    let (blue, red) = (hex("#1f77b4"), hex("#d62728"));
    let charts = 250..1700;
    let (nb, nr) = (
        count_color(&shot, blue, charts.clone()),
        count_color(&shot, red, charts),
    );
    assert!(nb > 1000 && nr > 1000, "blue {nb}, red {nr} pixels");
    // And the percentile chart itself (the first figure) is not blank.
    let first = 250..700;
    assert!(count_color(&shot, blue, first.clone()) > 500);
    assert!(count_color(&shot, red, first) > 500);

    // The standalone SVG renders too.
    let shot = p("svg.png");
    chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=920,1280",
            "--hide-scrollbars",
        ],
        &svg,
        &profile,
    );
    assert!(count_color(&shot, red, 0..1280) > 1000);
}

#[test]
fn report_bad_inputs_are_one_line_and_exit_2() {
    let dir = TempDir::new("report-bad");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not a report").unwrap();
    let junk_log = dir.path().join("junk.hlog");
    std::fs::write(&junk_log, "#[BaseTime: 0.000 (seconds since epoch)]\n1,2\n").unwrap();
    for (args, needle) in [
        (vec!["report"], "required"),
        (vec!["report", "/nonexistent.json"], "/nonexistent.json"),
        (vec!["report", junk.to_str().unwrap()], "junk.json"),
        (vec!["report", junk_log.to_str().unwrap()], "line 2"),
    ] {
        let r = run_load(&args, LIMIT);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn live_view_is_plain_lines_when_not_a_terminal() {
    let r = run_load(&["-d", "2s", "-c", "2", "-k", "--interval", "250ms"], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    // A line at every tenth of the run (the last tenths may fall after the end).
    assert!(lines.len() >= 7, "{}", r.stderr);
    // After the first interval, each carries its req/s, p50 and p99, and the errors.
    let figures = lines
        .iter()
        .filter(|l| l.contains(" req/s, p50 ") && l.contains(", p99 ") && l.ends_with(" errors"))
        .count();
    assert!(figures >= 5, "{}", r.stderr);
    // No terminal codes, and nothing of it on stdout.
    assert!(
        !r.stderr.contains('\x1b') && !r.stderr.contains('\r'),
        "{:?}",
        r.stderr
    );
    assert!(!r.stdout.contains("progress:"), "{}", r.stdout);
    // Quiet is quiet.
    let r = run_load(&["-n", "200", "-c", "2", "-k", "-q"], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("progress"), "{}", r.stderr);
}

#[test]
fn live_view_forced_without_a_terminal_is_one_line_and_exit_2() {
    for args in [&["-n", "10", "--tui"][..], &["-n", "10", "--tui", "-q"]] {
        let r = run_load(args, LIMIT);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("--tui"), "{}", r.stderr);
    }
}

#[test]
fn live_view_with_tui_on_a_terminal() {
    // `script` gives the child a pseudo-terminal; `--tui` asks for the view explicitly.
    let cmd = format!(
        "{} -d 1500ms -c 2 -k --tui --interval 250ms",
        uring_tests::bin("uring-load").display()
    );
    let (ok, text) = uring_tests::load::run_in_terminal(&cmd);
    assert!(ok, "{text}");
    let redraws = text.matches("\r\x1b[2K").count();
    assert!(redraws >= 5, "{redraws} redraws: {text:?}");
    assert!(text.contains(" req/s, p50 "), "{text:?}");
    assert!(text.contains("Requests/sec:"), "{text:?}");
    assert!(!text.contains("progress: "), "{text:?}");
}
