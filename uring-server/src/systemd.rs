//! The service manager's side channel (sd_notify(3)): `READY=1` once every worker
//! listens, `RELOADING=1` … `READY=1` around a reload or an upgrade, `STOPPING=1` when
//! the drain begins, `WATCHDOG=1` every half `WATCHDOG_USEC` while every worker runs,
//! `MAINPID=` when an upgrade hands the service to its successor. Without
//! `NOTIFY_SOCKET` every call is a no-op, so the binary behaves the same outside systemd.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Send one notification (newline-separated `KEY=VALUE` lines). Ok(false) when there is
/// no service manager to tell.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let bytes = path.as_encoded_bytes();
    let addr = match bytes.first() {
        // A leading '@' names a socket in the abstract namespace.
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
        Some(b'/') => SocketAddr::from_pathname(&path)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither a path nor an abstract name",
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// [`notify`], reporting a failure on stderr once per call (the server keeps running:
/// a missed notification is systemd's timeout to handle, not ours to die of).
pub fn tell(state: &str) {
    if let Err(e) = notify(state) {
        eprintln!(
            "uring-server: cannot notify the service manager ({}): {e}",
            state.replace('\n', " ")
        );
    }
}

/// `RELOADING=1` with the `MONOTONIC_USEC` that newer systemd versions ask for.
pub fn reloading() -> String {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// How often to send `WATCHDOG=1` (half of `WATCHDOG_USEC`), if the watchdog is on for
/// this process (`WATCHDOG_PID` absent or ours, as sd_watchdog_enabled(3) checks).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloading_carries_a_monotonic_timestamp() {
        let r = reloading();
        let (first, second) = r.split_once('\n').unwrap();
        assert_eq!(first, "RELOADING=1");
        let usec: u64 = second
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }
}
