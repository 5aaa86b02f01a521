//! Plain counters, one set per thread, added together at the end.
//!
//! Every field is a plain sum, so merging is exact and order-free; the JSON form in
//! `summary.rs` carries every field, so a report can be turned back into counters.

/// Error classes the load tool counts (never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Connect refused or timed out.
    Connect,
    /// Reset, or EOF in the middle of a response.
    Read,
    Write,
    /// `-T` passed without a full response.
    Timeout,
    /// Malformed response.
    Parse,
    /// HTTP/2: the server reset the stream (RST_STREAM other than REFUSED_STREAM).
    Reset,
    /// HTTP/2: the server's GOAWAY with an error code ended the stream unanswered.
    GoAway,
    /// HTTP/2: a request body waited for the server's flow-control window until `-T`, or
    /// the server broke flow control (FLOW_CONTROL_ERROR).
    FlowControl,
    /// HTTP/2: the server's frames broke the protocol (a connection error, or a
    /// malformed response on one stream).
    Protocol,
}

impl ErrorKind {
    /// Every class, in report order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Connect,
        ErrorKind::Read,
        ErrorKind::Write,
        ErrorKind::Timeout,
        ErrorKind::Parse,
        ErrorKind::Reset,
        ErrorKind::GoAway,
        ErrorKind::FlowControl,
        ErrorKind::Protocol,
    ];

    /// The classes only HTTP/2 has (the text report shows them for HTTP/2 runs, or
    /// when one counted anything).
    pub const HTTP2: [ErrorKind; 4] = [
        ErrorKind::Reset,
        ErrorKind::GoAway,
        ErrorKind::FlowControl,
        ErrorKind::Protocol,
    ];

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class's name in reports (`errors.<name>` in the JSON).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Read => "read",
            ErrorKind::Write => "write",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Parse => "parse",
            ErrorKind::Reset => "reset",
            ErrorKind::GoAway => "goaway",
            ErrorKind::FlowControl => "flow_control",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// The cause when nothing more precise is known (no errno, no parser detail).
    pub fn generic_cause(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect failed",
            ErrorKind::Read => "the server closed the connection before a complete response",
            ErrorKind::Write => "send failed",
            ErrorKind::Timeout => "no complete response within the timeout (-T)",
            ErrorKind::Parse => {
                "malformed response (not HTTP/1.x, bad framing, or bytes no request asked for)"
            }
            ErrorKind::Reset => "HTTP/2 stream reset by the server",
            ErrorKind::GoAway => "HTTP/2 GOAWAY with an error from the server",
            ErrorKind::FlowControl => {
                "HTTP/2 request body stalled: the server's flow-control window stayed closed until the timeout (-T)"
            }
            ErrorKind::Protocol => "HTTP/2 protocol error in the server's frames",
        }
    }
}

/// Counters of one thread (or merged). No allocation when counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub started: u64,
    pub done: u64,
    /// Done with a 2xx status.
    pub succeeded: u64,
    /// Done with a non-2xx status.
    pub failed: u64,
    /// Ended by an error (no full response).
    pub errored: u64,
    pub bytes_total: u64,
    pub bytes_headers: u64,
    pub bytes_body: u64,
    /// Exact status codes 100..=599 (index = code - 100); others counted in `by_code_other`.
    pub by_code: [u64; 500],
    pub by_code_other: u64,
    pub errors_connect: u64,
    pub errors_read: u64,
    pub errors_write: u64,
    pub errors_timeout: u64,
    pub errors_parse: u64,
    pub errors_reset: u64,
    pub errors_goaway: u64,
    pub errors_flow_control: u64,
    pub errors_protocol: u64,
    pub connections_opened: u64,
    pub reconnects: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            started: 0,
            done: 0,
            succeeded: 0,
            failed: 0,
            errored: 0,
            bytes_total: 0,
            bytes_headers: 0,
            bytes_body: 0,
            by_code: [0; 500],
            by_code_other: 0,
            errors_connect: 0,
            errors_read: 0,
            errors_write: 0,
            errors_timeout: 0,
            errors_parse: 0,
            errors_reset: 0,
            errors_goaway: 0,
            errors_flow_control: 0,
            errors_protocol: 0,
            connections_opened: 0,
            reconnects: 0,
        }
    }
}

impl Counters {
    /// A response with `status` completed: done, and succeeded (2xx) or failed.
    pub fn record_status(&mut self, status: u16) {
        self.done += 1;
        if (200..300).contains(&status) {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        match status {
            100..=599 => self.by_code[(status - 100) as usize] += 1,
            _ => self.by_code_other += 1,
        }
    }

    /// An error of `kind` ended a request (or a connect attempt): counted once in
    /// `errored` and once under its kind. Call it once per request it ends.
    pub fn record_error(&mut self, kind: ErrorKind) {
        self.errored += 1;
        *self.errors_of_mut(kind) += 1;
    }

    /// The counter of `kind`'s errors.
    pub fn errors_of_mut(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::Connect => &mut self.errors_connect,
            ErrorKind::Read => &mut self.errors_read,
            ErrorKind::Write => &mut self.errors_write,
            ErrorKind::Timeout => &mut self.errors_timeout,
            ErrorKind::Parse => &mut self.errors_parse,
            ErrorKind::Reset => &mut self.errors_reset,
            ErrorKind::GoAway => &mut self.errors_goaway,
            ErrorKind::FlowControl => &mut self.errors_flow_control,
            ErrorKind::Protocol => &mut self.errors_protocol,
        }
    }

    /// Errors counted under `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::Connect => self.errors_connect,
            ErrorKind::Read => self.errors_read,
            ErrorKind::Write => self.errors_write,
            ErrorKind::Timeout => self.errors_timeout,
            ErrorKind::Parse => self.errors_parse,
            ErrorKind::Reset => self.errors_reset,
            ErrorKind::GoAway => self.errors_goaway,
            ErrorKind::FlowControl => self.errors_flow_control,
            ErrorKind::Protocol => self.errors_protocol,
        }
    }

    /// Count of responses in a status class (1..=5 for 1xx..5xx).
    pub fn class(&self, class: u16) -> u64 {
        if !(1..=5).contains(&class) {
            return 0;
        }
        let start = (class as usize - 1) * 100;
        self.by_code[start..start + 100].iter().sum()
    }

    /// Count of responses with exactly `status` (codes outside 100..=599 are summed in
    /// `by_code_other`).
    pub fn code(&self, status: u16) -> u64 {
        match status {
            100..=599 => self.by_code[(status - 100) as usize],
            _ => 0,
        }
    }

    /// Add another thread's counters.
    pub fn merge(&mut self, other: &Counters) {
        self.started += other.started;
        self.done += other.done;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.errored += other.errored;
        self.bytes_total += other.bytes_total;
        self.bytes_headers += other.bytes_headers;
        self.bytes_body += other.bytes_body;
        for (mine, theirs) in self.by_code.iter_mut().zip(other.by_code.iter()) {
            *mine += theirs;
        }
        self.by_code_other += other.by_code_other;
        self.errors_connect += other.errors_connect;
        self.errors_read += other.errors_read;
        self.errors_write += other.errors_write;
        self.errors_timeout += other.errors_timeout;
        self.errors_parse += other.errors_parse;
        self.errors_reset += other.errors_reset;
        self.errors_goaway += other.errors_goaway;
        self.errors_flow_control += other.errors_flow_control;
        self.errors_protocol += other.errors_protocol;
        self.connections_opened += other.connections_opened;
        self.reconnects += other.reconnects;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_land_in_codes_and_classes() {
        let mut c = Counters::default();
        for s in [200, 200, 204, 301, 404, 500, 503, 101, 99, 600] {
            c.record_status(s);
        }
        assert_eq!(c.done, 10);
        assert_eq!(c.succeeded, 3);
        assert_eq!(c.failed, 7);
        assert_eq!(
            [c.class(1), c.class(2), c.class(3), c.class(4), c.class(5)],
            [1, 3, 1, 1, 2]
        );
        assert_eq!(c.class(0) + c.class(6), 0);
        assert_eq!(c.code(200), 2);
        assert_eq!(c.code(599), 0);
        assert_eq!(c.by_code_other, 2);
    }

    #[test]
    fn errors_by_kind() {
        let mut c = Counters::default();
        c.record_error(ErrorKind::Connect);
        c.record_error(ErrorKind::Read);
        c.record_error(ErrorKind::Read);
        c.record_error(ErrorKind::Write);
        c.record_error(ErrorKind::Timeout);
        c.record_error(ErrorKind::Parse);
        for k in ErrorKind::HTTP2 {
            c.record_error(k);
        }
        c.record_error(ErrorKind::FlowControl);
        assert_eq!(c.errored, 11);
        assert_eq!(
            (
                c.errors_reset,
                c.errors_goaway,
                c.errors_flow_control,
                c.errors_protocol
            ),
            (1, 1, 2, 1)
        );
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::ALL[k.index()], k);
            assert!(c.errors_of(k) >= 1, "{}", k.name());
        }
        assert_eq!(
            (
                c.errors_connect,
                c.errors_read,
                c.errors_write,
                c.errors_timeout,
                c.errors_parse
            ),
            (1, 2, 1, 1, 1)
        );
    }

    #[test]
    fn merge_adds_every_field() {
        let mut a = Counters::default();
        let mut b = Counters::default();
        let mut all = Counters::default();
        for (i, s) in [200u16, 404, 500, 200, 302, 700].into_iter().enumerate() {
            let target = if i % 2 == 0 { &mut a } else { &mut b };
            target.record_status(s);
            all.record_status(s);
        }
        for (i, k) in [ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Parse]
            .into_iter()
            .chain(ErrorKind::HTTP2)
            .enumerate()
        {
            let target = if i % 2 == 0 { &mut a } else { &mut b };
            target.record_error(k);
            all.record_error(k);
        }
        for (t, n) in [(&mut a, 3u64), (&mut b, 5)] {
            t.started += n;
            t.bytes_total += n * 100;
            t.bytes_headers += n * 60;
            t.bytes_body += n * 40;
            t.connections_opened += n;
            t.reconnects += n - 1;
        }
        all.started = 8;
        all.bytes_total = 800;
        all.bytes_headers = 480;
        all.bytes_body = 320;
        all.connections_opened = 8;
        all.reconnects = 6;
        a.merge(&b);
        assert_eq!(a, all);
    }
}
