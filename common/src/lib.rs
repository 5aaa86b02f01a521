//! `uring-common`: what uring-server and uring-load share.
//!
//! - [`h2`]: the sans-IO HTTP/2 codec (frames, HPACK, the connection machine).
//! - [`http`]: the sans-IO HTTP/1.1 codec (zero-copy request and response heads, body
//!   framing, chunked decoding, serialization, the cached `Date` header).
//! - [`stats`]: latency histograms, counters, summaries and their mergeable JSON form.
//! - [`ring`]: io_uring plumbing: kernel feature probe and tiers, ring builder, buffer
//!   rings, `user_data` tokens, and start-up errors that name cause and fix.
//!
//! Nothing here spawns threads or opens sockets of its own.

pub mod h2;
pub mod http;
pub mod ring;
pub mod stats;
