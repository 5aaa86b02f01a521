//! Shared helpers for the black-box tests in `tests/`: locating the built binaries,
//! picking free loopback ports, and waiting for a listener.
//!
//! The test command (`scripts/test.sh`) builds the binaries before `cargo test` runs, so
//! the tests start the real programs, not library calls.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Path of a binary of this workspace, built in the same profile as the tests.
pub fn bin(name: &str) -> PathBuf {
    // The test executable lives in target/<profile>/deps/; binaries in target/<profile>/.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Wait until something accepts TCP connections on `addr`, or panic after `timeout`.
pub fn wait_for_listener(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {addr} after {timeout:?}");
}
/// Every tier the black-box suites run the binaries on: the three io_uring tiers and
/// epoll (the same suites, so the epoll backend is held to the same protocol, adversarial,
/// fault and exactness checks).
pub const TIERS: [&str; 4] = ["basic", "multishot", "full", "epoll"];

pub mod load;
pub mod reliability;
pub mod server;

/// Make the next close of `sock` send a RST instead of a FIN (SO_LINGER with a zero
/// timeout): how the tests play a client or server that resets mid-exchange.
pub fn set_linger_zero(sock: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an open socket with a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER): {}",
        std::io::Error::last_os_error()
    );
}
