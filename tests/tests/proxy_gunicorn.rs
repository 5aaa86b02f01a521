//! uring-server in front of gunicorn's sync worker (the seed's app), as gunicorn's own
//! deployment advice asks of a buffering proxy: requests through it, smuggling attempts
//! counted in gunicorn's access log, and the clog test (slow clients at 1 byte/s against
//! `gunicorn -w 2`, directly, through uring-server and through nginx, with the numbers
//! printed).
//!
//! gunicorn is Debian's package (`scripts/install-test-deps.sh` installs it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use uring_tests::appservers::Gunicorn;
use uring_tests::clog::{clog, CLOG_APP};
use uring_tests::load::{num, run_load, Nginx};
use uring_tests::server::ServerProc;

/// nginx as the buffering proxy in front of `upstream`, `keepalive 32` to it.
fn nginx_proxy(upstream: SocketAddr) -> Nginx {
    Nginx::with_http("nginx-proxy", |_, port| {
        format!(
            "access_log off;
    upstream app {{ server {upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}"
        )
    })
}

fn proxy_to(upstream: &str) -> ServerProc {
    ServerProc::start(&["--proxy", &format!("/={upstream}")])
}

/// Wait until gunicorn's log has `n` lines (it may lag the response by a moment).
fn wait_logged(g: &Gunicorn, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let logged = || g.access_log().lines().count();
    while logged() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    logged()
}

#[test]
fn seed_app_through_the_proxy() {
    let g = Gunicorn::start(CLOG_APP, 2);
    let px = proxy_to(&g.url());
    let url = format!("http://{}/", px.addr);
    let run = run_load(
        &["-n", "300", "-c", "8", "-t", "1", "-k", "--json", &url],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 300, "{v}");
    // gunicorn's sync worker closes after every response: no reuse, and no request lost.
    assert_eq!(wait_logged(&g, 300), 300);
}

#[test]
fn smuggling_attempts_never_desynchronise_gunicorn() {
    let g = Gunicorn::start(CLOG_APP, 1);
    let px = proxy_to(&g.url());
    let attacks: [&[u8]; 3] = [
        // CL.TE: a front that trusted CL would forward the smuggled GET inside the body.
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n",
        // TE.CL
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1f\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n\r\n0\r\n\r\n",
        // two Content-Lengths
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 33\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n",
    ];
    let mut legit = 0;
    for a in attacks {
        let mut s = TcpStream::connect(px.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(a).unwrap();
        // A well-formed request after the attack on the same connection.
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let all = String::from_utf8_lossy(&all);
        assert!(all.starts_with("HTTP/1.1 400"), "{all}");
        assert_eq!(
            all.matches("HTTP/1.1 ").count(),
            1,
            "answered past the attack: {all}"
        );
        // And a clean request on a new connection reaches gunicorn once.
        let mut s = TcpStream::connect(px.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        assert!(String::from_utf8_lossy(&all).ends_with("Hello, World!"));
        legit += 1;
    }
    let logged = wait_logged(&g, legit);
    let log = g.access_log();
    assert_eq!(
        logged, legit,
        "gunicorn saw requests nobody sent legitimately:\n{log}"
    );
    assert!(!log.contains("smuggled"), "{log}");
}

/// The seed's clog, and the fix: gunicorn's sync worker waits on a slow client as long
/// as it takes; behind a buffering proxy it only ever sees complete requests and hands
/// its response to a fast reader.
#[test]
fn the_clog_test() {
    let direct = {
        let g = Gunicorn::start(CLOG_APP, 2);
        clog(g.addr, 50)
    };
    let through_uring = {
        let g = Gunicorn::start(CLOG_APP, 2);
        let px = proxy_to(&g.url());
        clog(px.addr, 50)
    };
    let through_nginx = {
        let g = Gunicorn::start(CLOG_APP, 2);
        let nx = nginx_proxy(g.addr);
        clog(nx.addr(), 50)
    };
    println!("clog test: gunicorn -w 2 sync, 50 clients at 1 byte/s both ways, uring-load -c 4 for 10 s (-T 5s)");
    println!(
        "  direct:               {:>6} succeeded, {:>4} failed or timed out",
        direct.0, direct.1
    );
    println!(
        "  through uring-server: {:>6} succeeded, {:>4} failed or timed out",
        through_uring.0, through_uring.1
    );
    println!(
        "  through nginx:        {:>6} succeeded, {:>4} failed or timed out",
        through_nginx.0, through_nginx.1
    );
    assert!(direct.1 > 0, "directly, gunicorn should clog: {direct:?}");
    assert_eq!(
        through_uring.1, 0,
        "through uring-server nothing may fail: {through_uring:?}"
    );
    assert!(through_uring.0 >= 100, "{through_uring:?}");
    assert!(
        through_uring.0 > 10 * direct.0.max(1),
        "{direct:?} vs {through_uring:?}"
    );
}
