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
    assert_eq!(num(&v, &["schema_version"]), 5);
    assert_eq!(num(&v, &["retried"]), 0);
    // uring-server's own SETTINGS, as its first connection received them.
    let settings = &v["server_settings"];
    assert_eq!(num(settings, &["max_concurrent_streams"]), 100, "{v}");
    assert_eq!(num(settings, &["max_frame_size"]), 16384, "{v}");
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
            .contains("protocol: HTTP/2, 8 streams per connection; server SETTINGS "),
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

/// A server scripted in Python (tests/scripts/), run by /usr/bin/python3 as
/// `SCRIPT PORT [MODE] LOG`: it logs what it did to each request, one line each.
struct PyH2 {
    port: u16,
    log: std::path::PathBuf,
    _child: ChildGuard,
    _dir: TempDir,
}

impl PyH2 {
    /// tests/scripts/h2_scripted_server.py: a Python `h2` server (Debian's python3-h2)
    /// that misbehaves as `mode` says.
    fn start(mode: &str) -> PyH2 {
        PyH2::script("h2_scripted_server.py", Some(mode))
    }

    fn script(name: &str, mode: Option<&str>) -> PyH2 {
        let dir = TempDir::new("py-h2");
        let log = dir.path().join("done.log");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name);
        let child = ChildGuard(
            Command::new("/usr/bin/python3")
                // No __pycache__ beside the scripts (they share scripted_server.py).
                .arg("-B")
                .arg(script)
                .arg(port.to_string())
                .args(mode)
                .arg(&log)
                .stdin(Stdio::null())
                .spawn()
                .expect("/usr/bin/python3 with python3-h2 (scripts/install-test-deps.sh)"),
        );
        wait_for_listener(
            format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(10),
        );
        PyH2 {
            port,
            log,
            _child: child,
            _dir: dir,
        }
    }

    fn count(&self, what: &str) -> u64 {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == what)
            .count() as u64
    }

    /// A `-n 300` run over 2 connections with 4 streams each; it must end on time.
    fn run(&self) -> serde_json::Value {
        self.run_with(&["--streams", "4", "-n", "300"]).json()
    }

    /// A run over 2 connections (`-T 5s` unless `extra` says otherwise) that must end
    /// on time, whatever the server did.
    fn run_with(&self, extra: &[&str]) -> uring_tests::load::LoadRun {
        let url = format!("http://127.0.0.1:{}/", self.port);
        let mut args = vec!["--http2", "-c", "2", "--no-pin", "--json"];
        if !extra.contains(&"-T") {
            args.extend(["-T", "5s"]);
        }
        args.extend(extra);
        args.push(&url);
        let run = run_load(&args, LIMIT);
        assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
        assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
        assert_eq!(
            self.count_prefix("exception"),
            0,
            "the server refused what it got"
        );
        run
    }

    fn count_prefix(&self, what: &str) -> u64 {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(what))
            .count() as u64
    }
}

#[test]
fn refused_streams_are_sent_again_and_counted_once() {
    let py = PyH2::start("refuse");
    let v = py.run();
    assert_eq!(num(&v, &["requests", "succeeded"]), 300, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
    assert_eq!(py.count("200"), 300, "each answered once");
    assert!(py.count("refused") >= 100, "{}", py.count("refused"));
    assert_eq!(num(&v, &["retried"]), py.count("refused"), "{v}");
}

#[test]
fn goaway_mid_run_loses_nothing_and_counts_nothing_twice() {
    let py = PyH2::start("goaway");
    let v = py.run();
    assert_eq!(num(&v, &["requests", "succeeded"]), 300, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
    assert_eq!(py.count("200"), 300);
    // Each connection answers 19 and sends GOAWAY at its 20th; with -c 2 the last two
    // connections may both end below 20 (at most 38 answered without a GOAWAY), so at
    // least (300 - 38) / 19, i.e. 14, connections went away (15 only when the tail lands
    // on one connection: seen 14 once on a busy machine).
    assert!(py.count("goaway") >= 14, "{}", py.count("goaway"));
    assert!(num(&v, &["retried"]) >= py.count("goaway"), "{v}");
    assert!(num(&v, &["connections", "opened"]) >= 16, "{v}");
}

/// A run the server answered except for what it logged as `line`, which uring-load
/// counted in `class` (at least `at_least` of them), exactly, with a first error that
/// says each of `first_has`.
fn assert_one_class(
    py: &PyH2,
    v: &serde_json::Value,
    (class, line, at_least): (&str, &str, u64),
    first_has: &[&str],
) {
    let ok = num(v, &["requests", "succeeded"]);
    let n = num(v, &["errors", class]);
    assert_eq!(ok, py.count("200"), "{v}");
    assert_eq!(n, py.count(line), "one {class} error per '{line}': {v}");
    assert!(n >= at_least, "{v}");
    assert_eq!(ok + n, 300, "{v}");
    assert_eq!(num(v, &["requests", "errored"]), n, "{v}");
    let first = v["first_errors"][class].to_string();
    for text in first_has {
        assert!(first.contains(text), "{first}");
    }
}

#[test]
fn rst_stream_is_a_reset_error_with_its_code_and_the_rest_is_exact() {
    let py = PyH2::start("rst");
    let v = py.run();
    let first = ["reset by the server (INTERNAL_ERROR"];
    assert_one_class(&py, &v, ("reset", "rst", 50), &first);
}

/// Each GOAWAY leaves the stream it says it processed unanswered.
#[test]
fn goaway_with_an_error_fails_what_it_processed_with_its_text() {
    let py = PyH2::start("goaway-error");
    let v = py.run();
    let first = ["GOAWAY", "INTERNAL_ERROR", "going down"];
    assert_one_class(&py, &v, ("goaway", "goaway-error", 14), &first);
}

/// DATA on stream 0 at every connection's 10th request: a connection error; with one
/// stream per connection exactly that request ends, as a `protocol` error.
#[test]
fn a_protocol_error_is_its_own_class_with_the_codecs_reason() {
    let py = PyH2::start("protocol");
    let v = py.run_with(&["--streams", "1", "-n", "300"]).json();
    let first = ["HTTP/2 connection error PROTOCOL_ERROR"];
    assert_one_class(&py, &v, ("protocol", "broken", 29), &first);
}

/// A server whose SETTINGS allow one stream: `--streams 8` waits for each answer (the
/// server never sees two requests at once, nothing is refused) and `-n` stays exact.
#[test]
fn max_concurrent_streams_1_is_respected_and_the_count_exact() {
    let py = PyH2::start("one-stream");
    let v = py.run_with(&["--streams", "8", "-n", "301"]).json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 301, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
    assert_eq!(py.count("200"), 301);
    assert_eq!(
        py.count("over"),
        0,
        "two requests at once on one connection"
    );
    assert_eq!(num(&v, &["retried"]), 0, "{v}");
    assert_eq!(
        num(&v["server_settings"], &["max_concurrent_streams"]),
        1,
        "{v}"
    );
    assert_eq!(num(&v, &["streams"]), 8, "{v}");
}

/// A server that never opens its window while requests post 100 kB bodies: each stalled
/// request ends at `-T` as a `flow_control` error, a `-n` run and a `-d` run on time.
#[test]
fn a_zero_window_server_stalls_bodies_into_the_flow_control_class() {
    let py = PyH2::start("zero-window");
    let dir = TempDir::new("h2-zero-window");
    let body = dir.path().join("body.bin");
    std::fs::write(&body, vec![b'b'; 100_000]).unwrap();
    let post = |extra: &[&str]| {
        let mut args = vec!["-m", "POST", "-b", body.to_str().unwrap(), "--streams", "4"];
        args.extend(extra);
        py.run_with(&args)
    };
    let run = post(&["-n", "12", "-T", "1s"]);
    assert_eq!(run.code, 1, "every request failed: {}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["errors", "flow_control"]), 12, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 12, "{v}");
    assert_eq!(num(&v, &["requests", "done"]), 0, "{v}");
    assert_eq!(
        py.count("request"),
        12,
        "each request reached the server once"
    );
    let first = v["first_errors"]["flow_control"].to_string();
    assert!(
        first.contains("of 100000 bytes sent") && first.contains("no WINDOW_UPDATE"),
        "{first}"
    );
    assert!(run.stderr.contains("flow_control: 12 ×"), "{}", run.stderr);
    // Three stalls of 500 ms per connection fit in 2 s: the run ends on time.
    let run = post(&["-d", "2s", "-T", "500ms"]);
    let v = run.json();
    assert!(run.elapsed < Duration::from_secs(8), "{:?}", run.elapsed);
    assert!(num(&v, &["errors", "flow_control"]) >= 8, "{v}");
    assert_eq!(
        num(&v, &["requests", "errored"]),
        num(&v, &["errors", "flow_control"]),
        "{v}"
    );
    assert_eq!(num(&v, &["requests", "done"]), 0, "{v}");
}

/// Response headers past our SETTINGS_MAX_HEADER_LIST_SIZE on every 4th request: that
/// stream is a `parse` error saying so, the rest of the run goes on, exactly.
#[test]
fn huge_response_headers_are_counted_not_a_crash() {
    let py = PyH2::start("huge-headers");
    let v = py.run();
    let first = ["headers larger than our limit"];
    assert_one_class(&py, &v, ("parse", "huge", 70), &first);
}

/// `--streams N` over HTTP/1.1 is pipelining depth N, as `-K N` (the issue's "with -K
/// meaning the same"): a server that holds its answers until 8 requests wait sees
/// batches of exactly 8, never more, and logs every request once.
#[test]
fn streams_over_http1_is_the_pipelining_depth_like_k() {
    for flag in ["--streams", "-K"] {
        let srv = PyH2::script("h1_pipeline_counter.py", None);
        let url = format!("http://127.0.0.1:{}/p", srv.port);
        let run = run_load(
            &[
                "-k", flag, "8", "-c", "2", "-n", "400", "--no-pin", "--json", &url,
            ],
            LIMIT,
        );
        assert_eq!(run.code, 0, "{flag}: {}", run.stderr);
        let v = run.json();
        assert_eq!(num(&v, &["requests", "succeeded"]), 400, "{flag}: {v}");
        assert_eq!(v["protocol"], "HTTP/1.1", "{v}");
        let log = std::fs::read_to_string(&srv.log).unwrap();
        let batches: Vec<u64> = log
            .lines()
            .filter_map(|l| l.strip_prefix("batch ")?.parse().ok())
            .collect();
        assert_eq!(srv.count("GET /p"), 400, "{flag}: each request once");
        assert_eq!(batches.iter().sum::<u64>(), 400, "{flag}");
        assert_eq!(batches.iter().max(), Some(&8), "{flag}: {batches:?}");
        assert!(
            batches.iter().filter(|&&b| b == 8).count() >= 45,
            "{flag}: the pipeline runs full: {batches:?}"
        );
    }
    // Both flags name one depth: two different values are one clear line.
    let run = run_load(
        &["-k", "-K", "4", "--streams", "8", "http://127.0.0.1:1/"],
        LIMIT,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("give one"), "{}", run.stderr);
    let run = run_load(&["--streams", "8", "http://127.0.0.1:1/"], LIMIT);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("needs keep-alive (-k)"),
        "{}",
        run.stderr
    );
}

/// h2o (Debian's package) over h2c with prior knowledge, counted in its access log.
#[test]
fn exact_counts_against_h2o() {
    let dir = TempDir::new("h2o");
    let d = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.txt"), b"hello").unwrap();
    let port = free_port();
    let conf = format!(
        "listen:\n  host: 127.0.0.1\n  port: {port}\nerror-log: {d}/error.log\n\
         access-log: {d}/access.log\nhosts:\n  default:\n    paths:\n      /:\n        file.dir: {d}/www\n"
    );
    let conf_path = dir.path().join("h2o.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = ChildGuard(
        Command::new("h2o")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("h2o (install it: scripts/install-test-deps.sh)"),
    );
    wait_for_listener(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(10),
    );
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "32",
            "-c",
            "4",
            "-n",
            "4001",
            "--no-pin",
            "--json",
            &format!("http://127.0.0.1:{port}/index.txt"),
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 4001, "{v}");
    assert_eq!(num(&v, &["bytes", "body"]), 4001 * 5, "{v}");
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let _ = child.0.wait();
    let log = dir.path().join("access.log");
    assert_eq!(log_lines(&log, "\"GET /index.txt HTTP/2\" 200 5 "), 4001);
}

#[test]
fn alpn_lets_the_server_choose_and_the_report_says_which() {
    // uring-server takes h2.
    let dir = TempDir::new("h2-alpn");
    self_signed(dir.path());
    let tls = format!("127.0.0.1:{}", free_port());
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let _srv = ChildGuard(
        Command::new(uring_tests::bin("uring-server"))
            .args(["--tls-listen", &tls, "-w", "1", "--no-pin"])
            .args(["--tls-cert", &p("self.pem"), "--tls-key", &p("self.key")])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(tls.parse().unwrap(), Duration::from_secs(10));
    let url = format!("https://{tls}/plaintext");
    let args = |url: &str| -> Vec<String> {
        [
            "--alpn",
            "h2,http/1.1",
            "--streams",
            "4",
            "-k",
            "-c",
            "2",
            "-n",
            "301",
            "--insecure",
            "--no-pin",
            "--json",
            url,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let a = args(&url);
    let run = run_load(&a.iter().map(String::as_str).collect::<Vec<_>>(), LIMIT);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 301, "{v}");
    assert_eq!(
        (v["alpn"].as_str(), v["protocol"].as_str()),
        (Some("h2"), Some("HTTP/2"))
    );

    // nginx without http2 takes http/1.1, and the run is HTTP/1.1, counted in its log.
    let nginx = Nginx::start(true);
    let a = args(&format!("https://127.0.0.1:{}/", nginx.port));
    let run = run_load(&a.iter().map(String::as_str).collect::<Vec<_>>(), LIMIT);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 301, "{v}");
    assert_eq!(
        (v["alpn"].as_str(), v["protocol"].as_str()),
        (Some("http/1.1"), Some("HTTP/1.1"))
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(nginx.access_log_lines(), 301);
}

#[test]
fn open_model_over_http2_keeps_its_rate_and_count() {
    let srv = TestServer::start(&["--no-pin"]);
    let url = format!("http://{}/plaintext", srv.addr);
    let run = run_load(
        &[
            "--http2", "-K", "4", "-c", "2", "-R", "1000", "-n", "400", "--no-pin", "--json", &url,
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 400, "{v}");
    assert_eq!(num(&v, &["streams"]), 4, "-K is --streams over HTTP/2: {v}");
    let elapsed = v["elapsed_s"].as_f64().unwrap();
    assert!(
        elapsed > 0.3,
        "400 requests at 1000/s take 0.4 s, not {elapsed}"
    );
}

/// Three shards of one HTTP/2 run (as three machines would run them) against one
/// uring-server: each its exact share of `-n`, and `merge` adds them up exactly, as the
/// server's access log counts them.
#[test]
fn shards_of_an_http2_run_merge_exactly() {
    let dir = TempDir::new("h2-shards");
    let log = dir.path().join("access.log");
    let srv = TestServer::start(&["--no-pin", "--access-log", log.to_str().unwrap()]);
    let url = format!("http://{}/plaintext", srv.addr);
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let shard = format!("{i}/3");
                run_load(
                    &[
                        "--http2",
                        "--streams",
                        "8",
                        "-c",
                        "2",
                        "-n",
                        "1001",
                        "--shard",
                        &shard,
                        "--run-id",
                        "h2-1",
                        "--no-pin",
                        "--json",
                        "-q",
                        &url,
                    ],
                    LIMIT,
                )
            })
        })
        .collect();
    let mut files = Vec::new();
    for (i, h) in runs.into_iter().enumerate() {
        let r = h.join().unwrap();
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v = r.json();
        assert_eq!(v["protocol"], "HTTP/2", "{v}");
        // Exact shares of -n 1001: 334, 334, 333.
        let share = if i < 2 { 334 } else { 333 };
        assert_eq!(num(&v, &["requests", "succeeded"]), share, "{v}");
        let p = dir.path().join(format!("shard{i}.json"));
        std::fs::write(&p, &r.stdout).unwrap();
        files.push(p.display().to_string());
    }
    let args: Vec<&str> = ["merge"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let r = run_load(&args, LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 1001, "{v}");
    assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
    assert_eq!(num(&v, &["errors", "reset"]), 0, "{v}");
    assert_eq!(num(&v, &["bytes", "body"]), 1001 * 13, "{v}");
    assert_eq!(v["shards"].as_array().map(Vec::len), Some(3), "{v}");
    let h = uring_common::stats::summary::histogram_from_base64(v["histogram"].as_str().unwrap())
        .unwrap();
    assert_eq!(h.len(), 1001);
    stop(srv);
    assert_eq!(log_lines(&log, "\"GET /plaintext HTTP/2.0\" 200 "), 1001);
}

/// The live view over HTTP/2 (`script` gives the child a pseudo-terminal): it redraws
/// each interval, and the final report names the protocol with no errors.
#[test]
fn live_view_over_http2() {
    let srv = TestServer::start(&["--no-pin"]);
    let cmd = format!(
        "{} --http2 --streams 8 -d 1500ms -c 2 --tui --interval 250ms --no-pin http://{}/plaintext",
        uring_tests::bin("uring-load").display(),
        srv.addr
    );
    let (ok, text) = uring_tests::load::run_in_terminal(&cmd);
    assert!(ok, "{text}");
    let redraws = text.matches("\r\x1b[2K").count();
    assert!(redraws >= 5, "{redraws} redraws: {text:?}");
    assert!(text.contains(" req/s, p50 "), "{text:?}");
    assert!(text.contains(", 0 errors"), "{text:?}");
    assert!(
        text.contains("protocol: HTTP/2, 8 streams per connection"),
        "{text:?}"
    );
    assert!(text.contains(" 0 errored"), "{text:?}");
}

/// The rest of the load tool's features over HTTP/2 against uring-server: a `--urls` mix
/// with per-target statistics, the latency log, the epoll tier, warm-up and repeated
/// runs; then a targets file (methods, a header, a body); every request the server
/// logged came over HTTP/2.
#[test]
fn urls_mix_latency_log_epoll_warmup_and_runs_over_http2() {
    let dir = TempDir::new("h2-mix");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), b"aaaa").unwrap();
    std::fs::write(root.join("b.txt"), b"bbbbbbbb").unwrap();
    let log = dir.path().join("access.log");
    let srv = TestServer::start(&[
        "--no-pin",
        "--root",
        root.to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    let urls = dir.path().join("urls.txt");
    std::fs::write(
        &urls,
        format!("http://{0}/a.txt\nhttp://{0}/b.txt\n", srv.addr),
    )
    .unwrap();
    let lat = dir.path().join("latency.hlog");
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "4",
            "-c",
            "2",
            "-n",
            "400",
            "--urls",
            urls.to_str().unwrap(),
            "--latency-log",
            lat.to_str().unwrap(),
            "--tier",
            "epoll",
            "--warmup",
            "200ms",
            "--runs",
            "2",
            "--no-pin",
            "--json",
        ],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(v["protocol"], "HTTP/2", "{v}");
    assert_eq!(v["tier"], "epoll", "{v}");
    assert_eq!(num(&v, &["runs", "count"]), 2, "{v}");
    assert_eq!(num(&v, &["requests", "succeeded"]), 800, "{v}");
    let targets = v["targets"].as_array().expect("per-target statistics");
    assert_eq!(targets.len(), 2, "{v}");
    for (t, path) in targets.iter().zip(["/a.txt", "/b.txt"]) {
        assert!(t["label"].as_str().unwrap().ends_with(path), "{t}");
        assert_eq!(num(t, &["requests", "succeeded"]), 400, "{t}");
        assert_eq!(num(t, &["status_codes", "by_code", "200"]), 400, "{t}");
    }
    // The latency log: HdrHistogram's log format, at least one interval.
    let text = std::fs::read_to_string(&lat).unwrap();
    assert!(text.starts_with("#[Logged with uring-load"), "{text}");
    assert!(
        text.lines().any(|l| l.contains(",HISTF")),
        "no interval in {text}"
    );
    // A vegeta targets file: methods, a header, a body from a file; per target exact.
    let body = dir.path().join("body.json");
    std::fs::write(&body, br#"{"k":1}"#).unwrap();
    let targets_file = dir.path().join("targets.txt");
    std::fs::write(
        &targets_file,
        format!(
            "GET http://{0}/a.txt\nX-Test: yes\n\nPOST http://{0}/plaintext\nContent-Type: application/json\n@{1}\n\nHEAD http://{0}/b.txt\n",
            srv.addr,
            body.display()
        ),
    )
    .unwrap();
    let run = run_load(
        &[
            "--http2",
            "--streams",
            "4",
            "-c",
            "2",
            "-n",
            "300",
            "--targets",
            targets_file.to_str().unwrap(),
            "--no-pin",
            "--json",
        ],
        LIMIT,
    );
    let v = run.json();
    let seen: Vec<(String, u64)> = (v["targets"].as_array().expect("per-target statistics"))
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_string(),
                num(t, &["requests", "done"]),
            )
        })
        .collect();
    assert_eq!(seen.len(), 3, "{v}");
    assert!(seen.iter().all(|(_, n)| *n == 100), "{seen:?}");
    stop(srv);
    // The targets run: each method as the server logged it (the built-in endpoint takes
    // GET only, so the POST is its 405).
    assert_eq!(log_lines(&log, "\"POST /plaintext HTTP/2.0\" 405 "), 100);
    assert_eq!(log_lines(&log, "\"HEAD /b.txt HTTP/2.0\" 200 0 "), 100);
    // Warm-up requests come before the measured ones: the server saw at least the 800,
    // every one of them over HTTP/2, both files.
    let all = log_lines(&log, "\"GET /");
    assert!(all >= 900, "{all}");
    assert_eq!(
        log_lines(&log, "\"GET /a.txt HTTP/2.0\" 200 ")
            + log_lines(&log, "\"GET /b.txt HTTP/2.0\" 200 "),
        all
    );
    assert!(log_lines(&log, "\"GET /a.txt HTTP/2.0\" 200 4 ") >= 400);
    assert!(log_lines(&log, "\"GET /b.txt HTTP/2.0\" 200 8 ") >= 400);
}
