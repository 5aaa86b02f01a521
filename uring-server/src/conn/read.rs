//! Reading requests: parse in place, de-chunk bodies, answer `100 Continue`, refuse what
//! breaks the rules (with the status the codec or the body limits give), and hand each
//! complete request to the exchange (`exchange.rs`).

use super::*;

impl Conn {
    /// Plaintext bytes: parse and answer what is complete, keep the rest.
    pub(super) fn on_plain<H: Handler>(&mut self, data: &[u8], ctx: &mut Ctx<'_, H>) {
        if self.tunnel.is_some() {
            return self.tunnel_input(data);
        }
        match self.proto {
            Proto::Http1 => {}
            Proto::Http2(_) => return self.on_h2_data(data, ctx),
            Proto::Unknown => {
                if self.sniff_http2(data, ctx) {
                    return;
                }
            }
        }
        if self.rbuf.is_empty() && !self.blocked() {
            let used = self.process(data, ctx);
            if used < data.len() && self.phase == Phase::Open {
                self.rbuf.extend_from_slice(&data[used..]);
            } else if used < data.len() {
                self.quiet_close = false;
            }
        } else {
            self.rbuf.extend_from_slice(data);
            self.pump(ctx);
        }
    }

    /// Answer what is buffered in `rbuf`; after the peer's EOF, close once every complete
    /// request is answered (what is left then is an incomplete request, never answered).
    pub(super) fn pump<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.is_http2() {
            return self.h2_pump(ctx);
        }
        self.answer_buffered(ctx);
        if self.peer_eof && self.phase == Phase::Open && !self.blocked() {
            self.phase = Phase::CloseAfterFlush;
        }
    }

    pub(super) fn answer_buffered<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.rbuf.is_empty() || self.phase != Phase::Open || self.blocked() {
            return;
        }
        let buf = std::mem::take(&mut self.rbuf);
        let used = self.process(&buf, ctx);
        self.rbuf = buf;
        if self.phase == Phase::Open {
            self.rbuf.drain(..used);
        } else {
            self.quiet_close &= used >= self.rbuf.len();
            self.rbuf.clear();
        }
        if self.rbuf.is_empty() {
            self.reading.head_done();
            // A large body grew the buffer; idle keep-alive connections should not keep it.
            if self.rbuf.capacity() > 64 * 1024 {
                self.rbuf = Vec::new();
            }
            if self.chunk_body.capacity() > 64 * 1024 {
                self.chunk_body = Vec::new();
            }
        }
    }

    /// Answer every complete request at the front of `buf`; returns the bytes consumed.
    pub(super) fn process<H: Handler>(&mut self, buf: &[u8], ctx: &mut Ctx<'_, H>) -> usize {
        let mut pos = 0;
        while pos < buf.len() && self.phase == Phase::Open && !self.blocked() {
            let mut storage: HeaderStorage<'_> = [const { MaybeUninit::uninit() }; 256];
            let head = match parse_request(&buf[pos..], &mut storage, ctx.limits) {
                Err(e) => {
                    self.refuse_counted(Refusal::Request(e), &buf[pos..], ctx);
                    return buf.len();
                }
                Ok(Parsed::Partial) => {
                    self.reading.head(ctx.now);
                    break;
                }
                Ok(Parsed::Complete(head)) => head,
            };
            self.reading.head_done();
            // RFC 9110 section 9.3.6: CONNECT asks for a tunnel. Unless the handler
            // tunnels, we are no proxy: 501, and close (the client may already be
            // sending the tunnelled bytes).
            if head.method == "CONNECT" && !ctx.handler.accepts_connect() {
                self.refuse_counted(Refusal::Connect, &buf[pos..], ctx);
                return buf.len();
            }
            let body_start = pos + head.head_len;
            match head.framing {
                BodyFraming::None => {
                    self.dispatch(&head, &[], ctx);
                    if matches!(self.answer, Answer::Deferred) {
                        break;
                    }
                    pos = body_start;
                }
                BodyFraming::Length(n) => {
                    if n > ctx.limits.max_body_bytes {
                        self.refuse_counted(Refusal::Body(BodyError::TooLarge), &buf[pos..], ctx);
                        return buf.len();
                    }
                    let n = n as usize;
                    if buf.len() - body_start >= n {
                        self.dispatch(&head, &buf[body_start..body_start + n], ctx);
                        if matches!(self.answer, Answer::Deferred) {
                            break;
                        }
                        pos = body_start + n;
                    } else {
                        self.reading.body(ctx.now);
                        self.maybe_continue(&head);
                        // Keep the whole request; it is parsed again when the body is in.
                        let want = head.head_len + n;
                        if self.rbuf.capacity() < want {
                            self.rbuf.reserve(want - self.rbuf.len());
                        }
                        break;
                    }
                }
                BodyFraming::Chunked => {
                    let raw = &buf[body_start + self.chunk_raw..];
                    match self.decode_chunked(raw, ctx.limits) {
                        Err(e) => {
                            self.refuse_counted(Refusal::Body(e), &buf[pos..], ctx);
                            return buf.len();
                        }
                        Ok(None) => {
                            self.reading.body(ctx.now);
                            self.maybe_continue(&head);
                            break;
                        }
                        Ok(Some(raw_used)) => {
                            let body = std::mem::take(&mut self.chunk_body);
                            self.dispatch(&head, &body, ctx);
                            self.chunk_body = body;
                            self.chunk_body.clear();
                            let raw_end = body_start + self.chunk_raw + raw_used;
                            self.chunk_raw = 0;
                            self.chunked.reset();
                            if matches!(self.answer, Answer::Deferred) {
                                // Decoded again when the request is handed over again.
                                break;
                            }
                            pos = raw_end;
                        }
                    }
                }
            }
        }
        pos
    }

    /// Decode as much of a chunked body as `raw` holds. `Some(consumed)` when the body is
    /// complete; `None` when more bytes are needed (what was decoded is remembered).
    pub(super) fn decode_chunked(
        &mut self,
        raw: &[u8],
        limits: &Limits,
    ) -> Result<Option<usize>, BodyError> {
        let mut at = 0;
        loop {
            let (used, ev) = self
                .chunked
                .decode(&raw[at..])
                .map_err(BodyError::Framing)?;
            at += used;
            let data_len = match ev {
                ChunkEvent::Data(d) => d.len(),
                _ => 0,
            };
            // Refuse as soon as a size line promises more than the limit, before the
            // data arrives (the decoder reports what the current chunk still owes).
            // Saturating: a chunk size near u64::MAX after some data must not wrap.
            let promised = ((self.chunk_body.len() + data_len) as u64)
                .saturating_add(self.chunked.chunk_remaining());
            if promised > limits.max_body_bytes {
                return Err(BodyError::TooLarge);
            }
            match ev {
                ChunkEvent::Data(d) => self.chunk_body.extend_from_slice(d),
                ChunkEvent::Done => return Ok(Some(at)),
                ChunkEvent::NeedMore => {
                    self.chunk_raw += at;
                    // Framing overhead is bounded too: tiny chunks must not grow rbuf forever.
                    let framing_cap = limits
                        .max_body_bytes
                        .saturating_mul(2)
                        .saturating_add(64 * 1024);
                    if self.chunk_raw as u64 > framing_cap {
                        return Err(BodyError::TooLarge);
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// RFC 9110 10.1.1: a server that will read the body should send 100 (Continue).
    pub(super) fn maybe_continue(&mut self, head: &RequestHead<'_, '_>) {
        if let Reading::Body { continue_sent, .. } = &mut self.reading {
            if head.expect_continue && !*continue_sent && head.version == Version::Http11 {
                self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                *continue_sent = true;
            }
        }
    }

    /// [`refuse`](Self::refuse), counted in the metrics.
    pub(super) fn refuse_counted<H: Handler>(
        &mut self,
        why: Refusal,
        request: &[u8],
        ctx: &mut Ctx<'_, H>,
    ) {
        if let Some(log) = ctx.log.as_deref_mut() {
            log.refused(why.status(), request_line(request), ctx.date);
        }
        self.refuse(why, ctx.date);
    }

    pub(super) fn refuse(&mut self, why: Refusal, date: &[u8; 29]) {
        let mut w = ResponseWriter::new(&mut self.out, date, false, false, false);
        let status = why.status();
        let body: &[u8] = match status {
            400 => b"Bad Request\n",
            408 => b"Request Timeout\n",
            413 => b"Content Too Large\n",
            414 => b"URI Too Long\n",
            431 => b"Request Header Fields Too Large\n",
            501 => b"Not Implemented\n",
            505 => b"HTTP Version Not Supported\n",
            _ => b"Error\n",
        };
        w.respond(status, &[("Content-Type", b"text/plain")], body);
        self.phase = Phase::CloseAfterFlush;
        self.reading = Reading::Idle;
        self.rbuf.clear();
    }
}

/// What the access log shows of a refused request: its first line as far as it came (up
/// to the line end, and never more than 8 KiB), as nginx logs a request it refuses.
pub(super) fn request_line(request: &[u8]) -> &[u8] {
    let line = &request[..request.len().min(8 * 1024)];
    let end = line.iter().position(|&b| b == b'\r' || b == b'\n');
    &line[..end.unwrap_or(line.len())]
}
