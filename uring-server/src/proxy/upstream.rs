//! One request/response exchange on an upstream connection, sans-IO: upstream bytes in,
//! the client's re-framed response out (appended to the client connection's output).
//! The head is read by common's strict `parse_response` (1xx skipped, HEAD/204/304
//! bodiless), the body by common's `BodyReader`; nothing here parses HTTP itself.

use std::mem::MaybeUninit;

use uring_common::http::{parse_response, BodyReader, HeaderStorage, Parsed, HEADER_CAPACITY};

use super::headers::{write_client_head, ClientFraming};

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
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The upstream closed or failed before sending a byte: a reused connection's request
    /// may be retried.
    NoResponse,
    /// The response head was malformed (or a 101 we never asked for): 502.
    BadHead,
    /// The response broke off after its head went to the client: close the client.
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body,
    Done,
}

/// What the client asked, which decides how the response is framed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientSide {
    pub head_only: bool,
    pub http10: bool,
    pub keep_alive: bool,
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
}

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
        }
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
        out: &mut Vec<u8>,
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
    pub fn on_error(&mut self, out: &mut Vec<u8>) -> Result<Progress, Failure> {
        match self.state {
            State::Body => Err(Failure::Truncated),
            _ => self.on_eof(out),
        }
    }

    /// The upstream closed. Ends a close-delimited body; anything else open is a failure.
    pub fn on_eof(&mut self, out: &mut Vec<u8>) -> Result<Progress, Failure> {
        match self.state {
            State::Done => Ok(self.progress()),
            State::Body if self.reader.until_close() => {
                self.upstream_keep_alive = false;
                self.finish(out);
                Ok(self.progress())
            }
            State::Body => Err(Failure::Truncated),
            State::Head if self.got_bytes => Err(Failure::BadHead),
            State::Head => Err(Failure::NoResponse),
        }
    }

    fn progress(&self) -> Progress {
        match self.state {
            State::Done => Progress::Done {
                upstream_reusable: self.upstream_keep_alive,
                client_keep_alive: self.client_keep_alive,
            },
            _ => Progress::Pending,
        }
    }

    fn consume(
        &mut self,
        data: &[u8],
        date: &[u8; 29],
        out: &mut Vec<u8>,
    ) -> Result<usize, Failure> {
        let mut off = 0;
        loop {
            match self.state {
                State::Done => return Ok(off),
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
                        return Err(Failure::BadHead);
                    }
                    let (framing, keep) = write_client_head(
                        &head,
                        date,
                        self.client.http10,
                        self.client.keep_alive,
                        out,
                    );
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
                        if self.framing == ClientFraming::Chunked {
                            use std::io::Write;
                            let _ = write!(out, "{:x}\r\n", body.len());
                            out.extend_from_slice(body);
                            out.extend_from_slice(b"\r\n");
                        } else {
                            out.extend_from_slice(body);
                        }
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

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.framing == ClientFraming::Chunked {
            out.extend_from_slice(b"0\r\n\r\n");
        }
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
}
