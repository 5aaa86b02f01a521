//! Zero-downtime upgrade (SIGUSR2), as nginx does it: start the binary found at our own
//! path (the new version, if it was replaced) with our arguments, hand it every listening
//! socket (fd numbers in `URING_SERVER_LISTEN_FDS`, close-on-exec cleared for it), and wait
//! for it to say it is ready on a pipe (`URING_SERVER_READY_FD`). Only then does the old
//! server drain and exit; if the successor fails, the old one keeps serving.
//!
//! The sockets are the same kernel objects in both processes, so connections waiting in
//! a backlog are accepted by whichever process accepts next: none is refused or lost.
//! The old workers answer what they have with `Connection: close` (see `DRAIN_GRACE` in
//! `conn.rs`), and clients reconnect to the same sockets, now served by the successor.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::inherit::UPGRADE_FDS_VAR;

/// The pipe a successor writes `READY\n` to.
pub const READY_FD_VAR: &str = "URING_SERVER_READY_FD";

/// The program to start and its arguments, taken at start-up (before anything could
/// replace the file, `/proc/self/exe` would still name the old one).
#[derive(Debug, Clone)]
pub struct Program {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
}

impl Program {
    pub fn current() -> io::Result<Program> {
        let mut argv = std::env::args_os();
        let argv0 = PathBuf::from(argv.next().unwrap_or_default());
        // Resolve a relative path now: the working directory may change, the file may be
        // replaced (then /proc/self/exe names the deleted old one).
        let exe = if argv0.components().count() > 1 {
            std::fs::canonicalize(&argv0).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot resolve {}: {e}", argv0.display()))
            })?
        } else {
            let exe = std::env::current_exe()?;
            let s = exe
                .to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string();
            PathBuf::from(s)
        };
        Ok(Program {
            exe,
            args: argv.collect(),
        })
    }
}

/// A started successor, not yet ready.
pub struct Successor {
    child: Child,
    ready: OwnedFd,
    /// The binary it runs, for the messages.
    exe: PathBuf,
}

/// Start the successor with `fds` (our listening sockets) inherited.
pub fn spawn(program: &Program, fds: &[RawFd]) -> io::Result<Successor> {
    if fds.is_empty() {
        return Err(io::Error::other(
            "no listening sockets to hand over (already draining)",
        ));
    }
    let mut pipe = [0; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds we own.
    let (ready, write) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    let list: Vec<String> = fds.iter().map(|fd| fd.to_string()).collect();
    let mut keep: Vec<RawFd> = fds.to_vec();
    keep.push(write.as_raw_fd());
    let mut cmd = Command::new(&program.exe);
    cmd.args(&program.args)
        .env(UPGRADE_FDS_VAR, list.join(","))
        .env(READY_FD_VAR, write.as_raw_fd().to_string())
        // The watchdog belongs to whichever process is the main one; the successor
        // becomes it (MAINPID=), so it must not think the variable names another.
        .env_remove("WATCHDOG_PID");
    // SAFETY: only fcntl between fork and exec (async-signal-safe), on fds that stay
    // open in the parent for the duration of the spawn.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // The path is what the operator must fix (a binary removed, not yet copied, or not
    // executable), so the error names it.
    let child = cmd.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot start the new binary {}: {e}; install it at that path (the path this server was started from) and send SIGUSR2 again",
                program.exe.display()
            ),
        )
    })?;
    drop(write);
    Ok(Successor {
        child,
        ready,
        exe: program.exe.clone(),
    })
}

impl Successor {
    /// Wait for `READY`; the successor's pid, or why it did not get ready (it exited, it
    /// timed out: then it is killed, and the old server keeps serving). `meanwhile` runs
    /// at least every 500 ms (the watchdog must not starve while we wait).
    pub fn wait_ready(
        mut self,
        timeout: Duration,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<u32, String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut file = std::fs::File::from(self.ready);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(500) as i32) };
            meanwhile();
            if n == 0 && left.is_zero() {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!(
                    "the new server ({}) was not ready within {timeout:?}; stopped it",
                    self.exe.display()
                ));
            }
            if n <= 0 {
                continue;
            }
            let mut buf = [0u8; 16];
            match file.read(&mut buf) {
                Ok(0) => {
                    let status = self.child.wait().map_err(|e| e.to_string())?;
                    return Err(format!(
                        "the new server ({}) exited before it was ready ({status}); see its message above",
                        self.exe.display()
                    ));
                }
                Ok(k) => {
                    got.extend_from_slice(&buf[..k]);
                    if got.starts_with(b"READY\n") {
                        return Ok(self.child.id());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the new server's readiness: {e}")),
            }
        }
    }
}

/// In a successor: the pipe to report readiness on (read once, at start, and removed
/// from the environment).
pub fn take_ready_fd() -> Option<OwnedFd> {
    let fd: RawFd = std::env::var(READY_FD_VAR).ok()?.parse().ok()?;
    std::env::remove_var(READY_FD_VAR);
    // SAFETY: F_GETFD only checks the fd is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the predecessor handed this fd to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fd is open.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(fd)
}

/// Tell the predecessor we listen (it drains and exits after reading this).
pub fn report_ready(fd: OwnedFd) -> io::Result<()> {
    use std::io::Write;
    std::fs::File::from(fd).write_all(b"READY\n")
}
