//! Whether an upstream of a route may take requests: passive health as nginx's
//! `max_fails`/`fail_timeout` (failed attempts counted in a window; at `max_fails` the
//! upstream is skipped for `fail_timeout`) and the verdicts of active checks (`rise`
//! passes in a row bring it up, `fall` failures in a row take it down). Sans-IO: the
//! machine reports attempts and check results with the time; the check's bytes are here
//! too ([`check_request`], [`check_verdict`]), its connection is the machine's.

use std::time::{Duration, Instant};

use crate::config::{Health, HealthCheck};

/// One upstream of one route, in one worker.
#[derive(Debug, Clone)]
pub struct MemberHealth {
    /// Failed attempts since `window`.
    fails: u32,
    window: Option<Instant>,
    /// Skipped until then (passive).
    down_until: Option<Instant>,
    /// The active checks' verdict (up until checks say otherwise).
    checked_up: bool,
    /// Check results in a row against the verdict.
    streak: u32,
    /// The next check is due then (None: not yet scheduled).
    pub next_check: Option<Instant>,
    /// A check is in flight.
    pub checking: bool,
    pub counters: MemberCounters,
}

/// What metrics show of a route's upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberCounters {
    /// Attempts sent to it (a retried request counts once per upstream tried).
    pub requests: u64,
    /// Attempts that failed (connect refused or timed out, no response, response timeout).
    pub failures: u64,
    /// Requests moved from it to another upstream after a failure.
    pub retries: u64,
    /// Health checks that failed.
    pub check_failures: u64,
    /// Attempts sent on a pooled connection that had carried a response before (kept
    /// alive: HTTP keep-alive, FastCGI's `FCGI_KEEP_CONN`), not on a new connect.
    pub reused: u64,
}

impl Default for MemberHealth {
    fn default() -> Self {
        MemberHealth {
            fails: 0,
            window: None,
            down_until: None,
            checked_up: true,
            streak: 0,
            next_check: None,
            checking: false,
            counters: MemberCounters::default(),
        }
    }
}

impl MemberHealth {
    /// Whether requests may go to it now.
    pub fn usable(&self, now: Instant) -> bool {
        self.checked_up && self.down_until.map_or(true, |t| now >= t)
    }

    /// An attempt failed.
    pub fn failed(&mut self, now: Instant, h: &Health) {
        self.counters.failures += 1;
        if h.max_fails == 0 {
            return;
        }
        if self.window.map_or(true, |w| now >= w + h.fail_timeout) {
            self.window = Some(now);
            self.fails = 0;
        }
        self.fails += 1;
        if self.fails >= h.max_fails {
            self.down_until = Some(now + h.fail_timeout);
            self.fails = 0;
            self.window = None;
        }
    }

    /// An attempt got a complete response: the failures so far are forgiven (nginx).
    pub fn succeeded(&mut self) {
        self.fails = 0;
        self.window = None;
    }

    /// An active check's result; whether the verdict changed.
    pub fn checked(&mut self, now: Instant, passed: bool, c: &HealthCheck) -> bool {
        self.checking = false;
        self.next_check = Some(now + c.interval);
        if !passed {
            self.counters.check_failures += 1;
        }
        if passed == self.checked_up {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if self.checked_up { c.fall } else { c.rise };
        if self.streak < needed.max(1) {
            return false;
        }
        self.checked_up = passed;
        self.streak = 0;
        if passed {
            // Back by its checks: no passive penalty left over from before.
            self.down_until = None;
            self.fails = 0;
        }
        true
    }

    /// Due for a check at `now`.
    pub fn check_due(&self, now: Instant) -> bool {
        !self.checking && self.next_check.map_or(true, |t| now >= t)
    }
}

/// The bytes of a check: `GET path` with `Connection: close`, so one read to its end.
pub fn check_request(path: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: uring-server-health\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The verdict on the first bytes of a check's response: `Some(passed)` once the status
/// line is in (2xx and 3xx pass), `None` while it is not.
pub fn check_verdict(head: &[u8]) -> Option<bool> {
    let line_end = head.windows(2).position(|w| w == b"\r\n");
    let line = match line_end {
        Some(n) => &head[..n],
        None if head.len() >= 64 => return Some(false),
        None => return None,
    };
    let status = line
        .strip_prefix(b"HTTP/1.")
        .filter(|r| r.len() >= 5 && r[1] == b' ')
        .map(|r| &r[2..5])
        .filter(|s| s.iter().all(u8::is_ascii_digit));
    Some(matches!(status, Some([b'2' | b'3', _, _])))
}

/// Time a check may take before it counts as failed.
pub fn check_deadline(c: &HealthCheck, connect_timeout: Duration) -> Duration {
    c.interval
        .min(connect_timeout.max(Duration::from_millis(100)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(max_fails: u32) -> Health {
        Health {
            max_fails,
            fail_timeout: Duration::from_secs(10),
            check: None,
        }
    }

    #[test]
    fn max_fails_in_the_window_take_it_down_for_fail_timeout() {
        let t0 = Instant::now();
        let h = health(2);
        let mut m = MemberHealth::default();
        m.failed(t0, &h);
        assert!(m.usable(t0), "one of two");
        // The second failure outside the window starts a new count.
        m.failed(t0 + Duration::from_secs(11), &h);
        assert!(m.usable(t0 + Duration::from_secs(11)));
        m.failed(t0 + Duration::from_secs(12), &h);
        assert!(!m.usable(t0 + Duration::from_secs(12)));
        assert!(!m.usable(t0 + Duration::from_millis(21_999)));
        assert!(m.usable(t0 + Duration::from_secs(22)));
        assert_eq!(m.counters.failures, 3);
        // A success forgives.
        m.failed(t0 + Duration::from_secs(30), &h);
        m.succeeded();
        m.failed(t0 + Duration::from_secs(31), &h);
        assert!(m.usable(t0 + Duration::from_secs(31)));
        // max_fails = 0: never down.
        let mut m = MemberHealth::default();
        for _ in 0..10 {
            m.failed(t0, &health(0));
        }
        assert!(m.usable(t0));
    }

    #[test]
    fn checks_take_it_down_after_fall_and_up_after_rise() {
        let t0 = Instant::now();
        let c = HealthCheck {
            path: "/healthz".into(),
            interval: Duration::from_secs(1),
            rise: 2,
            fall: 3,
        };
        let mut m = MemberHealth::default();
        assert!(!m.checked(t0, false, &c));
        assert!(!m.checked(t0, false, &c));
        assert!(!m.checked(t0, true, &c), "a pass breaks the streak");
        assert!(!m.checked(t0, false, &c));
        assert!(!m.checked(t0, false, &c));
        assert!(m.usable(t0));
        assert!(m.checked(t0, false, &c), "three in a row");
        assert!(!m.usable(t0));
        assert!(!m.checked(t0, true, &c));
        assert!(!m.usable(t0));
        assert!(m.checked(t0, true, &c), "two in a row");
        assert!(m.usable(t0));
        assert_eq!(m.next_check, Some(t0 + c.interval));
    }

    #[test]
    fn verdicts_need_the_status_line() {
        assert_eq!(check_verdict(b"HTTP/1.1 20"), None);
        assert_eq!(check_verdict(b"HTTP/1.1 200 OK\r\n"), Some(true));
        assert_eq!(
            check_verdict(b"HTTP/1.0 302 Found\r\nLocation: /\r\n"),
            Some(true)
        );
        assert_eq!(check_verdict(b"HTTP/1.1 503 Busy\r\n"), Some(false));
        assert_eq!(check_verdict(b"SSH-2.0-OpenSSH\r\n"), Some(false));
        assert_eq!(check_verdict(&[b'x'; 64]), Some(false));
    }
}
