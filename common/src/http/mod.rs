//! Sans-IO HTTP/1.1 codec. Every parser takes bytes and returns views that borrow them.

pub mod body;
pub mod chunked;
pub mod date;
pub mod parsed;
pub mod request;
pub mod response;
pub mod serialize;
#[doc(hidden)]
pub mod testkit;

pub use body::BodyReader;
pub use chunked::{ChunkEvent, ChunkedDecoder, ChunkedError};
pub use date::DateCache;
pub use parsed::Parsed;
pub use request::{
    new_header_storage, parse_request, BodyFraming, HeaderStorage, Limits, RequestError,
    RequestHead, Version, HEADER_CAPACITY,
};
pub use response::{parse_response, ResponseError, ResponseFraming, ResponseHead};
