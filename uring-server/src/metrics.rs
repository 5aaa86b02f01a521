//! `--metrics ADDR`: Prometheus text format on `/metrics`, served by a small thread of its
//! own on a separate listener (plain blocking sockets: a scrape every few seconds needs
//! no ring).
//!
//! Nothing is shared on the hot path. Each worker counts into its own [`WorkerMetrics`]
//! (plain integers and a histogram from `uring_common::stats`) and publishes a copy into
//! its own slot, behind a mutex only it and the scraper take, once per tick (at most 1 s,
//! see `worker.rs`) and when it exits. A scrape sums the slots, so it may lag a worker's
//! latest requests by one tick.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use uring_common::ring::Tier;
use uring_common::stats::recorder::new_latency_histogram;

use crate::proxy::health::MemberCounters;

/// What produced a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A body streamed from a file (static files).
    File = 0,
    /// Answered from memory: the built-in endpoints, errors, redirects, small answers.
    Builtin = 1,
    /// Forwarded to an upstream (`proxy/`).
    Proxy = 2,
}

const ROUTES: [&str; 3] = ["file", "builtin", "proxy"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Which deadline closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The request head did not arrive in time (slowloris).
    Header = 0,
    /// The body did not arrive in time (answered 408).
    Body = 1,
    /// An idle keep-alive connection (or a stalled reader).
    Idle = 2,
    /// A lingering close ended by its deadline.
    Linger = 3,
}

const TIMEOUTS: [&str; 4] = ["header", "body", "idle", "linger"];

/// Upper bounds of the duration buckets, in microseconds.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000, 10_000_000,
];

/// One worker's counters: owned and written by its worker only.
#[derive(Clone)]
pub struct WorkerMetrics {
    pub requests: [[u64; 5]; 3],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub accept_backoffs: u64,
    pub timeouts: [u64; 4],
    pub open_connections: u64,
    pub duration_us: Histogram<u64>,
    pub duration_sum_us: u64,
    /// Requests answered over HTTP/2 (the rest came over HTTP/1.x).
    pub http2_requests: u64,
    /// Connections that switched to HTTP/2.
    pub http2_connections: u64,
    /// HTTP/2 connections ended by a defence or a protocol error, by [`HTTP2_CLOSES`].
    pub http2_closes: [u64; 6],
    /// Requests refused with 429 by `--limit-req`.
    pub limited_requests: u64,
    /// Connections closed at accept by `--limit-conn`.
    pub limited_connections: u64,
    /// Per route and upstream, in the order of [`Registry::with_upstreams`]' labels.
    pub upstreams: Vec<UpstreamSample>,
    /// Proxied connections after a 101 (WebSocket), as the worker's proxy counts them.
    pub tunnels: crate::proxy::TunnelStats,
}

/// One upstream of one route as a worker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamSample {
    pub counters: MemberCounters,
    /// It takes requests (not skipped by passive health or down by its checks).
    pub up: bool,
}

/// Why an HTTP/2 connection was ended by us (`uring_server_http2_closes_total{reason}`):
/// each defence of the codec (GOAWAY ENHANCE_YOUR_CALM), then any other connection error.
pub const HTTP2_CLOSES: [&str; 6] = [
    "rapid_reset",
    "continuation_flood",
    "settings_flood",
    "ping_flood",
    "empty_frames",
    "protocol_error",
];

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics {
            requests: [[0; 5]; 3],
            bytes_in: 0,
            bytes_out: 0,
            accept_backoffs: 0,
            timeouts: [0; 4],
            open_connections: 0,
            duration_us: new_latency_histogram(),
            duration_sum_us: 0,
            http2_requests: 0,
            http2_connections: 0,
            http2_closes: [0; 6],
            upstreams: Vec::new(),
            limited_requests: 0,
            limited_connections: 0,
            tunnels: crate::proxy::TunnelStats::default(),
        }
    }
}

impl WorkerMetrics {
    pub fn request(&mut self, route: Route, status: u16, duration_us: u64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[route as usize][class] += 1;
        self.duration_us.saturating_record(duration_us.max(1));
        self.duration_sum_us += duration_us;
    }

    fn add(&mut self, o: &WorkerMetrics) {
        for (a, b) in self.requests.iter_mut().zip(&o.requests) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (x, y) in self.timeouts.iter_mut().zip(&o.timeouts) {
            *x += y;
        }
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.accept_backoffs += o.accept_backoffs;
        self.open_connections += o.open_connections;
        let _ = self.duration_us.add(&o.duration_us);
        self.duration_sum_us += o.duration_sum_us;
        self.http2_requests += o.http2_requests;
        self.http2_connections += o.http2_connections;
        self.limited_requests += o.limited_requests;
        self.limited_connections += o.limited_connections;
        for (x, y) in self.http2_closes.iter_mut().zip(&o.http2_closes) {
            *x += y;
        }
        // Up only where every worker sees it up.
        for (i, u) in o.upstreams.iter().enumerate() {
            match self.upstreams.get_mut(i) {
                Some(s) => {
                    let (a, b) = (&mut s.counters, &u.counters);
                    a.requests += b.requests;
                    a.failures += b.failures;
                    a.retries += b.retries;
                    a.check_failures += b.check_failures;
                    a.reused += b.reused;
                    s.up &= u.up;
                }
                None => self.upstreams.push(*u),
            }
        }
        let (t, u) = (&mut self.tunnels, &o.tunnels);
        t.opened += u.opened;
        t.open += u.open;
        t.bytes_to_upstream += u.bytes_to_upstream;
        t.bytes_to_client += u.bytes_to_client;
    }

    fn total_requests(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }
}

impl Registry {
    fn render_upstreams(&self, o: &mut String, samples: &[UpstreamSample]) {
        let none = UpstreamSample {
            counters: MemberCounters::default(),
            up: true,
        };
        let at = |i: usize| samples.get(i).copied().unwrap_or(none);
        type Field = fn(&UpstreamSample) -> u64;
        let series: [(&str, &str, &str, Field); 6] = [
            ("upstream_requests_total", "counter", "Attempts sent to each upstream of each route (a retried request counts at each upstream it tried).", |s| s.counters.requests),
            ("upstream_failures_total", "counter", "Attempts that failed: connect refused or timed out, closed without a response, response timeout.", |s| s.counters.failures),
            ("upstream_retries_total", "counter", "Requests moved from this upstream to another of the route after a failure.", |s| s.counters.retries),
            ("upstream_check_failures_total", "counter", "Active health checks that failed.", |s| s.counters.check_failures),
            ("upstream_reused_total", "counter", "Attempts sent on a kept-alive pooled connection (HTTP keep-alive, FastCGI keep-conn) rather than a new one.", |s| s.counters.reused),
            ("upstream_up", "gauge", "1 while the upstream takes requests in every worker (not skipped after failures, not down by its checks).", |s| s.up as u64),
        ];
        for (name, kind, help, field) in series {
            header(o, name, kind, help);
            for (i, labels) in self.upstreams.iter().enumerate() {
                let _ = writeln!(o, "uring_server_{name}{{{labels}}} {}", field(&at(i)));
            }
        }
    }
}

/// A worker's published copy.
pub struct WorkerSlot {
    tier: Tier,
    published: Mutex<WorkerMetrics>,
}

impl WorkerSlot {
    /// Copy the worker's counters over the published ones (once per tick).
    pub fn publish(&self, m: &WorkerMetrics) {
        if let Ok(mut p) = self.published.lock() {
            p.clone_from(m);
        }
    }
}

/// Every worker's slot, and what the scrape adds from elsewhere.
pub struct Registry {
    workers: Vec<Arc<WorkerSlot>>,
    access_log_dropped: Option<Arc<AtomicU64>>,
    /// Per route and upstream: the labels `route="..",upstream=".."`, escaped.
    upstreams: Vec<String>,
}

impl Registry {
    pub fn new(tiers: &[Tier], access_log_dropped: Option<Arc<AtomicU64>>) -> Registry {
        Registry {
            workers: tiers
                .iter()
                .map(|&tier| {
                    Arc::new(WorkerSlot {
                        tier,
                        published: Mutex::new(WorkerMetrics::default()),
                    })
                })
                .collect(),
            access_log_dropped,
            upstreams: Vec::new(),
        }
    }

    /// The proxy's routes and upstreams (`(prefix, address)` in the workers' order).
    pub fn with_upstreams(mut self, labels: impl IntoIterator<Item = (String, String)>) -> Self {
        let esc = |v: &str| {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        self.upstreams = labels
            .into_iter()
            .map(|(route, addr)| format!("route=\"{}\",upstream=\"{}\"", esc(&route), esc(&addr)))
            .collect();
        self
    }

    pub fn slot(&self, worker: usize) -> Arc<WorkerSlot> {
        self.workers[worker].clone()
    }

    /// The Prometheus text exposition (format 0.0.4) of the sum over workers.
    pub fn render(&self) -> String {
        let mut sum = WorkerMetrics::default();
        let mut per_worker = Vec::with_capacity(self.workers.len());
        for w in &self.workers {
            let p = w.published.lock().map(|p| p.clone()).unwrap_or_default();
            per_worker.push((w.tier, p.total_requests()));
            sum.add(&p);
        }
        let mut o = String::with_capacity(4096);
        header(
            &mut o,
            "requests_total",
            "counter",
            "Requests answered, by status class and route kind.",
        );
        for (r, route) in ROUTES.iter().enumerate() {
            for (c, class) in CLASSES.iter().enumerate() {
                let v = sum.requests[r][c];
                let _ = writeln!(
                    o,
                    "uring_server_requests_total{{route=\"{route}\",status_class=\"{class}\"}} {v}"
                );
            }
        }
        header(
            &mut o,
            "protocol_requests_total",
            "counter",
            "Requests answered, by the protocol they came over.",
        );
        let h2 = sum.http2_requests;
        let h1 = sum.total_requests().saturating_sub(h2);
        let _ = writeln!(
            o,
            "uring_server_protocol_requests_total{{protocol=\"http/1.1\"}} {h1}"
        );
        let _ = writeln!(
            o,
            "uring_server_protocol_requests_total{{protocol=\"h2\"}} {h2}"
        );
        header(
            &mut o,
            "http2_closes_total",
            "counter",
            "HTTP/2 connections we ended: a defence (GOAWAY ENHANCE_YOUR_CALM) or another protocol error, by reason.",
        );
        for (i, reason) in HTTP2_CLOSES.iter().enumerate() {
            let _ = writeln!(
                o,
                "uring_server_http2_closes_total{{reason=\"{reason}\"}} {}",
                sum.http2_closes[i]
            );
        }
        let ktls = crate::ktls::counters();
        let scalars = [
            ("received_bytes_total", "counter", "Bytes received from clients.", sum.bytes_in),
            ("sent_bytes_total", "counter", "Bytes sent to clients (heads and bodies).", sum.bytes_out),
            ("open_connections", "gauge", "Client connections open now.", sum.open_connections),
            ("http2_connections_total", "counter", "Connections that spoke HTTP/2 (prior knowledge or ALPN h2).", sum.http2_connections),
            ("limited_requests_total", "counter", "Requests refused with 429 by --limit-req (rate per client address).", sum.limited_requests),
            ("limited_connections_total", "counter", "Connections closed at accept by --limit-conn (open connections per client address).", sum.limited_connections),
            ("tunnels_total", "counter", "Proxied upgrades answered 101 (WebSocket): tunnels opened.", sum.tunnels.opened),
            ("tunnels_open", "gauge", "Tunnels open now.", sum.tunnels.open),
            ("tunnel_to_upstream_bytes_total", "counter", "Tunnelled bytes from clients to upstreams.", sum.tunnels.bytes_to_upstream),
            ("tunnel_to_client_bytes_total", "counter", "Tunnelled bytes from upstreams to clients.", sum.tunnels.bytes_to_client),
            ("accept_backoffs_total", "counter", "Accept pauses after the fd table or memory ran out (EMFILE, ENFILE, ENOBUFS, ENOMEM).", sum.accept_backoffs),
            ("ktls_connections_total", "counter", "TLS sessions handed to the kernel after the handshake (--ktls).", ktls.0),
            ("ktls_control_record_closes_total", "counter", "kTLS connections closed on a record that is not application data (alert, KeyUpdate: EIO).", ktls.1),
            ("ktls_failures_total", "counter", "kTLS connections closed because the kernel refused the session's keys.", ktls.2),
        ];
        for (name, kind, help, v) in scalars {
            header(&mut o, name, kind, help);
            let _ = writeln!(o, "uring_server_{name} {v}");
        }
        header(
            &mut o,
            "timeouts_total",
            "counter",
            "Connections ended by a deadline, by kind.",
        );
        for (k, kind) in TIMEOUTS.iter().enumerate() {
            let _ = writeln!(
                o,
                "uring_server_timeouts_total{{kind=\"{kind}\"}} {}",
                sum.timeouts[k]
            );
        }
        if !self.upstreams.is_empty() {
            self.render_upstreams(&mut o, &sum.upstreams);
        }
        if let Some(d) = &self.access_log_dropped {
            header(
                &mut o,
                "access_log_dropped_lines_total",
                "counter",
                "Access log lines dropped because the writer fell behind.",
            );
            let _ = writeln!(
                o,
                "uring_server_access_log_dropped_lines_total {}",
                d.load(Ordering::Relaxed)
            );
        }
        header(
            &mut o,
            "worker_tier",
            "gauge",
            "The kernel tier each worker's ring runs (1 for its tier).",
        );
        for (i, (tier, _)) in per_worker.iter().enumerate() {
            let _ = writeln!(
                o,
                "uring_server_worker_tier{{worker=\"{i}\",tier=\"{tier}\"}} 1"
            );
        }
        header(
            &mut o,
            "worker_requests_total",
            "counter",
            "Requests answered by each worker.",
        );
        for (i, (_, n)) in per_worker.iter().enumerate() {
            let _ = writeln!(
                o,
                "uring_server_worker_requests_total{{worker=\"{i}\"}} {n}"
            );
        }
        header(
            &mut o,
            "request_duration_seconds",
            "histogram",
            "Time from the worker reading a request's last bytes to its response queued.",
        );
        let h = &sum.duration_us;
        for le in BUCKETS_US {
            let n = if h.is_empty() {
                0
            } else {
                h.count_between(0, le)
            };
            let _ = writeln!(
                o,
                "uring_server_request_duration_seconds_bucket{{le=\"{}\"}} {n}",
                le as f64 / 1e6
            );
        }
        let _ = writeln!(
            o,
            "uring_server_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.len()
        );
        let _ = writeln!(
            o,
            "uring_server_request_duration_seconds_sum {}",
            sum.duration_sum_us as f64 / 1e6
        );
        let _ = writeln!(o, "uring_server_request_duration_seconds_count {}", h.len());
        o
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP uring_server_{name} {help}");
    let _ = writeln!(o, "# TYPE uring_server_{name} {kind}");
}

/// The scrape listener and its thread; dropping it stops the thread.
pub struct MetricsServer {
    addr: SocketAddr,
    /// The listener's fd (owned by the thread), to wake its accept at drop.
    fd: RawFd,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Bind `addr` now (so a busy port fails start-up) and serve scrapes from a thread.
    pub fn start(addr: SocketAddr, registry: Arc<Registry>) -> io::Result<MetricsServer> {
        // SO_REUSEPORT: an upgrade's successor binds the same address while we still
        // serve (both answer scrapes until we exit).
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM.cloexec(),
            None,
        )?;
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
        sock.bind(&addr.into())?;
        sock.listen(64)?;
        let listener = TcpListener::from(sock);
        let addr = listener.local_addr()?;
        let fd = listener.as_raw_fd();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // A blocking accept: the thread sleeps until a scrape (no polling on the workers'
        // cores); `Drop` wakes it with a connection of its own.
        let thread = std::thread::Builder::new()
            .name("uring-metrics".into())
            .spawn(move || loop {
                let accepted = listener.accept();
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                match accepted {
                    Ok((s, _)) => {
                        let _ = serve_one(s, &registry);
                    }
                    // EMFILE and the like: do not spin on it.
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            })?;
        Ok(MetricsServer {
            addr,
            fd,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // shutdown(2) wakes the blocked accept (EINVAL). Not a connection to ourselves:
        // during an upgrade the successor listens on the same address (SO_REUSEPORT), and
        // the kernel may hand that connection to it instead.
        // SAFETY: the listener is open until the thread, joined below, ends.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One scrape: read the head (bounded in size and time), answer, close.
fn serve_one(mut s: TcpStream, registry: &Registry) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or(b""), parts.next().unwrap_or(b""));
    let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
    let (status, ctype, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            registry.render(),
        ),
        (b"GET" | b"HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "Not Found: try /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "Method Not Allowed\n".into(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != b"HEAD" {
        out.push_str(&body);
    }
    s.write_all(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_workers_and_buckets_cumulatively() {
        let reg = Registry::new(&[Tier::Basic, Tier::Full], None);
        let mut a = WorkerMetrics::default();
        a.request(Route::Builtin, 200, 40);
        a.request(Route::File, 404, 3_000);
        a.bytes_in = 10;
        let mut b = WorkerMetrics::default();
        b.request(Route::Builtin, 204, 200);
        b.bytes_in = 5;
        b.timeouts[TimeoutKind::Header as usize] = 2;
        reg.slot(0).publish(&a);
        reg.slot(1).publish(&b);
        let t = reg.render();
        let has = |l: &str| assert!(t.lines().any(|x| x == l), "missing {l} in\n{t}");
        has("uring_server_requests_total{route=\"builtin\",status_class=\"2xx\"} 2");
        has("uring_server_requests_total{route=\"file\",status_class=\"4xx\"} 1");
        has("uring_server_received_bytes_total 15");
        has("uring_server_timeouts_total{kind=\"header\"} 2");
        has("uring_server_worker_tier{worker=\"1\",tier=\"full\"} 1");
        has("uring_server_worker_requests_total{worker=\"0\"} 2");
        has("uring_server_request_duration_seconds_bucket{le=\"0.00005\"} 1");
        has("uring_server_request_duration_seconds_bucket{le=\"0.00025\"} 2");
        has("uring_server_request_duration_seconds_bucket{le=\"+Inf\"} 3");
        has("uring_server_request_duration_seconds_count 3");
    }

    /// An upgrade's successor binds the same address; dropping ours must neither hang
    /// (a wake-up connection may go to the other listener) nor close the other one.
    #[test]
    fn drop_returns_while_another_listener_shares_the_address() {
        let reg = Arc::new(Registry::new(&[Tier::Basic], None));
        let first = MetricsServer::start("127.0.0.1:0".parse().unwrap(), reg.clone()).unwrap();
        let addr = first.local_addr();
        let second = MetricsServer::start(addr, reg).unwrap();
        let t = std::time::Instant::now();
        drop(first);
        assert!(t.elapsed() < Duration::from_secs(2));
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
        drop(second);
    }
}
