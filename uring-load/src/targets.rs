//! Request mixes: what `--targets` (vegeta's format), `--urls` (h2load's `-i`) and
//! `--raw` (whole requests, gcannon-style) describe, checked once at start and
//! serialized once into [`Mix`]; and [`Selector`], which picks each request's target
//! (round-robin, weighted or seeded random) without allocating.
//!
//! Every request is held as the exact bytes that go on the wire (head and body, a body
//! file read once), so a connection's send is a copy of prepared bytes. A raw request is
//! checked with the server's own strict parser: HTTP/1.1, CRLF line ends, one Host, and
//! framing that matches the bytes that follow the head; a refusal names the file and line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uring_common::http::request::{
    new_header_storage, parse_request, BodyFraming, Limits, Version,
};
use uring_common::http::serialize::write_request_head;
use uring_common::http::{ChunkEvent, ChunkedDecoder, Parsed};

use crate::rng::splitmix64;
use crate::target::{parse_url, Url};

/// Largest sum of weights (the weighted cycle holds one entry per unit of weight).
pub const MAX_WEIGHT_SUM: u64 = 1 << 20;

/// What is wrong with a targets, URLs or raw request file.
#[derive(Debug)]
pub enum TargetsError {
    Read {
        path: PathBuf,
        err: std::io::Error,
    },
    /// A line of `path` that is wrong, and why (with the fix where there is one).
    Line {
        path: PathBuf,
        line: usize,
        why: String,
    },
    /// A file with no target in it.
    Empty {
        path: PathBuf,
    },
    WeightSum(u64),
    /// A placeholder (`{SEQ}`, `{RAND:LO-HI}`, `{UUID}`, `{LINE:FILE}`) that is wrong.
    Template {
        label: String,
        why: String,
    },
}

impl fmt::Display for TargetsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetsError::Read { path, err } => write!(f, "cannot read {}: {err}", path.display()),
            TargetsError::Line { path, line, why } => {
                write!(f, "{} line {line}: {why}", path.display())
            }
            TargetsError::Empty { path } => write!(f, "{}: no target in the file", path.display()),
            TargetsError::Template { label, why } => write!(f, "{label}: {why}"),
            TargetsError::WeightSum(s) => write!(
                f,
                "the weights add up to {s}; at most {MAX_WEIGHT_SUM} (use smaller weights in the same proportion)"
            ),
        }
    }
}

impl std::error::Error for TargetsError {}

/// How each request's target is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Every target in turn (weights ignored).
    RoundRobin,
    /// Smooth weighted round-robin: target `i` gets `weight_i / sum` of the requests,
    /// spread evenly over the cycle.
    Weighted,
    /// Independent draws in proportion to the weights, from a seeded generator.
    Random { seed: u64 },
}

/// One target of the mix, ready to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// What the reports call it: `METHOD URL` or the raw file's name.
    pub label: String,
    /// Index into [`Mix::hosts`].
    pub host: usize,
    pub weight: u32,
    /// The whole request: head and body.
    pub bytes: Vec<u8>,
    /// A HEAD request: its response has no body whatever its headers say.
    pub head: bool,
    /// The request's placeholders (`{SEQ}`, ...), compiled; `None`: send `bytes` as is.
    pub template: Option<Arc<crate::template::Template>>,
}

/// Where a host's connections go: the URL that named it (scheme, host, port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    pub url: Url,
}

impl HostKey {
    /// `http://host:port` as the reports show it.
    pub fn label(&self) -> String {
        let scheme = match self.url.scheme {
            crate::target::Scheme::Http => "http",
            crate::target::Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.url.authority)
    }
}

/// Every target of a run and the hosts they name.
#[derive(Debug, Clone)]
pub struct Mix {
    pub targets: Vec<Target>,
    pub hosts: Vec<HostKey>,
    pub policy: Policy,
}

/// A request as written in a targets or URLs file, before serialization.
#[derive(Debug, Clone)]
pub struct Written {
    pub method: String,
    pub url: Url,
    pub url_text: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<PathBuf>,
    pub weight: u32,
}

/// One target before it is grouped by host: what [`Mix::new`] takes.
#[derive(Debug, Clone)]
pub struct Item {
    pub label: String,
    /// The host it goes to (for a raw request, the URL argument).
    pub url: Url,
    pub bytes: Vec<u8>,
    pub head: bool,
    pub weight: u32,
}

/// A raw request file and its weight (`FILE` or `FILE:weight=N`).
#[derive(Debug, Clone)]
pub struct RawSource {
    pub path: PathBuf,
    pub weight: u32,
}

/// One request, serialized once: the head, `headers` (a `Host` among them replaces the
/// URL's authority; `Content-Length` and `Connection` are ours to write), the body.
pub fn build_request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    keep_alive: bool,
) -> Vec<u8> {
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| url.authority.clone());
    let extra: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(n, _)| {
            !n.eq_ignore_ascii_case("host")
                && !n.eq_ignore_ascii_case("content-length")
                && !n.eq_ignore_ascii_case("connection")
        })
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let mut request = Vec::new();
    write_request_head(
        &mut request,
        method,
        &url.target,
        &host,
        &extra,
        body.map(|b| b.len() as u64),
        keep_alive,
    );
    if let Some(b) = body {
        request.extend_from_slice(b);
    }
    request
}

/// A header name or method: an RFC 9110 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `Name: value` (the value trimmed, without CR, LF or NUL).
pub fn parse_header(h: &str) -> Result<(String, String), &'static str> {
    let (name, value) = h.split_once(':').ok_or("expected \"Name: value\"")?;
    let name = name.trim();
    if !is_token(name) {
        return Err("invalid header name");
    }
    let value = value.trim();
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("control characters in the value");
    }
    Ok((name.to_string(), value.to_string()))
}

fn read(path: &Path) -> Result<Vec<u8>, TargetsError> {
    std::fs::read(path).map_err(|err| TargetsError::Read {
        path: path.to_path_buf(),
        err,
    })
}

fn read_text(path: &Path) -> Result<String, TargetsError> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        TargetsError::Line {
            path: path.to_path_buf(),
            line,
            why: "not UTF-8 text".into(),
        }
    })
}

/// `weight=N` at the end of a line: the rest of the line and the weight (1 without it).
fn split_weight(text: &str) -> Result<(&str, u32), String> {
    let trimmed = text.trim_end();
    if let Some((rest, last)) = trimmed.rsplit_once(char::is_whitespace) {
        if let Some(n) = last.strip_prefix("weight=") {
            return match n.parse::<u32>() {
                Ok(w) if w > 0 => Ok((rest.trim_end(), w)),
                _ => Err(format!("bad weight '{last}': a whole number from 1")),
            };
        }
    }
    Ok((trimmed, 1))
}

/// `--urls FILE`: one URL per line (`#` comments and blank lines skipped), each with an
/// optional ` weight=N`.
pub fn parse_urls(path: &Path, method: &str) -> Result<Vec<Written>, TargetsError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let bad = |why: String| TargetsError::Line {
            path: path.to_path_buf(),
            line: k + 1,
            why,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (url_text, weight) = split_weight(line).map_err(bad)?;
        let url = parse_url(url_text).map_err(|e| bad(e.to_string()))?;
        out.push(Written {
            method: method.to_string(),
            url,
            url_text: url_text.to_string(),
            headers: Vec::new(),
            body: None,
            weight,
        });
    }
    if out.is_empty() {
        return Err(TargetsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// `METHOD URL [weight=N]`, the first line of a vegeta target.
fn request_line(line: &str) -> Option<Result<(String, Url, String, u32), String>> {
    let mut parts = line.splitn(2, char::is_whitespace);
    let method = parts.next()?;
    let rest = parts.next()?.trim();
    if !is_token(method) || !(rest.starts_with("http://") || rest.starts_with("https://")) {
        return None;
    }
    Some((|| {
        let (url_text, weight) = split_weight(rest)?;
        let url = parse_url(url_text).map_err(|e| e.to_string())?;
        Ok((method.to_string(), url, url_text.to_string(), weight))
    })())
}

/// `--targets FILE`, vegeta's text format: `METHOD URL` (with an optional ` weight=N`),
/// then `Name: value` header lines, then an optional `@path/to/body` line; a blank line
/// (or the next `METHOD URL` line) ends a target. Lines starting with `#` are comments.
pub fn parse_targets(path: &Path) -> Result<Vec<Written>, TargetsError> {
    let text = read_text(path)?;
    let mut out: Vec<Written> = Vec::new();
    // Whether the current target may still take header or body lines.
    let mut open = false;
    let mut has_body = false;
    for (k, raw_line) in text.lines().enumerate() {
        let bad = |why: String| TargetsError::Line {
            path: path.to_path_buf(),
            line: k + 1,
            why,
        };
        let line = raw_line.trim();
        if line.is_empty() {
            open = false;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some(parsed) = request_line(line) {
            let (method, url, url_text, weight) = parsed.map_err(bad)?;
            out.push(Written {
                method,
                url,
                url_text,
                headers: Vec::new(),
                body: None,
                weight,
            });
            open = true;
            has_body = false;
            continue;
        }
        let Some(current) = out.last_mut().filter(|_| open) else {
            return Err(bad(
                "expected a target: METHOD URL, e.g. GET http://127.0.0.1:8080/".into(),
            ));
        };
        if has_body {
            return Err(bad(
                "the @body line ends a target; put a blank line before the next one".into(),
            ));
        }
        if let Some(body) = line.strip_prefix('@') {
            if body.is_empty() {
                return Err(bad("'@' without a file name".into()));
            }
            current.body = Some(PathBuf::from(body));
            has_body = true;
            continue;
        }
        let header = parse_header(line).map_err(|why| bad(format!("bad header: {why}")))?;
        current.headers.push(header);
    }
    if out.is_empty() {
        return Err(TargetsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// `FILE` or `FILE:weight=N`, comma-separated (`--raw a.req,b.req:weight=3`).
pub fn parse_raw_list(arg: &str) -> Result<Vec<RawSource>, String> {
    arg.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| match item.rsplit_once(":weight=") {
            Some((p, n)) => match n.parse::<u32>() {
                Ok(w) if w > 0 => Ok(RawSource {
                    path: p.into(),
                    weight: w,
                }),
                _ => Err(format!("bad weight in '{item}': a whole number from 1")),
            },
            None => Ok(RawSource {
                path: item.into(),
                weight: 1,
            }),
        })
        .collect()
}

/// The 1-based line of byte `at`.
fn line_of(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Check a raw request (one whole HTTP/1.1 request, sent as written); returns whether it
/// is a HEAD request, or the line that is wrong and why.
pub fn check_raw(bytes: &[u8]) -> Result<bool, (usize, String)> {
    if bytes.is_empty() {
        return Err((
            1,
            "empty file: a raw request is a whole HTTP/1.1 request".into(),
        ));
    }
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        if let Some(i) = bytes
            .iter()
            .enumerate()
            .position(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
        {
            return Err((
                line_of(bytes, i),
                "the line ends in a bare LF: HTTP/1.1 lines end in CRLF (\\r\\n)".into(),
            ));
        }
        return Err((
            line_of(bytes, bytes.len() - 1),
            "the head does not end with an empty line (CRLF CRLF)".into(),
        ));
    };
    let head = &bytes[..end + 4];
    // Line by line first, so that an error names its line.
    let mut start = 0;
    for (k, line) in head[..end + 2].split(|&b| b == b'\n').enumerate() {
        if start >= end + 2 {
            break;
        }
        let n = k + 1;
        start += line.len() + 1;
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err((
                n,
                "the line ends in a bare LF: HTTP/1.1 lines end in CRLF".into(),
            ));
        };
        let text = std::str::from_utf8(line).map_err(|_| (n, "not ASCII text".to_string()))?;
        if k == 0 {
            let parts: Vec<&str> = text.split(' ').collect();
            if parts.len() != 3 || !is_token(parts[0]) || parts[1].is_empty() {
                return Err((
                    n,
                    format!("'{text}' is not a request line: METHOD TARGET HTTP/1.1"),
                ));
            }
            if parts[2] != "HTTP/1.1" {
                return Err((
                    n,
                    format!("version '{}': raw requests must be HTTP/1.1", parts[2]),
                ));
            }
        } else if let Err(why) = parse_header(text) {
            return Err((n, format!("bad header '{text}': {why}")));
        } else if text
            .split(':')
            .next()
            .is_some_and(|name| name.trim() != name)
        {
            return Err((
                n,
                format!("bad header '{text}': whitespace around the name"),
            ));
        }
    }
    let line_of_header = |name: &str| {
        let mut line = 1;
        for (k, l) in head.split(|&b| b == b'\n').enumerate() {
            let l = String::from_utf8_lossy(l);
            if l.split(':')
                .next()
                .is_some_and(|h| h.eq_ignore_ascii_case(name))
            {
                line = k + 1;
            }
        }
        line
    };
    let mut storage = new_header_storage();
    let limits = Limits {
        max_body_bytes: u64::MAX,
        ..Limits::default()
    };
    let parsed = parse_request(head, &mut storage, &limits).map_err(|e| {
        use uring_common::http::request::RequestError as E;
        let line = match e {
            E::InvalidHost => line_of_header("host"),
            E::InvalidContentLength | E::TransferEncodingWithContentLength => {
                line_of_header("content-length")
            }
            E::InvalidTransferEncoding | E::UnsupportedTransferEncoding => {
                line_of_header("transfer-encoding")
            }
            _ => 1,
        };
        let hint = if e == E::InvalidHost {
            ": an HTTP/1.1 request needs exactly one Host header"
        } else {
            ""
        };
        (line, format!("{e}{hint}"))
    })?;
    let Parsed::Complete(req) = parsed else {
        return Err((1, "incomplete request head".into()));
    };
    if req.version != Version::Http11 {
        return Err((1, "raw requests must be HTTP/1.1".into()));
    }
    if !req.host.is_some_and(|h| !h.is_empty()) {
        return Err((
            line_of_header("host"),
            "an empty Host: name the host the request is for".into(),
        ));
    }
    let body = &bytes[req.head_len..];
    let body_line = line_of(bytes, req.head_len);
    match req.framing {
        BodyFraming::None if !body.is_empty() => Err((
            body_line,
            format!(
                "{} bytes follow the head, but it has no Content-Length or Transfer-Encoding",
                body.len()
            ),
        )),
        BodyFraming::Length(n) if n != body.len() as u64 => Err((
            line_of_header("content-length"),
            format!(
                "Content-Length: {n}, but {} bytes follow the head (is there a trailing newline?)",
                body.len()
            ),
        )),
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut off = 0;
            loop {
                match dec.decode(&body[off..]) {
                    Ok((used, ChunkEvent::Done)) => {
                        off += used;
                        break;
                    }
                    Ok((_, ChunkEvent::NeedMore)) => {
                        return Err((
                            line_of(bytes, bytes.len() - 1),
                            "the chunked body ends before its last chunk (0 CRLF CRLF)".into(),
                        ))
                    }
                    Ok((used, ChunkEvent::Data(_))) => off += used,
                    Err(e) => {
                        return Err((
                            line_of(bytes, req.head_len + off),
                            format!("chunked body: {e}"),
                        ))
                    }
                }
            }
            if off != body.len() {
                return Err((
                    line_of(bytes, req.head_len + off),
                    format!(
                        "{} bytes after the end of the chunked body",
                        body.len() - off
                    ),
                ));
            }
            Ok(req.method.eq_ignore_ascii_case("HEAD"))
        }
        _ => Ok(req.method.eq_ignore_ascii_case("HEAD")),
    }
}

/// Read and check the raw request files; the URL gives the host they go to.
pub fn load_raw(sources: &[RawSource], url: &Url) -> Result<Vec<Item>, TargetsError> {
    sources
        .iter()
        .map(|s| {
            let bytes = read(&s.path)?;
            // With placeholders, what is checked is a request as it will be sent.
            let sample = match crate::template::compile(&bytes, &mut Default::default()) {
                Ok(Some(t)) => crate::template::sample(&t),
                Ok(None) => bytes.clone(),
                Err(why) => {
                    return Err(TargetsError::Template {
                        label: s.path.display().to_string(),
                        why,
                    })
                }
            };
            let head = check_raw(&sample).map_err(|(line, why)| TargetsError::Line {
                path: s.path.clone(),
                line,
                why,
            })?;
            Ok(Item {
                label: s.path.display().to_string(),
                url: url.clone(),
                bytes,
                head,
                weight: s.weight,
            })
        })
        .collect()
}

/// Serialize written targets: `defaults` (`-H`) apply unless a target sets the same
/// header; bodies are read once per file.
pub fn build_mix(
    written: &[Written],
    defaults: &[(String, String)],
    keep_alive: bool,
    body_cache: &mut HashMap<PathBuf, Arc<[u8]>>,
) -> Result<Vec<Item>, TargetsError> {
    written
        .iter()
        .map(|w| {
            let body = match &w.body {
                Some(p) => Some(match body_cache.get(p) {
                    Some(b) => b.clone(),
                    None => {
                        let b: Arc<[u8]> = read(p)?.into();
                        body_cache.insert(p.clone(), b.clone());
                        b
                    }
                }),
                None => None,
            };
            let mut headers: Vec<(String, String)> = defaults
                .iter()
                .filter(|(n, _)| !w.headers.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)))
                .cloned()
                .collect();
            headers.extend(w.headers.iter().cloned());
            let bytes = build_request(&w.method, &w.url, &headers, body.as_deref(), keep_alive);
            let label = format!("{} {}", w.method, w.url_text);
            let head = w.method.eq_ignore_ascii_case("HEAD");
            Ok(Item {
                label,
                url: w.url.clone(),
                bytes,
                head,
                weight: w.weight,
            })
        })
        .collect()
}

impl Mix {
    /// Group targets by host (scheme, host and port of their URL), in order of first use.
    pub fn new(items: Vec<Item>, policy: Policy) -> Result<Mix, TargetsError> {
        let mut hosts: Vec<HostKey> = Vec::new();
        let mut targets = Vec::with_capacity(items.len());
        let mut line_files = crate::template::LineFiles::new();
        for Item {
            label,
            url,
            bytes,
            head,
            weight,
        } in items
        {
            let host = match hosts.iter().position(|h| {
                h.url.scheme == url.scheme && h.url.host == url.host && h.url.port == url.port
            }) {
                Some(i) => i,
                None => {
                    hosts.push(HostKey { url: url.clone() });
                    hosts.len() - 1
                }
            };
            let template = crate::template::compile(&bytes, &mut line_files)
                .map_err(|why| TargetsError::Template {
                    label: label.clone(),
                    why,
                })?
                .map(Arc::new);
            targets.push(Target {
                label,
                host,
                weight,
                bytes,
                head,
                template,
            });
        }
        let sum: u64 = targets.iter().map(|t| u64::from(t.weight)).sum();
        if policy != Policy::RoundRobin && sum > MAX_WEIGHT_SUM {
            return Err(TargetsError::WeightSum(sum));
        }
        Ok(Mix {
            targets,
            hosts,
            policy,
        })
    }

    /// The weight a target has under the policy (1 for round-robin).
    pub fn weight(&self, t: usize) -> u64 {
        match self.policy {
            Policy::RoundRobin => 1,
            _ => u64::from(self.targets[t].weight),
        }
    }

    /// What a connection is handed for target `t`.
    pub fn pick(&self, t: u32) -> Pick {
        Pick {
            target: t,
            head: self.targets[t as usize].head,
        }
    }

    /// The targets of host `h`.
    pub fn of_host(&self, h: usize) -> Vec<u32> {
        (0..self.targets.len() as u32)
            .filter(|&t| self.targets[t as usize].host == h)
            .collect()
    }

    /// Host `h`'s share of the requests: the sum of its targets' weights.
    pub fn host_weight(&self, h: usize) -> u64 {
        self.of_host(h)
            .iter()
            .map(|&t| self.weight(t as usize))
            .sum()
    }

    /// The host's cycle: target ids in smooth weighted round-robin order (nginx's), one
    /// entry per unit of weight, so that any stretch of it follows the weights closely.
    pub fn cycle(&self, h: usize) -> Vec<u32> {
        let ids = self.of_host(h);
        let w: Vec<i64> = ids
            .iter()
            .map(|&t| self.weight(t as usize) as i64)
            .collect();
        let total: i64 = w.iter().sum();
        let mut current = vec![0i64; ids.len()];
        (0..total)
            .map(|_| {
                for (c, wi) in current.iter_mut().zip(&w) {
                    *c += wi;
                }
                let best = (0..ids.len())
                    .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                    .expect("a host has a target");
                current[best] -= total;
                ids[best]
            })
            .collect()
    }

    /// A selector for host `h` in one thread: the cycle entered at `start` (the index of
    /// the thread's first request among the host's), or a generator seeded from the
    /// run's seed, the host and the thread.
    pub fn selector(&self, h: usize, thread: usize, start: u64) -> Selector {
        match self.policy {
            Policy::RoundRobin | Policy::Weighted => {
                let seq: Arc<[Pick]> = self.cycle(h).into_iter().map(|t| self.pick(t)).collect();
                let pos = (start % seq.len() as u64) as usize;
                Selector::Cycle { seq, pos }
            }
            Policy::Random { seed } => {
                let ids = self.of_host(h);
                let mut acc = 0;
                let cum = ids
                    .iter()
                    .map(|&t| {
                        acc += self.weight(t as usize);
                        acc
                    })
                    .collect();
                let mut state =
                    seed ^ ((h as u64) << 32) ^ (thread as u64).wrapping_mul(0x9e37_79b9);
                splitmix64(&mut state);
                Selector::Random {
                    state,
                    ids: ids.into_iter().map(|t| self.pick(t)).collect(),
                    cum,
                }
            }
        }
    }
}

/// Which request a connection is handed: its target, and whether it is a HEAD (whose
/// response has no body).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pick {
    pub target: u32,
    pub head: bool,
}

/// Picks the target of each new request of one host in one thread.
#[derive(Debug, Clone)]
pub enum Selector {
    Cycle {
        seq: Arc<[Pick]>,
        pos: usize,
    },
    Random {
        state: u64,
        ids: Arc<[Pick]>,
        cum: Vec<u64>,
    },
}

impl Selector {
    /// One target: every request goes to target 0.
    pub fn single() -> Selector {
        Selector::Cycle {
            seq: Arc::from([Pick::default()]),
            pos: 0,
        }
    }

    #[inline]
    pub fn choose(&mut self) -> Pick {
        match self {
            Selector::Cycle { seq, pos } => {
                let t = seq[*pos];
                *pos += 1;
                if *pos == seq.len() {
                    *pos = 0;
                }
                t
            }
            Selector::Random { state, ids, cum } => {
                let total = *cum.last().expect("a host has a target");
                // Multiply-shift maps 64 random bits onto 0..total without modulo bias
                // worth the name (total is at most 2^20).
                let x = ((u128::from(splitmix64(state)) * u128::from(total)) >> 64) as u64;
                ids[cum.partition_point(|&c| c <= x)]
            }
        }
    }
}

/// Mixes for other modules' tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// `n` GET targets on one host.
    pub fn mix(n: usize, policy: Policy) -> Mix {
        let items = (0..n)
            .map(|i| {
                let url = parse_url(&format!("http://127.0.0.1:1/{i}")).unwrap();
                let bytes = format!("GET /{i} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes();
                Item {
                    label: format!("GET /{i}"),
                    url,
                    bytes,
                    head: false,
                    weight: 1,
                }
            })
            .collect();
        Mix::new(items, policy).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, content: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("uring-load-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn vegeta_targets_with_headers_bodies_and_weights() {
        let body = tmp("body.json", b"{\"a\":1}");
        let text = format!(
            "# comment\nGET http://127.0.0.1:8080/a\nX-One: 1\n\nPOST http://127.0.0.1:8080/b weight=3\nContent-Type: application/json\n@{}\n\nHEAD http://[::1]:9000/c\nGET http://127.0.0.1:8080/d\n",
            body.display()
        );
        let f = tmp("t.txt", text.as_bytes());
        let w = parse_targets(&f).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(w[0].headers, [("X-One".to_string(), "1".to_string())]);
        assert_eq!((w[1].method.as_str(), w[1].weight), ("POST", 3));
        assert_eq!(w[1].body.as_deref(), Some(body.as_path()));
        assert_eq!(w[2].url.host, "::1");
        let mut cache = HashMap::new();
        let items = build_mix(&w, &[("X-All".into(), "y".into())], true, &mut cache).unwrap();
        let mix = Mix::new(items, Policy::Weighted).unwrap();
        assert_eq!(mix.hosts.len(), 2);
        assert_eq!(mix.targets[3].host, 0);
        assert!(mix.targets[2].head);
        let post = String::from_utf8(mix.targets[1].bytes.clone()).unwrap();
        assert!(
            post.starts_with("POST /b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"),
            "{post}"
        );
        assert!(
            post.contains("X-All: y\r\n") && post.contains("Content-Length: 7\r\n"),
            "{post}"
        );
        assert!(post.ends_with("\r\n\r\n{\"a\":1}"), "{post}");
        assert_eq!(mix.targets[1].label, "POST http://127.0.0.1:8080/b");
        // Requests are checked like raw ones: what we build, we would accept.
        for t in &mix.targets {
            assert_eq!(
                check_raw(&t.bytes).map_err(|e| e.1),
                Ok(t.head),
                "{}",
                t.label
            );
        }
    }

    #[test]
    fn bad_target_files_name_the_line() {
        for (text, line, needle) in [
            ("GET http://h/\nnot a header\n", 2, "bad header"),
            ("\n\nGET ftp://h/\n", 3, "expected a target"),
            ("GET http://h:0/\n", 1, "invalid port"),
            ("GET http://h/ weight=0\n", 1, "bad weight"),
            ("GET http://h/\n@b\nX: 1\n", 3, "ends a target"),
            ("X-Header: 1\n", 1, "expected a target"),
        ] {
            let f = tmp("bad.txt", text.as_bytes());
            let e = parse_targets(&f).unwrap_err().to_string();
            assert!(
                e.contains(&format!("line {line}:")) && e.contains(needle),
                "{text:?}: {e}"
            );
        }
        let f = tmp("empty.txt", b"# nothing\n\n");
        assert!(parse_targets(&f)
            .unwrap_err()
            .to_string()
            .contains("no target"));
        let f = tmp(
            "urls.txt",
            b"http://a/\n\n# c\nhttp://b:81/x weight=2\nhttp://c d/\n",
        );
        let e = parse_urls(&f, "GET").unwrap_err().to_string();
        assert!(e.contains("line 5:"), "{e}");
    }

    #[test]
    fn raw_requests_are_checked_with_their_line() {
        let ok: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ];
        for r in ok {
            assert_eq!(check_raw(r), Ok(false), "{}", String::from_utf8_lossy(r));
        }
        assert_eq!(check_raw(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(true));
        // A colon after a space in the value is fine; before the name's colon it is not.
        assert_eq!(
            check_raw(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x :y\r\n\r\n"),
            Ok(false)
        );
        assert_eq!(
            check_raw(b"GET / HTTP/1.1\r\nHost: a\r\nX-A : y\r\n\r\n").map_err(|e| e.0),
            Err(3)
        );
        let bad: &[(&[u8], usize, &str)] = &[
            (b"GET / HTTP/1.1\nHost: a\n\n", 1, "bare LF"),
            (b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 2, "bare LF"),
            (b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", 1, "HTTP/1.1"),
            (b"GET /\r\nHost: a\r\n\r\n", 1, "request line"),
            (b"GET / HTTP/1.1\r\nX: 1\r\n\r\n", 1, "Host"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 3, "Host"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", 3, "bad header"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\n", 3, "4 bytes follow"),
            (b"POST / HTTP/1.1\r\nHost: a\r\n\r\nabc", 4, "no Content-Length"),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                3,
                "Transfer-Encoding together",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                6,
                "ends before its last chunk",
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", 2, "empty line"),
            (b"", 1, "empty file"),
        ];
        for (r, line, needle) in bad {
            let (l, why) = check_raw(r).unwrap_err();
            assert!(
                l == *line && why.contains(needle),
                "{}: line {l}: {why}",
                String::from_utf8_lossy(r)
            );
        }
        let list = parse_raw_list("a.req,dir/b.req:weight=3").unwrap();
        assert_eq!(
            (list[1].path.to_str(), list[1].weight),
            (Some("dir/b.req"), 3)
        );
        assert!(parse_raw_list("a:weight=x").is_err());
    }

    fn mix_of(weights: &[u32], hosts: &[&str], policy: Policy) -> Mix {
        let items = weights
            .iter()
            .zip(hosts)
            .enumerate()
            .map(|(i, (&w, h))| {
                let url = parse_url(&format!("http://{h}/{i}")).unwrap();
                Item {
                    label: format!("t{i}"),
                    url,
                    bytes: vec![],
                    head: false,
                    weight: w,
                }
            })
            .collect();
        Mix::new(items, policy).unwrap()
    }

    #[test]
    fn cycles_follow_the_weights_closely() {
        let m = mix_of(&[1, 2, 5], &["a", "a", "a"], Policy::Weighted);
        let c = m.cycle(0);
        assert_eq!(c.len(), 8);
        // Any prefix holds each target within one of its share.
        for k in 1..=c.len() {
            for t in 0..3u32 {
                let got = c[..k].iter().filter(|&&x| x == t).count() as f64;
                let want = k as f64 * f64::from(m.targets[t as usize].weight) / 8.0;
                assert!(
                    (got - want).abs() < 1.0 + 1e-9,
                    "prefix {k} target {t}: {got} vs {want}"
                );
            }
        }
        let rr = mix_of(&[1, 2, 5], &["a", "b", "a"], Policy::RoundRobin);
        assert_eq!(rr.cycle(0), [0, 2]);
        assert_eq!(rr.cycle(1), [1]);
        let mut s = rr.selector(0, 0, 3);
        assert_eq!(
            [s.choose(), s.choose(), s.choose()].map(|p| p.target),
            [2, 0, 2]
        );
    }

    #[test]
    fn random_selection_is_seeded_and_weighted() {
        let m = mix_of(&[1, 3], &["a", "a"], Policy::Random { seed: 7 });
        let draw = |thread| {
            let mut s = m.selector(0, thread, 0);
            (0..4000).map(|_| s.choose().target).collect::<Vec<_>>()
        };
        assert_eq!(draw(0), draw(0), "same seed, same draws");
        assert_ne!(draw(0), draw(1), "threads draw apart");
        let ones = draw(0).iter().filter(|&&t| t == 1).count() as f64;
        // 3/4 of 4000 = 3000, sd = sqrt(4000 * 3/16) ~ 27.4; five of them.
        assert!((ones - 3000.0).abs() < 5.0 * 27.4, "{ones}");
    }
}
