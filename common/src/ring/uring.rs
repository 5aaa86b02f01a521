//! The ring driver: one io_uring, its buffer ring and a [`Core`], for one thread. Both
//! programs run on it: the server's worker adds accept, back-off and drain, the load tool's
//! engine adds dispatch and timers; neither touches the ring itself.
//!
//! One turn of a loop is [`UringDriver::turn`]: settle the slots (arm receives), move queued
//! SQEs into the submission queue, enter the kernel once, then hand every completion to
//! the program's callback as a classified [`Event`], with received bytes lent for the call.
//! The callback gets `&mut Core` to ask for more operations.
//!
//! Submission policy, in one place: SQEs wait in the core's queue; a full submission queue
//! is submitted to make room; when that fails with EBUSY (the completion queue overflowed
//! into the kernel's backlog) the rest waits for the next turn, after reaping. Errors of
//! `io_uring_enter` are classified once ([`EnterError`]).

use std::io;
use std::time::{Duration, Instant};

use io_uring::{types, IoUring};

use super::backend::{Core, DriverConfig};
use super::event::{Event, Payload, RecvMode};
use super::slab::{CoreConfig, UringCore};
use super::slot::Pending;
use super::{build_ring, BufRing, RingError};

/// What an `io_uring_enter` error means for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnterError {
    /// Interrupted, or the completion queue must be reaped first (EBUSY): reap and go on.
    Retry,
    /// Anything else: the ring is unusable; stop the loop.
    Fatal,
}

impl EnterError {
    pub fn classify(errno: Option<i32>) -> EnterError {
        match errno {
            Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY) => EnterError::Retry,
            _ => EnterError::Fatal,
        }
    }
}

const BGID: u16 = 0;
/// Rounds of one dispatch that deliver completions made in user space.
const LOCAL_ROUNDS: usize = 4;

/// The io_uring core inside the backend-neutral [`Core`]: this driver only ever holds one.
#[inline(always)]
fn uc(core: &mut Core) -> &mut UringCore {
    match core {
        Core::Uring(c) => c,
        Core::Epoll(_) => unreachable!("an io_uring driver holds an io_uring core"),
    }
}

pub struct UringDriver {
    ring: IoUring,
    core: Core,
    bufs: Option<BufRing>,
    cqes: Vec<(u64, i32, u32)>,
    wait_ts: Box<types::Timespec>,
}

impl UringDriver {
    pub fn new(cfg: &DriverConfig) -> Result<UringDriver, RingError> {
        let ring = build_ring(&cfg.ring)?;
        let bufs = match cfg.recv_mode {
            RecvMode::Own => None,
            _ => Some(BufRing::register(
                &ring,
                BGID,
                cfg.ring_buf_count,
                cfg.ring_buf_size,
            )?),
        };
        let core = Core::Uring(UringCore::new(CoreConfig {
            recv_mode: cfg.recv_mode,
            own_recv_size: cfg.own_recv_size,
            bgid: BGID,
            ring_buf_size: cfg.ring_buf_size,
            connect_timeout: cfg.connect_timeout,
        }));
        Ok(UringDriver {
            ring,
            core,
            bufs,
            cqes: Vec::with_capacity(4096),
            wait_ts: Box::new(types::Timespec::new()),
        })
    }

    pub fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    /// Submit what is queued and wait for at least one completion, then deliver every
    /// completion. A fatal ring error is returned; the program stops its loop.
    pub fn turn(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) -> io::Result<()> {
        // A completion made in user space is already there: do not wait for the kernel's.
        let want = !uc(&mut self.core).has_local() as usize;
        self.submit_and_wait(want)?;
        self.dispatch(f);
        Ok(())
    }

    /// Deliver the completions already in the queue and those made in user space (no
    /// syscall unless the queue must be synced); returns how many there were.
    pub fn dispatch(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) -> usize {
        let mut total = 0;
        let mut batch = std::mem::take(&mut self.cqes);
        for round in 0.. {
            batch.clear();
            // What `cachestat` found cached is trusted within one batch only (this also
            // ends the last one: the loop comes here once more before it stops).
            uc(&mut self.core).new_batch();
            {
                let mut cq = self.ring.completion();
                cq.sync();
                batch.extend((&mut cq).map(|c| (c.user_data(), c.result(), c.flags())));
            }
            // Then the completions made in user space since the last batch (an inline
            // send's result), through the same path as the kernel's. A few rounds only:
            // a connection whose pipelined requests each answer inline would otherwise
            // chain them all here, ahead of the others; the rest waits for the next turn,
            // which does not block for it.
            if round < LOCAL_ROUNDS {
                while let Some((ud, res)) = uc(&mut self.core).next_local() {
                    batch.push((ud, res, 0));
                }
            }
            if batch.is_empty() {
                break;
            }
            total += batch.len();
            for &(ud, res, flags) in &batch {
                self.deliver(ud, res, flags, f);
            }
        }
        self.deliver_released(f);
        self.cqes = batch;
        total
    }

    fn deliver(
        &mut self,
        ud: u64,
        res: i32,
        flags: u32,
        f: &mut impl FnMut(&mut Core, Event<&[u8]>),
    ) {
        use super::event::Completion;
        let ev = match uc(&mut self.core).complete(ud, res, flags) {
            Completion::Quiet => return,
            Completion::Stale { bid } => {
                if let (Some(bufs), Some(bid)) = (self.bufs.as_mut(), bid) {
                    bufs.recycle(bid);
                }
                return;
            }
            Completion::Event(ev) => ev,
        };
        match ev {
            Event::Data {
                slot,
                data: Payload::Ring { bid, len },
            } => {
                let bufs = self
                    .bufs
                    .as_mut()
                    .expect("ring payload without a buffer ring");
                f(
                    &mut self.core,
                    Event::Data {
                        slot,
                        data: bufs.get(bid, len),
                    },
                );
                bufs.recycle(bid);
            }
            Event::Data {
                slot,
                data: Payload::Own { len },
            } => {
                let buf = uc(&mut self.core).take_recv_buf(slot);
                f(
                    &mut self.core,
                    Event::Data {
                        slot,
                        data: &buf[..len.min(buf.len())],
                    },
                );
                uc(&mut self.core).restore_recv_buf(slot, buf);
            }
            Event::FileRead {
                slot,
                data: Payload::File { len },
            } => {
                let buf = uc(&mut self.core).take_read_buf(slot, len);
                f(&mut self.core, Event::FileRead { slot, data: &buf });
                uc(&mut self.core).restore_read_buf(slot, buf);
            }
            other => f(&mut self.core, other.map(|_| &[][..])),
        }
        self.deliver_released(f);
    }

    fn deliver_released(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        while let Some(slot) = uc(&mut self.core).next_released() {
            f(&mut self.core, Event::Closed { slot });
        }
    }

    /// Settle the slots and move queued SQEs into the submission queue, submitting when it
    /// is full. Stops early (leaving the rest queued) if the kernel wants a reap first.
    pub fn flush(&mut self) -> io::Result<()> {
        uc(&mut self.core).settle();
        uc(&mut self.core).fixed.apply(&self.ring.submitter());
        loop {
            {
                let pending = uc(&mut self.core).pending();
                let mut sq = self.ring.submission();
                while let Some(p) = pending.front() {
                    let room = sq.capacity() - sq.len();
                    let need = match p {
                        Pending::One(_) => 1,
                        Pending::Linked(..) => 2,
                    };
                    if room < need {
                        break;
                    }
                    // SAFETY: every pointer in these entries (buffers, timespecs, addresses)
                    // belongs to a slot or to the core and stays valid until the entry's last
                    // completion; the Core's operations state why for each one. A linked
                    // pair goes in whole (room checked), so its link is never split.
                    unsafe {
                        match pending.pop_front().expect("front exists") {
                            Pending::One(e) => sq.push(&e).expect("room checked"),
                            Pending::Linked(a, b) => {
                                sq.push(&a).expect("room checked");
                                sq.push(&b).expect("room checked");
                            }
                        }
                    }
                }
            }
            if uc(&mut self.core).pending().is_empty() {
                return Ok(());
            }
            if let Err(e) = self.ring.submit() {
                return match EnterError::classify(e.raw_os_error()) {
                    EnterError::Retry => Ok(()),
                    EnterError::Fatal => Err(e),
                };
            }
        }
    }

    /// Flush, then enter the kernel once waiting for `want` completions.
    pub fn submit_and_wait(&mut self, want: usize) -> io::Result<()> {
        self.flush()?;
        match self.ring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(e) => match EnterError::classify(e.raw_os_error()) {
                EnterError::Retry => Ok(()),
                EnterError::Fatal => Err(e),
            },
        }
    }

    /// Close every slot and wait (at most `give_up`) for every operation to complete, so no
    /// buffer is freed under the kernel. Events still arrive at `f` (`Closed` among them).
    pub fn shutdown(&mut self, give_up: Duration, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        let end = Instant::now() + give_up;
        while uc(&mut self.core).close_all() > 0 && Instant::now() < end {
            *self.wait_ts = types::Timespec::from(Duration::from_millis(10));
            uc(&mut self.core).wait_timer(&self.wait_ts);
            if self.submit_and_wait(1).is_err() {
                break;
            }
            self.dispatch(f);
        }
        let _ = self.flush();
        let _ = self.ring.submit();
        self.dispatch(f);
    }

    /// Slots the program may still hold (open, closing, or `Closed` not yet delivered).
    pub fn live(&self) -> usize {
        self.core.live()
    }
}

impl Drop for UringDriver {
    fn drop(&mut self) {
        if uc(&mut self.core).in_flight() > 0 {
            // The kernel may still write into slot buffers or ring buffers: leak them
            // rather than free them under its feet.
            uc(&mut self.core).leak_buffers();
            std::mem::forget(self.bufs.take());
        } else if let Some(b) = self.bufs.take() {
            let _ = b.unregister(&self.ring);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The driver on a real ring (the host's kernel), one test per receive mode: bytes
    //! arrive complete and in order through the buffer ring running dry (ENOBUFS), short
    //! sends are continued, and a close waits for the last completion.
    use super::*;
    use crate::ring::{probe, RingConfig, SlotId, Tier};
    use std::os::fd::{AsRawFd, IntoRawFd};

    fn driver(mode: RecvMode, tier: Tier) -> UringDriver {
        UringDriver::new(&DriverConfig {
            ring: RingConfig {
                tier,
                entries: 64,
                cq_entries: 256,
            },
            recv_mode: mode,
            own_recv_size: 100,
            // 4 buffers of 64 bytes: 4000 bytes drain the ring many times over.
            ring_buf_count: 4,
            ring_buf_size: 64,
            connect_timeout: Duration::from_secs(1),
        })
        .expect("a ring")
    }

    fn round_trip(mode: RecvMode, tier: Tier) {
        let mut d = driver(mode, tier);
        let (a, b) = crate::ring::probe::socketpair().unwrap();
        let sent: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 251) as u8).collect();
        // SAFETY: writing from a live Vec to a socket we own.
        let n = unsafe { libc::write(b.as_raw_fd(), sent.as_ptr().cast(), sent.len()) };
        assert_eq!(n, sent.len() as isize);
        let slot = d.core().open(a.into_raw_fd());
        d.core().set_reading(slot, true);
        // And the other way: a send larger than the socket buffer takes several sends.
        let big = vec![9u8; 1 << 20];
        d.core().send_buffer(slot).unwrap().extend_from_slice(&big);
        d.core().send(slot);
        let mut got = Vec::new();
        let mut sent_len = None;
        let mut back = 0usize;
        let mut chunk = vec![0u8; 65536];
        let end = Instant::now() + Duration::from_secs(10);
        while (got.len() < sent.len() || sent_len.is_none()) && Instant::now() < end {
            // Drain the peer so the big send can go on.
            // SAFETY: reading into a live buffer from our socket, non-blocking.
            let r = unsafe {
                libc::recv(
                    b.as_raw_fd(),
                    chunk.as_mut_ptr().cast(),
                    chunk.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                back += r as usize;
            }
            d.core().timer(0, Duration::from_millis(5));
            d.turn(&mut |_, ev| match ev {
                Event::Data { data, .. } => got.extend_from_slice(data),
                Event::Sent { len, .. } => sent_len = Some(len),
                Event::Timer { .. } => {}
                other => panic!("unexpected {other:?}"),
            })
            .unwrap();
        }
        assert_eq!(got.len(), sent.len(), "{mode:?}");
        assert!(got == sent, "{mode:?}: bytes reordered or corrupted");
        assert_eq!(
            sent_len,
            Some(big.len()),
            "{mode:?}: one Sent for the whole buffer"
        );
        // Close: the receive is cancelled, then CLOSE, then Closed, exactly once.
        d.core().close(slot);
        let mut closed = 0;
        let end = Instant::now() + Duration::from_secs(5);
        while closed == 0 && Instant::now() < end {
            // SAFETY: as above.
            unsafe {
                libc::recv(
                    b.as_raw_fd(),
                    chunk.as_mut_ptr().cast(),
                    chunk.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            d.core().timer(0, Duration::from_millis(5));
            d.turn(&mut |_, ev| match ev {
                Event::Closed { slot: s } => {
                    assert_eq!(s, slot);
                    closed += 1
                }
                Event::Timer { .. } => {}
                other => panic!("after close: {other:?}"),
            })
            .unwrap();
        }
        assert_eq!(closed, 1, "{mode:?}");
        assert_eq!(d.live(), 0);
        assert!(back > 0, "the peer read what was sent");
    }

    /// A basic-tier driver with an accepted loopback connection open in a slot, the peer
    /// that reads what it sends, and a file of `data` under target/ (removed by the test).
    fn inline_setup(
        name: &str,
        data: &[u8],
    ) -> (
        UringDriver,
        std::net::TcpStream,
        SlotId,
        std::fs::File,
        std::path::PathBuf,
    ) {
        let mut d = driver(RecvMode::Own, Tier::Basic);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let ours = l.accept().unwrap().0.into_raw_fd();
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
        let path = dir.join(format!("{name}-{}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let slot = d.core().open(ours);
        (d, peer, slot, file, path)
    }

    /// An inline send's result is delivered in the turn that made it, with no SQE: the
    /// turn does not wait for the kernel (a 5 s timer is the only operation in flight;
    /// had the turn waited for a completion, the timer's would come with the result).
    #[test]
    fn an_inline_send_is_reported_in_the_same_turn_without_waiting() {
        use std::io::Read;
        let data: Vec<u8> = (0..8192u32).map(|i| (i % 253) as u8).collect();
        let (mut d, mut peer, slot, file, path) = inline_setup("driver-inline", &data);
        d.core()
            .send_buffer(slot)
            .unwrap()
            .extend_from_slice(b"HEAD");
        let n = d.core().splice_file(slot, file.as_raw_fd(), 0, 8192, false);
        assert_eq!(n.unwrap(), 8192);
        assert!(uc(d.core()).pending().is_empty(), "no SQE for the result");
        d.core().timer(0, Duration::from_secs(5));
        let mut events = Vec::new();
        d.turn(&mut |_, ev| events.push(format!("{ev:?}"))).unwrap();
        let spliced = format!("{:?}", Event::<&[u8]>::Spliced { slot, len: 8192 });
        assert_eq!(events, [spliced]);
        let mut got = vec![0u8; 4 + 8192];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got[..4], b"HEAD");
        assert!(got[4..] == data[..]);
        std::fs::remove_file(&path).unwrap();
    }

    /// A connection whose every response is answered inline (pipelined requests) gets
    /// LOCAL_ROUNDS of them per turn, not all at once; the next turn goes on without
    /// waiting (a 5 s timer would show up if it waited).
    #[test]
    fn inline_sends_chained_by_one_connection_yield_to_the_next_turn() {
        use std::io::Read;
        let (mut d, mut peer, slot, file, path) = inline_setup("driver-chain", &[7u8; 1000]);
        let fd = file.as_raw_fd();
        d.core().splice_file(slot, fd, 0, 1000, false).unwrap();
        d.core().timer(0, Duration::from_secs(5));
        let mut per_turn = Vec::new();
        let mut sent = 0;
        while sent < 20 {
            let mut n = 0;
            d.turn(&mut |core, ev| match ev {
                Event::Spliced { len: 1000, .. } => {
                    n += 1;
                    if sent + n < 20 {
                        core.splice_file(slot, fd, 0, 1000, false).unwrap();
                    }
                }
                other => panic!("{other:?}"),
            })
            .unwrap();
            sent += n;
            per_turn.push(n);
        }
        assert_eq!(per_turn, [LOCAL_ROUNDS; 5]);
        let mut got = vec![0u8; 20 * 1000];
        peer.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&b| b == 7));
        std::fs::remove_file(&path).unwrap();
    }

    /// A dispatch ends the batch: what `cachestat` found cached before it is asked again
    /// after it (the file is evicted in between).
    #[test]
    fn a_dispatch_forgets_what_was_found_cached() {
        let mut d = driver(RecvMode::Own, Tier::Basic);
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
        let path = dir.join(format!("driver-batch-{}", std::process::id()));
        std::fs::write(&path, vec![1u8; 65536]).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let fd = f.as_raw_fd();
        assert!(uc(d.core()).cached_in_batch(fd, 0, 65536));
        f.sync_all().unwrap();
        // SAFETY: fadvise on our own open file.
        unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert!(uc(d.core()).cached_in_batch(fd, 0, 65536), "the same batch");
        d.dispatch(&mut |_, ev| panic!("nothing was asked: {ev:?}"));
        assert!(!uc(d.core()).cached_in_batch(fd, 0, 65536), "asked again");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn own_buffers_on_the_basic_tier() {
        round_trip(RecvMode::Own, Tier::Basic);
    }

    #[test]
    fn single_shot_select_on_the_multishot_tier() {
        let f = probe().unwrap();
        assert!(f.buf_ring, "this host's kernel has buffer rings (6.x)");
        round_trip(RecvMode::Select, Tier::Multishot);
    }

    #[test]
    fn multishot_through_enobufs_on_the_full_tier() {
        let f = probe().unwrap();
        assert!(
            f.multishot_recv,
            "this host's kernel has multishot recv (6.x)"
        );
        round_trip(RecvMode::Multishot, Tier::Full);
    }
}
