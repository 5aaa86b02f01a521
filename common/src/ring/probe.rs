//! Kernel feature probe and the choice of a tier at start-up.
//!
//! `register_probe` answers per opcode, and multishot accept/recv reuse the ACCEPT and
//! RECV opcodes, so a 5.10 kernel says "supported" to both. Everything beyond the opcode
//! list is therefore found by trial: setup flags by building scratch rings, buffer rings by
//! registering one, multishot accept and recv by running them on scratch sockets and
//! requiring a completion that carries `IORING_CQE_F_MORE`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::{cqueue, opcode, types, IoUring, Probe};

use super::bufring::BufRing;
use super::tier::{Features, Tier, TierChoice};
use super::RingError;

// Here rather than beside `Features`: the error it returns names tiers, so `tier` stays
// below `error`.
impl Features {
    /// Resolve a `--tier` choice: `Auto` -> best; a forced tier above best is an error.
    pub fn resolve(&self, choice: TierChoice) -> Result<Tier, RingError> {
        let best = self.best_tier();
        match choice {
            TierChoice::Auto => Ok(best),
            TierChoice::Force(wanted) if wanted <= best => Ok(wanted),
            TierChoice::Force(wanted) => Err(RingError::TierUnavailable { wanted, best }),
        }
    }
}

/// What start-up chose: the tier, what the kernel offers (nothing probed on epoll), and,
/// when `auto` fell back to epoll, the one line that says why.
#[derive(Debug, Clone)]
pub struct Selection {
    pub tier: Tier,
    pub features: Option<Features>,
    pub fallback: Option<String>,
}

/// Choose the tier for `choice`. `--tier epoll` never touches io_uring; `auto` probes and
/// falls back to epoll when io_uring cannot be used at all (io_uring_setup fails with EPERM,
/// EACCES or ENOSYS, or the kernel lacks the basic opcodes); a forced io_uring tier keeps
/// the error, which names the fix.
pub fn select(choice: TierChoice) -> Result<Selection, RingError> {
    select_with(choice, probe)
}

fn select_with(
    choice: TierChoice,
    probe: impl FnOnce() -> Result<Features, RingError>,
) -> Result<Selection, RingError> {
    if choice == TierChoice::Force(Tier::Epoll) {
        return Ok(Selection {
            tier: Tier::Epoll,
            features: None,
            fallback: None,
        });
    }
    match probe() {
        Ok(features) => Ok(Selection {
            tier: features.resolve(choice)?,
            features: Some(features),
            fallback: None,
        }),
        Err(e) if choice == TierChoice::Auto => match e.unavailable_cause() {
            Some(cause) => Ok(Selection {
                tier: Tier::Epoll,
                features: None,
                fallback: Some(format!("io_uring unavailable ({cause}); using epoll")),
            }),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Opcodes the basic tier cannot do without (all present since 5.6).
const BASIC_OPCODES: &[(u8, &str)] = &[
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Timeout::CODE, "TIMEOUT"),
    (opcode::LinkTimeout::CODE, "LINK_TIMEOUT"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Connect::CODE, "CONNECT"),
];

/// Buffer group used by the trials; scratch rings are private, so any id would do.
const TRIAL_BGID: u16 = 0x7a7a;

/// Probe the running kernel. Fails with the start-up error if no ring can be made at all.
pub fn probe() -> Result<Features, RingError> {
    super::builder::raise_memlock_limit();
    let mut features = Features {
        kernel: kernel_version(),
        ..Features::default()
    };

    let mut scratch = IoUring::new(8).map_err(RingError::from_setup)?;
    let mut ops = Probe::new();
    scratch
        .submitter()
        .register_probe(&mut ops)
        .map_err(|e| RingError::Unsupported(annotate(e, "IORING_REGISTER_PROBE failed")))?;
    let missing: Vec<&str> = BASIC_OPCODES
        .iter()
        .filter(|(code, _)| !ops.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(RingError::Unsupported(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("io_uring lacks opcodes {}", missing.join(", ")),
        )));
    }

    features.coop_taskrun = trial_setup(|b| {
        b.setup_coop_taskrun();
    });
    features.single_issuer = trial_setup(|b| {
        b.setup_single_issuer();
    });
    features.defer_taskrun = trial_setup(|b| {
        b.setup_single_issuer().setup_defer_taskrun();
    });
    features.recv_bundle = scratch.params().is_feature_recvsend_bundle();

    // A failed trial only means "no": the basic tier never depends on these.
    features.multishot_accept = trial_multishot_accept(&mut scratch).unwrap_or(false);
    match BufRing::register(&scratch, TRIAL_BGID, 4, 64) {
        Ok(bufs) => {
            features.buf_ring = true;
            features.multishot_recv = trial_multishot_recv(&mut scratch, &bufs).unwrap_or(false);
            // Dropping unregisters; an error here would only leak a page.
            let _ = bufs.unregister(&scratch);
        }
        Err(_) => features.buf_ring = false,
    }
    Ok(features)
}

/// (major, minor) from `uname(2)`; (0, 0) if the release string is unusual.
pub fn kernel_version() -> (u32, u32) {
    // SAFETY: utsname is plain old data; uname fills it and NUL-terminates the fields.
    let release = unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return (0, 0);
        }
        std::ffi::CStr::from_ptr(uts.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    parse_release(&release)
}

fn parse_release(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Whether a ring builds with the flags `set` adds. Kernels answer unknown flags with EINVAL.
fn trial_setup(set: impl FnOnce(&mut io_uring::Builder)) -> bool {
    let mut builder = IoUring::builder();
    set(&mut builder);
    builder.build(8).is_ok()
}

/// Wait for one CQE of a trial. Trials are arranged so the CQE comes at once (the data or
/// the connection is already there, or the kernel rejects the SQE at prep); the bounded
/// wait only guards against a kernel that neither completes nor rejects.
fn trial_cqe(ring: &mut IoUring, entry: io_uring::squeue::Entry) -> io::Result<Option<(i32, u32)>> {
    // SAFETY: the trial SQEs own no buffers of ours except the registered buffer ring,
    // which outlives the wait (the caller holds it until after we return and cancel).
    unsafe {
        ring.submission()
            .push(&entry)
            .map_err(|_| io::Error::other("scratch submission queue full"))?;
    }
    ring.submit()?;
    for _ in 0..200 {
        if let Some(cqe) = ring.completion().next() {
            return Ok(Some((cqe.result(), cqe.flags())));
        }
        // A plain ring on 5.10 cannot take a timeout argument, so poll in short sleeps.
        std::thread::sleep(std::time::Duration::from_millis(1));
        ring.submitter().submit_and_wait(0)?;
    }
    Ok(None)
}

/// Cancel whatever a trial left armed and reap every CQE, so the scratch ring is clean.
fn trial_cleanup(ring: &mut IoUring, user_data: u64) {
    let cancel = opcode::AsyncCancel::new(user_data)
        .build()
        .user_data(u64::MAX);
    // SAFETY: the cancel SQE references no memory.
    unsafe {
        if ring.submission().push(&cancel).is_err() {
            return;
        }
    }
    let _ = ring.submit_and_wait(1);
    for _ in 0..50 {
        let mut saw_cancel = false;
        for cqe in ring.completion() {
            if cqe.user_data() == u64::MAX {
                saw_cancel = true;
            }
        }
        if saw_cancel {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        let _ = ring.submitter().submit_and_wait(0);
    }
    // A multishot op posts its final CQE after the cancel's; let it land.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let _ = ring.submitter().submit_and_wait(0);
    ring.completion().for_each(drop);
}

fn trial_multishot_accept(ring: &mut IoUring) -> io::Result<bool> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // The connection is queued before the SQE, so a capable kernel completes at once.
    let _client = TcpStream::connect(listener.local_addr()?)?;
    let entry = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(1);
    let got = trial_cqe(ring, entry)?;
    trial_cleanup(ring, 1);
    Ok(match got {
        Some((res, flags)) if res >= 0 => {
            // SAFETY: a non-negative result of ACCEPT is a new fd that we now own.
            drop(unsafe { OwnedFd::from_raw_fd(res) });
            cqueue::more(flags)
        }
        _ => false,
    })
}

fn trial_multishot_recv(ring: &mut IoUring, bufs: &BufRing) -> io::Result<bool> {
    let (a, b) = socketpair()?;
    // SAFETY: writing 5 bytes from a static buffer to a socket we own.
    // SAFETY: writing 5 bytes from a static buffer to a socket we own.
    let wrote = unsafe { libc::write(b.as_raw_fd(), b"probe".as_ptr().cast(), 5) };
    if wrote != 5 {
        return Err(io::Error::last_os_error());
    }
    let entry = opcode::RecvMulti::new(types::Fd(a.as_raw_fd()), bufs.bgid())
        .build()
        .user_data(2);
    let got = trial_cqe(ring, entry)?;
    trial_cleanup(ring, 2);
    // A kernel that ignores the multishot bit still receives, but without F_MORE.
    Ok(matches!(got, Some((5, flags)) if cqueue::more(flags)))
}

/// A connected AF_UNIX stream pair (close-on-exec).
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Features {
        Features {
            kernel: (6, 18),
            multishot_accept: true,
            buf_ring: true,
            multishot_recv: true,
            coop_taskrun: true,
            single_issuer: true,
            defer_taskrun: true,
            recv_bundle: true,
        }
    }

    #[test]
    fn release_strings_parse() {
        assert_eq!(parse_release("6.18.0-1-amd64"), (6, 18));
        assert_eq!(parse_release("5.10.223"), (5, 10));
        assert_eq!(parse_release("weird"), (0, 0));
    }

    #[test]
    fn best_tier_follows_features() {
        assert_eq!(all().best_tier(), Tier::Full);
        let no_recv = Features {
            multishot_recv: false,
            ..all()
        };
        assert_eq!(no_recv.best_tier(), Tier::Multishot);
        let no_defer = Features {
            defer_taskrun: false,
            ..all()
        };
        assert_eq!(no_defer.best_tier(), Tier::Multishot);
        // What a 5.10 kernel looks like once the trials have spoken.
        let old = Features {
            kernel: (5, 10),
            ..Features::default()
        };
        assert_eq!(old.best_tier(), Tier::Basic);
        let no_bufring = Features {
            buf_ring: false,
            ..all()
        };
        assert_eq!(no_bufring.best_tier(), Tier::Basic);
    }

    #[test]
    fn resolve_allows_lower_and_refuses_higher() {
        let mid = Features {
            multishot_recv: false,
            ..all()
        };
        assert_eq!(mid.resolve(TierChoice::Auto).unwrap(), Tier::Multishot);
        assert_eq!(
            mid.resolve(TierChoice::Force(Tier::Basic)).unwrap(),
            Tier::Basic
        );
        assert_eq!(
            mid.resolve(TierChoice::Force(Tier::Multishot)).unwrap(),
            Tier::Multishot
        );
        match mid.resolve(TierChoice::Force(Tier::Full)) {
            Err(RingError::TierUnavailable { wanted, best }) => {
                assert_eq!((wanted, best), (Tier::Full, Tier::Multishot));
            }
            other => panic!("expected TierUnavailable, got {other:?}"),
        }
    }

    #[test]
    fn auto_falls_back_to_epoll_only_when_io_uring_is_unusable() {
        let os = |code| Err(RingError::from_setup(io::Error::from_raw_os_error(code)));
        for (code, name) in [
            (libc::EPERM, "EPERM"),
            (libc::EACCES, "EACCES"),
            (libc::ENOSYS, "ENOSYS"),
        ] {
            let s = select_with(TierChoice::Auto, || os(code)).unwrap();
            assert_eq!(s.tier, Tier::Epoll);
            let line = s.fallback.unwrap();
            assert!(line.starts_with("io_uring unavailable ("), "{line}");
            assert!(
                line.contains(name) && line.ends_with("; using epoll"),
                "{line}"
            );
        }
        let eperm = select_with(TierChoice::Auto, || os(libc::EPERM)).unwrap();
        assert_eq!(
            eperm.fallback.unwrap(),
            "io_uring unavailable (EPERM: forbidden by seccomp or kernel.io_uring_disabled); \
             using epoll"
        );
        // A small memlock limit has a fix that keeps io_uring: no fallback.
        assert!(matches!(
            select_with(TierChoice::Auto, || os(libc::ENOMEM)),
            Err(RingError::MemLock(_))
        ));
        // A forced io_uring tier keeps the error that names the fix.
        assert!(matches!(
            select_with(TierChoice::Force(Tier::Basic), || os(libc::EPERM)),
            Err(RingError::Forbidden(_))
        ));
        // Forced epoll never probes; auto on a good kernel keeps io_uring.
        let forced = select_with(TierChoice::Force(Tier::Epoll), || panic!("probed")).unwrap();
        assert_eq!((forced.tier, forced.fallback), (Tier::Epoll, None));
        let good = select_with(TierChoice::Auto, || Ok(all())).unwrap();
        assert_eq!((good.tier, good.fallback), (Tier::Full, None));
    }

    #[test]
    fn tier_choice_parses() {
        assert_eq!(
            "epoll".parse::<TierChoice>().unwrap(),
            TierChoice::Force(Tier::Epoll)
        );
        assert_eq!("auto".parse::<TierChoice>().unwrap(), TierChoice::Auto);
        assert_eq!(
            "full".parse::<TierChoice>().unwrap(),
            TierChoice::Force(Tier::Full)
        );
        assert!("fast".parse::<TierChoice>().is_err());
    }

    /// This machine runs 6.18: every trial must say yes. On an older kernel this test
    /// states what it expected to see.
    #[test]
    fn probe_finds_full_tier_on_this_kernel() {
        let f = probe().expect("probe");
        assert!(f.kernel >= (5, 10), "{f}");
        if f.kernel >= (6, 1) {
            assert!(f.multishot_accept, "{f}");
            assert!(f.buf_ring, "{f}");
            assert!(f.multishot_recv, "{f}");
            assert!(f.coop_taskrun && f.single_issuer && f.defer_taskrun, "{f}");
            assert_eq!(f.best_tier(), Tier::Full, "{f}");
        }
        if f.kernel >= (6, 10) {
            assert!(f.recv_bundle, "{f}");
        }
    }

    #[test]
    fn probe_twice_is_stable() {
        assert_eq!(probe().unwrap(), probe().unwrap());
    }
}
