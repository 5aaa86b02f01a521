//! The application-facing side of the server: a synchronous per-core [`Handler`] gets a
//! zero-copy [`Request`] view (borrowing the receive buffer) and answers through a
//! [`ResponseWriter`] that writes straight into the connection's send buffer.
//!
//! Each worker thread owns its own handler instance (cloned from the one given to the
//! builder), so handlers may keep per-core state without locks.

pub use crate::request::Request;
pub use crate::response::{CachedResponse, FileBody, ResponseWriter, SERVER_NAME};
use std::sync::Arc;

use crate::compress::Compression;
use crate::config::{ProxyConfig, UpstreamRoute};
use crate::static_files::{FileBodies, StaticFiles};

/// A synchronous request handler; one instance per worker thread.
pub trait Handler: Send + 'static {
    fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>);

    /// Whether CONNECT requests reach [`Handler::handle`]. Off by default: this is no
    /// forward proxy, so the connection answers CONNECT with 501 (Not Implemented) and
    /// closes. A handler that tunnels overrides this.
    fn accepts_connect(&self) -> bool {
        false
    }

    /// Whether `req` is answered by static files (the metrics' `route="file"`, whatever
    /// the file's body path: streamed, spliced or from memory). Asked only when metrics
    /// or the access log are on.
    fn is_file_route(&self, _req: &Request<'_>) -> bool {
        false
    }

    /// An fd the worker polls for this handler: when it is readable the worker calls
    /// [`Handler::on_wake`], then hands every request the handler deferred
    /// ([`ResponseWriter::defer`]) to it again.
    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// The fd of [`Handler::wake_fd`] was readable.
    fn on_wake(&mut self) {}

    /// The upstream `req` is proxied to (see `docs/proxy.md`); `None`
    /// (the default) answers it here through [`Handler::handle`].
    fn upstream_for(&self, _req: &Request<'_>) -> Option<UpstreamRoute> {
        None
    }
}

/// The built-in endpoints: `/plaintext`, `/json` (TechEmpower rules) and, with a root,
/// static files.
///
/// TechEmpower rules: `/json` instantiates a message object per request and serializes it
/// with a JSON serializer (serde_json) into a reused per-worker buffer; `/plaintext` may
/// reuse its body and is served from a head serialized once, with the date patched in.
#[derive(Clone)]
pub struct DefaultHandler {
    pub(crate) files: Option<StaticFiles>,
    /// `--proxy` routes: matching paths other than the built-in ones go upstream.
    pub(crate) proxy: Option<Arc<ProxyConfig>>,
    /// `--compress`: on-the-fly compression of the answers given here (static files
    /// keep theirs compressed per file version, see `static_files.rs`).
    pub(crate) compress: Option<Compression>,
    plaintext: CachedResponse,
    json_buf: Vec<u8>,
}

#[derive(serde::Serialize)]
struct Message<'a> {
    message: &'a str,
}

impl Default for DefaultHandler {
    fn default() -> Self {
        DefaultHandler {
            files: None,
            proxy: None,
            compress: None,
            plaintext: CachedResponse::new(200, &[("Content-Type", b"text/plain")], PLAIN),
            json_buf: Vec::with_capacity(64),
        }
    }
}

const PLAIN: &[u8] = b"Hello, World!";

impl DefaultHandler {
    pub fn new(root: Option<std::path::PathBuf>) -> std::io::Result<Self> {
        Self::with_bodies(root, FileBodies::default())
    }

    /// Like [`DefaultHandler::new`], with file bodies sent as `bodies` says.
    pub fn with_bodies(
        root: Option<std::path::PathBuf>,
        bodies: FileBodies,
    ) -> std::io::Result<Self> {
        Ok(DefaultHandler {
            files: match root {
                Some(r) => Some(StaticFiles::new(&r)?.bodies(bodies)),
                None => None,
            },
            ..DefaultHandler::default()
        })
    }
}

impl Handler for DefaultHandler {
    #[inline]
    fn upstream_for(&self, req: &Request<'_>) -> Option<UpstreamRoute> {
        let proxy = self.proxy.as_ref()?;
        let path = req.path();
        // The built-in endpoints stay here unless a prefix longer than `/` claims them.
        let builtin = path == "/plaintext" || path == "/json";
        if builtin
            && !proxy
                .routes
                .iter()
                .any(|r| r.prefix.len() > 1 && path.starts_with(&r.prefix))
        {
            return None;
        }
        let (index, r) = proxy.longest(path)?;
        let mut route = proxy.upstream_route(index, r);
        route.key = crate::proxy::balance::request_key(&r.balance, req.head);
        Some(route)
    }

    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        self.files.as_ref().map(StaticFiles::wake_fd)
    }

    fn on_wake(&mut self) {
        if let Some(files) = &mut self.files {
            files.on_wake();
        }
    }

    fn is_file_route(&self, req: &Request<'_>) -> bool {
        self.files.is_some() && req.target() != "*" && !matches!(req.path(), "/plaintext" | "/json")
    }

    #[inline]
    fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        let path = req.path();
        if let Some(c) = &self.compress {
            resp.compress = Some(c.negotiate(req.header("Accept-Encoding")));
        }
        // `OPTIONS *` asks about the server as a whole (the codec lets `*` through for
        // OPTIONS only): everything here serves GET and HEAD.
        if req.target() == "*" {
            resp.only_get_and_head(req.method());
            return;
        }
        if path == "/plaintext" || path == "/json" {
            if resp.only_get_and_head(req.method()) {
                return;
            }
            if path == "/plaintext" {
                return resp.respond_cached(&self.plaintext);
            }
            self.json_buf.clear();
            let msg = Message {
                message: "Hello, World!",
            };
            if serde_json::to_writer(&mut self.json_buf, &msg).is_err() {
                return resp.respond(500, &[], b"");
            }
            return resp.respond(
                200,
                &[("Content-Type", b"application/json")],
                &self.json_buf,
            );
        }
        match &mut self.files {
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
