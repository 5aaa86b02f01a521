//! Smoke of the benchmark harness, so that it cannot rot: `compare --quick` on a subset
//! of servers, tools and workloads, and the seed study with a tiny `-n`. Asserts that
//! every output file exists and that every cell that can run did, with a nonzero rate.
//! No timing is asserted: CI shares two cores.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uring_tests::bin;

/// Kills the harness (and so its process group's servers) if a test panics.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The two smokes take turns: each starts servers and load tools on both CPUs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `compare` with `args`, bounded by `limit`; panics with its stderr if it fails.
fn run_compare(args: &[&str], limit: Duration) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let log = std::env::temp_dir().join(format!(
        "bench-smoke-{}-{}.log",
        std::process::id(),
        args[0]
    ));
    let mut g = Guard(
        Command::new(bin("compare"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start compare"),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = g.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < limit,
            "compare {args:?} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "compare {args:?} failed: {err}");
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn compare_quick_writes_a_row_per_cell() {
    let out = fresh_dir("bench-smoke-compare");
    let servers = [
        "uring-server",
        "nginx",
        "hyper-server",
        "tokio-uring-server",
        "floor",
        "uring-proxy",
        "nginx-proxy",
    ];
    let tools = ["uring-load", "wrk", "h2load", "ab"];
    let workloads = ["ka64", "pipe16", "file64k"];
    run_compare(
        &[
            "--quick",
            "--duration",
            "1",
            "--servers",
            &servers.join(","),
            "--tools",
            &tools.join(","),
            "--workloads",
            &workloads.join(","),
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(240),
    );
    let report = read_json(&out.join("compare.json"));
    let cells = report["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), servers.len() * tools.len() * workloads.len());
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    for c in cells {
        let (server, tool, w) = (
            c["server"].as_str().unwrap(),
            c["tool"].as_str().unwrap(),
            c["workload"].as_str().unwrap(),
        );
        let file_cell_without_files = w == "file64k"
            && !["uring-server", "nginx", "uring-proxy", "nginx-proxy"].contains(&server);
        let ab_pipelining = tool == "ab" && w == "pipe16";
        let proxy_beyond_ka64 = server.ends_with("-proxy") && w != "ka64";
        if file_cell_without_files || ab_pipelining || proxy_beyond_ka64 {
            assert_eq!(c["status"], "not-applicable", "{c}");
            continue;
        }
        assert_eq!(c["status"], "ok", "{server} × {tool} × {w}: {}", c["note"]);
        let rps = c["rps"]["median"].as_f64().unwrap();
        assert!(rps > 0.0, "{server} × {tool} × {w}: {rps}");
        // A non-2xx answer means a misconfigured peer (a 404 is fast but meaningless).
        assert_eq!(c["failed"], 0, "{server} × {tool} × {w}: non-2xx responses");
        assert!(c["server_cpu_us"]["median"].as_f64().is_some(), "{c}");
        assert!(c["tool_cpu_us"]["median"].as_f64().unwrap() > 0.0, "{c}");
        assert!(
            md.contains(&format!("| {server} | {tool} | ")),
            "no Markdown row for {server} × {tool}"
        );
    }
    for w in workloads {
        let svg = std::fs::read_to_string(out.join(format!("compare-{w}-rps.svg"))).unwrap();
        assert!(svg.contains("<svg"), "compare-{w}-rps.svg is not SVG");
        assert!(
            svg.contains("nginx / wrk"),
            "compare-{w}-rps.svg lacks nginx / wrk"
        );
        assert!(out.join(format!("compare-{w}-cpu.svg")).exists());
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn seed_study_quick_fills_the_seed_table() {
    let out = fresh_dir("bench-smoke-seed");
    // The venvs outlive the test (in the target directory) so that pip runs once.
    let cache = bin("compare").parent().unwrap().join("bench-cache");
    run_compare(
        &[
            "seed",
            "--quick",
            "-n",
            "300",
            "--workers",
            "1,2",
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(600),
    );
    let report = read_json(&out.join("seed.json"));
    let cells = report["cells"].as_array().expect("cells");
    // cpython, pypy, CPython behind uring-server and behind nginx: -w 1, -w 2 and the
    // -c 100 row; uwsgi, uwsgi-pypy, uwsgi-behind-nginx, uwsgi-behind-uring-server,
    // uring-server and nginx likewise; the tornado worker on CPython and PyPy at -w 2
    // -c 200 only.
    assert_eq!(cells.len(), 10 * 3 + 2, "{report}");
    for c in cells {
        if c["column"] == "uwsgi-pypy" {
            // Said in the table, not measured and not a hole.
            assert_eq!(c["failures"][0], "no packaged PyPy plugin for uWSGI", "{c}");
            continue;
        }
        let rps = c["mean_rps"].as_f64();
        assert!(rps.is_some_and(|r| r > 0.0), "cell without a rate: {c}");
        assert_eq!(c["runs"].as_array().unwrap().len(), 1, "{c}");
    }
    let md = std::fs::read_to_string(out.join("seed.md")).unwrap();
    for row in [
        "| gunicorn -w 1 |",
        "| gunicorn -w 2 |",
        "| -w 1 |",
        "*tests -n 300 -c 100*",
        "| gunicorn -w 2 -k tornado |",
        "| uwsgi --processes 1 |",
        "| no packaged PyPy plugin for uWSGI |",
        "behind nginx uwsgi_pass |",
        "behind uring-server uwsgi:// |",
        // The seed author's numbers beside ours, row for row.
        "| gunicorn -w 1 | 2,500 | 6,000 |",
        "| gunicorn -w 2 | 3,580 | 9,800 |",
        "| gunicorn -w 2 -k tornado | 7,000 | 23,000 |",
        "seed: CPython 2.7 | seed: PyPy 2b |",
        ", tornado worker |",
    ] {
        assert!(md.contains(row), "seed.md lacks {row}:\n{md}");
    }
    assert!(md.contains("CPython") && md.contains("PyPy"), "{md}");
    assert!(
        md.contains("behind uring-server") && md.contains("behind nginx"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("seed.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("-w 1 -c 200"),
        "seed.svg lacks its bars"
    );
    let _ = std::fs::remove_dir_all(&out);
}
