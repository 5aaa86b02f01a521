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
