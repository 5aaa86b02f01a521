//! Shared helpers for the black-box tests in `tests/`: locating the built binaries,
//! picking free loopback ports, and waiting for a listener.
//!
//! The test command (`scripts/test.sh`) builds the binaries before `cargo test` runs, so
//! the tests start the real programs, not library calls; [`bin`] refuses a binary older
//! than its sources (`cargo test` alone does not rebuild them).

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
    // `cargo test` does not rebuild the programs the tests start: a test run against a
    // binary older than its sources would test yesterday's code and pass or fail for the
    // wrong reason. Refuse instead.
    if let Some(src) = newer_source(&path, name) {
        panic!(
            "{} is older than {} (changed since the last build): run `cargo build \
             --workspace --bins` first (scripts/test.sh does)",
            path.display(),
            src.display()
        );
    }
    path
}

/// A source file of the binary's crates modified after the binary was built, if any.
fn newer_source(bin: &std::path::Path, name: &str) -> Option<PathBuf> {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let own = match name {
        "uring-server" | "uring-load" => name,
        _ => "benches",
    };
    let mut dirs = vec![root.join("common/src"), root.join(own).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let p = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "rs")
                && meta.modified().is_ok_and(|m| m > built)
            {
                return Some(p);
            }
        }
    }
    None
}

/// A loopback port that was free a moment ago and that no other call in this process
/// has handed out.
///
/// Not `bind(0)`: the kernel picks that from the ephemeral range, so two tests running
/// at once could be handed the same port (the second server then fails with "address in
/// use", or worse, both listen with SO_REUSEPORT and share the connections), and the
/// tests' own client sockets take their source ports from the same range. Instead a
/// counter walks a window of ports just below the ephemeral range, starting at an offset
/// from the pid, and each candidate is checked with a bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: std::sync::OnceLock<(u32, u32, AtomicU32)> = std::sync::OnceLock::new();
    let (lo, len, next) = NEXT.get_or_init(|| {
        let (lo, len) = port_window();
        (lo, len, AtomicU32::new(std::process::id() % len))
    });
    let (lo, len) = (*lo, *len);
    for _ in 0..len {
        let port = (lo + next.fetch_add(1, Ordering::Relaxed) % len) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {lo}..{}", lo + len);
}

/// The ports [`free_port`] hands out: the 12,000 below the kernel's ephemeral range, or
/// 20000-31999 when that range starts too low to leave room below it.
fn port_window() -> (u32, u32) {
    const LEN: u32 = 12_000;
    let ephemeral_lo = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    match ephemeral_lo >= 1024 + LEN {
        true => (ephemeral_lo - LEN, LEN),
        false => (20_000, LEN),
    }
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

pub mod appservers;
pub mod clog;
pub mod load;
pub mod reliability;
pub mod server;

/// A fresh self-signed certificate for `localhost` and 127.0.0.1 (P-256, two days) at
/// `cert`, its key at `key`: what the TLS tests give a server of theirs.
pub fn self_signed_cert(cert: &std::path::Path, key: &std::path::Path) {
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl (install it: scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn a_binary_older_than_its_sources_is_refused() {
        let dir = std::env::temp_dir().join(format!("stale-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("uring-server");
        std::fs::write(&old, b"").unwrap();
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 365 * 86400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        assert!(super::newer_source(&old, "uring-server").is_some());
        let fresh = dir.join("uring-load");
        std::fs::write(&fresh, b"").unwrap();
        let future = std::time::SystemTime::now() + std::time::Duration::from_secs(86400);
        std::fs::File::options()
            .write(true)
            .open(&fresh)
            .unwrap()
            .set_modified(future)
            .unwrap();
        assert!(super::newer_source(&fresh, "uring-load").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Tests run in parallel threads and each starts servers on `free_port()`; a port
    /// handed out twice made a server fail with "address in use" (or share connections
    /// with another test's server through SO_REUSEPORT) about once in 150 runs of
    /// reliability_adversarial.
    #[test]
    fn free_port_hands_out_each_port_once_across_threads() {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| (0..250).map(|_| super::free_port()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u16> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            n,
            "{} of {n} ports handed out twice",
            n - all.len()
        );
        let (lo, len) = super::port_window();
        assert!(all.iter().all(|&p| (lo..lo + len).contains(&u32::from(p))));
    }
}
