//! CONNECT linked to a LINK_TIMEOUT: a new socket to a remembered peer, bounded by the
//! connect timeout. The slot counts both halves in flight and waits for both.

use std::io;

use io_uring::{opcode, squeue, types};

use crate::ring::event::{Completion, Event, SlotId};
use crate::ring::slab::UringCore;
use crate::ring::slot::{current, Life, Peer, Pending};
use crate::ring::sys;
use crate::ring::{Op, Token};

impl UringCore {
    /// Remember a peer for [`Core::connect`](crate::ring::Core::connect); returns its id.
    pub fn add_peer(&mut self, addr: &libc::sockaddr_storage, len: libc::socklen_t) -> usize {
        let domain = addr.ss_family as libc::c_int;
        self.peers.push(Peer {
            addr: Box::new(*addr),
            len,
            domain,
        });
        self.peers.len() - 1
    }

    /// A new socket connecting to `peer`, bounded by the connect timeout. Fails (EMFILE,
    /// ENFILE...) only when no socket could be made; connect errors come as events.
    pub fn connect(&mut self, peer: usize) -> io::Result<SlotId> {
        let p = &self.peers[peer];
        let domain = p.domain;
        let fd = sys::stream_socket(domain, libc::SOCK_CLOEXEC)?;
        let id = self.open(fd);
        self.slots[id as usize].nonblocking = false;
        self.fixed.opened(id, true);
        let s = &mut self.slots[id as usize];
        let p = &self.peers[peer];
        s.connecting = 2;
        // SAFETY: the address is boxed in `peers`, which lives as long as the core and is
        // never shrunk; the timespec is boxed in the core and never changed after `new`.
        let connect = opcode::Connect::new(
            types::Fd(fd),
            (&*p.addr as *const libc::sockaddr_storage).cast(),
            p.len,
        )
        .build()
        .flags(squeue::Flags::IO_LINK)
        .user_data(Token::of(id, s.generation, Op::Connect).0);
        let timeout = opcode::LinkTimeout::new(&*self.connect_ts)
            .build()
            .user_data(Token::of(id, s.generation, Op::LinkTimeout).0);
        self.pending.push_back(Pending::Linked(connect, timeout));
        Ok(id)
    }

    /// A CONNECT or the LINK_TIMEOUT that bounds it completed: the slot waits for both.
    pub(in crate::ring) fn complete_connect(
        &mut self,
        token: Token,
        op: Op,
        res: i32,
        bid: Option<u16>,
    ) -> Completion {
        let slot = token.slot();
        let Some(s) = current(&mut self.slots, token) else {
            return Completion::Stale { bid };
        };
        s.connecting = s.connecting.saturating_sub(1);
        if s.life == Life::Closing {
            return self.closing_completion(slot, true, bid);
        }
        if op == Op::LinkTimeout {
            // The CONNECT's own completion tells what happened.
            return Completion::Quiet;
        }
        Completion::Event(match res {
            0 => Event::Connected { slot },
            // ECANCELED: the linked timeout fired first.
            r if r == -libc::ECANCELED => Event::ConnectFailed {
                slot,
                errno: libc::ETIMEDOUT,
            },
            r => Event::ConnectFailed { slot, errno: -r },
        })
    }
}
