use super::*;

/// Echoes method, path and body, so tests can see what the handler got.
#[derive(Clone)]
struct Echo;
impl Handler for Echo {
    fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        let mut body = Vec::new();
        body.extend_from_slice(req.method().as_bytes());
        body.push(b' ');
        body.extend_from_slice(req.path().as_bytes());
        body.push(b' ');
        body.extend_from_slice(req.body());
        resp.respond(200, &[("Content-Type", b"text/plain")], &body);
    }
}

const DATE: &[u8; 29] = super::TEST_DATE;

struct Harness {
    conn: Conn,
    handler: Echo,
    limits: Limits,
    timeouts: Timeouts,
    now: Instant,
    wire: Vec<u8>,
    closed: Option<Close>,
    /// HTTP/2 is on in every test, so every HTTP/1.1 case also goes through the sniffing
    /// of the first bytes for HTTP/2's preface.
    http2: Option<uring_common::h2::Config>,
}

impl Harness {
    fn new() -> Harness {
        let now = Instant::now();
        let limits = Limits::default();
        Harness {
            conn: Conn::new(now, &Timeouts::default()),
            handler: Echo,
            http2: Some(http2_config(&limits, &Default::default())),
            limits,
            timeouts: Timeouts::default(),
            now,
            wire: Vec::new(),
            closed: None,
        }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut Conn, &mut Ctx<'_, Echo>) -> R) -> R {
        let mut ctx = Ctx::for_test(&mut self.handler, &self.limits, &self.timeouts, self.now);
        ctx.http2 = self.http2.as_ref();
        f(&mut self.conn, &mut ctx)
    }

    /// Play the worker: complete every send in full until nothing is left.
    fn settle(&mut self) {
        loop {
            if self.closed.is_none() {
                self.closed = self.conn.poll_close(self.now);
            }
            let Some(bytes) = take_send(&mut self.conn) else {
                break;
            };
            let n = bytes.len();
            self.wire.extend_from_slice(&bytes);
            self.with(|c, ctx| c.on_sent(n, ctx));
        }
        if self.closed.is_none() {
            self.closed = self.conn.poll_close(self.now);
        }
    }

    fn feed(&mut self, data: &[u8]) {
        self.with(|c, ctx| c.on_data(data, ctx));
        self.settle();
    }
}

fn response(body: &str, close: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nDate: {}\r\nServer: uring-server\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        std::str::from_utf8(DATE).unwrap(),
        body.len()
    );
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// Feed `input` split at every position (two pieces) and in one piece; every split
/// must give the same wire output.
fn at_every_split(input: &[u8]) -> Vec<u8> {
    let mut whole = Harness::new();
    whole.feed(input);
    for cut in 1..input.len() {
        let mut h = Harness::new();
        h.feed(&input[..cut]);
        h.feed(&input[cut..]);
        assert_eq!(
            String::from_utf8_lossy(&h.wire),
            String::from_utf8_lossy(&whole.wire),
            "split at {cut}"
        );
        assert_eq!(h.closed, whole.closed, "split at {cut}");
    }
    // And one byte at a time.
    let mut h = Harness::new();
    for b in input {
        h.feed(std::slice::from_ref(b));
    }
    assert_eq!(h.wire, whole.wire, "byte by byte");
    whole.wire
}

#[test]
fn pipelined_requests_answered_in_order_in_one_send() {
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut h = Harness::new();
    h.with(|c, ctx| c.on_data(req, ctx));
    // One send carries all three responses.
    let first = take_send(&mut h.conn).unwrap();
    let mut want = response("GET /a ", false);
    want.extend(response("GET /b ", false));
    want.extend(response("GET /c ", false));
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(at_every_split(req), want);
}

#[test]
fn content_length_body_split_everywhere() {
    let req = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /n HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut want = response("POST /up hello world", false);
    want.extend(response("GET /n ", false));
    assert_eq!(at_every_split(req), want);
}

#[test]
fn chunked_body_split_everywhere() {
    let req = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut want = response("POST /c hello world", false);
    want.extend(response("GET /n ", false));
    assert_eq!(at_every_split(req), want);
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let mut h = Harness::new();
    h.feed(b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(h.wire, b"HTTP/1.1 100 Continue\r\n\r\n");
    h.feed(b"abc");
    let mut want = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    want.extend(response("PUT /e abc", false));
    assert_eq!(h.wire, want);
}

#[test]
fn errors_answer_then_close() {
    for (req, status) in [
        (&b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..], "400"),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", "413"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", "413"),
        (b"GET / HTTP/1.1\r\n\r\n", "400"),
    ] {
        let mut h = Harness::new();
        h.feed(req);
        let text = String::from_utf8_lossy(&h.wire).to_string();
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert_eq!(h.closed, Some(Close::Linger));
        assert!(h.conn.wants_read(), "lingering reads until EOF");
        // Later bytes are ignored.
        let before = h.wire.len();
        h.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.wire.len(), before);
    }
}

#[test]
fn oversized_head_is_431() {
    let mut h = Harness::new();
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while req.len() < 20_000 {
        req.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    h.feed(&req);
    assert!(
        h.wire.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&h.wire)
    );
}

#[test]
fn connection_close_request_closes_after_response() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.wire, response("GET /a ", true));
    assert_eq!(h.closed, Some(Close::Linger));
}

/// Issue 12 (a connection per request): a client that asked for the close and sent
/// nothing more is closed at once, as nginx does, without a half-close and a wait
/// for its EOF; bytes after its request (above) or after the close was decided
/// keep the lingering close, so our response is not lost to a reset.
#[test]
fn a_close_asked_for_with_nothing_unread_does_not_linger() {
    for req in [
        &b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /a HTTP/1.0\r\n\r\n",
    ] {
        let mut h = Harness::new();
        h.feed(req);
        assert_eq!(
            h.closed,
            Some(Close::Now),
            "{}",
            String::from_utf8_lossy(req)
        );
    }
    let mut h = Harness::new();
    h.with(|c, ctx| {
        c.on_data(
            b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ctx,
        );
        c.on_data(b"late", ctx);
    });
    h.settle();
    assert_eq!(h.closed, Some(Close::Linger));
}

#[test]
fn half_close_answers_complete_requests_then_closes() {
    let mut h = Harness::new();
    h.with(|c, ctx| {
        c.on_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HT", ctx);
        c.on_eof(ctx);
    });
    h.settle();
    assert_eq!(h.wire, response("GET /a ", false));
    assert_eq!(h.closed, Some(Close::Now));
}

#[test]
fn head_has_no_body() {
    let mut h = Harness::new();
    h.feed(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8_lossy(&h.wire).to_string();
    assert!(text.contains("Content-Length: 8\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
}

#[test]
fn slowloris_head_times_out_from_its_first_byte() {
    let mut h = Harness::new();
    let start = h.now;
    h.feed(b"GET / HTTP/1.1\r\n");
    let deadline = h.conn.deadline().unwrap();
    assert_eq!(deadline, start + Duration::from_secs(10));
    // More bytes do not extend the head deadline.
    h.now += Duration::from_secs(5);
    h.feed(b"X-A: b\r\n");
    assert_eq!(h.conn.deadline().unwrap(), deadline);
    h.conn.on_timeout(deadline);
    assert_eq!(h.conn.poll_close(deadline), Some(Close::Now));
}

/// Issue 9 (4g): the head timeout runs from accept, so a connection that sends
/// nothing is closed after it, not after the keep-alive timeout.
#[test]
fn silent_connection_times_out_after_the_head_timeout() {
    let mut h = Harness::new();
    let accepted = h.now;
    assert_eq!(h.conn.deadline(), Some(accepted + Duration::from_secs(10)));
    // Slot reuse starts the clock again.
    h.now += Duration::from_secs(100);
    h.conn.reset(h.now);
    assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(10)));
    let d = h.conn.deadline().unwrap();
    h.conn.on_timeout(d - Duration::from_millis(1));
    assert!(!h.conn.is_closed());
    h.conn.on_timeout(d);
    assert_eq!(h.conn.poll_close(d), Some(Close::Now));
    assert!(
        take_send(&mut h.conn).is_none(),
        "no answer to a silent connection"
    );
}

/// Issue 9 (4g): a body has `body_read` from the end of its head, however it
/// trickles in (each byte used to push the idle deadline on); then 408 and close.
#[test]
fn trickling_body_gets_408_after_the_body_timeout() {
    for (head, piece) in [
        (
            &b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"[..],
            &b"a"[..],
        ),
        (
            b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\na\r\n",
        ),
    ] {
        let mut h = Harness::new();
        h.now += Duration::from_secs(3);
        let head_done = h.now;
        h.feed(head);
        assert_eq!(h.conn.deadline(), Some(head_done + Duration::from_secs(60)));
        for _ in 0..59 {
            h.now += Duration::from_secs(1);
            h.feed(piece);
            assert_eq!(h.conn.deadline(), Some(head_done + Duration::from_secs(60)));
        }
        assert!(h.wire.is_empty());
        h.now += Duration::from_secs(1);
        h.conn.on_timeout(h.now);
        h.settle();
        let text = String::from_utf8_lossy(&h.wire).to_string();
        assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert_eq!(h.closed, Some(Close::Linger));
    }
}

/// The body timer is per request: a later body gets a fresh one, and a complete
/// request leaves the idle timeout in charge.
#[test]
fn body_timer_is_per_request() {
    let mut h = Harness::new();
    h.feed(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na");
    h.now += Duration::from_secs(50);
    h.feed(b"b");
    assert_eq!(h.wire, response("POST /a ab", false));
    assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(60)));
    h.now += Duration::from_secs(5);
    let second = h.now;
    h.feed(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nc");
    assert_eq!(h.conn.deadline(), Some(second + Duration::from_secs(60)));
}

#[test]
fn idle_keep_alive_times_out() {
    let mut h = Harness::new();
    h.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let d = h.conn.deadline().unwrap();
    assert_eq!(d, h.now + Duration::from_secs(60));
    h.conn.on_timeout(d - Duration::from_secs(1));
    assert!(!h.conn.is_closed());
    h.conn.on_timeout(d);
    assert!(h.conn.is_closed());
}

#[test]
fn drain_closes_idle_and_waits_for_partial_requests() {
    // Nothing pending: closed once the grace for a request already on its way ends.
    let mut h = Harness::new();
    h.conn.start_drain();
    assert_eq!(h.conn.poll_close(h.now), None);
    assert_eq!(h.conn.deadline(), Some(h.now + DRAIN_GRACE));
    assert_eq!(h.conn.poll_close(h.now + DRAIN_GRACE), Some(Close::Now));

    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHo");
    h.conn.start_drain();
    assert_eq!(h.conn.poll_close(h.now), None);
    h.feed(b"st: x\r\n\r\n");
    assert_eq!(h.wire, response("GET /a ", true));
    assert_eq!(h.closed, Some(Close::Linger));
}

#[test]
fn big_chunked_body_in_small_pieces() {
    for piece in [4096, 1000, 7] {
        let mut req = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            req.extend_from_slice(format!("{:x}\r\n{}\r\n", 30000, "c".repeat(30000)).as_bytes());
        }
        req.extend_from_slice(b"0\r\n\r\n");
        let mut h = Harness::new();
        for p in req.chunks(piece) {
            h.feed(p);
        }
        let text = String::from_utf8_lossy(&h.wire).to_string();
        assert!(
            text.starts_with("HTTP/1.1 200 "),
            "piece {piece}: {}",
            &text[..text.len().min(200)]
        );
        assert!(text.contains("Content-Length: 90008\r\n"), "piece {piece}");
    }
}

#[test]
fn reset_slot_forgets_the_previous_connection() {
    let mut h = Harness::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    h.conn.on_error();
    h.conn.reset(h.now);
    h.wire.clear();
    h.closed = None;
    h.feed(
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(h.wire, response("POST /c abc", false));
}

#[test]
fn many_handler_headers_and_http10_keep_alive() {
    #[derive(Clone)]
    struct Many;
    impl Handler for Many {
        fn handle(&mut self, _req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            let names = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"];
            let hs: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, &b"v"[..])).collect();
            resp.respond(200, &hs, b"x");
        }
    }
    let mut conn = Conn::new(Instant::now(), &Timeouts::default());
    let mut handler = Many;
    let limits = Limits::default();
    let timeouts = Timeouts::default();
    let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, Instant::now());
    conn.on_data(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        &mut ctx,
    );
    let text = String::from_utf8_lossy(&take_send(&mut conn).unwrap()).to_string();
    assert!(
        text.contains("Server: uring-server\r\nConnection: keep-alive\r\nA: v\r\n"),
        "{text}"
    );
    assert!(
        text.contains("J: v\r\nContent-Length: 1\r\n\r\nx"),
        "{text}"
    );
}

/// Random mixes of request kinds, pipelined and cut into random pieces, must give the
/// same bytes as feeding each request alone.
#[test]
fn random_pipelines_in_random_pieces() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _round in 0..200 {
        let mut input = Vec::new();
        let mut want = Vec::new();
        for i in 0..1 + rnd(12) {
            let (req, body): (Vec<u8>, String) = match rnd(4) {
                0 => (
                    format!("GET /g{i} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
                    format!("GET /g{i} "),
                ),
                1 => {
                    let b = "b".repeat(rnd(3000));
                    (
                        format!(
                            "POST /p{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{b}",
                            b.len()
                        )
                        .into_bytes(),
                        format!("POST /p{i} {b}"),
                    )
                }
                2 => {
                    let parts: Vec<String> =
                        (0..rnd(4)).map(|k| "c".repeat(1 + rnd(500) + k)).collect();
                    let mut r = format!(
                        "PUT /c{i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    );
                    for p in &parts {
                        r.push_str(&format!("{:x}\r\n{p}\r\n", p.len()));
                    }
                    r.push_str("0\r\n\r\n");
                    (r.into_bytes(), format!("PUT /c{i} {}", parts.concat()))
                }
                _ => (
                    format!(
                        "GET /h{i}?q=1 HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
                        "p".repeat(rnd(2000))
                    )
                    .into_bytes(),
                    format!("GET /h{i} "),
                ),
            };
            input.extend_from_slice(&req);
            want.extend(response(&body, false));
        }
        let mut h = Harness::new();
        let mut at = 0;
        while at < input.len() {
            let n = (1 + rnd(4096)).min(input.len() - at);
            h.feed(&input[at..at + n]);
            at += n;
        }
        assert!(h.wire == want, "round {_round}");
        assert_eq!(h.closed, None);
    }
}

/// A file body streams in bounded chunks after its head (read and copied, or spliced
/// once the head is out), and the pipelined request behind it is answered only after
/// the file is done. With `truncate_after`, the file ends early at that chunk: the
/// connection closes and nothing after the short body is sent.
fn stream_a_file(zero_copy: bool, truncate_after: Option<usize>) -> (Vec<u8>, Conn) {
    #[derive(Clone)]
    struct Files(std::path::PathBuf, bool);
    impl Handler for Files {
        fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            if req.path() == "/file" {
                let file = std::fs::File::open(&self.0).unwrap();
                let body = FileBody::new(file, 10, 300_000).zero_copy(self.1);
                resp.respond_file(200, &[], body);
            } else {
                resp.respond(200, &[], b"after");
            }
        }
    }
    let path = std::env::temp_dir().join(format!(
        "conn-file-test-{}-{zero_copy}-{truncate_after:?}",
        std::process::id()
    ));
    let content: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let mut handler = Files(path.clone(), zero_copy);
    let limits = Limits::default();
    let timeouts = Timeouts::default();
    let now = Instant::now();
    let mut conn = Conn::new(now, &timeouts);
    let mut wire = Vec::new();
    let mut largest_send = 0;
    let mut chunks = 0;
    let mut staged = Vec::new();
    let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
    conn.on_data(
        b"GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
        &mut ctx,
    );
    assert!(
        conn.wants_read(),
        "a little input is taken while a file streams"
    );
    let pread = |fd, off, len: u32| {
        let mut buf = vec![0u8; len as usize];
        // SAFETY: buf has room for len bytes.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len as usize, off as i64) };
        buf.truncate(n.max(0) as usize);
        (buf, n as i32)
    };
    for _ in 0..100 {
        if Some(chunks) == truncate_after {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(20_000)
                .unwrap();
        }
        if let Some((fd, off, len)) = conn.poll_file_read() {
            assert!(!zero_copy);
            assert!(len as usize <= FILE_CHUNK);
            let (buf, n) = pread(fd, off, len);
            chunks += 1;
            conn.on_file_read(if n > 0 { Ok(&buf) } else { Err(n) }, &mut ctx);
            continue;
        }
        if let Some((fd, off, len, more)) = conn.poll_splice() {
            assert!(zero_copy);
            if chunks == 0 {
                assert!(staged.ends_with(b"\r\n\r\n"), "the head rides the splice");
            }
            // As the driver would: bytes left in the send buffer go first.
            wire.append(&mut staged);
            assert_eq!(more, off + (len as u64) < 300_010);
            // As the driver would: a pipe of 128 KiB takes part of what was asked.
            let (buf, n) = pread(fd, off, len.min(128 * 1024));
            chunks += 1;
            let whole = n == len.min(128 * 1024) as i32;
            wire.extend_from_slice(&buf);
            conn.on_spliced(if whole { Ok(n as usize) } else { Err(0) }, &mut ctx);
            continue;
        }
        assert!(staged.is_empty(), "a staged head is spliced at once");
        let mut bytes = Vec::new();
        if !conn.poll_send(&mut bytes) {
            if bytes.is_empty() {
                break;
            }
            staged = bytes;
            continue;
        }
        largest_send = largest_send.max(bytes.len());
        let n = bytes.len();
        wire.extend_from_slice(&bytes);
        conn.on_sent(n, &mut ctx);
    }
    std::fs::remove_file(&path).unwrap();
    let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let text = String::from_utf8_lossy(&wire[..head_end]).to_string();
    assert!(text.contains("Content-Length: 300000\r\n"), "{text}");
    let body = &wire[head_end..];
    let sent = body.len().min(300_000);
    assert!(body[..sent] == content[10..10 + sent], "never wrong bytes");
    assert!(largest_send <= FILE_CHUNK + 4096, "{largest_send}");
    (body.to_vec(), conn)
}

#[test]
fn file_bodies_stream_in_bounded_chunks_then_the_pipeline_resumes() {
    for zero_copy in [false, true] {
        let (body, conn) = stream_a_file(zero_copy, None);
        assert!(body.len() > 300_000, "zero_copy {zero_copy}");
        assert!(body.ends_with(b"after"));
        assert!(conn.wants_read());
    }
}

/// Issue 12: a file truncated while it is sent closes the connection; the short body
/// is never followed by the next response (the client cannot take it for whole).
#[test]
fn a_file_truncated_while_it_streams_closes_the_connection() {
    for zero_copy in [false, true] {
        let (body, mut conn) = stream_a_file(zero_copy, Some(1));
        assert!(
            body.len() < 300_000,
            "zero_copy {zero_copy}: {}",
            body.len()
        );
        assert!(!body.ends_with(b"after"));
        assert!(conn.is_closed());
        assert_eq!(conn.poll_close(Instant::now()), Some(Close::Now));
    }
}

/// Issue 9 (4a): the peer's EOF arrives while a file is streaming; the request
/// pipelined behind the file was complete before the EOF and must still be answered.
#[test]
fn eof_while_a_file_streams_still_answers_the_pipelined_request() {
    #[derive(Clone)]
    struct Files(std::path::PathBuf);
    impl Handler for Files {
        fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            if req.path() == "/file" {
                let file = std::fs::File::open(&self.0).unwrap();
                let len = file.metadata().unwrap().len();
                resp.respond_file(200, &[], FileBody::new(file, 0, len).zero_copy(false));
            } else {
                resp.respond(200, &[], b"after");
            }
        }
    }
    let path = std::env::temp_dir().join(format!("conn-eof-test-{}", std::process::id()));
    std::fs::write(&path, vec![b'f'; 3 * FILE_CHUNK + 7]).unwrap();
    let mut handler = Files(path.clone());
    let limits = Limits::default();
    let timeouts = Timeouts::default();
    let now = Instant::now();
    let mut conn = Conn::new(now, &timeouts);
    let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
    conn.on_data(
        b"GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /partial HT",
        &mut ctx,
    );
    conn.on_eof(&mut ctx);
    let mut wire = Vec::new();
    let mut close = None;
    for _ in 0..100 {
        if close.is_none() {
            close = conn.poll_close(now);
        }
        if let Some((fd, off, len)) = conn.poll_file_read() {
            let mut buf = vec![0u8; len as usize];
            // SAFETY: buf has room for len bytes.
            let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len as usize, off as i64) };
            let read = if n > 0 {
                Ok(&buf[..n as usize])
            } else {
                Err(n as i32)
            };
            conn.on_file_read(read, &mut ctx);
            continue;
        }
        let Some(bytes) = take_send(&mut conn) else {
            break;
        };
        let n = bytes.len();
        wire.extend_from_slice(&bytes);
        conn.on_sent(n, &mut ctx);
    }
    if close.is_none() {
        close = conn.poll_close(now);
    }
    std::fs::remove_file(&path).unwrap();
    let text = String::from_utf8_lossy(&wire);
    assert_eq!(text.matches("HTTP/1.1 200 ").count(), 2, "{}", &text[..200]);
    assert!(
        wire.ends_with(b"after"),
        "the pipelined request was dropped"
    );
    assert_eq!(
        close,
        Some(Close::Now),
        "the incomplete third request is not waited for"
    );
}

/// Issue 9 (4a), the other blocked state: more than the high-water mark of output is
/// unsent when the EOF arrives; the requests behind it are answered once it drains.
#[test]
fn eof_with_output_backlog_still_answers_the_pipelined_requests() {
    #[derive(Clone)]
    struct Big;
    impl Handler for Big {
        fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            if req.path() == "/big" {
                resp.respond(200, &[], &vec![b'b'; OUT_HIGH_WATER + 10]);
            } else {
                resp.respond(200, &[], b"after");
            }
        }
    }
    let mut handler = Big;
    let limits = Limits::default();
    let timeouts = Timeouts::default();
    let now = Instant::now();
    let mut conn = Conn::new(now, &timeouts);
    let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
    conn.on_data(
        b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
        &mut ctx,
    );
    conn.on_eof(&mut ctx);
    let mut wire = Vec::new();
    for _ in 0..100 {
        // (The driver continues short sends: the machine hears of whole sends only.)
        let Some(bytes) = take_send(&mut conn) else {
            break;
        };
        let n = bytes.len();
        wire.extend_from_slice(&bytes);
        conn.on_sent(n, &mut ctx);
    }
    let text = String::from_utf8_lossy(&wire);
    assert_eq!(text.matches("HTTP/1.1 200 ").count(), 3);
    assert!(text.ends_with("after"));
    assert_eq!(conn.poll_close(now), Some(Close::Now));
}

/// Issue 9 (4c): a huge chunk size after some data, or a body limit near `u64::MAX`,
/// must not overflow the limit arithmetic (a panic in a debug build; in release the
/// early 413 was skipped). Unit tests run with overflow checks on.
#[test]
fn chunked_limit_arithmetic_saturates() {
    let mut h = Harness::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nFFFFFFFFFFFFFFFF\r\n");
    assert!(
        h.wire.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&h.wire)
    );
    assert_eq!(h.closed, Some(Close::Linger));

    let mut h = Harness::new();
    h.limits.max_body_bytes = u64::MAX;
    h.feed(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab");
    h.feed(b"c\r\n0\r\n\r\n");
    assert_eq!(h.wire, response("POST /c abc", false));
}

#[test]
fn connect_is_501_unless_the_handler_tunnels() {
    let mut h = Harness::new();
    h.feed(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
    let text = String::from_utf8_lossy(&h.wire).to_string();
    assert!(text.starts_with("HTTP/1.1 501 "), "{text}");
    assert_eq!(h.closed, Some(Close::Linger));

    #[derive(Clone)]
    struct Tunnel;
    impl Handler for Tunnel {
        fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            resp.respond(200, &[], req.target().as_bytes());
        }
        fn accepts_connect(&self) -> bool {
            true
        }
    }
    let (limits, timeouts, now) = (Limits::default(), Timeouts::default(), Instant::now());
    let mut handler = Tunnel;
    let mut conn = Conn::new(now, &timeouts);
    let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
    conn.on_data(
        b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
        &mut ctx,
    );
    let text = String::from_utf8_lossy(&take_send(&mut conn).unwrap()).to_string();
    assert!(
        text.starts_with("HTTP/1.1 200 ") && text.ends_with("a.example:443"),
        "{text}"
    );
}

/// Answers every request with the first 100,000 bytes of its file, zero-copy or not.
#[derive(Clone)]
struct OneFile(std::path::PathBuf, bool);
impl Handler for OneFile {
    fn handle(&mut self, _req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        let file = std::fs::File::open(&self.0).unwrap();
        resp.respond_file(200, &[], FileBody::new(file, 0, 100_000).zero_copy(self.1));
    }
}

/// Item 5: the file read's bytes come in as a slice (the driver's read buffer), so
/// nothing here can expose memory the kernel did not write; a completion without a read
/// in flight is ignored and more bytes than the body promised are clamped.
/// Issue 12: the receive stays on while a file streams (no cancel and new receive per
/// response), and stops once input piles up behind the file.
#[test]
fn reading_goes_on_while_a_file_streams_until_input_piles_up() {
    let path = std::env::temp_dir().join(format!("conn-readon-test-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 100_000]).unwrap();
    let mut handler = OneFile(path.clone(), true);
    let (limits, timeouts, now) = (Limits::default(), Timeouts::default(), Instant::now());
    let mut conn = Conn::new(now, &timeouts);
    let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
    conn.on_data(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n", &mut ctx);
    assert!(conn.answer.file().is_some());
    assert!(conn.wants_read());
    let partial = format!("GET /g HTTP/1.1\r\nX: {}", "a".repeat(READ_WHILE_STREAMING));
    conn.on_data(partial.as_bytes(), &mut ctx);
    assert!(!conn.wants_read(), "input piled up behind the file");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn file_reads_not_asked_for_or_too_long_change_nothing_they_should_not() {
    let path = std::env::temp_dir().join(format!("conn-sound-test-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 100_000]).unwrap();
    let mut handler = OneFile(path.clone(), false);
    let (limits, timeouts, now) = (Limits::default(), Timeouts::default(), Instant::now());
    let mut conn = Conn::new(now, &timeouts);
    let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
    conn.on_data(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n", &mut ctx);
    let head_len = conn.out.len();
    // Not asked for: ignored.
    conn.on_file_read(Ok(&[1u8; 4096]), &mut ctx);
    assert_eq!(conn.out.len(), head_len);
    let (_, off, len) = conn.poll_file_read().unwrap();
    assert_eq!((off, len as usize), (0, FILE_CHUNK));
    conn.on_file_read(Ok(&[7u8; FILE_CHUNK]), &mut ctx);
    assert_eq!(conn.out.len(), head_len + FILE_CHUNK);
    // The rest of the body is 100_000 - 65536 bytes: a longer read is clamped to it.
    let out = std::mem::take(&mut conn.out);
    let (_, off, len) = conn.poll_file_read().unwrap();
    assert_eq!(
        (off, len as usize),
        (FILE_CHUNK as u64, 100_000 - FILE_CHUNK)
    );
    conn.on_file_read(Ok(&[7u8; FILE_CHUNK]), &mut ctx);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(conn.out.len(), 100_000 - FILE_CHUNK);
    assert!(conn.poll_file_read().is_none(), "the body is complete");
    drop(out);
}

#[test]
fn absolute_form_targets_route_by_path() {
    let mut h = Harness::new();
    h.feed(b"GET http://example.com/a?x HTTP/1.1\r\nHost: example.com\r\n\r\nGET HTTP://example.com HTTP/1.1\r\nHost: example.com\r\n\r\nGET /\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut want = response("GET /a ", false);
    want.extend(response("GET / ", false));
    let text = String::from_utf8_lossy(&h.wire).to_string();
    assert!(text.starts_with(&*String::from_utf8_lossy(&want)), "{text}");
    // The codec refuses a non-ASCII target.
    assert!(text.contains("HTTP/1.1 400 "), "{text}");
}

#[test]
fn one_send_at_a_time_and_nothing_lost_meanwhile() {
    let mut h = Harness::new();
    h.with(|c, ctx| c.on_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", ctx));
    let first = take_send(&mut h.conn).unwrap();
    assert!(take_send(&mut h.conn).is_none(), "one send at a time");
    h.with(|c, ctx| c.on_data(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", ctx));
    assert!(take_send(&mut h.conn).is_none(), "still one send at a time");
    let n = first.len();
    h.with(|c, ctx| c.on_sent(n, ctx));
    let second = take_send(&mut h.conn).unwrap();
    assert_eq!(second, response("GET /b ", false));
}

/// Play the driver's send buffer: what `poll_send` hands over.
fn take_send(conn: &mut Conn) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    conn.poll_send(&mut buf).then_some(buf)
}

/// HTTP/2 on a connection, driven by the shared codec's client role in memory.
mod http2 {
    use super::*;
    use uring_common::h2::{
        Config as H2Config, Connection as H2Conn, Event as H2Event, Events, HeadersKind, Role,
    };

    /// A client that opened one stream per request; its bytes so far.
    fn client(reqs: &[(&str, &str, &[u8])]) -> (H2Conn, Vec<u8>) {
        let mut c = H2Conn::new(Role::Client, H2Config::default(), Instant::now());
        for &(method, path, body) in reqs {
            let s = c
                .open_stream(
                    method.as_bytes(),
                    b"http",
                    b"example",
                    path.as_bytes(),
                    &[],
                    body.is_empty(),
                )
                .unwrap();
            if !body.is_empty() {
                assert_eq!(c.send_data(s, body, true).unwrap(), body.len());
            }
        }
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        (c, out)
    }

    /// The responses in the server's bytes, as the client reads them: (status, body) by
    /// stream id.
    fn responses(c: &mut H2Conn, wire: &[u8]) -> std::collections::BTreeMap<u32, (u16, Vec<u8>)> {
        let mut events = Events::new();
        c.recv(wire, Instant::now(), &mut events)
            .expect("the client accepts our bytes");
        let mut out = std::collections::BTreeMap::new();
        for ev in events.iter() {
            match *ev {
                H2Event::Headers {
                    stream,
                    kind: HeadersKind::Response,
                    pseudo,
                    ..
                } => {
                    out.insert(stream, (pseudo.status, Vec::new()));
                }
                H2Event::Data { stream, data, .. } => {
                    out.get_mut(&stream)
                        .unwrap()
                        .1
                        .extend_from_slice(events.data(data));
                }
                H2Event::Reset { stream, code, .. } => panic!("stream {stream} reset: {code:?}"),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn requests_over_prior_knowledge_at_every_split() {
        let reqs: [(&str, &str, &[u8]); 3] = [
            ("GET", "/a", b""),
            ("POST", "/b?q=1", b"hello"),
            ("HEAD", "/c", b""),
        ];
        let (mut c, input) = client(&reqs);
        let wire = at_every_split(&input);
        let got = responses(&mut c, &wire);
        let want: Vec<(u32, (u16, Vec<u8>))> = vec![
            (1, (200, b"GET /a ".to_vec())),
            (3, (200, b"POST /b hello".to_vec())),
            (5, (200, Vec::new())),
        ];
        assert_eq!(got.into_iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn http1_starting_like_the_preface_stays_http1() {
        // "P" then "UT": a prefix of the preface for one byte only.
        let wire = at_every_split(b"PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(
            String::from_utf8_lossy(&wire),
            String::from_utf8_lossy(&response("PUT /p hi", false))
        );
    }

    #[test]
    fn with_http2_off_the_preface_is_an_http1_error() {
        let (_, input) = client(&[("GET", "/", b"")]);
        let mut h = Harness::new();
        h.http2 = None;
        h.feed(&input);
        assert!(
            h.wire.starts_with(b"HTTP/1.1 505 "),
            "{:?}",
            String::from_utf8_lossy(&h.wire)
        );
        assert!(!h.conn.is_http2());
    }

    #[test]
    fn a_body_over_the_limit_is_413_and_the_connection_lives_on() {
        let big = vec![b'x'; 2000];
        let (mut c, input) = client(&[("POST", "/big", &big), ("GET", "/after", b"")]);
        let mut h = Harness::new();
        h.limits.max_body_bytes = 1000;
        h.feed(&input);
        let got = responses(&mut c, &h.wire);
        assert_eq!(got[&1].0, 413);
        assert_eq!(got[&3], (200, b"GET /after ".to_vec()));
        assert!(h.closed.is_none());
    }

    /// Feed a client's bytes to a connection whose HTTP/2 settings `adjust` changes;
    /// the client's events for the answer.
    fn exchange(c: &mut H2Conn, adjust: impl FnOnce(&mut H2Config)) -> Events {
        let mut input = Vec::new();
        c.poll_transmit(&mut input);
        let mut h = Harness::new();
        adjust(h.http2.as_mut().unwrap());
        h.feed(&input);
        let mut events = Events::new();
        c.recv(&h.wire, Instant::now(), &mut events).unwrap();
        events
    }

    #[test]
    fn streams_over_the_limit_are_refused() {
        let mut c = H2Conn::new(Role::Client, H2Config::default(), Instant::now());
        // Three streams whose bodies never end, sent before our SETTINGS arrive.
        for _ in 0..3 {
            c.open_stream(b"POST", b"http", b"a", b"/", &[], false)
                .unwrap();
        }
        let events = exchange(&mut c, |cfg| cfg.max_concurrent_streams = 2);
        let refused: Vec<u32> = events
            .iter()
            .filter_map(|e| match *e {
                H2Event::Reset {
                    stream,
                    retryable: true,
                    ..
                } => Some(stream),
                _ => None,
            })
            .collect();
        assert_eq!(refused, vec![5], "the third stream is refused: {events:?}");
    }

    #[test]
    fn a_header_list_over_the_limit_is_431() {
        let mut c = H2Conn::new(Role::Client, H2Config::default(), Instant::now());
        let big = vec![b'v'; 3000];
        let fields: [(&[u8], &[u8]); 1] = [(b"x-big", &big)];
        c.open_stream(b"GET", b"http", b"a", b"/", &fields, true)
            .unwrap();
        let events = exchange(&mut c, |cfg| cfg.max_header_list_size = 2048);
        let status = events.iter().find_map(|e| match *e {
            H2Event::Headers {
                stream: 1, pseudo, ..
            } => Some(pseudo.status),
            _ => None,
        });
        assert_eq!(status, Some(431), "{events:?}");
    }

    #[test]
    fn drain_sends_goaway_and_closes_after_the_streams() {
        let (mut c, input) = client(&[("GET", "/x", b"")]);
        let mut h = Harness::new();
        h.feed(&input);
        assert!(h.conn.is_http2() && h.closed.is_none());
        h.conn.start_drain();
        h.settle();
        let mut events = Events::new();
        c.recv(&h.wire, Instant::now(), &mut events).unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, H2Event::GoAway { last_stream: 1, .. })),
            "{:?}",
            events.iter().collect::<Vec<_>>()
        );
        // Half-closed, then reading until the client's EOF: the GOAWAY is not lost to a
        // reset by input we did not read (RFC 9113 6.8's graceful close).
        assert_eq!(h.closed, Some(Close::Linger));
    }

    /// Routes `/up/...` to upstream 0 and answers the rest itself.
    #[derive(Clone)]
    struct Proxying;
    impl Handler for Proxying {
        fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            resp.respond(200, &[], req.path().as_bytes());
        }
        fn upstream_for(&self, req: &Request<'_>) -> Option<crate::config::UpstreamRoute> {
            req.path()
                .starts_with("/up/")
                .then_some(crate::config::UpstreamRoute {
                    upstream: 0,
                    trust_forwarded: false,
                    protocol: Default::default(),
                    fastcgi: None,
                    key: None,
                })
        }
    }

    /// One HTTP/2 client connection with the proxy played by hand: requests in, the
    /// forwards they become, upstream responses fed through the connection's sink.
    struct ProxyPair {
        conns: Vec<Conn>,
        handler: Proxying,
        limits: Limits,
        timeouts: Timeouts,
        http2: uring_common::h2::Config,
        client: H2Conn,
        /// The server's bytes the client has not read yet.
        wire: Vec<u8>,
    }

    impl ProxyPair {
        fn new() -> ProxyPair {
            let now = Instant::now();
            let limits = Limits::default();
            ProxyPair {
                conns: vec![Conn::new(now, &Timeouts::default())],
                handler: Proxying,
                http2: http2_config(&limits, &Default::default()),
                limits,
                timeouts: Timeouts::default(),
                client: H2Conn::new(Role::Client, H2Config::default(), now),
                wire: Vec::new(),
            }
        }

        fn with<R>(&mut self, f: impl FnOnce(&mut Conn, &mut Ctx<'_, Proxying>) -> R) -> R {
            let now = Instant::now();
            let mut ctx = Ctx::for_test(&mut self.handler, &self.limits, &self.timeouts, now);
            ctx.http2 = Some(&self.http2);
            f(&mut self.conns[0], &mut ctx)
        }

        /// The client's queued frames to the server; the server's answer collected.
        fn flush_client(&mut self) {
            let mut input = Vec::new();
            self.client.poll_transmit(&mut input);
            if !input.is_empty() {
                self.with(|c, ctx| c.on_data(&input, ctx));
            }
            self.settle();
        }

        fn settle(&mut self) {
            while let Some(bytes) = take_send(&mut self.conns[0]) {
                let n = bytes.len();
                self.wire.extend_from_slice(&bytes);
                self.with(|c, ctx| c.on_sent(n, ctx));
            }
        }

        /// Relay `upstream`'s response bytes (split at `at`) for `stream`, as the proxy
        /// machine does, and its outcome.
        fn respond(&mut self, stream: u32, side: ClientSide, upstream: &[u8], at: usize) {
            let mut ex = crate::proxy::upstream::Exchange::new(side);
            let client = crate::proxy::client_id(0, stream);
            let mut done = false;
            for piece in [&upstream[..at], &upstream[at..]] {
                let mut sink = self.conns.sink(client);
                match ex.on_data(piece, DATE, &mut sink) {
                    Ok(crate::proxy::upstream::Progress::Done { .. }) => done = true,
                    Ok(_) => {}
                    Err(e) => panic!("{e:?}"),
                }
                let outcome = match done {
                    true => ForwardOutcome::Done {
                        keep_alive: true,
                        log: Default::default(),
                    },
                    false => ForwardOutcome::Progress,
                };
                self.with(|c, ctx| c.on_forward(stream, outcome, ctx));
                self.settle();
                if done {
                    break;
                }
            }
            assert!(done, "the upstream response ends");
        }

        /// What the client read: (status, fields, body, ended) by stream.
        fn read(&mut self) -> std::collections::BTreeMap<u32, Seen> {
            let mut events = Events::new();
            let wire = std::mem::take(&mut self.wire);
            self.client
                .recv(&wire, Instant::now(), &mut events)
                .expect("the client accepts our bytes");
            let mut out = std::collections::BTreeMap::new();
            for ev in events.iter() {
                match *ev {
                    H2Event::Headers {
                        stream,
                        kind: HeadersKind::Response,
                        pseudo,
                        fields,
                        end_stream,
                        ..
                    } => {
                        let fields = events
                            .fields(fields)
                            .map(|(n, v)| {
                                (
                                    String::from_utf8_lossy(n).to_string(),
                                    String::from_utf8_lossy(v).to_string(),
                                )
                            })
                            .collect();
                        out.insert(
                            stream,
                            Seen {
                                status: pseudo.status,
                                fields,
                                body: Vec::new(),
                                ended: end_stream,
                                reset: None,
                            },
                        );
                    }
                    H2Event::Data {
                        stream,
                        data,
                        end_stream,
                        ..
                    } => {
                        let s = out.entry(stream).or_insert_with(Seen::default);
                        s.body.extend_from_slice(events.data(data));
                        s.ended |= end_stream;
                    }
                    H2Event::Reset { stream, code, .. } => {
                        out.entry(stream).or_insert_with(Seen::default).reset = Some(code);
                    }
                    _ => {}
                }
            }
            out
        }
    }

    #[derive(Debug, Default)]
    struct Seen {
        status: u16,
        fields: Vec<(String, String)>,
        body: Vec<u8>,
        ended: bool,
        reset: Option<uring_common::h2::ErrorCode>,
    }

    fn side() -> ClientSide {
        ClientSide {
            head_only: false,
            http10: false,
            keep_alive: true,
        }
    }

    use crate::proxy::upstream::{ClientSide, ResponseSink};
    use crate::proxy::ClientOutput;

    #[test]
    fn proxied_streams_become_http1_requests_and_their_responses_frames() {
        let mut p = ProxyPair::new();
        let cookies: [(&[u8], &[u8]); 3] =
            [(b"cookie", b"a=1"), (b"x-app", b"yes"), (b"cookie", b"b=2")];
        p.client
            .open_stream(
                b"GET",
                b"https",
                b"site.example",
                b"/up/a?q=1",
                &cookies,
                true,
            )
            .unwrap();
        p.client
            .open_stream(b"GET", b"https", b"site.example", b"/local", &[], true)
            .unwrap();
        let s5 = p
            .client
            .open_stream(b"POST", b"https", b"site.example", b"/up/post", &[], false)
            .unwrap();
        p.client.send_data(s5, b"hello", true).unwrap();
        p.flush_client();
        // The local request is answered at once; the proxied ones wait for the proxy.
        let seen = p.read();
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!((seen[&3].status, &seen[&3].body[..]), (200, &b"/local"[..]));
        let forwards: Vec<(u32, Forward)> =
            std::iter::from_fn(|| p.conns[0].take_forward()).collect();
        assert_eq!(forwards.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 5]);
        assert!(p.conns[0].is_forwarding());
        let get = String::from_utf8_lossy(&forwards[0].1.request).to_string();
        assert!(
            get.starts_with("GET /up/a?q=1 HTTP/1.1\r\nHost: site.example\r\nx-app: yes\r\n"),
            "{get}"
        );
        assert!(get.contains("Cookie: a=1; b=2\r\n"), "{get}");
        assert_eq!(get.matches("ookie").count(), 1, "{get}");
        let post = String::from_utf8_lossy(&forwards[1].1.request).to_string();
        assert!(post.starts_with("POST /up/post HTTP/1.1\r\nHost: site.example\r\n"));
        assert!(post.ends_with("Content-Length: 5\r\n\r\nhello"), "{post}");
        // Stream 5's response first, chunked; then stream 1's with a length.
        let chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-Up: 1\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        p.respond(5, side(), chunked, 40);
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nok";
        p.respond(1, side(), sized, 10);
        let seen = p.read();
        let s5 = &seen[&5];
        assert_eq!(
            (s5.status, &s5.body[..], s5.ended),
            (201, &b"abcde"[..], true)
        );
        let names: Vec<&str> = s5.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"x-up") && names.contains(&"via"),
            "{names:?}"
        );
        for gone in [
            "connection",
            "transfer-encoding",
            "keep-alive",
            "content-length",
        ] {
            assert!(!names.contains(&gone), "{gone} in {names:?}");
        }
        let s1 = &seen[&1];
        assert_eq!((s1.status, &s1.body[..], s1.ended), (200, &b"ok"[..], true));
        assert!(s1
            .fields
            .contains(&("content-length".to_string(), "2".to_string())));
        assert!(!s1.fields.iter().any(|(n, _)| n == "keep-alive"));
        assert!(!p.conns[0].is_forwarding());
    }

    #[test]
    fn a_proxied_response_relays_at_every_split_of_the_upstream_bytes() {
        let wires: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
        ];
        for wire in wires {
            for at in 0..=wire.len() {
                let mut p = ProxyPair::new();
                p.client
                    .open_stream(b"GET", b"http", b"a", b"/up/x", &[], true)
                    .unwrap();
                p.flush_client();
                let (stream, _) = p.conns[0].take_forward().expect("forwarded");
                p.respond(stream, side(), wire, at);
                let seen = p.read();
                let s = &seen[&stream];
                assert_eq!(
                    (s.status, &s.body[..], s.ended),
                    (200, &b"hello world"[..], true),
                    "split at {at}"
                );
            }
        }
    }

    #[test]
    fn a_proxied_body_waits_for_the_window_and_reports_what_it_holds() {
        let mut p = ProxyPair::new();
        // A client with HTTP/2's initial windows (65,535), not our codec's larger ones.
        let small = H2Config {
            initial_window_size: 65_535,
            connection_window: 65_535,
            ..H2Config::default()
        };
        p.client = H2Conn::new(Role::Client, small, Instant::now());
        p.client
            .open_stream(b"GET", b"http", b"a", b"/up/big", &[], true)
            .unwrap();
        p.flush_client();
        let (stream, _) = p.conns[0].take_forward().unwrap();
        let body = vec![b'z'; 200_000];
        let mut wire =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        wire.extend_from_slice(&body);
        let mut ex = crate::proxy::upstream::Exchange::new(side());
        let client = crate::proxy::client_id(0, stream);
        let first = wire.len() - 50_000;
        let res = ex.on_data(&wire[..first], DATE, &mut p.conns.sink(client));
        assert_eq!(res, Ok(crate::proxy::upstream::Progress::Pending));
        // What the window did not take is held for the stream, and reported as pending
        // so that the proxy pauses the upstream read past its mark.
        let mut held = 0;
        p.conns[0].each_forwarded(|s, pending| {
            assert_eq!(s, stream);
            held = pending;
        });
        assert!(held >= 150_000 - 65_535, "{held}");
        assert_eq!(held, p.conns.sink(client).pending());
        let res = ex.on_data(&wire[first..], DATE, &mut p.conns.sink(client));
        assert!(matches!(
            res,
            Ok(crate::proxy::upstream::Progress::Done { .. })
        ));
        let done = ForwardOutcome::Done {
            keep_alive: true,
            log: Default::default(),
        };
        p.with(|c, ctx| c.on_forward(stream, done, ctx));
        p.settle();
        assert!(p.conns[0].h2_busy(), "the rest waits for the window");
        let mut got = Vec::new();
        for _ in 0..20 {
            let seen = p.read();
            if let Some(s) = seen.get(&stream) {
                got.extend_from_slice(&s.body);
                if s.ended {
                    break;
                }
            }
            // The client consumed it: its WINDOW_UPDATEs open the windows again.
            p.flush_client();
        }
        assert_eq!(got, body);
        assert!(!p.conns[0].h2_busy());
    }

    #[test]
    fn failed_and_cut_proxied_requests() {
        let mut p = ProxyPair::new();
        for path in [&b"/up/fail"[..], b"/up/cut"] {
            p.client
                .open_stream(b"GET", b"http", b"a", path, &[], true)
                .unwrap();
        }
        p.flush_client();
        let forwards: Vec<(u32, Forward)> =
            std::iter::from_fn(|| p.conns[0].take_forward()).collect();
        assert_eq!(forwards.len(), 2);
        let failed = ForwardOutcome::Failed {
            status: 504,
            side: side(),
            log: Default::default(),
        };
        p.with(|c, ctx| c.on_forward(1, failed, ctx));
        // Stream 3: a head and part of the body, then the upstream breaks off.
        let mut ex = crate::proxy::upstream::Exchange::new(side());
        let client = crate::proxy::client_id(0, 3);
        let res = ex.on_data(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal",
            DATE,
            &mut p.conns.sink(client),
        );
        assert!(res.is_ok());
        let cut = ForwardOutcome::Abort {
            reset: false,
            log: Default::default(),
        };
        p.with(|c, ctx| c.on_forward(3, cut, ctx));
        p.settle();
        let seen = p.read();
        assert_eq!(
            (seen[&1].status, &seen[&1].body[..]),
            (504, &b"Gateway Timeout\n"[..])
        );
        assert_eq!(seen[&3].status, 200);
        assert_eq!(
            seen[&3].reset,
            Some(uring_common::h2::ErrorCode::INTERNAL_ERROR)
        );
        assert!(!seen[&3].ended);
        assert!(!p.conns[0].is_forwarding());
    }

    #[test]
    fn a_reset_proxied_stream_is_handed_back_to_the_proxy() {
        let mut p = ProxyPair::new();
        let s = p
            .client
            .open_stream(b"GET", b"http", b"a", b"/up/slow", &[], true)
            .unwrap();
        p.flush_client();
        assert!(p.conns[0].take_forward().is_some());
        p.client
            .reset(s, uring_common::h2::ErrorCode::CANCEL)
            .unwrap();
        p.flush_client();
        assert_eq!(p.conns[0].take_abandoned(), Some(s));
        assert_eq!(p.conns[0].take_abandoned(), None);
        assert!(!p.conns[0].is_forwarding());
    }

    /// Rapid reset against proxied streams: a reset stream's upstream work goes on until
    /// the proxy drops it, so its slot still counts toward the stream limit until then.
    #[test]
    fn reset_proxied_streams_hold_their_slots_until_the_proxy_drops_them() {
        let mut p = ProxyPair::new();
        p.http2.max_concurrent_streams = 2;
        let mut first = Vec::new();
        for _ in 0..2 {
            first.push(
                p.client
                    .open_stream(b"GET", b"http", b"a", b"/up/x", &[], true)
                    .unwrap(),
            );
        }
        p.flush_client();
        assert_eq!(std::iter::from_fn(|| p.conns[0].take_forward()).count(), 2);
        for &s in &first {
            p.client
                .reset(s, uring_common::h2::ErrorCode::CANCEL)
                .unwrap();
        }
        p.flush_client();
        let _ = p.read();
        // The proxy has not dropped them yet: a third stream is over the limit.
        let third = p
            .client
            .open_stream(b"GET", b"http", b"a", b"/up/y", &[], true)
            .unwrap();
        p.flush_client();
        let seen = p.read();
        assert_eq!(
            seen.get(&third).and_then(|s| s.reset),
            Some(uring_common::h2::ErrorCode::REFUSED_STREAM),
            "{seen:?}"
        );
        assert!(p.conns[0].take_forward().is_none());
        // The worker hands the resets to the proxy: the slots are free again.
        let dropped: Vec<u32> = std::iter::from_fn(|| p.conns[0].take_abandoned()).collect();
        assert_eq!(dropped.len(), 2);
        let fourth = p
            .client
            .open_stream(b"GET", b"http", b"a", b"/up/z", &[], true)
            .unwrap();
        p.flush_client();
        assert_eq!(p.conns[0].take_forward().map(|f| f.0), Some(fourth));
    }
}
