//! One request/response exchange on an upstream connection, sans-IO: upstream bytes in,
//! the client's response out as a head, body pieces and an end, handed to a
//! [`ResponseSink`] that the client connection's protocol implements (HTTP/1.1 bytes in
//! its output, or HTTP/2 frames on its stream). The head is read by common's strict
//! `parse_response` (1xx skipped, HEAD/204/304 bodiless), the body by common's
//! `BodyReader`; nothing here parses HTTP itself.
//!
//! A FastCGI upstream's records go through `fastcgi.rs`'s decoder first, which turns
//! them into an HTTP/1.1 response read as above (so framing for the client is decided in
//! one place) and sets the app's STDERR aside for the error log. Such an exchange ends at
//! END_REQUEST, not at the end of the HTTP body: only then may the connection carry the
//! next request.

use std::mem::MaybeUninit;

use uring_common::http::{parse_response, BodyReader, HeaderStorage, Parsed, HEADER_CAPACITY};

use uring_common::http::ResponseHead;

use super::fastcgi::{self, ResponseDecoder};
use super::headers::{write_client_head, write_switching_head, ClientFraming};
pub use super::request::ClientSide;
use super::request::Forward;

/// Largest upstream response head.
const MAX_HEAD: usize = 64 * 1024;

/// Where an exchange ended, or that it goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More upstream bytes are needed.
    Pending,
    /// The response is complete in the client's output. `upstream_reusable`: the upstream
    /// connection may carry another request; `client_keep_alive`: the client's may.
    Done {
        upstream_reusable: bool,
        client_keep_alive: bool,
    },
    /// The upstream switched protocols (101): its head is in the client's output, and
    /// the connection is a tunnel from now on (what followed the head went to the client).
    Upgraded,
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The upstream closed or failed before sending a byte: a reused connection's request
    /// may be retried.
    NoResponse,
    /// The response head was malformed (or a 101 to a request that asked no Upgrade): 502.
    BadHead,
    /// The response broke off after its head went to the client: close the client.
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body,
    Done,
    /// After a 101: bytes are the new protocol's, relayed as they come.
    Tunnel,
}

/// Where a relayed response goes: the client connection renders it in its protocol.
pub trait ResponseSink {
    /// The upstream's final head. Returns how the body is framed for the client and
    /// whether the client connection may carry another request after this response.
    fn head(
        &mut self,
        resp: &ResponseHead<'_, '_>,
        date: &[u8; 29],
        side: ClientSide,
    ) -> (ClientFraming, bool);
    /// The upstream's `101 Switching Protocols` to an upgrade request: the bytes that
    /// follow are the new protocol's, handed over by [`Self::body`] with
    /// [`ClientFraming::AsIs`]. Only an HTTP/1.1 client's connection can switch.
    fn switching(&mut self, resp: &ResponseHead<'_, '_>, date: &[u8; 29]);
    /// A piece of the body, framed as `head` chose.
    fn body(&mut self, bytes: &[u8], framing: ClientFraming);
    /// The body is complete.
    fn end(&mut self, framing: ClientFraming);
    /// Response bytes held for the client and not yet handed to the kernel (the pause
    /// decision).
    fn pending(&self) -> usize;
}

/// HTTP/1.1: the response as bytes appended to the client connection's output.
impl ResponseSink for Vec<u8> {
    fn head(
        &mut self,
        resp: &ResponseHead<'_, '_>,
        date: &[u8; 29],
        side: ClientSide,
    ) -> (ClientFraming, bool) {
        write_client_head(resp, date, side.http10, side.keep_alive, self)
    }

    fn switching(&mut self, resp: &ResponseHead<'_, '_>, date: &[u8; 29]) {
        write_switching_head(resp, date, self)
    }

    #[inline]
    fn body(&mut self, bytes: &[u8], framing: ClientFraming) {
        if framing == ClientFraming::Chunked {
            use std::io::Write;
            let _ = write!(self, "{:x}\r\n", bytes.len());
            self.extend_from_slice(bytes);
            self.extend_from_slice(b"\r\n");
        } else {
            self.extend_from_slice(bytes);
        }
    }

    fn end(&mut self, framing: ClientFraming) {
        if framing == ClientFraming::Chunked {
            self.extend_from_slice(b"0\r\n\r\n");
        }
    }

    #[inline]
    fn pending(&self) -> usize {
        self.len()
    }
}

impl<T: ResponseSink + ?Sized> ResponseSink for &mut T {
    fn head(
        &mut self,
        resp: &ResponseHead<'_, '_>,
        date: &[u8; 29],
        side: ClientSide,
    ) -> (ClientFraming, bool) {
        (**self).head(resp, date, side)
    }

    fn switching(&mut self, resp: &ResponseHead<'_, '_>, date: &[u8; 29]) {
        (**self).switching(resp, date)
    }

    #[inline]
    fn body(&mut self, bytes: &[u8], framing: ClientFraming) {
        (**self).body(bytes, framing)
    }

    fn end(&mut self, framing: ClientFraming) {
        (**self).end(framing)
    }

    #[inline]
    fn pending(&self) -> usize {
        (**self).pending()
    }
}

#[derive(Debug)]
pub struct Exchange {
    client: ClientSide,
    state: State,
    /// An incomplete response head.
    partial: Vec<u8>,
    reader: BodyReader,
    framing: ClientFraming,
    upstream_keep_alive: bool,
    client_keep_alive: bool,
    /// Some upstream byte arrived.
    got_bytes: bool,
    /// The upstream's final status, once its head is in.
    status: Option<u16>,
    /// Body bytes relayed to the client.
    body_bytes: u64,
    /// A FastCGI upstream's decoder.
    fastcgi: Option<Box<FastcgiSide>>,
    /// The request asked for an Upgrade: a 101 is its answer, not a bad head.
    upgrade: bool,
}

/// The FastCGI half of an exchange: records in, HTTP out (into `http`, then read as any
/// upstream's response).
#[derive(Debug)]
struct FastcgiSide {
    decoder: ResponseDecoder,
    http: Vec<u8>,
    /// The app's STDERR not yet taken.
    stderr: Vec<u8>,
    /// END_REQUEST arrived.
    ended: bool,
}

/// STDERR held back waiting for the end of its line, at most.
const STDERR_LINE_MAX: usize = 4096;

fn storage<'b>() -> HeaderStorage<'b> {
    [const { MaybeUninit::uninit() }; HEADER_CAPACITY]
}

impl Exchange {
    pub fn new(client: ClientSide) -> Exchange {
        Exchange {
            client,
            state: State::Head,
            partial: Vec::new(),
            reader: BodyReader::new(),
            framing: ClientFraming::AsIs,
            upstream_keep_alive: false,
            client_keep_alive: false,
            got_bytes: false,
            status: None,
            body_bytes: 0,
            fastcgi: None,
            upgrade: false,
        }
    }

    /// The exchange for `forward`'s response.
    pub fn of(forward: &Forward) -> Exchange {
        let mut ex = Exchange::new(forward.side);
        ex.upgrade = forward.upgrade;
        if forward.fastcgi {
            ex.fastcgi = Some(Box::new(FastcgiSide {
                decoder: ResponseDecoder::new(forward.side.head_only),
                http: Vec::new(),
                stderr: Vec::new(),
                ended: false,
            }));
        }
        ex
    }

    /// The app's STDERR (FastCGI) for the error log: whole lines, or everything once
    /// `all` (the exchange is over) or a line grows too long.
    pub fn take_stderr(&mut self, all: bool) -> Option<Vec<u8>> {
        let err = &mut self.fastcgi.as_mut()?.stderr;
        let cut = if all || err.len() > STDERR_LINE_MAX {
            err.len()
        } else {
            err.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        };
        (cut > 0).then(|| err.drain(..cut).collect())
    }

    /// Body bytes relayed to the client (`$body_bytes_sent`, framing not counted).
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// The client's body is close-delimited: if it breaks off, only a reset (not a FIN)
    /// tells the client it is cut. Any other framing shows the cut by itself.
    pub fn cut_needs_reset(&self) -> bool {
        self.framing == ClientFraming::Close
    }

    /// The upstream's status (`$upstream_status`), once its final head was read.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Bytes of a tunnel relayed to the client (counted as the body in the access log).
    pub fn add_tunnelled(&mut self, n: usize) {
        self.body_bytes += n as u64;
    }

    /// The client's response head has been written: a failure now must close the client.
    pub fn head_sent(&self) -> bool {
        self.state != State::Head
    }

    pub fn got_bytes(&self) -> bool {
        self.got_bytes
    }

    /// Upstream bytes; the client's response grows in `out`.
    pub fn on_data(
        &mut self,
        data: &[u8],
        date: &[u8; 29],
        out: &mut impl ResponseSink,
    ) -> Result<Progress, Failure> {
        let Some(mut fcgi) = self.fastcgi.take() else {
            return self.on_http(data, date, out);
        };
        self.got_bytes |= !data.is_empty();
        let res = self.on_records(&mut fcgi, data, date, out);
        self.fastcgi = Some(fcgi);
        res
    }

    fn on_records(
        &mut self,
        fcgi: &mut FastcgiSide,
        data: &[u8],
        date: &[u8; 29],
        out: &mut impl ResponseSink,
    ) -> Result<Progress, Failure> {
        fcgi.http.clear();
        let decoded = fcgi.decoder.feed(data, &mut fcgi.http, &mut fcgi.stderr);
        // What was decoded before an error still goes out (the head, part of a body).
        if !fcgi.http.is_empty() {
            self.on_http(&fcgi.http, date, out)?;
        }
        match decoded {
            Ok(fastcgi::Progress::Pending) => Ok(Progress::Pending),
            Ok(fastcgi::Progress::Done(_)) if self.state == State::Done => {
                fcgi.ended = true;
                self.upstream_keep_alive &= fcgi.decoder.reusable();
                Ok(self.progress())
            }
            // END_REQUEST with the HTTP response unfinished: cannot happen with our
            // decoder's output; treated as a broken response all the same.
            Ok(fastcgi::Progress::Done(_)) | Err(_) => Err(self.broken()),
        }
    }

    /// A FastCGI response that cannot be finished: a 502 while the client has nothing.
    fn broken(&self) -> Failure {
        if self.head_sent() {
            Failure::Truncated
        } else {
            Failure::BadHead
        }
    }

    fn on_http(
        &mut self,
        data: &[u8],
        date: &[u8; 29],
        out: &mut impl ResponseSink,
    ) -> Result<Progress, Failure> {
        self.got_bytes |= !data.is_empty();
        if self.partial.is_empty() {
            let used = self.consume(data, date, out)?;
            if self.state == State::Head {
                self.partial.extend_from_slice(&data[used..]);
            } else if used < data.len() {
                // Bytes after the response: nothing asked for them.
                self.upstream_keep_alive = false;
            }
        } else {
            self.partial.extend_from_slice(data);
            let buf = std::mem::take(&mut self.partial);
            let used = self.consume(&buf, date, out)?;
            if self.state == State::Head {
                self.partial = buf;
                self.partial.drain(..used);
            } else if used < buf.len() {
                self.upstream_keep_alive = false;
            }
        }
        Ok(self.progress())
    }

    /// The upstream failed (a reset, a failed send): a close-delimited body is cut too,
    /// since only an orderly close ends one.
    pub fn on_error(&mut self, out: &mut impl ResponseSink) -> Result<Progress, Failure> {
        match self.state {
            State::Body => Err(Failure::Truncated),
            _ => self.on_eof(out),
        }
    }

    /// The upstream closed. Ends a close-delimited body; anything else open is a failure.
    pub fn on_eof(&mut self, out: &mut impl ResponseSink) -> Result<Progress, Failure> {
        if let Some(fcgi) = &mut self.fastcgi {
            if !fcgi.ended && self.state == State::Done {
                // The client's response is whole; only END_REQUEST is missing, so the
                // connection is not reused.
                fcgi.ended = true;
                self.upstream_keep_alive = false;
            }
            return match (fcgi.ended, self.got_bytes) {
                (true, _) => Ok(self.progress()),
                (false, false) => Err(Failure::NoResponse),
                (false, true) => Err(self.broken()),
            };
        }
        match self.state {
            State::Done => Ok(self.progress()),
            State::Body if self.reader.until_close() => {
                self.upstream_keep_alive = false;
                self.finish(out);
                Ok(self.progress())
            }
            State::Body | State::Tunnel => Err(Failure::Truncated),
            State::Head if self.got_bytes => Err(Failure::BadHead),
            State::Head => Err(Failure::NoResponse),
        }
    }

    fn progress(&self) -> Progress {
        let ended = self.fastcgi.as_ref().map_or(true, |f| f.ended);
        match self.state {
            State::Done if ended => Progress::Done {
                upstream_reusable: self.upstream_keep_alive,
                client_keep_alive: self.client_keep_alive,
            },
            State::Tunnel => Progress::Upgraded,
            _ => Progress::Pending,
        }
    }

    fn consume(
        &mut self,
        data: &[u8],
        date: &[u8; 29],
        out: &mut impl ResponseSink,
    ) -> Result<usize, Failure> {
        let mut off = 0;
        loop {
            match self.state {
                State::Done | State::Tunnel => return Ok(off),
                State::Head => {
                    let mut st = storage();
                    let parsed =
                        parse_response(&data[off..], &mut st, self.client.head_only, MAX_HEAD)
                            .map_err(|_| Failure::BadHead)?;
                    let head = match parsed {
                        Parsed::Partial => return Ok(off),
                        Parsed::Complete(h) => h,
                    };
                    off += head.head_len;
                    if head.is_interim() {
                        // Our own 100 Continue went to the client already; the upstream
                        // got a buffered body and no Expect.
                        continue;
                    }
                    if head.status == 101 {
                        if !self.upgrade || self.fastcgi.is_some() {
                            return Err(Failure::BadHead);
                        }
                        out.switching(&head, date);
                        self.status = Some(101);
                        self.state = State::Tunnel;
                        // What came with the head is the new protocol's already.
                        let rest = &data[off..];
                        if !rest.is_empty() {
                            self.body_bytes += rest.len() as u64;
                            out.body(rest, ClientFraming::AsIs);
                        }
                        return Ok(data.len());
                    }
                    let (framing, keep) = out.head(&head, date, self.client);
                    self.framing = framing;
                    self.status = Some(head.status);
                    self.client_keep_alive = keep;
                    self.upstream_keep_alive = head.keep_alive;
                    self.reader.start(head.framing);
                    self.state = State::Body;
                    if self.reader.is_done() {
                        self.finish(out);
                    }
                }
                State::Body => {
                    if off == data.len() {
                        return Ok(off);
                    }
                    let (used, body) = self
                        .reader
                        .read(&data[off..])
                        .map_err(|_| Failure::Truncated)?;
                    off += used;
                    if !body.is_empty() {
                        self.body_bytes += body.len() as u64;
                        out.body(body, self.framing);
                    }
                    if self.reader.is_done() {
                        self.finish(out);
                    } else if used == 0 {
                        return Ok(off);
                    }
                }
            }
        }
    }

    fn finish(&mut self, out: &mut impl ResponseSink) {
        out.end(self.framing);
        self.state = State::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::http::testkit::ResponseStream;

    const DATE: &[u8; 29] = b"Thu, 01 Jan 1970 00:00:00 GMT";

    fn client() -> ClientSide {
        ClientSide {
            head_only: false,
            http10: false,
            keep_alive: true,
        }
    }

    /// Feed `wire` split at `at`; the client's bytes and the outcome (EOF fed at the end
    /// when `eof`).
    fn run(
        side: ClientSide,
        wire: &[u8],
        at: usize,
        eof: bool,
    ) -> (Vec<u8>, Result<Progress, Failure>) {
        let mut ex = Exchange::new(side);
        let mut out = Vec::new();
        let mut last = Ok(Progress::Pending);
        for piece in [&wire[..at], &wire[at..]] {
            last = ex.on_data(piece, DATE, &mut out);
            if last.is_err() {
                return (out, last);
            }
        }
        if eof {
            last = ex.on_eof(&mut out);
        }
        (out, last)
    }

    type Fields = Vec<(String, Vec<u8>)>;

    fn body_of(out: &[u8]) -> (u16, Vec<u8>, Fields) {
        let mut s = ResponseStream::new(64 * 1024);
        s.feed(out);
        s.finish();
        assert_eq!(s.error, None);
        let r = s.messages.first().expect("a response");
        (r.status, r.body.clone(), r.headers.clone())
    }

    #[test]
    fn chunked_and_close_delimited_are_rechunked_at_every_split() {
        let wires: [(&[u8], bool); 3] = [
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", false),
            (b"HTTP/1.0 200 OK\r\nServer: gunicorn\r\n\r\nhello world", true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nKeep-Alive: timeout=5\r\n\r\nhello world", false),
        ];
        for (wire, eof) in wires {
            for at in 0..=wire.len() {
                let (out, res) = run(client(), wire, at, eof);
                assert!(
                    matches!(
                        res,
                        Ok(Progress::Done {
                            client_keep_alive: true,
                            ..
                        })
                    ),
                    "{res:?} at {at}"
                );
                let (status, body, headers) = body_of(&out);
                assert_eq!(
                    (status, body.as_slice()),
                    (200, &b"hello world"[..]),
                    "at {at}"
                );
                assert!(headers
                    .iter()
                    .all(|(n, _)| !n.eq_ignore_ascii_case("keep-alive")));
                let server: Vec<_> = headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("server"))
                    .collect();
                assert_eq!(server.len(), 1);
            }
        }
    }

    #[test]
    fn head_and_no_body_statuses() {
        let side = ClientSide {
            head_only: true,
            ..client()
        };
        let (out, res) = run(
            side,
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
            5,
            false,
        );
        assert!(matches!(
            res,
            Ok(Progress::Done {
                upstream_reusable: true,
                ..
            })
        ));
        assert!(String::from_utf8_lossy(&out).contains("Content-Length: 99\r\n"));
        assert!(String::from_utf8_lossy(&out).ends_with("\r\n\r\n"));
        let (out, res) = run(client(), b"HTTP/1.1 204 No Content\r\n\r\n", 3, false);
        assert!(matches!(res, Ok(Progress::Done { .. })));
        assert!(!String::from_utf8_lossy(&out).contains("Transfer-Encoding"));
    }

    #[test]
    fn http10_client_gets_a_close_delimited_body() {
        let side = ClientSide {
            http10: true,
            ..client()
        };
        let (out, res) = run(
            side,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            7,
            false,
        );
        assert!(matches!(
            res,
            Ok(Progress::Done {
                client_keep_alive: false,
                ..
            })
        ));
        let s = String::from_utf8_lossy(&out);
        assert!(
            s.contains("Connection: close\r\n") && s.ends_with("\r\n\r\nhi"),
            "{s}"
        );
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(run(client(), b"", 0, true).1, Err(Failure::NoResponse));
        assert_eq!(
            run(client(), b"HTTP/1.1 200", 3, true).1,
            Err(Failure::BadHead)
        );
        assert_eq!(
            run(client(), b"garbage\r\n\r\n", 3, false).1,
            Err(Failure::BadHead)
        );
        assert_eq!(
            run(
                client(),
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                3,
                false
            )
            .1,
            Err(Failure::BadHead)
        );
        let (out, res) = run(
            client(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal",
            20,
            true,
        );
        assert_eq!(res, Err(Failure::Truncated));
        assert!(out.ends_with(b"hal"));
        let (_, res) = run(
            client(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            20,
            true,
        );
        assert_eq!(res, Err(Failure::Truncated));
    }

    #[test]
    fn trailing_bytes_make_the_upstream_unusable() {
        let (_, res) = run(
            client(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
            4,
            false,
        );
        assert_eq!(
            res,
            Ok(Progress::Done {
                upstream_reusable: false,
                client_keep_alive: true
            })
        );
    }

    /// A FastCGI exchange for a client asking with `method`.
    fn fastcgi_exchange(head_only: bool) -> Exchange {
        let forward = Forward {
            upstream: 0,
            key: None,
            request: Vec::new(),
            idempotent: true,
            reuse: true,
            fastcgi: true,
            upgrade: false,
            side: ClientSide {
                head_only,
                ..client()
            },
        };
        Exchange::of(&forward)
    }

    const END_OK: fastcgi::EndRequest = fastcgi::EndRequest {
        app_status: 0,
        protocol_status: fastcgi::REQUEST_COMPLETE,
    };

    /// Records fed in three pieces cut at `a` and `b`: the client's bytes, the outcome,
    /// the STDERR taken line by line as the machine takes it.
    fn run_fastcgi(
        head_only: bool,
        wire: &[u8],
        a: usize,
        b: usize,
        eof: bool,
    ) -> (Vec<u8>, Result<Progress, Failure>, Vec<u8>) {
        let mut ex = fastcgi_exchange(head_only);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut last = Ok(Progress::Pending);
        for piece in [&wire[..a], &wire[a..b], &wire[b..]] {
            last = ex.on_data(piece, DATE, &mut out);
            let over = last != Ok(Progress::Pending);
            if let Some(lines) = ex.take_stderr(over) {
                assert!(over || lines.ends_with(b"\n"), "{lines:?}");
                err.extend_from_slice(&lines);
            }
            if last.is_err() {
                return (out, last, err);
            }
        }
        if eof {
            last = ex.on_eof(&mut out);
            err.extend(ex.take_stderr(true).unwrap_or_default());
        }
        (out, last, err)
    }

    #[test]
    fn fastcgi_responses_reach_the_client_at_every_split() {
        type Case = (&'static [u8], u16, &'static [u8]);
        let cases: [Case; 4] = [
            (
                b"Content-Type: text/plain\r\n\r\nhello world",
                200,
                b"hello world",
            ),
            (b"Status: 404 Not Found\r\n\r\nnope", 404, b"nope"),
            (b"Location: /there\r\n\r\n", 302, b""),
            (b"Content-Length: 2\r\n\r\nok", 200, b"ok"),
        ];
        for (cgi, status, body) in cases {
            let wire = fastcgi::response_records(cgi, b"line one\nline two\n", 5, END_OK);
            for a in 0..=wire.len() {
                for b in (a..=wire.len()).step_by(7) {
                    let (out, res, err) = run_fastcgi(false, &wire, a, b, false);
                    assert_eq!(
                        res,
                        Ok(Progress::Done {
                            upstream_reusable: true,
                            client_keep_alive: true
                        }),
                        "{a} {b}"
                    );
                    assert_eq!(err, b"line one\nline two\n");
                    let (s, got, _) = body_of(&out);
                    assert_eq!((s, got.as_slice()), (status, body), "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn fastcgi_head_request_gets_the_head_only() {
        let wire = fastcgi::response_records(b"Content-Length: 5\r\n\r\nhello", b"", 3, END_OK);
        for a in 0..=wire.len() {
            let (out, res, _) = run_fastcgi(true, &wire, a, a, false);
            assert!(matches!(res, Ok(Progress::Done { .. })), "{a}");
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("Content-Length: 5\r\n"), "{text}");
            assert!(text.ends_with("\r\n\r\n"), "{text}");
        }
    }

    #[test]
    fn fastcgi_connection_is_reusable_only_after_end_request() {
        let wire = fastcgi::response_records(b"Content-Length: 2\r\n\r\nok", b"", 9, END_OK);
        // The whole HTTP response is in before END_REQUEST: still pending.
        let end_at = wire.len() - 16;
        let mut ex = fastcgi_exchange(false);
        let mut out = Vec::new();
        assert_eq!(
            ex.on_data(&wire[..end_at], DATE, &mut out),
            Ok(Progress::Pending)
        );
        assert!(ex.head_sent());
        // The app closes without END_REQUEST: the client has its response, the
        // connection is not reused.
        assert_eq!(
            ex.on_eof(&mut out),
            Ok(Progress::Done {
                upstream_reusable: false,
                client_keep_alive: true
            })
        );
        assert_eq!(body_of(&out).1, b"ok");
        // Bytes after END_REQUEST.
        let mut extra = wire.clone();
        extra.extend_from_slice(&[1, 6, 0, 1, 0, 0, 0, 0]);
        let (_, res, _) = run_fastcgi(false, &extra, 3, 3, false);
        assert!(
            matches!(
                res,
                Ok(Progress::Done {
                    upstream_reusable: false,
                    ..
                })
            ),
            "{res:?}"
        );
    }

    #[test]
    fn fastcgi_failures_are_classified() {
        // Nothing at all: a reused connection's request may be retried.
        assert_eq!(
            run_fastcgi(false, b"", 0, 0, true).1,
            Err(Failure::NoResponse)
        );
        // Only STDERR, then the app died: 502, and its last words are logged.
        let died = fastcgi::response_records(b"", b"PHP Fatal error: x", 64, END_OK);
        let cut = &died[..died.len() - 24];
        let (out, res, err) = run_fastcgi(false, cut, 5, 9, true);
        assert_eq!((res, out.is_empty()), (Err(Failure::BadHead), true));
        assert_eq!(err, b"PHP Fatal error: x");
        // END_REQUEST without a CGI head, or a malformed one: 502.
        for wire in [
            died.clone(),
            fastcgi::response_records(b"no colon\r\n\r\n", b"", 64, END_OK),
        ] {
            assert_eq!(
                run_fastcgi(false, &wire, 3, 11, false).1,
                Err(Failure::BadHead)
            );
        }
        // Cut in the body, after the head went out: the client connection is cut.
        let long = fastcgi::response_records(b"Content-Length: 10\r\n\r\nhal", b"", 64, END_OK);
        let (out, res, _) = run_fastcgi(false, &long[..long.len() - 24], 5, 9, true);
        assert_eq!(res, Err(Failure::Truncated));
        assert!(out.ends_with(b"hal"));
    }
}
