//! Latency over time: per-interval histograms out of the load threads, merged.
//!
//! The hot path is untouched: a load thread records into its one [`Recorder`] as always.
//! Once per interval, at a moment its loop already read the clock, the thread's
//! [`IntervalTicker`] sends a copy of the recorder (a histogram of ~190 KB, once a second)
//! to the reporting thread. The [`IntervalCollector`] there subtracts each thread's
//! previous copy, which gives that thread's interval exactly, and adds the threads'
//! intervals together: interval `k` covers `[start + k * period, start + (k+1) * period)`
//! of every thread, and the last one ends when the run's last thread stopped.
//!
//! The merged [`Interval`]s feed the latency log (`--latency-log`) and the live view.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use uring_common::stats::recorder::new_latency_histogram;
use uring_common::stats::Recorder;

/// One thread's recorder as it was at the end of interval `index` (or at its end).
pub struct Snapshot {
    thread: usize,
    index: u64,
    at: Instant,
    recorder: Box<Recorder>,
    last: bool,
}

/// The sending side, cloned into the run's configuration; each load thread turns it into
/// its own [`IntervalTicker`].
#[derive(Clone, Debug)]
pub struct IntervalFeed {
    tx: Sender<Snapshot>,
    period: Duration,
    next_thread: Arc<AtomicUsize>,
    /// The run's time zero: set by the first thread that starts (monotonic and wall clock).
    origin: Arc<OnceLock<(Instant, SystemTime)>>,
}

impl IntervalFeed {
    /// A feed of `period`-long intervals and the collector that merges what it carries.
    pub fn new(period: Duration, threads: usize) -> (IntervalFeed, IntervalCollector) {
        let (tx, rx) = channel();
        let origin: Arc<OnceLock<(Instant, SystemTime)>> = Arc::default();
        let feed = IntervalFeed {
            tx,
            period,
            next_thread: Arc::default(),
            origin: origin.clone(),
        };
        let collector = IntervalCollector {
            rx,
            period,
            origin,
            threads: (0..threads.max(1))
                .map(|_| ThreadState::default())
                .collect(),
            pending: Vec::new(),
            emitted: 0,
        };
        (feed, collector)
    }
}

/// A load thread's end of the feed. Inert when the run has no feed.
#[derive(Debug)]
pub struct IntervalTicker {
    feed: Option<IntervalFeed>,
    thread: usize,
    start: Instant,
    /// When the current interval ends; `None` when inert.
    next: Option<Instant>,
}

impl IntervalTicker {
    /// Start ticking from `start` (the thread's measured phase begins).
    pub fn start(feed: Option<&IntervalFeed>, start: Instant) -> IntervalTicker {
        let Some(feed) = feed else {
            return IntervalTicker {
                feed: None,
                thread: 0,
                start,
                next: None,
            };
        };
        let thread = feed.next_thread.fetch_add(1, Ordering::Relaxed);
        let (origin, _) = *feed.origin.get_or_init(|| (start, SystemTime::now()));
        // Every thread's intervals line up on the run's time zero.
        let next =
            origin + feed.period * (intervals_between(origin, start, feed.period) as u32 + 1);
        IntervalTicker {
            feed: Some(feed.clone()),
            thread,
            start,
            next: Some(next),
        }
    }

    /// Call with the time the loop just read: sends a copy of `rec` when an interval ended.
    #[inline]
    pub fn tick(&mut self, now: Instant, rec: &Recorder) {
        if let Some(next) = self.next {
            if now >= next {
                self.send(now, rec, false);
            }
        }
    }

    /// The thread's measured phase ended at `end` with `rec`: its last, partial interval.
    pub fn finish(&mut self, end: Instant, rec: &Recorder) {
        if self.next.is_some() {
            self.send(end, rec, true);
            self.next = None;
        }
    }

    #[cold]
    fn send(&mut self, now: Instant, rec: &Recorder, last: bool) {
        let Some(feed) = &self.feed else { return };
        let (origin, _) = *feed.origin.get_or_init(|| (self.start, SystemTime::now()));
        // The interval that ended is the one before the interval `now` falls in; at the
        // end, the interval `now` falls in (it ends early).
        let current = intervals_between(origin, now, feed.period);
        let index = if last {
            current
        } else {
            current.saturating_sub(1)
        };
        let snapshot = Snapshot {
            thread: self.thread,
            index,
            at: now,
            recorder: Box::new(rec.clone()),
            last,
        };
        // A collector that went away only means nobody is listening any more.
        let _ = feed.tx.send(snapshot);
        self.next = Some(origin + feed.period * (current as u32 + 1));
    }
}

fn intervals_between(origin: Instant, t: Instant, period: Duration) -> u64 {
    let since = t.saturating_duration_since(origin).as_nanos();
    (since / period.as_nanos().max(1)) as u64
}

/// One merged interval of every thread.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Number of the interval since the run's time zero.
    pub index: u64,
    /// Start, as an offset from the run's time zero.
    pub offset: Duration,
    /// Wall-clock time of the run's time zero.
    pub origin_wall: SystemTime,
    /// Usually the period; the last interval of a run ends when its last thread stopped.
    pub length: Duration,
    /// Latencies completed in the interval, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Responses (any status) completed in the interval.
    pub done: u64,
    /// Requests ended by an error in the interval.
    pub errored: u64,
    /// Responses with a status other than 2xx in the interval.
    pub non_2xx: u64,
}

impl Interval {
    /// Responses per second over the interval.
    pub fn rps(&self) -> f64 {
        let s = self.length.as_secs_f64();
        if s > 0.0 {
            self.done as f64 / s
        } else {
            0.0
        }
    }
}

#[derive(Default)]
struct ThreadState {
    previous: Option<Box<Recorder>>,
    /// Intervals up to this index are in (exclusive).
    delivered: u64,
    finished: bool,
    end: Option<Instant>,
}

struct Pending {
    latency_us: Histogram<u64>,
    done: u64,
    errored: u64,
    non_2xx: u64,
}

/// The reporting thread's end: merges the threads' intervals in order.
pub struct IntervalCollector {
    rx: Receiver<Snapshot>,
    period: Duration,
    origin: Arc<OnceLock<(Instant, SystemTime)>>,
    threads: Vec<ThreadState>,
    /// `pending[k]` accumulates interval `emitted + k`.
    pending: Vec<Pending>,
    emitted: u64,
}

impl IntervalCollector {
    /// Wait up to `timeout` for threads' snapshots; hand every interval that every
    /// thread has delivered to `out`. Returns false once every thread finished (and every
    /// interval went out).
    pub fn poll(&mut self, timeout: Duration, out: &mut dyn FnMut(&Interval)) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(s) => self.absorb(s),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                // Every sender is gone: the run's configuration was dropped.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    for t in &mut self.threads {
                        t.finished = true;
                    }
                    break;
                }
            }
            // Drain whatever else is waiting without blocking.
            while let Ok(s) = self.rx.try_recv() {
                self.absorb(s);
            }
            self.emit_ready(out);
            if self.all_finished() {
                break;
            }
        }
        self.emit_ready(out);
        !self.all_finished()
    }

    /// Collect until every thread finished, handing out every interval.
    pub fn run_to_end(mut self, out: &mut dyn FnMut(&Interval)) {
        while self.poll(Duration::from_millis(200), out) {}
    }

    fn all_finished(&self) -> bool {
        self.threads.iter().all(|t| t.finished)
    }

    fn absorb(&mut self, s: Snapshot) {
        if s.thread >= self.threads.len() {
            self.threads.resize_with(s.thread + 1, ThreadState::default);
        }
        let delta = {
            let t = &self.threads[s.thread];
            let mut h = s.recorder.latency_us.clone();
            let c = &s.recorder.counters;
            let (done, errored, non_2xx) = match &t.previous {
                Some(p) => {
                    // Counts only grow, so the earlier copy's buckets are all present.
                    let _ = h.subtract(&p.latency_us);
                    let pc = &p.counters;
                    (
                        c.done - pc.done,
                        c.errored - pc.errored,
                        c.failed - pc.failed,
                    )
                }
                None => (c.done, c.errored, c.failed),
            };
            Pending {
                latency_us: h,
                done,
                errored,
                non_2xx,
            }
        };
        // A thread that fell behind the collector (never, with 1 s intervals) adds to the
        // oldest interval still open.
        let index = s.index.max(self.emitted);
        let slot = (index - self.emitted) as usize;
        while self.pending.len() <= slot {
            self.pending.push(Pending {
                latency_us: new_latency_histogram(),
                done: 0,
                errored: 0,
                non_2xx: 0,
            });
        }
        let p = &mut self.pending[slot];
        let _ = p.latency_us.add(&delta.latency_us);
        p.done += delta.done;
        p.errored += delta.errored;
        p.non_2xx += delta.non_2xx;
        let t = &mut self.threads[s.thread];
        t.previous = Some(s.recorder);
        t.delivered = t.delivered.max(index + 1);
        if s.last {
            t.finished = true;
            t.end = Some(s.at);
        }
    }

    fn emit_ready(&mut self, out: &mut dyn FnMut(&Interval)) {
        let Some(&(origin, origin_wall)) = self.origin.get() else {
            return;
        };
        loop {
            let ready = self
                .threads
                .iter()
                .all(|t| t.finished || t.delivered > self.emitted);
            if !ready || self.pending.is_empty() {
                return;
            }
            let all_done = self.all_finished();
            let p = self.pending.remove(0);
            let offset = self.period * self.emitted as u32;
            let mut length = self.period;
            if all_done && self.pending.is_empty() {
                // The run's last interval ends when its last thread stopped.
                if let Some(end) = self.threads.iter().filter_map(|t| t.end).max() {
                    let end = end.saturating_duration_since(origin);
                    if end > offset {
                        length = (end - offset).min(self.period);
                    }
                }
            }
            out(&Interval {
                index: self.emitted,
                offset,
                origin_wall,
                length,
                latency_us: p.latency_us,
                done: p.done,
                errored: p.errored,
                non_2xx: p.non_2xx,
            });
            self.emitted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rec: &mut Recorder, us: u64, n: u64) {
        for _ in 0..n {
            rec.record_latency_us(us);
            rec.counters.record_status(200);
        }
    }

    #[test]
    fn two_threads_make_exact_intervals() {
        let period = Duration::from_millis(100);
        let (feed, collector) = IntervalFeed::new(period, 2);
        let t0 = Instant::now();
        let mut a = IntervalTicker::start(Some(&feed), t0);
        let mut b = IntervalTicker::start(Some(&feed), t0 + Duration::from_millis(3));
        let (mut ra, mut rb) = (Recorder::new(), Recorder::new());
        // Interval 0: a 10 x 100us, b 5 x 200us.
        record(&mut ra, 100, 10);
        record(&mut rb, 200, 5);
        a.tick(t0 + Duration::from_millis(50), &ra); // not yet due: nothing sent
        a.tick(t0 + Duration::from_millis(101), &ra);
        b.tick(t0 + Duration::from_millis(104), &rb);
        // Interval 1: a 3 x 1000us; b one error.
        record(&mut ra, 1000, 3);
        rb.counters
            .record_error(uring_common::stats::ErrorKind::Read);
        a.tick(t0 + Duration::from_millis(205), &ra);
        b.tick(t0 + Duration::from_millis(202), &rb);
        // Interval 2 (partial): a ends at 250 ms with 1 more, b at 240 with nothing new.
        record(&mut ra, 50, 1);
        b.finish(t0 + Duration::from_millis(240), &rb);
        a.finish(t0 + Duration::from_millis(250), &ra);
        drop(feed);
        let mut got = Vec::new();
        collector.run_to_end(&mut |i| got.push(i.clone()));
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got.iter()
                .map(|i| (i.index, i.done, i.errored))
                .collect::<Vec<_>>(),
            [(0, 15, 0), (1, 3, 1), (2, 1, 0)]
        );
        assert_eq!(got[0].latency_us.len(), 15);
        assert_eq!(got[0].latency_us.max(), 200);
        assert_eq!(got[1].latency_us.min(), 1000);
        assert_eq!(got[0].offset, Duration::ZERO);
        assert_eq!(got[1].offset, period);
        assert_eq!(got[0].length, period);
        assert_eq!(got[2].length, Duration::from_millis(50));
        assert!((got[0].rps() - 150.0).abs() < 1e-9);
        // Together the intervals are the run: exact.
        let mut all = new_latency_histogram();
        for i in &got {
            all.add(&i.latency_us).unwrap();
        }
        let mut whole = ra.clone();
        whole.merge(&rb);
        assert_eq!(all, whole.latency_us);
    }

    #[test]
    fn an_inert_ticker_sends_nothing() {
        let mut t = IntervalTicker::start(None, Instant::now());
        t.tick(Instant::now() + Duration::from_secs(5), &Recorder::new());
        t.finish(Instant::now(), &Recorder::new());
        assert!(t.next.is_none());
    }

    #[test]
    fn a_thread_that_skips_intervals_leaves_them_empty() {
        let period = Duration::from_millis(10);
        let (feed, collector) = IntervalFeed::new(period, 1);
        let t0 = Instant::now();
        let mut a = IntervalTicker::start(Some(&feed), t0);
        let mut r = Recorder::new();
        record(&mut r, 7, 4);
        // The loop was away for three intervals: the samples land in the last one ended.
        a.tick(t0 + Duration::from_millis(35), &r);
        a.finish(t0 + Duration::from_millis(36), &r);
        drop(feed);
        let mut got = Vec::new();
        collector.run_to_end(&mut |i| got.push((i.index, i.done)));
        assert_eq!(got, [(0, 0), (1, 0), (2, 4), (3, 0)]);
    }
}
