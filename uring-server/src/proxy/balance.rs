//! Which upstream of a route takes a request: smooth weighted round-robin (nginx's),
//! least-conn (weighted, ties by round-robin) and rendezvous hashing of a header or
//! cookie. Pure functions of the route's members, their health and load, and the
//! request's key: no clock, no socket (the machine passes who is usable and how busy).
//!
//! Rendezvous hashing rather than a ring: each (key, member) pair gets a score and the
//! best usable member wins, so removing a member (or marking it down) moves only the keys
//! it had, spread over the others, and no ring of virtual nodes needs building or
//! weighting. Member identities are hashes of their addresses, so every worker (and every
//! restart) maps a key alike.

use uring_common::http::RequestHead;

use crate::config::Balance;

/// The most upstreams a request tries (the first and its retries on others).
pub const MAX_TRIES: usize = 8;

/// A route's upstream as the balancer sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Index of its pool.
    pub upstream: usize,
    pub weight: u32,
    /// The hash of its address: its identity for rendezvous hashing.
    pub id: u64,
}

/// The upstreams a request was sent to, in order (nginx's `$upstream_addr` lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tried {
    list: [u16; MAX_TRIES],
    len: u8,
}

impl Tried {
    pub fn push(&mut self, upstream: usize) {
        if (self.len as usize) < MAX_TRIES {
            self.list[self.len as usize] = upstream as u16;
            self.len += 1;
        }
    }

    pub fn contains(&self, upstream: usize) -> bool {
        self.iter().any(|u| u == upstream)
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len as usize == MAX_TRIES
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.list[..self.len as usize].iter().map(|&u| u as usize)
    }
}

/// A route's balancing state (one per worker and route).
#[derive(Debug)]
pub struct Balancer {
    members: Vec<Member>,
    policy: Policy,
    /// Smooth weighted round-robin's current weights.
    current: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    RoundRobin,
    LeastConn,
    Hash,
}

impl Balancer {
    pub fn new(members: Vec<Member>, balance: &Balance) -> Balancer {
        let policy = match balance {
            Balance::RoundRobin => Policy::RoundRobin,
            Balance::LeastConn => Policy::LeastConn,
            Balance::Header(_) | Balance::Cookie(_) => Policy::Hash,
        };
        Balancer {
            current: vec![0; members.len()],
            members,
            policy,
        }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member (its position) for a request with `key`, among those `usable` says yes
    /// to; `load` is a member's requests in flight (least-conn). `None`: no member usable.
    pub fn pick(
        &mut self,
        key: Option<u64>,
        usable: impl Fn(usize) -> bool,
        load: impl Fn(usize) -> usize,
    ) -> Option<usize> {
        if self.members.len() == 1 {
            return usable(0).then_some(0);
        }
        match (self.policy, key) {
            (Policy::Hash, Some(key)) => self.rendezvous(key, usable),
            (Policy::LeastConn, _) => {
                // The lowest load per weight (l_a / w_a < l_b / w_b without dividing),
                // then round-robin among the ties so equal loads still follow weights.
                let m = &self.members;
                let best = (0..m.len()).filter(|&i| usable(i)).min_by(|&a, &b| {
                    (load(a) as u64 * m[b].weight as u64)
                        .cmp(&(load(b) as u64 * m[a].weight as u64))
                })?;
                let (lb, wb) = (load(best) as u64, m[best].weight as u64);
                round_robin(m, &mut self.current, |i| {
                    usable(i) && load(i) as u64 * wb == lb * m[i].weight as u64
                })
            }
            _ => round_robin(&self.members, &mut self.current, usable),
        }
    }

    /// Weighted rendezvous hashing: score = -w / ln(u), u the (key, member) hash in (0, 1).
    fn rendezvous(&self, key: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let score = |m: &Member| {
            let h = mix(key ^ m.id);
            // 53 bits into (0, 1): never 0, so ln is finite and negative.
            let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            -(m.weight as f64) / u.ln()
        };
        (0..self.members.len())
            .filter(|&i| usable(i))
            .max_by(|&a, &b| score(&self.members[a]).total_cmp(&score(&self.members[b])))
    }
}

/// nginx's smooth weighted round-robin: each usable member gains its weight, the
/// highest goes and loses the sum; over a cycle each member is picked `weight` times,
/// interleaved (5,1,1 gives a a b a c a a, not a a a a a b c).
fn round_robin(
    members: &[Member],
    current: &mut [i64],
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut total = 0i64;
    for i in 0..members.len() {
        if !usable(i) {
            continue;
        }
        let w = members[i].weight as i64;
        current[i] += w;
        total += w;
        if best.map_or(true, |b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let best = best?;
    current[best] -= total;
    Some(best)
}

/// FNV-1a over `bytes`, then [`mix`]ed: a stable 64-bit hash (the same in every worker
/// and every build, unlike std's `Hasher`s).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// splitmix64's finalizer: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of the request's balancing key under `balance`: the named header's first
/// value or the named cookie's value. `None` (round-robin) when the route does not hash or
/// the request lacks the key.
#[inline]
pub fn request_key(balance: &Balance, head: &RequestHead<'_, '_>) -> Option<u64> {
    match balance {
        Balance::RoundRobin | Balance::LeastConn => None,
        Balance::Header(name) => head.header(name).map(hash_bytes),
        Balance::Cookie(name) => head
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
            .find_map(|h| cookie_value(h.value, name.as_bytes()))
            .map(hash_bytes),
    }
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`, RFC 6265 §5.4).
fn cookie_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name).then(|| pair[eq + 1..].trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balancer(weights: &[u32], balance: Balance) -> Balancer {
        let members = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Member {
                upstream: i,
                weight,
                id: hash_bytes(format!("127.0.0.1:{}", 8000 + i).as_bytes()),
            })
            .collect();
        Balancer::new(members, &balance)
    }

    #[test]
    fn round_robin_follows_weights_smoothly() {
        let mut b = balancer(&[5, 1, 1], Balance::RoundRobin);
        let seq: Vec<usize> = (0..7)
            .map(|_| b.pick(None, |_| true, |_| 0).unwrap())
            .collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0], "nginx's interleaving");
        let mut counts = [0; 3];
        for _ in 0..700 {
            counts[b.pick(None, |_| true, |_| 0).unwrap()] += 1;
        }
        assert_eq!(counts, [500, 100, 100]);
    }

    #[test]
    fn least_conn_takes_the_lowest_load_per_weight() {
        let mut b = balancer(&[1, 2, 1], Balance::LeastConn);
        let loads = [3, 5, 2];
        // 3/1, 5/2 = 2.5, 2/1: the third.
        assert_eq!(b.pick(None, |_| true, |i| loads[i]), Some(2));
        let loads = [3, 5, 4];
        assert_eq!(b.pick(None, |_| true, |i| loads[i]), Some(1));
        assert_eq!(b.pick(None, |i| i != 1, |i| loads[i]), Some(0));
        // Equal loads: weighted round-robin among them.
        let mut counts = [0; 3];
        for _ in 0..400 {
            counts[b.pick(None, |_| true, |_| 0).unwrap()] += 1;
        }
        assert_eq!(counts, [100, 200, 100]);
    }

    #[test]
    fn hashing_is_sticky_and_a_removal_moves_only_its_keys() {
        let mut b = balancer(&[1, 1, 1, 1], Balance::Header("x-user".into()));
        let keys: Vec<u64> = (0..2000)
            .map(|k| hash_bytes(format!("user{k}").as_bytes()))
            .collect();
        let first: Vec<usize> = keys
            .iter()
            .map(|&k| b.pick(Some(k), |_| true, |_| 0).unwrap())
            .collect();
        let again: Vec<usize> = keys
            .iter()
            .map(|&k| b.pick(Some(k), |_| true, |_| 0).unwrap())
            .collect();
        assert_eq!(first, again, "sticky");
        let mut counts = [0; 4];
        for &m in &first {
            counts[m] += 1;
        }
        assert!(
            counts.iter().all(|&c| (400..600).contains(&c)),
            "spread: {counts:?}"
        );
        // Member 2 goes: its keys spread over the rest, every other key stays.
        let without: Vec<usize> = keys
            .iter()
            .map(|&k| b.pick(Some(k), |i| i != 2, |_| 0).unwrap())
            .collect();
        let mut moved_to = [0; 4];
        for (&a, &c) in first.iter().zip(&without) {
            if a == 2 {
                assert_ne!(c, 2);
                moved_to[c] += 1;
            } else {
                assert_eq!(a, c, "a key of another member moved");
            }
        }
        assert!(
            moved_to.iter().enumerate().all(|(i, &n)| i == 2 || n > 100),
            "{moved_to:?}"
        );
        // A request without the key: round-robin.
        let rr: Vec<usize> = (0..4)
            .map(|_| b.pick(None, |_| true, |_| 0).unwrap())
            .collect();
        let mut sorted = rr.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3]);
    }

    #[test]
    fn hashing_follows_weights() {
        let mut b = balancer(&[3, 1], Balance::Header("x-user".into()));
        let mut counts = [0; 2];
        for k in 0..4000 {
            let key = hash_bytes(format!("k{k}").as_bytes());
            counts[b.pick(Some(key), |_| true, |_| 0).unwrap()] += 1;
        }
        assert!((2800..3200).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn nothing_usable_is_none() {
        for balance in [
            Balance::RoundRobin,
            Balance::LeastConn,
            Balance::Header("h".into()),
        ] {
            let mut b = balancer(&[1, 1], balance);
            assert_eq!(b.pick(Some(1), |_| false, |_| 0), None);
        }
        assert_eq!(
            balancer(&[1], Balance::RoundRobin).pick(None, |_| false, |_| 0),
            None
        );
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(
            cookie_value(b"a=1; sid=xyz; b=2", b"sid"),
            Some(&b"xyz"[..])
        );
        assert_eq!(cookie_value(b"sid=", b"sid"), Some(&b""[..]));
        assert_eq!(cookie_value(b"xsid=1;sid2=3", b"sid"), None);
        assert_eq!(cookie_value(b"junk; sid = v ", b"sid"), Some(&b"v"[..]));
    }
}
