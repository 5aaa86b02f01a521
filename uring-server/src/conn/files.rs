//! File bodies: read in bounded chunks into the output, or spliced file → pipe → socket,
//! one operation at a time; a short file closes the connection.

use super::*;

impl Conn {
    /// A file read completed: its bytes (copied into the output), or `Err(res)` with the
    /// read's result (0 at an unexpected end of file, or -errno).
    pub fn on_file_read<H: Handler>(&mut self, read: Result<&[u8], i32>, ctx: &mut Ctx<'_, H>) {
        let Some(f) = self.answer.file_mut() else {
            return;
        };
        if !f.read_in_flight {
            return;
        }
        f.read_in_flight = false;
        let data = match read {
            Ok(data) if !data.is_empty() => data,
            // The file shrank or failed: the promised length can no longer be kept.
            _ => {
                self.answer = Answer::None;
                self.phase = Phase::Closed;
                return;
            }
        };
        let n = data.len().min(f.body.len as usize);
        f.body.offset += n as u64;
        f.body.len -= n as u64;
        let last = f.body.len == 0;
        if self.is_http2() {
            self.h2_file_chunk(&data[..n], last);
        } else {
            self.out.extend_from_slice(&data[..n]);
        }
        if last {
            self.answer = Answer::None;
            self.pump(ctx);
        }
    }

    /// The end of a file operation: a read's bytes or failure, a splice's end.
    pub fn on_file_event<H: Handler>(&mut self, ev: Event<&[u8]>, ctx: &mut Ctx<'_, H>) {
        match ev {
            Event::FileRead { data, .. } => self.on_file_read(Ok(data), ctx),
            Event::FileReadFailed { res, .. } => self.on_file_read(Err(res), ctx),
            Event::Spliced { len, .. } => self.on_spliced(Ok(len), ctx),
            Event::SpliceFailed { res, .. } => self.on_spliced(Err(res), ctx),
            _ => {}
        }
    }

    /// A splice of the file body ended: `Ok(n)`, its bytes went to the socket, or
    /// `Err(res)` (0: the file ended early; -errno): the promised length cannot be kept
    /// and the connection closes, so the client never takes a short body for whole.
    pub fn on_spliced<H: Handler>(&mut self, res: Result<usize, i32>, ctx: &mut Ctx<'_, H>) {
        let Some(f) = self.answer.file_mut() else {
            return;
        };
        if !f.read_in_flight {
            return;
        }
        f.read_in_flight = false;
        match res {
            Ok(n) if n > 0 => {
                self.last_activity = ctx.now;
                if let Some(log) = ctx.log.as_deref_mut() {
                    log.sent(n + std::mem::take(&mut f.head_in_splice));
                }
                let n = (n as u64).min(f.body.len);
                f.body.offset += n;
                f.body.len -= n;
                if f.body.len == 0 {
                    self.answer = Answer::None;
                    self.pump(ctx);
                }
            }
            _ => {
                self.answer = Answer::None;
                self.phase = Phase::Closed;
            }
        }
    }

    /// The next file operation for the body being sent, if one should start now.
    pub fn poll_file_op(&mut self) -> Option<FileOp> {
        if let Some((fd, off, len)) = self.poll_file_read() {
            return Some(FileOp::Read(fd, off, len));
        }
        let (fd, off, len, more) = self.poll_splice()?;
        Some(FileOp::Splice(fd, off, len, more))
    }

    /// A file read to start: (fd, offset, length). The fd stays open until the read's
    /// completion is handed to `on_file_read` or the connection is released.
    pub fn poll_file_read(&mut self) -> Option<(RawFd, u64, u32)> {
        if self.phase == Phase::Closed {
            return None;
        }
        let splice = self.splices();
        let f = self.answer.file_mut()?;
        if splice || f.read_in_flight || self.out.len() >= FILE_CHUNK || f.body.len == 0 {
            return None;
        }
        let budget = self.h2_file_read_budget();
        let f = self.answer.file_mut()?;
        let len = f.body.len.min(FILE_CHUNK.min(budget) as u64) as u32;
        if len == 0 {
            // HTTP/2: the stream's window is shut; its WINDOW_UPDATE brings the next read.
            return None;
        }
        f.read_in_flight = true;
        Some((f.body.file.as_raw_fd(), f.body.offset, len))
    }

    /// A splice of the file body to start: (fd, offset, length, more bytes follow). Only
    /// once everything before it (the head) has gone out; the fd stays open until
    /// `on_spliced` or release.
    pub fn poll_splice(&mut self) -> Option<(RawFd, u64, u32, bool)> {
        if self.phase == Phase::Closed || self.writing != Writing::Idle || !self.out.is_empty() {
            return None;
        }
        if !self.splices() {
            return None;
        }
        let f = self.answer.file_mut()?;
        if f.read_in_flight || f.body.len == 0 {
            return None;
        }
        let len = f.body.len.min(SPLICE_CHUNK as u64) as u32;
        f.read_in_flight = true;
        Some((
            f.body.file.as_raw_fd(),
            f.body.offset,
            len,
            f.body.len > len as u64,
        ))
    }

    /// Whether `len` bytes about to be sent (the head of a file body) should instead go
    /// out with the body's first splice (which then counts them).
    pub(super) fn head_rides_the_splice(&mut self, len: usize) -> bool {
        let splices = self.splices();
        match self.answer.file_mut() {
            Some(f) if len <= SPLICE_HEAD_MAX && splices && !f.read_in_flight && f.body.len > 0 => {
                f.head_in_splice = len;
                true
            }
            _ => false,
        }
    }

    /// Whether the file body goes out by splice: asked for, and no TLS in user space
    /// (rustls encrypts in memory, so its bodies are read; kTLS seals what is spliced).
    pub(super) fn splices(&self) -> bool {
        !self.tls.in_rustls() && self.answer.file().is_some_and(|f| f.body.zero_copy)
    }
}
