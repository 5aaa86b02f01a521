//! `--config FILE`: the TOML form of the command line (docs/config.md). A module of the
//! binary, not of the library: it reads the file, checks every value where it stands (so
//! an error says `FILE:LINE: what is wrong`), and writes the values into the parsed
//! [`Cli`] for each flag that was not given on the command line. Defaults stay where the
//! command line has them (the configuration types' `Default`), so they are not retyped
//! here. Parts of the file's shape that need a feature the server lacks (several
//! certificates by SNI, several sites by Host) are parsed and refused with their line,
//! never ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;
use toml::Spanned;
use uring_server::compress::Codings;
use uring_server::config::{Balance, LimitReq};
use uring_server::{AccessLogFormat, UpstreamProtocol};

use crate::{parse_duration, parse_health_path, parse_tier, privileges, Cli, RouteArg, Span};

/// A key of the file: absent, or its value with where it was written.
type Key<T> = Option<Spanned<T>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    timeouts: TimeoutsSection,
    #[serde(default)]
    http2: Http2Section,
    #[serde(default)]
    access_log: AccessLogSection,
    #[serde(default)]
    proxy: ProxySection,
    #[serde(default)]
    compression: CompressionSection,
    #[serde(default)]
    tls: Vec<Spanned<TlsSection>>,
    #[serde(default)]
    site: Vec<Spanned<SiteSection>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Key<Vec<Spanned<String>>>,
    tls_listen: Key<Vec<Spanned<String>>>,
    workers: Key<usize>,
    pin: Key<bool>,
    tier: Key<String>,
    metrics: Key<String>,
    user: Key<String>,
    pid_file: Key<String>,
    max_conns: Key<usize>,
    backlog: Key<i32>,
    sq_entries: Key<u32>,
    cq_entries: Key<u32>,
    file_memory_max: Key<u64>,
    file_body: Key<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_head_bytes: Key<usize>,
    max_headers: Key<usize>,
    max_target_bytes: Key<usize>,
    max_body_bytes: Key<u64>,
    limit_req: Key<String>,
    limit_conn: Key<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CompressionSection {
    precompressed: Key<bool>,
    codings: Key<Vec<Spanned<String>>>,
    min_length: Key<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TimeoutsSection {
    header: Key<String>,
    body: Key<String>,
    keepalive: Key<String>,
    drain: Key<String>,
    upgrade: Key<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Http2Section {
    enabled: Key<bool>,
    max_streams: Key<u32>,
    max_frame_size: Key<u32>,
    max_header_list: Key<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AccessLogSection {
    path: Key<String>,
    format: Key<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProxySection {
    upstream_conns: Key<usize>,
    connect_timeout: Key<String>,
    timeout: Key<String>,
    tunnel_idle_timeout: Key<String>,
    trust_forwarded: Key<bool>,
    balance: Key<String>,
    max_fails: Key<u32>,
    fail_timeout: Key<String>,
    health: Key<String>,
    health_interval: Key<String>,
    health_rise: Key<u32>,
    health_fall: Key<u32>,
}

/// How routes balance and check their upstreams: in `[proxy]` for every route (the
/// flags' keys), in a `[[site.route]]` for that route (the same keys in both sections).
struct Balancing<'a> {
    balance: &'a Key<String>,
    max_fails: &'a Key<u32>,
    fail_timeout: &'a Key<String>,
    health: &'a Key<String>,
    health_interval: &'a Key<String>,
    health_rise: &'a Key<u32>,
    health_fall: &'a Key<u32>,
}

macro_rules! balancing_keys {
    ($section:expr) => {
        Balancing {
            balance: &$section.balance,
            max_fails: &$section.max_fails,
            fail_timeout: &$section.fail_timeout,
            health: &$section.health,
            health_interval: &$section.health_interval,
            health_rise: &$section.health_rise,
            health_fall: &$section.health_fall,
        }
    };
}

/// [`Balancing`] checked.
#[derive(Default)]
struct BalancingSettings {
    balance: Option<Balance>,
    max_fails: Option<u32>,
    fail_timeout: Option<Span>,
    health: Option<String>,
    health_interval: Option<Span>,
    health_rise: Option<u32>,
    health_fall: Option<u32>,
}

fn balancing(b: Balancing<'_>) -> Result<BalancingSettings, Mistake> {
    let at_least_one = |k: &Key<u32>| match k {
        Some(v) if *v.get_ref() == 0 => Err(at(v, "must be at least 1")),
        k => Ok(plain(k)),
    };
    let interval = duration(b.health_interval)?;
    if let (Some(i), Some(k)) = (interval, b.health_interval) {
        if i.0.is_zero() {
            return Err(at(k, "health_interval must be above 0"));
        }
    }
    Ok(BalancingSettings {
        balance: (b.balance.as_ref())
            .map(|k| k.get_ref().parse().map_err(|e: String| at(k, e)))
            .transpose()?,
        max_fails: plain(b.max_fails),
        fail_timeout: duration(b.fail_timeout)?,
        health: (b.health.as_ref())
            .map(|k| parse_health_path(k.get_ref()).map_err(|e| at(k, e)))
            .transpose()?,
        health_interval: interval,
        health_rise: at_least_one(b.health_rise)?,
        health_fall: at_least_one(b.health_fall)?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert: Spanned<String>,
    key: Spanned<String>,
    reload: Key<bool>,
    ktls: Key<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    hosts: Key<Vec<Spanned<String>>>,
    root: Key<String>,
    #[serde(default)]
    route: Vec<Spanned<RouteSection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    prefix: Spanned<String>,
    upstreams: Spanned<Vec<Spanned<String>>>,
    balance: Key<String>,
    fastcgi_root: Key<String>,
    fastcgi_script: Key<String>,
    max_fails: Key<u32>,
    fail_timeout: Key<String>,
    health: Key<String>,
    health_interval: Key<String>,
    health_rise: Key<u32>,
    health_fall: Key<u32>,
    limit_req: Key<String>,
}

/// The file's values, checked and in the command line's types. `None`: not in the file.
#[derive(Default)]
pub struct FileSettings {
    listen: Option<Vec<SocketAddr>>,
    tls_listen: Option<Vec<SocketAddr>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_reload: Option<bool>,
    ktls: Option<bool>,
    workers: Option<usize>,
    pin: Option<bool>,
    tier: Option<uring_server::TierChoice>,
    metrics: Option<SocketAddr>,
    user: Option<String>,
    pid_file: Option<PathBuf>,
    max_conns: Option<usize>,
    backlog: Option<i32>,
    sq_entries: Option<u32>,
    cq_entries: Option<u32>,
    file_memory_max: Option<u64>,
    file_body: Option<String>,
    max_head_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_target_bytes: Option<usize>,
    max_body_bytes: Option<u64>,
    header_timeout: Option<Span>,
    body_timeout: Option<Span>,
    keepalive_timeout: Option<Span>,
    drain_timeout: Option<Span>,
    upgrade_timeout: Option<Span>,
    http2: Option<bool>,
    http2_max_streams: Option<u32>,
    http2_max_frame_size: Option<u32>,
    http2_max_header_list: Option<u32>,
    access_log: Option<String>,
    access_log_format: Option<AccessLogFormat>,
    upstream_conns: Option<usize>,
    upstream_connect_timeout: Option<Span>,
    upstream_timeout: Option<Span>,
    tunnel_idle_timeout: Option<Span>,
    trust_forwarded: Option<bool>,
    root: Option<PathBuf>,
    fastcgi_root: Option<Vec<(String, PathBuf)>>,
    fastcgi_script: Option<Vec<(String, PathBuf)>>,
    proxy: Option<Vec<RouteArg>>,
    balance: Option<Balance>,
    max_fails: Option<u32>,
    fail_timeout: Option<Span>,
    health: Option<String>,
    health_interval: Option<Span>,
    health_rise: Option<u32>,
    health_fall: Option<u32>,
    precompressed: Option<bool>,
    compress: Option<Codings>,
    compress_min_length: Option<u64>,
    limit_req: Option<Vec<(String, LimitReq)>>,
    limit_conn: Option<u32>,
}

/// Reads `path` into checked settings, or `FILE:LINE: what is wrong`.
pub fn load(path: &Path) -> Result<FileSettings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base)
        .map_err(|(offset, msg)| format!("{}:{}: {msg}", path.display(), line_of(&text, offset)))
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A mistake and the byte offset it was made at.
type Mistake = (usize, String);

fn at<T>(key: &Spanned<T>, msg: impl Into<String>) -> Mistake {
    (key.span().start, msg.into())
}

/// Parses and checks `text`; relative paths are taken from `base` (the file's directory).
pub fn parse(text: &str, base: &Path) -> Result<FileSettings, Mistake> {
    let doc: Document = toml::from_str(text).map_err(|e| {
        (
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )
    })?;
    let mut out = FileSettings::default();
    let s = &doc.server;
    out.listen = s.listen.as_ref().map(addresses).transpose()?;
    out.tls_listen = s.tls_listen.as_ref().map(addresses).transpose()?;
    out.workers = positive(&s.workers)?;
    out.pin = plain(&s.pin);
    out.tier = s
        .tier
        .as_ref()
        .map(|t| parse_tier(t.get_ref()).map_err(|e| at(t, e)))
        .transpose()?;
    out.metrics = s.metrics.as_ref().map(address).transpose()?;
    if let Some(user) = &s.user {
        privileges::Account::lookup(user.get_ref()).map_err(|e| at(user, e))?;
        out.user = Some(user.get_ref().clone());
    }
    if let Some(pid) = &s.pid_file {
        let p = relative_to(base, pid.get_ref());
        parent_exists(&p).map_err(|e| at(pid, e))?;
        out.pid_file = Some(p);
    }
    out.max_conns = positive(&s.max_conns)?;
    out.backlog = plain(&s.backlog);
    out.sq_entries = power_of_two(&s.sq_entries)?;
    out.cq_entries = power_of_two(&s.cq_entries)?;
    out.file_memory_max = plain(&s.file_memory_max);
    if let Some(fb) = &s.file_body {
        if !["splice", "splice-ring", "read"].contains(&fb.get_ref().as_str()) {
            return Err(at(fb, "file_body must be splice, splice-ring or read"));
        }
        out.file_body = Some(fb.get_ref().clone());
    }
    if let (Some(sq), Some(cq)) = (&s.sq_entries, &s.cq_entries) {
        if cq.get_ref() < sq.get_ref() {
            return Err(at(cq, "cq_entries must be >= sq_entries"));
        }
    }

    let l = &doc.limits;
    out.max_head_bytes = positive(&l.max_head_bytes)?;
    out.max_headers = positive(&l.max_headers)?;
    out.max_target_bytes = positive(&l.max_target_bytes)?;
    out.max_body_bytes = plain(&l.max_body_bytes);
    let mut limit_req = Vec::new();
    if let Some(rate) = &l.limit_req {
        limit_req.push((
            String::new(),
            rate.get_ref().parse().map_err(|e| at(rate, e))?,
        ));
    }
    if let Some(n) = &l.limit_conn {
        if *n.get_ref() == 0 {
            return Err(at(n, "limit_conn must be at least 1"));
        }
        out.limit_conn = Some(*n.get_ref());
    }

    let c = &doc.compression;
    out.precompressed = plain(&c.precompressed);
    out.compress_min_length = plain(&c.min_length);
    if let Some(list) = &c.codings {
        let joined: Vec<&str> = list
            .get_ref()
            .iter()
            .map(|s| s.get_ref().as_str())
            .collect();
        out.compress = Some(Codings::parse_list(&joined.join(",")).map_err(|e| at(list, e))?);
    }

    let t = &doc.timeouts;
    out.header_timeout = duration(&t.header)?;
    out.body_timeout = duration(&t.body)?;
    out.keepalive_timeout = duration(&t.keepalive)?;
    out.drain_timeout = duration(&t.drain)?;
    out.upgrade_timeout = duration(&t.upgrade)?;

    let h = &doc.http2;
    out.http2 = plain(&h.enabled);
    out.http2_max_streams = plain(&h.max_streams);
    out.http2_max_header_list = plain(&h.max_header_list);
    if let Some(size) = &h.max_frame_size {
        if !(16_384..=16_777_215).contains(size.get_ref()) {
            return Err(at(size, "max_frame_size must be in 16384..=16777215"));
        }
        out.http2_max_frame_size = Some(*size.get_ref());
    }

    let a = &doc.access_log;
    if let Some(p) = &a.path {
        out.access_log = Some(match p.get_ref().as_str() {
            "-" => "-".to_string(),
            file => {
                let file = relative_to(base, file);
                parent_exists(&file).map_err(|e| at(p, e))?;
                file.to_string_lossy().into_owned()
            }
        });
    }
    out.access_log_format = a
        .format
        .as_ref()
        .map(|f| f.get_ref().parse().map_err(|e: String| at(f, e)))
        .transpose()?;

    let p = &doc.proxy;
    out.upstream_conns = positive(&p.upstream_conns)?;
    out.upstream_connect_timeout = duration(&p.connect_timeout)?;
    out.upstream_timeout = duration(&p.timeout)?;
    out.tunnel_idle_timeout = duration(&p.tunnel_idle_timeout)?;
    out.trust_forwarded = plain(&p.trust_forwarded);
    let b = balancing(balancing_keys!(p))?;
    out.balance = b.balance;
    out.max_fails = b.max_fails;
    out.fail_timeout = b.fail_timeout;
    out.health = b.health;
    out.health_interval = b.health_interval;
    out.health_rise = b.health_rise;
    out.health_fall = b.health_fall;

    if let Some(second) = doc.tls.get(1) {
        return Err(at(
            second,
            "several [[tls]] need certificate selection by SNI, not supported yet",
        ));
    }
    if let Some(tls) = doc.tls.first() {
        let tls = tls.get_ref();
        let cert = relative_to(base, tls.cert.get_ref());
        let key = relative_to(base, tls.key.get_ref());
        crate::check_certificate(&cert, &key).map_err(|e| at(&tls.cert, e))?;
        out.tls_cert = Some(cert);
        out.tls_key = Some(key);
        out.tls_reload = plain(&tls.reload);
        out.ktls = plain(&tls.ktls);
        if s.tls_listen.is_none() {
            return Err(at(
                &doc.tls[0],
                "[[tls]] without tls_listen in [server]: say where to serve HTTPS",
            ));
        }
    } else if let Some(tl) = &s.tls_listen {
        return Err(at(tl, "tls_listen needs a [[tls]] with cert and key"));
    }

    if let Some(second) = doc.site.get(1) {
        return Err(at(
            second,
            "several [[site]] need Host routing, not supported yet",
        ));
    }
    if let Some(site) = doc.site.first() {
        let site = site.get_ref();
        if let Some(hosts) = &site.hosts {
            check_hosts(hosts)?;
        }
        if let Some(root) = &site.root {
            let dir = relative_to(base, root.get_ref());
            crate::check_root(&dir).map_err(|e| at(root, e))?;
            out.root = Some(dir);
        }
        if !site.route.is_empty() {
            let proxy = routes(text, &site.route)?;
            let (roots, scripts) = fastcgi_scripts(base, &site.route, &proxy)?;
            out.proxy = Some(proxy);
            out.fastcgi_root = Some(roots);
            out.fastcgi_script = Some(scripts);
        }
        for route in &site.route {
            let r = route.get_ref();
            if let Some(rate) = &r.limit_req {
                let limit = rate.get_ref().parse().map_err(|e| at(rate, e))?;
                limit_req.push((r.prefix.get_ref().clone(), limit));
            }
        }
    }
    if !limit_req.is_empty() {
        out.limit_req = Some(limit_req);
    }
    Ok(out)
}

/// Names are checked; anything but the catch-all needs Host routing, which the server
/// does not do yet: a site that names its hosts would answer every other host too.
fn check_hosts(hosts: &Spanned<Vec<Spanned<String>>>) -> Result<(), Mistake> {
    if hosts.get_ref().is_empty() {
        return Err(at(hosts, "hosts is empty: use [\"*\"] for every host"));
    }
    for host in hosts.get_ref() {
        let name = host.get_ref();
        let bare = name.strip_prefix("*.").unwrap_or(name);
        let valid = name == "*"
            || (!bare.is_empty()
                && bare.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }));
        if !valid {
            return Err(at(
                host,
                format!("'{name}' is not a host name (a.example, *.a.example or *)"),
            ));
        }
        if name != "*" {
            return Err(at(
                host,
                format!("hosts = [\"{name}\"] needs Host routing, not supported yet: the one site serves every host (hosts = [\"*\"])"),
            ));
        }
    }
    Ok(())
}

fn routes(text: &str, list: &[Spanned<RouteSection>]) -> Result<Vec<RouteArg>, Mistake> {
    let mut out: Vec<RouteArg> = Vec::new();
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for route in list {
        let r = route.get_ref();
        let prefix = r.prefix.get_ref();
        if !prefix.starts_with('/') {
            return Err(at(
                &r.prefix,
                format!("prefix '{prefix}' must start with /"),
            ));
        }
        if let Some((_, first)) = seen.iter().find(|(p, _)| p == prefix) {
            return Err(at(
                &r.prefix,
                format!(
                    "route prefix '{prefix}' repeats the one on line {}; the second would never be used",
                    line_of(text, *first)
                ),
            ));
        }
        seen.push((prefix, r.prefix.span().start));
        let ups = r.upstreams.get_ref();
        if ups.is_empty() {
            return Err(at(
                &r.upstreams,
                "upstreams is empty: give at least one URL",
            ));
        }
        let upstreams = ups
            .iter()
            .map(|u| uring_server::config::parse_upstream_spec(u.get_ref()).map_err(|e| at(u, e)))
            .collect::<Result<Vec<_>, _>>()?;
        uring_server::config::check_route_upstreams(prefix, &upstreams)
            .map_err(|e| at(&r.upstreams, e))?;
        let b = balancing(balancing_keys!(r))?;
        out.push(RouteArg {
            prefix: prefix.clone(),
            upstreams,
            balance: b.balance,
            max_fails: b.max_fails,
            fail_timeout: b.fail_timeout.map(|s| s.0),
            health: b.health,
            health_interval: b.health_interval.map(|s| s.0),
            health_rise: b.health_rise,
            health_fall: b.health_fall,
        });
    }
    Ok(out)
}

type PrefixedPaths = Vec<(String, PathBuf)>;

/// A FastCGI route's `fastcgi_root` or `fastcgi_script` (one of them, required), as
/// `--fastcgi-root` / `--fastcgi-script` take them; other routes have neither.
fn fastcgi_scripts(
    base: &Path,
    list: &[Spanned<RouteSection>],
    proxy: &[RouteArg],
) -> Result<(PrefixedPaths, PrefixedPaths), Mistake> {
    let (mut roots, mut scripts) = (Vec::new(), Vec::new());
    for (
        route,
        RouteArg {
            prefix, upstreams, ..
        },
    ) in list.iter().zip(proxy)
    {
        let r = route.get_ref();
        let fastcgi = upstreams[0].0 .1 == UpstreamProtocol::Fastcgi;
        match (&r.fastcgi_root, &r.fastcgi_script) {
            (Some(_), Some(s)) => {
                return Err(at(s, "give fastcgi_root or fastcgi_script, not both"))
            }
            (Some(k), None) | (None, Some(k)) if !fastcgi => {
                return Err(at(
                    k,
                    format!("route '{prefix}' is not a fastcgi:// route: no script to set"),
                ))
            }
            (Some(d), None) => roots.push((prefix.clone(), relative_to(base, d.get_ref()))),
            (None, Some(f)) => scripts.push((prefix.clone(), relative_to(base, f.get_ref()))),
            (None, None) if fastcgi => {
                return Err(at(
                    &r.upstreams,
                    format!("the FastCGI route '{prefix}' needs fastcgi_root or fastcgi_script"),
                ))
            }
            (None, None) => {}
        }
    }
    Ok((roots, scripts))
}

fn plain<T: Copy>(key: &Key<T>) -> Option<T> {
    key.as_ref().map(|k| *k.get_ref())
}

fn positive(key: &Key<usize>) -> Result<Option<usize>, Mistake> {
    match key {
        Some(k) if *k.get_ref() == 0 => Err(at(k, "must be at least 1")),
        k => Ok(plain(k)),
    }
}

fn power_of_two(key: &Key<u32>) -> Result<Option<u32>, Mistake> {
    match key {
        Some(k) if !k.get_ref().is_power_of_two() => Err(at(k, "must be a power of two")),
        k => Ok(plain(k)),
    }
}

fn duration(key: &Key<String>) -> Result<Option<Span>, Mistake> {
    key.as_ref()
        .map(|k| parse_duration(k.get_ref()).map(Span).map_err(|e| at(k, e)))
        .transpose()
}

fn address(key: &Spanned<String>) -> Result<SocketAddr, Mistake> {
    key.get_ref().parse().map_err(|_| {
        at(
            key,
            format!(
                "'{}' is not an address: IP:PORT, e.g. 127.0.0.1:8080 or [::]:8080",
                key.get_ref()
            ),
        )
    })
}

fn addresses(list: &Spanned<Vec<Spanned<String>>>) -> Result<Vec<SocketAddr>, Mistake> {
    list.get_ref().iter().map(address).collect()
}

fn relative_to(base: &Path, path: &str) -> PathBuf {
    base.join(path)
}

fn parent_exists(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(format!("directory {} does not exist", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Writes the file's settings into `cli`, except where the command line gave the flag.
pub fn apply(file: FileSettings, cli: &mut Cli, matches: &ArgMatches) {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    macro_rules! take {
        ($field:ident) => {
            take!($field, |v| v)
        };
        ($field:ident, $map:expr) => {
            if let Some(v) = file.$field {
                if !given(stringify!($field)) {
                    cli.$field = ($map)(v);
                }
            }
        };
    }
    take!(listen);
    take!(tls_listen);
    take!(tls_cert, Some);
    take!(tls_key, Some);
    take!(tls_reload);
    take!(ktls);
    take!(workers, Some);
    if let Some(pin) = file.pin {
        if !given("no_pin") {
            cli.no_pin = !pin;
        }
    }
    take!(tier);
    take!(metrics, Some);
    take!(user, Some);
    take!(pid_file, Some);
    take!(max_conns);
    take!(backlog);
    take!(sq_entries);
    take!(cq_entries);
    take!(file_memory_max);
    take!(file_body);
    take!(max_head_bytes);
    take!(max_headers);
    take!(max_target_bytes);
    take!(max_body_bytes);
    take!(header_timeout);
    take!(body_timeout);
    take!(keepalive_timeout);
    take!(drain_timeout);
    take!(upgrade_timeout);
    take!(http2, |on: bool| if on { "on" } else { "off" }.to_string());
    take!(http2_max_streams);
    take!(http2_max_frame_size);
    take!(http2_max_header_list);
    take!(access_log, Some);
    take!(access_log_format);
    take!(upstream_conns);
    take!(upstream_connect_timeout);
    take!(upstream_timeout);
    take!(tunnel_idle_timeout);
    take!(trust_forwarded);
    take!(root, Some);
    // A route's script goes with the file's routes: not onto the command line's.
    if !given("proxy") {
        take!(fastcgi_root);
        take!(fastcgi_script);
    }
    take!(proxy);
    take!(balance);
    take!(max_fails);
    take!(fail_timeout);
    take!(health, Some);
    take!(health_interval);
    take!(health_rise);
    take!(health_fall);
    take!(precompressed);
    take!(compress, Some);
    take!(compress_min_length);
    take!(limit_req);
    take!(limit_conn, Some);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};
    use std::time::Duration;
    use uring_server::config::{Health, HealthCheck, UpstreamUrl};
    use uring_server::{UpstreamAddr, UpstreamProtocol};

    fn parse_str(text: &str) -> Result<FileSettings, String> {
        parse(text, Path::new("/"))
            .map_err(|(offset, msg)| format!("{}: {msg}", line_of(text, offset)))
    }

    /// Each route's prefix and first upstream.
    fn first_upstreams(cli: &Cli) -> Vec<(String, UpstreamUrl)> {
        (cli.proxy.iter())
            .map(|r| (r.prefix.clone(), r.upstreams[0].0.clone()))
            .collect()
    }

    fn merged(text: &str, args: &[&str]) -> Cli {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("uring-server").chain(args.iter().copied()))
            .unwrap();
        let mut cli = Cli::from_arg_matches(&matches).unwrap();
        apply(parse_str(text).unwrap(), &mut cli, &matches);
        cli
    }

    #[test]
    fn a_fastcgi_route_takes_its_script() {
        let text = "[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"fastcgi+unix:/run/php.sock\"]\nfastcgi_root = \"/srv/www\"\n[[site.route]]\nprefix = \"/app/\"\nupstreams = [\"fastcgi://127.0.0.1:9000\"]\nfastcgi_script = \"app/index.php\"\n";
        let cli = merged(text, &[]);
        assert_eq!(cli.proxy[0].upstreams[0].0 .1, UpstreamProtocol::Fastcgi);
        assert_eq!(
            cli.fastcgi_root,
            vec![("/".to_string(), PathBuf::from("/srv/www"))]
        );
        // Relative to the file's directory, as every path in it.
        assert_eq!(
            cli.fastcgi_script,
            vec![("/app/".to_string(), PathBuf::from("/app/index.php"))]
        );
        assert_eq!(crate::fastcgi_scripts(&cli).map(|s| s.len()), Ok(2));
        for (text, want) in [
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"fastcgi://127.0.0.1:1\"]\n", "4: the FastCGI route '/' needs fastcgi_root or fastcgi_script"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:1\"]\nfastcgi_root = \"/x\"\n", "5: route '/' is not a fastcgi:// route"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"fastcgi://127.0.0.1:1\"]\nfastcgi_root = \"/x\"\nfastcgi_script = \"/y\"\n", "6: give fastcgi_root or fastcgi_script, not both"),
        ] {
            let got = parse_str(text).err().unwrap_or_default();
            assert!(got.starts_with(want), "{got}");
        }
    }

    #[test]
    fn a_route_to_uwsgi_keeps_its_protocol() {
        let text =
            "[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"uwsgi+unix:/run/u.sock\"]\n";
        let cli = merged(text, &[]);
        let want = (
            UpstreamAddr::Unix("/run/u.sock".into()),
            UpstreamProtocol::Uwsgi,
        );
        assert_eq!(first_upstreams(&cli), [("/".to_string(), want)]);
    }

    #[test]
    fn every_section_reaches_its_flag() {
        let text = r#"
[server]
listen = ["127.0.0.1:8080", "[::1]:8081"]
workers = 3
pin = false
tier = "basic"
metrics = "127.0.0.1:9100"
max_conns = 100
backlog = 64
sq_entries = 256
cq_entries = 1024
file_memory_max = 0
file_body = "read"
[limits]
max_head_bytes = 4096
max_headers = 20
max_target_bytes = 1000
max_body_bytes = 5
[timeouts]
header = "3s"
body = "4s"
keepalive = "500ms"
drain = "1m"
upgrade = "7s"
[http2]
enabled = false
max_streams = 10
max_frame_size = 32768
max_header_list = 9000
[access_log]
path = "-"
format = "json"
[proxy]
upstream_conns = 4
connect_timeout = "2s"
timeout = "9s"
tunnel_idle_timeout = "90s"
trust_forwarded = true
[[site]]
hosts = ["*"]
root = "/"
[[site.route]]
prefix = "/api/"
upstreams = ["http://127.0.0.1:8001 weight=2"]
balance = "least-conn"
"#;
        let cli = merged(text, &[]);
        assert_eq!(
            cli.listen,
            [
                "127.0.0.1:8080".parse().unwrap(),
                "[::1]:8081".parse().unwrap()
            ]
        );
        assert_eq!((cli.workers, cli.no_pin), (Some(3), true));
        assert_eq!(
            cli.tier,
            uring_server::TierChoice::Force(uring_server::Tier::Basic)
        );
        assert_eq!(cli.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(
            (cli.max_conns, cli.backlog, cli.sq_entries, cli.cq_entries),
            (100, 64, 256, 1024)
        );
        assert_eq!((cli.file_memory_max, cli.file_body.as_str()), (0, "read"));
        assert_eq!(
            (
                cli.max_head_bytes,
                cli.max_headers,
                cli.max_target_bytes,
                cli.max_body_bytes
            ),
            (4096, 20, 1000, 5)
        );
        assert_eq!(cli.header_timeout.0, Duration::from_secs(3));
        assert_eq!(cli.body_timeout.0, Duration::from_secs(4));
        assert_eq!(cli.keepalive_timeout.0, Duration::from_millis(500));
        assert_eq!(cli.drain_timeout.0, Duration::from_secs(60));
        assert_eq!(cli.upgrade_timeout.0, Duration::from_secs(7));
        assert_eq!(cli.http2, "off");
        assert_eq!(
            (
                cli.http2_max_streams,
                cli.http2_max_frame_size,
                cli.http2_max_header_list
            ),
            (10, 32768, 9000)
        );
        assert_eq!(cli.access_log.as_deref(), Some("-"));
        assert_eq!(cli.access_log_format, AccessLogFormat::Json);
        assert_eq!(cli.upstream_conns, 4);
        assert_eq!(cli.upstream_connect_timeout.0, Duration::from_secs(2));
        assert_eq!(cli.upstream_timeout.0, Duration::from_secs(9));
        assert_eq!(cli.tunnel_idle_timeout.0, Duration::from_secs(90));
        assert!(cli.trust_forwarded);
        assert_eq!(cli.root, Some(PathBuf::from("/")));
        assert_eq!(
            first_upstreams(&cli),
            [(
                "/api/".to_string(),
                (
                    UpstreamAddr::Tcp("127.0.0.1:8001".parse().unwrap()),
                    UpstreamProtocol::Http
                )
            )]
        );
    }

    #[test]
    fn a_flag_on_the_command_line_overrides_the_file() {
        let text = "[server]\nworkers = 3\nlisten = [\"127.0.0.1:1\"]\n[timeouts]\nkeepalive = \"9s\"\n\
                    [http2]\nenabled = false\n[[site]]\nroot = \"/\"\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:2\"]\n";
        let cli = merged(
            text,
            &[
                "-w",
                "5",
                "--listen",
                "127.0.0.1:3",
                "--keepalive-timeout",
                "1s",
                "--http2",
                "on",
                "--proxy",
                "/x/=http://127.0.0.1:4",
                "--root",
                "/tmp",
            ],
        );
        assert_eq!(cli.workers, Some(5));
        assert_eq!(cli.listen, ["127.0.0.1:3".parse().unwrap()]);
        assert_eq!(cli.keepalive_timeout.0, Duration::from_secs(1));
        assert_eq!(cli.http2, "on");
        assert_eq!(
            first_upstreams(&cli),
            [(
                "/x/".to_string(),
                (
                    UpstreamAddr::Tcp("127.0.0.1:4".parse().unwrap()),
                    UpstreamProtocol::Http
                )
            )]
        );
        assert_eq!(cli.root, Some(PathBuf::from("/tmp")));
        // A flag left at its default does not hide the file's value.
        let cli = merged(text, &["--keepalive-timeout", "1s"]);
        assert_eq!((cli.workers, cli.http2.as_str()), (Some(3), "off"));
    }

    #[test]
    fn several_upstreams_their_weights_balance_and_health() {
        let text = r#"
[proxy]
balance = "least-conn"
max_fails = 3
health = "/healthz"
health_interval = "500ms"
[[site]]
[[site.route]]
prefix = "/api/"
upstreams = ["http://127.0.0.1:8001 weight=3", "http://127.0.0.1:8002"]
balance = "hash:cookie:sid"
fail_timeout = "30s"
health_rise = 4
[[site.route]]
prefix = "/b/"
upstreams = ["http://127.0.0.1:8003", "http://127.0.0.1:8004"]
"#;
        let cli = merged(text, &["--health-fall", "5"]);
        let tcp = |p: u16| {
            (
                UpstreamAddr::Tcp(([127, 0, 0, 1], p).into()),
                UpstreamProtocol::Http,
            )
        };
        let (api, b) = (&cli.proxy[0], &cli.proxy[1]);
        assert_eq!(api.upstreams, [(tcp(8001), 3), (tcp(8002), 1)]);
        assert_eq!(api.balance, Some(Balance::Cookie("sid".into())));
        assert_eq!(b.balance, None);
        assert_eq!(
            cli.balance,
            Balance::LeastConn,
            "[proxy]'s is every route's default"
        );
        let check = |rise| {
            Some(HealthCheck {
                path: "/healthz".into(),
                interval: Duration::from_millis(500),
                rise,
                fall: 5,
            })
        };
        assert_eq!(
            api.health(&cli),
            Health {
                max_fails: 3,
                fail_timeout: Duration::from_secs(30),
                check: check(4),
            }
        );
        assert_eq!(
            b.health(&cli),
            Health {
                max_fails: 3,
                fail_timeout: Duration::from_secs(10),
                check: check(2),
            }
        );
    }

    #[test]
    fn an_empty_file_keeps_the_command_lines_defaults() {
        let cli = merged("", &[]);
        let plain = Cli::parse_from(["uring-server"]);
        assert_eq!(format!("{cli:?}"), format!("{plain:?}"));
    }

    #[test]
    fn compression_and_limits_reach_their_flags() {
        let text = r#"
[limits]
limit_req = "100r/s,burst=20"
limit_conn = 8
[compression]
precompressed = true
codings = ["gzip", "zstd"]
min_length = 100
[[site]]
[[site.route]]
prefix = "/api/"
upstreams = ["http://127.0.0.1:9000"]
limit_req = "10r/m,burst=5,nodelay"
"#;
        let cli = merged(text, &[]);
        assert!(cli.precompressed);
        assert_eq!(
            cli.compress,
            Some(Codings::parse_list("zstd,gzip").unwrap())
        );
        assert_eq!(cli.compress_min_length, 100);
        assert_eq!(cli.limit_conn, Some(8));
        let rate = |s: &str| s.parse::<LimitReq>().unwrap();
        assert_eq!(
            cli.limit_req,
            [
                (String::new(), rate("100r/s,burst=20")),
                ("/api/".to_string(), rate("10r/m,burst=5")),
            ]
        );
        assert_eq!(rate("600r/m").milli_per_sec, 10_000);
        assert_eq!(rate("10r/m,burst=5").burst, 5);
        let cli = merged(text, &["--limit-req", "5r/s", "--compress", "gzip"]);
        assert_eq!(
            cli.limit_req,
            [(String::new(), rate("5r/s"))],
            "the flag wins"
        );
        assert_eq!(cli.compress, Some(Codings::parse_list("gzip").unwrap()));
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, want) in [
            ("[server]\nlisten = [\"127.0.0.1\"]\n", "2: '127.0.0.1' is not an address"),
            ("[server]\n\nworkers = 0\n", "3: must be at least 1"),
            ("[server]\nworkerz = 2\n", "2: unknown field `workerz`"),
            ("[server]\nworkers = \"two\"\n", "2: invalid type"),
            ("[server\n", "1: "),
            ("[timeouts]\nheader = \"5h\"\n", "2: invalid duration unit"),
            ("[server]\ntier = \"fast\"\n", "2: "),
            ("[http2]\nmax_frame_size = 10\n", "2: max_frame_size must be"),
            ("[server]\nsq_entries = 100\n", "2: must be a power of two"),
            ("[[site]]\nroot = \"/\"\n[[site]]\nroot = \"/\"\n", "3: several [[site]] need Host routing, not supported yet"),
            ("[[site]]\nhosts = [\"a.example\"]\n", "2: hosts = [\"a.example\"] needs Host routing"),
            ("[[site]]\nhosts = [\"a..b\"]\n", "2: 'a..b' is not a host name"),
            ("[[site]]\nroot = \"/no/such/dir\"\n", "2: "),
            ("[server]\ntls_listen = [\"127.0.0.1:1\"]\n", "2: tls_listen needs a [[tls]]"),
            ("[[site]]\n[[site.route]]\nprefix = \"/a/\"\nupstreams = [\"http://127.0.0.1:1\"]\n[[site.route]]\nprefix = \"/a/\"\nupstreams = [\"http://127.0.0.1:2\"]\n",
             "6: route prefix '/a/' repeats"),
            ("[[site]]\n[[site.route]]\nprefix = \"/a/\"\nupstreams = [\"http://127.0.0.1:1\",\n \"uwsgi://127.0.0.1:2\"]\n",
             "4: route '/a/': its upstreams must speak one protocol"),
            ("[[site]]\n[[site.route]]\nprefix = \"/a/\"\nupstreams = [\"http://127.0.0.1:1\",\n \"http://127.0.0.1:2\",\n \"http://127.0.0.1:9 wieght=2\"]\n",
             "6: 'wieght=2'"),
            ("[[site]]\n[[site.route]]\nprefix = \"/a/\"\nupstreams = [\"http://127.0.0.1:1\", \"http://127.0.0.1:1\"]\n",
             "4: route '/a/' names 127.0.0.1:1 twice"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:1\"]\nhealth = \"healthz\"\n", "5: health 'healthz'"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:1\"]\nhealth_rise = 0\n", "5: must be at least 1"),
            ("[proxy]\nbalance = \"hash:\"\n", "2: balance 'hash:'"),
            ("[proxy]\nhealth_interval = \"0s\"\n", "2: health_interval must be above 0"),
            ("[[site]]\n[[site.route]]\nprefix = \"a\"\nupstreams = [\"http://127.0.0.1:1\"]\n", "3: prefix 'a' must start with /"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"https://x\"]\n", "4: 'https://x': upstream must be"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:1 weight=0\"]\n", "4: 'weight=0'"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:1\"]\nbalance = \"random\"\n", "5: balance 'random'"),
            ("[server]\nuser = \"no-such-user-here\"\n", "2: "),
            ("[access_log]\npath = \"/no/such/dir/log\"\n", "2: directory /no/such/dir does not exist"),
            ("[limits]\nlimit_req = \"100\"\n", "2: '100': a rate is"),
            ("[limits]\nlimit_req = \"1r/s,burst=x\"\n", "2: 'burst=x': expected burst=N"),
            ("[limits]\nlimit_conn = 0\n", "2: limit_conn must be at least 1"),
            ("[compression]\ncodings = [\"br\"]\n", "2: 'br': on-the-fly compression is gzip or zstd"),
            ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:1\"]\nlimit_req = \"5r/h\"\n", "5: '5r/h': a rate is"),
        ] {
            let err = parse_str(text).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.starts_with(want), "{text:?}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn relative_paths_are_taken_from_the_files_directory() {
        let dir = std::env::temp_dir();
        let name = dir.file_name().unwrap().to_str().unwrap();
        let text = format!("[[site]]\nroot = \"../{name}\"\n[server]\npid_file = \"x.pid\"\n");
        let f = parse(&text, &dir).unwrap();
        assert_eq!(f.root, Some(dir.join("..").join(name)));
        assert_eq!(f.pid_file, Some(dir.join("x.pid")));
    }
}
