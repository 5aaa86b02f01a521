//! The plain system calls both backends make outside the ring: sockets for a connect,
//! pipes for splicing, and `send`/`recv` without libc's cancellation-point wrappers.

use std::io;
use std::os::fd::RawFd;

/// A stream socket of `domain` for a connect, with `flags` (SOCK_CLOEXEC, SOCK_NONBLOCK)
/// and, for TCP, TCP_NODELAY: requests must leave at once, not wait for Nagle.
pub(super) fn stream_socket(domain: libc::c_int, flags: libc::c_int) -> io::Result<RawFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    if domain != libc::AF_UNIX {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on our new socket with a valid int option value.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    Ok(fd)
}

/// `send(2)` without libc's wrapper: glibc's `send` and `recv` are cancellation points and
/// switch asynchronous cancellation on and off around the call in every multi-threaded
/// program (~60 instructions per request here, in a program that never cancels a thread).
/// `syscall(2)` is the plain call, with the same -1/errno convention.
///
/// # Safety
/// `fd` is an open socket; the kernel reads `buf` during the call only.
pub(super) unsafe fn sys_send(fd: RawFd, buf: &[u8], flags: libc::c_int) -> isize {
    let null = std::ptr::null::<libc::sockaddr>();
    // SAFETY: as the caller promises; sendto with no address.
    unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            flags,
            null,
            0,
        ) as isize
    }
}

/// `recv(2)` the same way (see [`sys_send`]).
///
/// # Safety
/// `fd` is an open socket; the kernel writes at most `buf.len()` bytes into `buf`.
pub(super) unsafe fn sys_recv(fd: RawFd, buf: &mut [u8]) -> isize {
    let null = std::ptr::null_mut::<libc::sockaddr>();
    // SAFETY: as the caller promises; recvfrom without asking for the address.
    unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            buf.as_mut_ptr(),
            buf.len(),
            0,
            null,
            null,
        ) as isize
    }
}

pub(super) fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Pipe size asked for with F_SETPIPE_SZ (the kernel may give less; 64 KiB by default).
const PIPE_SIZE: i32 = 256 * 1024;
/// A pipe for splicing, enlarged when the kernel allows: (read end, write end, capacity).
pub(super) fn new_pipe() -> io::Result<(RawFd, RawFd, u32)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl on our own pipe; failure (a lower pipe-max-size) keeps the default.
    let cap = unsafe {
        libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE);
        libc::fcntl(fds[1], libc::F_GETPIPE_SZ)
    };
    Ok((fds[0], fds[1], cap.max(4096) as u32))
}

/// Close both ends of a splice pipe taken from its slot (so closed once). An operation
/// still in flight on it holds its own reference to the pipe: closing the descriptors
/// cannot pull it from under the kernel.
pub(super) fn close_pipe((r, w, _): (RawFd, RawFd, u32)) {
    // SAFETY: the caller owns both descriptors and gives them up here.
    unsafe {
        libc::close(r);
        libc::close(w);
    }
}

/// Half-close a socket (`shutdown(SHUT_WR)`), for a lingering close.
pub(super) fn shutdown_write(fd: RawFd) {
    // SAFETY: a plain syscall on a descriptor; a stale one only earns EBADF.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}
