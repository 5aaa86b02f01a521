//! What every push parser of the codec returns: not enough bytes yet, or a value. Its own
//! module so that the parsers (request, response, chunked) share it without importing
//! each other or the module that gathers them.

/// Outcome of feeding a buffer to a parser: not enough bytes yet, or a complete value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<T> {
    /// More bytes are needed; call again with the same bytes plus more.
    Partial,
    /// A complete value.
    Complete(T),
}
