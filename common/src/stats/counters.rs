//! Plain counters, one set per thread, added together at the end.
//!
//! CONTRACT (stub written by the lead).

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
            connections_opened: 0,
            reconnects: 0,
        }
    }
}

impl Counters {
    /// A response with `status` completed: done, and succeeded (2xx) or failed.
    pub fn record_status(&mut self, status: u16) {
        let _ = status;
        todo!("implemented by the stats work")
    }

    /// An error of `kind` ended a request (or a connect attempt).
    pub fn record_error(&mut self, kind: ErrorKind) {
        let _ = kind;
        todo!("implemented by the stats work")
    }

    /// Count of responses in a status class (1..=5 for 1xx..5xx).
    pub fn class(&self, class: u16) -> u64 {
        let _ = class;
        todo!("implemented by the stats work")
    }

    /// Add another thread's counters.
    pub fn merge(&mut self, other: &Counters) {
        let _ = other;
        todo!("implemented by the stats work")
    }
}
