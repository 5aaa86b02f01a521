//! Start-up errors that name the cause and the fix in one line.
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures).

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
}

impl RingError {
    /// Classify an error from `io_uring_setup`.
    pub fn from_setup(err: io::Error) -> RingError {
        let _ = err;
        todo!("implemented by the ring work")
    }
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!("implemented by the ring work: one line, cause and fix")
    }
}

impl std::error::Error for RingError {}
