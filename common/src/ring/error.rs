//! Start-up errors that name the cause and the fix in one line.
//!
//! A ring that cannot be made is an operator's problem, not a bug: the binaries print
//! this one line and exit non-zero, so each cause carries the fix that works for it.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum RingError {
    /// EPERM: seccomp (Docker's default profile) or `kernel.io_uring_disabled`.
    Forbidden(io::Error),
    /// ENOMEM: RLIMIT_MEMLOCK too small (kernels before 5.12 charge rings to it).
    MemLock(io::Error),
    /// ENOSYS: kernel without io_uring.
    Unsupported(io::Error),
    /// A forced `--tier` the kernel lacks.
    TierUnavailable {
        wanted: super::Tier,
        best: super::Tier,
    },
    Other(io::Error),
    /// The epoll backend could not be set up (epoll_create1 failed).
    Epoll(io::Error),
}

impl RingError {
    /// Classify an error from `io_uring_setup`.
    pub fn from_setup(err: io::Error) -> RingError {
        match err.raw_os_error() {
            // EACCES comes from some LSM policies; the fix is the same as for EPERM.
            Some(libc::EPERM) | Some(libc::EACCES) => RingError::Forbidden(err),
            Some(libc::ENOMEM) => RingError::MemLock(err),
            Some(libc::ENOSYS) => RingError::Unsupported(err),
            _ => RingError::Other(err),
        }
    }

    /// Why io_uring cannot be used at all, when that is so (the cases `--tier auto` answers
    /// with epoll): "EPERM: forbidden by seccomp or kernel.io_uring_disabled" and the like.
    pub fn unavailable_cause(&self) -> Option<String> {
        let errno = self.io_error().and_then(io::Error::raw_os_error);
        match (self, errno) {
            (RingError::Forbidden(_), Some(libc::EPERM)) => {
                Some("EPERM: forbidden by seccomp or kernel.io_uring_disabled".into())
            }
            (RingError::Forbidden(_), _) => {
                Some("EACCES: forbidden by a security policy (seccomp, SELinux)".into())
            }
            (RingError::Unsupported(_), Some(libc::ENOSYS)) => {
                Some("ENOSYS: this kernel has no io_uring".into())
            }
            (RingError::Unsupported(e), _) => Some(e.to_string()),
            _ => None,
        }
    }

    /// The underlying OS error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            RingError::Forbidden(e)
            | RingError::MemLock(e)
            | RingError::Unsupported(e)
            | RingError::Other(e)
            | RingError::Epoll(e) => Some(e),
            RingError::TierUnavailable { .. } => None,
        }
    }
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Forbidden(e) => write!(
                f,
                "io_uring is forbidden here ({e}): a seccomp filter (e.g. Docker's default \
                 profile) or the sysctl kernel.io_uring_disabled blocks it; run with a seccomp \
                 profile that allows io_uring_setup, io_uring_enter and io_uring_register \
                 (e.g. docker run --security-opt seccomp=unconfined) or set \
                 `sysctl kernel.io_uring_disabled=0`"
            ),
            RingError::MemLock(e) => write!(
                f,
                "cannot allocate the io_uring ring ({e}): the locked-memory limit \
                 RLIMIT_MEMLOCK is too small (kernels before 5.12 charge rings to it); raise it \
                 with `ulimit -l unlimited` or LimitMEMLOCK=infinity in the systemd unit, or \
                 use fewer or smaller rings"
            ),
            RingError::Unsupported(e) => write!(
                f,
                "this kernel has no usable io_uring ({e}): needs Linux 5.10 or later built \
                 with CONFIG_IO_URING=y; upgrade the kernel"
            ),
            RingError::TierUnavailable { wanted, best } => write!(
                f,
                "tier '{wanted}' is not available on this kernel, which offers at most \
                 '{best}'; use --tier {best} or --tier auto (multishot needs Linux 5.19, full \
                 needs 6.1)"
            ),
            RingError::Other(e) => write!(
                f,
                "cannot set up io_uring: {e}; check the kernel log (dmesg) and the ring sizes \
                 asked for"
            ),
            RingError::Epoll(e) => write!(
                f,
                "cannot set up epoll ({e}): raise the open-file limit (ulimit -n) or \
                 fs.epoll.max_user_watches"
            ),
        }
    }
}

impl std::error::Error for RingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_error().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Tier;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn setup_errors_are_classified() {
        assert!(matches!(
            RingError::from_setup(os(libc::EPERM)),
            RingError::Forbidden(_)
        ));
        assert!(matches!(
            RingError::from_setup(os(libc::ENOMEM)),
            RingError::MemLock(_)
        ));
        assert!(matches!(
            RingError::from_setup(os(libc::ENOSYS)),
            RingError::Unsupported(_)
        ));
        assert!(matches!(
            RingError::from_setup(os(libc::EINVAL)),
            RingError::Other(_)
        ));
        assert!(matches!(
            RingError::from_setup(io::Error::other("no errno")),
            RingError::Other(_)
        ));
    }

    #[test]
    fn each_line_names_cause_and_fix() {
        let cases: [(RingError, &[&str]); 5] = [
            (
                RingError::from_setup(os(libc::EPERM)),
                &[
                    "seccomp",
                    "Docker",
                    "io_uring_setup",
                    "kernel.io_uring_disabled=0",
                ],
            ),
            (
                RingError::from_setup(os(libc::ENOMEM)),
                &["RLIMIT_MEMLOCK", "ulimit -l", "LimitMEMLOCK"],
            ),
            (
                RingError::from_setup(os(libc::ENOSYS)),
                &["5.10", "CONFIG_IO_URING"],
            ),
            (
                RingError::TierUnavailable {
                    wanted: Tier::Full,
                    best: Tier::Basic,
                },
                &["'full'", "at most 'basic'", "--tier basic"],
            ),
            (
                RingError::from_setup(os(libc::EINVAL)),
                &["cannot set up io_uring", "Invalid argument"],
            ),
        ];
        for (err, needles) in cases {
            let line = err.to_string();
            assert!(!line.contains('\n'), "{line}");
            for n in needles {
                assert!(line.contains(n), "{line:?} lacks {n:?}");
            }
        }
    }

    #[test]
    fn source_is_the_os_error() {
        use std::error::Error;
        let e = RingError::from_setup(os(libc::EPERM));
        assert!(e.source().is_some());
        assert_eq!(e.io_error().unwrap().raw_os_error(), Some(libc::EPERM));
    }
}
