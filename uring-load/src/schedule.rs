//! Who sends what when: the `-n` budget and the connections split across threads, and,
//! within a thread, the dispatcher that hands out requests to connections, either as fast
//! as answers come back (closed model) or at the `-R` rate (open model). In the open
//! model each request carries its intended send time, and latency is measured from it,
//! so a stalled server cannot hide its stall by slowing the generator down
//! (coordinated omission).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Split `total` into `parts` shares that differ by at most one, larger shares first.
pub fn split_even(total: u64, parts: usize) -> Vec<u64> {
    let parts = parts.max(1) as u64;
    (0..parts)
        .map(|i| total / parts + u64::from(i < total % parts))
        .collect()
}

/// Hands out the requests of one thread.
#[derive(Debug)]
pub struct Dispatcher {
    /// Requests left to start (`None`: no `-n`, the run ends by time).
    remaining: Option<u64>,
    rate: Option<Rate>,
    /// Requests a server closed before processing, issued again first (open model).
    retry: VecDeque<Instant>,
    started: u64,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    start: Instant,
    interval_ns: f64,
    issued: u64,
}

impl Rate {
    fn due(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos((k as f64 * self.interval_ns) as u64)
    }
}

impl Dispatcher {
    /// Closed model: a request may start whenever a connection has room.
    pub fn closed(budget: Option<u64>) -> Dispatcher {
        Dispatcher {
            remaining: budget,
            rate: None,
            retry: VecDeque::new(),
            started: 0,
        }
    }

    /// Open model: request `k` is due at `start + k / per_second`.
    pub fn open(budget: Option<u64>, per_second: f64, start: Instant) -> Dispatcher {
        Dispatcher {
            remaining: budget,
            rate: Some(Rate {
                start,
                interval_ns: 1e9 / per_second,
                issued: 0,
            }),
            retry: VecDeque::with_capacity(1024),
            started: 0,
        }
    }

    pub fn is_open_model(&self) -> bool {
        self.rate.is_some()
    }

    /// Requests started (claimed and not given back).
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Claim a request that may start at `now`; returns its latency origin.
    pub fn claim(&mut self, now: Instant) -> Option<Instant> {
        if let Some(origin) = self.retry.pop_front() {
            self.started += 1;
            return Some(origin);
        }
        if self.remaining == Some(0) {
            return None;
        }
        let origin = match &mut self.rate {
            None => now,
            Some(rate) => {
                let due = rate.due(rate.issued);
                if due > now {
                    return None;
                }
                rate.issued += 1;
                due
            }
        };
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
        self.started += 1;
        Some(origin)
    }

    /// A claimed request was never processed by the server: issue it again later, with
    /// its latency origin kept (in both models: the wait for a new connection is part of
    /// what the user of that request would have seen).
    pub fn give_back(&mut self, origin: Instant) {
        self.started -= 1;
        self.retry.push_back(origin);
    }

    /// Whether a request could be claimed now or later.
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0) && self.retry.is_empty()
    }

    /// Open model: when the next request becomes due (now if one is waiting).
    pub fn next_due(&self) -> Option<Instant> {
        if self.exhausted() {
            return None;
        }
        let rate = self.rate.as_ref()?;
        if let Some(&r) = self.retry.front() {
            return Some(r);
        }
        Some(rate.due(rate.issued))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        assert_eq!(split_even(10, 3), vec![4, 3, 3]);
        assert_eq!(split_even(2, 3), vec![1, 1, 0]);
        assert_eq!(split_even(10_000, 3).iter().sum::<u64>(), 10_000);
        for total in 0..50u64 {
            for parts in 1..7 {
                let s = split_even(total, parts);
                assert_eq!(s.iter().sum::<u64>(), total);
                assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn closed_budget_is_exact() {
        let now = Instant::now();
        let mut d = Dispatcher::closed(Some(3));
        assert!(d.claim(now).is_some());
        assert!(d.claim(now).is_some());
        let third = d.claim(now).unwrap();
        assert!(d.claim(now).is_none());
        assert!(d.exhausted());
        d.give_back(third);
        assert!(!d.exhausted());
        assert_eq!(d.started(), 2);
        assert!(d.claim(now).is_some());
        assert!(d.claim(now).is_none());
        assert_eq!(d.started(), 3);
    }

    #[test]
    fn closed_model_keeps_the_latency_origin_of_a_request_given_back() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(30);
        for budget in [Some(2), None] {
            let mut d = Dispatcher::closed(budget);
            let first = d.claim(t0).unwrap();
            assert_eq!(first, t0);
            d.give_back(first);
            assert_eq!(d.started(), 0);
            assert_eq!(d.claim(later), Some(t0), "budget {budget:?}: origin kept");
            assert_eq!(d.claim(later), Some(later));
            if budget.is_some() {
                assert_eq!(d.claim(later), None, "the budget stays exact");
                assert!(d.exhausted());
            }
        }
    }

    #[test]
    fn unlimited_never_exhausts() {
        let mut d = Dispatcher::closed(None);
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(d.claim(now).is_some());
        }
        assert!(!d.exhausted());
    }

    #[test]
    fn open_model_issues_at_the_rate_with_intended_times() {
        let t0 = Instant::now();
        let mut d = Dispatcher::open(Some(100), 1000.0, t0);
        // At t0 + 10.5 ms, requests 0..=10 are due, each with its own intended time.
        let now = t0 + Duration::from_micros(10_500);
        let mut origins = Vec::new();
        while let Some(o) = d.claim(now) {
            origins.push(o);
        }
        assert_eq!(origins.len(), 11);
        assert_eq!(origins[0], t0);
        assert_eq!(origins[10], t0 + Duration::from_millis(10));
        assert_eq!(d.next_due(), Some(t0 + Duration::from_millis(11)));
        // A request given back keeps its intended time and goes first.
        d.give_back(origins[3]);
        assert_eq!(d.next_due(), Some(origins[3]));
        assert_eq!(d.claim(now), Some(origins[3]));
    }
}
