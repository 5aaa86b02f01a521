//! The library API as an embedding program uses it: a custom handler, port 0 shared by
//! several workers, per-worker state, request bodies, graceful shutdown, start-up errors.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use uring_server::{Listening, Request, ResponseWriter, Server, ServerError, TierChoice};

fn get(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn custom_handler_on_two_workers_sharing_port_zero() {
    let mut count = 0u64;
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .workers(2)
        .pin(false)
        .tier(TierChoice::Auto)
        .handler(move |req: &Request<'_>, resp: &mut ResponseWriter<'_>| {
            count += 1;
            let body = format!(
                "{} {} {} {}",
                req.method(),
                req.path(),
                req.body().len(),
                count
            );
            resp.respond(200, &[("Content-Type", b"text/plain")], body.as_bytes());
        })
        .start()
        .expect("start");
    let addrs = server.local_addrs();
    assert_eq!(addrs.len(), 1);
    assert_ne!(addrs[0].port(), 0);
    for _ in 0..10 {
        let out = get(
            addrs[0],
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Server: uring-server\r\n"));
        assert!(out.contains("\r\n\r\nPOST /echo 4 "), "{out}");
    }
    server.shutdown();
    assert!(
        TcpStream::connect(addrs[0]).is_err(),
        "still listening after shutdown"
    );
}

#[test]
fn default_handler_and_start_errors() {
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .pin(false)
        .start()
        .expect("start");
    let addr = server.local_addrs()[0];
    let out = get(
        addr,
        b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        out.ends_with("\r\n\r\n{\"message\":\"Hello, World!\"}"),
        "{out}"
    );

    let err = Server::builder()
        .listen(addr)
        .pin(false)
        .start()
        .err()
        .expect("second bind on a used port");
    assert!(
        matches!(err, ServerError::AddressInUse(_, Listening::Http)),
        "{err:?}"
    );
    let line = err.to_string();
    assert!(
        !line.contains('\n') && line.contains("already in use"),
        "{line}"
    );

    let err = Server::builder().workers(0).start().err().unwrap();
    assert!(matches!(err, ServerError::Config(_)));
    let err = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .root("/nonexistent/dir")
        .start()
        .err()
        .unwrap();
    assert!(matches!(err, ServerError::Root(..)), "{err:?}");
    drop(server);
}
