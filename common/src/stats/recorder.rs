//! A per-thread latency recorder: an HdrHistogram of microseconds plus counters.
//!
//! Each thread owns one and records without locks or allocation; the threads' recorders
//! are merged at the end. HdrHistogram merges exactly (bucket counts add), so percentiles
//! of the merged recorder are those of one recorder that saw every sample.

use hdrhistogram::Histogram;

use super::{Counters, ErrorKind, FirstErrors};

/// Lowest latency tracked, in microseconds.
pub const LATENCY_LOW_US: u64 = 1;
/// Highest latency tracked, in microseconds (one hour).
pub const LATENCY_HIGH_US: u64 = 3_600_000_000;
/// Significant decimal digits kept (0.1% resolution).
pub const LATENCY_SIGFIG: u8 = 3;

#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency in microseconds, 1 us .. 1 hour, 3 significant digits.
    pub latency_us: Histogram<u64>,
    pub counters: Counters,
    /// The first error of each class with its cause (merged: the earliest wins).
    pub first_errors: FirstErrors,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// An empty histogram with the recorder's bounds.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_LOW_US, LATENCY_HIGH_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

fn clamp(us: u64) -> u64 {
    us.clamp(LATENCY_LOW_US, LATENCY_HIGH_US)
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            latency_us: new_latency_histogram(),
            counters: Counters::default(),
            first_errors: FirstErrors::default(),
        }
    }

    /// Record one latency; values beyond the range are clamped, never dropped.
    pub fn record_latency_us(&mut self, us: u64) {
        self.latency_us.saturating_record(clamp(us));
    }

    /// Record a latency with coordinated-omission correction for a fixed-rate schedule
    /// (latency is measured from the intended send time, so nothing else is needed here;
    /// this exists for closed-model callers that know the expected interval).
    pub fn record_latency_corrected_us(&mut self, us: u64, expected_interval_us: u64) {
        // In range after the clamp, so the only error (value too large) cannot happen.
        let _ = self
            .latency_us
            .record_correct(clamp(us), expected_interval_us);
    }

    /// Keep `cause` as the first error of `kind` if it is the first; call it when an
    /// error of `kind` was counted. Formats the cause only the first time.
    pub fn note_error(&mut self, kind: ErrorKind, cause: &dyn std::fmt::Display) {
        self.first_errors.note(kind, cause);
    }

    /// Merge another recorder exactly (first errors: the earliest by time wins).
    pub fn merge(&mut self, other: &Recorder) {
        add_histogram(&mut self.latency_us, &other.latency_us);
        self.counters.merge(&other.counters);
        self.first_errors.merge(&other.first_errors);
    }
}

/// Add `src` into `dst`. Histograms with the recorder's bounds add bucket by bucket
/// (exact); one from elsewhere with a wider range has its values clamped into ours.
pub(crate) fn add_histogram(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if dst.add(src).is_err() {
        for v in src.iter_recorded() {
            dst.saturating_record_n(clamp(v.value_iterated_to()), v.count_at_value());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    /// A deterministic spread of latencies from 1 us to minutes, with heavy repeats.
    fn samples(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let scale = [10u64, 1_000, 100_000, 200_000_000][(x % 4) as usize];
                1 + (x >> 8) % scale
            })
            .collect()
    }

    #[test]
    fn merge_equals_one_recorder_of_all_samples() {
        let mut parts = [Recorder::new(), Recorder::new(), Recorder::new()];
        let mut whole = Recorder::new();
        for (i, v) in samples(7, 30_000).into_iter().enumerate() {
            parts[i % 3].record_latency_us(v);
            whole.record_latency_us(v);
        }
        let mut merged = Recorder::new();
        for p in &parts {
            merged.merge(p);
        }
        assert_eq!(merged.latency_us.len(), 30_000);
        assert_eq!(merged.latency_us, whole.latency_us);
        // Bucket by bucket, not only the summary.
        let a: Vec<_> = merged
            .latency_us
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let b: Vec<_> = whole
            .latency_us
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(Summary::of(&merged), Summary::of(&whole));
        // And the split was real: no part alone has all the samples.
        assert!(parts.iter().all(|p| p.latency_us.len() == 10_000));
    }

    #[test]
    fn out_of_range_values_are_clamped_not_dropped() {
        let mut r = Recorder::new();
        r.record_latency_us(0);
        r.record_latency_us(u64::MAX);
        r.record_latency_us(LATENCY_HIGH_US * 10);
        assert_eq!(r.latency_us.len(), 3);
        assert_eq!(r.latency_us.value_at_quantile(0.0), 1);
        assert!(r.latency_us.equivalent(r.latency_us.max(), LATENCY_HIGH_US));
    }

    #[test]
    fn corrected_recording_backfills_missed_intervals() {
        let mut r = Recorder::new();
        r.record_latency_corrected_us(1_000, 100);
        // 1000, 900, ..., 100: ten samples for one late response.
        assert_eq!(r.latency_us.len(), 10);
        let mut plain = Recorder::new();
        plain.record_latency_corrected_us(50, 100);
        assert_eq!(plain.latency_us.len(), 1);
    }

    #[test]
    fn merge_clamps_a_foreign_wider_histogram() {
        let mut wide = Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, 3).unwrap();
        wide.record(5).unwrap();
        wide.record(LATENCY_HIGH_US * 100).unwrap();
        let mut dst = new_latency_histogram();
        add_histogram(&mut dst, &wide);
        assert_eq!(dst.len(), 2);
        assert!(dst.equivalent(dst.max(), LATENCY_HIGH_US));
    }
}
