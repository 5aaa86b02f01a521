//! Support for the reliability tests: a server process that dies with the test, a seccomp
//! filter that forbids io_uring in a child, and a raw-socket HTTP/1.1 client that reads
//! responses byte-exactly and tells whether the server closed the connection.
//!
//! The response reader is written here on purpose rather than taken from `uring-common`:
//! the tests judge the codec, so they must not share its code.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, free_port, wait_for_listener};

/// A child process killed (SIGKILL) and reaped when the guard drops, so that a failing
/// assertion never leaves a server behind.
pub struct ChildGuard {
    pub child: Option<Child>,
}

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child present").id()
    }

    /// Send a signal (e.g. `libc::SIGTERM`) without waiting.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, sig);
        }
    }

    /// Wait up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("child present");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running uring-server on a free loopback port; its stderr goes to a temp file so a
/// failing test can show it.
pub struct TestServer {
    pub guard: ChildGuard,
    pub addr: SocketAddr,
    pub log: std::path::PathBuf,
}

impl TestServer {
    /// Start `uring-server --listen 127.0.0.1:<free> -w 1 <extra...>` and wait until it
    /// accepts connections.
    pub fn start(extra: &[&str]) -> TestServer {
        Self::start_with(extra, |_| {})
    }

    /// Like [`TestServer::start`], letting the caller adjust the command (rlimits etc.).
    pub fn start_with(extra: &[&str], adjust: impl FnOnce(&mut Command)) -> TestServer {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::env::temp_dir().join(format!(
            "uring-reliability-server-{}-{port}.log",
            std::process::id()
        ));
        let logf = std::fs::File::create(&log).expect("create server log");
        let mut cmd = Command::new(bin("uring-server"));
        cmd.args(["--listen", &addr.to_string(), "-w", "1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        adjust(&mut cmd);
        let mut guard = ChildGuard::new(cmd.spawn().expect("spawn uring-server"));
        // Fail fast (with the log) if it dies instead of listening.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(st) = guard.wait_timeout(Duration::ZERO) {
                panic!(
                    "uring-server exited {st} before listening: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        wait_for_listener(addr, Duration::from_millis(100));
        TestServer { guard, addr, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Open fds of the server once it is warmed up: one request served first, because the
    /// listener answers connects before the worker has made its ring.
    pub fn idle_fds(&self) -> usize {
        let mut c = RawConn::connect(self.addr).expect("connect");
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        c.read_final(Duration::from_secs(10), false)
            .expect("warm-up request");
        assert!(matches!(c.ending(Duration::from_secs(5)), Ending::Closed));
        drop(c);
        // Give the worker a moment to close its side.
        std::thread::sleep(Duration::from_millis(100));
        open_fds(self.guard.pid())
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        self.guard.wait_timeout(Duration::ZERO).is_none()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

// --- io_uring forbidden -------------------------------------------------------------

const SYS_IO_URING_SETUP: u32 = 425;
const SYS_IO_URING_ENTER: u32 = 426;
const SYS_IO_URING_REGISTER: u32 = 427;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
// Offsets in struct seccomp_data.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Allow everything except the three io_uring syscalls, which fail with EPERM, as under
/// Docker's default seccomp profile. Other architectures are allowed untouched (the
/// tests run on x86_64; the arch check keeps the syscall numbers meaningful).
static DENY_IO_URING: [libc::sock_filter; 8] = [
    stmt(LD_W_ABS, SECCOMP_DATA_ARCH),
    jump(JEQ_K, AUDIT_ARCH_X86_64, 0, 5),
    stmt(LD_W_ABS, SECCOMP_DATA_NR),
    jump(JEQ_K, SYS_IO_URING_SETUP, 3, 0),
    jump(JEQ_K, SYS_IO_URING_ENTER, 2, 0),
    jump(JEQ_K, SYS_IO_URING_REGISTER, 1, 0),
    stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    stmt(
        RET_K,
        libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA),
    ),
];

/// Make `cmd`'s child run under a seccomp filter where io_uring_setup/enter/register
/// fail with EPERM.
pub fn deny_io_uring(cmd: &mut Command) {
    install_filter(cmd, &DENY_IO_URING);
}

/// io_uring_enter fails with EBADFD (a fatal ring error, as if the ring were broken)
/// whenever it submits `to_submit` >= 4 entries; everything else is allowed. A server whose
/// start-up submits fewer runs normally until a busy turn makes its ring "fail".
static FAIL_BUSY_IO_URING_ENTER: [libc::sock_filter; 8] = [
    stmt(LD_W_ABS, SECCOMP_DATA_ARCH),
    jump(JEQ_K, AUDIT_ARCH_X86_64, 0, 4),
    stmt(LD_W_ABS, SECCOMP_DATA_NR),
    jump(JEQ_K, SYS_IO_URING_ENTER, 0, 2),
    // The low 32 bits of args[1] (to_submit), little-endian.
    stmt(LD_W_ABS, SECCOMP_DATA_ARGS + 8),
    jump(JGE_K, 4, 1, 0),
    stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    stmt(
        RET_K,
        libc::SECCOMP_RET_ERRNO | (libc::EBADFD as u32 & libc::SECCOMP_RET_DATA),
    ),
];
const SECCOMP_DATA_ARGS: u32 = 16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;

/// Make `cmd`'s child run under a seccomp filter where a busy io_uring_enter (4 or more
/// submissions at once) fails: a ring that breaks under load.
pub fn break_ring_when_busy(cmd: &mut Command) {
    install_filter(cmd, &FAIL_BUSY_IO_URING_ENTER);
}

fn install_filter(cmd: &mut Command, filter: &'static [libc::sock_filter]) {
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe; the filter is a static, so nothing is allocated there.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

// --- raw HTTP/1.1 client --------------------------------------------------------------

/// One response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What happened after the expected responses were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// EOF (FIN) from the server.
    Closed,
    /// ECONNRESET: also a close, but without a graceful end.
    Reset,
    /// Nothing for the whole wait: the connection is still open.
    Open,
    /// Bytes arrived that are not part of the expected responses.
    Extra(Vec<u8>),
}

/// A client connection that buffers what it reads so responses can be split exactly.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
    reset: bool,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(RawConn {
            stream,
            buf: Vec::new(),
            eof: false,
            reset: false,
        })
    }

    /// Send everything; errors are returned, not fatal: a server may close early on a bad
    /// request before reading all of it.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Read more bytes into the buffer; false when nothing more can come (EOF, reset,
    /// or the deadline).
    fn fill(&mut self, deadline: Instant) -> bool {
        if self.eof || self.reset {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        self.stream
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
            .unwrap();
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.reset = true;
                false
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(_) => {
                self.reset = true;
                false
            }
        }
    }

    /// Read one response (interim 1xx responses included), waiting up to `timeout`.
    /// `head_request` says the response is to HEAD (no body whatever the headers say).
    pub fn read_response(
        &mut self,
        timeout: Duration,
        head_request: bool,
    ) -> Result<RawResponse, String> {
        let deadline = Instant::now() + timeout;
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            if !self.fill(deadline) {
                return Err(self.why_incomplete("response head"));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end - 4]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if version != "HTTP/1.1" && version != "HTTP/1.0" {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for l in lines {
            let (n, v) = l
                .split_once(':')
                .ok_or_else(|| format!("bad response header line {l:?}"))?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        self.buf.drain(..head_end);
        let mut resp = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            resp.body = self.read_chunked(deadline)?;
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| format!("bad response Content-Length {cl:?}"))?;
            while self.buf.len() < n {
                if !self.fill(deadline) {
                    return Err(self.why_incomplete("response body"));
                }
            }
            resp.body = self.buf.drain(..n).collect();
        } else {
            // Delimited by close.
            while self.fill(deadline) {}
            if !(self.eof || self.reset) {
                return Err("response without length did not end by close".into());
            }
            resp.body = std::mem::take(&mut self.buf);
        }
        Ok(resp)
    }

    fn read_chunked(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = find(&self.buf, b"\r\n") {
                    break p;
                }
                if !self.fill(deadline) {
                    return Err(self.why_incomplete("chunk size"));
                }
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size_hex = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let end = loop {
                        if let Some(p) = find(&self.buf, b"\r\n") {
                            break p;
                        }
                        if !self.fill(deadline) {
                            return Err(self.why_incomplete("trailers"));
                        }
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        return Ok(body);
                    }
                }
            }
            while self.buf.len() < size + 2 {
                if !self.fill(deadline) {
                    return Err(self.why_incomplete("chunk data"));
                }
            }
            body.extend(self.buf.drain(..size));
            if self.buf.drain(..2).as_slice() != b"\r\n" {
                return Err("chunk data not followed by CRLF".into());
            }
        }
    }

    fn why_incomplete(&self, what: &str) -> String {
        let state = if self.reset {
            "connection reset"
        } else if self.eof {
            "connection closed"
        } else {
            "timed out"
        };
        format!(
            "{state} while reading the {what}; {} bytes buffered: {:?}",
            self.buf.len(),
            String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
        )
    }

    /// Read the next final response, collecting any interim (1xx) ones before it.
    pub fn read_final(
        &mut self,
        timeout: Duration,
        head_request: bool,
    ) -> Result<(Vec<u16>, RawResponse), String> {
        let mut interim = Vec::new();
        loop {
            let r = self.read_response(timeout, head_request)?;
            if (100..200).contains(&r.status) {
                interim.push(r.status);
                continue;
            }
            return Ok((interim, r));
        }
    }

    /// After the expected responses: did the server close, stay open, or send more?
    pub fn ending(&mut self, wait: Duration) -> Ending {
        let deadline = Instant::now() + wait;
        while self.buf.is_empty() && self.fill(deadline) {}
        if !self.buf.is_empty() {
            return Ending::Extra(std::mem::take(&mut self.buf));
        }
        if self.reset {
            Ending::Reset
        } else if self.eof {
            Ending::Closed
        } else {
            Ending::Open
        }
    }

    /// True once EOF or a reset was seen.
    pub fn saw_close(&self) -> bool {
        self.eof || self.reset
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Count of open file descriptors of a process (from /proc).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What each open fd of a process points at (sockets, files, anon inodes), for messages.
pub fn fd_targets(pid: u32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Resident set size of a process in KiB (VmRSS from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A plain keep-alive GET of /plaintext, the probe used to show a connection still works.
pub const PROBE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: probe\r\n\r\n";
