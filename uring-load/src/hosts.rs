//! One thread's dispatch across the hosts of its mix, beside the engine's loop: a
//! [`Dispatcher`] per host (the thread's share of `-n` and `-R` for that host, and the
//! selector of its targets), and in the open model the connections of each host that have
//! room for a request when one comes due. Also [`WakeTimers`], the few ring timers that
//! wake the loop for the next sweep, deadline or due request.

use std::time::{Duration, Instant};

use uring_common::ring::Core;
use uring_common::stats::Recorder;

use crate::schedule::Dispatcher;
use crate::stages::Ramp;
use crate::targets::Selector;
use std::sync::Arc;

/// One thread's part of one host: its connections, its share of `-n` and `-R`, and the
/// selector of its targets.
#[derive(Debug, Clone)]
pub struct HostShare {
    pub conns: usize,
    pub budget: Option<u64>,
    pub rate: Option<f64>,
    pub selector: Selector,
}

/// The dispatchers of one thread, one per host.
pub(crate) struct HostDispatch {
    disp: Vec<Dispatcher>,
    shares: Vec<HostShare>,
    /// Open model: connections with room, per host.
    ready: Vec<Vec<u32>>,
    open_model: bool,
    /// `--stages`: each share's `rate` is its part of this ramp.
    ramp: Option<Arc<Ramp>>,
}

impl HostDispatch {
    pub(crate) fn new(shares: Vec<HostShare>, ramp: Option<Arc<Ramp>>) -> HostDispatch {
        HostDispatch {
            ramp,
            disp: Vec::new(),
            ready: vec![Vec::new(); shares.len()],
            open_model: shares.iter().any(|s| s.rate.is_some()),
            shares,
        }
    }

    /// The thread's connections to each host.
    pub(crate) fn conns(&self) -> impl Iterator<Item = usize> + '_ {
        self.shares.iter().map(|s| s.conns)
    }

    /// The measured run starts: fresh dispatchers (the open model's schedule from `start`).
    pub(crate) fn start(&mut self, start: Instant, targets: usize) {
        self.disp = (self.shares.iter())
            .map(|s| {
                let d = match (s.rate, &self.ramp) {
                    (Some(r), Some(ramp)) => Dispatcher::ramped(s.budget, ramp.clone(), r, start),
                    (Some(r), None) => Dispatcher::open(s.budget, r, start),
                    (None, _) => Dispatcher::closed(s.budget),
                };
                d.with_selector(s.selector.clone(), targets)
            })
            .collect();
    }

    pub(crate) fn is_open_model(&self) -> bool {
        self.open_model
    }

    #[inline]
    pub(crate) fn host(&mut self, h: usize) -> &mut Dispatcher {
        &mut self.disp[h]
    }

    /// Requests started (claimed and not given back) on every host.
    pub(crate) fn started(&self) -> u64 {
        self.disp.iter().map(Dispatcher::started).sum()
    }

    /// No host has a request left to claim, now or later.
    pub(crate) fn exhausted(&self) -> bool {
        self.disp.iter().all(Dispatcher::exhausted)
    }

    /// Open model: the earliest due request of a host with a connection that has room.
    pub(crate) fn next_due_with_room(&self) -> Option<Instant> {
        (self.disp.iter().zip(&self.ready))
            .filter(|(_, r)| !r.is_empty())
            .filter_map(|(d, _)| d.next_due())
            .min()
    }

    /// Open model: connection `i` of host `h` has room.
    pub(crate) fn add_ready(&mut self, h: usize, i: u32) {
        self.ready[h].push(i);
    }

    /// Open model: a connection with room, of a host whose next request is due by `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u32> {
        (self.disp.iter().zip(self.ready.iter_mut()))
            .filter(|(d, _)| d.next_due().is_some_and(|t| t <= now))
            .find_map(|(_, r)| r.pop())
    }

    /// Add the requests started per target to the targets' recorders.
    pub(crate) fn count_started(&self, targets: &mut [Recorder]) {
        for d in &self.disp {
            for (t, &n) in targets.iter_mut().zip(d.started_by_target()) {
                t.counters.started += n;
            }
        }
    }
}

/// Ring timers kept at once to wake the loop (driver timer ids `0..WAKE_TIMERS`).
const WAKE_TIMERS: usize = 4;

/// The ring timers that wake the loop: at most one per distinct wake-up.
#[derive(Debug, Default)]
pub(crate) struct WakeTimers {
    expiry: [Option<Instant>; WAKE_TIMERS],
}

impl WakeTimers {
    /// Keep a timer that fires by `wake`.
    pub(crate) fn arm(&mut self, core: &mut Core, now: Instant, wake: Instant) {
        let slack = Duration::from_micros(50);
        if self.expiry.iter().flatten().any(|&e| e <= wake + slack) {
            return;
        }
        let Some(i) = self.expiry.iter().position(Option::is_none) else {
            return;
        };
        let after = wake.saturating_duration_since(now);
        if core.timer(i as u32, after) {
            self.expiry[i] = Some(now + after);
        }
    }

    /// Timer `id` fired (or was cancelled).
    pub(crate) fn fired(&mut self, id: u32) {
        if let Some(e) = self.expiry.get_mut(id as usize) {
            *e = None;
        }
    }
}
