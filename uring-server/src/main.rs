//! `uring-server`: the command line over the library's builder. Parses flags, takes
//! inherited sockets (systemd, an upgrade), starts the workers, logs the tier, tells the
//! service manager, then waits for signals: SIGTERM/SIGINT drain gracefully (exit 0; a
//! second one exits at once), SIGUSR1 reopens the access log, SIGHUP reloads (reopens
//! the access log), SIGUSR2 upgrades (starts the binary at our path on our sockets,
//! then drains once it is ready). `--config FILE` reads the same settings from TOML
//! (config_file.rs); `--user` and `--pid-file` act once the sockets are bound
//! (privileges.rs).

mod config_file;
mod privileges;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use uring_server::compress::{Codings, Compression};
use uring_server::config::{
    parse_upstream_spec, Balance, ClientLimitConfig, Health, HealthCheck, Http2Limits, LimitReq,
    UpstreamUrl, HEALTH_FALL, HEALTH_INTERVAL, HEALTH_RISE,
};
use uring_server::{
    inherit, systemd, upgrade, AccessLogFormat, AccessLogTarget, FastcgiScript, FileBodies, Limits,
    ProxyConfig, RunningServer, Server, ServerConfig, TierChoice, Timeouts, TlsSettings,
    UpstreamProtocol,
};

/// A thread-per-core io_uring HTTP/1.1 server: /plaintext, /json, static files and a
/// buffering reverse proxy.
#[derive(Parser, Debug)]
#[command(name = "uring-server", version, about)]
struct Cli {
    /// Read settings from a TOML file (docs/config.md); a flag given here overrides the
    /// file's value. Relative paths in the file are taken from the file's directory.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Check the settings (the file's syntax and values, that addresses parse, the
    /// certificate loads, the root exists, routes are distinct), print one line and exit:
    /// 0 when they are good, 1 with `FILE:LINE: what is wrong` when not.
    #[arg(long)]
    check_config: bool,

    /// After binding the sockets (ports below 1024 need root), run as this user: its
    /// group, its supplementary groups, then the user; the process exits if that fails.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,

    /// Write the process id to PATH once the sockets are bound (removed at exit).
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,

    /// Address to listen on (repeatable; IPv4 or IPv6, e.g. [::]:8080). Ignored when
    /// sockets are inherited (systemd socket activation, an upgrade).
    /// (Default 0.0.0.0:8080 when neither --listen nor --tls-listen is given.)
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,

    /// Address to serve HTTPS on (repeatable; mixes with --listen). Needs --tls-cert and
    /// --tls-key. TLS 1.3 and 1.2, ALPN http/1.1, session resumption.
    #[arg(long = "tls-listen", value_name = "ADDR")]
    tls_listen: Vec<SocketAddr>,

    /// PEM certificate chain for --tls-listen, leaf first.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Read --tls-cert and --tls-key again on SIGHUP (new connections get the new ones).
    #[arg(long)]
    tls_reload: bool,

    /// After each TLS handshake, hand the session's keys to the kernel (kTLS: `tls`
    /// module) so records are sealed and opened there and static files go out by splice.
    /// Falls back to rustls in user space, with one log line, where the kernel cannot.
    #[arg(long)]
    ktls: bool,

    /// Worker threads, one ring each (default: the online CPUs).
    #[arg(short = 'w', long, value_name = "N")]
    workers: Option<usize>,

    /// Do not pin worker i to core i.
    #[arg(long)]
    no_pin: bool,

    /// Serve static files from this directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Static files up to this size are kept in memory and sent with their head in one
    /// send (0: never); larger ones stream (see --file-body).
    #[arg(long, value_name = "BYTES", default_value_t = FileBodies::default().memory_max)]
    file_memory_max: u64,

    /// How larger file bodies stream: `splice` (no copy through user space: cached pages
    /// with sendfile on the worker thread, others file → pipe → socket through the ring),
    /// `splice-ring` (always through the ring, for comparison) or `read` (read into
    /// memory, then send).
    #[arg(long, value_name = "splice|splice-ring|read", default_value = "splice", value_parser = ["splice", "splice-ring", "read"])]
    file_body: String,

    /// Serve a precompressed sibling of a static file (a.js.br, a.js.zst, a.js.gz beside
    /// a.js) to a client whose Accept-Encoding takes it, with its own ETag (nginx's
    /// gzip_static, for br and zstd too).
    #[arg(long)]
    precompressed: bool,

    /// Compress answers on the fly with these codings (gzip, zstd or gzip,zstd): text,
    /// JSON, JavaScript, XML, SVG... of at least --compress-min-length bytes, never ranges.
    /// Static files up to 1 MiB are compressed once per file version.
    #[arg(long, value_name = "CODINGS", value_parser = parse_codings)]
    compress: Option<Codings>,

    /// Bodies shorter than this are not compressed (nginx's gzip_min_length).
    #[arg(long, value_name = "BYTES", default_value_t = Compression::default().min_length)]
    compress_min_length: u64,

    /// Limit the request rate per client address (nginx's limit_req with nodelay):
    /// RATE is Nr/s or Nr/m, burst=N requests pass at once above it; the excess is
    /// answered 429 with Retry-After. With PREFIX= it covers the paths under PREFIX only
    /// (replacing the global limit there). Repeatable. Shared by all workers.
    #[arg(long = "limit-req", value_name = "[PREFIX=]RATE[,burst=N]", value_parser = parse_limit_req)]
    limit_req: Vec<(String, LimitReq)>,

    /// Open connections per client address (nginx's limit_conn); more are closed at
    /// accept, unanswered. Shared by all workers.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    limit_conn: Option<u32>,

    /// Kernel interface: io_uring tier basic (5.10), multishot (5.19), full (6.1), or epoll;
    /// auto takes the best io_uring tier, or epoll when io_uring is forbidden or missing.
    #[arg(long, value_name = "TIER", default_value = "auto", value_parser = parse_tier)]
    tier: TierChoice,

    /// HTTP/2 (RFC 9113) beside HTTP/1.1: with prior knowledge on --listen addresses (a
    /// connection that starts with HTTP/2's preface), by ALPN `h2` on --tls-listen ones.
    /// Off while --proxy routes are set (the proxy relays HTTP/1.1 clients only for now).
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    http2: String,

    /// HTTP/2 streams a client may have open at once (more are refused: REFUSED_STREAM).
    #[arg(long, value_name = "N", default_value_t = Http2Limits::default().max_streams)]
    http2_max_streams: u32,

    /// Largest HTTP/2 frame payload we accept (16384..=16777215).
    #[arg(long, value_name = "BYTES", default_value_t = Http2Limits::default().max_frame_size,
          value_parser = clap::value_parser!(u32).range(16_384..=16_777_215))]
    http2_max_frame_size: u32,

    /// Largest HTTP/2 header list (names, values, 32 bytes per field; 431 beyond);
    /// 0 means --max-head-bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Http2Limits::default().max_header_list)]
    http2_max_header_list: u32,

    /// Write one line per request to PATH, or `-` for stdout.
    #[arg(long, value_name = "PATH|-")]
    access_log: Option<String>,

    /// Access log line format: combined (nginx's) or json.
    #[arg(long, value_name = "FORMAT", default_value = "combined")]
    access_log_format: AccessLogFormat,

    /// Serve Prometheus metrics on ADDR at /metrics (e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,

    /// How long SIGUSR2 waits for the new binary to be ready before giving up on it.
    #[arg(long, value_name = "DURATION", default_value_t = Span(Duration::from_secs(30)))]
    upgrade_timeout: Span,

    /// Largest request head in bytes (431 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_head_bytes)]
    max_head_bytes: usize,

    /// Most header fields per request (431 beyond).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_headers)]
    max_headers: usize,

    /// Longest request target in bytes (414 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_target_bytes)]
    max_target_bytes: usize,

    /// Largest request body in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: u64,

    /// Open connections per worker; beyond it new ones wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_conns_per_worker)]
    max_conns: usize,

    /// listen(2) backlog.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().backlog)]
    backlog: i32,

    /// Submission queue entries per worker ring (a power of two).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().sq_entries)]
    sq_entries: u32,

    /// Completion queue entries per worker ring (a power of two, >= --sq-entries). Small
    /// values only make sense to exercise CQ overflow handling.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().cq_entries)]
    cq_entries: u32,

    /// Time to receive a complete request head, e.g. 10s, 500ms (slowloris guard).
    #[arg(long, value_name = "DURATION", default_value_t = Span(Timeouts::default().header_read))]
    header_timeout: Span,

    /// Time to receive a whole request body, from the end of its head (a body that
    /// trickles in slower is answered 408 and the connection closed).
    #[arg(long, value_name = "DURATION", default_value_t = Span(Timeouts::default().body_read))]
    body_timeout: Span,

    /// Idle time before a keep-alive connection is closed.
    #[arg(long, value_name = "DURATION", default_value_t = Span(Timeouts::default().keep_alive))]
    keepalive_timeout: Span,

    /// How long a graceful shutdown waits for in-flight requests.
    #[arg(long, value_name = "DURATION", default_value_t = Span(Timeouts::default().drain))]
    drain_timeout: Span,

    /// Reverse-proxy requests whose path starts with PREFIX to URL (repeatable; the
    /// longest prefix wins; /plaintext and /json stay built in). URL is http://IP:PORT or
    /// unix:/path/to.sock, or uwsgi://IP:PORT or uwsgi+unix:/path for a uWSGI server's
    /// uwsgi socket (the uwsgi protocol, as nginx's uwsgi_pass), or fastcgi://IP:PORT or
    /// fastcgi+unix:/path for a FastCGI server such as php-fpm (as nginx's fastcgi_pass;
    /// give the route --fastcgi-root or --fastcgi-script), e.g. --proxy /=http://127.0.0.1:8000 --proxy /api/=unix:/run/app.sock.
    /// Several upstreams, comma-separated, each with an optional " weight=N" (quote the
    /// argument): --proxy '/api/=http://127.0.0.1:8001 weight=2,http://127.0.0.1:8002'.
    /// Requests and responses are buffered (see docs/proxy.md).
    #[arg(long = "proxy", value_name = "PREFIX=URL[,URL...]", value_parser = parse_proxy)]
    proxy: Vec<RouteArg>,

    /// How a route with several upstreams picks one: round-robin (weighted), least-conn
    /// (fewest requests in flight per weight), hash:HEADER or hash:cookie:NAME (a
    /// consistent hash of the value; a request without it goes round-robin).
    #[arg(long, value_name = "POLICY", default_value = "round-robin", value_parser = parse_balance)]
    balance: Balance,

    /// Failed attempts within --fail-timeout that take an upstream out for --fail-timeout
    /// (nginx's max_fails; 0: never).
    #[arg(long, value_name = "N", default_value_t = Health::default().max_fails)]
    max_fails: u32,

    /// The window of --max-fails and how long a failed upstream is skipped.
    #[arg(long, value_name = "DURATION", default_value_t = Span(Health::default().fail_timeout))]
    fail_timeout: Span,

    /// Check each upstream with GET PATH every --health-interval (2xx and 3xx pass); an
    /// upstream down by its checks is skipped until it passes --health-rise in a row.
    #[arg(long, value_name = "PATH", value_parser = parse_health_path)]
    health: Option<String>,

    #[arg(long, value_name = "DURATION", default_value_t = Span(HEALTH_INTERVAL))]
    health_interval: Span,

    /// Passed checks in a row that bring an upstream back.
    #[arg(long, value_name = "N", default_value_t = HEALTH_RISE)]
    health_rise: u32,

    /// Failed checks in a row that take an upstream down.
    #[arg(long, value_name = "N", default_value_t = HEALTH_FALL)]
    health_fall: u32,

    /// The FastCGI route PREFIX runs the script at DIR + the request's decoded path
    /// (SCRIPT_FILENAME, as nginx's `root DIR` with `fastcgi_param SCRIPT_FILENAME
    /// $document_root$fastcgi_script_name`; DIR is also DOCUMENT_ROOT). Repeatable, one
    /// per fastcgi route, e.g. --fastcgi-root /=/srv/www.
    #[arg(long, value_name = "PREFIX=DIR", value_parser = parse_prefixed_path)]
    fastcgi_root: Vec<(String, PathBuf)>,

    /// The FastCGI route PREFIX runs FILE for every path (SCRIPT_FILENAME=FILE, as nginx's
    /// `fastcgi_param SCRIPT_FILENAME FILE` for a front controller such as index.php).
    /// Repeatable, e.g. --fastcgi-script /=/srv/app/public/index.php.
    #[arg(long, value_name = "PREFIX=FILE", value_parser = parse_prefixed_path)]
    fastcgi_script: Vec<(String, PathBuf)>,

    /// Connections per worker and upstream: a cap, so a small app server is not flooded.
    #[arg(long, value_name = "N", default_value_t = ProxyConfig::default().conns_per_upstream)]
    upstream_conns: usize,

    /// Time to connect to an upstream (504 beyond).
    #[arg(long, value_name = "DURATION", default_value_t = Span(ProxyConfig::default().connect_timeout))]
    upstream_connect_timeout: Span,

    /// Time to the upstream's response head, and between its reads (504 beyond).
    #[arg(long, value_name = "DURATION", default_value_t = Span(ProxyConfig::default().timeout))]
    upstream_timeout: Span,

    /// A proxied WebSocket (any connection after a 101) with no byte either way for this
    /// long is closed.
    #[arg(long, value_name = "DURATION", default_value_t = Span(ProxyConfig::default().tunnel_idle_timeout))]
    tunnel_idle_timeout: Span,

    /// Keep the client's X-Forwarded-For/-Proto/-Host, X-Real-IP and Forwarded (append to
    /// the X-Forwarded-For chain): only behind a front you trust.
    #[arg(long)]
    trust_forwarded: bool,
}

/// A route as the command line or the config file gives it; a setting it leaves unset
/// comes from the flags (`--balance`, `--max-fails`, `--health`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct RouteArg {
    prefix: String,
    upstreams: Vec<(UpstreamUrl, u32)>,
    balance: Option<Balance>,
    max_fails: Option<u32>,
    fail_timeout: Option<Duration>,
    health: Option<String>,
    health_interval: Option<Duration>,
    health_rise: Option<u32>,
    health_fall: Option<u32>,
}

impl RouteArg {
    /// Its health settings, the flags filling what it leaves unset.
    fn health(&self, cli: &Cli) -> Health {
        let path = self.health.clone().or_else(|| cli.health.clone());
        Health {
            max_fails: self.max_fails.unwrap_or(cli.max_fails),
            fail_timeout: self.fail_timeout.unwrap_or(cli.fail_timeout.0),
            check: path.map(|path| HealthCheck {
                path,
                interval: self.health_interval.unwrap_or(cli.health_interval.0),
                rise: self.health_rise.unwrap_or(cli.health_rise),
                fall: self.health_fall.unwrap_or(cli.health_fall),
            }),
        }
    }
}

fn parse_proxy(s: &str) -> Result<RouteArg, String> {
    let (prefix, urls) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected PREFIX=URL, e.g. /=http://127.0.0.1:8000"))?;
    if !prefix.starts_with('/') {
        return Err(format!("'{s}': the prefix must start with /"));
    }
    let upstreams = urls
        .split(',')
        .map(parse_upstream_spec)
        .collect::<Result<Vec<_>, _>>()?;
    uring_server::config::check_route_upstreams(prefix, &upstreams)?;
    Ok(RouteArg {
        prefix: prefix.to_string(),
        upstreams,
        ..RouteArg::default()
    })
}

fn parse_balance(s: &str) -> Result<Balance, String> {
    s.parse()
}

/// `--health PATH`: a path to GET, sent as written.
fn parse_health_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!(
            "health '{path}': a path starting with /, without spaces"
        ));
    }
    Ok(path.to_string())
}

fn parse_prefixed_path(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((prefix, path)) if prefix.starts_with('/') && path.starts_with('/') => {
            Ok((prefix.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "'{s}': expected PREFIX=/absolute/path, e.g. /=/srv/www"
        )),
    }
}

/// The script of each FastCGI route from `--fastcgi-root` / `--fastcgi-script`: every
/// FastCGI route needs exactly one, and each names a FastCGI route.
fn fastcgi_scripts(cli: &Cli) -> Result<Vec<Option<FastcgiScript>>, String> {
    let given = cli
        .fastcgi_root
        .iter()
        .map(|(p, d)| (p, "--fastcgi-root", FastcgiScript::Root(d.as_path().into())))
        .chain(cli.fastcgi_script.iter().map(|(p, f)| {
            (
                p,
                "--fastcgi-script",
                FastcgiScript::Fixed(f.as_path().into()),
            )
        }));
    let mut scripts: Vec<Option<FastcgiScript>> = vec![None; cli.proxy.len()];
    for (prefix, flag, script) in given {
        let route = cli
            .proxy
            .iter()
            .rposition(|r| r.prefix == *prefix && r.upstreams[0].0 .1 == UpstreamProtocol::Fastcgi);
        match route {
            Some(i) if scripts[i].is_none() => scripts[i] = Some(script),
            Some(_) => {
                return Err(format!(
                    "{flag} {prefix}=...: the route '{prefix}' has its script already"
                ))
            }
            None => {
                return Err(format!(
                    "{flag} {prefix}=...: no --proxy {prefix}=fastcgi://... route"
                ))
            }
        }
    }
    let unscripted = cli
        .proxy
        .iter()
        .zip(&scripts)
        .find(|(r, s)| r.upstreams[0].0 .1 == UpstreamProtocol::Fastcgi && s.is_none());
    if let Some((RouteArg { prefix, .. }, _)) = unscripted {
        return Err(format!(
            "the FastCGI route '{prefix}' needs --fastcgi-root {prefix}=DIR or \
             --fastcgi-script {prefix}=FILE"
        ));
    }
    Ok(scripts)
}

fn parse_codings(s: &str) -> Result<Codings, String> {
    Codings::parse_list(s)
}

/// `100r/s,burst=20` or `/api/=10r/s`.
fn parse_limit_req(s: &str) -> Result<(String, LimitReq), String> {
    match s.split_once('=') {
        Some((prefix, rate)) if prefix.starts_with('/') => Ok((prefix.to_string(), rate.parse()?)),
        _ => Ok((String::new(), s.parse()?)),
    }
}

fn parse_tier(s: &str) -> Result<TierChoice, String> {
    s.parse()
}

/// A duration on the command line: parsed by [`parse_duration`], shown in `--help` the
/// way it is written (so defaults come from the configuration's `Default`, not retyped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span(Duration);

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        parse_duration(s).map(Span)
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        match ms % 1000 {
            0 => write!(f, "{}s", ms / 1000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

/// `10s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("invalid duration unit in '{s}': use ms, s or m")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration '{s}'"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain sigset manipulation on a local; the mask is inherited by the workers,
    // so the signals are only ever taken by sigwait below.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: set is initialised; sig is a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// A signal from `set`, or None after `timeout`.
fn wait_signal_for(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are initialised; a null siginfo pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// The command line over the `--config` file, checked as a whole: the flags' values
/// with the file's where a flag was not given. An error is one line, ready to print:
/// `FILE:LINE: what is wrong` for the file's.
fn settings() -> Result<Cli, String> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(path) = cli.config.clone() {
        config_file::apply(config_file::load(&path)?, &mut cli, &matches);
    }
    // Checked here rather than by clap, as either half may come from the file.
    let tls_files = cli.tls_cert.is_some() || cli.tls_key.is_some();
    match (cli.tls_listen.is_empty(), &cli.tls_cert, &cli.tls_key) {
        (false, Some(_), Some(_)) | (true, None, None) => {}
        (false, _, _) => usage_error("--tls-listen needs --tls-cert and --tls-key"),
        (true, _, _) => usage_error("--tls-cert and --tls-key need --tls-listen"),
    }
    if (cli.tls_reload || cli.ktls) && !tls_files {
        usage_error("--tls-reload and --ktls need --tls-listen");
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        check_certificate(cert, key).map_err(|e| format!("uring-server: {e}"))?;
    }
    if let Some(root) = &cli.root {
        check_root(root).map_err(|e| format!("uring-server: --root: {e}"))?;
    }
    if let Err(e) = fastcgi_scripts(&cli) {
        usage_error(&e);
    }
    Ok(cli)
}

/// A mistake in how flags combine: clap's message and exit status 2, as when clap
/// itself checked it (before either half could come from the file).
fn usage_error(msg: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, msg)
        .exit()
}

/// The certificate and key load as the server would load them.
fn check_certificate(cert: &std::path::Path, key: &std::path::Path) -> Result<(), String> {
    uring_server::tls::TlsSource::load(cert, key, None, false)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn check_root(dir: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("cannot open {}: {e}", dir.display())),
    }
}

fn main() -> ExitCode {
    let cli = match settings() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let account = match cli
        .user
        .as_deref()
        .map(privileges::Account::lookup)
        .transpose()
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("uring-server: --user: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.check_config {
        let what = cli
            .config
            .as_ref()
            .map_or("command line".to_string(), |p| p.display().to_string());
        println!("uring-server: {what}: configuration ok");
        return ExitCode::SUCCESS;
    }
    uring_common::ring::set_inline_sendfile(cli.file_body != "splice-ring");
    // Before any thread starts: these read and remove environment variables.
    let (inherited, inherited_from) = match inherit::from_env() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("uring-server: {e}; start without LISTEN_FDS or pass listening TCP sockets");
            return ExitCode::from(1);
        }
    };
    let ready_pipe = upgrade::take_ready_fd();
    let program = upgrade::Program::current();
    let workers = cli.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let access_log = cli.access_log.as_deref().map(|p| {
        if p == "-" {
            AccessLogTarget::Stdout
        } else {
            AccessLogTarget::File(PathBuf::from(p))
        }
    });
    let sigset = block_signals();
    let mut builder = Server::builder()
        .workers(workers)
        .pin(!cli.no_pin)
        .tier(cli.tier)
        .limits(Limits {
            max_head_bytes: cli.max_head_bytes,
            max_headers: cli.max_headers,
            max_target_bytes: cli.max_target_bytes,
            max_body_bytes: cli.max_body_bytes,
        })
        .timeouts(Timeouts {
            header_read: cli.header_timeout.0,
            body_read: cli.body_timeout.0,
            keep_alive: cli.keepalive_timeout.0,
            drain: cli.drain_timeout.0,
        })
        .max_connections_per_worker(cli.max_conns)
        .backlog(cli.backlog)
        .ring_entries(cli.sq_entries, cli.cq_entries)
        .access_log(access_log)
        .access_log_format(cli.access_log_format)
        .metrics(cli.metrics)
        .inherit_listeners(inherited)
        .file_bodies(FileBodies {
            memory_max: cli.file_memory_max,
            splice: cli.file_body != "read",
        })
        .tls(match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                listen: cli.tls_listen.clone(),
                cert: cert.clone(),
                key: key.clone(),
                ktls: cli.ktls,
            }),
            _ => None,
        })
        .upstream_conns(cli.upstream_conns)
        .upstream_timeouts(cli.upstream_connect_timeout.0, cli.upstream_timeout.0)
        .tunnel_idle_timeout(cli.tunnel_idle_timeout.0)
        .trust_forwarded(cli.trust_forwarded)
        .precompressed(cli.precompressed)
        .compression(Compression {
            codings: cli.compress.unwrap_or_default(),
            min_length: cli.compress_min_length,
            ..Compression::default()
        })
        .client_limits(ClientLimitConfig {
            requests: cli.limit_req.clone(),
            connections: cli.limit_conn,
        })
        .http2(cli.http2 == "on")
        .http2_limits(Http2Limits {
            max_streams: cli.http2_max_streams,
            max_frame_size: cli.http2_max_frame_size,
            max_header_list: cli.http2_max_header_list,
        });
    let scripts = match fastcgi_scripts(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("uring-server: {e}");
            return ExitCode::from(2);
        }
    };
    for (r, script) in cli.proxy.iter().zip(scripts) {
        let balance = r.balance.clone().unwrap_or_else(|| cli.balance.clone());
        let health = r.health(&cli);
        builder = match builder.proxy_balanced(&r.prefix, &r.upstreams, balance, health, script) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("uring-server: {e}");
                return ExitCode::from(1);
            }
        };
    }
    let default_listen = [SocketAddr::from(([0, 0, 0, 0], 8080))];
    let listen = match cli.listen.is_empty() && cli.tls_listen.is_empty() {
        true => &default_listen[..],
        false => &cli.listen[..],
    };
    for addr in listen {
        builder = builder.listen(*addr);
    }
    if let Some(root) = &cli.root {
        builder = builder.root(root);
    }
    let server = match builder.start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("uring-server: {e}");
            return ExitCode::from(1);
        }
    };
    let pid_file = match cli
        .pid_file
        .as_deref()
        .map(privileges::PidFile::write)
        .transpose()
    {
        Ok(p) => p,
        // Started by an upgrade from a server that dropped root: the directory may be
        // root's. Serving matters more than the file.
        Err(e) if ready_pipe.is_some() => {
            eprintln!("uring-server: {e}; serving without it");
            None
        }
        Err(e) => {
            eprintln!("uring-server: {e}");
            server.begin_shutdown();
            return ExitCode::from(1);
        }
    };
    if let Some(account) = &account {
        if let Err(e) = account.become_it() {
            eprintln!("uring-server: --user: {e}; not serving as root, exiting");
            if let Some(p) = &pid_file {
                p.remove();
            }
            // Workers may still hold root: end them with the process, not by a drain.
            std::process::exit(1);
        }
    }
    let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    eprintln!(
        "uring-server: listening on {}{} with {workers} worker(s), tier {}{}{}{}",
        addrs.join(", "),
        if inherited_from.is_empty() {
            String::new()
        } else {
            format!(" (inherited from {inherited_from})")
        },
        server.tier(),
        server
            .tier_fallback()
            .map(|why| format!(" ({why})"))
            .unwrap_or_default(),
        if cli.no_pin { ", unpinned" } else { "" },
        server.metrics_addr().map_or(String::new(), |a| format!(
            ", metrics on http://{a}/metrics"
        ))
    );
    // Every worker listens: say so to whoever waits (the predecessor hands the service
    // over with MAINPID=; systemd otherwise).
    match ready_pipe {
        Some(fd) => {
            if let Err(e) = upgrade::report_ready(fd) {
                eprintln!("uring-server: cannot tell the previous server we are ready: {e}");
            }
        }
        None => systemd::tell("READY=1"),
    }
    let first = match wait_for_stop(&server, &sigset, &cli, program) {
        Ok(sig) => sig,
        Err(code) => {
            pid_file.iter().for_each(privileges::PidFile::remove);
            return code;
        }
    };
    eprintln!(
        "uring-server: {first}, draining (up to {:?}; signal again to exit at once)",
        cli.drain_timeout.0
    );
    server.begin_shutdown();
    let pid_file = std::sync::Arc::new(pid_file);
    let drained_pid_file = pid_file.clone();
    std::thread::spawn(move || {
        server.join();
        drained_pid_file
            .iter()
            .for_each(privileges::PidFile::remove);
        eprintln!("uring-server: drained, exiting");
        std::process::exit(0);
    });
    // Only SIGTERM/SIGINT cut the drain short: a logrotate SIGUSR1 or a reload's SIGHUP
    // must not end requests in flight.
    while !matches!(wait_signal(&sigset), libc::SIGTERM | libc::SIGINT) {}
    pid_file.iter().for_each(privileges::PidFile::remove);
    eprintln!("uring-server: second signal, exiting now");
    ExitCode::from(130)
}

/// Serve until a stop: a signal (described), or an upgrade handed over. A worker that
/// stopped on its own ends the process (exit 1).
fn wait_for_stop(
    server: &RunningServer,
    sigset: &libc::sigset_t,
    cli: &Cli,
    program: std::io::Result<upgrade::Program>,
) -> Result<String, ExitCode> {
    let watchdog = systemd::watchdog_interval();
    let wait = watchdog.map_or(Duration::from_secs(1), |w| w.min(Duration::from_secs(1)));
    loop {
        match wait_signal_for(sigset, wait) {
            None => {
                if server.any_worker_exited() {
                    eprintln!("uring-server: a worker stopped unexpectedly (see above); exiting");
                    server.begin_shutdown();
                    return Err(ExitCode::from(1));
                }
                if watchdog.is_some() {
                    systemd::tell("WATCHDOG=1");
                }
            }
            Some(libc::SIGUSR1) => server.reopen_access_log(),
            Some(libc::SIGHUP) => {
                systemd::tell(&systemd::reloading());
                server.reopen_access_log();
                if cli.tls_reload {
                    match server.reload_tls() {
                        Ok(_) => eprintln!("uring-server: TLS certificate and key reloaded"),
                        Err(e) => eprintln!(
                            "uring-server: TLS reload failed, keeping the old certificate: {e}"
                        ),
                    }
                }
                systemd::tell("READY=1");
            }
            Some(libc::SIGUSR2) => {
                systemd::tell(&systemd::reloading());
                let started = program.as_ref().map_err(|e| e.to_string()).and_then(|p| {
                    upgrade::spawn(p, &server.listener_fds()).map_err(|e| e.to_string())
                });
                let mut ping = || {
                    if watchdog.is_some() {
                        systemd::tell("WATCHDOG=1");
                    }
                };
                match started.and_then(|s| s.wait_ready(cli.upgrade_timeout.0, &mut ping)) {
                    Ok(pid) => {
                        systemd::tell(&format!("MAINPID={pid}\nREADY=1"));
                        return Ok(format!("upgraded: process {pid} serves now"));
                    }
                    Err(e) => {
                        eprintln!("uring-server: upgrade failed: {e}; still serving");
                        systemd::tell("READY=1");
                    }
                }
            }
            Some(sig) => {
                systemd::tell("STOPPING=1");
                return Ok(format!("signal {sig}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_server::{UpstreamAddr, UpstreamProtocol};

    #[test]
    fn upstream_schemes_choose_the_protocol() {
        let tcp = |a: &str| UpstreamAddr::Tcp(a.parse().unwrap());
        let unix = |p: &str| UpstreamAddr::Unix(p.into());
        let cases = [
            (
                "/=http://127.0.0.1:8000",
                tcp("127.0.0.1:8000"),
                UpstreamProtocol::Http,
            ),
            (
                "/=unix:/run/a.sock",
                unix("/run/a.sock"),
                UpstreamProtocol::Http,
            ),
            (
                "/=uwsgi://[::1]:3031",
                tcp("[::1]:3031"),
                UpstreamProtocol::Uwsgi,
            ),
            (
                "/=uwsgi://localhost:3031/",
                tcp("127.0.0.1:3031"),
                UpstreamProtocol::Uwsgi,
            ),
            (
                "/=uwsgi+unix:/run/u.sock",
                unix("/run/u.sock"),
                UpstreamProtocol::Uwsgi,
            ),
            (
                "/=fastcgi://127.0.0.1:9000",
                tcp("127.0.0.1:9000"),
                UpstreamProtocol::Fastcgi,
            ),
            (
                "/=fastcgi+unix:/run/php/php-fpm.sock",
                unix("/run/php/php-fpm.sock"),
                UpstreamProtocol::Fastcgi,
            ),
        ];
        for (arg, addr, protocol) in cases {
            let route = parse_proxy(arg).unwrap();
            assert_eq!(route.prefix, "/", "{arg}");
            assert_eq!(route.upstreams, [((addr, protocol), 1)], "{arg}");
        }
        for bad in [
            "/=uwsgi:/x",
            "/=uwsgi+unix:",
            "/=uwsgi://h/p",
            "/=uwsgihttp://1.2.3.4:1",
            "/=fastcgi:/x",
            "/=fastcgi+unix:",
            "/=fastcgi://h:1/index.php",
            "/=http://127.0.0.1:1,uwsgi://127.0.0.1:2",
            "/=http://127.0.0.1:1 weight=0",
            "/=http://127.0.0.1:1,",
        ] {
            assert!(parse_proxy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_route_lists_its_upstreams_with_weights() {
        let r = parse_proxy("/api/=http://127.0.0.1:8001 weight=2,unix:/run/a.sock").unwrap();
        let tcp = UpstreamAddr::Tcp("127.0.0.1:8001".parse().unwrap());
        let unix = UpstreamAddr::Unix("/run/a.sock".into());
        let http = UpstreamProtocol::Http;
        assert_eq!(r.upstreams, [((tcp, http), 2), ((unix, http), 1)]);
        let cli = Cli::parse_from(["uring-server", "--balance", "hash:X-User"]);
        assert_eq!(cli.balance, Balance::Header("x-user".into()));
        assert!(Cli::try_parse_from(["uring-server", "--balance", "random"]).is_err());
        assert!(Cli::try_parse_from(["uring-server", "--health", "healthz"]).is_err());
    }

    #[test]
    fn every_fastcgi_route_has_one_script() {
        let scripts = |args: &[&str]| {
            let mut all = vec!["uring-server"];
            all.extend_from_slice(args);
            fastcgi_scripts(&Cli::parse_from(all))
        };
        let two = [
            "--proxy=/=fastcgi://127.0.0.1:9000",
            "--proxy=/api/=http://127.0.0.1:8000",
            "--proxy=/app/=fastcgi+unix:/run/php.sock",
            "--fastcgi-root=/=/srv/www",
            "--fastcgi-script=/app/=/srv/app/index.php",
        ];
        assert_eq!(
            scripts(&two),
            Ok(vec![
                Some(FastcgiScript::Root(std::path::Path::new("/srv/www").into())),
                None,
                Some(FastcgiScript::Fixed(
                    std::path::Path::new("/srv/app/index.php").into()
                )),
            ])
        );
        let err = |args: &[&str]| scripts(args).unwrap_err();
        assert!(
            err(&two[..3]).contains("needs --fastcgi-root /=DIR"),
            "{}",
            err(&two[..3])
        );
        assert!(err(&[
            "--proxy=/api/=http://127.0.0.1:8000",
            "--fastcgi-root=/api/=/srv"
        ])
        .contains("no --proxy /api/=fastcgi"));
        assert!(
            err(&[two[0], two[3], "--fastcgi-script=/=/x.php"]).contains("has its script already")
        );
        assert!(Cli::try_parse_from(["uring-server", "--fastcgi-root=/=relative"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn command_line_defaults_are_the_configurations() {
        let cli = Cli::parse_from(["uring-server"]);
        let (d, p) = (ServerConfig::default(), ProxyConfig::default());
        let limits = Limits {
            max_head_bytes: cli.max_head_bytes,
            max_headers: cli.max_headers,
            max_target_bytes: cli.max_target_bytes,
            max_body_bytes: cli.max_body_bytes,
        };
        assert_eq!(limits, d.limits);
        let timeouts = Timeouts {
            header_read: cli.header_timeout.0,
            body_read: cli.body_timeout.0,
            keep_alive: cli.keepalive_timeout.0,
            drain: cli.drain_timeout.0,
        };
        assert_eq!(timeouts, d.timeouts);
        assert_eq!(
            (cli.max_conns, cli.backlog, cli.sq_entries, cli.cq_entries),
            (
                d.max_conns_per_worker,
                d.backlog,
                d.sq_entries,
                d.cq_entries
            )
        );
        assert_eq!(
            (
                cli.upstream_conns,
                cli.upstream_connect_timeout.0,
                cli.upstream_timeout.0
            ),
            (p.conns_per_upstream, p.connect_timeout, p.timeout)
        );
    }

    #[test]
    fn durations_show_as_they_are_written() {
        for s in ["10s", "500ms", "60s", "0s", "1500ms"] {
            assert_eq!(s.parse::<Span>().unwrap().to_string(), s);
        }
        assert_eq!("2m".parse::<Span>().unwrap().0, Duration::from_secs(120));
        assert!("10h".parse::<Span>().is_err());
    }
}
