//! floor: the fastest thing that can answer an HTTP/1.1 benchmark on io_uring, used as
//! the baseline that uring-server's CPU per request is held against.
//!
//! It does not parse HTTP: per receive it counts `\r\n\r\n` and sends that many canned
//! `Hello, World!` responses in one send. One ring per worker thread, each pinned, each
//! with its own SO_REUSEPORT listener. On kernels with them (6.0+) it uses multishot
//! accept and multishot recv over a provided-buffer ring; otherwise single-shot accept and
//! recv into a buffer per connection, which 5.10 has.
//!
//! Connection slots are indexed by fd. That is safe only because a socket is closed after
//! its receive has ended and no send is in flight, so no completion can name a reused fd.

use clap::Parser;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::os::fd::IntoRawFd;
use uring_benches::peer::{self, PeerArgs, RequestEndCounter, HELLO_RESPONSE};

const BUF_SIZE: usize = 4096;
const BUF_COUNT: u16 = 1024;
const BUF_GROUP: u16 = 0;
const RING_ENTRIES: u32 = 1024;

const OP_ACCEPT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;

#[derive(Debug, Parser)]
#[command(about = "Raw io_uring responder that counts request ends (the benchmark floor)")]
struct Args {
    #[command(flatten)]
    peer: PeerArgs,
    /// Kernel features to use: multishot (6.0+), basic (5.10), or auto by kernel version.
    #[arg(long, default_value = "auto")]
    tier: String,
}

fn main() {
    let args = Args::parse();
    let multishot = match args.tier.as_str() {
        "multishot" => true,
        "basic" => false,
        "auto" => kernel_at_least(6, 0),
        other => peer::die(
            "--tier",
            format!("{other:?} is not auto, basic or multishot"),
        ),
    };
    let cpus = args.peer.worker_cpus();
    // Bind every listener before starting workers so that a busy port fails at once.
    let listeners: Vec<_> = cpus
        .iter()
        .map(|_| {
            peer::reuseport_listener(args.peer.listen)
                .unwrap_or_else(|e| peer::die(&format!("listen on {}", args.peer.listen), e))
        })
        .collect();
    eprintln!(
        "floor: {} worker(s) on {}, tier {}",
        cpus.len(),
        args.peer.listen,
        if multishot { "multishot" } else { "basic" }
    );
    let handles: Vec<_> = cpus
        .into_iter()
        .zip(listeners)
        .map(|(cpu, listener)| {
            std::thread::spawn(move || {
                peer::pin_current_thread(cpu);
                let fd = listener.into_raw_fd();
                if let Err(e) = Worker::new(fd, multishot).and_then(|mut w| w.run()) {
                    peer::die("worker", e);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[derive(Default)]
struct Conn {
    requests: RequestEndCounter,
    /// Responses being sent; untouched while a send is in flight (the kernel reads it).
    out: Vec<u8>,
    sent: usize,
    sending: bool,
    /// Responses owed that arrived while a send was in flight.
    owed: usize,
    recv_ended: bool,
    /// Receive buffer of the basic tier (the multishot tier uses the buffer ring).
    buf: Vec<u8>,
}

/// A provided-buffer ring: the kernel picks a buffer per receive and we hand it back.
struct BufRing {
    entries: *mut types::BufRingEntry,
    bufs: Vec<u8>,
    tail: u16,
}

impl BufRing {
    fn register(ring: &IoUring) -> std::io::Result<BufRing> {
        let bytes = BUF_COUNT as usize * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: an anonymous private mapping; page-aligned as the kernel requires.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut br = BufRing {
            entries: mem.cast(),
            bufs: vec![0; BUF_COUNT as usize * BUF_SIZE],
            tail: 0,
        };
        // SAFETY: the mapping lives for the life of the worker (never unmapped).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(mem as u64, BUF_COUNT, BUF_GROUP, 0)?
        };
        for bid in 0..BUF_COUNT {
            br.give_back(bid);
        }
        Ok(br)
    }

    fn buf(&self, bid: u16) -> &[u8] {
        &self.bufs[bid as usize * BUF_SIZE..][..BUF_SIZE]
    }

    fn give_back(&mut self, bid: u16) {
        let idx = (self.tail & (BUF_COUNT - 1)) as usize;
        let addr = self.bufs.as_ptr() as u64 + (bid as usize * BUF_SIZE) as u64;
        // SAFETY: idx < BUF_COUNT entries of the mapping; the tail store is a release so
        // the kernel sees the entry before it sees the new tail.
        unsafe {
            let e = &mut *self.entries.add(idx);
            e.set_addr(addr);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid);
            self.tail = self.tail.wrapping_add(1);
            let tail =
                types::BufRingEntry::tail(self.entries) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }
}

struct Worker {
    ring: IoUring,
    listener: i32,
    bufs: Option<BufRing>,
    conns: Vec<Option<Conn>>,
}

fn token(op: u64, fd: i32) -> u64 {
    (op << 32) | fd as u32 as u64
}

impl Worker {
    fn new(listener: i32, multishot: bool) -> std::io::Result<Worker> {
        let ring = build_ring()?;
        let bufs = if multishot {
            Some(BufRing::register(&ring)?)
        } else {
            None
        };
        Ok(Worker {
            ring,
            listener,
            bufs,
            conns: Vec::new(),
        })
    }

    fn push(&mut self, sqe: squeue::Entry) -> std::io::Result<()> {
        loop {
            // SAFETY: every buffer an SQE points at lives in `self` until its completion.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn arm_accept(&mut self) -> std::io::Result<()> {
        let fd = types::Fd(self.listener);
        let sqe = if self.bufs.is_some() {
            opcode::AcceptMulti::new(fd).build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut()).build()
        };
        self.push(sqe.user_data(token(OP_ACCEPT, self.listener)))
    }

    fn arm_recv(&mut self, fd: i32) -> std::io::Result<()> {
        let sqe = if self.bufs.is_some() {
            opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP).build()
        } else {
            let c = self.conns[fd as usize].as_mut().expect("live conn");
            opcode::Recv::new(types::Fd(fd), c.buf.as_mut_ptr(), c.buf.len() as u32).build()
        };
        self.push(sqe.user_data(token(OP_RECV, fd)))
    }

    fn arm_send(&mut self, fd: i32) -> std::io::Result<()> {
        let c = self.conns[fd as usize].as_mut().expect("live conn");
        let rest = &c.out[c.sent..];
        let sqe = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        c.sending = true;
        self.push(sqe.user_data(token(OP_SEND, fd)))
    }

    fn run(&mut self) -> std::io::Result<()> {
        self.arm_accept()?;
        let mut done = Vec::with_capacity(RING_ENTRIES as usize * 2);
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            done.clear();
            done.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(ud, res, flags) in &done {
                let fd = (ud & 0xffff_ffff) as u32 as i32;
                match ud >> 32 {
                    OP_ACCEPT => self.on_accept(res, flags)?,
                    OP_RECV => self.on_recv(fd, res, flags)?,
                    OP_SEND => self.on_send(fd, res)?,
                    _ => unreachable!("unknown token {ud:#x}"),
                }
            }
        }
    }

    fn on_accept(&mut self, res: i32, flags: u32) -> std::io::Result<()> {
        if self.bufs.is_none() || !cqueue::more(flags) {
            self.arm_accept()?;
        }
        if res < 0 {
            // EMFILE and friends: the baseline just tries again on the next accept.
            return Ok(());
        }
        let fd = res;
        set_nodelay(fd);
        if self.conns.len() <= fd as usize {
            self.conns.resize_with(fd as usize + 1, || None);
        }
        self.conns[fd as usize] = Some(Conn {
            buf: if self.bufs.is_none() {
                vec![0; BUF_SIZE]
            } else {
                Vec::new()
            },
            ..Conn::default()
        });
        self.arm_recv(fd)
    }

    fn on_recv(&mut self, fd: i32, res: i32, flags: u32) -> std::io::Result<()> {
        let multishot = self.bufs.is_some();
        if res > 0 {
            let n = res as usize;
            let ends = if let Some(br) = self.bufs.as_mut() {
                let bid = cqueue::buffer_select(flags).expect("recv with a selected buffer");
                let c = self.conns[fd as usize].as_mut().expect("live conn");
                let ends = c.requests.feed(&br.buf(bid)[..n]);
                br.give_back(bid);
                ends
            } else {
                let c = self.conns[fd as usize].as_mut().expect("live conn");
                let Conn { requests, buf, .. } = c;
                requests.feed(&buf[..n])
            };
            self.respond(fd, ends)?;
            if !multishot || !cqueue::more(flags) {
                self.arm_recv(fd)?;
            }
            return Ok(());
        }
        if multishot && res == -libc::ENOBUFS {
            // Every buffer was in use; they are back by now, so receive again.
            return self.arm_recv(fd);
        }
        if multishot && cqueue::more(flags) {
            return Ok(());
        }
        let c = self.conns[fd as usize].as_mut().expect("live conn");
        c.recv_ended = true;
        if !c.sending {
            self.close(fd);
        }
        Ok(())
    }

    fn respond(&mut self, fd: i32, ends: usize) -> std::io::Result<()> {
        if ends == 0 {
            return Ok(());
        }
        let c = self.conns[fd as usize].as_mut().expect("live conn");
        if c.sending {
            c.owed += ends;
            return Ok(());
        }
        c.out.clear();
        c.sent = 0;
        for _ in 0..ends {
            c.out.extend_from_slice(HELLO_RESPONSE);
        }
        self.arm_send(fd)
    }

    fn on_send(&mut self, fd: i32, res: i32) -> std::io::Result<()> {
        let c = self.conns[fd as usize].as_mut().expect("live conn");
        c.sending = false;
        if res < 0 {
            // The peer is gone; stop sending and let the receive side end the connection.
            c.owed = 0;
            c.out.clear();
            c.sent = 0;
        } else {
            c.sent += res as usize;
            if c.sent < c.out.len() {
                return self.arm_send(fd);
            }
            // Owed responses go out even after the peer half-closed: it still reads.
            let owed = std::mem::take(&mut c.owed);
            if owed > 0 {
                return self.respond(fd, owed);
            }
        }
        if c.recv_ended {
            self.close(fd);
        }
        Ok(())
    }

    fn close(&mut self, fd: i32) {
        self.conns[fd as usize] = None;
        // SAFETY: no operation on fd is in flight (see the module comment).
        unsafe { libc::close(fd) };
    }
}

/// The richest ring setup the kernel accepts: DEFER_TASKRUN (6.1), COOP_TASKRUN (5.19),
/// or none (5.10).
fn build_ring() -> std::io::Result<IoUring> {
    let cq = RING_ENTRIES * 4;
    IoUring::builder()
        .setup_cqsize(cq)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(RING_ENTRIES)
        .or_else(|_| {
            IoUring::builder()
                .setup_cqsize(cq)
                .setup_coop_taskrun()
                .build(RING_ENTRIES)
        })
        .or_else(|_| IoUring::builder().setup_cqsize(cq).build(RING_ENTRIES))
}

fn set_nodelay(fd: i32) {
    let one: libc::c_int = 1;
    // SAFETY: fd is an open socket; the option value is a c_int that outlives the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}
