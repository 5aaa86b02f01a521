//! io_uring plumbing shared by both programs: the kernel feature probe and tiers, the ring
//! builder, registered buffer rings, `user_data` tokens and start-up errors.

pub mod bufring;
pub mod builder;
pub mod error;
pub mod tier;
pub mod token;

pub use bufring::BufRing;
pub use builder::{build_ring, raise_memlock_limit, raise_nofile_limit, RingConfig};
pub use error::RingError;
pub use tier::{probe, Features, Tier, TierChoice};
pub use token::Token;
