//! The TLS layer of a connection, sans-IO like the rest of it: ciphertext from the socket
//! goes into rustls' `ServerConnection`, the plaintext it yields into the HTTP machine
//! (`Conn::on_plain`), and the machine's output is sealed into records on its way to the
//! driver's send buffer (`Conn::poll_send`). The handshake needs nothing of its own: its
//! records leave through the same send, and the head timeout, which runs from accept,
//! closes a client that stops mid-handshake.
//!
//! With `--ktls` the session moves into the kernel (`ktls.rs`) once the handshake is done
//! and the switch loses nothing: everything rustls sealed has been sent (its records
//! precede the kernel's), the ciphertext it took in ended on a record boundary (the
//! kernel starts at the next record in the socket), no receive is outstanding (one
//! that completed after the switch would hand us ciphertext as plaintext), and every
//! byte of plaintext rustls opened went to the HTTP machine. Until then reading stops
//! (at a record boundary; before one it goes on) and rustls keeps the connection.
//! From then on the connection is plain for the worker, and file bodies splice.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::RawFd;
use std::time::Instant;

use rustls::ServerConnection;

use super::{Conn, Ctx, Phase, Writing};
use crate::handler::Handler;
use crate::ktls::{self, KernelTls};
use crate::tls::TlsSession;

/// Plaintext read out of rustls per call (its records are at most 16 KiB).
const PLAIN_CHUNK: usize = 16 * 1024;

/// How the connection's bytes are protected. The rustls layer stays in place while its
/// plaintext is answered, so whatever the HTTP machine asks then sees a TLS connection.
pub(super) enum Tls {
    /// Plain HTTP.
    Plain,
    /// rustls opens and seals the records in user space.
    Rustls(Box<TlsLayer>),
    /// The session moved into the kernel (`--ktls`): the socket is plain to us.
    Kernel,
}

impl Tls {
    /// The records pass through rustls (the output is sealed in memory, never spliced).
    #[inline]
    pub(super) fn in_rustls(&self) -> bool {
        matches!(self, Tls::Rustls(_))
    }

    /// Records rustls has queued for the socket.
    #[inline]
    pub(super) fn wants_write(&self) -> bool {
        matches!(self, Tls::Rustls(t) if t.session.wants_write())
    }
}

pub(super) struct TlsLayer {
    session: ServerConnection,
    plain: Vec<u8>,
    /// The peer broke the protocol: only the alert rustls queued goes out, then close.
    failed: bool,
    /// close_notify is queued: the session ends cleanly before the socket closes.
    close_notified: bool,
    /// What the kernel can take over (`--ktls`), if anything.
    kernel: Option<KernelTls>,
    edge: RecordEdge,
}

impl TlsLayer {
    /// The handshake is done and the kernel takes this version and suite.
    fn kernel_wanted(&self) -> bool {
        let s = &self.session;
        !self.failed
            && !s.is_handshaking()
            && self.kernel.is_some_and(|k| {
                k.supports(
                    s.protocol_version(),
                    s.negotiated_cipher_suite().and_then(ktls::suite_of),
                )
            })
    }
}

/// Where the received ciphertext stands in the record framing (5-byte header: type,
/// version, length), so the switch to the kernel happens only between records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RecordEdge {
    header: [u8; 5],
    /// Header bytes of the next record seen so far.
    have: usize,
    /// Body bytes of the current record still to come.
    body_left: usize,
}

impl RecordEdge {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                self.body_left = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
            }
        }
    }

    fn at_boundary(&self) -> bool {
        self.have == 0 && self.body_left == 0
    }
}

impl Conn {
    /// Speak TLS on this connection (None: plain HTTP; an error: close it at once).
    pub fn set_tls(&mut self, session: Option<Result<TlsSession, rustls::Error>>) {
        self.tls = match session {
            None => Tls::Plain,
            Some(Ok(TlsSession {
                conn: mut session,
                kernel,
            })) => {
                // Our own back-pressure (OUT_HIGH_WATER, one send in flight) bounds what
                // is handed to rustls; its limit would refuse part of a file chunk.
                session.set_buffer_limit(None);
                Tls::Rustls(Box::new(TlsLayer {
                    session,
                    plain: vec![0; PLAIN_CHUNK],
                    failed: false,
                    close_notified: false,
                    kernel,
                    edge: RecordEdge::default(),
                }))
            }
            Some(Err(_)) => {
                self.phase = Phase::Closed;
                Tls::Plain
            }
        };
    }

    /// Whether this connection speaks TLS (in rustls or in the kernel).
    pub fn is_tls(&self) -> bool {
        !matches!(self.tls, Tls::Plain)
    }

    /// Whether the session's records are the kernel's now (`--ktls`).
    pub fn is_kernel_tls(&self) -> bool {
        matches!(self.tls, Tls::Kernel)
    }

    /// Waiting to hand the session to the kernel, between two records: read no more.
    pub(super) fn kernel_tls_holds_reading(&self) -> bool {
        matches!(&self.tls, Tls::Rustls(t) if t.kernel_wanted() && t.edge.at_boundary())
    }

    /// The worker's hook, before it decides on reading: move the session into the
    /// kernel once nothing is in flight that the switch would break. `socket` gives the
    /// fd and whether a receive is still outstanding on it (asked only for a connection
    /// in rustls: plain HTTP pays one branch). A failure after rustls gave its keys away
    /// closes the connection.
    #[inline]
    pub fn poll_kernel_tls(&mut self, socket: impl FnOnce() -> (RawFd, bool)) {
        if self.tls.in_rustls() {
            let (fd, receiving) = socket();
            self.enter_kernel_tls(fd, receiving);
        }
    }

    fn enter_kernel_tls(&mut self, fd: RawFd, receiving: bool) {
        if receiving
            || self.writing != Writing::Idle
            || self.phase != Phase::Open
            || !self.kernel_tls_holds_reading()
            || self.tls.wants_write()
        {
            return;
        }
        // Extracting the secrets consumes the session: on success the kernel has the
        // records; on failure nothing is left to speak TLS with and the connection closes.
        let Tls::Rustls(t) = std::mem::replace(&mut self.tls, Tls::Plain) else {
            return;
        };
        let version = t.session.protocol_version();
        let entered = match (version, t.session.dangerous_extract_secrets()) {
            (Some(v), Ok(secrets)) => ktls::enter(fd, v, secrets),
            (_, Err(e)) => Err(io::Error::other(e)),
            (None, Ok(_)) => Err(io::Error::other("no protocol version")),
        };
        match entered {
            Ok(()) => {
                self.tls = Tls::Kernel;
                ktls::note_entered();
            }
            Err(e) => {
                ktls::note_failed(&e);
                self.phase = Phase::Closed;
            }
        }
    }

    /// The connection is about to close with everything sent: queue close_notify first,
    /// once (true: it has to go out before the close). Without it OpenSSL 3 and Python
    /// report the end as an unexpected EOF, which a truncation attack also looks like.
    /// A session that failed already sent its alert instead.
    pub(super) fn queue_close_notify(&mut self) -> bool {
        match &mut self.tls {
            Tls::Rustls(t) if !t.failed && !t.close_notified => {
                t.close_notified = true;
                t.session.send_close_notify();
                true
            }
            _ => false,
        }
    }

    /// The idle timeout fired on an open connection: a TLS one ends with close_notify
    /// (true), sent within another idle timeout, so a client that stopped reading is
    /// still closed then.
    pub(super) fn close_idle_tls(&mut self, now: Instant) -> bool {
        if !self.tls.in_rustls() || self.phase != Phase::Open {
            return false;
        }
        self.phase = Phase::CloseAfterFlush;
        self.last_activity = now;
        true
    }

    /// A receive or send failed with `errno`. On a kTLS socket EIO is a record that is
    /// not application data (an alert such as close_notify, a KeyUpdate): the kernel
    /// hands those only to recvmsg with a control buffer, so the connection ends here.
    pub fn on_failed(&mut self, errno: i32) {
        if self.is_kernel_tls() && errno == libc::EIO {
            ktls::note_control_record();
        }
        self.on_error();
    }

    /// The rustls layer, when the connection has one.
    fn rustls(&mut self) -> Option<&mut TlsLayer> {
        match &mut self.tls {
            Tls::Rustls(t) => Some(t),
            _ => None,
        }
    }

    /// Records from the socket: decrypt, and hand the plaintext to the HTTP machine.
    /// Only the plaintext buffer leaves the layer while the machine reads it.
    pub(super) fn on_tls_records<H: Handler>(&mut self, data: &[u8], ctx: &mut Ctx<'_, H>) {
        let Some(t) = self.rustls() else {
            return;
        };
        t.edge.feed(data);
        let mut plain = std::mem::take(&mut t.plain);
        let mut input = data;
        'feed: while !input.is_empty() {
            let Some(t) = self.rustls().filter(|t| !t.failed) else {
                break;
            };
            if t.session.read_tls(&mut input).is_err() {
                self.phase = Phase::Closed;
                break;
            }
            if t.session.process_new_packets().is_err() {
                // Garbage, a bad handshake: rustls queued an alert; send it and close.
                t.failed = true;
                self.out.clear();
                self.phase = Phase::CloseAfterFlush;
                break;
            }
            loop {
                let Some(t) = self.rustls() else {
                    break 'feed;
                };
                match t.session.reader().read(&mut plain) {
                    // close_notify: the client ended the session, like an EOF.
                    Ok(0) => {
                        t.plain = plain;
                        self.on_eof(ctx);
                        return;
                    }
                    Ok(n) => {
                        self.on_plain(&plain[..n], ctx);
                        if self.phase != Phase::Open {
                            break 'feed;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.phase = Phase::Closed;
                        break 'feed;
                    }
                }
            }
        }
        if let Some(t) = self.rustls() {
            t.plain = plain;
        }
    }

    /// Seal the output (and whatever the handshake has to say) into `into`.
    pub(super) fn poll_send_tls(&mut self, into: &mut Vec<u8>) -> bool {
        let Tls::Rustls(t) = &mut self.tls else {
            return false;
        };
        if !self.out.is_empty() {
            if !t.failed && t.session.writer().write_all(&self.out).is_err() {
                self.phase = Phase::Closed;
                return false;
            }
            self.out.clear();
            // The last answer before a close: close_notify rides its send (one send, not
            // two; `queue_close_notify` then has nothing left to do).
            let last = self.phase == Phase::CloseAfterFlush && !self.answer.sending();
            if last && !t.failed && !t.close_notified {
                t.close_notified = true;
                t.session.send_close_notify();
            }
        }
        while t.session.wants_write() {
            if t.session.write_tls(into).is_err() {
                break;
            }
        }
        if into.is_empty() {
            return false;
        }
        self.writing = Writing::Sending;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig};
    use uring_common::http::Limits;

    use super::*;
    use crate::config::Timeouts;
    use crate::conn::Close;
    use crate::request::Request;
    use crate::response::ResponseWriter;

    /// A self-signed ECDSA P-256 leaf (not a CA) for `localhost`, valid until 2126.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBtjCCAVygAwIBAgIUDEEH7BlXBj2CPecsRpwnjYaTa5swCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEzMDEyMTkzMloYDzIxMjYxMTA2
MTIxOTMyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARDilyjNHuRd2uQx8GTuJqHEowMyU85ejsVs/eQg6I0+K+cDGE4pDTf
Yczz3MUjXqyrd74B51X3RLjxPBj89YwOo4GJMIGGMB0GA1UdDgQWBBQsbnEebI6q
CyYPBLE8CAt410NvVzAfBgNVHSMEGDAWgBQsbnEebI6qCyYPBLE8CAt410NvVzAU
BgNVHREEDTALgglsb2NhbGhvc3QwDAYDVR0TAQH/BAIwADALBgNVHQ8EBAMCB4Aw
EwYDVR0lBAwwCgYIKwYBBQUHAwEwCgYIKoZIzj0EAwIDSAAwRQIhAOQOebl1gMVA
xQyiQUEHsY8nLlackh1vEGX0l9A2WgZnAiAy8sY4XB0Ynandp4Jq2094vY11I8D/
GqANBPAYwJ0Z6Q==
-----END CERTIFICATE-----
";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgS0CM5qIkeXsNQXgb
YilWZ/HiidmcUz+ci2y2jJigEBqhRANCAARDilyjNHuRd2uQx8GTuJqHEowMyU85
ejsVs/eQg6I0+K+cDGE4pDTfYczz3MUjXqyrd74B51X3RLjxPBj89YwO
-----END PRIVATE KEY-----
";

    fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    fn echo_path(req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        resp.respond(200, &[], req.path().as_bytes());
    }

    /// A handshake and two pipelined requests, the client's bytes delivered to the
    /// connection in pieces of `piece`; what the client decrypts, and how it ended.
    fn exchange(piece: usize, client_bytes: Option<&[u8]>) -> (Vec<u8>, Vec<u8>, Option<Close>) {
        let requests = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let e = run_client(piece, client_bytes, requests, Then::Wait);
        (e.plain, e.wire, e.closed)
    }

    /// What happens once the client has its answers.
    #[derive(Clone, Copy)]
    enum Then {
        Wait,
        /// The clock passes the keep-alive timeout and the timeout runs.
        IdleTimeout,
        /// The server drains, and the connection's grace has passed.
        DrainAfterItsGrace,
    }

    struct Ended {
        plain: Vec<u8>,
        wire: Vec<u8>,
        closed: Option<Close>,
        /// The client read a close_notify (rustls' reader then says Ok(0)).
        close_notify: bool,
        /// How many sends the connection made.
        sends: usize,
    }

    /// A client sends `requests` (or the raw `client_bytes` instead of its records) in
    /// pieces of `piece`; once it has its answers and the connection is quiet, the clock
    /// moves on as `then` says.
    fn run_client(piece: usize, client_bytes: Option<&[u8]>, requests: &[u8], then: Then) -> Ended {
        let (server_cfg, client_cfg) = configs();
        let start = Instant::now();
        let mut now = start;
        let timeouts = Timeouts::default();
        let limits = Limits::default();
        let mut handler = echo_path as fn(&Request<'_>, &mut ResponseWriter<'_>);
        let mut conn = Conn::new(now, &timeouts);
        conn.set_tls(Some(Ok(TlsSession {
            conn: ServerConnection::new(server_cfg).unwrap(),
            kernel: None,
        })));
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(client_cfg, name).unwrap();
        client.writer().write_all(requests).unwrap();
        let (mut plain, mut wire, mut closed) = (Vec::new(), Vec::new(), None);
        let mut sends = 0;
        for round in 0..16 {
            if round == 8 {
                match then {
                    Then::Wait => {}
                    Then::IdleTimeout => {
                        now = start + Timeouts::default().keep_alive + Duration::from_secs(1);
                        conn.on_timeout(now);
                    }
                    Then::DrainAfterItsGrace => {
                        conn.start_drain();
                        now = start + crate::conn::DRAIN_GRACE + Duration::from_millis(1);
                    }
                }
            }
            let mut c2s = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut c2s).unwrap();
            }
            if let Some(b) = client_bytes {
                c2s = b.to_vec();
            }
            for chunk in c2s.chunks(piece) {
                let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
                conn.on_data(chunk, &mut ctx);
            }
            let mut out = Vec::new();
            while conn.poll_send(&mut out) {
                sends += 1;
                let n = out.len();
                wire.extend_from_slice(&out);
                let mut rd = &out[..];
                while !rd.is_empty() && client_bytes.is_none() {
                    client.read_tls(&mut rd).unwrap();
                    client.process_new_packets().unwrap();
                }
                out.clear();
                let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
                conn.on_sent(n, &mut ctx);
            }
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = client.reader().read(&mut buf) {
                plain.extend_from_slice(&buf[..n]);
            }
            closed = closed.or(conn.poll_close(now));
            if closed.is_some() {
                break;
            }
        }
        let close_notify = matches!(client.reader().read(&mut [0u8; 1]), Ok(0));
        Ended {
            plain,
            wire,
            closed,
            close_notify,
            sends,
        }
    }

    #[test]
    fn the_session_ends_with_close_notify_after_connection_close_when_idle_and_draining() {
        let keep_alive = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let kept = run_client(usize::MAX, None, keep_alive, Then::Wait);
        assert!(kept.closed.is_none() && !kept.close_notify, "kept alive");
        for piece in [1, 7, usize::MAX] {
            let requests = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let e = run_client(piece, None, requests, Then::Wait);
            assert!(e.plain.ends_with(b"\r\n\r\n/a"), "pieces of {piece}");
            assert!(e.closed.is_some() && e.close_notify, "pieces of {piece}");
            // close_notify rides the answer's send: no send of its own.
            assert_eq!(e.sends, kept.sends, "pieces of {piece}");
        }
        for (then, what) in [
            (Then::IdleTimeout, "idle timeout"),
            (Then::DrainAfterItsGrace, "drain"),
        ] {
            let e = run_client(usize::MAX, None, keep_alive, then);
            assert!(e.plain.ends_with(b"\r\n\r\n/a"), "{what}");
            assert!(e.closed.is_some() && e.close_notify, "{what}");
        }
        // A session that failed sends its alert, nothing after it.
        let e = run_client(usize::MAX, Some(b"GET / HTTP/1.1\r\n\r\n"), b"", Then::Wait);
        assert_eq!(e.wire.first(), Some(&0x15));
        assert!(e.closed.is_some());
    }

    /// A TLS client's close_notify is data on the socket: arriving after our last read,
    /// unread at close(2), it makes the kernel answer with a reset that can cost the
    /// client our response. So `Connection: close` on TLS lingers as it does not on plain
    /// HTTP. (It closed at once: the layer was out of the connection while the request
    /// was answered, so the connection looked plain.)
    #[test]
    fn a_close_asked_for_on_tls_still_lingers() {
        for piece in [1, 7, usize::MAX] {
            let requests = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let e = run_client(piece, None, requests, Then::Wait);
            assert!(e.plain.ends_with(b"\r\n\r\n/a"), "pieces of {piece}");
            assert_eq!(e.closed, Some(Close::Linger), "pieces of {piece}");
        }
    }

    #[test]
    fn handshake_and_pipelined_requests_at_every_piece_size() {
        let (whole, _, closed) = exchange(usize::MAX, None);
        let text = String::from_utf8_lossy(&whole);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\n\r\n/b"), "{text}");
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
        assert!(
            closed.is_some(),
            "Connection: close ends it after the answer"
        );
        for piece in (1..=40).chain([97, 512, 1500]) {
            let (plain, _, closed) = exchange(piece, None);
            assert_eq!(plain, whole, "pieces of {piece}");
            assert!(closed.is_some(), "pieces of {piece}");
        }
    }

    #[test]
    fn plain_http_on_a_tls_connection_gets_an_alert_and_a_close() {
        for piece in [1, 5, usize::MAX] {
            let (_, wire, closed) = exchange(piece, Some(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert_eq!(wire.first(), Some(&0x15), "an alert record: {wire:?}");
            assert!(!String::from_utf8_lossy(&wire).contains("HTTP/1.1"));
            assert!(closed.is_some(), "closed after the alert");
        }
    }

    #[test]
    fn record_edges_are_found_at_every_split() {
        // Three records: 3-byte body, empty body, 300-byte body.
        let mut wire = vec![
            0x17, 3, 3, 0, 3, 1, 2, 3, 0x17, 3, 3, 0, 0, 0x17, 3, 3, 1, 44,
        ];
        wire.extend(std::iter::repeat_n(9, 300));
        let boundaries = [0, 8, 13, wire.len()];
        for cut in 0..=wire.len() {
            let mut e = RecordEdge::default();
            e.feed(&wire[..cut]);
            assert_eq!(
                e.at_boundary(),
                boundaries.contains(&cut),
                "after {cut} bytes"
            );
            e.feed(&wire[cut..]);
            assert!(e.at_boundary(), "whole, cut at {cut}");
        }
    }

    /// A connection with kTLS wanted, its handshake done by a client (TLS 1.3 or 1.2),
    /// one request answered by rustls; returns it with `out` holding what it sent.
    fn handshaken(tls12: bool) -> (Conn, ClientConnection) {
        let (server_cfg, _) = configs();
        let mut server_cfg = (*server_cfg).clone();
        server_cfg.enable_secret_extraction = true;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match tls12 {
            true => &[&rustls::version::TLS12],
            false => &[&rustls::version::TLS13],
        };
        let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_cfg = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let now = Instant::now();
        let timeouts = Timeouts::default();
        let limits = Limits::default();
        let mut handler = echo_path as fn(&Request<'_>, &mut ResponseWriter<'_>);
        let mut conn = Conn::new(now, &timeouts);
        conn.set_tls(Some(Ok(TlsSession {
            conn: ServerConnection::new(Arc::new(server_cfg)).unwrap(),
            kernel: Some(KernelTls::everything()),
        })));
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(Arc::new(client_cfg), name).unwrap();
        client
            .writer()
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        for _ in 0..8 {
            assert!(!conn.kernel_tls_holds_reading() || !client.is_handshaking());
            let mut c2s = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut c2s).unwrap();
            }
            let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
            conn.on_data(&c2s, &mut ctx);
            let mut out = Vec::new();
            while conn.poll_send(&mut out) {
                let mut rd = &out[..];
                while !rd.is_empty() {
                    client.read_tls(&mut rd).unwrap();
                    client.process_new_packets().unwrap();
                }
                let n = out.len();
                out.clear();
                let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
                conn.on_sent(n, &mut ctx);
            }
            let mut buf = [0u8; 4096];
            if let Ok(n @ 1..) = client.reader().read(&mut buf) {
                assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
                return (conn, client);
            }
        }
        panic!("no answer through rustls");
    }

    #[test]
    fn the_switch_waits_for_the_receive_then_fails_cleanly_on_a_non_socket() {
        for tls12 in [false, true] {
            let (mut conn, _client) = handshaken(tls12);
            assert!(
                conn.kernel_tls_holds_reading(),
                "handshake done: reading stops"
            );
            assert!(!conn.wants_read());
            // A receive still outstanding: nothing happens.
            conn.poll_kernel_tls(|| (-1, true));
            assert!(conn.tls.in_rustls() && !conn.is_closed());
            // A pipe is no TCP socket: TCP_ULP fails after rustls gave its keys away, so
            // the connection closes (and is counted) rather than go on half-switched.
            let (_, _, failed) = ktls::counters();
            let mut fds = [0; 2];
            // SAFETY: pipe writes two fds into the array.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            conn.poll_kernel_tls(|| (fds[1], false));
            // SAFETY: the two fds are ours.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            assert!(conn.is_closed(), "tls12 {tls12}");
            assert!(!conn.is_kernel_tls());
            assert!(ktls::counters().2 > failed);
        }
    }

    #[test]
    fn without_kernel_support_nothing_changes() {
        let (whole, _, closed) = exchange(usize::MAX, None);
        assert!(closed.is_some() && !whole.is_empty());
        let (server_cfg, _) = configs();
        let now = Instant::now();
        let mut conn = Conn::new(now, &Timeouts::default());
        conn.set_tls(Some(Ok(TlsSession {
            conn: ServerConnection::new(server_cfg).unwrap(),
            kernel: None,
        })));
        assert!(conn.wants_read());
        conn.poll_kernel_tls(|| (-1, false));
        assert!(conn.tls.in_rustls() && !conn.is_closed());
    }
}
