//! The ring driver shared by both programs: the kernel feature probe and tiers, the ring
//! builder, registered buffer rings, `user_data` tokens, start-up errors, and the two
//! backends (io_uring, epoll) behind one `Driver`/`Core` interface.

pub mod backend;
pub mod bufring;
pub mod builder;
pub mod driver;
pub mod epoll;
pub mod error;
pub mod fixed;
pub mod op;
pub mod slab;
pub mod tier;
pub mod token;

pub use backend::{Core, Driver};
pub use bufring::BufRing;
pub use builder::{
    build_ring, build_ring_with_flags, raise_memlock_limit, raise_nofile_limit, RingConfig,
    SetupFlags,
};
pub use driver::{DriverConfig, EnterError, UringDriver};
pub use epoll::{EpollCore, EpollDriver};
pub use error::RingError;
pub use op::Op;
pub use slab::{
    set_inline_sendfile, Completion, CoreConfig, Event, Payload, RecvMode, SlotId, UringCore,
    SPLICE_HEAD_MAX, TIMERS,
};
pub use tier::{probe, select, Features, Selection, Tier, TierChoice};
pub use token::Token;
