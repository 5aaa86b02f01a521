//! Support for the uring-server black-box tests: start the real binary on a free loopback
//! port (killed on drop), talk raw HTTP over sockets, read responses, count fds and CPU
//! time from /proc.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, free_port, wait_for_listener};

/// A running uring-server; SIGKILLed on drop if still alive.
pub struct ServerProc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProc {
    /// Start `uring-server --listen 127.0.0.1:<free> --no-pin -w 1 <extra>` (`-w` in
    /// `extra` replaces the default).
    pub fn start(extra: &[&str]) -> ServerProc {
        Self::start_with(extra, |_| {})
    }

    /// Like `start`, with a hook to adjust the command (e.g. a pre_exec rlimit).
    pub fn start_with(extra: &[&str], adjust: impl Fn(&mut Command)) -> ServerProc {
        for _attempt in 0..5 {
            let port = free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut cmd = Command::new(bin("uring-server"));
            cmd.arg("--listen").arg(addr.to_string()).arg("--no-pin");
            if !extra.contains(&"-w") {
                cmd.args(["-w", "1"]);
            }
            cmd.args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            adjust(&mut cmd);
            let mut child = cmd.spawn().expect("spawn uring-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    // `adjust` may have sent stderr elsewhere (a test reading the log).
                    if let Some(mut stderr) = child.stderr.take() {
                        stderr.read_to_string(&mut err).ok();
                    }
                    if err.contains("address already in use") {
                        break; // Lost a race for the port: try another.
                    }
                    panic!("uring-server exited at start ({status}): {err}");
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    // Drain stderr in the background so the server never blocks on it.
                    if let Some(mut stderr) = child.stderr.take() {
                        std::thread::spawn(move || {
                            let mut sink = Vec::new();
                            let _ = stderr.read_to_end(&mut sink);
                        });
                    }
                    return ServerProc { child, addr };
                }
                assert!(
                    Instant::now() < deadline,
                    "uring-server did not listen on {addr}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start uring-server on a free port");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Open fds of the server process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }

    /// The idle fd count, once connections from start-up probing are gone (stable for
    /// 300 ms).
    pub fn settled_fd_count(&self) -> usize {
        let mut last = self.fd_count();
        let mut stable = 0;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(50));
            let n = self.fd_count();
            if n == last {
                stable += 1;
                if stable >= 6 {
                    break;
                }
            } else {
                stable = 0;
                last = n;
            }
        }
        last
    }

    /// Wait until the fd count returns to `want` (connections close asynchronously).
    pub fn wait_fd_count(&self, want: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.fd_count();
            if n == want || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// utime + stime of the server, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// Send a signal to the server.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Wait for exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the server and wait for its listener (for callers that built their own command).
pub fn wait_up(addr: SocketAddr) {
    wait_for_listener(addr, Duration::from_secs(10));
}

/// One parsed response from the wire.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Read responses (Content-Length framing; no body for HEAD/1xx/204/304) until `count`
/// are complete. `head_only` marks responses to HEAD requests by index.
pub fn read_responses(s: &mut TcpStream, count: usize, head_only: &[usize]) -> Vec<Resp> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut tmp = [0u8; 65536];
    while out.len() < count {
        if let Some((resp, used)) = parse_one(&buf, head_only.contains(&out.len())) {
            buf.drain(..used);
            out.push(resp);
            continue;
        }
        let n = s.read(&mut tmp).expect("read response");
        assert!(
            n > 0,
            "connection closed after {} responses; partial: {:?}",
            out.len(),
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
    }
    assert!(
        buf.is_empty(),
        "unexpected extra bytes: {:?}",
        String::from_utf8_lossy(&buf)
    );
    out
}

fn parse_one(buf: &[u8], head_only: bool) -> Option<(Resp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut r = Resp {
        status,
        head,
        body: Vec::new(),
    };
    let len = if head_only || status < 200 || status == 204 || status == 304 {
        0
    } else {
        r.header("Content-Length")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0)
    };
    if buf.len() < end + len {
        return None;
    }
    r.body = buf[end..end + len].to_vec();
    Some((r, end + len))
}

/// Whether the server closed the connection: EOF (or a reset) within `timeout`.
pub fn closed_by_server(s: &mut TcpStream, timeout: Duration) -> bool {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut tmp = [0u8; 4096];
    let deadline = Instant::now() + timeout;
    loop {
        match s.read(&mut tmp) {
            Ok(0) => return true,
            Ok(_) => {
                if Instant::now() > deadline {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Send raw bytes on a new connection and read one response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    read_responses(&mut s, 1, &[]).remove(0)
}

/// Send raw bytes, read one response, and report whether the server then closed the
/// connection (within 5 s).
pub fn exchange_then_closed(addr: SocketAddr, raw: &[u8]) -> (Resp, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let r = read_responses_lenient(&mut s);
    let closed = closed_by_server(&mut s, Duration::from_secs(5));
    let _ = s.shutdown(Shutdown::Both);
    (r, closed)
}

/// Read one response; bytes after it (the server may not read the rest) are ignored.
fn read_responses_lenient(s: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        if let Some((resp, _)) = parse_one(&buf, false) {
            return resp;
        }
        let n = s.read(&mut tmp).expect("read response");
        assert!(
            n > 0,
            "connection closed before a response; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Run a command with a time limit; returns (success, stdout+stderr). Output is read
/// while the command runs, so a chatty tool never blocks on a full pipe.
pub fn run_tool(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let (ok, out, err) = run_tool_bytes(cmd, limit);
    let mut s = String::from_utf8_lossy(&out).to_string();
    s.push_str(&String::from_utf8_lossy(&err));
    (ok, s)
}

/// Like `run_tool`, with stdout and stderr kept apart as bytes.
pub fn run_tool_bytes(cmd: &mut Command, limit: Duration) -> (bool, Vec<u8>, Vec<u8>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?}: {e} (scripts/install-test-deps.sh installs it)")
        });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.success(), t1.join().unwrap(), t2.join().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp directory removed on drop (one type for every test: its names are unique per
/// process and call, so tests running at once never share one).
pub use crate::load::TempDir;
