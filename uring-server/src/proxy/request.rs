//! A client's request as the proxy takes it over: built here, from the parsed head and
//! the buffered body, into the bytes the upstream gets (`headers.rs`), plus what decides
//! how the response is framed for the client. The client connection hands over only the
//! head, the body and who the client is; it never writes upstream bytes itself.

use uring_common::http::{RequestHead, Version};

pub use super::headers::ClientInfo;
use super::headers::{is_idempotent, write_upstream_request};
use super::upstream::ClientSide;
use crate::config::UpstreamRoute;

/// A complete request (head and whole body, de-chunked) for an upstream, in the form the
/// upstream gets it.
#[derive(Debug)]
pub struct Forward {
    /// The upstream's index, as the handler routed it (checked by the machine).
    pub upstream: usize,
    pub request: Vec<u8>,
    pub idempotent: bool,
    pub side: ClientSide,
}

impl Forward {
    /// `keep_alive`: the client's connection may carry another request after this one.
    pub fn new(
        route: UpstreamRoute,
        head: &RequestHead<'_, '_>,
        body: &[u8],
        client: ClientInfo,
        keep_alive: bool,
    ) -> Forward {
        let mut request = Vec::new();
        write_upstream_request(head, body, client, route.trust_forwarded, &mut request);
        Forward {
            upstream: route.upstream,
            request,
            idempotent: is_idempotent(head.method),
            side: ClientSide {
                head_only: head.method == "HEAD",
                http10: head.version == Version::Http10,
                keep_alive,
            },
        }
    }
}
