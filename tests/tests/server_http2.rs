//! HTTP/2 in uring-server (issue 21) with real clients: curl with prior knowledge, nghttp,
//! h2load with exact counts checked against the server's own access log, every route
//! (built-ins, static files with ranges and validators, a body larger than the windows),
//! and `--http2 off`; Python's httpx over both listeners; HTTP/2 over `--ktls`, under
//! systemd socket activation, and through a drain and a zero-downtime upgrade (GOAWAY
//! naming the stream in flight, which finishes; uring-load across the upgrade loses
//! nothing). More HTTP/2 over TLS (ALPN) is in server_tls.rs, the conformance suite
//! in server_http2_conformance.rs. curl, nghttp2-client (h2load, nghttp), python3-httpx,
//! python3-h2 and systemd come from scripts/install-test-deps.sh; a missing one fails the
//! test.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use uring_tests::load::TempDir;
use uring_tests::reliability::TestServer;

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// curl with HTTP/2 prior knowledge; `args` after the common ones.
fn curl_h2(args: &[&str]) -> (bool, String, String) {
    run(Command::new("curl")
        .args(["-sS", "-m", "20", "--http2-prior-knowledge"])
        .args(args))
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A file of `len` bytes that differ from position to position.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn every_route_over_prior_knowledge_with_curl() {
    let dir = TempDir::new("h2-routes");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    // 5 MiB: many times the 64 KiB windows a client starts with, so the body moves only
    // as the client's WINDOW_UPDATEs come.
    let big = pattern(5 << 20);
    std::fs::write(www.join("big.bin"), &big).unwrap();
    std::fs::write(www.join("small.txt"), b"small file\n").unwrap();
    let srv = TestServer::start(&["--no-pin", "--root", www.to_str().unwrap()]);
    let url = |p: &str| format!("http://{}{p}", srv.addr);

    let (ok, body, err) = curl_h2(&["-v", &url("/plaintext")]);
    assert!(ok, "{err}");
    assert_eq!(body, "Hello, World!");
    assert!(
        err.contains("< HTTP/2 200") && err.contains("< server: uring-server"),
        "{err}"
    );
    let (ok, body, _) = curl_h2(&[&url("/json")]);
    assert!(ok && body == r#"{"message":"Hello, World!"}"#, "{body}");
    let (ok, body, _) = curl_h2(&[&url("/small.txt")]);
    assert!(ok && body == "small file\n", "{body}");

    let got = dir.path().join("got.bin");
    let (ok, _, err) = curl_h2(&["-o", got.to_str().unwrap(), &url("/big.bin")]);
    assert!(ok, "{err}");
    assert!(
        std::fs::read(&got).unwrap() == big,
        "the 5 MiB body arrives exact"
    );

    // Ranges and validators, as over HTTP/1.1.
    let (ok, code, err) = curl_h2(&[
        "-r",
        "1000000-1000009",
        "-o",
        got.to_str().unwrap(),
        "-w",
        "%{http_code}",
        &url("/big.bin"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(code, "206");
    assert_eq!(std::fs::read(&got).unwrap(), &big[1_000_000..1_000_010]);
    let (ok, head, _) = curl_h2(&["-sI", &url("/small.txt")]);
    assert!(ok, "{head}");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an etag")
        .trim()
        .to_string();
    let (ok, code, _) = curl_h2(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("If-None-Match: {etag}"),
        &url("/small.txt"),
    ]);
    assert!(ok && code == "304", "{code}");
    let (ok, code, _) = curl_h2(&["-o", "/dev/null", "-w", "%{http_code}", &url("/none")]);
    assert!(ok && code == "404", "{code}");
    let (ok, body, _) = curl_h2(&[
        "-X",
        "POST",
        "-d",
        "x=1",
        "-w",
        " %{http_code}",
        &url("/plaintext"),
    ]);
    assert!(ok && body.ends_with(" 405"), "{body}");
}

#[test]
fn h2load_counts_are_exact_and_every_request_is_logged_as_http2() {
    let dir = TempDir::new("h2-load");
    let log = dir.path().join("access.log");
    let metrics = format!("127.0.0.1:{}", uring_tests::free_port());
    let mut srv = TestServer::start(&[
        "--no-pin",
        "--access-log",
        log.to_str().unwrap(),
        "--metrics",
        &metrics,
    ]);
    let url = format!("http://{}/plaintext", srv.addr);
    let (ok, out, err) = run(Command::new("h2load")
        .args(["-n", "20000", "-c", "4", "-m", "16"])
        .arg(&url));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{out}"
    );
    assert!(out.contains("status codes: 20000 2xx"), "{out}");
    // The metrics count them by protocol (published at the worker's tick).
    let want = [
        "uring_server_protocol_requests_total{protocol=\"h2\"} 20000",
        "uring_server_protocol_requests_total{protocol=\"http/1.1\"} 0",
        "uring_server_http2_connections_total 4",
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, text, _) = run(Command::new("curl")
            .args(["-sS", "-m", "5"])
            .arg(format!("http://{metrics}/metrics")));
        if want.iter().all(|w| text.lines().any(|l| l == *w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {want:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    srv.guard.signal(libc::SIGTERM);
    assert!(srv.guard.wait_timeout(Duration::from_secs(15)).is_some());
    let all = lines(&log);
    assert_eq!(all.len(), 20000);
    let h2 = all
        .iter()
        .filter(|l| l.contains("\"GET /plaintext HTTP/2.0\" 200 13 "))
        .count();
    assert_eq!(h2, 20000, "{:?}", &all[..3]);
}

#[test]
fn nghttp_fetches_concurrent_streams() {
    let dir = TempDir::new("h2-nghttp");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let body = pattern(300_000);
    std::fs::write(www.join("a.bin"), &body).unwrap();
    let srv = TestServer::start(&["--no-pin", "--root", www.to_str().unwrap()]);
    let url = format!("http://{}/a.bin", srv.addr);
    // -n: discard bodies; -s: stats per stream; -m 8: the same URL on 8 streams at once.
    let (ok, out, err) = run(Command::new("nghttp")
        .args(["-n", "-s", "-m", "8", "-t", "20"])
        .arg(&url));
    assert!(ok, "{out}{err}");
    let responses = out.lines().filter(|l| l.contains(" 200 ")).count();
    assert_eq!(responses, 8, "{out}");
}

#[test]
fn with_http2_off_prior_knowledge_gets_no_http2() {
    let srv = TestServer::start(&["--no-pin", "--http2", "off"]);
    let started = Instant::now();
    let (ok, _, err) = curl_h2(&[&format!("http://{}/plaintext", srv.addr)]);
    assert!(!ok, "HTTP/2 must be refused: {err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // HTTP/1.1 as usual.
    let (ok, body, _) = run(Command::new("curl")
        .args(["-sS", "-m", "10"])
        .arg(format!("http://{}/plaintext", srv.addr)));
    assert!(ok && body == "Hello, World!");
}

#[test]
fn a_preface_and_nothing_more_gets_settings_then_a_goaway_at_the_header_timeout() {
    use std::io::{Read, Write};
    let srv = TestServer::start(&["--no-pin", "--header-timeout", "1s"]);
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A SETTINGS frame first (type 4 on stream 0), a GOAWAY (type 7) last.
    assert!(got.len() >= 9 + 17 && got[3] == 4, "{got:?}");
    let mut at = 0;
    let mut last_type = None;
    while at + 9 <= got.len() {
        let len = (got[at] as usize) << 16 | (got[at + 1] as usize) << 8 | got[at + 2] as usize;
        last_type = Some(got[at + 3]);
        at += 9 + len;
    }
    assert_eq!(at, got.len(), "whole frames: {got:?}");
    assert_eq!(last_type, Some(7), "{got:?}");
}

#[test]
fn every_tier_speaks_http2() {
    let dir = TempDir::new("h2-tiers");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let body = pattern(2 << 20);
    std::fs::write(www.join("b.bin"), &body).unwrap();
    for tier in ["basic", "multishot", "full", "epoll"] {
        let srv = TestServer::start(&["--no-pin", "--tier", tier, "--root", www.to_str().unwrap()]);
        let (ok, out, err) = run(Command::new("h2load")
            .args(["-n", "3000", "-c", "4", "-m", "8"])
            .arg(format!("http://{}/plaintext", srv.addr)));
        assert!(ok, "{tier}: {out}{err}");
        assert!(
            out.contains("3000 succeeded, 0 failed, 0 errored"),
            "{tier}: {out}"
        );
        let got = dir.path().join(format!("{tier}.bin"));
        let (ok, _, err) = curl_h2(&[
            "-o",
            got.to_str().unwrap(),
            &format!("http://{}/b.bin", srv.addr),
        ]);
        assert!(ok, "{tier}: {err}");
        assert!(
            std::fs::read(&got).unwrap() == body,
            "{tier}: the body arrives exact"
        );
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost in `dir` (cert.pem, key.pem):
/// it is its own CA, so clients verify it with `cert.pem`.
fn self_signed(dir: &Path) {
    let (ok, _, err) = run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem")));
    assert!(ok, "openssl req: {err}");
}

/// uring-server with a cleartext listener (`srv.addr`) and a TLS one (returned), serving
/// `www`, with `extra` flags.
fn start_with_tls(dir: &Path, www: &Path, extra: &[&str]) -> (TestServer, std::net::SocketAddr) {
    self_signed(dir);
    let tls: std::net::SocketAddr = format!("127.0.0.1:{}", uring_tests::free_port())
        .parse()
        .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let mut args = vec![
        "--no-pin",
        "--root",
        www.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let tls_text = tls.to_string();
    args.extend(["--tls-listen", &tls_text]);
    args.extend(extra);
    let srv = TestServer::start(&args);
    uring_tests::wait_for_listener(tls, Duration::from_secs(10));
    (srv, tls)
}

/// Python's httpx (Debian's python3-httpx, HTTP/2 through python3-h2) against both
/// listeners: prior knowledge on the cleartext one, ALPN h2 with the certificate verified
/// on the TLS one. Every response must say HTTP/2 and carry the exact body.
#[test]
fn httpx_over_prior_knowledge_and_tls() {
    let dir = TempDir::new("h2-httpx");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    // 300 KB: more than the 64 KiB windows httpx starts with.
    std::fs::write(www.join("a.bin"), pattern(300_000)).unwrap();
    let (srv, tls) = start_with_tls(dir.path(), &www, &[]);
    let script = r#"
import hashlib, sys, httpx
base, verify = sys.argv[1], sys.argv[2]
want = hashlib.sha256(bytes(i * 7 % 251 for i in range(300000))).hexdigest()
# http1=False: prior knowledge over cleartext; over TLS it offers only h2 in ALPN.
with httpx.Client(http1=False, http2=True, verify=verify if verify != "-" else False, timeout=20) as c:
    for path, method in [("/plaintext", "GET"), ("/json", "GET"), ("/a.bin", "GET"),
                         ("/a.bin", "HEAD"), ("/none", "GET"), ("/plaintext", "POST")]:
        r = c.request(method, base + path, content=b"x=1" if method == "POST" else None)
        body = r.content
        digest = hashlib.sha256(body).hexdigest() == want
        print(r.http_version, method, path, r.status_code, len(body), digest)
"#;
    let cert = dir.path().join("cert.pem");
    for (base, verify) in [
        (format!("http://{}", srv.addr), "-".to_string()),
        (format!("https://{tls}"), cert.to_str().unwrap().to_string()),
    ] {
        let (ok, out, err) =
            run(Command::new("/usr/bin/python3").args(["-c", script, &base, &verify]));
        assert!(ok, "{base}: {out}{err}");
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(
            got,
            [
                "HTTP/2 GET /plaintext 200 13 False",
                "HTTP/2 GET /json 200 27 False",
                "HTTP/2 GET /a.bin 200 300000 True",
                "HTTP/2 HEAD /a.bin 200 0 False",
                "HTTP/2 GET /none 404 10 False",
                "HTTP/2 POST /plaintext 405 19 False",
            ],
            "{base}: {err}"
        );
    }
}

/// HTTP/2 over `--ktls`, following server_tls.rs: where the kernel has the `tls` ULP the
/// sessions move into the kernel after the handshake and the metrics count them; where
/// it has not (this machine), one line says so and rustls carries on. Either way every
/// HTTP/2 response over TLS is exact, and the test asserts which of the two happened.
#[test]
fn http2_over_ktls_is_exact_either_way() {
    let dir = TempDir::new("h2-ktls");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let big = pattern(1 << 20);
    std::fs::write(www.join("big.bin"), &big).unwrap();
    let metrics = format!("127.0.0.1:{}", uring_tests::free_port());
    let (srv, tls) = start_with_tls(dir.path(), &www, &["--ktls", "--metrics", &metrics]);
    let cert = dir.path().join("cert.pem");
    let got = dir.path().join("got.bin");
    for _ in 0..3 {
        let (ok, _, err) = run(Command::new("curl")
            .args(["-sS", "-m", "20", "--http2", "-v", "--cacert"])
            .arg(&cert)
            .arg("-o")
            .arg(&got)
            .arg(format!("https://{tls}/big.bin")));
        assert!(ok, "{err}");
        assert!(err.contains("< HTTP/2 200"), "{err}");
        assert!(
            std::fs::read(&got).unwrap() == big,
            "the body arrives exact"
        );
    }
    let (ok, out, err) = run(Command::new("h2load")
        .args(["-n", "2000", "-c", "4", "-m", "16"])
        .arg(format!("https://{tls}/plaintext")));
    assert!(ok, "{out}{err}");
    assert!(out.contains("2000 succeeded, 0 failed, 0 errored"), "{out}");
    assert!(out.contains("Application protocol: h2"), "{out}");
    let (_, scrape, _) = run(Command::new("curl")
        .args(["-sS", "-m", "5"])
        .arg(format!("http://{metrics}/metrics")));
    let entered: u64 = scrape
        .lines()
        .find_map(|l| l.strip_prefix("uring_server_ktls_connections_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the kTLS counter is scraped:\n{scrape}"));
    let log = srv.log_text();
    let said: Vec<&str> = log.lines().filter(|l| l.contains("--ktls")).collect();
    assert_eq!(said.len(), 1, "one line:\n{log}");
    let ulp = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
    if ulp.split_whitespace().any(|u| u == "tls") {
        assert!(said[0].contains("kernel TLS after the handshake"), "{log}");
        assert!(entered >= 7, "sessions in the kernel: {entered}\n{scrape}");
    } else {
        assert!(
            said[0].contains("unavailable") && said[0].contains("modprobe tls"),
            "{log}"
        );
        assert_eq!(entered, 0);
    }
}

/// HTTP/2 on a socket inherited from the real `systemd-socket-activate` (Debian's
/// systemd): prior knowledge, exact counts.
#[test]
fn http2_under_socket_activation() {
    let dir = TempDir::new("h2-activation");
    let port = uring_tests::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let unused = uring_tests::free_port();
    let _child = uring_tests::load::ChildGuard(
        Command::new("systemd-socket-activate")
            .args(["-l", &addr.to_string()])
            .arg(uring_tests::bin("uring-server"))
            .args([
                "--listen",
                &format!("127.0.0.1:{unused}"),
                "-w",
                "1",
                "--no-pin",
            ])
            .stdin(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .expect("systemd-socket-activate (Debian's systemd; scripts/install-test-deps.sh)"),
    );
    uring_tests::wait_for_listener(addr, Duration::from_secs(10));
    let (ok, body, err) = curl_h2(&["-v", &format!("http://{addr}/plaintext")]);
    assert!(ok && body == "Hello, World!", "{err}");
    assert!(err.contains("< HTTP/2 200"), "{err}");
    let (ok, out, err) = run(Command::new("h2load")
        .args(["-n", "3000", "-c", "4", "-m", "8"])
        .arg(format!("http://{addr}/plaintext")));
    assert!(ok, "{out}{err}");
    assert!(out.contains("3000 succeeded, 0 failed, 0 errored"), "{out}");
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        stderr.contains("inherited from systemd socket activation"),
        "{stderr}"
    );
}

/// A slow HTTP/2 download of /big.bin with 64 KiB windows, written in Python: it prints
/// "reading" a megabyte in and waits for a line on stdin, then reads to the end and prints
/// `status=.. bytes=.. ended=.. goaway=(last, code) sha=..`.
// Frames by hand (hyperframe and hpack, Debian's, under python3-h2): the h2 library's
// connection refuses DATA once it has seen a GOAWAY, which is what this test is about.
const SLOW_DOWNLOAD: &str = r#"
import hashlib, socket, struct, sys, time
import hpack
from hyperframe.frame import HeadersFrame, SettingsFrame, WindowUpdateFrame
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
req = [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/big.bin")]
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()
          + HeadersFrame(1, hpack.Encoder().encode(req), flags=["END_HEADERS", "END_STREAM"]).serialize())
dec = hpack.Decoder()
body, status, goaway, ended, told, got, buf = hashlib.sha256(), None, None, False, False, 0, b""
while True:
    data = s.recv(65536)
    if not data:
        break
    buf += data
    out = b""
    while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
        n = int.from_bytes(buf[:3], "big")
        kind, flags, sid, payload = buf[3], buf[4], int.from_bytes(buf[5:9], "big"), buf[9:9 + n]
        buf = buf[9 + n:]
        if kind == 4 and not flags & 1:
            out += SettingsFrame(0, flags=["ACK"]).serialize()
        elif kind == 1 and sid == 1:
            status = dict(dec.decode(payload))[":status"]
            ended = ended or bool(flags & 1)
        elif kind == 0 and sid == 1:
            body.update(payload)
            got += n
            ended = ended or bool(flags & 1)
            if n:
                out += WindowUpdateFrame(0, window_increment=n).serialize()
                out += WindowUpdateFrame(1, window_increment=n).serialize()
        elif kind == 7:
            goaway = struct.unpack(">II", payload[:8])
    if out:
        s.sendall(out)
    if got >= 1 << 20 and not told:
        # A megabyte in: the test sends SIGTERM now and answers on stdin.
        print("reading", flush=True)
        sys.stdin.readline()
        told = True
    time.sleep(0.001)
print(f"status={status} bytes={got} ended={ended} goaway={goaway} sha={body.hexdigest()}")
"#;

/// The slow download of [`SLOW_DOWNLOAD`] against `port`, once it is a megabyte in.
struct SlowDownload {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl SlowDownload {
    fn start(port: u16) -> SlowDownload {
        use std::io::BufRead;
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", SLOW_DOWNLOAD, &port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "reading", "the download did not start");
        SlowDownload { child, stdout }
    }

    /// Let it read on; its last line once it ends.
    fn finish(mut self) -> String {
        use std::io::{Read, Write};
        self.child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let out = self.child.wait_with_output().unwrap();
        format!("{}{}", rest.trim(), String::from_utf8_lossy(&out.stderr))
    }
}

fn sha256_of(p: &Path) -> String {
    let (ok, sum, err) = run(Command::new("sha256sum").arg(p));
    assert!(ok, "{err}");
    sum.split_whitespace().next().unwrap().to_string()
}

/// A drain (SIGTERM) with an HTTP/2 download in flight: the server sends GOAWAY(NO_ERROR)
/// naming the stream it is serving, the download finishes whole, and the server exits 0.
/// The client reads slowly with 64 KiB windows.
#[test]
fn drain_sends_goaway_and_finishes_the_http2_stream_in_flight() {
    let dir = TempDir::new("h2-drain");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let len = 8 << 20;
    std::fs::write(www.join("big.bin"), pattern(len)).unwrap();
    let mut srv = TestServer::start(&["--no-pin", "--root", www.to_str().unwrap()]);
    let download = SlowDownload::start(srv.addr.port());
    srv.guard.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    // Draining: new connections are no longer accepted.
    assert!(
        std::net::TcpStream::connect(srv.addr).is_err(),
        "still accepting while draining"
    );
    let want_sha = sha256_of(&www.join("big.bin"));
    assert_eq!(
        download.finish(),
        format!("status=200 bytes={len} ended=True goaway=(1, 0) sha={want_sha}")
    );
    let status = srv
        .guard
        .wait_timeout(Duration::from_secs(15))
        .expect("the server exits after the drain");
    assert!(status.success(), "{status}");
}

/// A zero-downtime upgrade (SIGUSR2) with HTTP/2 traffic: a slow download in flight on the
/// old process gets GOAWAY(NO_ERROR, its stream) and finishes whole; uring-load `--http2`
/// running across the upgrade loses nothing (streams a GOAWAY left unprocessed go again on
/// a new connection, to the new process); the new process serves HTTP/2 on the same port.
#[test]
fn upgrade_with_http2_in_flight_loses_nothing() {
    let dir = TempDir::new("h2-upgrade");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let len = 8 << 20;
    std::fs::write(www.join("big.bin"), pattern(len)).unwrap();
    let mut srv = TestServer::start(&["--no-pin", "--root", www.to_str().unwrap()]);
    let download = SlowDownload::start(srv.addr.port());
    let url = format!("http://{}/plaintext", srv.addr);
    let load = std::thread::spawn(move || {
        uring_tests::load::run_load(
            &[
                "--http2",
                "--streams",
                "8",
                "-c",
                "4",
                "-d",
                "4s",
                "--no-pin",
                "--json",
                &url,
            ],
            Duration::from_secs(60),
        )
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!load.is_finished(), "the load ended before the upgrade");
    srv.guard.signal(libc::SIGUSR2);
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_pid: i32 = loop {
        let log = srv.log_text();
        if let Some(pid) = log.lines().find_map(|l| {
            l.split("upgraded: process ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        }) {
            break pid;
        }
        assert!(Instant::now() < deadline, "no successor:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the successor this test caused (not our child).
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _successor = KillOnDrop(new_pid);
    let upgraded_mid_load = !load.is_finished();
    let want_sha = sha256_of(&www.join("big.bin"));
    assert_eq!(
        download.finish(),
        format!("status=200 bytes={len} ended=True goaway=(1, 0) sha={want_sha}")
    );
    let status = srv
        .guard
        .wait_timeout(Duration::from_secs(20))
        .expect("the old server exits after its drain");
    assert!(status.success(), "old server: {status}");
    let run = load.join().unwrap();
    assert!(
        upgraded_mid_load,
        "the load ended before the successor took over"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    let num = |p: &[&str]| uring_tests::load::num(&v, p);
    assert!(num(&["requests", "succeeded"]) > 0, "{v}");
    // Each of the 4 connections was ended by the old process's drain and opened again,
    // on the new one.
    assert!(num(&["connections", "reconnects"]) >= 4, "{v}");
    for p in [
        ["requests", "errored"],
        ["requests", "failed"],
        ["errors", "connect"],
        ["errors", "read"],
    ] {
        assert_eq!(num(&p), 0, "{p:?}: {v}");
    }
    // The successor: HTTP/2 on the same port.
    let (ok, body, err) = curl_h2(&["-v", &format!("http://{}/plaintext", srv.addr)]);
    assert!(ok && body == "Hello, World!", "{err}");
    assert!(err.contains("< HTTP/2 200"), "{err}");
    unsafe { libc::kill(new_pid, libc::SIGTERM) };
}
