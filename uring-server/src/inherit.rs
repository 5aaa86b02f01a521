//! Listening sockets handed to us instead of bound by us: by systemd's socket activation
//! (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`, fds from 3 on) or by the process we
//! upgrade from (`URING_SERVER_LISTEN_FDS`, a comma-separated list of fd numbers, see
//! `upgrade.rs`).
//!
//! How the workers share them: sockets are grouped by their local address. With as many
//! sockets per address as workers (an upgrade from a server with the same `--workers`),
//! each worker gets its own, exactly as when we bind: one SO_REUSEPORT socket per worker,
//! the kernel hashes connections among them. With fewer (systemd passes one socket per
//! `ListenStream=`), every worker gets a duplicate of the same socket and arms its own
//! accept on it: the workers share one accept queue, and each connection goes to
//! whichever worker's accept the kernel completes first. Nothing is lost either way;
//! the spread is by who is waiting rather than by hash. With more sockets than workers,
//! the extra ones are spread round-robin (a worker accepts on several), because closing
//! a socket would reset the connections queued in it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The environment variable an upgrading server passes its sockets in.
pub const UPGRADE_FDS_VAR: &str = "URING_SERVER_LISTEN_FDS";

/// The sockets this process was given, with a description of where they came from (for
/// the start-up line); empty when none. The variables are removed, so children (an
/// upgrade's successor) do not mistake them for their own.
pub fn from_env() -> io::Result<(Vec<OwnedFd>, String)> {
    let fds: Vec<RawFd>;
    let from;
    if let Ok(list) = std::env::var(UPGRADE_FDS_VAR) {
        fds = list
            .split(',')
            .map(|s| s.trim().parse::<RawFd>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                bad(format!(
                    "{UPGRADE_FDS_VAR}={list} is not a list of fd numbers"
                ))
            })?;
        from = "the previous server (upgrade)".to_string();
    } else if let Ok(n) = std::env::var("LISTEN_FDS") {
        let pid = std::env::var("LISTEN_PID").unwrap_or_default();
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            // Meant for another process (sd_listen_fds(3) ignores them too).
            fds = Vec::new();
            from = String::new();
        } else {
            let n: RawFd = n
                .parse()
                .map_err(|_| bad(format!("LISTEN_FDS={n} is not a number")))?;
            fds = (3..3 + n).collect();
            let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
            from = format!(
                "systemd socket activation (names: {})",
                names.replace(':', ", ")
            );
        }
    } else {
        return Ok((Vec::new(), String::new()));
    }
    for var in [
        UPGRADE_FDS_VAR,
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
    ] {
        std::env::remove_var(var);
    }
    let mut owned = Vec::with_capacity(fds.len());
    for fd in fds {
        // SAFETY: fcntl on any number is harmless; F_GETFD fails on a closed fd.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(bad(format!("inherited fd {fd} is not open")));
        }
        // Not to leak into other children; an upgrade clears the flag for its successor.
        // SAFETY: fd is open (checked above).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: the protocol hands these fds to this process, to own from now on.
        owned.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok((owned, from))
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The local address of a socket.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    socket2::SockRef::from(&fd)
        .local_addr()?
        .as_socket()
        .ok_or_else(|| bad("not an IP socket".into()))
}

/// Each worker's sockets (see the module's doc), every worker with one per address, in
/// the order the addresses first appear.
pub fn per_worker(fds: Vec<OwnedFd>, workers: usize) -> io::Result<Vec<Vec<OwnedFd>>> {
    let mut groups: Vec<(SocketAddr, Vec<OwnedFd>)> = Vec::new();
    for fd in fds {
        let sock = socket2::SockRef::from(&fd);
        let addr = local_addr(fd.as_fd()).map_err(|e| {
            bad(format!(
                "fd {}: {e}; only TCP sockets can be passed",
                fd.as_raw_fd()
            ))
        })?;
        if !sock.is_listener()? {
            return Err(bad(format!(
                "fd {} ({addr}) is not listening; pass a listening TCP socket (ListenStream=)",
                fd.as_raw_fd()
            )));
        }
        // Accepted sockets inherit TCP_NODELAY, as on the sockets we bind.
        let _ = sock.set_tcp_nodelay(true);
        match groups.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, g)) => g.push(fd),
            None => groups.push((addr, vec![fd])),
        }
    }
    let mut out: Vec<Vec<OwnedFd>> = (0..workers).map(|_| Vec::new()).collect();
    for (_, group) in groups {
        let k = group.len();
        for w in k..workers {
            out[w].push(group[w % k].try_clone()?);
        }
        for (j, fd) in group.into_iter().enumerate() {
            out[j % workers].push(fd);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn listener() -> OwnedFd {
        OwnedFd::from(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn inode(fd: &OwnedFd) -> u64 {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd and a stat buffer.
        assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }, 0);
        st.st_ino
    }

    #[test]
    fn one_socket_is_shared_by_every_worker() {
        let l = listener();
        let ino = inode(&l);
        let per = per_worker(vec![l], 3).unwrap();
        assert_eq!(per.len(), 3);
        for w in &per {
            assert_eq!(w.len(), 1);
            assert_eq!(inode(&w[0]), ino, "a duplicate of the same socket");
        }
    }

    #[test]
    fn every_worker_gets_one_socket_per_address() {
        let (a, b, c) = (listener(), listener(), listener());
        let ports: Vec<u16> = [&a, &b, &c]
            .iter()
            .map(|f| local_addr(f.as_fd()).unwrap().port())
            .collect();
        // Three addresses, two workers: each worker has one socket per address.
        let per = per_worker(vec![a, b, c], 2).unwrap();
        for w in &per {
            let mut p: Vec<u16> = w
                .iter()
                .map(|f| local_addr(f.as_fd()).unwrap().port())
                .collect();
            p.sort();
            let mut want = ports.clone();
            want.sort();
            assert_eq!(p, want);
        }
    }

    #[test]
    fn a_socket_that_does_not_listen_is_refused() {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let e = per_worker(vec![OwnedFd::from(s)], 1).unwrap_err();
        assert!(e.to_string().contains("not listening"), "{e}");
    }
}
