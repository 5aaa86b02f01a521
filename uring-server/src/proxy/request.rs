//! A client's request as the proxy takes it over: built here, from the parsed head and
//! the buffered body, into the bytes the upstream gets (`headers.rs`), plus what decides
//! how the response is framed for the client. The client connection hands over only the
//! head, the body and who the client is; it never writes upstream bytes itself.

use std::net::{Ipv4Addr, SocketAddr};

use uring_common::http::{RequestHead, Version};

use super::cgi::{CgiContext, CgiError};
pub use super::headers::ClientInfo;
use super::headers::{is_idempotent, write_upstream_request};
use super::upstream::ClientSide;
use super::uwsgi;
use crate::config::{UpstreamProtocol, UpstreamRoute};

/// A complete request (head and whole body, de-chunked) for an upstream, in the form the
/// upstream gets it.
#[derive(Debug)]
pub struct Forward {
    /// The upstream's index, as the handler routed it (checked by the machine).
    pub upstream: usize,
    pub request: Vec<u8>,
    pub idempotent: bool,
    /// The upstream connection may serve another request after this one's response
    /// (uWSGI closes after each).
    pub reuse: bool,
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
        match route.protocol {
            UpstreamProtocol::Http => {
                write_upstream_request(head, body, client, route.trust_forwarded, &mut request)
            }
            UpstreamProtocol::Uwsgi => {
                // A unix socket peer has no IP address: CGI's convention is an empty
                // REMOTE_ADDR; 0.0.0.0:0 is what the codec can carry.
                let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
                let ctx = CgiContext {
                    peer: client.peer_addr.unwrap_or(unknown),
                    local: client.local.unwrap_or(unknown),
                    server_name: b"",
                    tls: client.tls,
                    document_root: b"",
                };
                uwsgi::write_request(head, &ctx, body, &mut request)?;
            }
        }
        Ok(Forward {
            upstream: route.upstream,
            request,
            idempotent: is_idempotent(head.method),
            reuse: route.protocol == UpstreamProtocol::Http,
            side: ClientSide {
                head_only: head.method == "HEAD",
                http10: head.version == Version::Http10,
                keep_alive,
            },
        })
    }
}
