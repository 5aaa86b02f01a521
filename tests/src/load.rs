//! Support for the uring-load tests: running the binary with a time bound, the peers it
//! is pointed at (nginx with its own config and access log, Python servers), and small
//! misbehaving servers written here with std (reset, garbage, stall, stall-every-Nth).
//!
//! Every child process sits in a guard that kills it on drop; every server thread ends
//! when its guard drops (the listener is non-blocking and polled).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{bin, free_port, wait_for_listener};

/// Kills the child process when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "uring-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one uring-load run produced.
pub struct LoadRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl LoadRun {
    /// The `--json` report on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Run uring-load with `args`; kill it and fail the test if it outlives `limit`.
pub fn run_load(args: &[&str], limit: Duration) -> LoadRun {
    run_load_env(args, &[], limit)
}

pub fn run_load_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> LoadRun {
    let start = Instant::now();
    let mut cmd = Command::new(bin("uring-load"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ChildGuard(cmd.spawn().expect("spawn uring-load"));
    let mut out = child.0.stdout.take().unwrap();
    let mut err = child.0.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Some(status) = child.0.try_wait().expect("wait uring-load") {
            break status.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            drop(child);
            panic!(
                "uring-load {args:?} did not finish within {limit:?}; stderr: {}",
                t_err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    LoadRun {
        code,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        elapsed,
    }
}

/// Read a u64 at a JSON path like `["requests", "succeeded"]`.
pub fn num(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v}"))
}

/// An nginx instance with its own config in a temp dir, on a free loopback port.
pub struct Nginx {
    pub port: u16,
    pub dir: TempDir,
    _child: ChildGuard,
}

impl Nginx {
    /// `return 200 "ok"` on `/`; with `tls`, HTTPS with a fresh self-signed certificate.
    pub fn start(tls: bool) -> Nginx {
        Self::start_with(tls, 100_000)
    }

    /// As [`Nginx::start`], closing each keep-alive connection after `keepalive_requests`.
    pub fn start_with(tls: bool, keepalive_requests: u64) -> Nginx {
        Self::with_http("nginx", |dir, port| {
            let d = dir.display();
            let listen = if tls {
                crate::self_signed_cert(&dir.join("cert.pem"), &dir.join("key.pem"));
                format!(
                    "listen 127.0.0.1:{port} ssl; ssl_certificate {d}/cert.pem; \
                     ssl_certificate_key {d}/key.pem;"
                )
            } else {
                format!("listen 127.0.0.1:{port};")
            };
            format!(
                "access_log {d}/access.log;
    keepalive_requests {keepalive_requests};
    server {{
        {listen}
        location / {{ return 200 \"ok\"; }}
        location /missing {{ return 404 \"missing\"; }}
    }}"
            )
        })
    }

    /// `return 200 "ok"` on `/`, logging each request as `$msec $connection $request_uri`
    /// (read back by [`Nginx::timed_log`]).
    pub fn start_timed() -> Nginx {
        Self::with_http("nginx-timed", |dir, port| {
            let d = dir.display();
            format!(
                "log_format timed '$msec $connection $request_uri';
    keepalive_requests 1000000;
    access_log {d}/access.log timed;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 \"ok\"; }}
    }}"
            )
        })
    }

    /// nginx in the foreground (no master, one worker) with `http(dir, port)` as the
    /// inside of its `http {}` block: the block's own directives (access log, `server`
    /// listening on 127.0.0.1:port) are the caller's; the temporary paths, the error log
    /// and the pid file go to `dir`, so runs never meet in /var.
    pub fn with_http(tag: &str, http: impl FnOnce(&Path, u16) -> String) -> Nginx {
        let dir = TempDir::new(tag);
        let port = free_port();
        let http = http(dir.path(), port);
        let d = dir.path().display().to_string();
        let conf = format!(
            "daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    {http}
}}
"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx_binary())
            .args(["-p", &d, "-c"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (install it: scripts/install-test-deps.sh)");
        let child = ChildGuard(child);
        let nginx = Nginx {
            port,
            dir,
            _child: child,
        };
        wait_for_listener(nginx.addr(), Duration::from_secs(10));
        nginx
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Requests nginx logged so far.
    pub fn access_log_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// From [`Nginx::start_timed`]'s log: when each request ended (seconds since the
    /// epoch, to the millisecond) and on which connection.
    pub fn timed_log(&self) -> Vec<(f64, u64)> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
            .collect()
    }
}

/// Run a shell command line under a pseudo-terminal (util-linux's `script`), as the live
/// view needs: whether it succeeded, and what it wrote to the terminal.
pub fn run_in_terminal(cmd: &str) -> (bool, String) {
    let out = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `nginx` from PATH, else Debian's /usr/sbin/nginx (sbin is not on every PATH).
pub fn nginx_binary() -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("nginx").is_file()))
        .unwrap_or(false);
    if in_path {
        PathBuf::from("nginx")
    } else {
        PathBuf::from("/usr/sbin/nginx")
    }
}

/// A Python script run as a server on a free port (the script gets the port as argv[1]).
pub struct PythonServer {
    pub port: u16,
    _child: ChildGuard,
    _dir: TempDir,
}

impl PythonServer {
    pub fn start(script: &str) -> PythonServer {
        let dir = TempDir::new("py");
        let path = dir.path().join("server.py");
        std::fs::write(&path, script).unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .arg(&path)
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (install it: scripts/install-test-deps.sh)");
        let child = ChildGuard(child);
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
        );
        PythonServer {
            port,
            _child: child,
            _dir: dir,
        }
    }
}

/// Python's own `http.server` answering HTTP/1.0 and closing every connection.
pub const PY_HTTP_SERVER: &str = r#"
import sys, http.server, socketserver
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
socketserver.TCPServer.allow_reuse_address = True
with http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H) as s:
    s.serve_forever()
"#;

/// An HTTP/1.1 keep-alive server: `/chunked` (chunked body "hello world" in 3 chunks),
/// `/404`, `/500`, anything else 200 with a 5-byte body (HEAD gets the headers only).
pub const PY_VARIOUS: &str = r#"
import sys, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body, head=False):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
    def do_HEAD(self):
        self.reply(200, b"hello", head=True)
    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello", b" ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/404":
            self.reply(404, b"not found")
        elif self.path == "/500":
            self.reply(500, b"oops")
        else:
            self.reply(200, b"hello")
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

/// How a [`MisbehavingServer`] treats each request.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Read the request, then reset the connection (SO_LINGER 0).
    Reset,
    /// Answer with bytes that are not HTTP.
    Garbage,
    /// Read the request and never answer (the connection stays open).
    Stall,
    /// Answer `200 ok` with keep-alive, but hold every `n`-th request (counted across
    /// all connections) for `pause`; the whole server stalls meanwhile.
    StallEveryNth { n: u64, pause: Duration },
}

/// A small std server that misbehaves on purpose, stopped when dropped.
pub struct MisbehavingServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Requests it read.
    pub requests: Arc<AtomicU64>,
}

impl MisbehavingServer {
    pub fn start(how: Misbehaviour) -> MisbehavingServer {
        Self::start_on("127.0.0.1:0".parse().unwrap(), how)
    }

    pub fn start_on(bind: SocketAddr, how: Misbehaviour) -> MisbehavingServer {
        let listener = TcpListener::bind(bind).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(std::sync::Mutex::new(()));
        let (stop2, req2) = (stop.clone(), requests.clone());
        let handle = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let (stop3, req3, gate3) = (stop2.clone(), req2.clone(), gate.clone());
                        workers.push(std::thread::spawn(move || {
                            serve(sock, how, &stop3, &req3, &gate3)
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        MisbehavingServer {
            addr,
            stop,
            handle: Some(handle),
            requests,
        }
    }

    /// `http://127.0.0.1:port/` or `http://[::1]:port/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A server that answers `200 ok` to everything, with keep-alive.
    pub fn healthy() -> MisbehavingServer {
        Self::start(Misbehaviour::StallEveryNth {
            n: u64::MAX,
            pause: Duration::ZERO,
        })
    }
}

impl Drop for MisbehavingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    mut sock: TcpStream,
    how: Misbehaviour,
    stop: &AtomicBool,
    requests: &AtomicU64,
    gate: &std::sync::Mutex<()>,
) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        // One request head per iteration (the tests send no bodies).
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break Some(p + 4);
            }
            match sock.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(_) => break None,
            }
        };
        let Some(end) = end else {
            return;
        };
        buf.drain(..end);
        let k = requests.fetch_add(1, Ordering::SeqCst) + 1;
        match how {
            Misbehaviour::Reset => {
                crate::set_linger_zero(&sock);
                drop(sock);
                return;
            }
            Misbehaviour::Garbage => {
                let _ = sock.write_all(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n");
            }
            Misbehaviour::Stall => {
                // Hold the connection open and silent until the client gives up.
                while !stop.load(Ordering::Relaxed) {
                    match sock.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return,
                    }
                }
                return;
            }
            Misbehaviour::StallEveryNth { n, pause } => {
                {
                    let _held = gate.lock().unwrap();
                    if k % n == 0 {
                        std::thread::sleep(pause);
                    }
                }
                if sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
