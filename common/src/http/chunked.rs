//! Incremental, zero-copy decoder for the chunked transfer coding (RFC 9112 section 7.1).
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures).

/// What one call to [`ChunkedDecoder::decode`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEvent<'b> {
    /// Body bytes (a slice of the input).
    Data(&'b [u8]),
    /// All input was consumed without a complete event; feed more.
    NeedMore,
    /// The last chunk and the trailer section are complete.
    Done,
}

/// A framing error; the connection must be closed, never resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    InvalidSize,
    SizeOverflow,
    InvalidExtension,
    ExtensionTooLong,
    TrailerTooLong,
    InvalidLineEnding,
}

/// Decoder state machine; one per message, reusable after `reset`.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    _private: (),
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Back to the start state for the next message.
    pub fn reset(&mut self) {
        todo!("implemented by the codec work")
    }

    /// Consume a prefix of `input`; returns the bytes consumed and the event. Call again
    /// with the rest of the input until `NeedMore` or `Done`.
    pub fn decode<'b>(&mut self, input: &'b [u8]) -> Result<(usize, ChunkEvent<'b>), ChunkedError> {
        let _ = input;
        todo!("implemented by the codec work")
    }
}
