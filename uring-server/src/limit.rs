//! Limits per client address: request rate (`--limit-req`, nginx's `limit_req`) and open
//! connections (`--limit-conn`, nginx's `limit_conn`).
//!
//! The request rate is nginx's leaky bucket with `burst` and `nodelay`: each address has
//! a bucket of `burst + 1` requests that leaks at the rate; each admitted request adds
//! one, and a request that finds no room is refused with 429 and `Retry-After` and
//! leaves the bucket as it was. So `burst + 1` requests pass at once, then one per
//! interval. Requests within the burst are served at once (nginx's `nodelay`; nginx's
//! default, delaying them, is not offered). As nginx for an address it has not seen; for
//! one it has, nginx counts one request stricter (its excess stops at zero), here an
//! emptied bucket is the same as a new one.
//!
//! One table per zone (the global limit and each route's), shared by every worker behind
//! a mutex, as nginx shares its zone in shared memory: the limit holds for the address
//! whichever worker its connections land on. Only servers with a limit pay for the lock.
//! A table holds at most [`DEFAULT_CLIENTS`] addresses: when full, a new address takes
//! the place of one whose bucket has drained (which loses nothing: an empty bucket is the
//! same as none), or else of the next one in turn, so many addresses cannot grow memory.
//!
//! Time is passed in as milliseconds ([`ClientLimits::millis`]), so the buckets are tested
//! on a virtual clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::{ClientLimitConfig, LimitReq};

/// Addresses kept per zone.
pub const DEFAULT_CLIENTS: usize = 65_536;

/// Buckets looked at for a drained one before a full table gives up a live one.
const EVICTION_PROBES: usize = 8;

struct Bucket {
    addr: IpAddr,
    /// Thousandths of a request in the bucket, as of `last_ms`.
    level: u64,
    last_ms: u64,
}

/// One zone's leaky buckets: at most `capacity` addresses.
pub struct Buckets {
    entries: Vec<Bucket>,
    index: HashMap<IpAddr, usize>,
    hand: usize,
    capacity: usize,
}

/// What a refused request is told: come back in this many seconds (at least 1).
pub type RetryAfter = u64;

impl Buckets {
    pub fn new(capacity: usize) -> Buckets {
        let capacity = capacity.max(1);
        Buckets {
            entries: Vec::new(),
            index: HashMap::with_capacity(capacity.min(4096)),
            hand: 0,
            capacity,
        }
    }

    /// Count a request from `addr` at `now_ms` against `limit`: admitted, or refused with
    /// the seconds until one more would pass.
    pub fn admit(&mut self, addr: IpAddr, limit: &LimitReq, now_ms: u64) -> Result<(), RetryAfter> {
        let Some(&i) = self.index.get(&addr) else {
            self.insert(addr, now_ms, limit);
            return Ok(());
        };
        let b = &mut self.entries[i];
        let level = leaked(b, limit, now_ms) + 1000;
        let room = (limit.burst + 1) * 1000;
        if level > room {
            // Until the bucket has leaked enough for one more.
            let ms = ((level - room) * 1000).div_ceil(limit.milli_per_sec.max(1));
            return Err(ms.div_ceil(1000).max(1));
        }
        b.level = level;
        b.last_ms = b.last_ms.max(now_ms);
        Ok(())
    }

    /// Take one admitted request back out of `addr`'s bucket.
    pub fn refund(&mut self, addr: IpAddr, limit: &LimitReq, now_ms: u64) {
        if let Some(&i) = self.index.get(&addr) {
            let b = &mut self.entries[i];
            b.level = leaked(b, limit, now_ms).saturating_sub(1000);
            b.last_ms = b.last_ms.max(now_ms);
        }
    }

    fn insert(&mut self, addr: IpAddr, now_ms: u64, limit: &LimitReq) {
        let fresh = Bucket {
            addr,
            level: 1000,
            last_ms: now_ms,
        };
        if self.entries.len() < self.capacity {
            self.index.insert(addr, self.entries.len());
            self.entries.push(fresh);
            return;
        }
        let n = self.entries.len();
        let drained = (0..EVICTION_PROBES.min(n))
            .map(|k| (self.hand + k) % n)
            .find(|&i| leaked(&self.entries[i], limit, now_ms) == 0);
        let victim = drained.unwrap_or(self.hand);
        self.hand = (victim + 1) % n;
        self.index.remove(&self.entries[victim].addr);
        self.index.insert(addr, victim);
        self.entries[victim] = fresh;
    }

    /// Addresses held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A bucket's level after leaking at the rate until `now_ms`.
fn leaked(b: &Bucket, limit: &LimitReq, now_ms: u64) -> u64 {
    let elapsed = now_ms.saturating_sub(b.last_ms);
    b.level
        .saturating_sub(limit.milli_per_sec.saturating_mul(elapsed) / 1000)
}

/// A request rate limit over some paths: the global one (`prefix` empty) or a route's.
struct Zone {
    prefix: String,
    limit: LimitReq,
    buckets: Mutex<Buckets>,
}

/// Every limit of the server, shared by the workers (see the module doc).
pub struct ClientLimits {
    /// The routes' zones, longest prefix first, then the global one (empty prefix).
    zones: Vec<Zone>,
    /// `--limit-conn`: open connections per address, and the count of each address.
    conn: Option<(u32, Mutex<HashMap<IpAddr, u32>>)>,
    start: Instant,
}

impl ClientLimits {
    /// `None` when no limit is configured.
    pub fn new(config: &ClientLimitConfig) -> Option<ClientLimits> {
        Self::with_capacity(config, DEFAULT_CLIENTS)
    }

    pub fn with_capacity(config: &ClientLimitConfig, clients: usize) -> Option<ClientLimits> {
        if config.requests.is_empty() && config.connections.is_none() {
            return None;
        }
        let mut zones: Vec<Zone> = (config.requests.iter())
            .map(|(prefix, limit)| Zone {
                prefix: prefix.clone(),
                limit: *limit,
                buckets: Mutex::new(Buckets::new(clients)),
            })
            .collect();
        zones.sort_by_key(|z| std::cmp::Reverse(z.prefix.len()));
        Some(ClientLimits {
            zones,
            conn: config.connections.map(|n| (n, Mutex::new(HashMap::new()))),
            start: Instant::now(),
        })
    }

    /// The limits' clock: milliseconds since they were made.
    pub fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }

    /// Count a request for `path` from `addr`: `None` admits it, `Some(seconds)` refuses
    /// it (429 with that `Retry-After`). A route's limit replaces the global one for its
    /// paths, as a `limit_req` in an nginx location replaces the server's.
    pub fn admit_request(&self, addr: Option<IpAddr>, path: &str, now: Instant) -> Option<u64> {
        let addr = addr?;
        let zone = self.zones.iter().find(|z| path.starts_with(&z.prefix))?;
        let mut buckets = zone.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.admit(addr, &zone.limit, self.millis(now)).err()
    }

    /// Take back a request [`ClientLimits::admit_request`] admitted that will be asked
    /// about again (the handler deferred it), so it is counted once.
    pub fn refund(&self, addr: Option<IpAddr>, path: &str, now: Instant) {
        let Some(addr) = addr else {
            return;
        };
        let Some(zone) = self.zones.iter().find(|z| path.starts_with(&z.prefix)) else {
            return;
        };
        let mut buckets = zone.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.refund(addr, &zone.limit, self.millis(now));
    }

    /// Whether connections are counted (the worker then asks for each peer's address).
    pub fn counts_connections(&self) -> bool {
        self.conn.is_some()
    }

    /// A connection from `addr` was accepted: false when the address has its allowance
    /// open already (the connection is then closed unanswered and not counted).
    pub fn open_connection(&self, addr: IpAddr) -> bool {
        let Some((max, counts)) = &self.conn else {
            return true;
        };
        let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(addr).or_insert(0);
        if *n >= *max {
            return false;
        }
        *n += 1;
        true
    }

    /// A counted connection from `addr` closed. Addresses with none open are forgotten,
    /// so the map holds at most as many addresses as there are connections.
    pub fn close_connection(&self, addr: IpAddr) {
        let Some((_, counts)) = &self.conn else {
            return;
        };
        let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    fn limit(s: &str) -> LimitReq {
        s.parse().unwrap()
    }

    /// Admitted requests of `n` sent at `at_ms`.
    fn burst(b: &mut Buckets, l: &LimitReq, addr: IpAddr, n: usize, at_ms: u64) -> usize {
        (0..n).filter(|_| b.admit(addr, l, at_ms).is_ok()).count()
    }

    #[test]
    fn burst_plus_one_pass_at_once_then_the_rate() {
        let l = limit("10r/s,burst=5");
        let mut b = Buckets::new(16);
        assert_eq!(burst(&mut b, &l, ip(1), 20, 0), 6, "the first, then burst");
        // 10 r/s leaks one request per 100 ms.
        assert_eq!(b.admit(ip(1), &l, 99), Err(1));
        assert_eq!(b.admit(ip(1), &l, 100), Ok(()));
        assert_eq!(b.admit(ip(1), &l, 150), Err(1));
        assert_eq!(burst(&mut b, &l, ip(1), 5, 300), 2);
        // A full second later, the whole burst is back.
        assert_eq!(burst(&mut b, &l, ip(1), 20, 1300), 6);
        // Another address has its own bucket.
        assert_eq!(burst(&mut b, &l, ip(2), 20, 1300), 6);
    }

    #[test]
    fn no_burst_is_one_request_per_interval() {
        let l = limit("2r/s");
        let mut b = Buckets::new(4);
        assert_eq!(b.admit(ip(1), &l, 0), Ok(()));
        assert_eq!(b.admit(ip(1), &l, 0), Err(1));
        assert_eq!(b.admit(ip(1), &l, 499), Err(1));
        assert_eq!(b.admit(ip(1), &l, 500), Ok(()));
        assert_eq!(b.admit(ip(1), &l, 1000), Ok(()));
        // Refused requests do not fill the bucket.
        for t in 1001..1500 {
            assert!(b.admit(ip(1), &l, t).is_err());
        }
        assert_eq!(b.admit(ip(1), &l, 1500), Ok(()));
    }

    #[test]
    fn per_minute_rates_and_retry_after() {
        let l = limit("6r/m,burst=2");
        let mut b = Buckets::new(4);
        assert_eq!(burst(&mut b, &l, ip(1), 10, 0), 3);
        // One request leaks every 10 s.
        assert_eq!(b.admit(ip(1), &l, 0), Err(10));
        assert_eq!(b.admit(ip(1), &l, 5_000), Err(5));
        assert_eq!(b.admit(ip(1), &l, 9_999), Err(1));
        assert_eq!(b.admit(ip(1), &l, 10_000), Ok(()));
    }

    #[test]
    fn the_table_is_bounded_and_drained_buckets_go_first() {
        let l = limit("1r/s,burst=3");
        let mut b = Buckets::new(4);
        for n in 0..4 {
            assert_eq!(burst(&mut b, &l, ip(n), 4, 0), 4);
        }
        // ip(2) drains (4 s for 4 requests); the others get a request meanwhile.
        assert_eq!(burst(&mut b, &l, ip(0), 1, 4_500), 1);
        assert_eq!(burst(&mut b, &l, ip(1), 1, 4_500), 1);
        assert_eq!(burst(&mut b, &l, ip(3), 1, 4_500), 1);
        assert_eq!(burst(&mut b, &l, ip(99), 1, 4_600), 1);
        assert_eq!(b.len(), 4);
        assert!(
            !b.index.contains_key(&ip(2)),
            "the drained bucket made room"
        );
        for kept in [0, 1, 3, 99] {
            assert!(b.index.contains_key(&ip(kept)), "{kept} was kept");
        }
        assert_eq!(burst(&mut b, &l, ip(0), 9, 4_600), 3, "its bucket was kept");
        // Many addresses never grow the table.
        for n in 1000..100_000 {
            b.admit(ip(n), &l, 4_600).unwrap();
        }
        assert_eq!((b.len(), b.index.len()), (4, 4));
        assert!(b.entries.iter().all(|e| b.index[&e.addr] < 4));
    }

    #[test]
    fn zones_and_connections() {
        let config = ClientLimitConfig {
            requests: vec![
                (String::new(), limit("1r/s,burst=1")),
                ("/api/".into(), limit("1r/s")),
            ],
            connections: Some(2),
        };
        let limits = ClientLimits::new(&config).unwrap();
        let t = limits.start;
        let a = Some(ip(7));
        let passed = |path: &str| {
            (0..5)
                .filter(|_| limits.admit_request(a, path, t).is_none())
                .count()
        };
        assert_eq!(passed("/api/x"), 1, "the route's own limit");
        assert_eq!(passed("/index.html"), 2, "the global one, its own bucket");
        assert_eq!(limits.admit_request(None, "/", t), None);
        assert!(limits.open_connection(ip(7)));
        assert!(limits.open_connection(ip(7)));
        assert!(!limits.open_connection(ip(7)));
        assert!(limits.open_connection(ip(8)));
        limits.close_connection(ip(7));
        assert!(limits.open_connection(ip(7)));
        for _ in 0..3 {
            limits.close_connection(ip(7));
            limits.close_connection(ip(8));
        }
        let counts = limits.conn.as_ref().unwrap().1.lock().unwrap();
        assert!(counts.is_empty(), "closed addresses are forgotten");
        assert!(ClientLimits::new(&ClientLimitConfig::default()).is_none());
    }
}
