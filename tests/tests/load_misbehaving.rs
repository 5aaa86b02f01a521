//! uring-load against servers that misbehave on purpose: each failure lands in its own
//! error class, the run ends on time, and nothing hangs. And the open model (-R) against
//! a server that stalls every Nth request: the stall shows in the high percentiles.

use std::time::Duration;

use uring_tests::load::{num, run_load, LoadRun, MisbehavingServer, Misbehaviour};

const LIMIT: Duration = Duration::from_secs(60);

fn errors(v: &serde_json::Value) -> [u64; 5] {
    ["connect", "read", "write", "timeout", "parse"].map(|k| num(v, &["errors", k]))
}

/// A run where every request failed: exit 1, and stderr names the first error of each
/// class after one summary line; the JSON report (stdout) carries the same first error.
/// Returns the class's stderr line and the JSON message.
fn every_request_failed(r: &LoadRun, class: &str, count: u64) -> (String, String) {
    assert_eq!(r.code, 1, "{}", r.stderr);
    let mut lines = r.stderr.lines().filter(|l| !l.starts_with("progress: "));
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with("uring-load: every request failed (") && head.contains("none answered"),
        "{}",
        r.stderr
    );
    let prefix = format!("  {class}: {count} × ");
    let line = lines
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{}", r.stderr))
        .to_string();
    let v = r.json();
    let message = v["first_errors"][class]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no first_errors.{class}.message in {v}"))
        .to_string();
    assert!(v["first_errors"][class]["at_unix_us"].as_u64().unwrap() > 0);
    assert_eq!(line, format!("{prefix}{message}"));
    (line, message)
}

#[test]
fn load_reset_connections_are_read_errors() {
    let srv = MisbehavingServer::start(Misbehaviour::Reset);
    let r = run_load(&["-n", "100", "-c", "4", "-k", "--json", &srv.url()], LIMIT);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "errored"]), 100, "{v}");
    assert_eq!(num(&v, &["requests", "done"]), 0, "{v}");
    assert_eq!(errors(&v), [0, 100, 0, 0, 0], "{v}");
    let (_, message) = every_request_failed(&r, "read", 100);
    assert_eq!(
        message,
        format!("Connection reset by peer (os error 104) from {}", srv.addr)
    );
}

#[test]
fn load_garbage_responses_are_parse_errors() {
    let srv = MisbehavingServer::start(Misbehaviour::Garbage);
    let r = run_load(&["-n", "100", "-c", "4", "-k", "--json", &srv.url()], LIMIT);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "errored"]), 100, "{v}");
    assert_eq!(errors(&v), [0, 0, 0, 0, 100], "{v}");
    let (_, message) = every_request_failed(&r, "parse", 100);
    assert!(message.starts_with("malformed response"), "{message}");
}

#[test]
fn load_stalled_responses_are_timeouts_and_the_run_ends() {
    let srv = MisbehavingServer::start(Misbehaviour::Stall);
    let r = run_load(
        &[
            "-n",
            "6",
            "-c",
            "3",
            "-k",
            "-T",
            "300ms",
            "--json",
            &srv.url(),
        ],
        LIMIT,
    );
    let v = r.json();
    assert_eq!(num(&v, &["requests", "errored"]), 6, "{v}");
    assert_eq!(errors(&v), [0, 0, 0, 6, 0], "{v}");
    let (_, message) = every_request_failed(&r, "timeout", 6);
    assert!(message.contains("-T"), "{message}");
    // Two rounds of 300 ms timeouts; generous bound for a loaded machine.
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);

    // With -d the run stops at the deadline even though nothing ever answers; nothing
    // errored either (the requests in flight are abandoned), so it is no failure.
    let r = run_load(
        &[
            "-d",
            "1s",
            "-c",
            "3",
            "-k",
            "-T",
            "10s",
            "--json",
            &srv.url(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "done"]), 0, "{v}");
    assert_eq!(num(&v, &["requests", "started"]), 3, "{v}");
    assert!(r.elapsed < Duration::from_secs(8), "{:?}", r.elapsed);
}

#[test]
fn load_refused_connections_are_connect_errors() {
    // A port nothing listens on.
    let port = uring_tests::free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let r = run_load(&["-n", "50", "-c", "5", "-k", "--json", &url], LIMIT);
    let v = r.json();
    assert_eq!(errors(&v), [50, 0, 0, 0, 0], "{v}");
    let (line, _) = every_request_failed(&r, "connect", 50);
    assert_eq!(
        line,
        format!("  connect: 50 × Connection refused (os error 111) to 127.0.0.1:{port}")
    );

    // The open model too: each failed connect uses up a due request, so -n still ends.
    let r = run_load(
        &["-n", "30", "-R", "300", "-c", "3", "-k", "--json", &url],
        LIMIT,
    );
    let v = r.json();
    assert_eq!(errors(&v), [30, 0, 0, 0, 0], "{v}");
    every_request_failed(&r, "connect", 30);
}

#[test]
fn load_open_model_shows_the_stall_in_high_percentiles() {
    // Every 500th request holds the whole server for 300 ms. At 1000 req/s the requests
    // that came due during a stall wait for it, and their latency counts from their
    // intended send time: roughly 60% of requests see between 0 and 300 ms.
    let pause = Duration::from_millis(300);
    let srv = MisbehavingServer::start(Misbehaviour::StallEveryNth { n: 500, pause });
    let r = run_load(
        &[
            "-n",
            "2000",
            "-R",
            "1000",
            "-c",
            "2",
            "-k",
            "--json",
            &srv.url(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 2000, "{v}");
    let p90 = num(&v, &["latency_us", "p90"]);
    let max = num(&v, &["latency_us", "max"]);
    assert!(
        p90 >= 150_000,
        "p90 {p90} us should show the 300 ms stalls: {v}"
    );
    assert!(max >= 290_000, "max {max} us: {v}");
}

#[test]
fn load_connect_timeouts_are_connect_errors() {
    use std::os::fd::FromRawFd;
    // A listener that never accepts, with a backlog of one that a first connection
    // fills: the kernel drops further SYNs, so connects hang until -T.
    // SAFETY: plain socket calls on a fresh fd that the OwnedFd below closes.
    let fd = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        std::os::fd::OwnedFd::from_raw_fd(fd)
    };
    let listener = std::net::TcpListener::from(fd);
    let addr = listener.local_addr().unwrap();
    // Fill the accept queue (a backlog of 0 still admits one).
    let _fill: Vec<_> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    let url = format!("http://{addr}/");
    let r = run_load(
        &["-n", "4", "-c", "2", "-T", "300ms", "--json", &url],
        LIMIT,
    );
    let v = r.json();
    assert_eq!(errors(&v), [4, 0, 0, 0, 0], "{v}");
    let (_, message) = every_request_failed(&r, "connect", 4);
    assert_eq!(
        message,
        format!("Connection timed out (os error 110) to {addr}")
    );
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
}
