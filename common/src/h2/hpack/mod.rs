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
pub mod huffman;
pub mod integer;
pub mod table;

pub use decoder::{Decoder, FieldSpan};
pub use encoder::Encoder;

use std::fmt;

/// The decoder's default (and the protocol's initial) dynamic table size: 4096 bytes.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a field block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// An integer or string runs past the end of the block.
    Truncated,
    /// An integer above 2^32 - 1.
    IntegerOverflow,
    /// Malformed Huffman data (EOS, bad padding).
    Huffman,
    /// Index 0, or past the end of the static plus dynamic tables.
    InvalidIndex(usize),
    /// A dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE.
    SizeUpdateTooLarge(usize),
    /// A size update after the first field of a block.
    SizeUpdateNotFirst,
    /// We lowered our table size and the block did not start with the update owed.
    MissingSizeUpdate,
    /// The decoded fields exceed the header list limit (names + values + 32 per field).
    /// The block was still decoded to the end, so the table stays in step and the
    /// connection can go on; only the message is refused.
    HeaderListTooLarge,
}

impl DecodeError {
    /// True for every error but [`DecodeError::HeaderListTooLarge`]: the decoder's state
    /// is lost, a connection error of type COMPRESSION_ERROR (RFC 9113 4.3).
    pub fn is_compression_error(self) -> bool {
        self != DecodeError::HeaderListTooLarge
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("HPACK block ends inside a representation"),
            DecodeError::IntegerOverflow => f.write_str("HPACK integer too large"),
            DecodeError::Huffman => f.write_str("malformed Huffman string"),
            DecodeError::InvalidIndex(i) => write!(f, "HPACK index {i} is not in the table"),
            DecodeError::SizeUpdateTooLarge(n) => {
                write!(f, "dynamic table size update to {n} exceeds our setting")
            }
            DecodeError::SizeUpdateNotFirst => {
                f.write_str("dynamic table size update after a header field")
            }
            DecodeError::MissingSizeUpdate => f.write_str("expected dynamic table size update"),
            DecodeError::HeaderListTooLarge => f.write_str("header list exceeds the limit"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests;
