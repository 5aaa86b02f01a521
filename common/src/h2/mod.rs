//! Sans-IO HTTP/2 (RFC 9113) with HPACK (RFC 7541), shared by uring-server and uring-load.
//!
//! - [`frame`]: the 9-byte frame header and every frame type, parsed and serialized.
//! - [`hpack`]: header compression: integers, strings, Huffman, static and dynamic tables,
//!   a bounded decoder and an indexing encoder.
//! - [`Connection`] (`conn`): the connection machine for both roles, with its
//!   [`Config`], the [`Events`] it reports and the [`Counters`] of its defences.
//!   Streams (`stream`), flow control (`flow`) and message rules (`message`) beside it.

pub mod budget;
pub mod conn;
pub mod events;
mod field;
mod flow;
pub mod frame;
pub mod hpack;
mod message;
pub mod settings;
mod stream;

pub use budget::Counters;
pub use conn::{ConnError, Connection, Field, SendError, PREFACE};
pub use events::{Event, Events, FieldRange, HeadersKind, Pseudo, Span};
pub use frame::{ErrorCode, StreamId};
pub use settings::{Config, PeerSettings, Rate, Role};
