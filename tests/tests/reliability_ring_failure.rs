//! A worker whose ring fails must not leave its listener open: new connections would queue
//! on a socket nobody accepts from and hang. The ring is broken from outside by a seccomp
//! filter that fails every busy io_uring_enter (4 or more submissions at once) with
//! EBADFD; the server starts (it submits 3 at start-up) and breaks under a burst of
//! connections. From the moment the worker says its ring failed, a connect is refused at
//! once (the binary also exits within a second after that; the library keeps running).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use uring_tests::reliability::{break_ring_when_busy, TestServer};

#[test]
fn a_worker_whose_ring_fails_closes_its_listener_at_once() {
    let srv = TestServer::start_with(&[], break_ring_when_busy);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Bursts of connections, each with a request, until the ring "fails".
    'burst: loop {
        assert!(
            Instant::now() < deadline,
            "no burst broke the ring within 20 s; log: {}",
            srv.log_text()
        );
        let mut burst = Vec::new();
        for _ in 0..32 {
            if let Ok(mut c) = TcpStream::connect_timeout(&srv.addr, Duration::from_millis(200)) {
                let _ = c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
                burst.push(c);
            }
        }
        for _ in 0..50 {
            if srv.log_text().contains("ring failed") {
                break 'burst;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    match TcpStream::connect_timeout(&srv.addr, Duration::from_millis(500)) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        Err(e) => panic!("unexpected connect error {e}"),
        Ok(mut c) => {
            // Accepted into the dead worker's backlog: the request is never answered.
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let _ = c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
            let mut b = [0u8; 64];
            let got = c.read(&mut b);
            panic!(
                "the failed worker's listener still accepted a connection (read: {got:?}); log: {}",
                srv.log_text()
            );
        }
    }
}
