//! The public entry point: [`Server::builder`] collects the configuration, binds every
//! listener (so start-up errors surface before any thread runs), probes the kernel tier,
//! starts one pinned worker per core and hands back a [`RunningServer`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use uring_common::http::Limits;
use uring_common::ring::{self, RingError, Tier, TierChoice};

// The configuration lives in `config.rs` (at the bottom of the module graph, so the
// worker, the connection and the access log need not import this file); these paths
// stay as they were.
use crate::access_log::AccessLog;
use crate::compress::Compression;
pub use crate::config::{
    AccessLogFormat, AccessLogTarget, FastcgiScript, ProxyConfig, ServerConfig, Timeouts,
    TlsSettings, UpstreamAddr, UpstreamProtocol, UpstreamRoute,
};
use crate::handler::{DefaultHandler, Handler};
use crate::metrics::{MetricsServer, Registry};
use crate::observe::RequestLog;
use crate::static_files::FileBodies;
use crate::tls::{ListenerTls, TlsError, TlsSource};
use crate::worker::{self, WorkerConfig};

/// Why the server could not start. `Display` is one line with the cause and the fix.
#[derive(Debug)]
pub enum ServerError {
    /// The address is taken by another socket.
    AddressInUse(SocketAddr, Listening),
    /// Binding needs privileges (ports below 1024).
    BindPermission(SocketAddr, Listening),
    /// The address does not belong to this host.
    AddressNotAvailable(SocketAddr, Listening),
    /// Any other socket set-up failure.
    Socket(SocketAddr, Listening, io::Error),
    /// io_uring could not be set up (forbidden, memlock, unsupported, tier unavailable).
    Ring(RingError),
    /// The static file root is unusable.
    Root(PathBuf, io::Error),
    /// A configuration value makes no sense.
    Config(String),
    /// A worker thread could not be started.
    Thread(io::Error),
    /// The TLS certificate or key is unusable.
    Tls(TlsError),
}

/// What an address that could not be bound was for, named by its command-line flag in
/// the error line (a busy metrics port must not send the operator to `--listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listening {
    /// A plain HTTP address (`--listen`).
    Http,
    /// An HTTPS address (`--tls-listen`).
    Https,
    /// The Prometheus scrape address (`--metrics`).
    Metrics,
}

impl Listening {
    fn flag(self) -> &'static str {
        match self {
            Listening::Http => "--listen",
            Listening::Https => "--tls-listen",
            Listening::Metrics => "--metrics",
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::AddressInUse(a, l) => write!(
                f,
                "cannot listen on {a} ({}): address already in use; stop the process holding it (see `ss -ltnp`) or pick another {} address",
                l.flag(),
                l.flag()
            ),
            ServerError::BindPermission(a, l) => write!(
                f,
                "cannot listen on {a} ({}): permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE (`setcap cap_net_bind_service=+ep`), or use a port >= 1024",
                l.flag()
            ),
            ServerError::AddressNotAvailable(a, l) => write!(
                f,
                "cannot listen on {a} ({}): address not available on this host; use an address of a local interface or 0.0.0.0 / [::]",
                l.flag()
            ),
            ServerError::Socket(a, l, e) => write!(
                f,
                "cannot listen on {a} ({}): {e}; check the address and system limits",
                l.flag()
            ),
            ServerError::Ring(e) => write!(f, "{e}"),
            ServerError::Root(p, e) => write!(
                f,
                "cannot serve files from {}: {e}; pass an existing readable directory to --root",
                p.display()
            ),
            ServerError::Config(msg) => write!(f, "invalid configuration: {msg}"),
            ServerError::Tls(e) => write!(f, "{e}"),
            ServerError::Thread(e) => write!(
                f,
                "cannot start a worker thread: {e}; lower --workers or raise the thread limit (ulimit -u)"
            ),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<RingError> for ServerError {
    fn from(e: RingError) -> Self {
        ServerError::Ring(e)
    }
}

/// Entry point of the library API.
pub struct Server;

impl Server {
    /// A builder with the defaults: no address yet (`0.0.0.0:8080` if none is given), one
    /// worker, pinning on, automatic tier, the default handler.
    pub fn builder() -> ServerBuilder<DefaultHandler> {
        ServerBuilder {
            config: ServerConfig::default(),
            root: None,
            bodies: FileBodies::default(),
            codings: ContentCodings::default(),
            handler: None,
            inherited: Vec::new(),
        }
    }
}

/// Collects the configuration; [`ServerBuilder::start`] binds and starts the workers.
pub struct ServerBuilder<H> {
    config: ServerConfig,
    root: Option<PathBuf>,
    bodies: FileBodies,
    codings: ContentCodings,
    handler: Option<H>,
    inherited: Vec<OwnedFd>,
}

impl<H: Handler + Clone> ServerBuilder<H> {
    /// Add a listen address (repeatable). Port 0 picks a free port shared by all workers.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen.push(addr);
        self
    }

    /// Number of worker threads (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// Pin worker `i` to core `i` (default true).
    pub fn pin(mut self, pin: bool) -> Self {
        self.config.pin = pin;
        self
    }

    pub fn tier(mut self, tier: TierChoice) -> Self {
        self.config.tier = tier;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.config.timeouts = timeouts;
        self
    }

    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.header_read = d;
        self
    }

    pub fn keep_alive_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.keep_alive = d;
        self
    }

    /// Time allowed to receive a whole request body, from the end of its head (default
    /// 60 s); beyond it the request is answered 408 and the connection closed.
    pub fn body_read_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.body_read = d;
        self
    }

    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.drain = d;
        self
    }

    /// Cap on open connections per worker (default 16384).
    pub fn max_connections_per_worker(mut self, n: usize) -> Self {
        self.config.max_conns_per_worker = n;
        self
    }

    pub fn backlog(mut self, n: i32) -> Self {
        self.config.backlog = n;
        self
    }

    pub fn access_log(mut self, target: Option<AccessLogTarget>) -> Self {
        self.config.access_log = target;
        self
    }

    pub fn access_log_format(mut self, format: AccessLogFormat) -> Self {
        self.config.access_log_format = format;
        self
    }

    /// Serve HTTPS on `settings.listen` with its certificate and key.
    pub fn tls(mut self, settings: Option<TlsSettings>) -> Self {
        self.config.tls = settings;
        self
    }

    /// Serve Prometheus metrics on `addr` (`/metrics`), from a thread of its own.
    pub fn metrics(mut self, addr: Option<SocketAddr>) -> Self {
        self.config.metrics = addr;
        self
    }

    /// Listen on these already-listening sockets (systemd socket activation, an upgrade's
    /// predecessor) instead of binding the `listen` addresses; see `inherit.rs` for how
    /// they are shared among the workers.
    pub fn inherit_listeners(mut self, fds: Vec<OwnedFd>) -> Self {
        self.inherited = fds;
        self
    }

    /// Ring sizes per worker (defaults 2048 SQ, 16384 CQ entries; powers of two).
    pub fn ring_entries(mut self, sq: u32, cq: u32) -> Self {
        self.config.sq_entries = sq;
        self.config.cq_entries = cq;
        self
    }

    /// Proxy requests whose path starts with `prefix` to `upstream` (repeatable; the
    /// longest prefix wins; default handler only: `/plaintext` and `/json` stay built in).
    pub fn proxy(self, prefix: &str, upstream: UpstreamAddr) -> Self {
        self.proxy_with(prefix, upstream, UpstreamProtocol::Http)
    }

    /// [`proxy`](Self::proxy) to an upstream that speaks `protocol`.
    pub fn proxy_with(
        mut self,
        prefix: &str,
        upstream: UpstreamAddr,
        protocol: UpstreamProtocol,
    ) -> Self {
        self.config.proxy.add_route(prefix, upstream, protocol);
        self
    }

    /// [`proxy`](Self::proxy) to a FastCGI upstream (php-fpm, fcgiwrap) running `script`.
    pub fn proxy_fastcgi(
        mut self,
        prefix: &str,
        upstream: UpstreamAddr,
        script: FastcgiScript,
    ) -> Self {
        self.config
            .proxy
            .add_fastcgi_route(prefix, upstream, script);
        self
    }

    /// A route to several upstreams (`(url, weight)`, one protocol), balanced by
    /// `balance`, with `health`'s passive and active checks; a FastCGI route's `script`.
    pub fn proxy_balanced(
        mut self,
        prefix: &str,
        upstreams: &[(crate::config::UpstreamUrl, u32)],
        balance: crate::config::Balance,
        health: crate::config::Health,
        script: Option<FastcgiScript>,
    ) -> Result<Self, ServerError> {
        let proxy = &mut self.config.proxy;
        (proxy.add_balanced_route(prefix, upstreams, balance, health))
            .map_err(ServerError::Config)?;
        if let Some(script) = script {
            proxy.set_fastcgi_script(prefix, script);
        }
        Ok(self)
    }

    /// Connections per worker and upstream (default 32).
    pub fn upstream_conns(mut self, n: usize) -> Self {
        self.config.proxy.conns_per_upstream = n;
        self
    }

    /// Upstream connect timeout (default 5 s) and time to the response head and between
    /// reads (default 60 s).
    pub fn upstream_timeouts(mut self, connect: Duration, response: Duration) -> Self {
        self.config.proxy.connect_timeout = connect;
        self.config.proxy.timeout = response;
        self
    }

    /// How long a proxied tunnel (WebSocket, after a 101) may go without a byte either
    /// way before it is closed (default 60 s, as nginx's `proxy_read_timeout`).
    pub fn tunnel_idle_timeout(mut self, idle: Duration) -> Self {
        self.config.proxy.tunnel_idle_timeout = idle;
        self
    }

    /// Speak HTTP/2 beside HTTP/1.1 (default on): prior knowledge on cleartext
    /// listeners, ALPN `h2` on TLS ones (see [`ServerConfig::http2_active`]).
    pub fn http2(mut self, on: bool) -> Self {
        self.config.http2 = on;
        self
    }

    /// HTTP/2's limits: concurrent streams, frame size, header list size.
    pub fn http2_limits(mut self, limits: crate::config::Http2Limits) -> Self {
        self.config.http2_limits = limits;
        self
    }

    /// Append to a client's `X-Forwarded-*` chain (a trusted front) instead of replacing it.
    pub fn trust_forwarded(mut self, on: bool) -> Self {
        self.config.proxy.trust_forwarded = on;
        self
    }

    /// Serve static files from `dir` (default handler only).
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = Some(dir.into());
        self
    }

    /// How static file bodies go out by size (default handler only).
    pub fn file_bodies(mut self, bodies: FileBodies) -> Self {
        self.bodies = bodies;
        self
    }

    /// Request rate and connection limits per client address (`limit.rs`).
    pub fn client_limits(mut self, limits: crate::config::ClientLimitConfig) -> Self {
        self.config.client_limits = limits;
        self
    }

    /// Serve precompressed siblings of static files (`a.js.br`, `.zst`, `.gz`) to
    /// clients that accept them (default handler only).
    pub fn precompressed(mut self, on: bool) -> Self {
        self.codings.precompressed = on;
        self
    }

    /// Compress answers on the fly (default handler only; see [`Compression`]).
    pub fn compression(mut self, c: Compression) -> Self {
        self.codings.compression = c;
        self
    }

    /// Use `handler`; each worker gets its own clone.
    pub fn handler<H2: Handler + Clone>(self, handler: H2) -> ServerBuilder<H2> {
        ServerBuilder {
            config: self.config,
            root: self.root,
            bodies: self.bodies,
            codings: self.codings,
            handler: Some(handler),
            inherited: self.inherited,
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Bind, probe, start the workers. Returns once every worker's ring is up.
    pub fn start(self) -> Result<RunningServer, ServerError>
    where
        H: 'static,
    {
        let mut config = self.config;
        check_config(&mut config)?;
        let handler = match self.handler {
            Some(h) => h,
            None => default_handler::<H>(self.root, self.bodies, self.codings, &config.proxy)?,
        };

        ring::raise_memlock_limit();
        ring::raise_nofile_limit();
        let selection = ring::select(config.tier)?;
        let tier = selection.tier;

        let tls = match &config.tls {
            Some(t) => {
                let kernel = t.ktls.then(crate::ktls::probe_and_log).flatten();
                let http2 = config.http2_active();
                Some(TlsSource::load(&t.cert, &t.key, kernel, http2).map_err(ServerError::Tls)?)
            }
            None => None,
        };
        let inherited = !self.inherited.is_empty();
        let listeners = listeners(&config, self.inherited)?;
        let local_addrs: Vec<SocketAddr> = listeners[0]
            .iter()
            .map(|s| crate::inherit::local_addr(s.as_fd()).expect("bound socket has an address"))
            .collect();
        let tls_addrs = tls_addresses(&config, inherited, &local_addrs);
        let held: Vec<RawFd> = listeners
            .iter()
            .flatten()
            .map(|fd| fd.as_raw_fd())
            .collect();

        let cores = if config.pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };

        let access_log = AccessLog::open(&config.access_log, config.access_log_format)
            .map_err(|e| ServerError::Config(format!("cannot open the access log: {e}")))?;
        let (registry, metrics) = start_metrics(&config, tier, access_log.as_ref())?;

        let client_limits = crate::limit::ClientLimits::new(&config.client_limits).map(Arc::new);
        let mut workers = Vec::with_capacity(config.workers);
        let mut wakers = Vec::with_capacity(config.workers);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), RingError>>();
        for (index, socks) in listeners.into_iter().enumerate() {
            // SAFETY: eventfd returns a new fd or -1.
            let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if efd < 0 {
                return Err(ServerError::Thread(io::Error::last_os_error()));
            }
            // SAFETY: efd is a fresh fd we own.
            let waker = unsafe { OwnedFd::from_raw_fd(efd) };
            let is_tls = socks
                .iter()
                .map(|fd| {
                    crate::inherit::local_addr(fd.as_fd()).is_ok_and(|a| tls_addrs.contains(&a))
                })
                .collect();
            let wcfg = WorkerConfig {
                tls: ListenerTls::new(is_tls, tls.as_ref().map(TlsSource::worker)),
                index,
                tier,
                config: config.clone(),
                listeners: socks,
                wake_fd: waker.as_raw_fd(),
                core: cores.get(index % cores.len().max(1)).copied(),
                log: RequestLog::new(
                    access_log.as_ref().map(AccessLog::sink),
                    registry.as_ref().map(|r| r.slot(index)),
                ),
                client_limits: client_limits.clone(),
            };
            let h = handler.clone();
            let tx = ready_tx.clone();
            let join = std::thread::Builder::new()
                .name(format!("uring-worker-{index}"))
                .spawn(move || worker::run(wcfg, h, tx))
                .map_err(ServerError::Thread)?;
            workers.push(join);
            wakers.push(waker);
        }
        drop(ready_tx);
        let mut server = RunningServer {
            workers,
            wakers,
            local_addrs,
            tier,
            fallback: selection.fallback,
            access_log,
            metrics,
            held: Mutex::new(held),
            tls,
        };
        for _ in 0..server.workers.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    server.begin_shutdown();
                    server.join_inner();
                    return Err(ServerError::Ring(e));
                }
                Err(_) => {
                    server.begin_shutdown();
                    server.join_inner();
                    return Err(ServerError::Config("a worker thread died at start".into()));
                }
            }
        }
        Ok(server)
    }
}

/// The addresses that speak TLS: the bound `--tls-listen` ones (port 0 resolved; they
/// follow the plain ones), or, for inherited sockets, the configured addresses.
fn tls_addresses(config: &ServerConfig, inherited: bool, local: &[SocketAddr]) -> Vec<SocketAddr> {
    match &config.tls {
        None => Vec::new(),
        Some(t) if inherited => t.listen.clone(),
        Some(_) => local[config.listen.len().min(local.len())..].to_vec(),
    }
}

/// Fill in the default address and refuse values that make no sense.
fn check_config(config: &mut ServerConfig) -> Result<(), ServerError> {
    if config.tls.as_ref().is_some_and(|t| t.listen.is_empty()) {
        return Err(ServerError::Config(
            "--tls-cert/--tls-key need a --tls-listen address".into(),
        ));
    }
    if config.listen.is_empty() && config.tls.is_none() {
        config.listen.push(SocketAddr::from(([0, 0, 0, 0], 8080)));
    }
    if config.workers == 0 {
        return Err(ServerError::Config("--workers must be at least 1".into()));
    }
    config.proxy.check_fastcgi().map_err(ServerError::Config)?;
    if !config.sq_entries.is_power_of_two()
        || !config.cq_entries.is_power_of_two()
        || config.cq_entries < config.sq_entries
    {
        return Err(ServerError::Config(
            "ring sizes must be powers of two, with at least as many CQ as SQ entries".into(),
        ));
    }
    if config.max_conns_per_worker == 0 {
        return Err(ServerError::Config(
            "the connection cap per worker must be at least 1".into(),
        ));
    }
    if config.proxy.is_enabled() && config.proxy.conns_per_upstream == 0 {
        return Err(ServerError::Config(
            "--upstream-conns must be at least 1".into(),
        ));
    }
    Ok(())
}

/// The default handler's content codings (`--precompressed`, `--compress`).
#[derive(Debug, Clone, Copy, Default)]
struct ContentCodings {
    precompressed: bool,
    compression: Compression,
}

/// The default handler (with `root`), as the builder's handler type, which is
/// `DefaultHandler` whenever no handler was given.
fn default_handler<H: 'static>(
    root: Option<PathBuf>,
    bodies: FileBodies,
    codings: ContentCodings,
    proxy: &ProxyConfig,
) -> Result<H, ServerError> {
    let mut dh = DefaultHandler::with_bodies(root.clone(), bodies)
        .map_err(|e| ServerError::Root(root.unwrap_or_default(), e))?;
    if let Some(files) = dh.files.take() {
        let files = files.precompressed(codings.precompressed);
        dh.files = Some(files.compression(codings.compression));
    }
    if codings.compression.is_on() {
        dh.compress = Some(codings.compression);
    }
    if proxy.is_enabled() {
        dh.proxy = Some(std::sync::Arc::new(proxy.clone()));
    }
    let any: Box<dyn std::any::Any> = Box::new(dh);
    any.downcast::<H>()
        .map(|h| *h)
        .map_err(|_| ServerError::Config("a handler is required for this handler type".into()))
}

/// The listening sockets of each worker: inherited ones, or bound now.
fn listeners(
    config: &ServerConfig,
    inherited: Vec<OwnedFd>,
) -> Result<Vec<Vec<OwnedFd>>, ServerError> {
    if !inherited.is_empty() {
        return crate::inherit::per_worker(inherited, config.workers)
            .map_err(|e| ServerError::Config(format!("cannot use the inherited sockets: {e}")));
    }
    Ok(bind_all(config)?
        .into_iter()
        .map(|socks| socks.into_iter().map(OwnedFd::from).collect())
        .collect())
}

/// The metrics registry (one slot per worker) and its scrape listener, with `--metrics`.
fn start_metrics(
    config: &ServerConfig,
    tier: Tier,
    access_log: Option<&AccessLog>,
) -> Result<(Option<Arc<Registry>>, Option<MetricsServer>), ServerError> {
    let Some(addr) = config.metrics else {
        return Ok((None, None));
    };
    let upstreams = config.proxy.routes.iter().flat_map(|r| {
        (r.members.iter()).map(|m| {
            let addr = crate::config::upstream_text(&config.proxy.upstreams[m.upstream]);
            (r.prefix.clone(), addr)
        })
    });
    let registry = Registry::new(
        &vec![tier; config.workers],
        access_log.map(AccessLog::dropped_lines),
    );
    let registry = Arc::new(registry.with_upstreams(upstreams));
    let server = MetricsServer::start(addr, registry.clone())
        .map_err(|e| bind_error(addr, Listening::Metrics, e))?;
    Ok((Some(registry), Some(server)))
}

fn bind_all(config: &ServerConfig) -> Result<Vec<Vec<Socket>>, ServerError> {
    let mut per_worker: Vec<Vec<Socket>> = (0..config.workers).map(|_| Vec::new()).collect();
    let plain = config.listen.iter().map(|a| (a, Listening::Http));
    let tls = config.tls.iter().flat_map(|t| t.listen.iter());
    for (addr, what) in plain.chain(tls.map(|a| (a, Listening::Https))) {
        if addr.port() != 0 {
            probe_free(*addr, what)?;
        }
        // Worker 0 binds first so that port 0 resolves once; the rest join its port.
        let first = bind_one(*addr, what, config.backlog)?;
        let resolved = first
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(*addr);
        per_worker[0].push(first);
        for socks in per_worker.iter_mut().skip(1) {
            socks.push(bind_one(resolved, what, config.backlog)?);
        }
    }
    Ok(per_worker)
}

/// SO_REUSEPORT would let us join another process's listener on the same port (same
/// user) and silently split its traffic. A plain bind, without SO_REUSEPORT, fails if
/// anything listens there; SO_REUSEADDR keeps TIME_WAIT leftovers from failing it.
fn probe_free(addr: SocketAddr, what: Listening) -> Result<(), ServerError> {
    let sock_err = |e: io::Error| ServerError::Socket(addr, what, e);
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(sock_err)?;
    socket.set_reuse_address(true).map_err(sock_err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(sock_err)?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| bind_error(addr, what, e))
}

fn bind_error(addr: SocketAddr, what: Listening, e: io::Error) -> ServerError {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => ServerError::AddressInUse(addr, what),
        Some(libc::EACCES) | Some(libc::EPERM) => ServerError::BindPermission(addr, what),
        Some(libc::EADDRNOTAVAIL) => ServerError::AddressNotAvailable(addr, what),
        _ => ServerError::Socket(addr, what, e),
    }
}

fn bind_one(addr: SocketAddr, what: Listening, backlog: i32) -> Result<Socket, ServerError> {
    let sock_err = |e: io::Error| ServerError::Socket(addr, what, e);
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(sock_err)?;
    socket.set_reuse_address(true).map_err(sock_err)?;
    socket.set_reuse_port(true).map_err(sock_err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(sock_err)?;
    }
    // Accepted sockets inherit TCP_NODELAY, which saves a setsockopt per connection.
    socket.set_tcp_nodelay(true).map_err(sock_err)?;
    socket
        .bind(&addr.into())
        .map_err(|e| bind_error(addr, what, e))?;
    socket.listen(backlog).map_err(sock_err)?;
    Ok(socket)
}

/// A started server. Dropping it shuts it down gracefully.
pub struct RunningServer {
    workers: Vec<JoinHandle<()>>,
    wakers: Vec<OwnedFd>,
    local_addrs: Vec<SocketAddr>,
    tier: Tier,
    fallback: Option<String>,
    access_log: Option<AccessLog>,
    metrics: Option<MetricsServer>,
    /// The workers' listening sockets (their fd numbers), for an upgrade's successor.
    /// The workers own them and close them when they drain, so the list is emptied when
    /// the drain begins; a number that went stale otherwise (a worker whose ring failed)
    /// is refused by the successor, which checks every fd is a listening TCP socket.
    held: Mutex<Vec<RawFd>>,
    tls: Option<Arc<TlsSource>>,
}

impl RunningServer {
    /// The bound addresses, in `listen` order, with port 0 resolved.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs.clone()
    }

    /// The kernel tier the workers run.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Why `auto` chose epoll, when it fell back ("io_uring unavailable (...); using epoll").
    pub fn tier_fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Where `/metrics` is served (port 0 resolved).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// Read the TLS certificate and key again: new connections get the new ones, open
    /// ones keep theirs. Ok(false) without TLS.
    pub fn reload_tls(&self) -> Result<bool, TlsError> {
        match &self.tls {
            Some(t) => t.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// Open the access log file again (after logrotate moved it away).
    pub fn reopen_access_log(&self) {
        if let Some(l) = &self.access_log {
            l.reopen();
        }
    }

    /// The listening sockets, for a successor to inherit (empty once shutdown began).
    pub fn listener_fds(&self) -> Vec<RawFd> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.clone()
    }

    /// Ask every worker to drain: stop accepting, finish in-flight requests, close idle
    /// connections, exit within the drain timeout. Returns at once.
    pub fn begin_shutdown(&self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for w in &self.wakers {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to an eventfd we own.
            unsafe {
                libc::write(w.as_raw_fd(), (&one as *const u64).cast(), 8);
            }
        }
    }

    /// Whether a worker has stopped (before a shutdown was asked for, that means its ring
    /// failed and the server runs short-handed).
    pub fn any_worker_exited(&self) -> bool {
        self.workers.iter().any(|w| w.is_finished())
    }

    /// Wait until every worker has exited.
    pub fn join(mut self) {
        self.join_inner();
    }

    /// Graceful shutdown: [`begin_shutdown`](Self::begin_shutdown) then [`join`](Self::join).
    pub fn shutdown(self) {
        self.begin_shutdown();
        self.join();
    }

    fn join_inner(&mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // The workers handed over their last lines; write them before returning.
        if let Some(l) = self.access_log.as_mut() {
            l.close();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.begin_shutdown();
            self.join_inner();
        }
    }
}
