//! Sends through the ring's fixed-file table, for the connections that send many times.
//!
//! A SEND on a plain fd makes the kernel look the file up (`fget`, an atomic increment and
//! decrement on the socket's file) on every request; a SEND on a fixed file does not. The
//! table costs an `io_uring_register` call per connection to enter it and one to leave
//! it, so a slot joins only at its second send (a keep-alive connection; one that sends
//! once and closes never pays). Slots made by [`connect`](super::UringCore::connect) (the
//! load tool's connections, the proxy's upstreams) and by [`open`](super::UringCore::open)
//! (the server's accepted connections) join alike; the multishot receive, armed once per
//! connection, keeps the plain fd. Slot `n` uses table entry `n`; slots beyond the table
//! stay plain.
//!
//! The table is registered (sparse) when the first slot joins, so a program that never
//! connects never has one; a kernel without sparse tables (before 5.19) answers EINVAL and
//! every slot stays plain. Leaving: a slot's entry holds a reference on the socket, so it
//! is removed before the slot's CLOSE is submitted ([`FixedSends::apply`] runs before the
//! driver moves queued SQEs), or the peer would never see the connection end.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types, Submitter};

use super::SlotId;

/// Table entries at most (and never more than RLIMIT_NOFILE, which the kernel checks).
pub const FIXED_MAX: u32 = 4096;

/// Sends a slot makes on its plain fd before it joins the table.
const JOIN_AT: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Not a connected slot, or could not join: plain fd for good.
    #[default]
    Plain,
    /// A connected slot that sent this many times.
    Counting(u8),
    /// Asked to join with this fd; the entry is made at the next [`FixedSends::apply`].
    Joining(RawFd),
    Fixed,
}

/// Where a SEND finds its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTarget {
    Fd(RawFd),
    /// The table entry (the slot's id).
    Fixed(u32),
}

impl SendTarget {
    /// A SEND of `len` bytes at `buf` (no SIGPIPE), without its user data.
    #[inline]
    pub fn send(self, buf: *const u8, len: u32) -> squeue::Entry {
        match self {
            SendTarget::Fd(fd) => opcode::Send::new(types::Fd(fd), buf, len),
            SendTarget::Fixed(i) => opcode::Send::new(types::Fixed(i), buf, len),
        }
        .flags(libc::MSG_NOSIGNAL)
        .build()
    }
}

#[derive(Debug, Default)]
pub struct FixedSends {
    state: Vec<State>,
    /// Entries to set (`fd`) or clear (`-1`), in order.
    updates: Vec<(SlotId, RawFd)>,
    /// Table size once registered; `None` before, `Some(0)` when the kernel refused.
    cap: Option<u32>,
}

impl FixedSends {
    fn state(&mut self, slot: SlotId) -> &mut State {
        let i = slot as usize;
        if self.state.len() <= i {
            self.state.resize(i + 1, State::Plain);
        }
        &mut self.state[i]
    }

    /// A slot was opened; `eligible`: its sends may move to the table.
    pub fn opened(&mut self, slot: SlotId, eligible: bool) {
        let may_join = eligible && slot < FIXED_MAX && self.cap != Some(0);
        *self.state(slot) = if may_join {
            State::Counting(0)
        } else {
            State::Plain
        };
    }

    /// The target of the slot's next SEND (counting it toward joining).
    #[inline]
    pub fn send_target(&mut self, slot: SlotId, fd: RawFd) -> SendTarget {
        match self.state.get_mut(slot as usize) {
            Some(State::Fixed) => return SendTarget::Fixed(slot),
            Some(st @ State::Counting(_)) => {
                let State::Counting(n) = *st else {
                    unreachable!()
                };
                if n + 1 >= JOIN_AT {
                    *st = State::Joining(fd);
                    self.updates.push((slot, fd));
                } else {
                    *st = State::Counting(n + 1);
                }
            }
            _ => {}
        }
        SendTarget::Fd(fd)
    }

    /// The slot's last operation ended and its CLOSE is queued: leave the table first.
    pub fn released(&mut self, slot: SlotId) {
        if let Some(st) = self.state.get_mut(slot as usize) {
            if matches!(*st, State::Joining(_) | State::Fixed) {
                self.updates.push((slot, -1));
            }
            *st = State::Plain;
        }
    }

    /// Whether the slot's sends use its table entry.
    pub fn is_fixed(&self, slot: SlotId) -> bool {
        self.state.get(slot as usize) == Some(&State::Fixed)
    }

    /// Make the queued entries (registering the table on first use). Runs before queued
    /// SQEs go to the ring, so a slot's entry is cleared before its CLOSE is submitted.
    pub fn apply(&mut self, submitter: &Submitter<'_>) {
        if self.updates.is_empty() {
            return;
        }
        let cap = *self.cap.get_or_insert_with(|| {
            let cap = FIXED_MAX.min(super::raise_nofile_limit().min(u32::MAX as u64) as u32);
            match submitter.register_files_sparse(cap) {
                Ok(()) => cap,
                Err(_) => 0,
            }
        });
        for (slot, fd) in std::mem::take(&mut self.updates) {
            let joining = self.state.get(slot as usize) == Some(&State::Joining(fd));
            if fd >= 0 && !joining {
                // Released before it joined (the slot may even be open again, on another
                // fd): its clearing update follows; nothing to make.
                continue;
            }
            let made = slot < cap && submitter.register_files_update(slot, &[fd]).is_ok();
            if fd >= 0 {
                self.state[slot as usize] = if made { State::Fixed } else { State::Plain };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_slot_joins_at_its_second_send_and_leaves_on_release() {
        let mut f = FixedSends::default();
        f.opened(3, true);
        assert_eq!(f.send_target(3, 9), SendTarget::Fd(9));
        assert!(f.updates.is_empty());
        assert_eq!(f.send_target(3, 9), SendTarget::Fd(9));
        assert_eq!(f.updates, [(3, 9)]);
        assert!(!f.is_fixed(3));
        f.released(3);
        assert_eq!(f.updates, [(3, 9), (3, -1)], "leaving follows joining");
    }

    #[test]
    fn ineligible_and_out_of_table_slots_stay_plain() {
        let mut f = FixedSends::default();
        f.opened(1, false);
        f.opened(FIXED_MAX, true);
        for _ in 0..5 {
            f.send_target(1, 4);
            f.send_target(FIXED_MAX, 5);
        }
        assert!(f.updates.is_empty());
        f.released(1);
        assert!(f.updates.is_empty(), "nothing to clear");
    }
}

#[cfg(test)]
mod driver_tests {
    //! On a real ring: a connected or accepted slot's sends move to the table, the bytes
    //! arrive in order, and closing the slot really closes the socket (the peer reads end
    //! of file), which it would not if the table kept its entry.
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::IntoRawFd;
    use std::time::{Duration, Instant};

    use crate::ring::{
        probe, Core, DriverConfig, Event, RecvMode, RingConfig, SlotId, Tier, UringDriver,
    };

    fn fixed(core: &mut Core, slot: SlotId) -> bool {
        match core {
            Core::Uring(c) => c.fixed.is_fixed(slot),
            Core::Epoll(_) => unreachable!(),
        }
    }

    fn driver() -> UringDriver {
        assert!(
            probe().unwrap().kernel >= (5, 19),
            "sparse tables need 5.19"
        );
        UringDriver::new(&DriverConfig {
            ring: RingConfig {
                tier: Tier::Full,
                entries: 64,
                cq_entries: 256,
            },
            recv_mode: RecvMode::Multishot,
            own_recv_size: 0,
            ring_buf_count: 4,
            ring_buf_size: 64,
            connect_timeout: Duration::from_secs(2),
        })
        .unwrap()
    }

    /// Turn the ring once (a 5 ms timer bounds the wait).
    fn turn(d: &mut UringDriver, f: &mut impl FnMut(Event<&[u8]>)) {
        d.core().timer(0, Duration::from_millis(5));
        d.turn(&mut |_, ev| f(ev)).unwrap();
    }

    /// Four sends from `slot`, which join the table after the second; the peer reads them
    /// in order; then closing the slot leaves the table and the peer reads end of file.
    fn four_sends_then_close(
        d: &mut UringDriver,
        slot: SlotId,
        peer: &mut TcpStream,
        end: Instant,
    ) {
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (mut sent, mut was_fixed) = (0, Vec::new());
        while sent < 4 && Instant::now() < end {
            if !d.core().sending(slot) {
                was_fixed.push(fixed(d.core(), slot));
                let buf = d.core().send_buffer(slot).unwrap();
                buf.extend_from_slice(format!("m{sent};").as_bytes());
                d.core().send(slot);
            }
            turn(d, &mut |ev| match ev {
                Event::Sent { .. } => sent += 1,
                Event::Timer { .. } => {}
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(was_fixed, [false, false, true, true], "joins after 2 sends");
        let mut got = [0u8; 12];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"m0;m1;m2;m3;");
        d.core().close(slot);
        let mut closed = false;
        while !closed && Instant::now() < end {
            turn(d, &mut |ev| closed |= matches!(ev, Event::Closed { .. }));
        }
        assert!(closed && !fixed(d.core(), slot));
        let mut rest = Vec::new();
        let n = peer
            .read_to_end(&mut rest)
            .expect("end of file, not a timeout");
        assert_eq!(n, 0);
    }

    #[test]
    fn sends_use_the_table_from_the_second_and_close_ends_the_connection() {
        let mut d = driver();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (storage, len) = crate::ring::epoll::tests::sockaddr(listener.local_addr().unwrap());
        let peer = d.core().add_peer(&storage, len);
        let slot = d.core().connect(peer).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        let mut connected = false;
        // The kernel completes the handshake before the accept below.
        while !connected && Instant::now() < end {
            turn(&mut d, &mut |ev| match ev {
                Event::Connected { .. } => connected = true,
                Event::Timer { .. } => {}
                other => panic!("unexpected {other:?}"),
            });
        }
        assert!(connected);
        let (mut server, _) = listener.accept().unwrap();
        four_sends_then_close(&mut d, slot, &mut server, end);
    }

    /// The server's side: an accepted socket handed to `open` joins the table the same
    /// way, and its close still ends the connection.
    #[test]
    fn an_accepted_slot_joins_too_and_close_ends_the_connection() {
        let mut d = driver();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let slot = d.core().open(accepted.into_raw_fd());
        let end = Instant::now() + Duration::from_secs(10);
        four_sends_then_close(&mut d, slot, &mut client, end);
    }
}
