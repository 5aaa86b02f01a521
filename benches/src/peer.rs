//! What the baseline servers in `src/bin/` share: the canned response, the request-end
//! counter that stands in for an HTTP parser, the command line, SO_REUSEPORT listeners
//! and per-thread pinning.
//!
//! The baselines answer every request with the same 13-byte body as uring-server's
//! `/plaintext`, so that the harness compares like with like.

use std::net::{SocketAddr, TcpListener};

/// The response every baseline sends per request (the body is `Hello, World!`).
/// `Connection: keep-alive` is there for ab, which sends HTTP/1.0 and waits for the
/// server to close unless the response says keep-alive.
pub const HELLO_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: keep-alive\r\nContent-Type: text/plain\r\n\r\nHello, World!";

/// Counts `\r\n\r\n` across reads: a request that arrives split over two reads still
/// counts once, which a per-read search would miss.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestEndCounter {
    /// How many bytes of `\r\n\r\n` the previous read ended with (0..=3).
    matched: u8,
}

impl RequestEndCounter {
    /// Feed the bytes of one read; returns how many request heads ended in them.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        const END: &[u8; 4] = b"\r\n\r\n";
        let mut count = 0;
        let mut m = self.matched as usize;
        for &b in bytes {
            if b == END[m] {
                m += 1;
                if m == 4 {
                    count += 1;
                    m = 0;
                }
            } else {
                // Only `\r` can restart a match, since the pattern's prefixes are `\r`-led.
                m = usize::from(b == b'\r');
            }
        }
        self.matched = m as u8;
        count
    }
}

/// Command line shared by the baseline servers.
#[derive(Debug, clap::Parser)]
pub struct PeerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Worker threads, one per CPU of the affinity mask by default; each pinned to one
    /// CPU of the mask (round robin).
    #[arg(short = 'w', long)]
    pub workers: Option<usize>,
}

impl PeerArgs {
    /// The worker count and the CPU each worker pins itself to.
    pub fn worker_cpus(&self) -> Vec<usize> {
        let allowed = allowed_cpus();
        let n = self.workers.unwrap_or(allowed.len()).max(1);
        (0..n).map(|i| allowed[i % allowed.len()]).collect()
    }
}

/// The CPUs this process may run on (the harness narrows it with sched_setaffinity).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for pid 0 (self).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if cpus.is_empty() {
            vec![0]
        } else {
            cpus
        }
    }
}

/// Pin the calling thread to one CPU; failure is not fatal for a baseline.
pub fn pin_current_thread(cpu: usize) {
    // SAFETY: as above; pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A listener with SO_REUSEPORT, so that each worker owns one and the kernel spreads
/// connections between them without a shared accept queue.
pub fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Print one line and exit 1: the baselines' way to report a start-up failure.
pub fn die(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("error: {what}: {err}");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::RequestEndCounter;

    #[test]
    fn counts_pipelined_requests() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let all: Vec<u8> = req.iter().copied().cycle().take(req.len() * 16).collect();
        assert_eq!(RequestEndCounter::default().feed(&all), 16);
    }

    #[test]
    fn counts_request_ends_split_at_every_point() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        for cut in 0..=req.len() {
            let mut c = RequestEndCounter::default();
            let n = c.feed(&req[..cut]) + c.feed(&req[cut..]);
            assert_eq!(n, 2, "cut at {cut}");
        }
    }

    #[test]
    fn carriage_returns_restart_the_match() {
        assert_eq!(RequestEndCounter::default().feed(b"\r\r\n\r\n"), 1);
        assert_eq!(RequestEndCounter::default().feed(b"\r\n\r\r\n\r\n"), 1);
        assert_eq!(RequestEndCounter::default().feed(b"\r\n\n\r\n"), 0);
    }
}
