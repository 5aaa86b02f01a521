//! How a handler answers: [`ResponseWriter`] writes the head and body straight into the
//! connection's send buffer, [`FileBody`] names a file range the connection streams,
//! [`CachedResponse`] is a response serialized once. Below the handler and the static
//! files in the module graph.

use std::fs::File;
use std::sync::Arc;

use uring_common::http::serialize;

use crate::compress::{self, Effort, Negotiated};

/// A file body the worker streams in bounded chunks after the head. The file is shared
/// (`Arc`) so that an open-file cache can hand the same descriptor to many responses.
#[derive(Debug)]
pub struct FileBody {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
    /// Move the bytes file → pipe → socket with SPLICE (no copy through user space;
    /// the default) rather than reading them into memory and sending them.
    pub zero_copy: bool,
}

impl FileBody {
    /// `len` bytes of `file` from `offset`; takes a `File` or an `Arc<File>`.
    pub fn new(file: impl Into<Arc<File>>, offset: u64, len: u64) -> FileBody {
        FileBody {
            file: file.into(),
            offset,
            len,
            zero_copy: true,
        }
    }

    /// The same body, read and copied instead of spliced when `zero_copy` is false.
    pub fn zero_copy(mut self, zero_copy: bool) -> FileBody {
        self.zero_copy = zero_copy;
        self
    }
}

/// Where a handler writes its answer. For HTTP/1.x the head goes straight into the
/// connection's send buffer (with `Date`, `Server`, `Content-Length` and, when closing,
/// `Connection: close`); a protocol that frames responses itself (HTTP/2) gets the same
/// answer as [`ResponseParts`]. A HEAD request gets the head only.
pub struct ResponseWriter<'a> {
    pub(crate) wire: Wire<'a>,
    pub(crate) date: &'a [u8],
    pub(crate) head_only: bool,
    pub(crate) keep_alive: bool,
    /// HTTP/1.0 clients need an explicit `Connection: keep-alive` to stay open.
    pub(crate) http10: bool,
    pub(crate) file: Option<FileBody>,
    pub(crate) status: Option<u16>,
    /// The handler answers later ([`ResponseWriter::defer`]).
    pub(crate) deferred: bool,
    /// Body bytes of the answer (a file body's length included; 0 for HEAD): what the
    /// access log reports, known here without searching the head's end.
    pub(crate) body_len: u64,
    /// On-the-fly compression for this request (`--compress`), set by the handler: an
    /// in-memory body that qualifies is compressed by `respond`. `None`: as it is.
    pub compress: Option<Negotiated>,
}

/// Where the answer goes: the protocol's part of writing a response.
pub(crate) enum Wire<'a> {
    /// HTTP/1.x: serialized into the connection's output.
    H1(&'a mut Vec<u8>),
    /// A protocol that frames the response itself: status, fields and body kept apart.
    Parts(&'a mut ResponseParts),
}

/// A response as parts, for a protocol that frames it itself (HTTP/2): the status, the
/// header fields (names lower-cased, no connection-specific fields: RFC 9113 section
/// 8.2.2) and an in-memory body; a file body stays in the writer
/// ([`ResponseWriter::file`]). The buffers are reused from one response to the next.
#[derive(Debug, Default)]
pub struct ResponseParts {
    pub status: u16,
    /// Name and value bytes of every field, back to back.
    bytes: Vec<u8>,
    /// (name start, name length, value length) per field, into `bytes`.
    fields: Vec<(u32, u32, u32)>,
    /// `content-length`, when the body's length is known (never for 1xx, 204 and 304).
    pub content_length: Option<u64>,
    pub body: Vec<u8>,
}

impl ResponseParts {
    /// Forget the previous response, keeping the buffers.
    pub fn clear(&mut self) {
        self.status = 0;
        self.bytes.clear();
        self.fields.clear();
        self.content_length = None;
        self.body.clear();
    }

    /// The header fields in order (`server`, `date`, then the handler's).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().map(|&(at, name, value)| {
            let (at, name, value) = (at as usize, name as usize, value as usize);
            (
                &self.bytes[at..at + name],
                &self.bytes[at + name..at + name + value],
            )
        })
    }

    fn push(&mut self, name: &str, value: &[u8]) {
        let at = self.bytes.len();
        self.bytes
            .extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        self.bytes.extend_from_slice(value);
        self.fields
            .push((at as u32, name.len() as u32, value.len() as u32));
    }

    /// Fields that mean something only to one HTTP/1.1 connection (RFC 9113 section
    /// 8.2.2: an HTTP/2 message carrying one is malformed).
    fn connection_specific(name: &str) -> bool {
        [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
        ]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
    }

    fn write_head<'h>(
        &mut self,
        status: u16,
        date: &[u8],
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        len: Option<u64>,
    ) {
        self.clear();
        self.status = status;
        self.push("server", SERVER_NAME);
        if !date.is_empty() {
            self.push("date", date);
        }
        for (name, value) in headers {
            if !Self::connection_specific(name) && !name.eq_ignore_ascii_case("content-length") {
                self.push(name, value);
            }
        }
        self.content_length = len;
    }
}

/// Sent with every response (TechEmpower requires a `Server` header).
pub const SERVER_NAME: &[u8] = b"uring-server";

/// The methods of the built-in endpoints and static files.
const ALLOW_GET_HEAD: &[u8] = b"GET, HEAD, OPTIONS";

impl<'a> ResponseWriter<'a> {
    /// A writer for one response: nothing written, no status, no file yet.
    pub(crate) fn new(
        out: &'a mut Vec<u8>,
        date: &'a [u8],
        head_only: bool,
        keep_alive: bool,
        http10: bool,
    ) -> ResponseWriter<'a> {
        ResponseWriter::on(Wire::H1(out), date, head_only, keep_alive, http10)
    }

    /// A writer whose answer goes into `parts` (a protocol that frames it itself).
    pub fn for_parts(parts: &'a mut ResponseParts, date: &'a [u8], head_only: bool) -> Self {
        ResponseWriter::on(Wire::Parts(parts), date, head_only, true, false)
    }

    pub(crate) fn on(
        wire: Wire<'a>,
        date: &'a [u8],
        head_only: bool,
        keep_alive: bool,
        http10: bool,
    ) -> ResponseWriter<'a> {
        ResponseWriter {
            wire,
            date,
            head_only,
            keep_alive,
            http10,
            file: None,
            status: None,
            deferred: false,
            body_len: 0,
            compress: None,
        }
    }

    /// Answer with `status`, extra `headers` and an in-memory `body`. Only the
    /// first call per request counts; later calls are ignored.
    pub fn respond(&mut self, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
        if self.status.is_some() {
            return;
        }
        if let Some(n) = self.compress.take() {
            if self.respond_compressed(n, status, headers, body) {
                return;
            }
        }
        self.write_head(status, headers, body.len() as u64);
        self.put_body(status, body);
    }

    /// `respond` for a body that qualifies for compression (false: it does not): the
    /// chosen coding's bytes with `Content-Encoding`, a weak `ETag` and `Vary:
    /// Accept-Encoding`; the body as it is, with `Vary`, when the client accepts none.
    #[cold]
    fn respond_compressed(
        &mut self,
        n: Negotiated,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> bool {
        let field = |name: &str| {
            headers
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(name))
                .map(|&(_, v)| v)
        };
        let ctype = field("Content-Type").unwrap_or_default();
        if !n.applies(status, ctype, body.len() as u64)
            || field("Content-Encoding").is_some()
            || field("Content-Range").is_some()
        {
            return false;
        }
        let encoded = n
            .accepted
            .choose(n.codings)
            .and_then(|c| Some((c, compress::compress(c, body, Effort::PerResponse)?)));
        let etag = field("ETag")
            .filter(|_| encoded.is_some())
            .map(compress::weak_etag);
        let vary = with_accept_encoding(field("Vary"));
        let mut all: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + 2);
        for &(name, value) in headers {
            match &etag {
                Some(weak) if name.eq_ignore_ascii_case("ETag") => all.push((name, weak)),
                _ if name.eq_ignore_ascii_case("Vary") => {}
                _ => all.push((name, value)),
            }
        }
        all.push(("Vary", &vary));
        let body = match &encoded {
            Some((coding, bytes)) => {
                all.push(("Content-Encoding", coding.token().as_bytes()));
                &bytes[..]
            }
            None => body,
        };
        self.write_head(status, &all, body.len() as u64);
        self.put_body(status, body);
        true
    }

    fn put_body(&mut self, status: u16, body: &[u8]) {
        if !self.head_only && !no_body_status(status) {
            match &mut self.wire {
                Wire::H1(out) => out.extend_from_slice(body),
                Wire::Parts(parts) => parts.body.extend_from_slice(body),
            }
            self.body_len = body.len() as u64;
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
            self.body_len = body.len;
            self.file = Some(body);
        }
    }

    /// Answer with a response serialized once in advance (see [`CachedResponse`]): one
    /// copy and the current date patched in. Same result as `respond` with the same
    /// arguments, at a fraction of the cost.
    pub fn respond_cached(&mut self, cached: &CachedResponse) {
        if self.status.is_some() {
            return;
        }
        if let Some(n) = self.compress.take() {
            let field = |name: &str| {
                (cached.fields.iter())
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_slice())
            };
            let ctype = field("Content-Type").unwrap_or_default();
            // Most cached answers are too short to compress: they keep the fast path.
            if n.applies(cached.status, ctype, cached.body.len() as u64) {
                let fields: Vec<(&str, &[u8])> = (cached.fields.iter())
                    .map(|(n, v)| (n.as_str(), v.as_slice()))
                    .collect();
                self.compress = Some(n);
                return self.respond(cached.status, &fields, &cached.body);
            }
        }
        let out = match &mut self.wire {
            Wire::H1(out) => out,
            Wire::Parts(parts) => {
                let fields = cached
                    .fields
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_slice()));
                let len = cached.body.len() as u64;
                let cl = (!no_body_status(cached.status)).then_some(len);
                parts.write_head(cached.status, self.date, fields, cl);
                if !self.head_only && cl.is_some() {
                    parts.body.extend_from_slice(&cached.body);
                    self.body_len = len;
                }
                self.status = Some(cached.status);
                return;
            }
        };
        let v = match (self.keep_alive, self.http10) {
            (false, _) => &cached.close,
            (true, true) => &cached.http10,
            (true, false) => &cached.keep_alive,
        };
        let start = out.len();
        let len = if self.head_only {
            v.head_len
        } else {
            v.bytes.len()
        };
        out.extend_from_slice(&v.bytes[..len]);
        out[start + v.date_at..start + v.date_at + 29].copy_from_slice(self.date);
        self.body_len = (len - v.head_len) as u64;
        self.status = Some(cached.status);
    }

    /// Answer later: the connection keeps the request and hands it to the handler again
    /// after the handler's next wake-up (`Handler::on_wake`),
    /// meanwhile answering nothing behind it. For work that must not block the worker
    /// (a file opened on another thread).
    pub fn defer(&mut self) {
        if self.status.is_none() {
            self.deferred = true;
        }
    }

    /// Close the connection after this response (call before `respond`).
    pub fn close_after(&mut self) {
        self.keep_alive = false;
    }

    /// For a resource that serves GET and HEAD only: answer `OPTIONS` with 204 and any
    /// other method with 405, both carrying `Allow` (RFC 9110 sections 9.3.7 and 15.5.6:
    /// a 405 "MUST generate an Allow header field"). Returns whether it answered; if not,
    /// the method is GET or HEAD and the caller serves the resource.
    pub fn only_get_and_head(&mut self, method: &str) -> bool {
        match method {
            "GET" | "HEAD" => false,
            "OPTIONS" => {
                self.respond(204, &[("Allow", ALLOW_GET_HEAD)], b"");
                true
            }
            _ => {
                self.respond(
                    405,
                    &[("Allow", ALLOW_GET_HEAD), ("Content-Type", b"text/plain")],
                    b"Method Not Allowed\n",
                );
                true
            }
        }
    }

    /// What an HTTP/1.x writer has written so far (empty for the parts of other protocols).
    #[cfg(test)]
    pub(crate) fn h1_output(&self) -> &[u8] {
        match &self.wire {
            Wire::H1(out) => out,
            Wire::Parts(_) => &[],
        }
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
        let out = match &mut self.wire {
            Wire::H1(out) => out,
            Wire::Parts(parts) => {
                return parts.write_head(status, self.date, headers.iter().copied(), cl)
            }
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
                out,
                status,
                self.date,
                &all[..extra + headers.len()],
                cl,
                self.keep_alive,
            );
        } else {
            let mut all: Vec<(&str, &[u8])> = lead[..extra].to_vec();
            all.extend_from_slice(headers);
            serialize::write_response_head(out, status, self.date, &all, cl, self.keep_alive);
        }
    }
}

/// A fixed response serialized once (by the same code as `respond`), for endpoints whose
/// answer never changes but for the `Date`.
#[derive(Clone, Debug)]
pub struct CachedResponse {
    status: u16,
    /// The response as given, for protocols that frame it themselves.
    fields: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    keep_alive: CachedVariant,
    close: CachedVariant,
    http10: CachedVariant,
}

#[derive(Clone, Debug)]
struct CachedVariant {
    bytes: Vec<u8>,
    date_at: usize,
    head_len: usize,
}

impl CachedResponse {
    pub fn new(status: u16, headers: &[(&str, &[u8])], body: &[u8]) -> CachedResponse {
        // A date of NUL bytes cannot occur elsewhere in a valid head, so it marks the spot.
        const MARK: [u8; 29] = [0; 29];
        let variant = |keep_alive: bool, http10: bool| {
            let mut out = Vec::new();
            let mut w = ResponseWriter::new(&mut out, &MARK, false, keep_alive, http10);
            w.respond(status, headers, body);
            let date_at = out
                .windows(MARK.len())
                .position(|w| w == MARK)
                .expect("the date is in the head");
            let head_len = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a complete head")
                + 4;
            CachedVariant {
                bytes: out,
                date_at,
                head_len,
            }
        };
        CachedResponse {
            status,
            fields: headers
                .iter()
                .map(|&(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            body: body.to_vec(),
            keep_alive: variant(true, false),
            close: variant(false, false),
            http10: variant(true, true),
        }
    }
}

/// A `Vary` value that names `Accept-Encoding` (the response's own, extended if need be).
pub(crate) fn with_accept_encoding(vary: Option<&[u8]>) -> Vec<u8> {
    match vary {
        None => b"Accept-Encoding".to_vec(),
        Some(v)
            if v.split(|&c| c == b',').any(|i| {
                let i = i.trim_ascii();
                i == b"*" || i.eq_ignore_ascii_case(b"accept-encoding")
            }) =>
        {
            v.to_vec()
        }
        Some(v) => [v, b", Accept-Encoding"].concat(),
    }
}

fn no_body_status(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_carry_the_same_answer_without_connection_fields() {
        let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
        let headers: [(&str, &[u8]); 3] = [
            ("Content-Type", b"text/plain"),
            ("Connection", b"close"),
            ("X-A", b"b"),
        ];
        let cached = CachedResponse::new(200, &headers, b"Hello, World!");
        for head_only in [false, true] {
            let (mut a, mut b) = (ResponseParts::default(), ResponseParts::default());
            let mut w = ResponseWriter::for_parts(&mut a, date, head_only);
            w.respond(200, &headers, b"Hello, World!");
            assert_eq!(w.body_len, if head_only { 0 } else { 13 });
            let mut w = ResponseWriter::for_parts(&mut b, date, head_only);
            w.respond_cached(&cached);
            assert_eq!(w.status, Some(200));
            for p in [&a, &b] {
                let fields: Vec<(&[u8], &[u8])> = p.fields().collect();
                assert_eq!(
                    fields,
                    vec![
                        (&b"server"[..], SERVER_NAME),
                        (&b"date"[..], &date[..]),
                        (&b"content-type"[..], &b"text/plain"[..]),
                        (&b"x-a"[..], &b"b"[..]),
                    ]
                );
                assert_eq!((p.status, p.content_length), (200, Some(13)));
                let body: &[u8] = if head_only { b"" } else { b"Hello, World!" };
                assert_eq!(p.body, body);
            }
        }
        let mut p = ResponseParts::default();
        ResponseWriter::for_parts(&mut p, date, false).respond(304, &[], b"x");
        assert_eq!((p.status, p.content_length, p.body.len()), (304, None, 0));
    }

    #[test]
    fn cached_response_matches_respond_in_every_variant() {
        let headers: [(&str, &[u8]); 2] = [("Content-Type", b"text/plain"), ("X-A", b"b")];
        let cached = CachedResponse::new(200, &headers, b"Hello, World!");
        let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
        for keep_alive in [true, false] {
            for http10 in [true, false] {
                for head_only in [true, false] {
                    let (mut a, mut b) = (b"prefix".to_vec(), b"prefix".to_vec());
                    let mk = |out| ResponseWriter::new(out, date, head_only, keep_alive, http10);
                    let mut w = mk(&mut a);
                    w.respond(200, &headers, b"Hello, World!");
                    let body_len = if head_only { 0 } else { 13 };
                    assert_eq!(w.body_len, body_len, "what the access log reports");
                    let mut w = mk(&mut b);
                    w.respond_cached(&cached);
                    assert_eq!(w.status, Some(200));
                    assert_eq!(w.body_len, body_len);
                    assert_eq!(
                        String::from_utf8_lossy(&a),
                        String::from_utf8_lossy(&b),
                        "keep_alive {keep_alive} http10 {http10} head {head_only}"
                    );
                }
            }
        }
    }
}
