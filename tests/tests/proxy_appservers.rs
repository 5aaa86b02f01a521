//! The uwsgi and FastCGI codecs (`uring-server/src/proxy/{cgi,uwsgi,fastcgi}.rs`) against
//! the real programs, before the proxy uses them:
//! - nginx (`uwsgi_pass`, `fastcgi_pass` with Debian's `uwsgi_params` / `fastcgi_params`)
//!   in front of a small Python listener that hands back the bytes nginx sent: the same
//!   requests through our codec give the same variables in the same order, and the same
//!   record layout;
//! - uWSGI (Debian's, python3 plugin) with a WSGI app that echoes its environ and body:
//!   every variable of our packet arrives, bodies of 0 B and 1 MiB arrive exact;
//! - fcgiwrap with a CGI shell script: GET, POST body, `Status: 404`, STDERR, two requests
//!   on one kept connection; then behind uring-server's `fastcgi://` upstream (GET, POST,
//!   a 0-byte body, 404, HEAD, `--fastcgi-script`, STDERR in the error log, one kept
//!   connection for all of them and its reuse in the metrics, 504, 502).
//!
//! `scripts/install-test-deps.sh` installs nginx, uwsgi-core, uwsgi-plugin-python3 and
//! fcgiwrap.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use uring_common::http::testkit::ResponseStream;
use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};
use uring_server::proxy::cgi::{CgiContext, Script};
use uring_server::proxy::{fastcgi, uwsgi};
use uring_tests::appservers::Uwsgi;
use uring_tests::load::{num, run_load, ChildGuard, Nginx, PythonServer, TempDir};
use uring_tests::server::exchange;
use uring_tests::{free_port, wait_for_listener};

const DOCROOT: &str = "/srv/appserv-test";
const SERVER_NAME: &str = "localhost";

/// Hands back what the front sent, as the response body: a uwsgi packet and its body, or
/// every FastCGI record up to the empty STDIN.
const CAPTURE_PY: &str = r#"
import socket, struct, sys, threading
MODE = "@MODE@"
def read_exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b
def uwsgi(c):
    h = read_exact(c, 4)
    vs = read_exact(c, struct.unpack("<H", h[1:3])[0])
    i, cl = 0, 0
    while i < len(vs):
        n = struct.unpack("<H", vs[i:i+2])[0]; k = vs[i+2:i+2+n]; i += 2 + n
        m = struct.unpack("<H", vs[i:i+2])[0]; v = vs[i+2:i+2+m]; i += 2 + m
        if k == b"CONTENT_LENGTH" and v:
            cl = int(v)
    raw = h + vs + read_exact(c, cl)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(raw) + raw)
def fastcgi(c):
    raw = b""
    while True:
        h = read_exact(c, 8)
        n = struct.unpack(">H", h[4:6])[0]
        raw += h + read_exact(c, n + h[6])
        if h[1] == 5 and n == 0:
            break
    out = b"Content-Length: %d\r\n\r\n" % len(raw) + raw
    rec = b""
    for i in range(0, len(out), 65528):
        p = out[i:i+65528]
        pad = (8 - len(p) % 8) % 8
        rec += struct.pack(">BBHHBB", 1, 6, 1, len(p), pad, 0) + p + b"\0" * pad
    rec += struct.pack(">BBHHBB", 1, 6, 1, 0, 0, 0)
    rec += struct.pack(">BBHHBB", 1, 3, 1, 8, 0, 0) + struct.pack(">IB3x", 0, 0)
    c.sendall(rec)
def handle(c):
    try:
        (uwsgi if MODE == "uwsgi" else fastcgi)(c)
    except EOFError:
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// nginx in front of an app server with `location` directives (Debian's params included).
fn nginx_front(location: &str) -> Nginx {
    Nginx::with_http("nginx-appserv", |_, port| {
        format!(
            "access_log off;
    server {{
        listen 127.0.0.1:{port};
        server_name {SERVER_NAME};
        root {DOCROOT};
        location / {{ {location} }}
    }}"
        )
    })
}

/// Requests both fronts get. No duplicate fields: nginx 1.22 sends one variable per
/// duplicate, we join them as nginx does since 1.23 (unit-tested in cgi.rs).
const REQUESTS: &[&[u8]] = &[
    b"GET /app/%7Euser/./x/../y%20z?a=1&b=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\nX-Custom-Thing: v w\r\nConnection: close\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello=world",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"GET /a%2Fb//c/./%2e/d%3Fe/. HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    b"GET http://Other.Example/abs/p?q HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    b"GET /auth/ HTTP/1.1\r\nHost: example.com\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nCookie: a=1; b=2\r\nConnection: close\r\n\r\n",
    // A 0-byte body: nginx passes `$content_length`, the client's "0".
    b"POST /empty HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
];

fn ctx(front: SocketAddr) -> CgiContext<'static> {
    CgiContext {
        // REMOTE_PORT is the one value that differs by nature; it is left out below.
        peer: "127.0.0.1:1".parse().unwrap(),
        local: front,
        server_name: SERVER_NAME.as_bytes(),
        tls: false,
        document_root: DOCROOT.as_bytes(),
    }
}

/// Our bytes for `raw` (head and body), through `build`.
fn ours(
    raw: &[u8],
    build: &dyn Fn(&uring_common::http::RequestHead<'_, '_>, &[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut storage = new_header_storage();
    let Ok(Parsed::Complete(head)) = parse_request(raw, &mut storage, &Limits::default()) else {
        panic!("parse {}", String::from_utf8_lossy(raw));
    };
    build(&head, &raw[head.head_len..])
}

type Vars = Vec<(String, String)>;

fn owned(vars: &[(&[u8], &[u8])], leave_out: &[&str]) -> Vars {
    vars.iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .filter(|(k, _)| !leave_out.contains(&k.as_str()))
        .collect()
}

#[test]
fn uwsgi_packet_matches_nginx_uwsgi_pass() {
    let capture = PythonServer::start(&CAPTURE_PY.replace("@MODE@", "uwsgi"));
    let front = nginx_front(&format!(
        "include /etc/nginx/uwsgi_params; uwsgi_pass 127.0.0.1:{};",
        capture.port
    ));
    for raw in REQUESTS {
        let theirs = exchange(front.addr(), raw);
        assert_eq!(theirs.status, 200, "{}", theirs.head);
        let mine = ours(raw, &|head, body| {
            let mut out = Vec::new();
            uwsgi::write_request(head, &ctx(front.addr()), body, &mut out).unwrap();
            out
        });
        let (t, m) = (
            uwsgi::parse_packet(&theirs.body).expect("nginx's packet"),
            uwsgi::parse_packet(&mine).unwrap(),
        );
        assert_eq!((t.modifier1, t.modifier2), (m.modifier1, m.modifier2));
        assert_eq!(
            owned(&m.vars, &["REMOTE_PORT"]),
            owned(&t.vars, &["REMOTE_PORT"]),
            "request {}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(&mine[m.len..], &theirs.body[t.len..], "body");
    }
}

#[test]
fn fastcgi_records_match_nginx_fastcgi_pass() {
    let capture = PythonServer::start(&CAPTURE_PY.replace("@MODE@", "fastcgi"));
    let front = nginx_front(&format!(
        // fastcgi.conf's list, with the HTTP_HOST of Debian's fastcgi_params (which
        // fastcgi.conf lacks).
        "fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name; \
         include /etc/nginx/fastcgi_params; fastcgi_keep_conn on; fastcgi_pass 127.0.0.1:{};",
        capture.port
    ));
    for raw in REQUESTS {
        let theirs = exchange(front.addr(), raw);
        assert_eq!(theirs.status, 200, "{}", theirs.head);
        let mine = ours(raw, &|head, body| {
            let mut out = Vec::new();
            let script = Script::Root(DOCROOT.as_bytes());
            fastcgi::write_request(head, &ctx(front.addr()), script, body, &mut out).unwrap();
            out
        });
        let (t, m) = (
            fastcgi::parse_records(&theirs.body).expect("nginx's records"),
            fastcgi::parse_records(&mine).unwrap(),
        );
        // Record by record: type, id, and the content, PARAMS compared as variables
        // (SERVER_SOFTWARE names the front).
        assert_eq!(t.len(), m.len(), "records");
        for ((tk, tid, tc), (mk, mid, mc)) in t.iter().zip(&m) {
            assert_eq!((tk, tid), (mk, mid));
            if *tk == fastcgi::PARAMS {
                let leave_out = ["REMOTE_PORT", "SERVER_SOFTWARE"];
                assert_eq!(
                    owned(&fastcgi::parse_params(mc).unwrap(), &leave_out),
                    owned(&fastcgi::parse_params(tc).unwrap(), &leave_out),
                    "request {}",
                    String::from_utf8_lossy(raw)
                );
            } else {
                assert_eq!(tc, mc, "record type {tk}");
            }
        }
        // Padding to 8, as nginx pads.
        assert_eq!(theirs.body.len() % 8, 0);
        assert_eq!(mine.len() % 8, 0);
    }
}

/// Echoes its environ (str values) and then, after a newline, the body.
const ECHO_APP: &str = r#"
import json
def app(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n) if n else b""
    env = {k: v for k, v in environ.items() if isinstance(v, str)}
    out = json.dumps(env).encode() + b"\n" + body
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(out)))])
    return [out]
"#;

/// Sends `bytes`, reads until the peer closes, parses one HTTP response.
fn http_over(addr: SocketAddr, bytes: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(bytes).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let mut r = ResponseStream::new(64 * 1024);
    r.feed(&all);
    r.finish();
    assert_eq!(r.error, None, "{}", String::from_utf8_lossy(&all));
    let m = r.messages.remove(0);
    (m.status, m.body)
}

#[test]
fn real_uwsgi_receives_every_variable_and_exact_bodies() {
    let app = Uwsgi::start(ECHO_APP, "--uwsgi-socket", &["--buffer-size", "32768"]);
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for body in [&b""[..], &big] {
        let mut raw = format!(
            "POST /p/%7Eq/../r?x=1&y=%2F HTTP/1.1\r\nHost: app.example:8443\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nX-Trace: abc\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        let local = SocketAddr::from(([127, 0, 0, 1], 8443));
        let mut c = ctx(local);
        c.tls = true;
        let packet = ours(&raw, &|head, body| {
            let mut out = Vec::new();
            uwsgi::write_request(head, &c, body, &mut out).unwrap();
            out
        });
        let sent = uwsgi::parse_packet(&packet).unwrap();
        let (status, reply) = http_over(app.addr, &packet);
        assert_eq!(status, 200);
        let nl = reply.iter().position(|&b| b == b'\n').expect("json line");
        let environ: serde_json::Value = serde_json::from_slice(&reply[..nl]).unwrap();
        for (k, v) in owned(&sent.vars, &[]) {
            assert_eq!(environ[&k].as_str(), Some(v.as_str()), "{k} in {environ}");
        }
        assert_eq!(environ["PATH_INFO"], "/p/r");
        assert_eq!(environ["HTTP_COOKIE"], "a=1; b=2");
        assert_eq!(environ["HTTPS"], "on");
        assert_eq!(environ["HTTP_HOST"], "app.example:8443");
        assert_eq!(environ["wsgi.url_scheme"], "https");
        assert_eq!(reply[nl + 1..].len(), body.len());
        assert!(reply[nl + 1..] == *body, "body differs");
    }
}

/// The CGI script fcgiwrap runs: `?404` answers 404, `?stderr` writes to stderr, `?die`
/// kills fcgiwrap, `?slow` takes 3 s, a body is echoed, and the environment the script saw
/// is listed.
const CGI_SCRIPT: &str = r#"#!/bin/sh
case "$QUERY_STRING" in
  404) printf 'Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such thing\n'; exit 0 ;;
  stderr) echo "script says: oops" >&2 ;;
  die) kill -9 "$PPID"; exit 1 ;;
  slow) sleep 3 ;;
esac
printf 'Content-Type: text/plain\r\nX-Script: yes\r\n\r\n'
printf 'method=%s\nquery=%s\nscript=%s\nlength=%s\nhost=%s\n' "$REQUEST_METHOD" "$QUERY_STRING" "$SCRIPT_NAME" "$CONTENT_LENGTH" "$HTTP_HOST"
if [ -n "$CONTENT_LENGTH" ] && [ "$CONTENT_LENGTH" -gt 0 ]; then
  printf 'body='; head -c "$CONTENT_LENGTH"; printf '\n'
fi
"#;

struct Fcgiwrap {
    addr: SocketAddr,
    dir: TempDir,
    _child: ChildGuard,
}

impl Fcgiwrap {
    fn start() -> Fcgiwrap {
        let dir = TempDir::new("fcgiwrap");
        let script = dir.path().join("echo.cgi");
        std::fs::write(&script, CGI_SCRIPT).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let exe = if Path::new("/usr/sbin/fcgiwrap").exists() {
            "/usr/sbin/fcgiwrap"
        } else {
            "fcgiwrap"
        };
        // -f: the script's stderr goes over FastCGI (STDERR records), not to our stderr.
        let child = Command::new(exe)
            .args(["-f", "-c", "1", "-s", &format!("tcp:{addr}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fcgiwrap (install it: scripts/install-test-deps.sh)");
        let child = ChildGuard(child);
        wait_for_listener(addr, Duration::from_secs(10));
        Fcgiwrap {
            addr,
            dir,
            _child: child,
        }
    }
}

/// One request's records over `s`, decoded: (status, body, stderr, end, reusable).
fn fastcgi_exchange(
    s: &mut TcpStream,
    root: &Path,
    raw: &[u8],
) -> (u16, Vec<u8>, Vec<u8>, fastcgi::EndRequest, bool) {
    let local = s.peer_addr().unwrap();
    let head_only = raw.starts_with(b"HEAD ");
    let records = ours(raw, &|head, body| {
        let mut out = Vec::new();
        let root = root.as_os_str().as_encoded_bytes();
        fastcgi::write_request(head, &ctx(local), Script::Root(root), body, &mut out).unwrap();
        out
    });
    s.write_all(&records).unwrap();
    let mut dec = fastcgi::ResponseDecoder::new(head_only);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut buf).unwrap();
        let progress = if n == 0 {
            dec.on_eof()
        } else {
            dec.feed(&buf[..n], &mut out, &mut err)
        };
        match progress {
            Ok(fastcgi::Progress::Done(end)) => break end,
            Ok(fastcgi::Progress::Pending) => {}
            Err(e) => panic!("{e}; stderr {}", String::from_utf8_lossy(&err)),
        }
    };
    let mut r = ResponseStream::new(64 * 1024);
    r.feed(&out);
    r.finish();
    assert_eq!(r.error, None, "{}", String::from_utf8_lossy(&out));
    let m = r.messages.remove(0);
    (m.status, m.body, err, end, dec.reusable())
}

#[test]
fn fcgiwrap_runs_a_cgi_script_through_our_records() {
    let fw = Fcgiwrap::start();
    let root = fw.dir.path().to_path_buf();
    let mut s = TcpStream::connect(fw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();

    let (status, body, err, end, reusable) = fastcgi_exchange(
        &mut s,
        &root,
        b"GET /echo.cgi?a=b HTTP/1.1\r\nHost: site.example\r\n\r\n",
    );
    assert_eq!((status, end.app_status, end.protocol_status), (200, 0, 0));
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("method=GET\nquery=a=b\nscript=/echo.cgi\nlength=\nhost=site.example\n"),
        "{text}"
    );
    assert!(err.is_empty());
    assert!(reusable, "fcgiwrap honours FCGI_KEEP_CONN");

    // The second request on the same connection.
    let (status, body, _, _, _) = fastcgi_exchange(
        &mut s,
        &root,
        b"POST /echo.cgi HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("method=POST\n") && text.contains("length=11\n"),
        "{text}"
    );
    assert!(text.ends_with("body=hello world\n"), "{text}");

    let (status, body, _, _, _) = fastcgi_exchange(
        &mut s,
        &root,
        b"GET /echo.cgi?404 HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!((status, body.as_slice()), (404, &b"no such thing\n"[..]));

    let (status, _, err, _, reusable) = fastcgi_exchange(
        &mut s,
        &root,
        b"GET /echo.cgi?stderr HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!(status, 200);
    // fcgiwrap passes the line on with "\n" or "\r\n" from run to run.
    assert_eq!(
        String::from_utf8_lossy(&err).trim_end(),
        "script says: oops"
    );
    assert!(reusable, "four requests, one connection");
}

/// The seed's clog against uWSGI's own HTTP socket, as the gunicorn clog test does it
/// (tests/proxy_gunicorn.rs): `--processes 2`, 40 clients at 1 byte/s both ways, uring-load
/// sending normal requests for 10 s; then the same uWSGI app on a uwsgi socket behind
/// uring-server's `uwsgi://` upstream, where nothing may fail.
#[test]
fn the_clog_test_for_uwsgi() {
    let app = Uwsgi::start(
        uring_tests::clog::CLOG_APP,
        "--http-socket",
        // uWSGI's HTTP socket closes after each response without saying so (an HTTP/1.1
        // response, no Connection: close): the header lets keep-alive clients know.
        &[
            "--processes",
            "2",
            "--master",
            "--listen",
            "1024",
            "--add-header",
            "Connection: close",
        ],
    );
    // Without slow clients every request gets through: what fails below is the clog.
    let url = format!("http://{}/", app.addr);
    let calm = run_load(
        &[
            "-n", "300", "-c", "4", "-t", "1", "-k", "-T", "5s", "--json", &url,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(num(&calm.json(), &["requests", "succeeded"]), 300);
    let direct = uring_tests::clog::clog(app.addr, 40);
    println!("clog test: uWSGI --http-socket --processes 2, 40 clients at 1 byte/s both ways, uring-load -c 4 for 10 s (-T 5s)");
    println!(
        "  direct:               {:>6} succeeded, {:>4} failed or timed out",
        direct.0, direct.1
    );
    assert!(
        direct.1 > 0,
        "directly, uWSGI's sync workers should clog: {direct:?}"
    );
    drop(app);
    let app = Uwsgi::start(
        uring_tests::clog::CLOG_APP,
        "--uwsgi-socket",
        &["--processes", "2", "--master", "--listen", "1024"],
    );
    let route = format!("/=uwsgi://{}", app.addr);
    let px = uring_tests::server::ServerProc::start(&["--proxy", &route]);
    let behind = uring_tests::clog::clog(px.addr, 40);
    println!(
        "  through uring-server: {:>6} succeeded, {:>4} failed or timed out",
        behind.0, behind.1
    );
    assert_eq!(
        behind.1, 0,
        "through uring-server nothing may fail: {behind:?}"
    );
    assert!(behind.0 > 10 * direct.0.max(1), "{direct:?} vs {behind:?}");
}

/// Dies or dawdles by path: for the proxy's 502 and 504.
const FAILING_APP: &str = r#"
import os, time
def app(environ, start_response):
    if environ["PATH_INFO"] == "/bad/die":
        os._exit(1)
    time.sleep(3)
    start_response("200 OK", [("Content-Length", "4")])
    return [b"late"]
"#;

/// The environ's JSON and the body after it, from ECHO_APP's answer.
fn environ_and_body(body: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let nl = body.iter().position(|&b| b == b'\n').expect("environ line");
    (
        serde_json::from_slice(&body[..nl]).unwrap(),
        body[nl + 1..].to_vec(),
    )
}

#[test]
fn uring_server_fronts_a_real_uwsgi_over_uwsgi() {
    let echo = Uwsgi::start(ECHO_APP, "--uwsgi-socket", &["--buffer-size", "32768"]);
    let failing = Uwsgi::start(FAILING_APP, "--uwsgi-socket", &["--master"]);
    let root = format!("/=uwsgi://{}", echo.addr);
    let bad = format!("/bad/=uwsgi://{}", failing.addr);
    let px = uring_tests::server::ServerProc::start(&[
        "--proxy",
        &root,
        "--proxy",
        &bad,
        "--upstream-timeout",
        "1s",
    ]);

    let r = exchange(
        px.addr,
        b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: app.example\r\nX-Trace: abc\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.head);
    let (env, body) = environ_and_body(&r.body);
    assert_eq!(env["REQUEST_METHOD"], "GET");
    assert_eq!(env["REQUEST_URI"], "/a/b?x=1&y=2");
    assert_eq!(env["PATH_INFO"], "/a/b");
    assert_eq!(env["QUERY_STRING"], "x=1&y=2");
    assert_eq!(env["HTTP_HOST"], "app.example");
    assert_eq!(env["HTTP_X_TRACE"], "abc");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], px.addr.port().to_string());
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert!(env["REMOTE_PORT"].as_str().unwrap().parse::<u16>().unwrap() > 0);
    assert!(body.is_empty());

    // Bodies of 0 B and 1 MiB, exact, as POSTs on one client connection: uWSGI closes
    // after each response, so each goes on a fresh upstream connection.
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let mut s = px.connect();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    for body in [&b""[..], &big, &b""[..]] {
        let mut raw = format!(
            "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        s.write_all(&raw).unwrap();
        let r = uring_tests::server::read_responses(&mut s, 1, &[]).remove(0);
        assert_eq!(r.status, 200, "{}", r.head);
        let (env, echoed) = environ_and_body(&r.body);
        assert_eq!(env["REQUEST_METHOD"], "POST");
        // "0" for `Content-Length: 0`, as nginx sends it (compared above).
        assert_eq!(env["CONTENT_LENGTH"], body.len().to_string());
        assert_eq!(env["CONTENT_TYPE"], "application/octet-stream");
        assert!(
            echoed == body,
            "{} bytes echoed of {}",
            echoed.len(),
            body.len()
        );
    }

    let r = exchange(px.addr, b"GET /bad/die HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 502, "an app that dies: {}", r.head);
    let r = exchange(px.addr, b"GET /bad/slow HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        r.status, 504,
        "an app slower than --upstream-timeout: {}",
        r.head
    );
    // A path the uwsgi packet cannot carry is the client's 400, never sent upstream.
    let r = exchange(px.addr, b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 400, "{}", r.head);
}

/// Sends `raw` on `s` and reads one response (chunked or not).
fn ask(s: &mut TcpStream, raw: &[u8]) -> uring_common::http::testkit::OwnedResponse {
    s.write_all(raw).unwrap();
    let mut rs = ResponseStream::new(64 * 1024);
    let mut buf = [0u8; 65536];
    while rs.messages.is_empty() && rs.error.is_none() {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a response");
        rs.feed(&buf[..n]);
    }
    assert_eq!(rs.error, None);
    rs.messages.remove(0)
}

/// The local ports of the established TCP connections to `port` on this host, from
/// /proc/net/tcp (the client side of each: who connected to the app server).
fn connections_to(port: u16) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut ports: Vec<u16> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex_port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
            (f.get(3) == Some(&"01") && hex_port(f.get(2)?)? == port)
                .then(|| hex_port(f[1]))
                .flatten()
        })
        .collect();
    ports.sort_unstable();
    ports
}

/// `uring_server_upstream_reused_total` summed over routes and upstreams.
fn reused_total(metrics: SocketAddr) -> u64 {
    let mut s = TcpStream::connect(metrics).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with("uring_server_upstream_reused_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn header(r: &uring_common::http::testkit::OwnedResponse, name: &str) -> Option<String> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

#[test]
fn uring_server_fronts_fcgiwrap_over_fastcgi() {
    let fw = Fcgiwrap::start();
    let dir = fw.dir.path().to_path_buf();
    let log_path = dir.join("server.err");
    let log = std::fs::File::create(&log_path).unwrap();
    let url = format!("fastcgi://{}", fw.addr);
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let metrics_arg = metrics.to_string();
    let px = uring_tests::server::ServerProc::start_with(
        &[
            "--metrics",
            &metrics_arg,
            "--proxy",
            &format!("/={url}"),
            "--fastcgi-root",
            &format!("/={}", dir.display()),
            "--proxy",
            &format!("/fixed/={url}"),
            "--fastcgi-script",
            &format!("/fixed/={}/echo.cgi", dir.display()),
            "--upstream-timeout",
            "1s",
        ],
        |cmd| {
            cmd.stderr(log.try_clone().unwrap());
        },
    );
    let mut s = px.connect();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();

    let r = ask(
        &mut s,
        b"GET /echo.cgi?a=b HTTP/1.1\r\nHost: site.example\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(header(&r, "x-script").as_deref(), Some("yes"));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "method=GET\nquery=a=b\nscript=/echo.cgi\nlength=\nhost=site.example\n"
    );
    // One upstream connection, kept (FCGI_KEEP_CONN) for every request below.
    let kept = connections_to(fw.addr.port());
    assert_eq!(kept.len(), 1, "{kept:?}");

    // POST bodies arrive whole; a 0-byte one has CONTENT_LENGTH "0", as nginx sends it
    // (fastcgi_records_match_nginx_fastcgi_pass compares).
    let r = ask(
        &mut s,
        b"POST /echo.cgi HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    );
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        text.contains("method=POST\n") && text.ends_with("length=11\nhost=h\nbody=hello world\n"),
        "{text}"
    );
    let r = ask(
        &mut s,
        b"POST /echo.cgi HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        String::from_utf8_lossy(&r.body).contains("length=0\n"),
        "{r:?}"
    );

    let r = ask(&mut s, b"GET /echo.cgi?404 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (404, &b"no such thing\n"[..])
    );

    s.write_all(b"HEAD /echo.cgi HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let r = uring_tests::server::read_responses(&mut s, 1, &[0]).remove(0);
    assert_eq!(r.status, 200, "{}", r.head);

    // --fastcgi-script: one script for every path of the route.
    let r = ask(
        &mut s,
        b"GET /fixed/any/where?q HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(String::from_utf8_lossy(&r.body).contains("query=q\nscript=/fixed/any/where\n"));

    // The script's stderr lands in the error log, a line of its own.
    let r = ask(&mut s, b"GET /echo.cgi?stderr HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200);
    let want = "FastCGI sent in stderr: \"script says: oops\"";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains(want) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        logged.contains(&format!("{want} (upstream {url})")),
        "{logged}"
    );

    assert_eq!(
        connections_to(fw.addr.port()),
        kept,
        "seven requests on the one pooled connection"
    );
    // And the metrics count the six that found it pooled (published once a second).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reused = reused_total(metrics);
        if reused == 6 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reused {reused}, want 6"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A script slower than --upstream-timeout: 504; one that kills fcgiwrap: 502.
    let r = ask(&mut s, b"GET /echo.cgi?slow HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 504, "{r:?}");
    // fcgiwrap (one process) is busy with the slow script until it ends.
    std::thread::sleep(Duration::from_secs(3));
    let r = exchange(px.addr, b"GET /echo.cgi?die HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 502, "{}", r.head);
}
