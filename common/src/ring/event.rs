//! The vocabulary both backends share with the programs: slot ids, how a connection
//! receives, and the classified [`Event`]s a turn delivers ([`Completion`] is the io_uring
//! core's answer for one CQE, before the driver lends the bytes out).

use std::os::fd::RawFd;

use super::tier::Tier;

/// Index of a slot in the slab.
pub type SlotId = u32;

/// Timers a program may keep at once (ids `0..TIMERS`).
pub const TIMERS: usize = 8;

/// How a connection receives, by tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMode {
    /// Multishot RECV with the buffer ring (6.0+, the full tier).
    Multishot,
    /// Single-shot RECV that selects a buffer from the ring (5.19+, the multishot tier).
    Select,
    /// Single-shot RECV into the slot's own buffer (5.10, the basic tier).
    Own,
}

impl RecvMode {
    /// The receive mode for a tier; `multishot_recv` is what the kernel probe found.
    pub fn for_tier(tier: Tier, multishot_recv: bool) -> RecvMode {
        match tier {
            Tier::Full if multishot_recv => RecvMode::Multishot,
            Tier::Full | Tier::Multishot => RecvMode::Select,
            // Epoll receives into the thread's buffer; the mode is not used there.
            Tier::Basic | Tier::Epoll => RecvMode::Own,
        }
    }
}

/// Where the bytes of a receive or file read are, before the driver lends them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// `len` bytes in buffer `bid` of the buffer ring.
    Ring { bid: u16, len: usize },
    /// `len` bytes at the start of the slot's own receive buffer.
    Own { len: usize },
    /// `len` bytes in the slot's read buffer.
    File { len: usize },
}

/// A classified completion. `D` is the data: a [`Payload`] inside the core, `&[u8]` when
/// the driver hands it to the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<D> {
    /// A listener accepted `fd`; `rearm` when the accept ended (no `F_MORE`).
    Accepted {
        listener: u32,
        fd: RawFd,
        rearm: bool,
    },
    AcceptFailed {
        listener: u32,
        errno: i32,
        rearm: bool,
    },
    Connected {
        slot: SlotId,
    },
    /// Refused, unreachable, or `ETIMEDOUT` when the connect's LINK_TIMEOUT fired.
    ConnectFailed {
        slot: SlotId,
        errno: i32,
    },
    /// Bytes received; valid for the callback only.
    Data {
        slot: SlotId,
        data: D,
    },
    /// The peer closed its side.
    Eof {
        slot: SlotId,
    },
    RecvFailed {
        slot: SlotId,
        errno: i32,
    },
    /// A receive the program stopped wanting (`set_reading(slot, false)`) has ended:
    /// nothing more arrives on the slot until it reads again.
    RecvStopped {
        slot: SlotId,
    },
    /// The whole send buffer went out (`len` bytes); it is empty again.
    Sent {
        slot: SlotId,
        len: usize,
    },
    /// The send failed; `errno` 0 when the kernel sent nothing and said nothing.
    SendFailed {
        slot: SlotId,
        errno: i32,
    },
    /// A file read returned these bytes.
    FileRead {
        slot: SlotId,
        data: D,
    },
    /// A file read returned `res` <= 0 (0: end of file; negative: -errno).
    FileReadFailed {
        slot: SlotId,
        res: i32,
    },
    /// A [`Core::splice_file`](crate::ring::Core::splice_file) moved all its `len` bytes from the file to the socket.
    Spliced {
        slot: SlotId,
        len: usize,
    },
    /// A splice did not move all its bytes: `res` 0 when the file ended early (it shrank),
    /// -errno otherwise. Some bytes may have reached the socket: the stream is broken.
    SpliceFailed {
        slot: SlotId,
        res: i32,
    },
    /// Timer `id` ended (fired, or cancelled with `cancelled` set).
    Timer {
        id: u32,
        cancelled: bool,
    },
    /// The fd watched under `id` became readable.
    Ready {
        id: u32,
    },
    /// The slot's last operation completed and its fd is closed: the program lets go of
    /// the connection; the slot may be handed out again.
    Closed {
        slot: SlotId,
    },
}

impl<D> Event<D> {
    /// The slot the event is about, if it is about one.
    pub fn slot(&self) -> Option<SlotId> {
        match *self {
            Event::Connected { slot }
            | Event::ConnectFailed { slot, .. }
            | Event::Data { slot, .. }
            | Event::Eof { slot }
            | Event::RecvFailed { slot, .. }
            | Event::RecvStopped { slot }
            | Event::Sent { slot, .. }
            | Event::SendFailed { slot, .. }
            | Event::FileRead { slot, .. }
            | Event::FileReadFailed { slot, .. }
            | Event::Spliced { slot, .. }
            | Event::SpliceFailed { slot, .. }
            | Event::Closed { slot } => Some(slot),
            Event::Accepted { .. }
            | Event::AcceptFailed { .. }
            | Event::Timer { .. }
            | Event::Ready { .. } => None,
        }
    }

    /// The same event with its data converted (a payload looked up, for instance).
    pub fn map<E>(self, f: impl FnOnce(D) -> E) -> Event<E> {
        match self {
            Event::Data { slot, data } => Event::Data {
                slot,
                data: f(data),
            },
            Event::FileRead { slot, data } => Event::FileRead {
                slot,
                data: f(data),
            },
            Event::Accepted {
                listener,
                fd,
                rearm,
            } => Event::Accepted {
                listener,
                fd,
                rearm,
            },
            Event::AcceptFailed {
                listener,
                errno,
                rearm,
            } => Event::AcceptFailed {
                listener,
                errno,
                rearm,
            },
            Event::Connected { slot } => Event::Connected { slot },
            Event::ConnectFailed { slot, errno } => Event::ConnectFailed { slot, errno },
            Event::Eof { slot } => Event::Eof { slot },
            Event::RecvFailed { slot, errno } => Event::RecvFailed { slot, errno },
            Event::RecvStopped { slot } => Event::RecvStopped { slot },
            Event::Sent { slot, len } => Event::Sent { slot, len },
            Event::SendFailed { slot, errno } => Event::SendFailed { slot, errno },
            Event::FileReadFailed { slot, res } => Event::FileReadFailed { slot, res },
            Event::Spliced { slot, len } => Event::Spliced { slot, len },
            Event::SpliceFailed { slot, res } => Event::SpliceFailed { slot, res },
            Event::Timer { id, cancelled } => Event::Timer { id, cancelled },
            Event::Ready { id } => Event::Ready { id },
            Event::Closed { slot } => Event::Closed { slot },
        }
    }
}

/// What the core hands back for one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Nothing for the program (a cancel, a close, a continued send, a re-armed receive).
    Quiet,
    /// A completion of a slot that has since been reused, holding a ring buffer: the
    /// driver recycles it (cannot happen while slots wait for their last completion).
    Stale {
        bid: Option<u16>,
    },
    Event(Event<Payload>),
}
