//! HPACK (RFC 7541): header compression for HTTP/2.
//!
//! Written here rather than taken from a crate: the decoder writes fields straight into a
//! caller-owned arena (no allocation per field), enforces the header list limit while it
//! decodes (an HPACK bomb costs at most one field of memory past the limit), and the
//! encoder's table is bounded by our own cap as well as by the peer's setting.
//!
//! - [`integer`], [`huffman`]: the primitive encodings (5.1, 5.2, Appendix B).
//! - [`table`]: the static table (Appendix A) and the dynamic table (section 4).
//! - [`Decoder`], [`Encoder`]: field blocks (section 6).

mod decoder;
mod encoder;
mod error;
pub mod huffman;
pub mod integer;
pub mod table;

pub use decoder::{Decoder, FieldSpan};
pub use encoder::Encoder;
pub use error::DecodeError;
pub use table::DEFAULT_TABLE_SIZE;

#[cfg(test)]
mod tests;
