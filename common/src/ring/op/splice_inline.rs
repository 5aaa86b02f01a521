//! File bodies whose pages are in the page cache leave with `sendfile(2)` on the ring
//! thread itself, as nginx sends them: IORING_OP_SPLICE is always punted to an io-wq
//! worker, and that hop (a wakeup and two context switches per response) cost more than
//! the copy-free send saves at 64 KiB (BENCHMARKS.md, "Static files").
//!
//! The attempt never blocks the worker: `cachestat(2)` (Linux 6.5+) first says whether
//! every page of the range is cached, and the socket is switched to `O_NONBLOCK` before
//! the first attempt, so a full socket answers EAGAIN. A range found cached is remembered
//! for the rest of the batch of completions being dispatched (many requests of one batch
//! fetch the same hot file), never longer: the driver starts a new batch at every CQ
//! drain (the dispatch ends with one), and a `Ready` event (another thread may hand over a file
//! opened under a number just closed here) forgets too. Then:
//! - cached: the head (the unsent send buffer) with `MSG_MORE`, then `sendfile`; the
//!   result is queued as a completion made in user space (no SQE, no CQE: the driver
//!   delivers it in the same dispatch, through `complete` like a CQE, so the program hears
//!   `Spliced` or `SpliceFailed` as from the ring path); a full socket arms a POLL_ADD for
//!   POLLOUT and the attempt is made again when it fires;
//! - not cached (or no `cachestat`, or part of the head did not fit): the ring path (SPLICE
//!   file → pipe → socket through io-wq), whose SPLICE out, on a socket made non-blocking
//!   here, waits for POLLOUT through a linked POLL_ADD instead of spinning on EAGAIN.
//!
//! `set_inline_sendfile(false)` (the server's `--file-body splice-ring`) keeps every body
//! on the ring path, for measuring one against the other.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::poll::pollout;
use crate::ring::event::{Event, Payload, SlotId};
use crate::ring::slab::UringCore;
use crate::ring::slot::{InlineSend, Pending, Splicing};
use crate::ring::{Op, Token};

/// Most file bytes one inline `sendfile` moves: the ring thread's other connections wait
/// meanwhile, so a huge file goes in turns.
const INLINE_MAX: u32 = 1 << 20;
/// Most ranges remembered as cached in one batch (a linear search; the hot files).
const CACHED_NOW_MAX: usize = 8;

static INLINE: AtomicBool = AtomicBool::new(true);
/// Whether the kernel has `cachestat`: 0 not known yet, 1 yes, 2 no.
static CACHESTAT: AtomicU8 = AtomicU8::new(0);

/// Turn inline sends on (the default) or off for every core of the process.
pub fn set_inline_sendfile(on: bool) {
    INLINE.store(on, Ordering::Relaxed);
}

impl UringCore {
    /// Send `len` bytes of `file` at `offset` (after the head in the send buffer) inline if
    /// its pages are cached. `Ok(false)`: not attempted, the caller takes the ring path (the
    /// send buffer then holds what is left of the head). `Ok(true)`: a local completion or a
    /// POLL_ADD is queued and the event follows.
    pub(in crate::ring) fn splice_inline(
        &mut self,
        slot: SlotId,
        file: RawFd,
        offset: u64,
        len: u32,
        more: bool,
    ) -> io::Result<bool> {
        let len = len.min(INLINE_MAX);
        if !INLINE.load(Ordering::Relaxed) || !self.cached_in_batch(file, offset, len) {
            return Ok(false);
        }
        let s = &mut self.slots[slot as usize];
        if !s.nonblocking {
            // SAFETY: fcntl on the slot's own open socket.
            if unsafe { libc::fcntl(s.fd, libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
                return Err(io::Error::last_os_error());
            }
            s.nonblocking = true;
        }
        if !s.send_buf.is_empty() {
            let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_MORE;
            // SAFETY: sends from the slot's own buffer; no operation is in flight on it.
            let n =
                unsafe { libc::send(s.fd, s.send_buf.as_ptr().cast(), s.send_buf.len(), flags) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
                    _ => Err(e),
                };
            }
            s.send_buf.drain(..n as usize);
            if !s.send_buf.is_empty() {
                // The socket is full: the rest of the head rides the ring path's pipe.
                return Ok(false);
            }
        }
        let mut off = offset as libc::off_t;
        // SAFETY: both fds are open (the program keeps `file` open until the event).
        let n = unsafe { libc::sendfile(s.fd, file, &mut off, len as usize) };
        let done = match n {
            n if n >= 0 => Some(n as i32),
            _ => match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => None,
                Some(e) => Some(-e),
                None => Some(-libc::EIO),
            },
        };
        let gen = s.generation;
        s.splice = Splicing {
            inflight: 1,
            inline: Some(InlineSend {
                file,
                offset,
                len,
                more,
                done,
            }),
            ..Splicing::default()
        };
        match done {
            // Done: the result is delivered from user space, in the same dispatch.
            Some(_) => self
                .local
                .push_back((Token::of(slot, gen, Op::SpliceOut).0, 0)),
            None => {
                let e = pollout(s.fd).user_data(Token::of(slot, gen, Op::SpliceWait).0);
                self.pending.push_back(Pending::One(e));
            }
        }
        Ok(true)
    }

    /// Whether the range is cached: remembered from earlier in this batch, or asked of
    /// `cachestat` (and remembered when it is).
    pub(in crate::ring) fn cached_in_batch(&mut self, file: RawFd, offset: u64, len: u32) -> bool {
        let end = offset + len as u64;
        let known =
            |&(f, o, l): &(RawFd, u64, u32)| f == file && o <= offset && end <= o + l as u64;
        if self.cached_now.iter().any(known) {
            return true;
        }
        if !cached(file, offset, len) {
            return false;
        }
        if self.cached_now.len() < CACHED_NOW_MAX {
            self.cached_now.push((file, offset, len));
        }
        true
    }

    /// Forget what this batch found cached (the driver calls it between batches).
    pub(in crate::ring) fn new_batch(&mut self) {
        self.cached_now.clear();
    }

    /// The local completion or the POLLOUT wait of an inline send came (`res` its result).
    pub(in crate::ring) fn complete_inline(
        &mut self,
        slot: SlotId,
        res: i32,
    ) -> Option<Event<Payload>> {
        let s = &mut self.slots[slot as usize];
        let inl = s.splice.inline.take()?;
        let done = match inl.done {
            Some(done) => done,
            // The wait failed: the socket is gone.
            None if res < 0 => res,
            // Room in the socket: try again (the pages may have gone meanwhile).
            None => {
                return match self.splice_file(slot, inl.file, inl.offset, inl.len, inl.more) {
                    Ok(_) => None,
                    Err(e) => Some(Event::SpliceFailed {
                        slot,
                        res: -e.raw_os_error().unwrap_or(libc::EIO),
                    }),
                };
            }
        };
        Some(match done {
            n if n > 0 => Event::Spliced {
                slot,
                len: n as usize,
            },
            res => Event::SpliceFailed { slot, res },
        })
    }
}

#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// `cachestat(2)`: the same number on every architecture (a syscall added after 5.x).
const SYS_CACHESTAT: libc::c_long = 451;

/// Whether every page of `len` bytes of `file` at `offset` is in the page cache, so that
/// `sendfile` will not wait for the disk. False when the kernel cannot tell (before 6.5).
fn cached(file: RawFd, offset: u64, len: u32) -> bool {
    if len == 0 || CACHESTAT.load(Ordering::Relaxed) == 2 {
        return false;
    }
    let range = CachestatRange {
        off: offset,
        len: len as u64,
    };
    let mut cs = Cachestat::default();
    // SAFETY: cachestat reads `range` and writes `cs`, both live and of the kernel's layout.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file,
            &range as *const CachestatRange,
            &mut cs as *mut Cachestat,
            0,
        )
    };
    if rc != 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            CACHESTAT.store(2, Ordering::Relaxed);
        }
        return false;
    }
    CACHESTAT.store(1, Ordering::Relaxed);
    let page = page_size();
    let first = offset / page;
    let last = (offset + len as u64 - 1) / page;
    cs.nr_cache > last - first
}

fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Completion, CoreConfig, RecvMode};
    use io_uring::opcode;
    use std::io::Read;
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::time::Duration;

    fn core() -> UringCore {
        UringCore::new(CoreConfig {
            recv_mode: RecvMode::Own,
            own_recv_size: 4096,
            bgid: 0,
            ring_buf_size: 2048,
            connect_timeout: Duration::from_secs(1),
        })
    }

    /// The queued SQEs as (the token's op, opcode), and clear the queue.
    fn queued(c: &mut UringCore) -> Vec<(Option<Op>, u8)> {
        let mut out = Vec::new();
        for p in c.pending.drain(..) {
            let es = match p {
                Pending::One(e) => vec![e],
                Pending::Linked(a, b) => vec![a, b],
            };
            for e in es {
                let e: io_uring::squeue::Entry = e;
                let ud = e.get_user_data();
                // The opcode is the SQE's first byte.
                // SAFETY: an squeue::Entry is the kernel's 64-byte SQE.
                let op = unsafe { *(&e as *const io_uring::squeue::Entry as *const u8) };
                out.push((Token(ud).kind(), op));
            }
        }
        out
    }

    fn tcp_pair() -> (std::net::TcpStream, RawFd) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (peer, l.accept().unwrap().0.into_raw_fd())
    }

    /// The socket just accepted (with SOCK_NONBLOCK) is known non-blocking when adopted;
    /// any other fd, or a connect's socket, is not.
    #[test]
    fn only_the_socket_just_accepted_counts_as_non_blocking() {
        let mut c = core();
        let accepted = Token::of(0, 0, Op::Accept).0;
        assert!(matches!(
            c.complete(accepted, 55, 0),
            Completion::Event(Event::Accepted { fd: 55, .. })
        ));
        let a = c.open(55);
        assert!(c.slots[a as usize].nonblocking);
        c.complete(accepted, 56, 0);
        let b = c.open(57);
        assert!(!c.slots[b as usize].nonblocking, "not the accepted fd");
        let d = c.open(56);
        assert!(!c.slots[d as usize].nonblocking, "forgotten after one open");
    }

    /// A cached file goes out inline, head first, and a completion made in user space (no
    /// SQE) reports it; a full socket arms a POLLOUT wait (cancelled by a close), and the
    /// wait's completion sends on; a non-blocking socket's ring SPLICE out that finds it
    /// full waits for POLLOUT through a linked POLL_ADD instead of spinning in io-wq.
    #[test]
    fn inline_send_reports_in_user_space_and_waits_for_room() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
        let path = dir.join(format!("inline-send-{}", std::process::id()));
        let data: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let fd = file.as_raw_fd();
        let mut c = core();
        let (mut peer, ours) = tcp_pair();
        let a = c.open(ours);
        c.send_buffer(a).unwrap().extend_from_slice(b"HEAD");
        assert_eq!(c.splice_file(a, fd, 10, 1000, false).unwrap(), 1000);
        assert!(c.slots[a as usize].nonblocking);
        assert_eq!(queued(&mut c), [], "no SQE reports an inline send");
        let done = Token::of(a, 0, Op::SpliceOut).0;
        assert_eq!(c.next_local(), Some((done, 0)));
        assert_eq!(c.next_local(), None);
        let mut got = vec![0u8; 1004];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got[..4], b"HEAD");
        assert!(got[4..] == data[10..1010]);
        assert!(c.splicing(a), "the local completion is pending");
        assert_eq!(
            c.complete(done, 0, 0),
            Completion::Event(Event::Spliced { slot: a, len: 1000 })
        );
        // Nobody reads: the socket fills, then the attempt waits for room.
        let mut off = 0u64;
        let waiting = loop {
            c.splice_file(a, fd, off, 1 << 20, true).unwrap();
            let q = queued(&mut c);
            if q == [(Some(Op::SpliceWait), opcode::PollAdd::CODE)] {
                break true;
            }
            assert_eq!(q, []);
            assert_eq!(c.next_local(), Some((done, 0)));
            match c.complete(done, 0, 0) {
                Completion::Event(Event::Spliced { len, .. }) => off += len as u64,
                other => panic!("{other:?}"),
            }
            assert!(off < 8 << 20, "8 MiB went into a socket nobody reads");
        };
        assert!(waiting);
        // Room (as the poll would say): the attempt is made again, here still full.
        let pollout = libc::POLLOUT as i32;
        assert_eq!(
            c.complete(Token::of(a, 0, Op::SpliceWait).0, pollout, 0),
            Completion::Quiet
        );
        assert_eq!(
            queued(&mut c),
            [(Some(Op::SpliceWait), opcode::PollAdd::CODE)]
        );
        c.close(a);
        let q = queued(&mut c);
        assert!(
            q.contains(&(Some(Op::Cancel), opcode::AsyncCancel::CODE)),
            "{q:?}"
        );
        assert_eq!(
            c.complete(Token::of(a, 0, Op::SpliceWait).0, -libc::ECANCELED, 0),
            Completion::Stale { bid: None }
        );
        assert_eq!(c.next_released(), Some(a));

        // The ring path on a non-blocking socket: a SPLICE out that finds no room.
        let (_peer, ours) = tcp_pair();
        let b = c.open(ours);
        c.slots[b as usize].nonblocking = true;
        c.splice_file(b, 99, 0, 8192, false).unwrap();
        queued(&mut c);
        let gen = c.slots[b as usize].generation;
        c.complete(Token::of(b, gen, Op::SpliceIn).0, 8192, 0);
        assert_eq!(
            c.complete(Token::of(b, gen, Op::SpliceOut).0, -libc::EAGAIN, 0),
            Completion::Quiet
        );
        assert_eq!(
            queued(&mut c),
            [
                (Some(Op::SpliceWait), opcode::PollAdd::CODE),
                (Some(Op::SpliceOut), opcode::Splice::CODE)
            ]
        );
        c.complete(Token::of(b, gen, Op::SpliceWait).0, pollout, 0);
        assert_eq!(
            c.complete(Token::of(b, gen, Op::SpliceOut).0, 8192, 0),
            Completion::Event(Event::Spliced { slot: b, len: 8192 })
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// A close while an inline send's local completion is pending cancels nothing: the
    /// completion still comes, counts as the slot's last operation, and only then is the
    /// slot closed and released (never delivered to the program).
    #[test]
    fn a_close_waits_for_the_pending_local_completion() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
        let path = dir.join(format!("inline-close-{}", std::process::id()));
        std::fs::write(&path, vec![5u8; 4096]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut c = core();
        let (_peer, ours) = tcp_pair();
        let a = c.open(ours);
        c.splice_file(a, file.as_raw_fd(), 0, 4096, false).unwrap();
        queued(&mut c);
        c.close(a);
        let q = queued(&mut c);
        assert!(q.iter().all(|&(op, _)| op != Some(Op::Cancel)), "{q:?}");
        assert_eq!(c.next_released(), None, "the completion is still to come");
        let (ud, res) = c.next_local().expect("the pending completion");
        assert_eq!(c.complete(ud, res, 0), Completion::Stale { bid: None });
        assert_eq!(queued(&mut c), [(Some(Op::Close), opcode::Close::CODE)]);
        assert_eq!(c.next_released(), Some(a));
        std::fs::remove_file(&path).unwrap();
    }

    /// Evict the clean pages of `f` from the page cache (a real filesystem).
    fn evict(f: &std::fs::File) {
        f.sync_all().unwrap();
        // SAFETY: fadvise on our own open file.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert!(!cached(f.as_raw_fd(), 0, 4096), "evicted");
    }

    /// What `cachestat` found cached is remembered for the rest of the batch, and only
    /// then: a file evicted after the first probe still counts as cached in the same batch
    /// (no second `cachestat`), within the range found and not beyond it; a new batch, or
    /// a `Ready` event, asks the kernel again.
    #[test]
    fn a_cached_range_is_remembered_for_one_batch_only() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
        let path = dir.join(format!("cached-batch-{}", std::process::id()));
        std::fs::write(&path, vec![3u8; 256 * 1024]).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let fd = f.as_raw_fd();
        let mut c = core();
        assert!(c.cached_in_batch(fd, 0, 65536));
        evict(&f);
        assert!(c.cached_in_batch(fd, 0, 65536), "remembered in this batch");
        assert!(c.cached_in_batch(fd, 4096, 8192), "a range inside it too");
        assert!(
            !c.cached_in_batch(fd, 60000, 8192),
            "not one reaching beyond it"
        );
        c.new_batch();
        assert!(!c.cached_in_batch(fd, 0, 65536), "a new batch asks again");
        std::fs::read(&path).unwrap();
        assert!(c.cached_in_batch(fd, 0, 65536), "read back in");
        evict(&f);
        let ready = c.complete(Token::of(3, 0, Op::Poll).0, 1, 0);
        assert_eq!(ready, Completion::Event(Event::Ready { id: 3 }));
        assert!(!c.cached_in_batch(fd, 0, 65536), "a Ready event forgets");
        std::fs::remove_file(&path).unwrap();
    }

    /// A file just written is cached; after POSIX_FADV_DONTNEED (clean pages, a real
    /// filesystem) it is not; a range past the end never is.
    #[test]
    fn cachestat_tells_cached_from_cold() {
        // Under target/, on the build's filesystem (a tmpfs would not evict).
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
        let path = dir.join(format!("cachestat-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 256 * 1024]).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        assert!(cached(f.as_raw_fd(), 0, 256 * 1024), "a file just written");
        assert!(cached(f.as_raw_fd(), 4095, 2), "across a page boundary");
        assert!(!cached(f.as_raw_fd(), 256 * 1024, 10), "past the end");
        f.sync_all().unwrap();
        // SAFETY: fadvise on our own open file.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert!(!cached(f.as_raw_fd(), 0, 256 * 1024), "evicted");
        std::fs::remove_file(&path).unwrap();
    }
}
