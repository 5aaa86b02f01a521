//! Who sends what when: the `-n` budget and the connections split across threads, and,
//! within a thread, the dispatcher that hands out requests to connections, either as fast
//! as answers come back (closed model) or at the `-R` rate (open model). In the open
//! model each request carries its intended send time, and latency is measured from it,
//! so a stalled server cannot hide its stall by slowing the generator down
//! (coordinated omission).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::stages::Ramp;
use crate::targets::Pick;
use crate::targets::Selector;
use std::sync::Arc;

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
    /// Requests a server closed before processing, issued again first, to the same
    /// target.
    retry: VecDeque<(Instant, Pick)>,
    started: u64,
    /// The target of each new request.
    selector: Selector,
    /// Requests started per target (of the whole mix; this host's entries move).
    started_by_target: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Rate {
    start: Instant,
    interval_ns: f64,
    issued: u64,
    /// `--stages`: this share of the ramp's rate instead of a constant interval.
    ramp: Option<(Arc<Ramp>, f64)>,
}

/// When a ramp never reaches a request (it ended at 0): far enough to never come.
const NEVER: Duration = Duration::from_secs(10_000_000);

impl Rate {
    #[inline]
    fn due(&self, k: u64) -> Instant {
        match &self.ramp {
            None => self.start + Duration::from_nanos((k as f64 * self.interval_ns) as u64),
            Some((ramp, share)) => {
                self.start
                    + ramp
                        .time_of(k as f64 / share)
                        .map_or(NEVER, Duration::from_secs_f64)
            }
        }
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
            selector: Selector::single(),
            started_by_target: vec![0],
        }
    }

    /// Open model: request `k` is due at `start + k / per_second`.
    pub fn open(budget: Option<u64>, per_second: f64, start: Instant) -> Dispatcher {
        Dispatcher {
            rate: Some(Rate {
                start,
                interval_ns: 1e9 / per_second,
                issued: 0,
                ramp: None,
            }),
            retry: VecDeque::with_capacity(1024),
            ..Dispatcher::closed(budget)
        }
    }

    /// Open model along a ramp (`--stages`): `share` of its rate, from `start`.
    pub fn ramped(budget: Option<u64>, ramp: Arc<Ramp>, share: f64, start: Instant) -> Dispatcher {
        let mut d = Dispatcher::open(budget, ramp.peak() * share, start);
        if let Some(rate) = &mut d.rate {
            rate.ramp = Some((ramp, share));
        }
        d
    }

    /// New requests go to the targets `selector` picks, of a mix of `targets`.
    pub fn with_selector(mut self, selector: Selector, targets: usize) -> Dispatcher {
        self.selector = selector;
        self.started_by_target = vec![0; targets.max(1)];
        self
    }

    /// Requests started per target.
    pub fn started_by_target(&self) -> &[u64] {
        &self.started_by_target
    }

    pub fn is_open_model(&self) -> bool {
        self.rate.is_some()
    }

    /// Requests started (claimed and not given back).
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Claim a request that may start at `now`; returns its latency origin and target.
    pub fn claim(&mut self, now: Instant) -> Option<(Instant, Pick)> {
        if let Some((origin, pick)) = self.retry.pop_front() {
            self.started += 1;
            self.started_by_target[pick.target as usize] += 1;
            return Some((origin, pick));
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
        let pick = self.selector.choose();
        self.started_by_target[pick.target as usize] += 1;
        Some((origin, pick))
    }

    /// A claimed request was never processed by the server: issue it again later, with
    /// its latency origin kept (in both models: the wait for a new connection is part of
    /// what the user of that request would have seen).
    pub fn give_back(&mut self, origin: Instant, pick: Pick) {
        self.started -= 1;
        self.started_by_target[pick.target as usize] -= 1;
        self.retry.push_back((origin, pick));
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
        if let Some(&(r, _)) = self.retry.front() {
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
        d.give_back(third.0, third.1);
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
            let (first, pick) = d.claim(t0).unwrap();
            assert_eq!(first, t0);
            d.give_back(first, pick);
            assert_eq!(d.started(), 0);
            assert_eq!(
                d.claim(later).map(|c| c.0),
                Some(t0),
                "budget {budget:?}: origin kept"
            );
            assert_eq!(d.claim(later).map(|c| c.0), Some(later));
            if budget.is_some() {
                assert_eq!(d.claim(later), None, "the budget stays exact");
                assert!(d.exhausted());
            }
        }
    }

    #[test]
    fn a_request_given_back_keeps_its_target_and_counts_stay_exact() {
        let mix = crate::targets::tests_support::mix(3, crate::targets::Policy::RoundRobin);
        let now = Instant::now();
        let mut d = Dispatcher::closed(Some(7)).with_selector(mix.selector(0, 0, 1), 3);
        let mut got = Vec::new();
        while let Some((o, p)) = d.claim(now) {
            got.push((o, p));
        }
        let targets: Vec<u32> = got.iter().map(|c| c.1.target).collect();
        assert_eq!(targets, [1, 2, 0, 1, 2, 0, 1], "entered at the given start");
        assert_eq!(d.started_by_target(), [2, 3, 2]);
        d.give_back(got[1].0, got[1].1);
        assert_eq!(d.started_by_target(), [2, 3, 1]);
        assert_eq!(
            d.claim(now).map(|c| c.1.target),
            Some(2),
            "the same target again"
        );
        assert_eq!(d.started_by_target(), [2, 3, 2]);
        assert!(d.claim(now).is_none());
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
        while let Some((o, _)) = d.claim(now) {
            origins.push(o);
        }
        assert_eq!(origins.len(), 11);
        assert_eq!(origins[0], t0);
        assert_eq!(origins[10], t0 + Duration::from_millis(10));
        assert_eq!(d.next_due(), Some(t0 + Duration::from_millis(11)));
        // A request given back keeps its intended time and goes first.
        d.give_back(origins[3], Pick::default());
        assert_eq!(d.next_due(), Some(origins[3]));
        assert_eq!(d.claim(now).map(|c| c.0), Some(origins[3]));
    }

    #[test]
    fn ramped_requests_are_due_along_the_ramp_with_their_intended_times() {
        let t0 = Instant::now();
        let ramp = Arc::new(Ramp::parse("2s:1000", crate::stages::Unit::Rate, "--stages").unwrap());
        // Half the ramp's rate: 125 requests by 1s (the integral 250, halved).
        let mut d = Dispatcher::ramped(None, ramp.clone(), 0.5, t0);
        let mut origins = Vec::new();
        while let Some((o, _)) = d.claim(t0 + Duration::from_secs(1)) {
            origins.push(o);
        }
        assert_eq!(origins.len(), 126, "requests 0..=125 are due by 1s");
        assert_eq!(origins[0], t0);
        // Request k is due at sqrt(k / 125) seconds: the ramp's inverse.
        let at = |k: usize| (origins[k] - t0).as_secs_f64();
        assert!((at(100) - (100.0f64 / 125.0).sqrt()).abs() < 1e-6);
        assert!((at(125) - 1.0).abs() < 1e-6);
        assert!(origins.windows(2).all(|w| w[0] <= w[1]));
        // The gaps shrink as the rate grows.
        assert!(at(11) - at(10) > at(121) - at(120));
        let next = d.next_due().unwrap();
        assert!(next > t0 + Duration::from_secs(1));
        // A ramp ending at 0 stops issuing.
        let down =
            Arc::new(Ramp::parse("1s:100,1s:0", crate::stages::Unit::Rate, "--stages").unwrap());
        let mut d = Dispatcher::ramped(None, down, 1.0, t0);
        let mut n = 0;
        while d.claim(t0 + Duration::from_secs(100)).is_some() {
            n += 1;
        }
        assert_eq!(n, 101, "the area under the ramp, and request 0");
    }
}
