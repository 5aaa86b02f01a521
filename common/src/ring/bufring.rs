//! A registered buffer ring (IORING_REGISTER_PBUF_RING, 5.19+): the kernel picks a buffer
//! per completion; we hand it back with `recycle` once its bytes are consumed.
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures).

use io_uring::IoUring;

use super::RingError;

pub struct BufRing {
    _private: (),
}

impl BufRing {
    /// Register `count` (a power of two) buffers of `size` bytes under group `bgid`.
    pub fn register(
        ring: &IoUring,
        bgid: u16,
        count: u16,
        size: u32,
    ) -> Result<BufRing, RingError> {
        let _ = (ring, bgid, count, size);
        todo!("implemented by the ring work")
    }

    pub fn bgid(&self) -> u16 {
        todo!()
    }

    /// Buffer id from a CQE's flags (`IORING_CQE_F_BUFFER`), if the CQE carries one.
    pub fn buffer_id(cqe_flags: u32) -> Option<u16> {
        let _ = cqe_flags;
        todo!()
    }

    /// The first `len` bytes of buffer `bid`, valid until `recycle(bid)`.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        let _ = (bid, len);
        todo!()
    }

    /// Give buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        let _ = bid;
        todo!()
    }

    /// Unregister from the ring (also done on drop is not possible without the ring).
    pub fn unregister(self, ring: &IoUring) -> Result<(), RingError> {
        let _ = ring;
        todo!()
    }
}
