//! The ring driver shared by both programs: the kernel feature probe and tiers, the ring
//! builder, registered buffer rings, `user_data` tokens, start-up errors, and the two
//! backends (io_uring, epoll) behind one `Driver`/`Core` interface.

pub mod backend;
pub mod bufring;
pub mod builder;
pub mod driver;
pub mod epoll;
pub mod error;
pub mod event;
pub mod fixed;
pub mod op;
pub mod probe;
pub mod slab;
mod slot;
mod sys;
pub mod tier;
pub mod token;
pub mod uring;

pub use backend::{Core, DriverConfig};
pub use bufring::BufRing;
pub use builder::{
    build_ring, build_ring_with_flags, raise_memlock_limit, raise_nofile_limit, RingConfig,
    SetupFlags,
};
pub use driver::Driver;
pub use epoll::{EpollCore, EpollDriver};
pub use error::RingError;
pub use event::{Completion, Event, Payload, RecvMode, SlotId, TIMERS};
pub use op::splice::SPLICE_HEAD_MAX;
pub use op::splice_inline::set_inline_sendfile;
pub use op::Op;
pub use probe::{probe, select, Selection};
pub use slab::{CoreConfig, UringCore};
pub use tier::{Features, Tier, TierChoice};
pub use token::Token;
pub use uring::{EnterError, UringDriver};
