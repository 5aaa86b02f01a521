//! The target of a run: the URL the user typed (scheme, host, port, path and query),
//! resolved once at start, or a Unix socket path.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// What is wrong with the target the user gave.
#[derive(Debug)]
pub enum TargetError {
    /// The URL does not parse; `why` says which part.
    BadUrl { url: String, why: &'static str },
    /// The host name does not resolve.
    Resolve { host: String, err: std::io::Error },
    /// The host name resolves to nothing.
    NoAddress { host: String },
    /// `--unix-socket` names a path a socket address cannot hold.
    UnixPath { path: PathBuf, err: std::io::Error },
    /// An https:// host that cannot be a TLS server name.
    TlsServerName { host: String },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::BadUrl { url, why } => write!(f, "bad URL '{url}': {why}"),
            TargetError::Resolve { host, err } => write!(f, "cannot resolve host '{host}': {err}"),
            TargetError::NoAddress { host } => write!(f, "host '{host}' has no address"),
            TargetError::UnixPath { path, err } => {
                write!(f, "bad unix socket path {}: {err}", path.display())
            }
            TargetError::TlsServerName { host } => {
                write!(f, "'{host}' is not a valid TLS server name")
            }
        }
    }
}

impl std::error::Error for TargetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TargetError::Resolve { err, .. } | TargetError::UnixPath { err, .. } => Some(err),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Host name or IP literal, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
    /// The value of the `Host` header: host, plus `:port` unless the scheme's default.
    pub authority: String,
}

/// Where the connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl Address {
    pub fn to_sockaddr(&self) -> Result<socket2::SockAddr, TargetError> {
        match self {
            Address::Inet(a) => Ok(socket2::SockAddr::from(*a)),
            Address::Unix(p) => socket2::SockAddr::unix(p).map_err(|err| TargetError::UnixPath {
                path: p.clone(),
                err,
            }),
        }
    }
}

impl Address {
    /// The address as the kernel takes it (for the driver, which keeps it for CONNECT).
    pub fn to_storage(&self) -> Result<(libc::sockaddr_storage, libc::socklen_t), TargetError> {
        let addr = self.to_sockaddr()?;
        // SAFETY: all-zero is a valid sockaddr_storage; a SockAddr is at most its size, and
        // `addr.len()` bytes of it are a valid socket address.
        unsafe {
            let mut storage: libc::sockaddr_storage = std::mem::zeroed();
            std::ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
                addr.len() as usize,
            );
            Ok((storage, addr.len()))
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Inet(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

pub fn parse_url(s: &str) -> Result<Url, TargetError> {
    let bad = |why: &'static str| TargetError::BadUrl {
        url: s.to_string(),
        why,
    };
    let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = s.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err(bad(
            "it must start with http:// or https:// (example: http://127.0.0.1:8080/)",
        ));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(bad("user information is not supported"));
    }
    let default_port = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let (host, port_str) = if let Some(after) = authority.strip_prefix('[') {
        let close = after
            .find(']')
            .ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
        let host = &after[..close];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("invalid IPv6 address between brackets"));
        }
        let rest = &after[close + 1..];
        match rest.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if rest.is_empty() => (host, None),
            None => return Err(bad("unexpected text after ']'")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad(
            "spaces and control characters are not allowed in the host",
        ));
    }
    if host.contains(':') && !authority.starts_with('[') {
        return Err(bad(
            "an IPv6 address must be written in brackets, e.g. http://[::1]:8080/",
        ));
    }
    let port = match port_str {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("invalid port")),
        },
    };
    let tail = tail.split('#').next().unwrap_or("");
    let target = if tail.is_empty() {
        "/".to_string()
    } else if tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_string()
    };
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("spaces and control characters must be percent-encoded"));
    }
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let authority = if port == default_port {
        bracketed
    } else {
        format!("{bracketed}:{port}")
    };
    Ok(Url {
        scheme,
        host: host.to_string(),
        port,
        target,
        authority,
    })
}

/// Resolve the host once. When a name has several addresses (`localhost` is often both
/// `::1` and `127.0.0.1`), the first one that accepts a TCP connection within `probe`
/// is used for every connection, as wrk does; if none does, the first one.
pub fn resolve(url: &Url, probe: std::time::Duration) -> Result<SocketAddr, TargetError> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, url.port));
    }
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|err| TargetError::Resolve {
            host: url.host.clone(),
            err,
        })?
        .collect();
    let first = *addrs.first().ok_or_else(|| TargetError::NoAddress {
        host: url.host.clone(),
    })?;
    if addrs.len() == 1 {
        return Ok(first);
    }
    Ok(addrs
        .iter()
        .copied()
        .find(|a| std::net::TcpStream::connect_timeout(a, probe).is_ok())
        .unwrap_or(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:8000/").unwrap();
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 8000));
        assert_eq!(u.target, "/");
        assert_eq!(u.authority, "127.0.0.1:8000");

        let u = parse_url("https://example.test/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.port, 443);
        assert_eq!(u.target, "/a/b?x=1&y=2");
        assert_eq!(u.authority, "example.test");

        let u = parse_url("http://[::1]:9000?q").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.target, "/?q");
        assert_eq!(u.authority, "[::1]:9000");

        let u = parse_url("http://localhost").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/"));
    }

    #[test]
    fn bad_urls() {
        for s in [
            "ftp://x/",
            "127.0.0.1:80/",
            "http://",
            "http://:80/",
            "http://host:0/",
            "http://host:99999/",
            "http://[::1/",
            "http://::1/",
            "http://[zz]/",
            "http://h/a b",
            "http://c d/",
            "http://tab\there/",
            "http://u@h/",
        ] {
            assert!(parse_url(s).is_err(), "{s}");
        }
    }

    #[test]
    fn resolves_literals_and_localhost() {
        let probe = std::time::Duration::from_millis(100);
        let u = parse_url("http://[::1]:81/").unwrap();
        assert_eq!(resolve(&u, probe).unwrap(), "[::1]:81".parse().unwrap());
        let u = parse_url("http://localhost:82/").unwrap();
        assert!(resolve(&u, probe).unwrap().ip().is_loopback());
    }
}
