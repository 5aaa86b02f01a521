//! Kernel feature probe and the three tiers of DESIGN.md.
//!
//! | tier | needs | uses |
//! |---|---|---|
//! | basic | 5.10 | single-shot ACCEPT/RECV/SEND, a buffer per connection, no setup flags |
//! | multishot | 5.19 | multishot accept, registered buffer rings, COOP_TASKRUN |
//! | full | 6.1 | multishot recv, SINGLE_ISSUER + DEFER_TASKRUN; bundles where present |
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures).

use std::fmt;
use std::str::FromStr;

use super::RingError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Basic,
    Multishot,
    Full,
}

/// What the user asked for with `--tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierChoice {
    #[default]
    Auto,
    Force(Tier),
}

/// What the running kernel can do, found by `register_probe`, trial setups and trial ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// (major, minor) from uname, for the log line only.
    pub kernel: (u32, u32),
    pub multishot_accept: bool,
    pub buf_ring: bool,
    pub multishot_recv: bool,
    pub coop_taskrun: bool,
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub recv_bundle: bool,
}

impl Features {
    /// The richest tier every feature of which is present.
    pub fn best_tier(&self) -> Tier {
        todo!("implemented by the ring work")
    }

    /// Resolve a `--tier` choice: `Auto` -> best; a forced tier above best is an error.
    pub fn resolve(&self, choice: TierChoice) -> Result<Tier, RingError> {
        let _ = choice;
        todo!("implemented by the ring work")
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Basic => "basic",
            Tier::Multishot => "multishot",
            Tier::Full => "full",
        })
    }
}

impl FromStr for TierChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(TierChoice::Auto),
            "basic" => Ok(TierChoice::Force(Tier::Basic)),
            "multishot" => Ok(TierChoice::Force(Tier::Multishot)),
            "full" => Ok(TierChoice::Force(Tier::Full)),
            other => Err(format!(
                "unknown tier '{other}': expected auto, basic, multishot or full"
            )),
        }
    }
}

/// Probe the running kernel. Fails with the start-up error if no ring can be made at all.
pub fn probe() -> Result<Features, RingError> {
    todo!("implemented by the ring work")
}
