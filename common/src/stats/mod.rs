//! Statistics: per-thread latency recorders and counters, merged exactly; summaries; a
//! JSON form that carries the histogram in HdrHistogram's compressed base64 encoding.
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures,
//! may add more).

pub mod counters;
pub mod first_error;
pub mod recorder;
pub mod summary;

pub use counters::{Counters, ErrorKind};
pub use first_error::{FirstError, FirstErrors, OsCause};
pub use recorder::Recorder;
pub use summary::Summary;
