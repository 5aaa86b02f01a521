//! Reference drivers that run the codec over a byte stream fed in arbitrary pieces and
//! collect owned results. They exist for the property tests (`tests/codec_props.rs`) and
//! the fuzz stream target, which check that splitting input anywhere never changes what
//! is parsed. They allocate and copy freely: not for the hot path.

use super::{
    new_header_storage, parse_request, parse_response, BodyFraming, ChunkEvent, ChunkedDecoder,
    ChunkedError, Limits, Parsed, RequestError, ResponseError, ResponseFraming, Version,
};

/// A request with its body, copied out of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRequest {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub host: Option<Vec<u8>>,
    pub body: Vec<u8>,
}

/// A response with its body, copied out of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedResponse {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: ResponseFraming,
    pub keep_alive: bool,
    pub body: Vec<u8>,
}

/// Why a stream stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    Request(RequestError),
    Response(ResponseError),
    Chunked(ChunkedError),
    /// The stream ended inside a message.
    Truncated,
}

enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// Feeds pipelined requests through `parse_request` and the body framing.
pub struct RequestStream {
    limits: Limits,
    buf: Vec<u8>,
    current: Option<(OwnedRequest, Body)>,
    /// Completed requests, in order.
    pub messages: Vec<OwnedRequest>,
    /// Set once a framing error stops the stream (terminal, like the server's close).
    pub error: Option<StreamError>,
}

impl RequestStream {
    pub fn new(limits: Limits) -> Self {
        RequestStream {
            limits,
            buf: Vec::new(),
            current: None,
            messages: Vec::new(),
            error: None,
        }
    }

    /// Append bytes and parse as far as they go.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            if self.current.is_none() {
                let mut storage = new_header_storage();
                match parse_request(&self.buf[pos..], &mut storage, &self.limits) {
                    Ok(Parsed::Partial) => break,
                    Err(e) => {
                        self.error = Some(StreamError::Request(e));
                        break;
                    }
                    Ok(Parsed::Complete(h)) => {
                        let req = OwnedRequest {
                            method: h.method.into(),
                            target: h.target.into(),
                            version: h.version,
                            headers: h
                                .headers
                                .iter()
                                .map(|f| (f.name.to_string(), f.value.to_vec()))
                                .collect(),
                            framing: h.framing,
                            keep_alive: h.keep_alive,
                            expect_continue: h.expect_continue,
                            host: h.host.map(<[u8]>::to_vec),
                            body: Vec::new(),
                        };
                        pos += h.head_len;
                        let body = match h.framing {
                            BodyFraming::None => {
                                self.messages.push(req);
                                continue;
                            }
                            BodyFraming::Length(n) => Body::Length(n),
                            BodyFraming::Chunked => Body::Chunked(ChunkedDecoder::new()),
                        };
                        self.current = Some((req, body));
                    }
                }
            }
            match read_body(&mut self.current, &self.buf, &mut pos) {
                Ok(Some(done)) => self.messages.push(done),
                Ok(None) => break,
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        self.buf.drain(..pos);
    }

    /// The peer closed: anything half-read is truncation.
    pub fn finish(&mut self) {
        if self.error.is_none() && (self.current.is_some() || !self.buf.is_empty()) {
            self.error = Some(StreamError::Truncated);
        }
    }
}

/// Feeds pipelined responses through `parse_response` and the body framing.
pub struct ResponseStream {
    max_head_bytes: usize,
    buf: Vec<u8>,
    current: Option<(OwnedResponse, Body)>,
    pub messages: Vec<OwnedResponse>,
    pub error: Option<StreamError>,
}

impl ResponseStream {
    pub fn new(max_head_bytes: usize) -> Self {
        ResponseStream {
            max_head_bytes,
            buf: Vec::new(),
            current: None,
            messages: Vec::new(),
            error: None,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            if self.current.is_none() {
                let mut storage = new_header_storage();
                match parse_response(&self.buf[pos..], &mut storage, false, self.max_head_bytes) {
                    Ok(Parsed::Partial) => break,
                    Err(e) => {
                        self.error = Some(StreamError::Response(e));
                        break;
                    }
                    Ok(Parsed::Complete(h)) => {
                        let res = OwnedResponse {
                            version: h.version,
                            status: h.status,
                            reason: h.reason.into(),
                            headers: h
                                .headers
                                .iter()
                                .map(|f| (f.name.to_string(), f.value.to_vec()))
                                .collect(),
                            framing: h.framing,
                            keep_alive: h.keep_alive,
                            body: Vec::new(),
                        };
                        pos += h.head_len;
                        let body = match h.framing {
                            ResponseFraming::NoBody | ResponseFraming::Length(0) => {
                                self.messages.push(res);
                                continue;
                            }
                            ResponseFraming::Length(n) => Body::Length(n),
                            ResponseFraming::Chunked => Body::Chunked(ChunkedDecoder::new()),
                            ResponseFraming::UntilClose => Body::UntilClose,
                        };
                        self.current = Some((res, body));
                    }
                }
            }
            match read_body(&mut self.current, &self.buf, &mut pos) {
                Ok(Some(done)) => self.messages.push(done),
                Ok(None) => break,
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        self.buf.drain(..pos);
    }

    /// The server closed: an until-close body ends here; anything else half-read is
    /// truncation.
    pub fn finish(&mut self) {
        if self.error.is_some() {
            return;
        }
        match self.current.take() {
            Some((res, Body::UntilClose)) => self.messages.push(res),
            Some(_) => self.error = Some(StreamError::Truncated),
            None if !self.buf.is_empty() => self.error = Some(StreamError::Truncated),
            None => {}
        }
    }
}

trait HasBody {
    fn body_mut(&mut self) -> &mut Vec<u8>;
}
impl HasBody for OwnedRequest {
    fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }
}
impl HasBody for OwnedResponse {
    fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }
}

/// Move body bytes from `buf[*pos..]` into the current message; the finished message
/// when its body is complete.
fn read_body<M: HasBody>(
    current: &mut Option<(M, Body)>,
    buf: &[u8],
    pos: &mut usize,
) -> Result<Option<M>, StreamError> {
    let Some((msg, body)) = current.as_mut() else {
        return Ok(None);
    };
    let finished = match body {
        Body::Length(remaining) => {
            let take = (*remaining).min((buf.len() - *pos) as u64) as usize;
            msg.body_mut().extend_from_slice(&buf[*pos..*pos + take]);
            *pos += take;
            *remaining -= take as u64;
            *remaining == 0
        }
        Body::UntilClose => {
            msg.body_mut().extend_from_slice(&buf[*pos..]);
            *pos = buf.len();
            false
        }
        Body::Chunked(decoder) => loop {
            let (n, event) = decoder.decode(&buf[*pos..]).map_err(StreamError::Chunked)?;
            *pos += n;
            match event {
                ChunkEvent::Data(data) => msg.body_mut().extend_from_slice(data),
                ChunkEvent::NeedMore => break false,
                ChunkEvent::Done => break true,
            }
        },
    };
    if finished {
        Ok(current.take().map(|(m, _)| m))
    } else {
        Ok(None)
    }
}

/// Serialize an owned request the way a client would (for round-trip tests).
pub fn write_owned_request(out: &mut Vec<u8>, req: &OwnedRequest, chunk_sizes: &[usize]) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(match req.version {
        Version::Http10 => b" HTTP/1.0\r\n",
        // HTTP/1.1 requests only: the HTTP/1 parser never yields HTTP/2.
        Version::Http11 | Version::Http2 => b" HTTP/1.1\r\n",
    });
    for (name, value) in &req.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    write_body(
        out,
        req.framing == BodyFraming::Chunked,
        &req.body,
        chunk_sizes,
    );
}

/// Body bytes, either raw or chunked into pieces of the given sizes (cycled).
pub fn write_body(out: &mut Vec<u8>, chunked: bool, body: &[u8], chunk_sizes: &[usize]) {
    if !chunked {
        out.extend_from_slice(body);
        return;
    }
    let mut rest = body;
    let mut sizes = chunk_sizes.iter().copied().filter(|&s| s > 0).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let mut digits = [0u8; 16];
        let mut at = digits.len();
        let mut v = n;
        loop {
            at -= 1;
            digits[at] = b"0123456789abcdef"[v % 16];
            v /= 16;
            if v == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
}
