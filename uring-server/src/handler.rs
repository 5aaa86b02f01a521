//! The application-facing side of the server: a synchronous per-core [`Handler`] gets a
//! zero-copy [`Request`] view (borrowing the receive buffer) and answers through a
//! [`ResponseWriter`] that writes straight into the connection's send buffer.
//!
//! Each worker thread owns its own handler instance (cloned from the one given to the
//! builder), so handlers may keep per-core state without locks.

use std::fs::File;

use uring_common::http::{serialize, RequestHead, Version};

use crate::static_files::StaticFiles;

/// A request as the handler sees it. Every slice borrows the connection's receive buffer
/// (or the kernel buffer the bytes arrived in); nothing was copied to build it.
pub struct Request<'a> {
    pub(crate) head: &'a RequestHead<'a, 'a>,
    pub(crate) body: &'a [u8],
}

impl<'a> Request<'a> {
    pub fn method(&self) -> &'a str {
        self.head.method
    }

    /// The full request target, query included.
    pub fn target(&self) -> &'a str {
        self.head.target
    }

    /// The target up to `?`.
    pub fn path(&self) -> &'a str {
        match self.head.target.find('?') {
            Some(i) => &self.head.target[..i],
            None => self.head.target,
        }
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.head
            .target
            .find('?')
            .map(|i| &self.head.target[i + 1..])
    }

    pub fn version(&self) -> Version {
        self.head.version
    }

    /// First value of the named header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.head.header(name)
    }

    /// All header fields in the order received.
    pub fn headers(&self) -> &'a [httparse::Header<'a>] {
        self.head.headers
    }

    /// The request body, complete and de-chunked (empty when there was none). Bounded by
    /// `Limits::max_body_bytes`.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    pub fn is_head(&self) -> bool {
        self.head.method == "HEAD"
    }

    /// Whether the client allows keeping the connection open.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive
    }
}

/// A file body the worker streams in bounded chunks after the head.
#[derive(Debug)]
pub struct FileBody {
    pub file: File,
    pub offset: u64,
    pub len: u64,
}

/// Where a handler writes its answer. The head goes straight into the connection's send
/// buffer (with `Date`, `Server`, `Content-Length` and, when closing, `Connection:
/// close`); a HEAD request gets the head only.
pub struct ResponseWriter<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) date: &'a [u8],
    pub(crate) head_only: bool,
    pub(crate) keep_alive: bool,
    /// HTTP/1.0 clients need an explicit `Connection: keep-alive` to stay open.
    pub(crate) http10: bool,
    pub(crate) file: Option<FileBody>,
    pub(crate) status: Option<u16>,
}

/// Sent with every response (TechEmpower requires a `Server` header).
pub const SERVER_NAME: &[u8] = b"uring-server";

impl<'a> ResponseWriter<'a> {
    /// Answer with `status`, extra `headers` and an in-memory `body`. Only the
    /// first call per request counts; later calls are ignored.
    pub fn respond(&mut self, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
        if self.status.is_some() {
            return;
        }
        self.write_head(status, headers, body.len() as u64);
        if !self.head_only && !no_body_status(status) {
            self.out.extend_from_slice(body);
        }
    }

    /// Answer with a file body streamed from `file` (`len` bytes from `offset`), never
    /// read whole into memory.
    pub fn respond_file(&mut self, status: u16, headers: &[(&str, &[u8])], body: FileBody) {
        if self.status.is_some() {
            return;
        }
        self.write_head(status, headers, body.len);
        if !self.head_only && body.len > 0 {
            self.file = Some(body);
        }
    }

    /// Close the connection after this response (call before `respond`).
    pub fn close_after(&mut self) {
        self.keep_alive = false;
    }

    /// Whether a response was written.
    pub fn is_done(&self) -> bool {
        self.status.is_some()
    }

    /// Whether the request was a HEAD (the body is left out automatically).
    pub fn is_head(&self) -> bool {
        self.head_only
    }

    fn write_head(&mut self, status: u16, headers: &[(&str, &[u8])], len: u64) {
        self.status = Some(status);
        let cl = if no_body_status(status) {
            None
        } else {
            Some(len)
        };
        // The Server (and HTTP/1.0 keep-alive) headers go first. A small stack array
        // covers every realistic handler; more headers fall back to one allocation.
        const STACK: usize = 8;
        let extra = 1 + (self.http10 && self.keep_alive) as usize;
        let lead: [(&str, &[u8]); 2] = [("Server", SERVER_NAME), ("Connection", b"keep-alive")];
        if headers.len() + extra <= STACK {
            let mut all: [(&str, &[u8]); STACK] = [("", b""); STACK];
            all[..extra].copy_from_slice(&lead[..extra]);
            all[extra..extra + headers.len()].copy_from_slice(headers);
            serialize::write_response_head(
                self.out,
                status,
                self.date,
                &all[..extra + headers.len()],
                cl,
                self.keep_alive,
            );
        } else {
            let mut all: Vec<(&str, &[u8])> = lead[..extra].to_vec();
            all.extend_from_slice(headers);
            serialize::write_response_head(self.out, status, self.date, &all, cl, self.keep_alive);
        }
    }
}

fn no_body_status(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// A synchronous request handler; one instance per worker thread.
pub trait Handler: Send + 'static {
    fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>);
}

/// The built-in endpoints: `/plaintext`, `/json` (TechEmpower rules) and, with a root,
/// static files.
#[derive(Clone, Default)]
pub struct DefaultHandler {
    pub(crate) files: Option<StaticFiles>,
}

const PLAIN: &[u8] = b"Hello, World!";
const JSON: &[u8] = b"{\"message\":\"Hello, World!\"}";

impl DefaultHandler {
    pub fn new(root: Option<std::path::PathBuf>) -> std::io::Result<Self> {
        Ok(DefaultHandler {
            files: match root {
                Some(r) => Some(StaticFiles::new(&r)?),
                None => None,
            },
        })
    }
}

impl Handler for DefaultHandler {
    fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        let path = req.path();
        let fixed = match path {
            "/plaintext" => Some((&b"text/plain"[..], PLAIN)),
            "/json" => Some((&b"application/json"[..], JSON)),
            _ => None,
        };
        if let Some((ctype, body)) = fixed {
            if matches!(req.method(), "GET" | "HEAD") {
                resp.respond(200, &[("Content-Type", ctype)], body);
            } else {
                resp.respond(
                    405,
                    &[("Allow", b"GET, HEAD"), ("Content-Type", b"text/plain")],
                    b"Method Not Allowed\n",
                );
            }
            return;
        }
        match &self.files {
            Some(files) => files.serve(req, resp),
            None => resp.respond(404, &[("Content-Type", b"text/plain")], b"Not Found\n"),
        }
    }
}

/// Any `FnMut(&Request, &mut ResponseWriter)` that is `Clone + Send` is a handler.
impl<F> Handler for F
where
    F: FnMut(&Request<'_>, &mut ResponseWriter<'_>) + Send + 'static,
{
    fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        self(req, resp)
    }
}
