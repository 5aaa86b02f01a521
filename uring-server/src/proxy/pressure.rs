//! The proxy's back-pressure marks, shared by the machine (response bytes held for a
//! client) and the tunnel (a client's bytes waiting for the upstream): one home below
//! both, so neither imports the other.

/// Bytes held for the other side before the reading side pauses.
pub const PAUSE_AT: usize = 1024 * 1024;
/// Below this the paused read resumes.
pub const RESUME_AT: usize = 256 * 1024;
