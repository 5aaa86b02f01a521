//! Soak: a bounded mixed run of uring-load against uring-server (keep-alive, pipelined,
//! a connection per request, static file downloads, all at once). Zero errors, and after
//! the run the server's open fds and resident memory are back at their idle values: what
//! a long run leaks shows up here multiplied by millions of requests.
//!
//! Length: RELIABILITY_SOAK_SECS (default 60) for the measured mix.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::bin;
use uring_tests::reliability::{fd_targets, open_fds, rss_kib, ChildGuard, TestServer};

struct Mix {
    name: &'static str,
    path: &'static str,
    args: &'static [&'static str],
}

const MIXES: &[Mix] = &[
    Mix {
        name: "keep-alive plaintext",
        path: "/plaintext",
        args: &["-k", "-c", "32"],
    },
    Mix {
        name: "pipelined json",
        path: "/json",
        args: &["-k", "-K", "16", "-c", "8"],
    },
    Mix {
        // A fresh connection per request, rate-limited so TIME_WAIT stays bounded.
        name: "connection per request",
        path: "/plaintext",
        args: &["-c", "4", "-R", "300"],
    },
    Mix {
        name: "64 KiB static file",
        path: "/file.bin",
        args: &["-k", "-c", "4"],
    },
];

/// Run every mix at once for `secs`; returns each mix's JSON report.
fn run_mix(addr: std::net::SocketAddr, secs: u64) -> Vec<(&'static str, serde_json::Value)> {
    let dur = format!("{secs}s");
    let mut running = Vec::new();
    for (i, m) in MIXES.iter().enumerate() {
        let out = std::env::temp_dir().join(format!(
            "uring-reliability-soak-{}-{i}.json",
            std::process::id()
        ));
        let url = format!("http://{addr}{}", m.path);
        let child = Command::new(bin("uring-load"))
            .args(m.args)
            .args(["-d", &dur, "--no-pin", "-q", "--json", &url])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn uring-load");
        running.push((m.name, ChildGuard::new(child), out));
    }
    let limit = Duration::from_secs(secs + 60);
    running
        .into_iter()
        .map(|(name, mut g, out)| {
            let st = g
                .wait_timeout(limit)
                .unwrap_or_else(|| panic!("{name}: uring-load ran past -d {secs}s + 60s"));
            assert!(st.success(), "{name}: uring-load exited {st}");
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let _ = std::fs::remove_file(&out);
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name}: unreadable report ({e}): {text:?}"));
            (name, v)
        })
        .collect()
}

fn count(v: &serde_json::Value, a: &str, b: &str) -> u64 {
    v[a][b]
        .as_u64()
        .unwrap_or_else(|| panic!("no {a}.{b} in {v}"))
}

fn assert_clean(phase: &str, reports: &[(&'static str, serde_json::Value)]) {
    for (name, v) in reports {
        let done = count(v, "requests", "done");
        assert!(done > 0, "{phase} {name}: no requests done: {v}");
        assert_eq!(
            count(v, "requests", "succeeded"),
            done,
            "{phase} {name}: non-2xx responses: {}",
            v["status_codes"]
        );
        assert_eq!(
            count(v, "requests", "errored"),
            0,
            "{phase} {name}: errors: {}",
            v["errors"]
        );
        eprintln!(
            "soak {phase} {name}: {done} requests, {} connections, {} reconnects",
            count(v, "connections", "opened"),
            count(v, "connections", "reconnects")
        );
    }
}

/// Wait for the server to come back to rest: fds at `idle` (or the deadline).
fn settle(pid: u32, idle: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = open_fds(pid);
        if n <= idle || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn soak_mixed_load_leaves_no_trace() {
    let secs: u64 = std::env::var("RELIABILITY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let root = std::env::temp_dir().join(format!("uring-reliability-soak-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("file.bin"),
        (0..64 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    let mut server = TestServer::start(&["--root", root.to_str().unwrap(), "--no-pin"]);
    let pid = server.guard.pid();

    // Warm-up: every path once at load, so buffers, slabs and caches reach their working
    // size; what the server holds after that is its idle.
    let warm = run_mix(server.addr, 3);
    assert_clean("warm-up", &warm);
    let idle_fds = settle(pid, server.idle_fds());
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(pid);

    let reports = run_mix(server.addr, secs);
    assert_clean("soak", &reports);
    assert!(server.alive(), "server died: {}", server.log_text());

    let fds = settle(pid, idle_fds);
    assert!(
        fds <= idle_fds,
        "after the soak the server holds {fds} fds, {idle_fds} at idle: {:?}",
        fd_targets(pid)
    );
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(pid);
    // Allocators keep some freed memory; a leak over millions of requests is far more.
    let slack = (idle_rss / 4).max(8 * 1024);
    eprintln!("soak: server RSS {idle_rss} KiB idle, {rss} KiB after; fds {idle_fds} -> {fds}");
    assert!(
        rss <= idle_rss + slack,
        "server RSS grew from {idle_rss} KiB to {rss} KiB over the soak"
    );
    let _ = std::fs::remove_dir_all(&root);
}
