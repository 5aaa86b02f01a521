//! The ring builder: tries setup flags from richest to plainest for a tier.
//!
//! Each tier has a short list of flag sets; the first one the kernel accepts wins, and only
//! EINVAL (an unknown or unsupported flag) moves on to the next. EPERM, ENOMEM and ENOSYS
//! cannot be fixed by asking for less, so they end the attempt with the start-up error.
//!
//! A ring built with DEFER_TASKRUN (tier full) posts completions only when its own thread
//! enters the kernel with GETEVENTS: `submit_and_wait(n)` with n >= 1 always does; plain
//! `submit()` does only when the kernel raised IORING_SQ_TASKRUN, which TASKRUN_FLAG
//! (set here) makes it do. Loops should therefore wait through `submit_and_wait`, and
//! must never touch the ring from another thread (SINGLE_ISSUER).

use std::fmt;
use std::io;

use io_uring::IoUring;

use super::{RingError, Tier};

#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    pub tier: Tier,
    /// Submission queue entries.
    pub entries: u32,
    /// Completion queue entries (generously sized: multishot ops post many CQEs).
    pub cq_entries: u32,
}

/// The setup flags a ring was built with (for the start-up log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetupFlags {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
    pub taskrun_flag: bool,
}

impl SetupFlags {
    const FULL: SetupFlags = SetupFlags {
        single_issuer: true,
        defer_taskrun: true,
        coop_taskrun: false,
        taskrun_flag: true,
    };
    const SINGLE_COOP: SetupFlags = SetupFlags {
        single_issuer: true,
        defer_taskrun: false,
        coop_taskrun: true,
        taskrun_flag: true,
    };
    const COOP: SetupFlags = SetupFlags {
        single_issuer: false,
        defer_taskrun: false,
        coop_taskrun: true,
        taskrun_flag: true,
    };
    const NONE: SetupFlags = SetupFlags {
        single_issuer: false,
        defer_taskrun: false,
        coop_taskrun: false,
        taskrun_flag: false,
    };

    /// Flag sets to try for a tier, richest first. COOP_TASKRUN is left out beside
    /// DEFER_TASKRUN: deferred task work never interrupts the task, so it would add nothing.
    pub fn candidates(tier: Tier) -> &'static [SetupFlags] {
        match tier {
            Tier::Full => &[Self::FULL, Self::SINGLE_COOP, Self::COOP, Self::NONE],
            Tier::Multishot => &[Self::COOP, Self::NONE],
            Tier::Basic | Tier::Epoll => &[Self::NONE],
        }
    }

    fn apply(self, b: &mut io_uring::Builder) {
        if self.single_issuer {
            b.setup_single_issuer();
        }
        if self.defer_taskrun {
            b.setup_defer_taskrun();
        }
        if self.coop_taskrun {
            b.setup_coop_taskrun();
        }
        if self.taskrun_flag {
            b.setup_taskrun_flag();
        }
    }
}

impl fmt::Display for SetupFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        if self.single_issuer {
            names.push("SINGLE_ISSUER");
        }
        if self.defer_taskrun {
            names.push("DEFER_TASKRUN");
        }
        if self.coop_taskrun {
            names.push("COOP_TASKRUN");
        }
        if self.taskrun_flag {
            names.push("TASKRUN_FLAG");
        }
        if names.is_empty() {
            f.write_str("no setup flags")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// Build one ring for the calling thread (SINGLE_ISSUER binds it to this thread).
pub fn build_ring(config: &RingConfig) -> Result<IoUring, RingError> {
    build_ring_with_flags(config).map(|(ring, _)| ring)
}

/// [`build_ring`], also telling which setup flags the kernel took.
pub fn build_ring_with_flags(config: &RingConfig) -> Result<(IoUring, SetupFlags), RingError> {
    raise_memlock_limit();
    let mut last = None;
    for &flags in SetupFlags::candidates(config.tier) {
        let mut builder = IoUring::builder();
        flags.apply(&mut builder);
        // The CQ must be at least the SQ; the kernel rejects a smaller one with EINVAL.
        builder.setup_cqsize(config.cq_entries.max(config.entries));
        match builder.build(config.entries) {
            Ok(ring) => return Ok((ring, flags)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(RingError::from_setup(e)),
        }
    }
    Err(RingError::from_setup(last.unwrap_or_else(|| {
        io::Error::other("no setup flag set to try")
    })))
}

/// Raise RLIMIT_MEMLOCK to its hard limit (rings count against it before 5.12).
pub fn raise_memlock_limit() {
    // Failure leaves the old limit; ring setup then reports ENOMEM with the fix.
    let _ = raise_to_hard(libc::RLIMIT_MEMLOCK);
}

/// Raise RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    raise_to_hard(libc::RLIMIT_NOFILE).unwrap_or(0)
}

fn raise_to_hard(resource: libc::__rlimit_resource_t) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur != lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: raised is a valid rlimit; lowering nothing, raising soft to hard.
        if unsafe { libc::setrlimit(resource, &raised) } != 0 {
            return Ok(lim.rlim_cur);
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::{opcode, types};

    fn config(tier: Tier) -> RingConfig {
        RingConfig {
            tier,
            entries: 64,
            cq_entries: 1024,
        }
    }

    /// A NOP round trip proves the ring works, whatever flags it has.
    fn nop_round_trip(ring: &mut IoUring) {
        let nop = opcode::Nop::new().build().user_data(42);
        // SAFETY: NOP references no memory.
        unsafe { ring.submission().push(&nop).unwrap() };
        ring.submit_and_wait(1).unwrap();
        let cqe = ring.completion().next().expect("a CQE");
        assert_eq!(cqe.user_data(), 42);
        assert_eq!(cqe.result(), 0);
    }

    #[test]
    fn each_tier_builds_a_working_ring_here() {
        let best = crate::ring::probe().unwrap().best_tier();
        for tier in [Tier::Basic, Tier::Multishot, Tier::Full] {
            if tier > best {
                continue;
            }
            let (mut ring, flags) = build_ring_with_flags(&config(tier)).unwrap();
            assert_eq!(flags, SetupFlags::candidates(tier)[0], "{tier}: {flags}");
            assert!(ring.params().cq_entries() >= 1024);
            assert_eq!(ring.params().sq_entries(), 64);
            assert_eq!(ring.params().is_setup_single_issuer(), tier == Tier::Full);
            nop_round_trip(&mut ring);
        }
    }

    #[test]
    fn full_tier_ring_completes_a_timeout() {
        let (mut ring, _) = build_ring_with_flags(&config(Tier::Full)).unwrap();
        let t = types::Timespec::new().nsec(1_000_000);
        let e = opcode::Timeout::new(&t).build().user_data(7);
        // SAFETY: t outlives the wait below.
        unsafe { ring.submission().push(&e).unwrap() };
        ring.submit_and_wait(1).unwrap();
        let cqe = ring.completion().next().unwrap();
        assert_eq!((cqe.user_data(), cqe.result()), (7, -libc::ETIME));
    }

    /// The claim in the module doc: with DEFER_TASKRUN + TASKRUN_FLAG, a loop that only
    /// calls `submit()` still sees completions that arrive later as task work.
    #[test]
    fn full_tier_plain_submit_flushes_deferred_work() {
        use std::os::fd::AsRawFd;
        let (mut ring, flags) = build_ring_with_flags(&config(Tier::Full)).unwrap();
        assert!(flags.defer_taskrun);
        let (a, b) = crate::ring::probe::socketpair().unwrap();
        let mut buf = [0u8; 16];
        let e = opcode::Recv::new(types::Fd(a.as_raw_fd()), buf.as_mut_ptr(), 16)
            .build()
            .user_data(9);
        // SAFETY: buf outlives the recv, which completes below before buf goes.
        unsafe { ring.submission().push(&e).unwrap() };
        ring.submit().unwrap();
        assert!(ring.completion().is_empty());
        // SAFETY: static bytes to our socket.
        unsafe { libc::write(b.as_raw_fd(), b"abc".as_ptr().cast(), 3) };
        let mut seen = None;
        for _ in 0..2000 {
            ring.submit().unwrap();
            if let Some(cqe) = ring.completion().next() {
                seen = Some(cqe.result());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(
            seen,
            Some(3),
            "deferred completion never flushed by submit()"
        );
        assert_eq!(&buf[..3], b"abc");
    }

    #[test]
    fn small_cq_is_raised_to_the_sq_size() {
        let ring = build_ring(&RingConfig {
            tier: Tier::Basic,
            entries: 128,
            cq_entries: 4,
        })
        .unwrap();
        assert!(ring.params().cq_entries() >= 128);
    }

    #[test]
    fn absurd_sizes_are_an_error_not_a_panic() {
        let Err(err) = build_ring(&RingConfig {
            tier: Tier::Basic,
            entries: u32::MAX,
            cq_entries: u32::MAX,
        }) else {
            panic!("a ring of 2^32 entries was built");
        };
        assert!(matches!(err, RingError::Other(_)), "{err}");
    }

    #[test]
    fn limits_rise_to_hard() {
        let soft = raise_nofile_limit();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is valid for getrlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(soft, lim.rlim_cur);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        raise_memlock_limit();
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) },
            0
        );
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
