//! The CGI variables (RFC 3875 section 4.1) an app server gets instead of an HTTP head,
//! built once from a parsed request for both binary upstream protocols (`uwsgi.rs`,
//! `fastcgi.rs`). The list, its order and every value follow Debian's nginx
//! (`/etc/nginx/uwsgi_params`; `fastcgi_params` after `SCRIPT_FILENAME`, the order of
//! `fastcgi.conf`, which lacks the params' `HTTP_HOST` line), so an app moved from behind
//! nginx sees the same environ; `tests/tests/proxy_appservers.rs` compares them with what
//! a real nginx sends for the same requests.
//!
//! Where we differ from nginx 1.22, on purpose:
//! - `HTTP_HOST` is `$host` plus the request's port, as nginx's own advice for 1.30 and
//!   later (Debian's params send `$host`, which loses the port; older ones the raw Host).
//!   The host part comes from an absolute-form target before the Host field, lowercased.
//! - Duplicate header fields become one variable, values joined by `, ` (`; ` for
//!   Cookie), as nginx does since 1.23.0; 1.22 sent one variable each, and an app's
//!   environ kept only one of them.
//! - `Transfer-Encoding` is not passed: the body reaches the app buffered, framed by
//!   `CONTENT_LENGTH` (nginx buffers too, and says so in `CONTENT_LENGTH`, but passes the
//!   client's field along).
//!
//! Like nginx (`ignore_invalid_headers on`, `underscores_in_headers off`), a field whose
//! name has anything but letters, digits and `-` is not passed: `X_User` would otherwise
//! become `HTTP_X_USER` beside a real `X-User` and let a client spoof it.

use std::fmt::Write as _;
use std::net::SocketAddr;

use base64::Engine as _;
use uring_common::http::{BodyFraming, RequestHead, Version};

/// Where the request came in: what nginx reads from the connection and its config.
#[derive(Debug, Clone, Copy)]
pub struct CgiContext<'a> {
    /// The client's address (`REMOTE_ADDR`, `REMOTE_PORT`).
    pub peer: SocketAddr,
    /// The listening socket's local address (`SERVER_ADDR`, `SERVER_PORT`).
    pub local: SocketAddr,
    /// The site's configured name (`SERVER_NAME`; nginx's `server_name`, not the Host).
    pub server_name: &'a [u8],
    /// The client connection is TLS (`HTTPS=on`, `REQUEST_SCHEME=https`).
    pub tls: bool,
    /// `DOCUMENT_ROOT` (nginx's `root`).
    pub document_root: &'a [u8],
}

/// Why a request cannot be turned into CGI variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgiError {
    /// The path has a malformed `%` escape, an escaped NUL, or `..` above the root: 400,
    /// as nginx answers.
    BadPath,
    /// The variables exceed what the protocol's length fields can carry (uwsgi: 64 KiB
    /// in all). 431: the client's fields are too large for this route, and the client
    /// is the one that can send fewer (nginx logs "request is too big" and answers 500,
    /// which blames the server for what the client sent).
    TooLarge,
}

impl CgiError {
    pub fn status(self) -> u16 {
        match self {
            CgiError::BadPath => 400,
            CgiError::TooLarge => 431,
        }
    }
}

impl std::fmt::Display for CgiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CgiError::BadPath => write!(f, "request path cannot be decoded (400)"),
            CgiError::TooLarge => write!(
                f,
                "request variables too large for the upstream protocol (431)"
            ),
        }
    }
}

impl std::error::Error for CgiError {}

/// Which parameter list: nginx's `uwsgi_params`, or `fastcgi.conf` (which is
/// `fastcgi_params` with `SCRIPT_FILENAME` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour<'a> {
    Uwsgi,
    Fastcgi { script: Script<'a> },
}

/// How `SCRIPT_FILENAME` is found (a route setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script<'a> {
    /// The directory the decoded path is appended to (nginx's
    /// `$document_root$fastcgi_script_name`).
    Root(&'a [u8]),
    /// One script answers every path (a front controller such as `index.php`).
    Fixed(&'a [u8]),
}

/// The request target's parts as nginx names them: `$request_uri` (the target, without
/// scheme and authority for absolute-form), the raw path before `?`, `$args`.
struct Target<'b> {
    request_uri: &'b str,
    path: &'b str,
    query: &'b str,
    authority: Option<&'b str>,
}

fn split_target(target: &str) -> Target<'_> {
    let mut authority = None;
    let mut request_uri = target;
    if let Some(i) = target.find("://") {
        if target[..i]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            let rest = &target[i + 3..];
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            authority = Some(&rest[..end]);
            request_uri = &rest[end..];
        }
    }
    let (path, query) = match request_uri.split_once('?') {
        Some((p, q)) => (p, q),
        None => (request_uri, ""),
    };
    Target {
        request_uri,
        path,
        query,
        authority,
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// nginx's `$document_uri` (= `$uri`) of a raw path: `%XX` decoded, then `.` and `..`
/// segments resolved and runs of `/` merged (nginx decodes first, so `%2e%2e` climbs and
/// `%2F` separates). An empty path (absolute-form without one) is `/`.
pub fn document_uri(raw: &str, out: &mut Vec<u8>) -> Result<(), CgiError> {
    let raw = raw.as_bytes();
    if !raw.is_empty() && raw[0] != b'/' {
        return Err(CgiError::BadPath);
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = raw.get(i + 1).copied().and_then(hex);
            let lo = raw.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(0), Some(0)) | (None, _) | (_, None) => return Err(CgiError::BadPath),
                (Some(h), Some(l)) => decoded.push(h << 4 | l),
            }
            i += 3;
        } else {
            decoded.push(raw[i]);
            i += 1;
        }
    }
    let start = out.len();
    out.push(b'/');
    let mut ends_in_dir = true;
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" => {}
            b"." => ends_in_dir = true,
            b".." => {
                if out.len() == start + 1 {
                    return Err(CgiError::BadPath);
                }
                // Drop the last segment and its slash, keep the one before it.
                out.pop();
                while out.len() > start + 1 && out[out.len() - 1] != b'/' {
                    out.pop();
                }
                ends_in_dir = true;
            }
            seg => {
                if out[out.len() - 1] != b'/' {
                    out.push(b'/');
                }
                out.extend_from_slice(seg);
                ends_in_dir = false;
            }
        }
    }
    // A trailing `/` (or `/.`, `/..`) names a directory: keep the slash.
    let raw_dir = decoded.is_empty() || decoded.ends_with(b"/");
    if (raw_dir || ends_in_dir) && out[out.len() - 1] != b'/' {
        out.push(b'/');
    }
    Ok(())
}

/// nginx's `$host` with the request's port: the absolute-form target's authority, else
/// the Host field, else the server name; the host part lowercased.
fn host_with_port(authority: Option<&[u8]>, server_name: &[u8], out: &mut Vec<u8>) {
    let Some(auth) = authority.filter(|a| !a.is_empty()) else {
        out.extend_from_slice(server_name);
        return;
    };
    // userinfo@ is not part of the host.
    let auth = match auth.iter().rposition(|&b| b == b'@') {
        Some(at) => &auth[at + 1..],
        None => auth,
    };
    let host_end = if auth.first() == Some(&b'[') {
        auth.iter()
            .position(|&b| b == b']')
            .map_or(auth.len(), |i| i + 1)
    } else {
        auth.iter().position(|&b| b == b':').unwrap_or(auth.len())
    };
    let (host, port) = auth.split_at(host_end);
    // nginx drops a trailing dot of the host name.
    let host = host.strip_suffix(b".").unwrap_or(host);
    out.extend(host.iter().map(u8::to_ascii_lowercase));
    if port.len() > 1 && port[0] == b':' {
        out.extend_from_slice(port);
    }
}

/// nginx's `$remote_user`: the user name of a Basic `Authorization`, else empty.
fn remote_user(head: &RequestHead<'_, '_>) -> Vec<u8> {
    let Some(auth) = head.header("authorization") else {
        return Vec::new();
    };
    let auth = auth.trim_ascii();
    if auth.len() < 6 || !auth[..6].eq_ignore_ascii_case(b"basic ") {
        return Vec::new();
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth[6..].trim_ascii())
    else {
        return Vec::new();
    };
    match decoded.iter().position(|&b| b == b':') {
        Some(colon) => decoded[..colon].to_vec(),
        None => Vec::new(),
    }
}

/// `HTTP_` + the field name upper-cased with `-` as `_`, or None for a name nginx would
/// not pass (see the module text).
fn http_var_name(name: &str, out: &mut Vec<u8>) -> bool {
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return false;
    }
    out.clear();
    out.extend_from_slice(b"HTTP_");
    out.extend(name.bytes().map(|b| match b {
        b'-' => b'_',
        b => b.to_ascii_uppercase(),
    }));
    true
}

/// Calls `each(name, value)` for every variable, in nginx's order: the parameter list of
/// `flavour`, then `HTTP_*` for the request's fields. `body_len` is the buffered body's
/// length (`CONTENT_LENGTH`; empty when the request had no body framing at all, as
/// nginx's `$content_length` is).
pub fn for_each_var(
    head: &RequestHead<'_, '_>,
    ctx: &CgiContext<'_>,
    body_len: u64,
    flavour: Flavour<'_>,
    each: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<(), CgiError> {
    let target = split_target(head.target);
    let mut uri = Vec::with_capacity(target.path.len() + 1);
    document_uri(target.path, &mut uri)?;
    let mut num = String::new();
    let mut text = |f: &mut dyn FnMut(&mut String)| -> Vec<u8> {
        num.clear();
        f(&mut num);
        num.as_bytes().to_vec()
    };
    // nginx's `$content_length`: the client's field, so a `Content-Length: 0` is "0"
    // (the codec frames it as no body at all); empty only without any body framing.
    let framed = head.framing != BodyFraming::None || head.header("content-length").is_some();
    let content_length = match framed {
        false => Vec::new(),
        true => text(&mut |s| {
            let _ = write!(s, "{body_len}");
        }),
    };
    let remote_addr = text(&mut |s| {
        let _ = write!(s, "{}", ctx.peer.ip());
    });
    let remote_port = text(&mut |s| {
        let _ = write!(s, "{}", ctx.peer.port());
    });
    let server_addr = text(&mut |s| {
        let _ = write!(s, "{}", ctx.local.ip());
    });
    let server_port = text(&mut |s| {
        let _ = write!(s, "{}", ctx.local.port());
    });
    let protocol: &[u8] = match head.version {
        Version::Http10 => b"HTTP/1.0",
        Version::Http11 => b"HTTP/1.1",
        // As nginx sets SERVER_PROTOCOL for an HTTP/2 request.
        Version::Http2 => b"HTTP/2.0",
    };
    let scheme: &[u8] = if ctx.tls { b"https" } else { b"http" };
    let content_type = head.header("content-type").unwrap_or_default();
    let mut host = Vec::new();
    host_with_port(
        target.authority.map(str::as_bytes).or(head.host),
        ctx.server_name,
        &mut host,
    );
    match flavour {
        Flavour::Uwsgi => {
            each(b"QUERY_STRING", target.query.as_bytes());
            each(b"REQUEST_METHOD", head.method.as_bytes());
            each(b"CONTENT_TYPE", content_type);
            each(b"CONTENT_LENGTH", &content_length);
            each(b"REQUEST_URI", target.request_uri.as_bytes());
            each(b"PATH_INFO", &uri);
            each(b"DOCUMENT_ROOT", ctx.document_root);
            each(b"SERVER_PROTOCOL", protocol);
            each(b"REQUEST_SCHEME", scheme);
            if ctx.tls {
                each(b"HTTPS", b"on");
            }
            each(b"REMOTE_ADDR", &remote_addr);
            each(b"REMOTE_PORT", &remote_port);
            each(b"SERVER_PORT", &server_port);
            each(b"SERVER_NAME", ctx.server_name);
            each(b"HTTP_HOST", &host);
        }
        Flavour::Fastcgi { script } => {
            let mut filename = Vec::new();
            match script {
                Script::Root(dir) => {
                    filename.extend_from_slice(dir);
                    filename.extend_from_slice(&uri);
                }
                Script::Fixed(path) => filename.extend_from_slice(path),
            }
            let software = text(&mut |s| {
                let _ = write!(
                    s,
                    "{}/{}",
                    String::from_utf8_lossy(crate::response::SERVER_NAME),
                    env!("CARGO_PKG_VERSION")
                );
            });
            each(b"SCRIPT_FILENAME", &filename);
            each(b"QUERY_STRING", target.query.as_bytes());
            each(b"REQUEST_METHOD", head.method.as_bytes());
            each(b"CONTENT_TYPE", content_type);
            each(b"CONTENT_LENGTH", &content_length);
            each(b"SCRIPT_NAME", &uri);
            each(b"REQUEST_URI", target.request_uri.as_bytes());
            each(b"DOCUMENT_URI", &uri);
            each(b"DOCUMENT_ROOT", ctx.document_root);
            each(b"SERVER_PROTOCOL", protocol);
            each(b"REQUEST_SCHEME", scheme);
            if ctx.tls {
                each(b"HTTPS", b"on");
            }
            each(b"GATEWAY_INTERFACE", b"CGI/1.1");
            each(b"SERVER_SOFTWARE", &software);
            each(b"REMOTE_ADDR", &remote_addr);
            each(b"REMOTE_PORT", &remote_port);
            each(b"REMOTE_USER", &remote_user(head));
            each(b"SERVER_ADDR", &server_addr);
            each(b"SERVER_PORT", &server_port);
            each(b"SERVER_NAME", ctx.server_name);
            each(b"REDIRECT_STATUS", b"200");
            each(b"HTTP_HOST", &host);
        }
    }
    let mut name = Vec::with_capacity(64);
    let mut joined = Vec::new();
    for (i, h) in head.headers.iter().enumerate() {
        let skip = h.name.eq_ignore_ascii_case("host")
            || h.name.eq_ignore_ascii_case("transfer-encoding")
            || head.headers[..i]
                .iter()
                .any(|e| e.name.eq_ignore_ascii_case(h.name));
        if skip || !http_var_name(h.name, &mut name) {
            continue;
        }
        let mut later = head.headers[i + 1..]
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(h.name))
            .peekable();
        if later.peek().is_none() {
            each(&name, h.value);
            continue;
        }
        let sep: &[u8] = if h.name.eq_ignore_ascii_case("cookie") {
            b"; "
        } else {
            b", "
        };
        joined.clear();
        joined.extend_from_slice(h.value);
        for e in later {
            joined.extend_from_slice(sep);
            joined.extend_from_slice(e.value);
        }
        each(&name, &joined);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};

    pub(crate) fn ctx() -> CgiContext<'static> {
        CgiContext {
            peer: "10.0.0.7:51234".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
            server_name: b"example.org",
            tls: false,
            document_root: b"/srv/www",
        }
    }

    /// The variables of `raw` as owned (name, value) strings.
    pub(crate) fn vars_of(
        raw: &[u8],
        ctx: &CgiContext<'_>,
        flavour: Flavour<'_>,
    ) -> Result<Vec<(String, String)>, CgiError> {
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) = parse_request(raw, &mut storage, &Limits::default())
        else {
            panic!("parse {}", String::from_utf8_lossy(raw));
        };
        let body_len = (raw.len() - head.head_len) as u64;
        let mut v = Vec::new();
        for_each_var(&head, ctx, body_len, flavour, &mut |n, val| {
            v.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(val).into_owned(),
            ))
        })?;
        Ok(v)
    }

    pub(crate) fn get<'a>(v: &'a [(String, String)], name: &str) -> Option<&'a str> {
        v.iter().find(|(n, _)| n == name).map(|(_, x)| x.as_str())
    }

    fn uri(raw: &str) -> Result<String, CgiError> {
        let mut out = Vec::new();
        document_uri(raw, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn document_uri_decodes_and_normalises_as_nginx() {
        for (raw, want) in [
            ("/", "/"),
            ("", "/"),
            ("/a/b", "/a/b"),
            ("/a//b///c", "/a/b/c"),
            ("/a/./b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/b/../c", "/a/c"),
            ("/a/.", "/a/"),
            ("/%7Euser/x%20y", "/~user/x y"),
            ("/a%2Fb", "/a/b"),
            ("/a/%2e%2E/b", "/b"),
            ("/%25", "/%"),
            ("/caf%C3%A9", "/café"),
            ("/.hidden/..x", "/.hidden/..x"),
        ] {
            assert_eq!(uri(raw).as_deref(), Ok(want), "{raw}");
        }
        for bad in [
            "/..", "/a/../..", "/%", "/%4", "/%zz", "/a%00b", "*", "/%2e%2e",
        ] {
            assert_eq!(uri(bad), Err(CgiError::BadPath), "{bad}");
        }
    }

    #[test]
    fn host_keeps_the_port_and_prefers_the_absolute_target() {
        let h = |auth: Option<&str>| {
            let mut out = Vec::new();
            host_with_port(auth.map(str::as_bytes), b"srv", &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(h(Some("Example.ORG:8080")), "example.org:8080");
        assert_eq!(h(Some("Example.ORG.")), "example.org");
        assert_eq!(h(Some("[::1]:81")), "[::1]:81");
        assert_eq!(h(Some("u@h:1")), "h:1");
        assert_eq!(h(Some("")), "srv");
        assert_eq!(h(None), "srv");
        let v = vars_of(
            b"GET http://Other.example:9/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n",
            &ctx(),
            Flavour::Uwsgi,
        )
        .unwrap();
        assert_eq!(get(&v, "HTTP_HOST"), Some("other.example:9"));
        assert_eq!(get(&v, "REQUEST_URI"), Some("/p?q"));
        assert_eq!(get(&v, "QUERY_STRING"), Some("q"));
    }

    #[test]
    fn uwsgi_params_in_nginx_order() {
        let raw = b"POST /app/%7Ex/../y?a=1&b=%20 HTTP/1.1\r\nHost: Example.org:8080\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Custom-Thing: v\r\nX_Under: no\r\nAccept: a\r\nAccept: b\r\nCookie: c=1\r\nCookie: d=2\r\n\r\nhello";
        let v = vars_of(raw, &ctx(), Flavour::Uwsgi).unwrap();
        let want: Vec<(&str, &str)> = vec![
            ("QUERY_STRING", "a=1&b=%20"),
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "text/plain"),
            ("CONTENT_LENGTH", "5"),
            ("REQUEST_URI", "/app/%7Ex/../y?a=1&b=%20"),
            ("PATH_INFO", "/app/y"),
            ("DOCUMENT_ROOT", "/srv/www"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "10.0.0.7"),
            ("REMOTE_PORT", "51234"),
            ("SERVER_PORT", "8080"),
            ("SERVER_NAME", "example.org"),
            ("HTTP_HOST", "example.org:8080"),
            ("HTTP_CONTENT_TYPE", "text/plain"),
            ("HTTP_CONTENT_LENGTH", "5"),
            ("HTTP_X_CUSTOM_THING", "v"),
            ("HTTP_ACCEPT", "a, b"),
            ("HTTP_COOKIE", "c=1; d=2"),
        ];
        let got: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn fastcgi_params_with_script_filename_and_tls() {
        let mut c = ctx();
        c.tls = true;
        let raw = b"GET /index.php HTTP/1.0\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n";
        let v = vars_of(
            raw,
            &c,
            Flavour::Fastcgi {
                script: Script::Root(b"/srv/www"),
            },
        )
        .unwrap();
        assert_eq!(
            v[0],
            ("SCRIPT_FILENAME".into(), "/srv/www/index.php".into())
        );
        assert_eq!(get(&v, "HTTPS"), Some("on"));
        assert_eq!(get(&v, "REQUEST_SCHEME"), Some("https"));
        assert_eq!(get(&v, "CONTENT_LENGTH"), Some(""));
        assert_eq!(get(&v, "CONTENT_TYPE"), Some(""));
        assert_eq!(get(&v, "REMOTE_USER"), Some("alice"));
        assert_eq!(get(&v, "SERVER_PROTOCOL"), Some("HTTP/1.0"));
        assert_eq!(get(&v, "SCRIPT_NAME"), Some("/index.php"));
        assert_eq!(get(&v, "GATEWAY_INTERFACE"), Some("CGI/1.1"));
        assert_eq!(get(&v, "HTTP_HOST"), Some("example.org"));
        assert_eq!(
            get(&v, "HTTP_AUTHORIZATION"),
            Some("Basic YWxpY2U6c2VjcmV0")
        );
        let fixed = vars_of(
            b"GET /any/path HTTP/1.1\r\nHost: h\r\n\r\n",
            &c,
            Flavour::Fastcgi {
                script: Script::Fixed(b"/srv/app.php"),
            },
        )
        .unwrap();
        assert_eq!(get(&fixed, "SCRIPT_FILENAME"), Some("/srv/app.php"));
        assert_eq!(get(&fixed, "REMOTE_USER"), Some(""));
    }

    #[test]
    fn a_chunked_body_is_passed_with_its_length() {
        let raw = b"PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let v = vars_of(raw, &ctx(), Flavour::Uwsgi).unwrap();
        assert_eq!(get(&v, "HTTP_TRANSFER_ENCODING"), None);
        assert_eq!(get(&v, "CONTENT_LENGTH"), Some("5"));
    }

    #[test]
    fn a_zero_content_length_is_passed_as_nginx_passes_it() {
        for (raw, want) in [
            (
                &b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"[..],
                "0",
            ),
            (b"GET /e HTTP/1.1\r\nHost: h\r\n\r\n", ""),
        ] {
            for flavour in [
                Flavour::Uwsgi,
                Flavour::Fastcgi {
                    script: Script::Root(b"/"),
                },
            ] {
                let v = vars_of(raw, &ctx(), flavour).unwrap();
                assert_eq!(get(&v, "CONTENT_LENGTH"), Some(want));
            }
        }
    }

    #[test]
    fn bad_paths_are_400() {
        let e = vars_of(
            b"GET /a/../../etc HTTP/1.1\r\nHost: h\r\n\r\n",
            &ctx(),
            Flavour::Uwsgi,
        );
        assert_eq!(e, Err(CgiError::BadPath));
        assert_eq!(CgiError::BadPath.status(), 400);
    }
}
