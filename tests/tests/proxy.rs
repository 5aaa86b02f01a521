//! uring-server as a buffering reverse proxy (issue 10), against real upstreams the tests
//! start: a scripted python HTTP/1.1 server (tests/scripts/proxy_upstream.py), python's
//! own http.server (HTTP/1.0, closes every connection), and uring-server itself. Every
//! failure status, the pool's reuse and retry, re-framing both ways, back-pressure, and
//! smuggling attempts that must never reach the upstream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_common::http::testkit::{OwnedResponse, ResponseStream};
use uring_tests::load::{ChildGuard, PythonServer, PY_HTTP_SERVER};
use uring_tests::reliability::rss_kib;
use uring_tests::server::{read_responses, ServerProc, TempDir};
use uring_tests::{free_port, wait_for_listener};

/// The scripted upstream; on TCP or on a unix socket.
struct Upstream {
    url: String,
    _child: ChildGuard,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/proxy_upstream.py")
}

impl Upstream {
    fn tcp() -> Upstream {
        let port = free_port();
        let child = Command::new("python3")
            .arg(script())
            .arg(port.to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 (scripts/install-test-deps.sh installs it)");
        let child = ChildGuard(child);
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
        );
        Upstream {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }

    fn unix(path: &std::path::Path) -> Upstream {
        let child = Command::new("python3")
            .arg(script())
            .arg(format!("unix:{}", path.display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        let child = ChildGuard(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(path).is_err() {
            assert!(Instant::now() < deadline, "unix upstream never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Upstream {
            url: format!("unix:{}", path.display()),
            _child: child,
        }
    }
}

fn proxy(upstream: &str, extra: &[&str]) -> ServerProc {
    let route = format!("/={upstream}");
    let mut args = vec!["--proxy", route.as_str()];
    args.extend_from_slice(extra);
    ServerProc::start(&args)
}

/// Send `raw` on `s` and read `n` responses of any framing (until EOF if `to_eof`).
fn responses(s: &mut TcpStream, raw: &[u8], n: usize) -> (Vec<OwnedResponse>, bool) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut rs = ResponseStream::new(64 * 1024);
    let mut tmp = [0u8; 65536];
    let mut eof = false;
    while rs.messages.len() < n && rs.error.is_none() {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => {
                eof = true;
                rs.finish();
                break;
            }
            Ok(k) => rs.feed(&tmp[..k]),
        }
    }
    assert_eq!(rs.error, None, "responses: {:?}", rs.messages);
    (rs.messages, eof)
}

fn get(addr: SocketAddr, path: &str) -> OwnedResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    let (mut rs, _) = responses(&mut s, raw.as_bytes(), 1);
    assert_eq!(rs.len(), 1, "no response to {path}");
    rs.remove(0)
}

fn text(r: &OwnedResponse) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

fn header<'a>(r: &'a OwnedResponse, name: &str) -> Option<&'a [u8]> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

#[test]
fn headers_are_rewritten_both_ways() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &[]);
    let mut s = TcpStream::connect(px.addr).unwrap();
    let raw = b"POST /echo?x=1 HTTP/1.1\r\nHost: site.example\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 9\r\nTE: trailers\r\nProxy-Authorization: p\r\nX-Forwarded-For: 6.6.6.6\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let (rs, _) = responses(&mut s, raw, 1);
    let r = &rs[0];
    let seen = text(r).to_ascii_lowercase();
    assert!(seen.starts_with("post /echo?x=1\n"), "{seen}");
    assert!(seen.contains("host: site.example\n"));
    for gone in [
        "x-secret",
        "keep-alive",
        "te:",
        "proxy-authorization",
        "6.6.6.6",
        "transfer-encoding",
        "connection:",
    ] {
        assert!(!seen.contains(gone), "{gone} reached the upstream: {seen}");
    }
    assert!(seen.contains("x-forwarded-for: 127.0.0.1\n"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: http\n"));
    assert!(seen.contains("x-forwarded-host: site.example\n"));
    assert!(seen.contains("via: 1.1 uring-server\n"));
    assert!(
        seen.contains("content-length: 5\n") && seen.ends_with("hello"),
        "{seen}"
    );
    // The upstream's hop-by-hop fields (Connection, what it names, Keep-Alive) stop here.
    assert_eq!(header(r, "x-hop"), None);
    assert_eq!(header(r, "keep-alive"), None);
    assert_eq!(header(r, "server"), Some(&b"uring-server"[..]));
    assert_eq!(header(r, "via"), Some(&b"1.1 uring-server"[..]));
}

#[test]
fn trusted_chain_is_appended() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &["--trust-forwarded"]);
    let mut s = TcpStream::connect(px.addr).unwrap();
    let raw = b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.1.1\r\nX-Forwarded-Proto: https\r\n\r\n";
    let seen = text(&responses(&mut s, raw, 1).0[0]).to_ascii_lowercase();
    assert!(
        seen.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: https\n") && !seen.contains("proto: http\n"));
}

#[test]
fn routes_longest_prefix_unix_upstreams_and_built_ins() {
    let dir = TempDir::new("proxy-unix");
    let sock = dir.path().join("app.sock");
    let api = Upstream::unix(&sock);
    let py = PythonServer::start(PY_HTTP_SERVER);
    let root = format!("/=http://127.0.0.1:{}", py.port);
    let api_route = format!("/api/={}", api.url);
    let px = ServerProc::start(&["--proxy", &root, "--proxy", &api_route]);
    // /api/ goes to the unix socket upstream (the scripted one echoes /api/*).
    let r = get(px.addr, "/api/thing");
    assert_eq!(r.status, 200);
    assert!(text(&r).starts_with("GET /api/thing\n"), "{}", text(&r));
    // Everything else to python's http.server (HTTP/1.0, closes each connection): its
    // directory listing, re-framed for our keep-alive client.
    let mut s = TcpStream::connect(px.addr).unwrap();
    let (rs, eof) = responses(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
        2,
    );
    assert!(!eof);
    assert_eq!((rs[0].status, rs[1].status), (200, 404));
    assert!(
        text(&rs[0]).contains("Directory listing"),
        "{}",
        text(&rs[0])
    );
    // Built-ins stay, unless a prefix longer than / names them.
    let r = get(px.addr, "/plaintext");
    assert_eq!(text(&r), "Hello, World!");
    let json_route = format!("/json={}", api.url);
    let px = ServerProc::start(&["--proxy", &root, "--proxy", &json_route]);
    assert!(text(&get(px.addr, "/json")).starts_with("GET /json\n"));
    assert_eq!(text(&get(px.addr, "/plaintext")), "Hello, World!");
}

#[test]
fn uring_server_as_the_upstream_under_load() {
    let dir = TempDir::new("proxy-root");
    std::fs::write(dir.path().join("f.txt"), b"file body").unwrap();
    let app = ServerProc::start(&["--root", dir.path().to_str().unwrap()]);
    let px = proxy(&format!("http://{}", app.addr), &["--upstream-conns", "4"]);
    let r = get(px.addr, "/f.txt");
    assert_eq!((r.status, text(&r).as_str()), (200, "file body"));
    let url = format!("http://{}/f.txt", px.addr);
    let run = uring_tests::load::run_load(
        &["-n", "3000", "-c", "20", "-t", "1", "-k", "--json", &url],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert_eq!(
        uring_tests::load::num(&v, &["requests", "succeeded"]),
        3000,
        "{v}"
    );
}

#[test]
fn pipelined_requests_keep_their_order_across_framings() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &[]);
    let mut s = TcpStream::connect(px.addr).unwrap();
    let raw = b"GET /echo?1 HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\n\r\nGET /close HTTP/1.1\r\nHost: a\r\n\r\nGET /echo?4 HTTP/1.1\r\nHost: a\r\n\r\n";
    let (rs, eof) = responses(&mut s, raw, 4);
    assert!(!eof);
    assert!(text(&rs[0]).starts_with("GET /echo?1\n"));
    // Chunked and close-delimited upstream bodies reach a keep-alive client chunked.
    assert_eq!(text(&rs[1]), "hello world");
    assert_eq!(text(&rs[2]), "closing body");
    assert_eq!(header(&rs[2], "transfer-encoding"), Some(&b"chunked"[..]));
    assert!(text(&rs[3]).starts_with("GET /echo?4\n"));
}

#[test]
fn head_and_http10_clients() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &[]);
    let mut s = TcpStream::connect(px.addr).unwrap();
    s.write_all(b"HEAD /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let rs = read_responses(&mut s, 2, &[0]);
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].body.is_empty());
    assert!(rs[0].header("Content-Length").is_some(), "{}", rs[0].head);
    assert!(rs[1].body.starts_with(b"GET /echo\n"));
    // An HTTP/1.0 client gets a close-delimited body where the length is unknown.
    let mut s = TcpStream::connect(px.addr).unwrap();
    s.write_all(b"GET /chunked HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_to_end(&mut all).unwrap();
    let all = String::from_utf8_lossy(&all);
    assert!(all.ends_with("\r\n\r\nhello world"), "{all}");
    assert!(all.contains("Connection: close\r\n"));
}

#[test]
fn expect_100_continue_is_answered_by_the_proxy() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &[]);
    let mut s = TcpStream::connect(px.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    let (rs, _) = responses(&mut s, b"abcd", 1);
    let seen = text(&rs[0]).to_ascii_lowercase();
    assert!(seen.ends_with("abcd") && !seen.contains("expect"), "{seen}");
}

#[test]
fn connect_refused_is_502_and_response_timeout_504() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let px = proxy(&dead, &[]);
    let r = get(px.addr, "/x");
    assert_eq!(r.status, 502);
    let up = Upstream::tcp();
    let px = proxy(&up.url, &["--upstream-timeout", "1s"]);
    let t = Instant::now();
    let r = get(px.addr, "/slow?s=5");
    assert_eq!(r.status, 504);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // The proxy is fine afterwards.
    assert_eq!(get(px.addr, "/conn").status, 200);
}

#[test]
fn full_pool_queues_then_503() {
    let up = Upstream::tcp();
    let px = proxy(
        &up.url,
        &["--upstream-conns", "1", "--upstream-connect-timeout", "1s"],
    );
    let addr = px.addr;
    let slow = std::thread::spawn(move || get(addr, "/slow?s=3").status);
    std::thread::sleep(Duration::from_millis(300));
    // The only connection is busy: this request waits in the queue, then gives up.
    let t = Instant::now();
    let r = get(px.addr, "/conn");
    assert_eq!(r.status, 503, "{}", text(&r));
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(slow.join().unwrap(), 200);
    // A queued request that gets the connection in time is served.
    let slow = std::thread::spawn(move || get(addr, "/slow?s=0.3").status);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(px.addr, "/conn").status, 200);
    assert_eq!(slow.join().unwrap(), 200);
}

#[test]
fn keep_alive_pool_reuses_and_retries_idempotent_requests_once() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &["--upstream-conns", "1"]);
    let first = text(&get(px.addr, "/conn"));
    // Reused: the same upstream connection answers again.
    assert_eq!(text(&get(px.addr, "/conn")), first);
    // /then-die makes the upstream drop the next request on this connection unanswered:
    // a GET is sent again, once, on a fresh connection.
    assert_eq!(get(px.addr, "/then-die").status, 200);
    let r = get(px.addr, "/conn");
    assert_eq!(r.status, 200);
    assert_ne!(text(&r), first, "the retry must use a new connection");
    // A POST is not retried: 502.
    assert_eq!(get(px.addr, "/then-die").status, 200);
    let mut s = TcpStream::connect(px.addr).unwrap();
    let (rs, _) = responses(
        &mut s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
        1,
    );
    assert_eq!(rs[0].status, 502);
}

#[test]
fn reset_mid_response_closes_the_client_connection() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &[]);
    let mut s = TcpStream::connect(px.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /reset HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    // EOF (or a reset) must come: the body promised 100 bytes and only 10 exist.
    let _ = s.read_to_end(&mut all);
    let all = String::from_utf8_lossy(&all);
    assert!(all.contains("Content-Length: 100\r\n"), "{all}");
    let body = &all[all.find("\r\n\r\n").unwrap() + 4..];
    assert!(body.len() < 100, "a truncated body must not look complete");
}

#[test]
fn large_bodies_both_ways_with_back_pressure() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &["--max-body-bytes", "8388608"]);
    // 4 MiB up (chunked by the client, re-framed by us).
    let body = vec![b'z'; 4 << 20];
    let mut s = TcpStream::connect(px.addr).unwrap();
    let mut raw = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let (rs, _) = responses(&mut s, &raw, 1);
    assert!(text(&rs[0]).ends_with(&"z".repeat(1000)));
    assert_eq!(
        rs[0].body.len() - rs[0].body.iter().rposition(|&b| b != b'z').unwrap() - 1,
        4 << 20
    );
    // 64 MiB down to a client that does not read for a while: the proxy holds a bounded
    // amount, not the whole body.
    let before = rss_kib(px.pid());
    let mut s = TcpStream::connect(px.addr).unwrap();
    let n: usize = 64 << 20;
    s.write_all(format!("GET /big?n={n} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let held = rss_kib(px.pid()).saturating_sub(before);
    assert!(
        held < 16 * 1024,
        "proxy grew by {held} KiB holding a 64 MiB response"
    );
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let resp = read_responses(&mut s, 1, &[]).remove(0);
    assert_eq!(resp.body.len(), n);
    let pattern: Vec<u8> = (0..=255u8).collect();
    assert!(resp.body.chunks(256).all(|c| c == &pattern[..c.len()]));
}

/// Smuggling attempts sent to the proxy: the proxy refuses them (400) and closes, and the
/// upstream sees only the requests we meant (its count says so).
#[test]
fn smuggling_attempts_never_reach_the_upstream() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &[]);
    let attacks: [&[u8]; 4] = [
        // CL.TE
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        // TE.CL
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1e\r\nGET /smuggled HTTP/1.1\r\nX: \r\n0\r\n\r\n",
        // duplicate CL
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        // obfuscated TE
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    let before: u64 = text(&get(px.addr, "/count")).parse().unwrap();
    for a in attacks {
        let mut s = TcpStream::connect(px.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(a).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let all = String::from_utf8_lossy(&all);
        assert!(
            all.starts_with("HTTP/1.1 400") || all.starts_with("HTTP/1.1 501"),
            "{all}"
        );
        assert_eq!(all.matches("HTTP/1.1").count(), 1, "{all}");
    }
    let after: u64 = text(&get(px.addr, "/count")).parse().unwrap();
    // Exactly the /count request before this one reached it.
    assert_eq!(after, before + 1);
}

/// An HTTP/1.0 keep-alive client must be told the connection stays open after our own
/// error answer too (without `Connection: keep-alive` it waits for a close that never
/// comes).
#[test]
fn error_answers_keep_an_http10_keep_alive_client() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let px = proxy(&dead, &[]);
    let mut s = TcpStream::connect(px.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    s.write_all(req).unwrap();
    let r = read_responses(&mut s, 1, &[]).remove(0);
    assert_eq!(r.status, 502);
    assert_eq!(
        r.header("Connection").as_deref(),
        Some("keep-alive"),
        "{}",
        r.head
    );
    s.write_all(req).unwrap();
    assert_eq!(read_responses(&mut s, 1, &[]).remove(0).status, 502);
}

// ---- HTTP/2 clients (issue 21: every route over HTTP/2, the proxy's included) ----

/// curl with HTTP/2 prior knowledge (`--http2-prior-knowledge` fails unless the server
/// speaks HTTP/2): status line, stdout, stderr.
fn curl_h2(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-m", "30", "--http2-prior-knowledge"])
        .args(args)
        .output()
        .expect("curl (scripts/install-test-deps.sh installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Stop a server with SIGTERM (its access log is flushed) and wait for it.
fn stop(srv: &mut uring_tests::reliability::TestServer) {
    srv.guard.signal(libc::SIGTERM);
    assert!(
        srv.guard.wait_timeout(Duration::from_secs(15)).is_some(),
        "the server did not stop"
    );
}

#[test]
fn http2_clients_are_proxied_like_http1_ones() {
    let up = Upstream::tcp();
    let dir = TempDir::new("proxy-h2");
    let log = dir.path().join("access.log");
    let route = format!("/={}", up.url);
    let mut px = uring_tests::reliability::TestServer::start(&[
        "--no-pin",
        "--proxy",
        &route,
        "--access-log",
        log.to_str().unwrap(),
        "--max-body-bytes",
        "1000",
    ]);
    let base = format!("http://{}", px.addr);
    // The request: HTTP/1.1 upstream, the authority as Host, the forwarding fields.
    let (ok, out, err) = curl_h2(&[
        "-H",
        "X-App: yes",
        "-b",
        "a=1; b=2",
        &format!("{base}/echo?x=1"),
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("GET /echo?x=1\n"), "{out}");
    for want in [
        format!("Host: {}", px.addr),
        "X-App: yes".to_string(),
        "Cookie: a=1; b=2".to_string(),
        "X-Forwarded-Proto: http".to_string(),
        "Via: 1.1 uring-server".to_string(),
    ] {
        // HTTP/2 field names arrive lower-case and go on as they came.
        assert!(
            out.lines().any(|l| l.eq_ignore_ascii_case(&want)),
            "{want:?} not in {out}"
        );
    }
    // A body up, re-framed with its length; a chunked body down.
    let (ok, out, err) = curl_h2(&["--data-binary", "hello", &format!("{base}/echo")]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Content-Length: 5") && out.ends_with("hello"),
        "{out}"
    );
    let (ok, out, err) = curl_h2(&["-i", &format!("{base}/chunked")]);
    assert!(ok, "{err}");
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(out.ends_with("\r\n\r\nhello world"), "{out}");
    assert!(
        !out.to_ascii_lowercase().contains("transfer-encoding"),
        "{out}"
    );
    // The upstream's own status passes through; HEAD has no body.
    let (ok, out, _) = curl_h2(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/nothing"),
    ]);
    assert!(ok && out == "404", "{out}");
    let (ok, out, _) = curl_h2(&["-I", &format!("{base}/echo")]);
    assert!(ok && out.starts_with("HTTP/2 200"), "{out}");
    // A body over the limit: 413 from us, logged with its request line.
    let big = "b".repeat(2000);
    let (ok, out, _) = curl_h2(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-binary",
        &big,
        &format!("{base}/echo"),
    ]);
    assert!(ok && out == "413", "{out}");
    // 8 MiB down, larger than every window: exact, in order.
    let n = 8 << 20;
    let file = dir.path().join("big");
    let (ok, _, err) = curl_h2(&["-o", file.to_str().unwrap(), &format!("{base}/big?n={n}")]);
    assert!(ok, "{err}");
    let got = std::fs::read(&file).unwrap();
    assert_eq!(got.len(), n);
    let pattern: Vec<u8> = (0..=255u8).collect();
    assert!(got.chunks(256).all(|c| c == &pattern[..c.len()]));
    stop(&mut px);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(
        lines[5].contains("\"POST /echo HTTP/2.0\" 413 0 "),
        "{}",
        lines[5]
    );
    let upstream = up.url.trim_start_matches("http://");
    for l in lines.iter().filter(|l| !l.contains(" 413 ")) {
        assert!(l.contains(" HTTP/2.0\" "), "{l}");
        assert!(l.contains(&format!("ua=\"{upstream}\"")), "{l}");
    }
    assert!(
        lines[0].contains("\"GET /echo?x=1 HTTP/2.0\" 200 "),
        "{}",
        lines[0]
    );
    assert!(
        lines[3].contains("\"GET /nothing HTTP/2.0\" 404 "),
        "{}",
        lines[3]
    );
}

#[test]
fn h2load_through_the_proxy_is_exact() {
    let dir = TempDir::new("proxy-h2load");
    std::fs::write(dir.path().join("f.txt"), b"file body").unwrap();
    let app_log = dir.path().join("app.log");
    let mut app = uring_tests::reliability::TestServer::start(&[
        "--no-pin",
        "--root",
        dir.path().to_str().unwrap(),
        "--access-log",
        app_log.to_str().unwrap(),
    ]);
    let px_log = dir.path().join("proxy.log");
    let route = format!("/=http://{}", app.addr);
    let mut px = uring_tests::reliability::TestServer::start(&[
        "--no-pin",
        "--proxy",
        &route,
        "--upstream-conns",
        "8",
        "--access-log",
        px_log.to_str().unwrap(),
    ]);
    let out = Command::new("h2load")
        .args(["-n", "5000", "-c", "4", "-m", "16"])
        .arg(format!("http://{}/f.txt", px.addr))
        .output()
        .expect("h2load (scripts/install-test-deps.sh installs nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("requests: 5000 total, 5000 started, 5000 done, 5000 succeeded, 0 failed"),
        "{text}"
    );
    assert!(text.contains("status codes: 5000 2xx"), "{text}");
    stop(&mut px);
    stop(&mut app);
    let count = |p: &std::path::Path, needle: &str| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };
    assert_eq!(count(&px_log, "\"GET /f.txt HTTP/2.0\" 200 9 "), 5000);
    assert_eq!(count(&app_log, "\"GET /f.txt HTTP/1.1\" 200 9 "), 5000);
}

#[test]
fn http2_proxy_failures_end_only_their_stream() {
    let up = Upstream::tcp();
    let px = proxy(&up.url, &[]);
    let base = format!("http://{}", px.addr);
    // One connection, three concurrent streams: a response cut mid-body (reset with
    // INTERNAL_ERROR), two good ones: the cut ends only its stream. (nghttp, not curl:
    // curl 7.88 fails every later transfer it tries to put on a prior-knowledge
    // connection, against nginx too.)
    let text = nghttp_stats(&[
        format!("{base}/reset"),
        format!("{base}/echo?1"),
        format!("{base}/echo?2"),
    ]);
    assert!(text.contains("total=3, processed=2"), "{text}");
    for path in ["/echo?1", "/echo?2"] {
        assert!(
            text.lines()
                .any(|l| l.contains(" 200 ") && l.ends_with(path)),
            "{path} not answered 200: {text}"
        );
    }
    // No upstream: 502 on each stream, on one connection.
    let closed = free_port();
    let px = proxy(&format!("http://127.0.0.1:{closed}"), &[]);
    let text = nghttp_stats(&[
        format!("http://{}/a", px.addr),
        format!("http://{}/b", px.addr),
    ]);
    assert!(
        text.contains("total=2, processed=2") || !text.contains("processed"),
        "{text}"
    );
    for path in ["/a", "/b"] {
        assert!(
            text.lines()
                .any(|l| l.contains(" 502 ") && l.ends_with(path)),
            "{path} not answered 502: {text}"
        );
    }
}

/// `nghttp -ns URL...`: the URLs as concurrent streams on one connection; its output
/// (the statistics table has a line per answered stream: code, size, path).
fn nghttp_stats(urls: &[String]) -> String {
    let out = Command::new("nghttp")
        .args(["-ns"])
        .args(urls)
        .output()
        .expect("nghttp (scripts/install-test-deps.sh installs nghttp2-client)");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}
