//! HTTP/2 in uring-server (issue 21) with real clients: curl with prior knowledge, nghttp,
//! h2load with exact counts checked against the server's own access log, every route
//! (built-ins, static files with ranges and validators, a body larger than the windows),
//! and `--http2 off`. HTTP/2 over TLS (ALPN) is in server_tls.rs. curl and nghttp2-client
//! (h2load, nghttp) come from scripts/install-test-deps.sh; a missing one fails the test.

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
