//! The uring-load command line: bad input gets one line and exit 2, the embedded server
//! mode, `--runs`, `merge`, Unix sockets, progress lines, and Ctrl-C.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::bin;
use uring_tests::load::{num, run_load, ChildGuard, MisbehavingServer, Misbehaviour, TempDir};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn load_bad_input_is_one_line_and_exit_2() {
    for args in [
        &["-c", "0", "http://127.0.0.1:1/"][..],
        &["-c", "2", "-t", "3", "http://127.0.0.1:1/"],
        &["-n", "0", "http://127.0.0.1:1/"],
        &["-n", "ten", "http://127.0.0.1:1/"],
        &["-d", "5parsecs", "http://127.0.0.1:1/"],
        &["ftp://127.0.0.1/"],
        &["http://[::1/"],
        &["http://127.0.0.1:99999/"],
        &["-K", "4", "http://127.0.0.1:1/"],
        &["-H", "no colon", "http://127.0.0.1:1/"],
        &["--tier", "fastest", "http://127.0.0.1:1/"],
        &["--bogus-flag"],
        &["merge"],
    ] {
        let r = run_load(args, LIMIT);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.starts_with("uring-load: "),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn load_numbers_and_durations_accept_suffixes() {
    let srv = MisbehavingServer::start(Misbehaviour::StallEveryNth {
        n: u64::MAX,
        pause: Duration::ZERO,
    });
    let r = run_load(
        &[
            "-n",
            "2k",
            "-c",
            "4",
            "-k",
            "-T",
            "2s",
            "--json",
            &srv.url(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(num(&r.json(), &["requests", "succeeded"]), 2000);
}

#[test]
fn load_embedded_server_exact_counts() {
    let r = run_load(&["-n", "5000", "-c", "16", "-k", "--json"], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 5000, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
    // "Hello, World!" from /plaintext.
    assert_eq!(num(&v, &["bytes", "body"]), 5000 * 13, "{v}");

    let r = run_load(&["-n", "1000", "-c", "8", "-t", "2", "--json"], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 1000, "{v}");
    assert_eq!(num(&v, &["connections", "opened"]), 1000, "{v}");
}

#[test]
fn load_text_report_has_weighttp_and_wrk_lines() {
    let r = run_load(&["-n", "2000", "-c", "8", "-k"], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = &r.stdout;
    for needle in [
        "finished in ",
        "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored",
        "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx",
        "traffic: ",
        "errors: 0 connect, 0 read, 0 write, 0 timeout, 0 parse",
        "Latency Distribution",
        "99.99%",
        "Requests/sec:",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // Not a terminal: plain progress lines on stderr, never on stdout.
    assert!(!out.contains("progress:"));
}

#[test]
fn load_runs_print_mean_and_stdev() {
    let r = run_load(&["-n", "500", "-c", "4", "-k", "--runs", "3"], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.matches("run ").count() >= 3, "{}", r.stdout);
    assert!(r.stdout.contains("mean"), "{}", r.stdout);
    assert!(r.stdout.contains("stdev"), "{}", r.stdout);

    let r = run_load(
        &[
            "-n", "500", "-c", "4", "-k", "--runs", "2", "--warmup", "200ms", "--json",
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 1000, "{v}");
    assert_eq!(v["runs"]["count"], 2, "{v}");
}

#[test]
fn load_merge_is_exact() {
    let dir = TempDir::new("merge");
    let mut files = Vec::new();
    let mut hist_total = 0;
    for (k, n) in [(0, "700"), (1, "300")] {
        let r = run_load(&["-n", n, "-c", "4", "-k", "--json"], LIMIT);
        assert_eq!(r.code, 0, "{}", r.stderr);
        hist_total += num(&r.json(), &["requests", "done"]);
        let p = dir.path().join(format!("run{k}.json"));
        std::fs::write(&p, &r.stdout).unwrap();
        files.push(p.display().to_string());
    }
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let r = run_load(&args, LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 1000, "{v}");
    assert_eq!(hist_total, 1000);
    // The merged histogram holds every sample.
    let h = uring_common::stats::summary::histogram_from_base64(v["histogram"].as_str().unwrap())
        .unwrap();
    assert_eq!(h.len(), 1000);
}

#[test]
fn load_unix_socket() {
    let dir = TempDir::new("unix");
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        // Both client connections at once, each answered until EOF.
        let handlers: Vec<_> = (0..2)
            .map(|_| {
                let (mut s, _) = listener.accept().unwrap();
                std::thread::spawn(move || {
                    let mut served = 0u64;
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..p + 4);
                            served += 1;
                            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                .is_err()
                            {
                                return served;
                            }
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return served,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                })
            })
            .collect();
        handlers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    let sock = path.display().to_string();
    let r = run_load(
        &[
            "-n",
            "1000",
            "-c",
            "2",
            "-k",
            "--unix-socket",
            &sock,
            "--json",
            "http://localhost/x",
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 1000, "{v}");
    assert_eq!(server.join().unwrap(), 1000);
}

#[test]
fn load_ctrl_c_prints_the_partial_report() {
    let srv = MisbehavingServer::start(Misbehaviour::StallEveryNth {
        n: u64::MAX,
        pause: Duration::ZERO,
    });
    let child = Command::new(bin("uring-load"))
        .args(["-d", "60s", "-c", "2", "-k", &srv.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("interrupted"), "{out}");
    assert!(out.contains("Requests/sec:"), "{out}");
}

#[test]
fn load_progress_lines_when_not_a_terminal() {
    let srv = MisbehavingServer::start(Misbehaviour::StallEveryNth {
        n: u64::MAX,
        pause: Duration::ZERO,
    });
    let r = run_load(&["-d", "1500ms", "-c", "2", "-k", &srv.url()], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("progress: "), "{}", r.stderr);
    assert!(r.stderr.contains("% done"), "{}", r.stderr);
}

#[test]
fn load_ipv6_literal_and_host_name() {
    let v6 = MisbehavingServer::start_on(
        "[::1]:0".parse().unwrap(),
        Misbehaviour::StallEveryNth {
            n: u64::MAX,
            pause: Duration::ZERO,
        },
    );
    let url = format!("http://[::1]:{}/a?b=c", v6.addr.port());
    let r = run_load(&["-n", "300", "-c", "3", "-k", "--json", &url], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(num(&r.json(), &["requests", "succeeded"]), 300);

    // `localhost` may resolve to ::1 and 127.0.0.1; the one that listens is used.
    let v4 = MisbehavingServer::healthy();
    let url = format!("http://localhost:{}/", v4.addr.port());
    let r = run_load(&["-n", "300", "-c", "3", "-k", "--json", &url], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(num(&r.json(), &["requests", "succeeded"]), 300);
}

#[test]
fn load_body_headers_and_method_reach_the_server() {
    // A server that echoes nothing but checks: answers 200 only when the request carries
    // the header, the method and the body we asked for, 400 otherwise.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // Head plus the 11-byte body.
                    while let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        if buf.len() < p + 4 + 11 {
                            break;
                        }
                        let msg = String::from_utf8_lossy(&buf[..p + 4 + 11]).to_string();
                        buf.drain(..p + 4 + 11);
                        let ok = msg.starts_with("PUT /up HTTP/1.1\r\n")
                            && msg.contains("\r\nX-Test: yes\r\n")
                            && msg
                                .to_ascii_lowercase()
                                .contains("\r\ncontent-length: 11\r\n")
                            && msg.ends_with("hello body!");
                        let resp: &[u8] = if ok {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                        } else {
                            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
                        };
                        if s.write_all(resp).is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    let dir = TempDir::new("body");
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "hello body!").unwrap();
    let url = format!("http://{addr}/up");
    let r = run_load(
        &[
            "-n",
            "200",
            "-c",
            "2",
            "-k",
            "-K",
            "4",
            "-m",
            "PUT",
            "-H",
            "X-Test: yes",
            "-b",
            body.to_str().unwrap(),
            "--json",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 200, "{v}");
}

#[test]
fn load_too_few_file_descriptors_says_how_to_fix() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {} -n 10 -c 1000 -k http://127.0.0.1:1/",
            bin("uring-load").display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ulimit -n"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn load_progress_bar_on_a_terminal() {
    // `script` gives the child a pseudo-terminal (util-linux, on every Debian).
    let srv = MisbehavingServer::healthy();
    let cmd = format!(
        "{} -d 1s --interval 250ms -c 2 -k {}",
        bin("uring-load").display(),
        srv.url()
    );
    let child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut child = ChildGuard(child);
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{out}");
    // The live view: a bar redrawn in place (indicatif erases the line with ESC [2K)
    // with the last interval's figures, not progress lines.
    assert!(out.contains("\r\x1b[2K"), "{out:?}");
    assert!(out.contains("% "), "{out:?}");
    for needle in [" req/s, p50 ", ", p99 ", " errors, ", " done"] {
        assert!(out.contains(needle), "{needle} missing: {out:?}");
    }
    assert!(!out.contains("progress: "), "{out:?}");
    assert!(out.contains("Requests/sec:"), "{out:?}");
}

#[test]
fn load_open_model_is_named_in_the_text_report() {
    let srv = MisbehavingServer::healthy();
    let r = run_load(
        &["-n", "200", "-R", "2000", "-c", "2", "-k", &srv.url()],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("open model: 2000 req/s intended"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("requests: 200 total, 200 started, 200 done, 200 succeeded"),
        "{}",
        r.stdout
    );
}

#[test]
fn load_every_request_failed_exits_1_naming_the_cause() {
    // A closed loopback port: every connect is refused.
    let port = uring_tests::free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let r = run_load(&["-n", "10", "-c", "2", "-k", &url], LIMIT);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let expected = format!("connect: 10 × Connection refused (os error 111) to 127.0.0.1:{port}");
    let err: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("progress: "))
        .collect();
    assert_eq!(
        err,
        [
            "uring-load: every request failed (10 errored, none answered); the first error of each class:",
            &format!("  {expected}"),
        ],
        "{}",
        r.stderr
    );
    // The text report (stdout) has the same line under the error counts.
    assert!(
        r.stdout.contains("errors: 10 connect, 0 read"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("first error of each class:\n  {expected}\n")),
        "{}",
        r.stdout
    );

    // `merge` carries the first error of each class; the earlier report's wins.
    let dir = TempDir::new("first-errors");
    let mut files = Vec::new();
    for k in 0..2 {
        let r = run_load(&["-n", "3", "-c", "1", "--json", &url], LIMIT);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let p = dir.path().join(format!("r{k}.json"));
        std::fs::write(&p, &r.stdout).unwrap();
        files.push(p.display().to_string());
    }
    let at = |f: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        v["first_errors"]["connect"]["at_unix_us"].as_u64().unwrap()
    };
    assert!(at(&files[0]) <= at(&files[1]));
    // Given in the later-first order, the merge still keeps the earliest.
    let r = run_load(&["merge", &files[1], &files[0]], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["errors", "connect"]), 6, "{v}");
    assert_eq!(
        v["first_errors"]["connect"]["message"],
        format!("Connection refused (os error 111) to 127.0.0.1:{port}")
    );
    assert_eq!(
        v["first_errors"]["connect"]["at_unix_us"].as_u64(),
        Some(at(&files[0]))
    );
}

#[test]
fn load_partial_failures_exit_0_with_the_first_errors_in_the_json() {
    // Every other request held past -T: some answers, some timeouts.
    let srv = MisbehavingServer::start(Misbehaviour::StallEveryNth {
        n: 2,
        pause: Duration::from_millis(400),
    });
    let r = run_load(
        &[
            "-n",
            "4",
            "-c",
            "1",
            "-k",
            "-T",
            "200ms",
            "--json",
            &srv.url(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert!(num(&v, &["requests", "done"]) > 0, "{v}");
    assert!(num(&v, &["errors", "timeout"]) > 0, "{v}");
    assert!(
        v["first_errors"]["timeout"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("-T")),
        "{v}"
    );
    assert!(v["first_errors"].get("connect").is_none(), "{v}");
}

/// Wall-clock seconds since the Unix epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn load_shards_start_together_and_merge_exactly() {
    let srv = MisbehavingServer::healthy();
    let url = srv.url();
    let dir = TempDir::new("shards");
    let start_at = format!("{:.3}", unix_now() + 2.0);
    // Three shards at once, as three machines would run them; shard 2 through
    // JOB_COMPLETION_INDEX as a Kubernetes Indexed Job sets it.
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let (url, start_at) = (url.clone(), start_at.clone());
            std::thread::spawn(move || {
                let shard = format!("{i}/3");
                let mut args = vec![
                    "-n",
                    "1000",
                    "-c",
                    "2",
                    "-k",
                    "--json",
                    "-q",
                    "--run-id",
                    "t-1",
                    "--start-at",
                    &start_at,
                ];
                let env: Vec<(&str, &str)> = if i == 2 {
                    args.extend(["--shards", "3"]);
                    vec![("JOB_COMPLETION_INDEX", "2")]
                } else {
                    args.extend(["--shard", &shard]);
                    vec![]
                };
                args.push(&url);
                uring_tests::load::run_load_env(&args, &env, LIMIT)
            })
        })
        .collect();
    let mut files = Vec::new();
    let mut starts = Vec::new();
    for (i, h) in runs.into_iter().enumerate() {
        let r = h.join().unwrap();
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v = r.json();
        assert_eq!(v["shard"]["index"], i, "{v}");
        assert_eq!(v["shard"]["count"], 3, "{v}");
        assert_eq!(v["run_id"], "t-1", "{v}");
        assert!(!v["host"].as_str().unwrap_or_default().is_empty(), "{v}");
        // Exact shares of -n 1000: 334, 333, 333.
        let share = if i == 0 { 334 } else { 333 };
        assert_eq!(num(&v, &["requests", "succeeded"]), share, "{v}");
        starts.push(v["started_at"].as_str().unwrap().to_string());
        let p = dir.path().join(format!("shard{i}.json"));
        std::fs::write(&p, &r.stdout).unwrap();
        files.push(p.display().to_string());
    }
    // Every shard waited for --start-at: none started before it, all within a second.
    let secs = |rfc: &str| -> f64 {
        // HH:MM:SS.ffffff of the same day (the test runs for seconds).
        let t = &rfc[11..26];
        let h: f64 = t[0..2].parse().unwrap();
        let m: f64 = t[3..5].parse().unwrap();
        let s: f64 = t[6..].parse().unwrap();
        h * 3600.0 + m * 60.0 + s
    };
    let want = start_at.parse::<f64>().unwrap() % 86_400.0;
    for s in &starts {
        let d = secs(s) - want;
        assert!(
            (-0.001..1.0).contains(&d),
            "started {s}, --start-at {start_at}"
        );
    }

    let args: Vec<&str> = ["merge"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let r = run_load(&args, LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 1000, "{v}");
    // The server's own count agrees.
    assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 1000);
    assert_eq!(v["run_id"], "t-1");
    assert_eq!(v["shards"].as_array().map(Vec::len), Some(3), "{v}");
    assert!(v["latency_merge"]
        .as_str()
        .unwrap()
        .contains("never averaged"));
    let h = uring_common::stats::summary::histogram_from_base64(v["histogram"].as_str().unwrap())
        .unwrap();
    assert_eq!(h.len(), 1000);

    // The text form: a row per shard, then the total.
    let mut text_args = args.clone();
    text_args.insert(1, "--text");
    let r = run_load(&text_args, LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("merged 3 shards of run t-1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("never averaged"), "{}", r.stdout);
    for (label, done) in [("0/3", 334), ("1/3", 333), ("2/3", 333), ("total", 1000)] {
        let row = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no row {label} in:\n{}", r.stdout));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(cols.contains(&done.to_string().as_str()), "{row}");
    }

    // A lost shard is named; a shard twice is refused; another run's shard is refused.
    let r = run_load(&["merge", &files[0], &files[1]], LIMIT);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("missing shards 2/3 (1 of 3)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    let r = run_load(&["merge", &files[0], &files[1], &files[1]], LIMIT);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("shard 1/3 appears twice"), "{}", r.stderr);
    let other = dir.path().join("other.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[2]).unwrap()).unwrap();
    v["run_id"] = "t-2".into();
    std::fs::write(&other, v.to_string()).unwrap();
    let r = run_load(
        &["merge", &files[0], &files[1], other.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("from run 't-2'"), "{}", r.stderr);
}

#[test]
fn load_shard_flags_refuse_what_cannot_run() {
    let url = "http://127.0.0.1:1/";
    let past = format!("{:.3}", unix_now() - 5.0);
    for (args, env, needle) in [
        (
            vec!["-n", "10", "--shard", "3/3", url],
            vec![],
            "bad --shard '3/3'",
        ),
        (
            vec!["-n", "2", "--shard", "0/3", url],
            vec![],
            "fewer requests than the 3 shards",
        ),
        (
            vec!["-n", "10", "--shards", "3", url],
            vec![],
            "JOB_COMPLETION_INDEX",
        ),
        (
            vec!["-n", "10", "--shards", "3", url],
            vec![("JOB_COMPLETION_INDEX", "7")],
            "JOB_COMPLETION_INDEX='7'",
        ),
        (
            vec!["-n", "10", "--shard", "0/2", "--shards", "2", url],
            vec![],
            "not both",
        ),
        (
            vec!["-n", "10", "--start-at", &past, url],
            vec![],
            "passed 5.",
        ),
        (
            vec!["-n", "10", "--start-at", "noon", url],
            vec![],
            "bad --start-at",
        ),
        (
            vec!["-n", "10", "--run-id", "a b", url],
            vec![],
            "bad --run-id",
        ),
    ] {
        let r = uring_tests::load::run_load_env(&args, &env, LIMIT);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
}
