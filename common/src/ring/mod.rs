//! io_uring plumbing shared by both programs: the kernel feature probe and tiers, the ring
//! builder, registered buffer rings, `user_data` tokens and start-up errors.

pub mod bufring;
pub mod builder;
pub mod driver;
pub mod error;
pub mod op;
pub mod slab;
pub mod tier;
pub mod token;

pub use bufring::BufRing;
pub use builder::{
    build_ring, build_ring_with_flags, raise_memlock_limit, raise_nofile_limit, RingConfig,
    SetupFlags,
};
pub use driver::{Driver, DriverConfig, EnterError};
pub use error::RingError;
pub use op::Op;
pub use slab::{
    Completion, Core, CoreConfig, Event, Payload, RecvMode, SlotId, SPLICE_HEAD_MAX, TIMERS,
};
pub use tier::{probe, Features, Tier, TierChoice};
pub use token::Token;
