//! A client's request as the proxy takes it over: built here, from the parsed head and
//! the buffered body, into the bytes the upstream gets (`headers.rs`), plus what decides
//! how the response is framed for the client. The client connection hands over only the
//! head, the body and who the client is; it never writes upstream bytes itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;

use uring_common::http::{RequestHead, Version};

use super::cgi::{CgiContext, CgiError, Script};
pub use super::headers::ClientInfo;
use super::headers::{is_idempotent, write_upstream_request};
use super::{fastcgi, uwsgi};
use crate::config::{FastcgiScript, UpstreamProtocol, UpstreamRoute};

/// What the client asked, which decides how the response is framed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientSide {
    pub head_only: bool,
    pub http10: bool,
    pub keep_alive: bool,
}

/// A complete request (head and whole body, de-chunked) for an upstream, in the form the
/// upstream gets it.
#[derive(Debug)]
pub struct Forward {
    /// The route's index, as the handler routed it (checked by the machine).
    pub upstream: usize,
    /// The hash of the request's balancing key (`hash:` routes; `None`: round-robin).
    pub key: Option<u64>,
    pub request: Vec<u8>,
    pub idempotent: bool,
    /// The upstream connection may serve another request after this one's response
    /// (uWSGI closes after each).
    pub reuse: bool,
    /// The response comes as FastCGI records, not HTTP.
    pub fastcgi: bool,
    /// The request asks the upstream to switch protocols (`Upgrade`, forwarded): a 101
    /// makes its connection a tunnel (`tunnel.rs`). Never retried, never pooled.
    pub upgrade: bool,
    pub side: ClientSide,
}

impl Forward {
    /// `keep_alive`: the client's connection may carry another request after this one.
    /// An error is the client's to answer (its status): nothing goes upstream.
    pub fn new(
        route: UpstreamRoute,
        head: &RequestHead<'_, '_>,
        body: &[u8],
        client: ClientInfo,
        keep_alive: bool,
    ) -> Result<Forward, CgiError> {
        let mut request = Vec::new();
        let mut upgrade = false;
        // A unix socket peer has no IP address: CGI's convention is an empty REMOTE_ADDR;
        // 0.0.0.0:0 is what the codecs can carry.
        let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut ctx = CgiContext {
            peer: client.peer_addr.unwrap_or(unknown),
            local: client.local.unwrap_or(unknown),
            server_name: b"",
            tls: client.tls,
            document_root: b"",
        };
        match route.protocol {
            UpstreamProtocol::Http => {
                upgrade =
                    write_upstream_request(head, body, client, route.trust_forwarded, &mut request)
            }
            UpstreamProtocol::Uwsgi => uwsgi::write_request(head, &ctx, body, &mut request)?,
            UpstreamProtocol::Fastcgi => {
                let script = match &route.fastcgi {
                    Some(FastcgiScript::Root(dir)) => {
                        ctx.document_root = dir.as_os_str().as_bytes();
                        Script::Root(ctx.document_root)
                    }
                    Some(FastcgiScript::Fixed(file)) => {
                        ctx.document_root = file.parent().map_or(b"", |d| d.as_os_str().as_bytes());
                        Script::Fixed(file.as_os_str().as_bytes())
                    }
                    None => Script::Root(b""),
                };
                fastcgi::write_request(head, &ctx, script, body, &mut request)?;
            }
        }
        Ok(Forward {
            upstream: route.upstream,
            key: route.key,
            request,
            idempotent: is_idempotent(head.method) && !upgrade,
            reuse: route.protocol != UpstreamProtocol::Uwsgi && !upgrade,
            fastcgi: route.protocol == UpstreamProtocol::Fastcgi,
            upgrade,
            side: ClientSide {
                head_only: head.method == "HEAD",
                http10: head.version == Version::Http10,
                keep_alive,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::fastcgi::{parse_params, parse_records, BEGIN_REQUEST, PARAMS};
    use std::path::Path;
    use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};

    fn forward(script: FastcgiScript) -> Forward {
        let raw = b"GET /app/x.php?a=1 HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) = parse_request(raw, &mut storage, &Limits::default())
        else {
            panic!("parse");
        };
        let route = UpstreamRoute {
            protocol: UpstreamProtocol::Fastcgi,
            fastcgi: Some(script),
            ..UpstreamRoute::default()
        };
        let client = ClientInfo {
            peer_addr: "10.0.0.7:4000".parse().ok(),
            local: "10.0.0.1:80".parse().ok(),
            ..ClientInfo::default()
        };
        Forward::new(route, &head, b"", client, true).unwrap()
    }

    fn param(f: &Forward, name: &str) -> String {
        let records = parse_records(&f.request).unwrap();
        assert_eq!(records[0].0, BEGIN_REQUEST);
        let params = parse_params(records[1].2).unwrap();
        assert_eq!(records[1].0, PARAMS);
        let (_, v) = params.iter().find(|(n, _)| *n == name.as_bytes()).unwrap();
        String::from_utf8(v.to_vec()).unwrap()
    }

    #[test]
    fn a_fastcgi_route_names_its_script() {
        let f = forward(FastcgiScript::Root(Path::new("/srv/www").into()));
        assert!(f.fastcgi && f.reuse);
        assert_eq!(param(&f, "SCRIPT_FILENAME"), "/srv/www/app/x.php");
        assert_eq!(param(&f, "DOCUMENT_ROOT"), "/srv/www");
        assert_eq!(param(&f, "REMOTE_ADDR"), "10.0.0.7");
        assert_eq!(param(&f, "SERVER_PORT"), "80");
        let f = forward(FastcgiScript::Fixed(Path::new("/srv/app/index.php").into()));
        assert_eq!(param(&f, "SCRIPT_FILENAME"), "/srv/app/index.php");
        assert_eq!(param(&f, "DOCUMENT_ROOT"), "/srv/app");
        assert_eq!(param(&f, "REQUEST_URI"), "/app/x.php?a=1");
    }
}
