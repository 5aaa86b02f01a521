//! uring-load against real peers: nginx (with its access log as the witness), Python's
//! http.server (HTTP/1.0, closes every connection), a Python HTTP/1.1 server for chunked
//! bodies, HEAD, 404 and 500, and nginx over HTTPS with a self-signed certificate.

use std::time::Duration;

use uring_tests::load::{num, run_load, Nginx, PythonServer, PY_HTTP_SERVER, PY_VARIOUS};

const LIMIT: Duration = Duration::from_secs(120);

fn exact(v: &serde_json::Value, n: u64) {
    assert_eq!(num(v, &["requests", "started"]), n, "{v}");
    assert_eq!(num(v, &["requests", "done"]), n, "{v}");
    assert_eq!(num(v, &["requests", "succeeded"]), n, "{v}");
    assert_eq!(num(v, &["requests", "errored"]), 0, "{v}");
    assert_eq!(num(v, &["status_codes", "2xx"]), n, "{v}");
}

#[test]
fn load_nginx_keep_alive_exact_count() {
    let nginx = Nginx::start(false);
    let url = format!("http://127.0.0.1:{}/", nginx.port);
    let r = run_load(
        &["-n", "10000", "-c", "200", "-t", "3", "-k", "--json", &url],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    exact(&v, 10_000);
    assert_eq!(num(&v, &["connections", "opened"]), 200, "{v}");
    assert_eq!(nginx.access_log_lines(), 10_000);
}

#[test]
fn load_nginx_without_keep_alive_exact_count() {
    let nginx = Nginx::start(false);
    let url = format!("http://127.0.0.1:{}/", nginx.port);
    let r = run_load(
        &["-n", "10000", "-c", "200", "-t", "3", "--json", &url],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    exact(&v, 10_000);
    // One connection per request, closed by the client: no reconnects counted.
    assert_eq!(num(&v, &["connections", "opened"]), 10_000, "{v}");
    assert_eq!(num(&v, &["connections", "reconnects"]), 0, "{v}");
    assert_eq!(nginx.access_log_lines(), 10_000);
}

#[test]
fn load_nginx_pipelined_and_every_tier() {
    let nginx = Nginx::start(false);
    let url = format!("http://127.0.0.1:{}/", nginx.port);
    let mut logged = 0;
    for tier in ["basic", "multishot", "full", "epoll"] {
        let r = run_load(
            &[
                "-n", "3000", "-c", "10", "-t", "2", "-k", "-K", "8", "--tier", tier, "--json",
                &url,
            ],
            LIMIT,
        );
        assert_eq!(r.code, 0, "tier {tier}: {}", r.stderr);
        let v = r.json();
        exact(&v, 3000);
        assert_eq!(v["tier"], tier, "{v}");
        logged += 3000;
        assert_eq!(nginx.access_log_lines(), logged, "tier {tier}");

        // And a connection per request.
        let r = run_load(
            &[
                "-n", "1000", "-c", "10", "-t", "2", "--tier", tier, "--json", &url,
            ],
            LIMIT,
        );
        assert_eq!(r.code, 0, "tier {tier}: {}", r.stderr);
        let v = r.json();
        exact(&v, 1000);
        assert_eq!(num(&v, &["connections", "opened"]), 1000, "{v}");
        logged += 1000;
        assert_eq!(nginx.access_log_lines(), logged, "tier {tier}");
    }
}

#[test]
fn load_nginx_status_404_is_failed_not_errored() {
    let nginx = Nginx::start(false);
    let url = format!("http://127.0.0.1:{}/missing", nginx.port);
    let r = run_load(&["-n", "500", "-c", "5", "-k", "--json", &url], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "done"]), 500);
    assert_eq!(num(&v, &["requests", "failed"]), 500);
    assert_eq!(num(&v, &["requests", "succeeded"]), 0);
    assert_eq!(num(&v, &["status_codes", "4xx"]), 500);
    assert_eq!(num(&v, &["status_codes", "by_code", "404"]), 500);
}

#[test]
fn load_https_self_signed_with_insecure() {
    let nginx = Nginx::start(true);
    let url = format!("https://127.0.0.1:{}/", nginx.port);
    let r = run_load(
        &[
            "-n",
            "2000",
            "-c",
            "8",
            "-t",
            "2",
            "-k",
            "--insecure",
            "--json",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    exact(&v, 2000);
    assert_eq!(num(&v, &["bytes", "body"]), 4000, "{v}");
    assert_eq!(nginx.access_log_lines(), 2000);

    // Without -k: a handshake per request.
    let r = run_load(
        &["-n", "200", "-c", "4", "--insecure", "--json", &url],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    exact(&r.json(), 200);

    // Pipelined, on the basic (5.10) tier's own receive buffers.
    let r = run_load(
        &[
            "-n",
            "1000",
            "-c",
            "4",
            "-k",
            "-K",
            "4",
            "--tier",
            "basic",
            "--insecure",
            "--json",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    exact(&r.json(), 1000);

    // Without --insecure the self-signed certificate is refused: connect errors, no
    // response, and the run still ends; every request failed, so exit 1 with the cause.
    let r = run_load(&["-n", "20", "-c", "2", "-k", "--json", &url], LIMIT);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = r.json();
    assert_eq!(num(&v, &["requests", "done"]), 0, "{v}");
    assert_eq!(num(&v, &["errors", "connect"]), 20, "{v}");
    let cause = v["first_errors"]["connect"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        cause.starts_with("TLS: ") && cause.contains("certificate"),
        "{v}"
    );
    assert!(
        r.stderr.contains(&format!("  connect: 20 × {cause}")),
        "{}",
        r.stderr
    );
    assert_eq!(nginx.access_log_lines(), 3200);
}

#[test]
fn load_python_http_server_closes_every_connection() {
    let py = PythonServer::start(PY_HTTP_SERVER);
    // A directory listing: HTTP/1.0, the server closes after each response.
    let url = format!("http://127.0.0.1:{}/", py.port);
    let r = run_load(&["-n", "300", "-c", "4", "-k", "--json", &url], LIMIT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    exact(&v, 300);
    assert_eq!(num(&v, &["connections", "opened"]), 300, "{v}");
    assert!(num(&v, &["connections", "reconnects"]) >= 296, "{v}");
}

#[test]
fn load_python_chunked_head_404_500() {
    let py = PythonServer::start(PY_VARIOUS);
    let base = format!("http://127.0.0.1:{}", py.port);

    let r = run_load(
        &[
            "-n",
            "400",
            "-c",
            "4",
            "-k",
            "--json",
            &format!("{base}/chunked"),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    exact(&v, 400);
    assert_eq!(num(&v, &["bytes", "body"]), 400 * 11, "{v}");

    let r = run_load(
        &[
            "-n",
            "300",
            "-c",
            "3",
            "-k",
            "-m",
            "HEAD",
            "--json",
            &format!("{base}/"),
        ],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    exact(&v, 300);
    assert_eq!(num(&v, &["bytes", "body"]), 0, "{v}");

    for (path, code, class) in [("/404", "404", "4xx"), ("/500", "500", "5xx")] {
        let r = run_load(
            &[
                "-n",
                "200",
                "-c",
                "2",
                "-k",
                "--json",
                &format!("{base}{path}"),
            ],
            LIMIT,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v = r.json();
        assert_eq!(num(&v, &["requests", "done"]), 200, "{v}");
        assert_eq!(num(&v, &["requests", "failed"]), 200, "{v}");
        assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
        assert_eq!(num(&v, &["status_codes", class]), 200, "{v}");
        assert_eq!(num(&v, &["status_codes", "by_code", code]), 200, "{v}");
    }
}

#[test]
fn load_pipelined_requests_behind_a_closing_response_are_resent_once() {
    // nginx answers the 50th request of a connection with `Connection: close` and drops
    // the requests pipelined behind it; they are sent again on a new connection, and
    // both the access log and the report count each request exactly once.
    let nginx = Nginx::start_with(false, 50);
    let url = format!("http://127.0.0.1:{}/", nginx.port);
    let r = run_load(
        &["-n", "3000", "-c", "4", "-k", "-K", "8", "--json", &url],
        LIMIT,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    exact(&v, 3000);
    assert!(num(&v, &["connections", "reconnects"]) >= 50, "{v}");
    assert_eq!(nginx.access_log_lines(), 3000);
}
