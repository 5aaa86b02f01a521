//! What a worker records about its traffic: access log lines and metrics counters, in
//! one per-worker [`RequestLog`] that the worker owns and lends to a connection for each
//! call (`Ctx::log`). It exists only when `--access-log` or `--metrics` is on, so a server
//! without either pays one `None` check per request.

use std::io::Write as _;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use uring_common::http::RequestHead;
use uring_common::ring::SlotId;

use crate::access_log::{push_decimal, AccessLogSink, AccessLogWriter, LogEntry, UpstreamFields};
use crate::config::{upstream_text, UpstreamAddr};
use crate::metrics::{Route, TimeoutKind, UpstreamSample, WorkerMetrics, WorkerSlot};
use crate::proxy::health::MemberCounters;
use crate::proxy::UpstreamLog;

pub struct RequestLog {
    access: Option<AccessLogWriter>,
    metrics: Option<(WorkerMetrics, Arc<WorkerSlot>)>,
    /// The peer address of each slot's connection, formatted once at accept (only with an
    /// access log; empty when unknown).
    peers: Vec<Vec<u8>>,
    /// The slot of the connection this is lent to.
    slot: SlotId,
    /// Each upstream's address as `$upstream_addr` prints it.
    upstreams: Vec<Vec<u8>>,
    /// `$upstream_addr` of a request that tried several: "a, b" (nginx).
    tried_addrs: Vec<u8>,
}

/// One answered request, as the connection reports it.
pub struct Answered<'a, 'h> {
    pub head: &'a RequestHead<'a, 'h>,
    pub status: u16,
    pub route: Route,
    /// Response body bytes (a file body's length included; 0 for HEAD).
    pub body_bytes: u64,
    /// The worker's clock for the batch the request's last bytes arrived in.
    pub arrived: Instant,
    /// The worker's `Date` for that batch: the access log line's time.
    pub date: &'a [u8; 29],
}

impl RequestLog {
    /// `None` when neither an access log nor metrics are on.
    pub fn new(access: Option<AccessLogSink>, metrics: Option<Arc<WorkerSlot>>) -> Option<Self> {
        if access.is_none() && metrics.is_none() {
            return None;
        }
        Some(RequestLog {
            access: access.map(AccessLogWriter::new),
            metrics: metrics.map(|s| (WorkerMetrics::default(), s)),
            peers: Vec::new(),
            slot: 0,
            upstreams: Vec::new(),
            tried_addrs: Vec::new(),
        })
    }

    /// Lend this to the connection of `slot`.
    pub fn at(&mut self, slot: SlotId) -> &mut RequestLog {
        self.slot = slot;
        self
    }

    /// A connection was accepted into `slot`: remember its peer for the log lines (one
    /// getpeername per connection, only with an access log).
    pub fn opened(&mut self, slot: SlotId, fd: RawFd) {
        if self.access.is_none() {
            return;
        }
        let i = slot as usize;
        if self.peers.len() <= i {
            self.peers.resize(i + 1, Vec::new());
        }
        let p = &mut self.peers[i];
        p.clear();
        match peer_of(fd) {
            // By hand: `fmt` spends ~900 instructions on four octets, once per connection.
            Some(IpAddr::V4(v4)) => {
                for (k, octet) in v4.octets().into_iter().enumerate() {
                    if k > 0 {
                        p.push(b'.');
                    }
                    push_decimal(p, octet.into());
                }
            }
            Some(ip) => {
                let _ = write!(p, "{ip}");
            }
            None => {}
        }
    }

    /// Whether lines are written (not only metrics counted).
    pub fn has_access_log(&self) -> bool {
        self.access.is_some()
    }

    /// The proxy's upstreams, for `$upstream_addr` (`unix:/path` for a socket, as nginx).
    pub fn set_upstreams(&mut self, upstreams: &[UpstreamAddr]) {
        self.upstreams = (upstreams.iter())
            .map(|u| upstream_text(u).into_bytes())
            .collect();
    }

    /// A proxied request's access log line (its metrics are counted by [`Self::proxied`]).
    pub fn answered_proxied(&mut self, a: &Answered<'_, '_>, u: &UpstreamLog) {
        let Some(w) = self.access.as_mut() else {
            return;
        };
        let mut addr = u
            .upstream
            .and_then(|i| self.upstreams.get(i))
            .map(|a| &a[..]);
        if u.tried.len() > 1 && addr.is_some() {
            let list = &mut self.tried_addrs;
            list.clear();
            for (k, i) in u.tried.iter().enumerate() {
                if k > 0 {
                    list.extend_from_slice(b", ");
                }
                list.extend_from_slice(self.upstreams.get(i).map_or(&b"-"[..], |a| &a[..]));
            }
            addr = Some(&list[..]);
        }
        let upstream = UpstreamFields {
            addr,
            status: u.status,
            response_time_us: addr.map(|_| u.response_time.as_micros() as u64),
        };
        let peer = peer_text(&self.peers, self.slot);
        let us = a.arrived.elapsed().as_micros() as u64;
        w.record(&entry(peer, a, us, Some(upstream)));
    }

    pub fn answered(&mut self, a: &Answered<'_, '_>) {
        let duration_us = if self.metrics.is_some() || self.access.is_some() {
            a.arrived.elapsed().as_micros() as u64
        } else {
            0
        };
        if let Some((m, _)) = self.metrics.as_mut() {
            m.request(a.route, a.status, duration_us);
            m.http2_requests += (a.head.version == uring_common::http::Version::Http2) as u64;
        }
        if let Some(w) = self.access.as_mut() {
            let peer = peer_text(&self.peers, self.slot);
            w.record(&entry(peer, a, duration_us, None));
        }
    }

    /// A request forwarded to an upstream, answered with `status` after `took` (from the
    /// forward to the response's head, at the worker's batch clock).
    pub fn proxied(&mut self, status: u16, took: std::time::Duration) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.request(Route::Proxy, status, took.as_micros() as u64);
        }
    }

    /// A request refused by the connection itself (malformed, too large): counted, and
    /// logged with its first line as it came (`line`; there may be no head to log).
    pub fn refused(&mut self, status: u16, line: &[u8], date: &[u8; 29]) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.request(Route::Builtin, status, 0);
        }
        if let Some(w) = self.access.as_mut() {
            let peer = self
                .peers
                .get(self.slot as usize)
                .map_or(&b""[..], |p| &p[..]);
            w.record_refused(peer, line, status, date);
        }
    }

    /// A connection switched to HTTP/2 (`opened`), or an HTTP/2 request was refused by
    /// the connection itself (counted by [`RequestLog::refused`] too).
    pub fn http2(&mut self, opened: bool) {
        if let Some((m, _)) = self.metrics.as_mut() {
            match opened {
                true => m.http2_connections += 1,
                false => m.http2_requests += 1,
            }
        }
    }

    /// An HTTP/2 connection ended with an error of its peer's making: `reason` indexes
    /// [`crate::metrics::HTTP2_CLOSES`].
    pub fn http2_closed(&mut self, reason: usize) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.http2_closes[reason.min(m.http2_closes.len() - 1)] += 1;
        }
    }

    pub fn received(&mut self, n: usize) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.bytes_in += n as u64;
        }
    }

    pub fn sent(&mut self, n: usize) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.bytes_out += n as u64;
        }
    }

    pub fn timed_out(&mut self, kind: Option<TimeoutKind>) {
        if let (Some((m, _)), Some(k)) = (self.metrics.as_mut(), kind) {
            m.timeouts[k as usize] += 1;
        }
    }

    /// A connection closed unanswered by `--limit-conn`.
    pub fn connection_limited(&mut self) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.limited_connections += 1;
        }
    }

    /// A request answered 429 by `--limit-req` (its log line is written as any answer's).
    pub fn request_limited(&mut self) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.limited_requests += 1;
        }
    }

    /// The worker's tunnels as its proxy counts them (set at each tick).
    pub fn tunnels(&mut self, stats: crate::proxy::TunnelStats) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.tunnels = stats;
        }
    }

    pub fn accept_backoff(&mut self) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.accept_backoffs += 1;
        }
    }

    /// The proxy's upstreams as the worker sees them (per route and upstream, in the
    /// configuration's order).
    pub fn upstream_states(&mut self, states: impl Iterator<Item = (MemberCounters, bool)>) {
        if let Some((m, _)) = self.metrics.as_mut() {
            m.upstreams.clear();
            m.upstreams
                .extend(states.map(|(counters, up)| UpstreamSample { counters, up }));
        }
    }

    /// The worker's tick: hand the log buffer over, publish the counters.
    pub fn tick(&mut self, open_connections: usize) {
        if let Some(w) = self.access.as_mut() {
            w.flush();
        }
        if let Some((m, slot)) = self.metrics.as_mut() {
            m.open_connections = open_connections as u64;
            slot.publish(m);
        }
    }

    /// The worker is exiting: publish, and hand over the last lines (waiting for room).
    pub fn flush(&mut self) {
        self.tick(0);
        if let Some(w) = self.access.as_mut() {
            w.finish();
        }
    }
}

/// The formatted peer of `slot` (empty when unknown).
fn peer_text(peers: &[Vec<u8>], slot: SlotId) -> &[u8] {
    peers.get(slot as usize).map_or(&b""[..], |p| &p[..])
}

fn entry<'a, 'h>(
    peer: &'a [u8],
    a: &'a Answered<'a, 'h>,
    duration_us: u64,
    upstream: Option<UpstreamFields<'a>>,
) -> LogEntry<'a, 'h> {
    LogEntry {
        peer,
        head: a.head,
        status: a.status,
        body_bytes: a.body_bytes,
        duration_us,
        date: a.date,
        upstream,
    }
}

fn peer_of(fd: RawFd) -> Option<IpAddr> {
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss is large enough for any address and len says so.
    let r = unsafe {
        libc::getpeername(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(&ss as *const libc::sockaddr_storage).cast() };
            Some(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(&ss as *const libc::sockaddr_storage).cast() };
            let v6 = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

/// `worker.log.note(|l| l.accept_backoff())`: record when there is a log, in one line.
pub trait Note {
    fn note(&mut self, f: impl FnOnce(&mut RequestLog));
}

impl Note for Option<RequestLog> {
    fn note(&mut self, f: impl FnOnce(&mut RequestLog)) {
        if let Some(l) = self.as_mut() {
            f(l)
        }
    }
}
