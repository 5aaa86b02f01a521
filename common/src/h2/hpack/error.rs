//! Why a field block could not be decoded.

use std::fmt;

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
