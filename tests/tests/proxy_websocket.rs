//! WebSocket through uring-server's proxy (issue 23): a real WebSocket echo server behind
//! `--proxy` and a real client, both Python's websockets (Debian's python3-websockets,
//! run by /usr/bin/python3; scripts/install-test-deps.sh installs it). Text and binary
//! echo, ping and pong, the close handshake with the code seen by both ends, 1,000
//! sockets open at once, an upgrade the upstream refuses, the idle timeout closing a
//! silent tunnel, and the metrics and access log line of a tunnel.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::load::ChildGuard;
use uring_tests::server::{ServerProc, TempDir};
use uring_tests::{free_port, wait_for_listener};

const PYTHON: &str = "/usr/bin/python3";

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// The echo server; what it printed (one "closed CODE REASON" line per connection) goes
/// to `out`.
struct EchoServer {
    port: u16,
    out: PathBuf,
    _child: ChildGuard,
}

impl EchoServer {
    fn start(dir: &Path) -> EchoServer {
        let port = free_port();
        let out = dir.join("ws-server.out");
        let child = Command::new(PYTHON)
            .arg(script("ws_echo_server.py"))
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .expect("/usr/bin/python3 with python3-websockets (scripts/install-test-deps.sh)");
        let child = ChildGuard(child);
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
        );
        EchoServer {
            port,
            out,
            _child: child,
        }
    }

    fn closes(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

/// Run the client script; its JSON report.
fn client(args: &[&str]) -> serde_json::Value {
    let out = Command::new(PYTHON)
        .arg(script("ws_client.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("/usr/bin/python3 with python3-websockets (scripts/install-test-deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ws_client.py {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// One scrape of `/metrics`: the value of the sample named `name`.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-m", "5"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl (scripts/install-test-deps.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

/// Poll until `f` holds (metrics are published once per worker tick).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Proxy {
    server: ServerProc,
    metrics: SocketAddr,
    log: PathBuf,
}

fn proxy(dir: &Path, upstream: u16, extra: &[&str]) -> Proxy {
    let route = format!("/=http://127.0.0.1:{upstream}");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let metrics_arg = metrics.to_string();
    let log = dir.join("access.log");
    let mut args = vec![
        "--proxy",
        &route,
        "--metrics",
        &metrics_arg,
        "--access-log",
        log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let server = ServerProc::start(&args);
    Proxy {
        server,
        metrics,
        log,
    }
}

#[test]
fn echo_ping_and_close_handshake_through_the_proxy_with_metrics_and_log() {
    let dir = TempDir::new("ws-echo");
    let up = EchoServer::start(dir.path());
    let px = proxy(dir.path(), up.port, &[]);
    let url = format!("ws://{}/echo", px.server.addr);
    let r = client(&["echo", &url]);
    assert_eq!(r["text"], "héllo, tunnel", "{r}");
    assert_eq!(r["binary_ok"], true, "{r}");
    assert_eq!(r["binary_len"], 102400, "{r}");
    assert_eq!(r["pong"], true, "{r}");
    // The close code each end saw: the client's from the server's answer, the server's
    // from the client's close frame.
    assert_eq!(
        (r["close_code"].as_u64(), r["close_reason"].as_str()),
        (Some(4001), Some("bye"))
    );
    eventually("the server saw the client's close", || {
        up.closes().contains("closed 4001 bye")
    });
    // Metrics: one tunnel, closed, with the bytes of both ways.
    eventually("the tunnel counted and closed", || {
        metric(px.metrics, "uring_server_tunnels_total") == 1.0
            && metric(px.metrics, "uring_server_tunnels_open") == 0.0
    });
    let to_up = metric(px.metrics, "uring_server_tunnel_to_upstream_bytes_total");
    let to_client = metric(px.metrics, "uring_server_tunnel_to_client_bytes_total");
    // 100 KiB each way, plus the text, ping/pong and close frames (client frames are
    // masked: 4 bytes more each).
    assert!((102_400.0..103_000.0).contains(&to_up), "{to_up}");
    assert!((102_400.0..103_000.0).contains(&to_client), "{to_client}");
    // The access log line, at the close: status 101, the bytes sent to the client, the
    // tunnel's whole life as the request time, the upstream's status.
    let mut line = String::new();
    eventually("the tunnel's access log line", || {
        line = std::fs::read_to_string(&px.log).unwrap_or_default();
        line.contains("\"GET /echo HTTP/1.1\" 101 ")
    });
    let line = line.lines().find(|l| l.contains("GET /echo")).unwrap();
    let after = line.split("\" 101 ").nth(1).unwrap();
    let bytes: u64 = after.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(bytes as f64, to_client, "{line}");
    assert!(line.contains("us=\"101\""), "{line}");
    assert!(
        line.contains(&format!("ua=\"127.0.0.1:{}\"", up.port)),
        "{line}"
    );
}

#[test]
fn a_thousand_sockets_at_once() {
    // Each socket is three descriptors here (client, proxy's client side, proxy's
    // upstream side) and one in the echo server: well inside the 20k limit the test
    // machines give, and the scripts raise their own soft limits to the hard one.
    let dir = TempDir::new("ws-many");
    let up = EchoServer::start(dir.path());
    // A place for every handshake at once: queued ones wait at most the connect timeout,
    // and a loaded machine's Python server can take longer than that for 1,000.
    let px = proxy(dir.path(), up.port, &["--upstream-conns", "1100"]);
    let url = format!("ws://{}/many", px.server.addr);
    let r = client(&["many", &url, "1000"]);
    assert_eq!(r["ok"], 1000, "{r}");
    eventually("1,000 tunnels opened and closed", || {
        metric(px.metrics, "uring_server_tunnels_total") == 1000.0
            && metric(px.metrics, "uring_server_tunnels_open") == 0.0
    });
}

#[test]
fn a_refused_upgrade_is_an_ordinary_response() {
    let dir = TempDir::new("ws-refused");
    let up = EchoServer::start(dir.path());
    let px = proxy(dir.path(), up.port, &[]);
    let r = client(&["refused", &format!("ws://{}/refuse", px.server.addr)]);
    assert_eq!(r["status"], 403, "{r}");
    eventually("the refusal logged as a 403", || {
        std::fs::read_to_string(&px.log)
            .unwrap_or_default()
            .contains("\"GET /refuse HTTP/1.1\" 403 ")
    });
    assert_eq!(metric(px.metrics, "uring_server_tunnels_total"), 0.0);
    // And the proxy still tunnels the next one.
    let r = client(&["echo", &format!("ws://{}/echo", px.server.addr)]);
    assert_eq!(r["close_code"], 4001, "{r}");
}

#[test]
fn the_idle_timeout_closes_a_silent_tunnel() {
    let dir = TempDir::new("ws-idle");
    let up = EchoServer::start(dir.path());
    let px = proxy(dir.path(), up.port, &["--tunnel-idle-timeout", "1s"]);
    let r = client(&["idle", &format!("ws://{}/idle", px.server.addr)]);
    let after = r["closed_after"].as_f64().unwrap();
    // One second of silence, swept by a tick of at most a second.
    assert!((1.0..5.0).contains(&after), "{r}");
    // No close frame came: the connection just ended (1006 in the client's terms).
    assert_eq!(r["close_code"], 1006, "{r}");
    eventually("the silent tunnel closed", || {
        metric(px.metrics, "uring_server_tunnels_open") == 0.0
            && metric(px.metrics, "uring_server_tunnels_total") == 1.0
    });
    eventually("its log line", || {
        std::fs::read_to_string(&px.log)
            .unwrap_or_default()
            .contains("\"GET /idle HTTP/1.1\" 101 ")
    });
}
