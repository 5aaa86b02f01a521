//! Sans-IO HTTP/1.1 codec. Every parser takes bytes and returns views that borrow them.

pub mod body;
pub mod chunked;
pub mod date;
pub mod request;
pub mod response;
pub mod serialize;
#[doc(hidden)]
pub mod testkit;

pub use body::BodyReader;
pub use chunked::{ChunkEvent, ChunkedDecoder, ChunkedError};
pub use date::DateCache;
pub use request::{
    new_header_storage, parse_request, BodyFraming, HeaderStorage, Limits, RequestError,
    RequestHead, Version, HEADER_CAPACITY,
};
pub use response::{parse_response, ResponseError, ResponseFraming, ResponseHead};

/// Outcome of feeding a buffer to a parser: not enough bytes yet, or a complete value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<T> {
    /// More bytes are needed; call again with the same bytes plus more.
    Partial,
    /// A complete value.
    Complete(T),
}
