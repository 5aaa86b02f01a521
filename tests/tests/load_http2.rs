//! uring-load `--http2` against real HTTP/2 servers the tests start: uring-server (prior
//! knowledge and ALPN h2 over TLS; counts checked against its access log), nginx with
//! `listen ... http2` (its access log), a body larger than every window, and a TLS server
//! that does not choose h2 (one clear line naming what it chose). nginx and openssl come
//! from scripts/install-test-deps.sh; a missing one fails the test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use uring_tests::load::{nginx_binary, num, run_load, ChildGuard, Nginx, TempDir};
use uring_tests::reliability::TestServer;
use uring_tests::{free_port, wait_for_listener};

const LIMIT: Duration = Duration::from_secs(60);

fn log_lines(p: &Path, needle: &str) -> usize {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Stop the server so its access log is complete.
fn stop(mut srv: TestServer) {
    srv.guard.signal(libc::SIGTERM);
    assert!(srv.guard.wait_timeout(Duration::from_secs(15)).is_some());
}

#[test]
fn exact_counts_over_prior_knowledge_against_uring_servers_access_log() {
    let dir = TempDir::new("h2-exact");
    let log = dir.path().join("access.log");
    let srv = TestServer::start(&["--no-pin", "--access-log", log.to_str().unwrap()]);
    let url = format!("http://{}/plaintext", srv.addr);
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "16",
            "-c",
            "4",
            "-n",
            "5003",
            "--no-pin",
            "--json",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 5003, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
    assert_eq!(v["protocol"], "HTTP/2", "{v}");
    assert_eq!(num(&v, &["streams"]), 16);
    assert_eq!(num(&v, &["bytes", "body"]), 5003 * 13, "{v}");
    stop(srv);
    let h2 = log_lines(&log, "\"GET /plaintext HTTP/2.0\" 200 13 ");
    assert_eq!(h2, 5003, "every request once, as HTTP/2");
    assert_eq!(log_lines(&log, "HTTP/1.1"), 0);
}

#[test]
fn text_report_names_the_protocol_and_a_duration_run_ends_on_time() {
    let srv = TestServer::start(&["--no-pin"]);
    let url = format!("http://{}/plaintext", srv.addr);
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "8",
            "-c",
            "2",
            "-d",
            "1s",
            "--no-pin",
            "-q",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("protocol: HTTP/2, 8 streams per connection"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(" 0 errored"), "{}", run.stdout);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn a_body_larger_than_every_window_arrives_whole() {
    let dir = TempDir::new("h2-big");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let len: u64 = 3 << 20;
    std::fs::write(www.join("big.bin"), vec![7u8; len as usize]).unwrap();
    let srv = TestServer::start(&["--no-pin", "--root", www.to_str().unwrap()]);
    let url = format!("http://{}/big.bin", srv.addr);
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "4",
            "-c",
            "2",
            "-n",
            "24",
            "--no-pin",
            "--json",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 24, "{v}");
    assert_eq!(num(&v, &["bytes", "body"]), 24 * len, "{v}");
}

/// A self-signed certificate for 127.0.0.1 in `dir` (self.pem, self.key).
fn self_signed(dir: &Path) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (install it: scripts/install-test-deps.sh)");
    assert!(status.success());
}

#[test]
fn alpn_h2_over_tls_against_uring_server() {
    let dir = TempDir::new("h2-tls");
    self_signed(dir.path());
    let tls = format!("127.0.0.1:{}", free_port());
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let log = p("access.log");
    let mut srv = ChildGuard(
        Command::new(uring_tests::bin("uring-server"))
            .args(["--tls-listen", &tls, "-w", "1", "--no-pin"])
            .args(["--tls-cert", &p("self.pem"), "--tls-key", &p("self.key")])
            .args(["--access-log", &log])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(tls.parse().unwrap(), Duration::from_secs(10));
    let url = format!("https://{tls}/plaintext");
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "8",
            "-c",
            "2",
            "-n",
            "2001",
            "--cacert",
            &p("self.pem"),
            "--no-pin",
            "--json",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(num(&run.json(), &["requests", "succeeded"]), 2001);
    unsafe { libc::kill(srv.0.id() as i32, libc::SIGTERM) };
    let _ = srv.0.wait();
    assert_eq!(log_lines(Path::new(&log), "HTTP/2.0\" 200"), 2001);
}

#[test]
fn a_tls_server_that_does_not_choose_h2_is_one_clear_line() {
    let nginx = Nginx::start(true);
    let url = format!("https://127.0.0.1:{}/", nginx.port);
    let run = run_load(
        &[
            "--http2",
            "--insecure",
            "-c",
            "1",
            "-n",
            "3",
            "--no-pin",
            "-q",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("--http2: the server refused ALPN h2"),
        "{}",
        run.stderr
    );
    assert_eq!(
        nginx.access_log_lines(),
        0,
        "nothing reached nginx as a request"
    );
}

/// nginx with `listen ... http2` (prior knowledge on cleartext), its own access log.
#[test]
fn exact_counts_against_nginx_http2() {
    let dir = TempDir::new("nginx-h2");
    let port = free_port();
    let d = dir.path().display().to_string();
    let conf = format!(
        "daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{ return 200 \"ok\"; }}
        location /missing {{ return 404 \"missing\"; }}
    }}
}}
"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = ChildGuard(
        Command::new(nginx_binary())
            .args(["-p", &d, "-c"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx (install it: scripts/install-test-deps.sh)"),
    );
    wait_for_listener(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(10),
    );
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "10",
            "-c",
            "3",
            "-n",
            "3001",
            "--no-pin",
            "--json",
            &format!("http://127.0.0.1:{port}/missing"),
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["requests", "failed"]), 3001, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
    unsafe { libc::kill(child.0.id() as i32, libc::SIGQUIT) };
    let _ = child.0.wait();
    let log = dir.path().join("access.log");
    assert_eq!(log_lines(&log, "\"GET /missing HTTP/2.0\" 404"), 3001);
}
