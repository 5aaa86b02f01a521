//! Deploying uring-server (issue 11): the access log (combined, json, SIGUSR1 reopen),
//! Prometheus metrics scraped with curl and checked by promtool and by a strict parser,
//! systemd socket activation through the real `systemd-socket-activate` with a recorded
//! NOTIFY_SOCKET, and a zero-downtime upgrade (SIGUSR2) under full load.
//!
//! Peers (curl, promtool from Debian's prometheus, systemd-socket-activate from Debian's
//! systemd) are installed by scripts/install-test-deps.sh; a missing one fails the test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::load::{num, run_load, ChildGuard, TempDir};
use uring_tests::reliability::TestServer;
use uring_tests::{bin, free_port, wait_for_listener};

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a pid this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0, "kill {pid}");
}

fn alive(pid: u32) -> bool {
    // A zombie still answers kill(0); read its state instead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn load_ok(url: &str, n: u64, c: u32) -> serde_json::Value {
    let (ns, cs) = (n.to_string(), c.to_string());
    let run = run_load(
        &["-n", &ns, "-c", &cs, "-t", "1", "-k", "--json", url],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), n, "{}", run.stderr);
    assert_eq!(num(&v, &["errors", "connect"]), 0);
    assert_eq!(num(&v, &["errors", "read"]), 0);
    v
}

// ---- access log ----

#[test]
fn access_log_combined_lines_and_sigusr1_reopen() {
    let dir = TempDir::new("accesslog");
    let log = dir.path().join("access.log");
    let srv = TestServer::start(&["--no-pin", "--access-log", log.to_str().unwrap()]);
    let url = format!("http://{}/plaintext", srv.addr);
    load_ok(&url, 500, 4);
    // The workers hand their buffers over at their tick (at most 1 s).
    wait_until("500 lines", Duration::from_secs(5), || {
        lines(&log).len() == 500
    });
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(srv.guard.pid(), libc::SIGUSR1);
    wait_until("the reopened file", Duration::from_secs(5), || log.exists());
    load_ok(&url, 300, 2);
    // A request with every field a combined line shows, and one that tries to forge one.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(b"GET /a\"b HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\nUser-Agent: t\"x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    signal(srv.guard.pid(), libc::SIGTERM);
    let mut srv = srv;
    assert!(srv.guard.wait_timeout(Duration::from_secs(15)).is_some());
    // Every line in exactly one file: the old one kept what was written before the
    // reopen, the new one has the rest.
    assert_eq!(lines(&rotated).len(), 500);
    let new = lines(&log);
    assert_eq!(new.len(), 301, "{new:?}");
    let shape = |l: &str| {
        let (front, rest) = l.split_once(" [").expect("[time]");
        let (time, rest) = rest.split_once("] ").expect("] after the time");
        assert_eq!(front, "127.0.0.1 - -", "{l}");
        assert!(time.ends_with(" +0000") && time.len() == 26, "{l}");
        rest.to_string()
    };
    assert_eq!(
        shape(&lines(&rotated)[0]),
        "\"GET /plaintext HTTP/1.1\" 200 13 \"-\" \"-\""
    );
    let forged = new.iter().find(|l| l.contains("/a")).expect("the /a line");
    assert_eq!(
        shape(forged),
        "\"GET /a\\x22b HTTP/1.1\" 404 10 \"http://r/\" \"t\\x22x\"",
        "quotes are escaped as nginx does"
    );
}

#[test]
fn access_log_json_lines_parse() {
    let dir = TempDir::new("accesslog-json");
    let log = dir.path().join("access.json");
    let mut srv = TestServer::start(&[
        "--no-pin",
        "--access-log",
        log.to_str().unwrap(),
        "--access-log-format",
        "json",
    ]);
    load_ok(&format!("http://{}/json", srv.addr), 200, 2);
    signal(srv.guard.pid(), libc::SIGTERM);
    assert!(srv.guard.wait_timeout(Duration::from_secs(15)).is_some());
    let all = lines(&log);
    assert_eq!(all.len(), 200);
    for l in &all {
        let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
        assert_eq!(v["uri"], "/json");
        assert_eq!(v["status"], 200);
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["remote_addr"], "127.0.0.1");
        assert_eq!(v["body_bytes_sent"], 27);
        assert!(v["request_time_us"].is_u64());
    }
}

/// Send `req` on its own connection and read the answer to the close.
fn exchange(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp).into_owned()
}

#[test]
fn refused_requests_reach_the_access_log() {
    for format in ["combined", "json"] {
        let dir = TempDir::new("accesslog-refused");
        let log = dir.path().join("access.log");
        let mut srv = TestServer::start(&[
            "--no-pin",
            "--access-log",
            log.to_str().unwrap(),
            "--access-log-format",
            format,
            "--max-body-bytes",
            "1000",
        ]);
        let cases: [(&[u8], u16, &str); 4] = [
            (
                b"GET /bad HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
                400,
                "GET /bad HTTP/1.1",
            ),
            (
                b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
                413,
                "POST /big HTTP/1.1",
            ),
            (b"\x16\x03\x01\r\n\r\n", 400, "\\x16\\x03\\x01"),
            (
                b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
                501,
                "CONNECT a:443 HTTP/1.1",
            ),
        ];
        for (req, status, _) in &cases {
            let resp = exchange(srv.addr, req);
            assert!(resp.starts_with(&format!("HTTP/1.1 {status} ")), "{resp:?}");
        }
        signal(srv.guard.pid(), libc::SIGTERM);
        assert!(srv.guard.wait_timeout(Duration::from_secs(15)).is_some());
        let all = lines(&log);
        assert_eq!(
            all.len(),
            cases.len(),
            "{format}: one line per refusal: {all:?}"
        );
        for (line, (_, status, request)) in all.iter().zip(&cases) {
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert_eq!(v["request"], *request, "{line}");
                assert_eq!(v["status"], *status, "{line}");
                assert_eq!(v["remote_addr"], "127.0.0.1");
            } else {
                let want = format!("\"{request}\" {status} 0 \"-\" \"-\"");
                assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
                assert!(line.ends_with(&want), "{line} should end with {want}");
            }
        }
    }
}

// ---- metrics ----

/// One scrape with curl.
fn scrape(addr: SocketAddr) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-m", "5"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A strict reader of the text format (0.0.4): every sample belongs to a family declared
/// by `# TYPE` before it, names and labels are well formed, no series repeats, values
/// are numbers, histogram buckets are cumulative and end at `+Inf` = `_count`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    fn name_ok(n: &str) -> bool {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(name_ok(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "type twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "{line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels in {line}"));
            for pair in inner.split(',') {
                let (k, val) = pair.split_once('=').expect("label=value");
                assert!(name_ok(k), "{line}");
                assert!(
                    val.len() >= 2 && val.starts_with('"') && val.ends_with('"'),
                    "{line}"
                );
            }
        }
        let family = types
            .keys()
            .find(|f| {
                name == f.as_str()
                    || (types[*f] == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{f}{s}")))
            })
            .unwrap_or_else(|| panic!("no # TYPE before {line}"));
        if types[family] == "counter" {
            assert!(v >= 0.0, "{line}");
        }
        assert!(
            out.insert(series.to_string(), v).is_none(),
            "series twice: {line}"
        );
    }
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let mut last = 0.0;
        let mut inf = None;
        for (k, v) in &out {
            if k.starts_with(&format!("{family}_bucket{{")) {
                if k.contains("le=\"+Inf\"") {
                    inf = Some(*v);
                } else {
                    assert!(*v >= last || last == 0.0, "buckets not cumulative at {k}");
                    last = last.max(*v);
                }
            }
        }
        assert_eq!(
            inf,
            out.get(&format!("{family}_count")).copied(),
            "{family}"
        );
        assert!(inf.unwrap() >= last, "{family}: +Inf below a bucket");
    }
    out
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus; scripts/install-test-deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_count_what_uring_load_sent() {
    let dir = TempDir::new("metrics");
    // Small enough for the files' memory class: still route="file".
    std::fs::write(dir.path().join("f.bin"), vec![7u8; 10_000]).unwrap();
    let maddr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Two workers: the scrape sums them.
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _srv = ChildGuard(
        Command::new(bin("uring-server"))
            .args(["--listen", &addr.to_string(), "-w", "2", "--no-pin"])
            .args(["--root", dir.path().to_str().unwrap()])
            .args(["--metrics", &maddr.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(addr, Duration::from_secs(10));
    // The probe connection above carries no request; nothing else reaches the server.
    let plain = load_ok(&format!("http://{addr}/plaintext"), 3000, 8);
    let file = load_ok(&format!("http://{addr}/f.bin"), 200, 2);
    // One 404 over a raw connection, its bytes counted here.
    let mut s = TcpStream::connect(addr).unwrap();
    let req = b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    s.write_all(req).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    drop(s);

    let sent =
        num(&plain, &["bytes", "total"]) + num(&file, &["bytes", "total"]) + resp.len() as u64;
    let mut text = String::new();
    let mut m = BTreeMap::new();
    // Workers publish once per tick (at most 1 s).
    wait_until("the counts to be published", Duration::from_secs(5), || {
        text = scrape(maddr);
        m = parse_metrics(&text);
        m["uring_server_requests_total{route=\"builtin\",status_class=\"2xx\"}"] == 3000.0
            && m["uring_server_requests_total{route=\"file\",status_class=\"2xx\"}"] == 200.0
            // The static files' 404 is theirs.
            && m["uring_server_requests_total{route=\"file\",status_class=\"4xx\"}"] == 1.0
            && m["uring_server_open_connections"] == 0.0
            && m["uring_server_sent_bytes_total"] == sent as f64
    });
    promtool_check(&text);
    let total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("uring_server_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 3201.0);
    assert_eq!(m["uring_server_request_duration_seconds_count"], 3201.0);
    let per_worker: f64 = (0..2)
        .map(|w| m[&format!("uring_server_worker_requests_total{{worker=\"{w}\"}}")])
        .sum();
    assert_eq!(per_worker, 3201.0);
    let tiers = m
        .keys()
        .filter(|k| k.starts_with("uring_server_worker_tier{"))
        .count();
    assert_eq!(tiers, 2);
    assert!(m["uring_server_received_bytes_total"] >= (3201 * 16) as f64);
    // Anything but /metrics is a 404.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{maddr}/other"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}

#[test]
fn the_strict_parser_rejects_what_promtool_rejects() {
    let bad = [
        "x_total 1\n",                  // no TYPE
        "# TYPE x counter\nx{a=b} 1\n", // unquoted label
        "# TYPE x counter\nx 1\nx 2\n", // repeated series
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n",
    ];
    for b in bad {
        assert!(
            std::panic::catch_unwind(|| parse_metrics(b)).is_err(),
            "{b}"
        );
    }
}

// ---- systemd ----

/// A fake NOTIFY_SOCKET: records what the server tells its service manager.
struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl Notify {
    fn new(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        Notify {
            sock,
            path,
            seen: Vec::new(),
        }
    }

    /// Wait for a message containing `want`; returns that message.
    fn expect(&mut self, want: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {want:?} within {limit:?}; seen {:?}",
                self.seen
            );
            self.sock.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                self.seen.push(msg.clone());
                if msg.lines().any(|l| l == want || l.starts_with(want)) {
                    return msg;
                }
            }
        }
    }
}

/// Inodes of the listening TCP sockets on `port` (from /proc/net/tcp).
fn listening_inodes(port: u16) -> Vec<String> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    tcp.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
            (local_port == port && f[3] == "0A").then(|| f[9].to_string())
        })
        .collect()
}

fn fds_on(pid: u32, inode: &str) -> usize {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy() == want)
        .count()
}

#[test]
fn systemd_socket_activation_and_notifications() {
    let dir = TempDir::new("systemd");
    let mut notify = Notify::new(dir.path());
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let unused = free_port();
    let mut child = ChildGuard(
        Command::new("systemd-socket-activate")
            .args(["-l", &addr.to_string(), "--fdname=web"])
            .arg(format!("-ENOTIFY_SOCKET={}", notify.path.display()))
            .arg("-EWATCHDOG_USEC=400000")
            .arg(bin("uring-server"))
            // --listen names another port: the inherited socket wins.
            .args([
                "--listen",
                &format!("127.0.0.1:{unused}"),
                "-w",
                "2",
                "--no-pin",
            ])
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .expect("systemd-socket-activate (Debian's systemd; scripts/install-test-deps.sh)"),
    );
    let pid = child.0.id();
    // The activator starts the server on the first connection, which the server then
    // serves from the same socket.
    wait_until("the activator's socket", Duration::from_secs(5), || {
        !listening_inodes(port).is_empty()
    });
    let mut first = TcpStream::connect(addr).unwrap();
    first
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    notify.expect("READY=1", Duration::from_secs(10));
    let mut resp = String::new();
    first.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("Hello, World!"),
        "{resp}"
    );
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        stderr.contains("inherited from systemd socket activation (names: web)"),
        "{stderr}"
    );

    // What the two workers share: one socket (one accept queue), each with its own fd.
    let inodes = listening_inodes(port);
    assert_eq!(
        inodes.len(),
        1,
        "one listening socket, no per-worker SO_REUSEPORT ones"
    );
    assert!(fds_on(pid, &inodes[0]) >= 2, "both workers hold the socket");
    assert!(listening_inodes(unused).is_empty(), "--listen was ignored");
    load_ok(&format!("http://{addr}/plaintext"), 2000, 8);

    notify.expect("WATCHDOG=1", Duration::from_secs(3));
    signal(pid, libc::SIGHUP);
    notify.expect("RELOADING=1", Duration::from_secs(5));
    notify.expect("READY=1", Duration::from_secs(5));
    signal(pid, libc::SIGTERM);
    notify.expect("STOPPING=1", Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

// ---- upgrade ----

#[test]
fn upgrade_under_full_load_loses_nothing() {
    let dir = TempDir::new("upgrade");
    // The server runs from a copy, replaced by a new file before SIGUSR2: the successor
    // must be the binary now at that path, not the old process image.
    let exe = dir.path().join("uring-server");
    std::fs::copy(bin("uring-server"), &exe).unwrap();
    let mut notify = Notify::new(dir.path());
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let maddr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut old = ChildGuard(
        Command::new(&exe)
            .args(["--listen", &addr.to_string(), "-w", "2", "--no-pin"])
            .args(["--metrics", &maddr.to_string()])
            .env("NOTIFY_SOCKET", &notify.path)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap(),
    );
    notify.expect("READY=1", Duration::from_secs(10));
    wait_for_listener(addr, Duration::from_secs(5));
    let old_inodes = listening_inodes(port);
    assert_eq!(old_inodes.len(), 2, "one SO_REUSEPORT socket per worker");
    std::fs::remove_file(&exe).unwrap();
    std::fs::copy(bin("uring-server"), &exe).unwrap();

    let n: u64 = 150_000;
    let url = format!("http://{addr}/plaintext");
    let load = std::thread::spawn(move || {
        let ns = n.to_string();
        run_load(
            &["-n", &ns, "-c", "32", "-t", "1", "-k", "--json", &url],
            Duration::from_secs(120),
        )
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !load.is_finished(),
        "the load ended before the upgrade; raise n"
    );
    signal(old.0.id(), libc::SIGUSR2);
    notify.expect("RELOADING=1", Duration::from_secs(5));
    let msg = notify.expect("MAINPID=", Duration::from_secs(30));
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    let new_pid: u32 = msg
        .lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .unwrap()
        .parse()
        .unwrap();
    let _kill_new = scopeguard(new_pid);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = old.0.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "the old server did not drain");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(status.success(), "old server: {status}");
    let upgraded_mid_load = !load.is_finished();
    let run = load.join().unwrap();
    let v = run.json();
    assert!(
        upgraded_mid_load,
        "the load ended before the old server exited; raise n"
    );
    assert_eq!(num(&v, &["errors", "connect"]), 0, "{}", run.stderr);
    assert_eq!(num(&v, &["errors", "read"]), 0, "{}", run.stderr);
    assert_eq!(num(&v, &["requests", "succeeded"]), n, "{}", run.stderr);

    // The successor: the new file, on the very same sockets, alive and serving.
    let exe_link = std::fs::read_link(format!("/proc/{new_pid}/exe")).unwrap();
    assert_eq!(exe_link, exe, "the successor runs the file now at the path");
    assert_eq!(
        listening_inodes(port),
        old_inodes,
        "the same sockets, never closed"
    );
    load_ok(&format!("http://{addr}/plaintext"), 1000, 4);
    let text = scrape(maddr);
    assert!(parse_metrics(&text).contains_key("uring_server_open_connections"));
    signal(new_pid, libc::SIGTERM);
    wait_until("the successor's exit", Duration::from_secs(15), || {
        !alive(new_pid)
    });
}

/// Kills `pid` (not our child: the successor is the old server's) when dropped, so a
/// failing test leaves nothing running.
fn scopeguard(pid: u32) -> impl Drop {
    struct K(u32);
    impl Drop for K {
        fn drop(&mut self) {
            if alive(self.0) {
                // SAFETY: kill(2) on the successor this test caused.
                unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
            }
        }
    }
    K(pid)
}

#[test]
fn the_systemd_units_verify() {
    // systemd-analyze exits 0 on warnings too: any output is a failure here.
    let dir = TempDir::new("units");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    for unit in ["uring-server.service", "uring-server.socket"] {
        let text = std::fs::read_to_string(root.join(unit)).unwrap();
        let text = text.replace(
            "/usr/local/bin/uring-server",
            bin("uring-server").to_str().unwrap(),
        );
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("uring-server.service"))
        .arg(dir.path().join("uring-server.socket"))
        .output()
        .expect("systemd-analyze (Debian's systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn proxied_requests_are_counted_by_the_upstreams_status() {
    // The upstream: another uring-server, serving /app/x from its root.
    let root = TempDir::new("proxy-root");
    std::fs::create_dir(root.path().join("app")).unwrap();
    std::fs::write(root.path().join("app/x"), b"from upstream").unwrap();
    let up: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _upstream = ChildGuard(
        Command::new(bin("uring-server"))
            .args(["--listen", &up.to_string(), "-w", "1", "--no-pin"])
            .args(["--root", root.path().to_str().unwrap()])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(up, Duration::from_secs(10));
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let maddr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _proxy = ChildGuard(
        Command::new(bin("uring-server"))
            .args(["--listen", &addr.to_string(), "-w", "1", "--no-pin"])
            .args(["--proxy", &format!("/app/=http://{up}")])
            .args(["--metrics", &maddr.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(addr, Duration::from_secs(10));
    load_ok(&format!("http://{addr}/app/x"), 300, 4);
    load_ok(&format!("http://{addr}/plaintext"), 100, 2);
    // One the upstream answers 404: counted by the upstream's status, not ours.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /app/missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    wait_until("the proxied counts", Duration::from_secs(5), || {
        let m = parse_metrics(&scrape(maddr));
        m["uring_server_requests_total{route=\"proxy\",status_class=\"2xx\"}"] == 300.0
            && m["uring_server_requests_total{route=\"proxy\",status_class=\"4xx\"}"] == 1.0
            && m["uring_server_requests_total{route=\"builtin\",status_class=\"2xx\"}"] == 100.0
            && m["uring_server_request_duration_seconds_count"] == 401.0
    });
}

/// Only a second SIGTERM/SIGINT cuts a drain short: logrotate's SIGUSR1, a reload's
/// SIGHUP or an upgrade's SIGUSR2 arriving meanwhile must not end in-flight requests.
#[test]
fn other_signals_during_a_drain_do_not_cut_it_short() {
    let dir = TempDir::new("drain-signals");
    let log = dir.path().join("access.log");
    let mut srv = TestServer::start(&["--no-pin", "--access-log", log.to_str().unwrap()]);
    // A request in flight: its head is incomplete, so the drain waits for it.
    let mut slow = TcpStream::connect(srv.addr).unwrap();
    slow.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    signal(srv.guard.pid(), libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    for sig in [libc::SIGUSR1, libc::SIGHUP, libc::SIGUSR2] {
        signal(srv.guard.pid(), sig);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        srv.alive(),
        "a signal other than TERM/INT ended the drain: {}",
        srv.log_text()
    );
    slow.write_all(b"\r\n").unwrap();
    let mut resp = String::new();
    slow.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.contains("Connection: close"),
        "{resp}"
    );
    assert!(srv.guard.wait_timeout(Duration::from_secs(10)).is_some());
}
