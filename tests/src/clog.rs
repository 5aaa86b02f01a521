//! The seed's clog, reproduced: slow clients (1 byte/s both ways) occupy a sync app
//! server's workers while uring-load sends normal requests; what gets through is counted.
//! Used against gunicorn (tests/proxy_gunicorn.rs) and uWSGI (tests/proxy_appservers.rs),
//! directly and behind a buffering proxy.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::load::{num, run_load};

/// The seed's hello-world WSGI app (callable `app`), plus `/big` (512 KiB) for the slow
/// clients to read.
pub const CLOG_APP: &str = "\
def app(environ, start_response):
    if environ.get('PATH_INFO') == '/big':
        body = b'x' * (512 * 1024)
    else:
        body = b'Hello, World!'
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
";

/// One slow client: sends its request at 1 byte/s (`head_start` bytes at once, so that
/// clients are at every stage during the run) and reads the response at 1 byte/s.
fn slow_client(addr: SocketAddr, head_start: usize, stop: Arc<AtomicBool>) {
    let Ok(s) = TcpStream::connect(addr) else {
        return;
    };
    // A tiny receive window, so the sender really waits for us.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
    let small: libc::c_int = 4096;
    // SAFETY: setsockopt with a valid int option on an open socket.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let mut s = s;
    let req = b"GET /big HTTP/1.1\r\nHost: slow\r\n\r\n";
    let first = head_start.min(req.len() - 1);
    if s.write_all(&req[..first]).is_err() {
        return;
    }
    for b in &req[first..] {
        if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    s.set_read_timeout(Some(Duration::from_millis(1100)))
        .unwrap();
    let mut one = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut one) {
            Ok(0) => return,
            Ok(_) => std::thread::sleep(Duration::from_secs(1)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// `clients` slow clients against `addr` (each asks for `/big`, which the app must serve
/// large enough to fill the socket buffers) while uring-load sends normal requests for
/// 10 s. Returns (succeeded, failed or errored).
pub fn clog(addr: SocketAddr, clients: usize) -> (u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..clients)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || slow_client(addr, i % 33, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let url = format!("http://{addr}/");
    let run = run_load(
        &[
            "-d", "10s", "-c", "4", "-t", "1", "-k", "-T", "5s", "--json", &url,
        ],
        Duration::from_secs(40),
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let v = run.json();
    let ok = num(&v, &["requests", "succeeded"]);
    let bad = num(&v, &["requests", "failed"]) + num(&v, &["requests", "errored"]);
    (ok, bad)
}
