//! A custom handler that routes to an upstream the server does not have (no `--proxy`
//! configured, or an index past the configured ones): a 502 for that request, and the
//! worker goes on serving (it used to index the pools out of range and panic).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use uring_server::config::UpstreamRoute;
use uring_server::{Handler, Request, ResponseWriter, Server};

#[derive(Clone)]
struct RoutesNowhere;

impl Handler for RoutesNowhere {
    fn handle(&mut self, _req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        resp.respond(200, &[("Content-Type", b"text/plain")], b"here\n");
    }

    fn upstream_for(&self, req: &Request<'_>) -> Option<UpstreamRoute> {
        req.path().starts_with("/app").then_some(UpstreamRoute {
            upstream: 3,
            trust_forwarded: false,
            ..Default::default()
        })
    }
}

#[test]
fn a_route_to_a_missing_upstream_is_a_502_not_a_panic() {
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .pin(false)
        .handler(RoutesNowhere)
        .start()
        .expect("start");
    let addr = server.local_addrs()[0];
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /app HTTP/1.1\r\nHost: x\r\n\r\nGET /local HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nhere\n"), "{out}");
    server.shutdown();
}
