//! The three tiers of DESIGN.md, what the user may ask for (`--tier`), and the features
//! the probe ([`probe`](super::probe::probe)) found.
//!
//! | tier | needs | uses |
//! |---|---|---|
//! | basic | 5.10 | single-shot ACCEPT/RECV/SEND, a buffer per connection, no setup flags |
//! | multishot | 5.19 | multishot accept, registered buffer rings, COOP_TASKRUN |
//! | full | 6.1 | multishot recv, SINGLE_ISSUER + DEFER_TASKRUN; bundles where present |

use std::fmt;
use std::str::FromStr;

/// How a thread talks to the kernel. The io_uring tiers are ordered by what they need;
/// `Epoll` sorts below them all: it needs nothing of io_uring, and `auto` falls back to it
/// only when no ring can be made (see [`select`](super::probe::select)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Epoll,
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

impl Tier {
    /// Whether one armed accept keeps accepting until cancelled (multishot ACCEPT, or
    /// epoll's accept-until-EAGAIN), rather than once per arm.
    pub fn multishot_accept(self) -> bool {
        self != Tier::Basic
    }
}

impl Features {
    /// The richest tier every feature of which is present.
    pub fn best_tier(&self) -> Tier {
        let multishot = self.multishot_accept && self.buf_ring && self.coop_taskrun;
        let full = multishot && self.multishot_recv && self.single_issuer && self.defer_taskrun;
        if full {
            Tier::Full
        } else if multishot {
            Tier::Multishot
        } else {
            Tier::Basic
        }
    }
}

/// One line for the start-up log: kernel, tier and the features behind it.
impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "kernel {}.{}, best tier {}: multishot accept {}, buffer rings {}, multishot recv {}, \
             COOP_TASKRUN {}, SINGLE_ISSUER {}, DEFER_TASKRUN {}, recv bundles {}",
            self.kernel.0,
            self.kernel.1,
            self.best_tier(),
            yes(self.multishot_accept),
            yes(self.buf_ring),
            yes(self.multishot_recv),
            yes(self.coop_taskrun),
            yes(self.single_issuer),
            yes(self.defer_taskrun),
            yes(self.recv_bundle),
        )
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Epoll => "epoll",
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
            "epoll" => Ok(TierChoice::Force(Tier::Epoll)),
            other => Err(format!(
                "unknown tier '{other}': expected auto, basic, multishot, full or epoll"
            )),
        }
    }
}
