//! Sans-IO HTTP/2 (RFC 9113) with HPACK (RFC 7541), shared by uring-server and uring-load.
//!
//! - [`frame`]: the 9-byte frame header and every frame type, parsed and serialized.
//! - [`hpack`]: header compression: integers, strings, Huffman, static and dynamic tables,
//!   a bounded decoder and an indexing encoder.

pub mod frame;
pub mod hpack;
