//! `--access-log PATH|-`: one line per request, buffered per worker and written in whole
//! lines (the file is opened with O_APPEND, so workers' flushes do not interleave
//! mid-line). Off by default; when on, it costs a write(2) per flush, not per request.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use uring_common::http::{RequestHead, Version};

use crate::config::AccessLogTarget;

/// The shared destination; each worker wraps it in its own [`AccessLogWriter`].
#[derive(Clone, Debug)]
pub struct AccessLog {
    file: Arc<File>,
}

impl AccessLog {
    pub fn open(target: &Option<AccessLogTarget>) -> io::Result<Option<AccessLog>> {
        let file = match target {
            None => return Ok(None),
            Some(AccessLogTarget::File(p)) => {
                OpenOptions::new().create(true).append(true).open(p)?
            }
            Some(AccessLogTarget::Stdout) => {
                // SAFETY: dup returns a new fd or -1.
                let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: fresh fd we own.
                File::from(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        };
        Ok(Some(AccessLog {
            file: Arc::new(file),
        }))
    }

    pub fn writer(&self) -> AccessLogWriter {
        AccessLogWriter {
            file: self.file.clone(),
            buf: Vec::with_capacity(FLUSH_AT * 2),
        }
    }
}

const FLUSH_AT: usize = 32 * 1024;

/// A worker's buffer of log lines.
pub struct AccessLogWriter {
    file: Arc<File>,
    buf: Vec<u8>,
}

impl AccessLogWriter {
    /// `[date] "METHOD target HTTP/1.x" status bytes`
    pub fn record(&mut self, date: &[u8; 29], head: &RequestHead<'_, '_>, status: u16, bytes: u64) {
        let v = match head.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        self.buf.push(b'[');
        self.buf.extend_from_slice(date);
        let _ = writeln!(
            self.buf,
            "] \"{} {} {v}\" {status} {bytes}",
            head.method,
            head.target.escape_debug()
        );
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            let _ = (&*self.file).write_all(&self.buf);
            self.buf.clear();
        }
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.flush();
    }
}
