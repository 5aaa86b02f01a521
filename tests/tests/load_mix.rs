//! Request mixes (issue 13): `--targets`, `--urls`, `--raw`, `--mix`, several hosts, and
//! the per-target statistics, proven against a server that logs every request it
//! processed (method, target, Host, body, and the raw bytes): round-robin hits every
//! target the expected number of times within one, weighted and random follow the
//! weights, `-n` stays exact across targets even when the server closes connections
//! with requests pipelined behind the close, a raw request arrives byte for byte as
//! written, and a raw request that is not valid HTTP/1.1 is refused before any
//! connection is made.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use uring_tests::load::{num, run_load, TempDir};

const LIMIT: Duration = Duration::from_secs(60);

/// One request as the logging server read it.
#[derive(Debug, Clone)]
struct Logged {
    method: String,
    target: String,
    host: String,
    body: Vec<u8>,
    /// The request's bytes exactly as they arrived (head and body).
    raw: Vec<u8>,
}

/// A std HTTP/1.1 server that logs every request it processes and answers `200 ok`
/// (`/status/NNN` answers NNN), with keep-alive and pipelining; with `close_every`, every
/// that-many-th request (across connections) is answered with `Connection: close` and
/// the connection closed, whatever was pipelined behind it left unprocessed.
struct LogServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    log: Arc<Mutex<Vec<Logged>>>,
    connections: Arc<AtomicU64>,
}

impl LogServer {
    fn start(close_every: Option<u64>) -> LogServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let connections = Arc::new(AtomicU64::new(0));
        let counter = Arc::new(AtomicU64::new(0));
        let (stop2, log2, conns2) = (stop.clone(), log.clone(), connections.clone());
        let handle = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        conns2.fetch_add(1, Ordering::SeqCst);
                        let (stop3, log3, n3) = (stop2.clone(), log2.clone(), counter.clone());
                        workers.push(std::thread::spawn(move || {
                            serve(sock, &stop3, &log3, &n3, close_every)
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        LogServer {
            addr,
            stop,
            handle: Some(handle),
            log,
            connections,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn logged(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// Requests processed per `METHOD target`.
    fn counts(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in self.logged() {
            *m.entry(format!("{} {}", r.method, r.target)).or_default() += 1;
        }
        m
    }
}

impl Drop for LogServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Read until `buf` holds `want` bytes or more; false on EOF, error or stop.
fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>, want: usize, stop: &AtomicBool) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < want {
        match sock.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// The length of a complete chunked body at the start of `b`, or None if incomplete
/// (test bodies: no extensions, no trailers).
fn chunked_len(b: &[u8]) -> Option<usize> {
    let mut off = 0;
    loop {
        let line_end = off + b[off..].windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[off..line_end]).ok()?, 16).ok()?;
        off = line_end + 2 + size + 2;
        if off > b.len() {
            return None;
        }
        if size == 0 {
            return Some(off);
        }
    }
}

fn serve(
    mut sock: TcpStream,
    stop: &AtomicBool,
    log: &Mutex<Vec<Logged>>,
    counter: &AtomicU64,
    close_every: Option<u64>,
) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        // Answer everything complete in the buffer in one write (pipelining).
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if !out.is_empty() && sock.write_all(&out).is_err() {
                return;
            }
            out.clear();
            let want = buf.len() + 1;
            if !fill(&mut sock, &mut buf, want, stop) {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let mut host = String::new();
        let mut length = 0usize;
        let mut chunked = false;
        for l in lines {
            if let Some((n, v)) = l.split_once(':') {
                match n.to_ascii_lowercase().as_str() {
                    "host" => host = v.trim().to_string(),
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let body_len = loop {
            let got = if chunked {
                chunked_len(&buf[end..])
            } else if buf.len() >= end + length {
                Some(length)
            } else {
                None
            };
            if let Some(n) = got {
                break n;
            }
            let want = buf.len() + 1;
            if !fill(&mut sock, &mut buf, want, stop) {
                return;
            }
        };
        let raw: Vec<u8> = buf.drain(..end + body_len).collect();
        let body = raw[end..].to_vec();
        log.lock().unwrap().push(Logged {
            method: method.clone(),
            target: target.clone(),
            host,
            body,
            raw,
        });
        let k = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let close = close_every.is_some_and(|n| k % n == 0);
        let status = target
            .strip_prefix("/status/")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(200);
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{}\r\n",
                if close { "Connection: close\r\n" } else { "" }
            )
            .as_bytes(),
        );
        if method != "HEAD" {
            out.extend_from_slice(b"ok");
        }
        if close {
            // Whatever was pipelined behind this request is never processed.
            let _ = sock.write_all(&out);
            let _ = sock.shutdown(std::net::Shutdown::Write);
            let mut sink = [0u8; 4096];
            let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
            while matches!(sock.read(&mut sink), Ok(n) if n > 0) {}
            return;
        }
    }
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// The per-target `requests.done` of a JSON report, by label.
fn done_by_label(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no targets in {v}"))
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_string(),
                num(t, &["requests", "done"]),
            )
        })
        .collect()
}

/// Ten targets: GETs, POSTs with bodies (one body file shared), a HEAD, a 404 and a 503.
fn ten_targets(dir: &Path, srv: &LogServer) -> PathBuf {
    let body = write(dir, "body.json", b"{\"hello\":\"world\"}");
    let small = write(dir, "small.txt", b"x");
    let mut t = String::from("# ten targets\n");
    for i in 0..4 {
        t.push_str(&format!(
            "GET {}\nX-Target: {i}\n\n",
            srv.url(&format!("/get/{i}"))
        ));
    }
    t.push_str(&format!(
        "POST {}\nContent-Type: application/json\n@{}\n\n",
        srv.url("/post/0"),
        body.display()
    ));
    t.push_str(&format!(
        "PUT {}\n@{}\n\n",
        srv.url("/put/1"),
        body.display()
    ));
    t.push_str(&format!(
        "POST {}\n@{}\n\n",
        srv.url("/post/2"),
        small.display()
    ));
    t.push_str(&format!("HEAD {}\n", srv.url("/head")));
    t.push_str(&format!(
        "GET {}\nGET {}\n",
        srv.url("/status/404"),
        srv.url("/status/503")
    ));
    write(dir, "targets.txt", t.as_bytes())
}

#[test]
fn load_mix_round_robin_hits_every_target_within_one() {
    let srv = LogServer::start(None);
    let dir = TempDir::new("mix-rr");
    let targets = ten_targets(dir.path(), &srv);
    let n = 2003u64;
    let r = run_load(
        &[
            "-n",
            &n.to_string(),
            "-c",
            "8",
            "-t",
            "2",
            "-k",
            "-K",
            "3",
            "--json",
            "--targets",
            targets.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "done"]), n, "{v}");
    let counts = srv.counts();
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert_eq!(counts.values().sum::<u64>(), n, "-n exact at the server");
    for (k, c) in &counts {
        // 2003 / 10 = 200.3: every target 200 or 201.
        assert!((200..=201).contains(c), "{k}: {c} ({counts:?})");
    }
    // The report's lines agree with the server, target by target.
    let by_label = done_by_label(&v);
    for (label, done) in &by_label {
        let (method, url) = label.split_once(' ').unwrap();
        let path = &url[url.find(&srv.addr.to_string()).unwrap() + srv.addr.to_string().len()..];
        assert_eq!(counts[&format!("{method} {path}")], *done, "{label}");
    }
    let target = |label: &str| {
        v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"].as_str().unwrap().ends_with(label))
            .unwrap()
            .clone()
    };
    assert_eq!(
        num(&target("/status/404"), &["status_codes", "4xx"]),
        counts["GET /status/404"]
    );
    assert_eq!(
        num(&target("/status/503"), &["status_codes", "5xx"]),
        counts["GET /status/503"]
    );
    assert!(num(&target("/get/3"), &["latency_us", "p99"]) > 0);
    // Bodies and headers arrived as the file says.
    for l in srv.logged() {
        match l.target.as_str() {
            "/post/0" | "/put/1" => assert_eq!(l.body, b"{\"hello\":\"world\"}"),
            "/post/2" => assert_eq!(l.body, b"x"),
            t => assert!(l.body.is_empty(), "{t}"),
        }
        assert_eq!(l.host, srv.addr.to_string());
        if let Some(i) = l.target.strip_prefix("/get/") {
            let head = String::from_utf8_lossy(&l.raw).to_string();
            assert!(head.contains(&format!("X-Target: {i}\r\n")), "{head}");
        }
    }
    // And the text report has a line per target.
    let r = run_load(
        &[
            "-n",
            "100",
            "-c",
            "2",
            "-k",
            "--targets",
            targets.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains(&srv.addr.to_string()))
        .collect();
    assert_eq!(lines.len(), 10, "{}", r.stdout);
    let head = lines.iter().find(|l| l.ends_with("/head")).unwrap();
    assert_eq!(head.split_whitespace().nth(1), Some("10"), "{head}");
}

#[test]
fn load_mix_weighted_and_random_follow_the_weights() {
    let srv = LogServer::start(None);
    let dir = TempDir::new("mix-w");
    let file = write(
        dir.path(),
        "urls.txt",
        format!(
            "{} weight=1\n# comment\n\n{} weight=2\n{} weight=5\n",
            srv.url("/a"),
            srv.url("/b"),
            srv.url("/c")
        )
        .as_bytes(),
    );
    let f = file.to_str().unwrap();
    let n = 8000u64;
    let r = run_load(
        &[
            "-n", "8000", "-c", "6", "-t", "2", "-k", "--json", "--urls", f, "--mix", "weighted",
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = srv.counts();
    // The smooth weighted cycle: 1000 of 8 requests per cycle, each share within one.
    for (path, share) in [("GET /a", 1000i64), ("GET /b", 2000), ("GET /c", 5000)] {
        assert!((c[path] as i64 - share).abs() <= 1, "{path}: {c:?}");
    }
    assert_eq!(c.values().sum::<u64>(), n);
    // Random: independent draws by weight. Binomial bounds: 5 standard deviations.
    let draw = |seed: &str| {
        let before = srv.counts();
        let r = run_load(
            &[
                "-n", "8000", "-c", "6", "-t", "2", "-k", "--json", "--urls", f, "--mix", "random",
                "--seed", seed,
            ],
            LIMIT,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let after = srv.counts();
        let got: Vec<u64> = ["GET /a", "GET /b", "GET /c"]
            .iter()
            .map(|k| after[*k] - before.get(*k).copied().unwrap_or(0))
            .collect();
        assert_eq!(got.iter().sum::<u64>(), n, "-n exact");
        let report: Vec<u64> = done_by_label(&r.json()).values().copied().collect();
        assert_eq!(report, got, "the report counts what the server saw");
        got
    };
    let a = draw("42");
    for (got, w) in a.iter().zip([1.0, 2.0, 5.0]) {
        let p = w / 8.0;
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!((*got as f64 - mean).abs() < 5.0 * sd, "{a:?}");
    }
    assert_eq!(draw("42"), a, "the same seed draws the same targets");
    let other = draw("43");
    assert_ne!(other, a, "another seed draws otherwise");
}

#[test]
fn load_mix_n_stays_exact_when_the_server_closes_with_requests_pipelined() {
    // Every 7th request is answered with `Connection: close`; what was pipelined behind
    // it is sent again on a new connection, to the same target.
    let srv = LogServer::start(Some(7));
    let dir = TempDir::new("mix-close");
    let file = write(
        dir.path(),
        "urls.txt",
        format!("{}\n{}\n{}\n", srv.url("/x"), srv.url("/y"), srv.url("/z")).as_bytes(),
    );
    let r = run_load(
        &[
            "-n",
            "900",
            "-c",
            "4",
            "-k",
            "-K",
            "4",
            "--json",
            "--urls",
            file.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "done"]), 900, "{v}");
    assert!(num(&v, &["connections", "reconnects"]) > 10, "{v}");
    let c = srv.counts();
    assert_eq!(c.values().sum::<u64>(), 900, "{c:?}");
    for k in ["GET /x", "GET /y", "GET /z"] {
        assert_eq!(c[k], 300, "{c:?}");
    }
}

#[test]
fn load_mix_several_hosts_split_connections_and_keep_stats_apart() {
    let a = LogServer::start(None);
    let b = LogServer::start(None);
    let dir = TempDir::new("mix-hosts");
    let file = write(
        dir.path(),
        "targets.txt",
        format!(
            "GET {}\n\nGET {}\n\nPOST {}\n@{}\n",
            a.url("/one"),
            b.url("/two"),
            b.url("/three"),
            write(dir.path(), "b", b"abc").display()
        )
        .as_bytes(),
    );
    let r = run_load(
        &[
            "-n",
            "900",
            "-c",
            "6",
            "-t",
            "2",
            "-k",
            "--json",
            "--targets",
            file.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(a.counts()["GET /one"], 300);
    assert_eq!(b.counts()["GET /two"], 300);
    assert_eq!(b.counts()["POST /three"], 300);
    // -c split across the hosts: three connections each.
    assert_eq!(a.connections.load(Ordering::SeqCst), 3);
    assert_eq!(b.connections.load(Ordering::SeqCst), 3);
    assert!(r.stdout.contains("\"hosts\""));
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{v}");
    assert_eq!(hosts[0]["label"], format!("http://{}", a.addr));
    assert_eq!(num(&hosts[0], &["requests", "done"]), 300);
    assert_eq!(num(&hosts[1], &["requests", "done"]), 600);
    assert_eq!(num(&hosts[1], &["connections", "opened"]), 3);
    assert_eq!(v["targets"][2]["host"], 1);
    // The open model across hosts: each host's share comes due on its own schedule.
    let r2 = run_load(
        &[
            "-n",
            "300",
            "-R",
            "3000",
            "-c",
            "4",
            "-t",
            "2",
            "-k",
            "--json",
            "--targets",
            file.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    let v2 = r2.json();
    assert_eq!(num(&v2, &["requests", "done"]), 300, "{v2}");
    assert_eq!(a.counts()["GET /one"], 400);
    assert_eq!(b.counts()["GET /two"], 400);
    assert_eq!(b.counts()["POST /three"], 400);
    // Two runs' reports merge target by target.
    let one = dir.path().join("one.json");
    std::fs::write(&one, &r.stdout).unwrap();
    let m = run_load(
        &["merge", one.to_str().unwrap(), one.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(m.code, 0, "{}", m.stderr);
    let mv = m.json();
    assert_eq!(num(&mv["targets"][1], &["requests", "done"]), 600);
    assert_eq!(num(&mv["hosts"][1], &["connections", "opened"]), 6);
    assert_eq!(mv["schema_version"], 5);
}

#[test]
fn load_raw_requests_go_as_written_and_invalid_ones_are_refused_at_start() {
    let srv = LogServer::start(None);
    let dir = TempDir::new("mix-raw");
    let get = b"GET /raw/get?q=1 HTTP/1.1\r\nHost: example.test\r\nX-Raw: yes\r\n\r\n";
    let post = b"POST /raw/post HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let g = write(dir.path(), "get.req", get);
    let p = write(dir.path(), "post.req", post);
    let list = format!("{},{}:weight=3", g.display(), p.display());
    let r = run_load(
        &[
            "-n",
            "400",
            "-c",
            "4",
            "-k",
            "-K",
            "2",
            "--mix",
            "weighted",
            "--json",
            "--raw",
            &list,
            &srv.url("/"),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let logged = srv.logged();
    assert_eq!(logged.len(), 400);
    let gets = logged.iter().filter(|l| l.raw == get).count();
    let posts = logged.iter().filter(|l| l.raw == post).count();
    assert_eq!((gets, posts), (100, 300), "byte for byte, by weight");
    assert!(logged.iter().all(|l| l.host == "example.test"));

    // Invalid templates: exit 2, one line naming the file and the line; no connection.
    for (name, bytes, line, needle) in [
        ("lf.req", &b"GET / HTTP/1.1\nHost: a\n\n"[..], 1, "CRLF"),
        ("nohost.req", b"GET / HTTP/1.1\r\nX: 1\r\n\r\n", 1, "Host"),
        (
            "v10.req",
            b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            1,
            "HTTP/1.1",
        ),
        (
            "len.req",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabc",
            3,
            "Content-Length: 5",
        ),
        (
            "hdr.req",
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
            3,
            "bad header",
        ),
    ] {
        let f = write(dir.path(), name, bytes);
        let list = format!("{},{}", g.display(), f.display());
        let r = run_load(&["-n", "10", "--raw", &list, &srv.url("/")], LIMIT);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        let err = r.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("{name} line {line}:")) && err.contains(needle),
            "{err}"
        );
    }
    assert_eq!(
        srv.connections.load(Ordering::SeqCst),
        4,
        "only the valid run connected"
    );

    // Flags that do not go together, and bad target files: one line, exit 2.
    let t = write(
        dir.path(),
        "t.txt",
        format!("GET {}\nno colon here\n", srv.url("/")).as_bytes(),
    );
    for args in [
        vec!["--targets", t.to_str().unwrap()],
        vec!["--targets", t.to_str().unwrap(), "http://127.0.0.1:1/"],
        vec!["--raw", g.to_str().unwrap()],
        vec!["--urls", "/nonexistent/urls.txt"],
        vec![
            "--raw",
            g.to_str().unwrap(),
            "-m",
            "PUT",
            "http://127.0.0.1:1/",
        ],
    ] {
        let r = run_load(&args, LIMIT);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = run_load(&["--targets", t.to_str().unwrap()], LIMIT);
    assert!(r.stderr.contains("t.txt line 2:"), "{}", r.stderr);
}

#[test]
fn load_mix_round_robin_holds_across_shards_and_their_merge() {
    let srv = LogServer::start(None);
    let dir = TempDir::new("mix-shards");
    let urls: String = (0..10).map(|i| srv.url(&format!("/{i}")) + "\n").collect();
    let file = write(dir.path(), "urls.txt", urls.as_bytes());
    let mut reports = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let r = run_load(
            &[
                "-n",
                "1003",
                "-c",
                "4",
                "-t",
                "2",
                "-k",
                "--json",
                "--shard",
                &shard,
                "--urls",
                file.to_str().unwrap(),
            ],
            LIMIT,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let p = dir.path().join(format!("s{i}.json"));
        std::fs::write(&p, &r.stdout).unwrap();
        reports.push(p.to_str().unwrap().to_string());
    }
    let c = srv.counts();
    assert_eq!(c.values().sum::<u64>(), 1003);
    assert!(c.values().all(|&n| n == 100 || n == 101), "{c:?}");
    let mut args = vec!["merge"];
    args.extend(reports.iter().map(String::as_str));
    let m = run_load(&args, LIMIT);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let merged = done_by_label(&m.json());
    for (label, done) in merged {
        let path = &label[label.rfind('/').unwrap()..];
        assert_eq!(c[&format!("GET {path}")], done, "{label}");
    }
}

#[test]
fn load_mix_https_and_http_hosts_in_one_run() {
    let nginx = uring_tests::load::Nginx::start(true);
    let srv = LogServer::start(None);
    let dir = TempDir::new("mix-tls");
    let body = write(dir.path(), "b", b"payload");
    let file = write(
        dir.path(),
        "targets.txt",
        format!(
            "GET https://127.0.0.1:{p}/\n\nGET https://127.0.0.1:{p}/missing\n\nPOST {}\n@{}\n",
            srv.url("/plain"),
            body.display(),
            p = nginx.port
        )
        .as_bytes(),
    );
    let r = run_load(
        &[
            "-n",
            "600",
            "-c",
            "4",
            "-t",
            "2",
            "-k",
            "-K",
            "2",
            "--insecure",
            "--json",
            "--targets",
            file.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "done"]), 600, "{v}");
    assert_eq!(nginx.access_log_lines(), 400);
    assert_eq!(srv.counts()["POST /plain"], 200);
    assert!(srv.logged().iter().all(|l| l.body == b"payload"));
    assert_eq!(num(&v["targets"][0], &["status_codes", "2xx"]), 200, "{v}");
    assert_eq!(num(&v["targets"][1], &["status_codes", "4xx"]), 200, "{v}");
    assert_eq!(
        v["hosts"][0]["label"],
        format!("https://127.0.0.1:{}", nginx.port)
    );
}
