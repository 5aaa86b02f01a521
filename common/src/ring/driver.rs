//! One thread's driver, whichever backend runs underneath: the io_uring one
//! ([`super::UringDriver`]) or the epoll one ([`super::EpollDriver`]), chosen once by the
//! tier. Programs hold a [`Driver`] and talk to the [`Core`] it lends to their callback.

use std::io;
use std::time::Duration;

use super::backend::{Core, DriverConfig};
use super::epoll::EpollDriver;
use super::event::Event;
use super::uring::UringDriver;
use super::{RingError, Tier};

/// One thread's driver: an io_uring ring, or an epoll instance.
// One per thread, made once and never moved on the hot path: boxing a variant would only
// add an indirection to every turn.
#[allow(clippy::large_enum_variant)]
pub enum Driver {
    Uring(UringDriver),
    Epoll(EpollDriver),
}

impl Driver {
    /// The epoll backend when `cfg.ring.tier` is [`Tier::Epoll`], the ring otherwise.
    pub fn new(cfg: &DriverConfig) -> Result<Driver, RingError> {
        Ok(match cfg.ring.tier {
            Tier::Epoll => Driver::Epoll(EpollDriver::new(cfg)?),
            _ => Driver::Uring(UringDriver::new(cfg)?),
        })
    }

    pub fn core(&mut self) -> &mut Core {
        match self {
            Driver::Uring(d) => d.core(),
            Driver::Epoll(d) => d.core(),
        }
    }

    /// Do what was asked, wait for at least one event (or a timer), deliver every event.
    /// An error means the backend is unusable; the program stops its loop.
    pub fn turn(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) -> io::Result<()> {
        match self {
            Driver::Uring(d) => d.turn(f),
            Driver::Epoll(d) => d.turn(f),
        }
    }

    /// Close every slot and wait (at most `give_up`) for their last completions.
    pub fn shutdown(&mut self, give_up: Duration, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        match self {
            Driver::Uring(d) => d.shutdown(give_up, f),
            Driver::Epoll(d) => d.shutdown(give_up, f),
        }
    }

    /// Slots the program may still hold (open, closing, or `Closed` not yet delivered).
    pub fn live(&self) -> usize {
        match self {
            Driver::Uring(d) => d.live(),
            Driver::Epoll(d) => d.live(),
        }
    }
}
