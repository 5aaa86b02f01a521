//! The operations the driver submits, numbered once for both programs. The number travels
//! in the top byte of a [`Token`](super::Token), so a completion names its operation.
//!
//! Each operation of the io_uring core has one file here, as monoio's `driver/op/*.rs`:
//! the ask that builds its SQE and the interpretation of its completion, as methods of
//! [`UringCore`](super::UringCore). The core's [`complete`](super::UringCore::complete)
//! names every [`Op`] with no catch-all, so a new one does not compile until its
//! completion has a home. The epoll backend makes the same asks from readiness
//! (`epoll/`); docs/driver.md says how to add an operation.

pub(super) mod accept;
pub(super) mod cancel;
pub(super) mod close;
pub(super) mod connect;
pub(super) mod file_read;
pub(super) mod poll;
pub(super) mod recv;
pub(super) mod send;
pub(super) mod splice;
pub(super) mod splice_inline;
pub(super) mod timeout;

/// One kind of submission. `#[repr(u8)]`: the value is the token's op byte.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// ACCEPT or multishot ACCEPT on a listener (the token's slot is the listener index).
    Accept = 1,
    /// CONNECT, linked to a LINK_TIMEOUT.
    Connect = 2,
    /// The LINK_TIMEOUT that bounds a connect.
    LinkTimeout = 3,
    /// RECV: single-shot into the slot's buffer, single-shot or multishot from the ring.
    Recv = 4,
    /// SEND of the slot's send buffer (short sends are continued by the driver).
    Send = 5,
    /// READ of a file into the slot's read buffer.
    Read = 6,
    /// CLOSE of a slot's fd after its last completion, or of a loose fd.
    Close = 7,
    /// ASYNC_CANCEL of another operation; its own completion carries nothing.
    Cancel = 8,
    /// TIMEOUT with a program-chosen id (the token's slot).
    Timer = 9,
    /// POLL_ADD for readability with a program-chosen id (an eventfd, a pipe).
    Poll = 10,
    /// The driver's own timer while it waits for the last completions at shutdown.
    Wait = 11,
    /// SPLICE of file bytes into the slot's pipe, linked to the `SpliceOut` that follows.
    SpliceIn = 12,
    /// SPLICE from the slot's pipe into its socket.
    SpliceOut = 13,
    /// POLL_ADD for room in a non-blocking socket before a splice or an inline send goes
    /// on (`op/splice_inline.rs`).
    SpliceWait = 14,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::Accept,
        Op::Connect,
        Op::LinkTimeout,
        Op::Recv,
        Op::Send,
        Op::Read,
        Op::Close,
        Op::Cancel,
        Op::Timer,
        Op::Poll,
        Op::Wait,
        Op::SpliceIn,
        Op::SpliceOut,
        Op::SpliceWait,
    ];

    pub fn from_u8(v: u8) -> Option<Op> {
        Op::ALL.into_iter().find(|op| *op as u8 == v)
    }
}

#[cfg(test)]
mod tests {
    use super::Op;

    #[test]
    fn every_op_round_trips_and_numbers_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for op in Op::ALL {
            assert_eq!(Op::from_u8(op as u8), Some(op));
            assert!(seen.insert(op as u8), "{op:?} reuses a number");
        }
        assert_eq!(Op::from_u8(0), None);
        assert_eq!(Op::from_u8(200), None);
    }
}
