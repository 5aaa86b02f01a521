//! The server's configuration: plain data at the bottom of the module graph (it imports
//! nothing from this crate), read by the builder, the workers, the connections and the
//! access log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use uring_common::http::Limits;
use uring_common::ring::TierChoice;

/// Connection timeouts (defaults: head 10 s, body 60 s, keep-alive idle 60 s, drain 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed to receive a complete request head (slowloris guard). For the first
    /// request it runs from accept, so a connection that sends nothing is closed after
    /// it too (nginx's client_header_timeout); for later ones, from their first byte.
    pub header_read: Duration,
    /// Time allowed to receive a whole request body, from the end of its head, however
    /// it trickles in; beyond it the answer is 408 and the connection closes.
    pub body_read: Duration,
    /// Time an idle keep-alive connection (or a stalled send) may stay open.
    pub keep_alive: Duration,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(60),
            keep_alive: Duration::from_secs(60),
            drain: Duration::from_secs(10),
        }
    }
}

/// Everything a worker needs to know, cloned into each thread.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub workers: usize,
    pub pin: bool,
    pub tier: TierChoice,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// Open connections per worker; beyond it the worker stops accepting and new
    /// connections wait in the kernel's backlog.
    pub max_conns_per_worker: usize,
    /// listen(2) backlog.
    pub backlog: i32,
    pub access_log: Option<AccessLogTarget>,
    pub access_log_format: AccessLogFormat,
    /// Serve Prometheus metrics on this address (`/metrics`).
    pub metrics: Option<SocketAddr>,
    /// HTTPS listeners and their certificate.
    pub tls: Option<TlsSettings>,
    /// Submission queue entries per ring.
    pub sq_entries: u32,
    /// Completion queue entries per ring (multishot operations post many CQEs).
    pub cq_entries: u32,
    /// Reverse-proxy routes (`--proxy`); empty when the server proxies nothing.
    pub proxy: ProxyConfig,
    /// Speak HTTP/2 (`--http2`): prior knowledge on cleartext listeners, ALPN `h2` on
    /// TLS ones.
    pub http2: bool,
    pub http2_limits: Http2Limits,
    /// Request rate and connection limits per client address (`--limit-req`,
    /// `--limit-conn`; `limit.rs`).
    pub client_limits: ClientLimitConfig,
}

/// `--limit-req` and `--limit-conn` (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLimitConfig {
    /// Request rates: the global one has the empty prefix; a route's covers the paths
    /// starting with its prefix (replacing the global one there).
    pub requests: Vec<(String, LimitReq)>,
    /// Open connections per address.
    pub connections: Option<u32>,
}

/// One request rate limit: `100r/s`, `600r/m`, with `,burst=N` (default 0) and an
/// optional `,nodelay` (the only behaviour: see `limit.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitReq {
    /// Thousandths of a request per second (nginx keeps the rate the same way).
    pub milli_per_sec: u64,
    pub burst: u64,
}

impl std::str::FromStr for LimitReq {
    type Err = String;
    fn from_str(s: &str) -> Result<LimitReq, String> {
        let mut parts = s.split(',').map(str::trim);
        let rate = parts.next().unwrap_or_default();
        let bad_rate = || format!("'{rate}': a rate is N r/s or N r/m, e.g. 100r/s or 600r/m");
        let (n, per_minute) = match (rate.strip_suffix("r/s"), rate.strip_suffix("r/m")) {
            (Some(n), _) => (n, false),
            (_, Some(n)) => (n, true),
            _ => return Err(bad_rate()),
        };
        let n: u64 = n.trim().parse().map_err(|_| bad_rate())?;
        let milli_per_sec = if per_minute { n * 1000 / 60 } else { n * 1000 };
        if milli_per_sec == 0 || n > 1_000_000_000 {
            return Err(format!("'{rate}': the rate must be at least 1r/m"));
        }
        let mut burst = 0;
        for p in parts {
            if p == "nodelay" {
                continue;
            }
            burst = p
                .strip_prefix("burst=")
                .and_then(|b| b.parse::<u64>().ok())
                .filter(|&b| b <= 1_000_000_000)
                .ok_or_else(|| format!("'{p}': expected burst=N or nodelay"))?;
        }
        Ok(LimitReq {
            milli_per_sec,
            burst,
        })
    }
}

/// HTTP/2's limits (`--http2-*`; defaults: 100 streams, 16 KiB frames, a header list as
/// large as `--max-head-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Limits {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: more at once are refused (REFUSED_STREAM).
    pub max_streams: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept (16384..=16777215).
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE, 0 for `--max-head-bytes`: a larger request is 431.
    pub max_header_list: u32,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_streams: 100,
            max_frame_size: 16_384,
            max_header_list: 0,
        }
    }
}

impl ServerConfig {
    /// Whether connections may speak HTTP/2 (every route, the proxy's included, takes
    /// HTTP/2 requests).
    pub fn http2_active(&self) -> bool {
        self.http2
    }
}

/// Where an upstream listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// What an upstream speaks, from its URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// `http://`, `unix:`: HTTP/1.1, connections kept alive and pooled.
    #[default]
    Http,
    /// `uwsgi://`, `uwsgi+unix:`: the uwsgi packet (`proxy/uwsgi.rs`); uWSGI closes after
    /// each response, so its connections are never pooled.
    Uwsgi,
    /// `fastcgi://`, `fastcgi+unix:`: FastCGI records (`proxy/fastcgi.rs`) with
    /// `FCGI_KEEP_CONN`, connections pooled as HTTP's; the route names the script
    /// ([`FastcgiScript`]).
    Fastcgi,
}

/// Which script a FastCGI route runs (`SCRIPT_FILENAME`), as nginx's `root` with
/// `fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name` or a fixed
/// `fastcgi_param SCRIPT_FILENAME /path/index.php` would say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastcgiScript {
    /// `--fastcgi-root`: the directory the request's decoded path is appended to; also
    /// `DOCUMENT_ROOT`.
    Root(Arc<Path>),
    /// `--fastcgi-script`: one script answers every path of the route (a front
    /// controller); its directory is `DOCUMENT_ROOT`.
    Fixed(Arc<Path>),
}

/// How a route with several upstreams picks one (`--balance`, `balance = "..."`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    /// Smooth weighted round-robin (nginx's default).
    #[default]
    RoundRobin,
    /// The fewest requests in flight relative to weight (this worker's count); ties by
    /// weighted round-robin.
    LeastConn,
    /// Consistent (rendezvous) hash of a request header's value (`hash:HEADER`).
    Header(String),
    /// Consistent hash of a cookie's value (`hash:cookie:NAME`).
    Cookie(String),
}

impl std::str::FromStr for Balance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        match s {
            "round-robin" => Ok(Balance::RoundRobin),
            "least-conn" => Ok(Balance::LeastConn),
            _ => match s.strip_prefix("hash:") {
                Some(rest) => match rest.strip_prefix("cookie:") {
                    Some(name) if token(name) => Ok(Balance::Cookie(name.to_string())),
                    None if token(rest) => Ok(Balance::Header(rest.to_ascii_lowercase())),
                    _ => Err(format!("balance '{s}': hash needs a header or cookie name")),
                },
                None => Err(format!(
                    "balance '{s}': use round-robin, least-conn, hash:HEADER or hash:cookie:NAME"
                )),
            },
        }
    }
}

/// Active health checks of a route's upstreams (`--health PATH`): a `GET PATH` on a
/// connection of its own every `interval`; 2xx and 3xx pass. An upstream is marked down
/// after `fall` failed checks in a row and up again after `rise` passed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// A route's health settings (defaults as nginx: `max_fails=1 fail_timeout=10s`; no
/// active checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Failed attempts within `fail_timeout` that mark an upstream down for
    /// `fail_timeout` (0: never marked down).
    pub max_fails: u32,
    pub fail_timeout: Duration,
    pub check: Option<HealthCheck>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            check: None,
        }
    }
}

/// Defaults of [`HealthCheck`]'s interval, rise and fall (HAProxy's).
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
pub const HEALTH_RISE: u32 = 2;
pub const HEALTH_FALL: u32 = 3;

/// The most upstreams one route may have.
pub const MAX_ROUTE_UPSTREAMS: usize = 64;

/// One upstream of a route: an index into [`ProxyConfig::upstreams`] and its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMember {
    pub upstream: usize,
    pub weight: u32,
}

/// One `--proxy PREFIX=URL[,URL...]`: requests whose path starts with `prefix` go to one
/// of `members`, chosen by `balance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    pub prefix: String,
    pub members: Vec<RouteMember>,
    /// What its upstreams speak (one protocol per route).
    pub protocol: UpstreamProtocol,
    pub balance: Balance,
    pub health: Health,
    /// For a FastCGI upstream: the script it runs.
    pub fastcgi: Option<FastcgiScript>,
}

/// The reverse proxy's settings (defaults: 32 connections per worker and upstream,
/// connect timeout 5 s, upstream timeout 60 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub routes: Vec<ProxyRoute>,
    pub upstreams: Vec<UpstreamAddr>,
    /// Per upstream (same index): what it speaks.
    pub protocols: Vec<UpstreamProtocol>,
    /// Connections per worker and upstream: a cap, so a small app server is not flooded.
    pub conns_per_upstream: usize,
    pub connect_timeout: Duration,
    /// Time to the response head, and between reads of the response.
    pub timeout: Duration,
    /// Append to the client's `X-Forwarded-*` chain instead of replacing it.
    pub trust_forwarded: bool,
    /// A tunnel (after a 101: WebSocket) with no byte either way for this long closes.
    pub tunnel_idle_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            routes: Vec::new(),
            upstreams: Vec::new(),
            protocols: Vec::new(),
            conns_per_upstream: 32,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            trust_forwarded: false,
            tunnel_idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ProxyConfig {
    /// Add a route to one upstream.
    pub fn add_route(&mut self, prefix: &str, upstream: UpstreamAddr, protocol: UpstreamProtocol) {
        let members = [((upstream, protocol), 1)];
        let added =
            self.add_balanced_route(prefix, &members, Balance::default(), Health::default());
        debug_assert!(added.is_ok());
    }

    /// Add a route to several upstreams (`(url, weight)`); they must speak one protocol.
    /// The same upstream named twice (address and protocol), by one route or several, is
    /// one upstream (one pool).
    pub fn add_balanced_route(
        &mut self,
        prefix: &str,
        upstreams: &[(UpstreamUrl, u32)],
        balance: Balance,
        health: Health,
    ) -> Result<(), String> {
        check_route_upstreams(prefix, upstreams)?;
        let mut members: Vec<RouteMember> = Vec::new();
        for ((addr, protocol), weight) in upstreams {
            let same = |(u, p): (&UpstreamAddr, &UpstreamProtocol)| u == addr && p == protocol;
            let idx = match self.upstreams.iter().zip(&self.protocols).position(same) {
                Some(i) => i,
                None => {
                    self.upstreams.push(addr.clone());
                    self.protocols.push(*protocol);
                    self.upstreams.len() - 1
                }
            };
            members.push(RouteMember {
                upstream: idx,
                weight: (*weight).max(1),
            });
        }
        self.routes.retain(|r| r.prefix != prefix);
        self.routes.push(ProxyRoute {
            prefix: prefix.to_string(),
            members,
            protocol: upstreams[0].0 .1,
            balance,
            health,
            fastcgi: None,
        });
        Ok(())
    }

    /// Add a route to a FastCGI upstream that runs `script`.
    pub fn add_fastcgi_route(
        &mut self,
        prefix: &str,
        upstream: UpstreamAddr,
        script: FastcgiScript,
    ) {
        self.add_route(prefix, upstream, UpstreamProtocol::Fastcgi);
        self.set_fastcgi_script(prefix, script);
    }

    /// The script of the FastCGI route `prefix`.
    pub fn set_fastcgi_script(&mut self, prefix: &str, script: FastcgiScript) {
        if let Some(r) = self.routes.iter_mut().find(|r| r.prefix == prefix) {
            r.fastcgi = Some(script);
        }
    }

    /// Every FastCGI route knows its script: an error naming the first that does not.
    pub fn check_fastcgi(&self) -> Result<(), String> {
        match self
            .routes
            .iter()
            .find(|r| r.protocol == UpstreamProtocol::Fastcgi && r.fastcgi.is_none())
        {
            Some(r) => Err(format!(
                "the FastCGI route '{}' needs --fastcgi-root {0}=DIR or --fastcgi-script {0}=FILE \
                 (fastcgi_root or fastcgi_script in the config file)",
                r.prefix
            )),
            None => Ok(()),
        }
    }

    /// The index of the route with the longest prefix that `path` starts with.
    pub fn route(&self, path: &str) -> Option<usize> {
        self.longest(path).map(|(i, _)| i)
    }

    /// The route with the longest prefix that `path` starts with, and its index.
    pub fn longest(&self, path: &str) -> Option<(usize, &ProxyRoute)> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| path.starts_with(r.prefix.as_str()))
            .max_by_key(|(_, r)| r.prefix.len())
    }

    /// The route for `path`, as handlers answer it (without a balancing key: the
    /// handler adds it, `proxy::balance::request_key`).
    pub fn upstream_for(&self, path: &str) -> Option<UpstreamRoute> {
        self.longest(path).map(|(i, r)| self.upstream_route(i, r))
    }

    /// What a handler answers for route `r` (index `index`).
    #[inline]
    pub fn upstream_route(&self, index: usize, r: &ProxyRoute) -> UpstreamRoute {
        UpstreamRoute {
            upstream: index,
            trust_forwarded: self.trust_forwarded,
            protocol: r.protocol,
            fastcgi: r.fastcgi.clone(),
            key: None,
        }
    }

    /// The longest a worker's timer sweep may wait for the proxy's sake.
    pub fn tick_bound(&self) -> Duration {
        if !self.is_enabled() {
            return Duration::MAX;
        }
        let checks = self.routes.iter().filter_map(|r| r.health.check.as_ref());
        let tunnel_idle = self.timeout.min(self.tunnel_idle_timeout);
        checks.map(|c| c.interval).fold(tunnel_idle, Duration::min)
    }

    pub fn is_enabled(&self) -> bool {
        !self.routes.is_empty()
    }
}

/// A route's upstreams make sense together: at least one, at most
/// [`MAX_ROUTE_UPSTREAMS`], one protocol, none named twice.
pub fn check_route_upstreams(prefix: &str, upstreams: &[(UpstreamUrl, u32)]) -> Result<(), String> {
    let Some(((_, protocol), _)) = upstreams.first() else {
        return Err(format!("route '{prefix}' has no upstream"));
    };
    if upstreams.iter().any(|((_, p), _)| p != protocol) {
        return Err(format!(
            "route '{prefix}': its upstreams must speak one protocol (one URL scheme)"
        ));
    }
    if upstreams.len() > MAX_ROUTE_UPSTREAMS {
        return Err(format!(
            "route '{prefix}' has {} upstreams, at most {MAX_ROUTE_UPSTREAMS}",
            upstreams.len()
        ));
    }
    for (i, (url, _)) in upstreams.iter().enumerate() {
        if upstreams[..i].iter().any(|(u, _)| u == url) {
            return Err(format!(
                "route '{prefix}' names {} twice",
                upstream_text(&url.0)
            ));
        }
    }
    Ok(())
}

/// An upstream's address as logs and metrics print it (`unix:/path` for a socket, as
/// nginx's `$upstream_addr`).
pub fn upstream_text(addr: &UpstreamAddr) -> String {
    match addr {
        UpstreamAddr::Tcp(a) => a.to_string(),
        UpstreamAddr::Unix(p) => format!("unix:{}", p.display()),
    }
}

/// What a handler answers for a request it wants proxied ([`crate::Handler::upstream_for`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamRoute {
    /// The route's index in [`ProxyConfig::routes`] (checked by the proxy).
    pub upstream: usize,
    pub trust_forwarded: bool,
    pub protocol: UpstreamProtocol,
    /// A FastCGI route's script (`None` for one: `SCRIPT_FILENAME` is the decoded path).
    pub fastcgi: Option<FastcgiScript>,
    /// The hash of the request's balancing key (`hash:HEADER`, `hash:cookie:NAME`);
    /// `None`: round-robin.
    pub key: Option<u64>,
}

/// An upstream URL parsed: where it listens and what it speaks.
pub type UpstreamUrl = (UpstreamAddr, UpstreamProtocol);

/// Parse an upstream URL: `http://HOST:PORT` (a literal address; `[::1]` for IPv6,
/// `localhost` allowed) or `unix:/path/to.sock`; `uwsgi://HOST:PORT` or
/// `uwsgi+unix:/path` for a uWSGI server's uwsgi socket; `fastcgi://HOST:PORT` or
/// `fastcgi+unix:/path` for a FastCGI server (php-fpm, fcgiwrap).
pub fn parse_upstream(url: &str) -> Result<UpstreamUrl, String> {
    let (protocol, rest) = if let Some(rest) = url.strip_prefix("uwsgi") {
        (UpstreamProtocol::Uwsgi, rest)
    } else if let Some(rest) = url.strip_prefix("fastcgi") {
        (UpstreamProtocol::Fastcgi, rest)
    } else {
        (UpstreamProtocol::Http, url)
    };
    let (unix, tcp) = match protocol {
        UpstreamProtocol::Http => ("unix:", "http://"),
        UpstreamProtocol::Uwsgi | UpstreamProtocol::Fastcgi => ("+unix:", "://"),
    };
    if let Some(path) = rest.strip_prefix(unix) {
        if path.is_empty() {
            return Err(format!("'{url}': needs a socket path"));
        }
        return Ok((UpstreamAddr::Unix(PathBuf::from(path)), protocol));
    }
    let Some(rest) = rest.strip_prefix(tcp) else {
        return Err(format!(
            "'{url}': upstream must be http://HOST:PORT, unix:/path, uwsgi://HOST:PORT, \
             uwsgi+unix:/path, fastcgi://HOST:PORT or fastcgi+unix:/path (https is not supported)"
        ));
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        return Err(format!("'{url}': upstream URL must not have a path"));
    }
    let authority = match authority.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => authority.to_string(),
    };
    authority
        .parse::<SocketAddr>()
        .map(|a| (UpstreamAddr::Tcp(a), protocol))
        .map_err(|_| {
            format!("'{url}': expected IP:PORT (e.g. http://127.0.0.1:8000 or http://[::1]:9000)")
        })
}

/// One upstream as a route lists it: `URL` or `URL weight=N` (N >= 1; default 1).
pub fn parse_upstream_spec(spec: &str) -> Result<(UpstreamUrl, u32), String> {
    let mut words = spec.split_whitespace();
    let url = parse_upstream(words.next().unwrap_or(""))?;
    let mut weight = 1;
    for option in words {
        match option.strip_prefix("weight=").map(str::parse::<u32>) {
            Some(Ok(w)) if w >= 1 => weight = w,
            _ => {
                return Err(format!(
                    "'{option}': an upstream takes only weight=N (N >= 1)"
                ))
            }
        }
    }
    Ok((url, weight))
}

/// Where `--access-log` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    File(PathBuf),
}

/// `--tls-listen`, `--tls-cert`, `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Addresses that speak TLS (an inherited socket with one of these addresses too).
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// `--ktls`: hand sessions to the kernel after the handshake where it can take them.
    pub ktls: bool,
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// nginx's `combined`: `$remote_addr - $remote_user [$time_local] "$request" $status
    /// $body_bytes_sent "$http_referer" "$http_user_agent"` (time in UTC, `+0000`).
    #[default]
    Combined,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for AccessLogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "combined" => Ok(AccessLogFormat::Combined),
            "json" => Ok(AccessLogFormat::Json),
            _ => Err(format!(
                "unknown access log format '{s}': use combined or json"
            )),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            workers: 1,
            pin: true,
            tier: TierChoice::Auto,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            max_conns_per_worker: 16 * 1024,
            backlog: 4096,
            access_log: None,
            access_log_format: AccessLogFormat::Combined,
            metrics: None,
            tls: None,
            sq_entries: 2048,
            cq_entries: 16384,
            proxy: ProxyConfig::default(),
            http2: true,
            http2_limits: Http2Limits::default(),
            client_limits: ClientLimitConfig::default(),
        }
    }
}
