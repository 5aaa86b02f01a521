//! Token buckets for the flood defences, and the counters a caller reads to see which
//! defence fired and how often.

use std::time::Instant;

use super::settings::Rate;

/// A token bucket refilled by elapsed time (no timer of its own).
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    rate: Rate,
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    pub(crate) fn new(rate: Rate) -> Budget {
        Budget {
            rate,
            tokens: f64::from(rate.burst),
            last: None,
        }
    }

    /// Spend one token; `false` when the bucket is empty.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens =
                (self.tokens + dt * f64::from(self.rate.per_sec)).min(f64::from(self.rate.burst));
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the connection has seen and refused, for metrics. Monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Streams the peer opened.
    pub streams_opened: u64,
    /// Streams refused with REFUSED_STREAM (beyond max concurrent, or after GOAWAY).
    pub streams_refused: u64,
    /// RST_STREAM frames received.
    pub resets_received: u64,
    /// RST_STREAM frames we sent (the caller's and our own stream errors).
    pub resets_sent: u64,
    /// Stream errors we raised on peer input (malformed messages, flow control...).
    pub stream_errors: u64,
    /// Field blocks over the header list limit (HPACK bomb or simply too large).
    pub header_lists_too_large: u64,
    /// CONTINUATION frames received.
    pub continuation_frames: u64,
    /// SETTINGS (not ACK) and PING (not ACK) frames received.
    pub settings_received: u64,
    pub pings_received: u64,
    /// Frames that carried nothing (see `Config::empty_frame_rate`).
    pub empty_frames: u64,
    /// Times each defence ended the connection with ENHANCE_YOUR_CALM.
    pub rapid_reset_kills: u64,
    pub continuation_flood_kills: u64,
    pub settings_flood_kills: u64,
    pub ping_flood_kills: u64,
    pub empty_frame_kills: u64,
}
