//! `--access-log PATH|-` with `--access-log-format combined|json`: one line per request.
//!
//! Each worker formats its lines into its own buffer ([`AccessLogWriter`]); a full buffer
//! (or whatever is there at the worker's tick) is handed to one writer thread through a
//! bounded channel, so the worker never blocks on the disk. If the disk stalls and the
//! channel fills, the buffer is dropped and counted (`dropped_lines`, also a metric)
//! rather than stalling every connection of the worker. The writer thread owns the file:
//! [`AccessLog::reopen`] (SIGUSR1 in the binary, as logrotate expects) makes it open the
//! path again, so lines go to the new file from its next write.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use uring_common::http::{RequestHead, Version};

pub use crate::config::AccessLogFormat;
use crate::config::AccessLogTarget;

/// A buffer a worker hands over is this large (or whatever is there at its tick).
const FLUSH_AT: usize = 32 * 1024;
/// Buffers waiting for the writer thread before workers start dropping them (8 MiB).
const QUEUE: usize = 256;

enum Msg {
    Lines(Vec<u8>),
    Reopen,
}

/// The running access log: its writer thread and the handle workers clone.
pub struct AccessLog {
    tx: Option<SyncSender<Msg>>,
    format: AccessLogFormat,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// What a worker holds to hand its buffers over.
#[derive(Clone)]
pub struct AccessLogSink {
    tx: SyncSender<Msg>,
    format: AccessLogFormat,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Open the destination (errors surface before any worker starts) and start the
    /// writer thread; `None` when there is no access log.
    pub fn open(
        target: &Option<AccessLogTarget>,
        format: AccessLogFormat,
    ) -> io::Result<Option<AccessLog>> {
        let Some(target) = target.clone() else {
            return Ok(None);
        };
        let file = open_target(&target)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("uring-access-log".into())
            .spawn(move || write_loop(target, file, rx))?;
        Ok(Some(AccessLog {
            tx: Some(tx),
            format,
            dropped: Arc::new(AtomicU64::new(0)),
            thread: Some(thread),
        }))
    }

    pub fn sink(&self) -> AccessLogSink {
        AccessLogSink {
            tx: self.tx.clone().expect("sink taken before close"),
            format: self.format,
            dropped: self.dropped.clone(),
        }
    }

    /// Open the file again (after logrotate moved it); stdout is left as it is.
    pub fn reopen(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Reopen);
        }
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped_lines(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// Wait until every line the workers handed over is written. Call after the workers
    /// exited (their sinks are gone then).
    pub fn close(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_target(target: &AccessLogTarget) -> io::Result<File> {
    match target {
        AccessLogTarget::File(p) => OpenOptions::new().create(true).append(true).open(p),
        AccessLogTarget::Stdout => {
            // SAFETY: fcntl returns a new fd or -1.
            let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh fd we own.
            Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
        }
    }
}

fn write_loop(target: AccessLogTarget, mut file: File, rx: Receiver<Msg>) {
    for msg in rx {
        match msg {
            Msg::Lines(buf) => {
                if let Err(e) = file.write_all(&buf) {
                    eprintln!("uring-server: access log write failed: {e}");
                }
            }
            Msg::Reopen => {
                if let AccessLogTarget::File(p) = &target {
                    match open_target(&target) {
                        Ok(f) => file = f,
                        Err(e) => eprintln!(
                            "uring-server: cannot reopen the access log {}: {e}; still writing to the old file",
                            PathBuf::from(p).display()
                        ),
                    }
                }
            }
        }
    }
}

/// One request as the access log sees it.
pub struct LogEntry<'a, 'h> {
    /// The client's address, formatted (empty when unknown).
    pub peer: &'a [u8],
    pub head: &'a RequestHead<'a, 'h>,
    pub status: u16,
    pub body_bytes: u64,
    pub duration_us: u64,
}

/// A worker's buffer of log lines.
pub struct AccessLogWriter {
    sink: AccessLogSink,
    buf: Vec<u8>,
    lines: u64,
    /// The formatted time of `time_secs` (formatted once per second).
    time_secs: u64,
    time: String,
}

impl AccessLogWriter {
    pub fn new(sink: AccessLogSink) -> AccessLogWriter {
        AccessLogWriter {
            sink,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            lines: 0,
            time_secs: u64::MAX,
            time: String::new(),
        }
    }

    /// Format one line. JSON keys: `time` (RFC 3339, UTC), `remote_addr`, `method`, `uri`,
    /// `protocol`, `status`, `body_bytes_sent`, `referer`, `user_agent`, `request_time_us`.
    pub fn record(&mut self, e: &LogEntry<'_, '_>) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.time_secs {
            self.time_secs = secs;
            self.time.clear();
            format_time(secs, self.sink.format, &mut self.time);
        }
        let peer = or_dash(e.peer);
        let version = match e.head.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        let referer = e.head.header("referer").unwrap_or(b"");
        let agent = e.head.header("user-agent").unwrap_or(b"");
        match self.sink.format {
            AccessLogFormat::Combined => {
                // Piece by piece rather than through `fmt`: this runs once per request.
                let b = &mut self.buf;
                b.extend_from_slice(peer);
                b.extend_from_slice(b" - - [");
                b.extend_from_slice(self.time.as_bytes());
                b.extend_from_slice(b"] \"");
                escape_into(b, e.head.method.as_bytes());
                b.push(b' ');
                escape_into(b, e.head.target.as_bytes());
                b.push(b' ');
                b.extend_from_slice(version.as_bytes());
                b.extend_from_slice(b"\" ");
                push_decimal(b, e.status.into());
                b.push(b' ');
                push_decimal(b, e.body_bytes);
                b.extend_from_slice(b" \"");
                escape_into(b, or_dash(referer));
                b.extend_from_slice(b"\" \"");
                escape_into(b, or_dash(agent));
                b.extend_from_slice(b"\"\n");
            }
            AccessLogFormat::Json => {
                let line = serde_json::json!({
                    "time": self.time,
                    "remote_addr": String::from_utf8_lossy(peer),
                    "method": e.head.method,
                    "uri": e.head.target,
                    "protocol": version,
                    "status": e.status,
                    "body_bytes_sent": e.body_bytes,
                    "referer": String::from_utf8_lossy(referer),
                    "user_agent": String::from_utf8_lossy(agent),
                    "request_time_us": e.duration_us,
                });
                let _ = serde_json::to_writer(&mut self.buf, &line);
                self.buf.push(b'\n');
            }
        }
        self.lines += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Hand the buffer to the writer thread without waiting (dropped and counted if the
    /// writer is that far behind).
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(FLUSH_AT + 1024));
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.sink.tx.try_send(Msg::Lines(buf))
        {
            self.sink.dropped.fetch_add(self.lines, Ordering::Relaxed);
        }
        self.lines = 0;
    }

    /// The last flush: waits for room in the queue (the worker is exiting).
    pub fn finish(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            let _ = self.sink.tx.send(Msg::Lines(buf));
            self.lines = 0;
        }
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// nginx writes an empty variable as `-`.
fn or_dash(v: &[u8]) -> &[u8] {
    if v.is_empty() {
        b"-"
    } else {
        v
    }
}

/// nginx's escaping of logged variables: `"`, `\` and bytes outside printable ASCII as
/// `\xHH`, so a line can neither be split nor have a field forged.
fn escape_into(out: &mut Vec<u8>, v: &[u8]) {
    let plain = |b: u8| b != b'"' && b != b'\\' && (0x20..0x7f).contains(&b);
    if v.iter().all(|&b| plain(b)) {
        return out.extend_from_slice(v);
    }
    for &b in v {
        if plain(b) {
            out.push(b);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `10/Oct/2000:13:55:36 +0000` (combined) or `2000-10-10T13:55:36Z` (json).
fn format_time(secs: u64, format: AccessLogFormat, out: &mut String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let (y, mo, d) = civil_from_days(days);
    let _ = match format {
        AccessLogFormat::Combined => write!(
            out,
            "{d:02}/{}/{y}:{h:02}:{m:02}:{s:02} +0000",
            MONTHS[mo as usize - 1]
        ),
        AccessLogFormat::Json => write!(out, "{y}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
    };
}

/// Howard Hinnant's days-to-civil: (year, month 1-12, day 1-31) of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};

    fn line(format: AccessLogFormat, req: &[u8]) -> String {
        let (tx, rx) = mpsc::sync_channel(4);
        let sink = AccessLogSink {
            tx,
            format,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let mut w = AccessLogWriter::new(sink);
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) = parse_request(req, &mut storage, &Limits::default())
        else {
            panic!("request does not parse");
        };
        w.record(&LogEntry {
            peer: b"127.0.0.1",
            head: &head,
            status: 200,
            body_bytes: 13,
            duration_us: 7,
        });
        w.flush();
        let Ok(Msg::Lines(b)) = rx.recv() else {
            panic!("no lines")
        };
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn combined_line_has_nginx_fields_in_order() {
        let l = line(
            AccessLogFormat::Combined,
            b"GET /a?b=\"c\" HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\nUser-Agent: curl/8\r\n\r\n",
        );
        let re = l.trim_end();
        let (front, rest) = re.split_once(" [").unwrap();
        assert_eq!(front, "127.0.0.1 - -");
        let (time, rest) = rest.split_once("] ").unwrap();
        assert_eq!(time.len(), "10/Oct/2000:13:55:36 +0000".len(), "{time}");
        assert!(time.ends_with(" +0000"));
        assert_eq!(
            rest,
            r#""GET /a?b=\x22c\x22 HTTP/1.1" 200 13 "http://r/" "curl/8""#
        );
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1);
    }

    #[test]
    fn json_line_parses_with_every_key() {
        let l = line(
            AccessLogFormat::Json,
            b"HEAD /x HTTP/1.0\r\nUser-Agent: a\"b\r\n\r\n",
        );
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["method"], "HEAD");
        assert_eq!(v["uri"], "/x");
        assert_eq!(v["protocol"], "HTTP/1.0");
        assert_eq!(v["status"], 200);
        assert_eq!(v["body_bytes_sent"], 13);
        assert_eq!(v["remote_addr"], "127.0.0.1");
        assert_eq!(v["user_agent"], "a\"b");
        assert_eq!(v["referer"], "");
        assert_eq!(v["request_time_us"], 7);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn times_format_like_nginx() {
        let mut s = String::new();
        format_time(971_186_136, AccessLogFormat::Combined, &mut s);
        assert_eq!(s, "10/Oct/2000:13:55:36 +0000");
        s.clear();
        format_time(951_782_400, AccessLogFormat::Json, &mut s); // a leap day
        assert_eq!(s, "2000-02-29T00:00:00Z");
        s.clear();
        format_time(0, AccessLogFormat::Combined, &mut s);
        assert_eq!(s, "01/Jan/1970:00:00:00 +0000");
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (tx, _rx) = mpsc::sync_channel(0);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut w = AccessLogWriter::new(AccessLogSink {
            tx,
            format: AccessLogFormat::Combined,
            dropped: dropped.clone(),
        });
        w.buf.extend_from_slice(b"x\n");
        w.lines = 1;
        w.flush();
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }
}
