//! A per-thread latency recorder: an HdrHistogram of microseconds plus counters.
//!
//! CONTRACT (stub written by the lead).

use hdrhistogram::Histogram;

use super::Counters;

#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency in microseconds, 1 us .. 1 hour, 3 significant digits.
    pub latency_us: Histogram<u64>,
    pub counters: Counters,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        todo!("implemented by the stats work")
    }

    /// Record one latency; values beyond the range are clamped, never dropped.
    pub fn record_latency_us(&mut self, us: u64) {
        let _ = us;
        todo!()
    }

    /// Record a latency with coordinated-omission correction for a fixed-rate schedule
    /// (latency is measured from the intended send time, so nothing else is needed here;
    /// this exists for closed-model callers that know the expected interval).
    pub fn record_latency_corrected_us(&mut self, us: u64, expected_interval_us: u64) {
        let _ = (us, expected_interval_us);
        todo!()
    }

    /// Merge another recorder exactly.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = other;
        todo!()
    }
}
