//! A registered buffer ring (IORING_REGISTER_PBUF_RING, 5.19+): the kernel picks a buffer
//! per completion; we hand it back with `recycle` once its bytes are consumed.
//!
//! # The ENOBUFS path
//!
//! A multishot recv takes one buffer per completion. When the ring is empty the kernel ends
//! the multishot with `-ENOBUFS` (no `IORING_CQE_F_MORE`); the bytes stay queued in the
//! socket, nothing is lost. The core (`op/recv.rs`) classifies that completion and arms the
//! recv again once buffers are back; `uring.rs` has the test that runs it on a real ring.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::{cqueue, IoUring};

use super::RingError;

/// Provided buffers registered with one ring under one group id.
///
/// Dropping it without [`BufRing::unregister`] unregisters through a duplicate of the
/// ring's fd (the kernel must stop writing before the memory goes); if even that fails,
/// the memory is leaked rather than freed under the kernel's feet.
pub struct BufRing {
    /// `count` entries, page aligned (mmap), shared with the kernel; entry 0's reserved
    /// field doubles as the tail.
    entries: NonNull<BufRingEntry>,
    entries_len: usize,
    /// `count * size` bytes of buffers, also mmap'd.
    buffers: NonNull<u8>,
    buffers_len: usize,
    count: u16,
    size: u32,
    bgid: u16,
    /// Our copy of the tail; the kernel only reads it.
    tail: u16,
    /// Keeps the ring alive and addressable for the unregister in `Drop`.
    ring_fd: Option<OwnedFd>,
}

impl BufRing {
    /// Register `count` (a power of two) buffers of `size` bytes under group `bgid`.
    pub fn register(
        ring: &IoUring,
        bgid: u16,
        count: u16,
        size: u32,
    ) -> Result<BufRing, RingError> {
        if !count.is_power_of_two() || count > 32768 || size == 0 {
            return Err(RingError::Other(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("buffer ring needs a power-of-two count <= 32768 and a size > 0, got {count} x {size}"),
            )));
        }
        let entries_len = count as usize * std::mem::size_of::<BufRingEntry>();
        let buffers_len = count as usize * size as usize;
        let entries = map_anon(entries_len).map_err(RingError::from_setup)?;
        let buffers = match map_anon(buffers_len) {
            Ok(b) => b,
            Err(e) => {
                unmap(entries, entries_len);
                return Err(RingError::from_setup(e));
            }
        };
        // SAFETY: dup of a live fd; the result is ours.
        let dup = unsafe { libc::fcntl(ring.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        let ring_fd = (dup >= 0).then(|| unsafe { OwnedFd::from_raw_fd(dup) });
        let mut this = BufRing {
            entries: entries.cast(),
            entries_len,
            buffers,
            buffers_len,
            count,
            size,
            bgid,
            tail: 0,
            ring_fd,
        };
        // SAFETY: the entries stay mapped until unregistered (unregister or Drop).
        let reg = unsafe {
            ring.submitter().register_buf_ring_with_flags(
                this.entries.as_ptr() as u64,
                count,
                bgid,
                0,
            )
        };
        if let Err(e) = reg {
            // Not registered: nothing of ours is shared with the kernel, free it all.
            this.ring_fd = None;
            this.free();
            std::mem::forget(this);
            return Err(RingError::from_setup(e));
        }
        for bid in 0..count {
            this.push(bid);
        }
        this.publish();
        Ok(this)
    }

    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    /// Number of buffers.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Size of each buffer in bytes.
    pub fn buffer_size(&self) -> u32 {
        self.size
    }

    /// Buffer id from a CQE's flags (`IORING_CQE_F_BUFFER`), if the CQE carries one.
    pub fn buffer_id(cqe_flags: u32) -> Option<u16> {
        cqueue::buffer_select(cqe_flags)
    }

    /// The first `len` bytes of buffer `bid`, valid until `recycle(bid)`.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count, "buffer id {bid} out of range");
        let len = len.min(self.size as usize);
        // SAFETY: bid is in range, so the slice lies inside the mapping; the kernel does not
        // write a buffer it handed out until it is recycled.
        unsafe {
            std::slice::from_raw_parts(
                self.buffers.as_ptr().add(bid as usize * self.size as usize),
                len,
            )
        }
    }

    /// Give buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    /// Unregister from the ring (also done on drop is not possible without the ring).
    pub fn unregister(mut self, ring: &IoUring) -> Result<(), RingError> {
        let result = ring.submitter().unregister_buf_ring(self.bgid);
        if result.is_ok() {
            self.ring_fd = None;
            self.free();
        } else {
            // Still registered: leave the memory to the kernel (leaked).
            self.ring_fd = None;
        }
        std::mem::forget(self);
        result.map_err(RingError::Other)
    }

    fn push(&mut self, bid: u16) {
        assert!(bid < self.count, "buffer id {bid} out of range");
        let slot = (self.tail & (self.count - 1)) as usize;
        // SAFETY: slot < count; the kernel does not read slots past the published tail, and
        // the setters leave the reserved field (entry 0's tail) untouched.
        unsafe {
            let entry = &mut *self.entries.as_ptr().add(slot);
            entry.set_addr(self.buffers.as_ptr().add(bid as usize * self.size as usize) as u64);
            entry.set_len(self.size);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lies inside the mapping; Release orders the entry writes
        // above before the kernel can see the new tail.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn free(&mut self) {
        unmap(self.entries.cast(), self.entries_len);
        unmap(self.buffers, self.buffers_len);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        let Some(fd) = self.ring_fd.take() else {
            return;
        };
        let reg = io_uring_buf_reg_unregister(self.bgid);
        // SAFETY: a raw IORING_UNREGISTER_PBUF_RING on our duplicate of the ring fd; the
        // argument is a valid io_uring_buf_reg.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                fd.as_raw_fd(),
                IORING_UNREGISTER_PBUF_RING,
                &reg as *const BufReg,
                1,
            )
        };
        if rc == 0 {
            self.free();
        }
        // Otherwise the kernel may still write into it: leak.
    }
}

const IORING_UNREGISTER_PBUF_RING: libc::c_long = 23;

/// `struct io_uring_buf_reg` of the kernel's uapi (40 bytes).
#[repr(C)]
struct BufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}

fn io_uring_buf_reg_unregister(bgid: u16) -> BufReg {
    BufReg {
        ring_addr: 0,
        ring_entries: 0,
        bgid,
        flags: 0,
        resv: [0; 3],
    }
}

fn map_anon(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(NonNull::new(p.cast()).expect("mmap returned null"))
}

fn unmap(p: NonNull<u8>, len: usize) {
    // SAFETY: p/len came from map_anon and are unmapped once.
    unsafe {
        libc::munmap(p.as_ptr().cast(), len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{build_ring, RingConfig, Tier};

    fn full_ring() -> IoUring {
        build_ring(&RingConfig {
            tier: Tier::Full,
            entries: 32,
            cq_entries: 256,
        })
        .unwrap()
    }

    #[test]
    fn buffer_ids_come_from_the_flags() {
        const F_BUFFER: u32 = 1;
        assert_eq!(BufRing::buffer_id(F_BUFFER | (7 << 16)), Some(7));
        assert_eq!(BufRing::buffer_id(7 << 16), None);
    }

    #[test]
    fn bad_shapes_are_refused() {
        let ring = full_ring();
        assert!(BufRing::register(&ring, 1, 3, 64).is_err());
        assert!(BufRing::register(&ring, 1, 4, 0).is_err());
    }

    #[test]
    fn register_unregister_and_reuse_group() {
        let ring = full_ring();
        let a = BufRing::register(&ring, 9, 8, 128).unwrap();
        assert_eq!((a.bgid(), a.count(), a.buffer_size()), (9, 8, 128));
        // The same group twice is refused by the kernel.
        assert!(BufRing::register(&ring, 9, 8, 128).is_err());
        a.unregister(&ring).unwrap();
        let b = BufRing::register(&ring, 9, 8, 128).unwrap();
        drop(b); // unregisters through Drop
        let c = BufRing::register(&ring, 9, 8, 128).unwrap();
        c.unregister(&ring).unwrap();
    }
}
