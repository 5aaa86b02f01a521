//! `--access-log PATH|-` with `--access-log-format combined|json`: one line per request.
//!
//! Each worker formats its lines into its own buffer ([`AccessLogWriter`]); a full buffer
//! (or whatever is there at the worker's tick) is handed to one writer thread through a
//! bounded channel, so the worker never blocks on the disk. If the disk stalls and the
//! channel fills, the buffer is dropped and counted (`dropped_lines`, also a metric)
//! rather than stalling every connection of the worker. The writer thread owns the file:
//! [`AccessLog::reopen`] (SIGUSR1 in the binary, as logrotate expects) makes it open the
//! path again, so lines go to the new file from its next write.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use uring_common::http::{RequestHead, Version};

pub use crate::config::AccessLogFormat;
use crate::config::AccessLogTarget;

/// A buffer a worker hands over is this large (or whatever is there at its tick). Large,
/// because each hand-over wakes the writer thread, on the worker's core when pinned: at
/// 32 KiB that was ~2 context switches and a futex call per 400 lines.
const FLUSH_AT: usize = 256 * 1024;
/// Buffers waiting for the writer thread before workers start dropping them (8 MiB).
const QUEUE: usize = 32;

enum Msg {
    /// Lines, and where the emptied buffer goes back to (the worker reuses it: a fresh
    /// 256 KiB buffer per hand-over would be an mmap and 64 page faults).
    Lines(Vec<u8>, Sender<Vec<u8>>),
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
            Msg::Lines(mut buf, back) => {
                if let Err(e) = file.write_all(&buf) {
                    eprintln!("uring-server: access log write failed: {e}");
                }
                buf.clear();
                // The worker may be gone: then the buffer is freed here.
                let _ = back.send(buf);
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
    /// The worker's `Date` header for the batch the request was answered in (its clock,
    /// read once per batch): the line's time, to the second, as nginx's cached time.
    pub date: &'a [u8; 29],
    /// For a proxied request: the upstream's part (nginx's `$upstream_*` variables).
    pub upstream: Option<UpstreamFields<'a>>,
}

/// nginx's `$upstream_addr`, `$upstream_status` and `$upstream_response_time` of one
/// proxied request (`None`: no upstream was tried, or it sent no head).
pub struct UpstreamFields<'a> {
    pub addr: Option<&'a [u8]>,
    pub status: Option<u16>,
    pub response_time_us: Option<u64>,
}

/// Microseconds as nginx prints times: seconds with milliseconds (`0.012`).
fn push_seconds(out: &mut Vec<u8>, us: u64) {
    push_decimal(out, us / 1_000_000);
    out.push(b'.');
    let ms = (us / 1000) % 1000;
    out.extend_from_slice(&[
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
}

/// A worker's buffer of log lines.
pub struct AccessLogWriter {
    sink: AccessLogSink,
    buf: Vec<u8>,
    /// Buffers the writer thread wrote and gave back.
    spare: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    lines: u64,
    /// The formatted time of the `Date` in `time_of` (formatted when the second changes).
    time_of: [u8; 29],
    time: Vec<u8>,
}

impl AccessLogWriter {
    pub fn new(sink: AccessLogSink) -> AccessLogWriter {
        AccessLogWriter {
            sink,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            spare: mpsc::channel(),
            lines: 0,
            time_of: [0; 29],
            time: Vec::new(),
        }
    }

    /// Format one line. JSON keys: `time` (RFC 3339, UTC), `remote_addr`, `method`, `uri`,
    /// `protocol`, `status`, `body_bytes_sent`, `referer`, `user_agent`, `request_time_us`;
    /// a proxied request adds `request_time` (seconds), `upstream_addr`,
    /// `upstream_status` and `upstream_response_time` (seconds; null when none). The
    /// combined line of a proxied request ends with
    /// ` rt=$request_time ua="$upstream_addr" us="$upstream_status" urt="$upstream_response_time"`.
    pub fn record(&mut self, e: &LogEntry<'_, '_>) {
        if *e.date != self.time_of {
            self.time_of = *e.date;
            self.time.clear();
            time_from_date(e.date, self.sink.format, &mut self.time);
        }
        let peer = or_dash(e.peer);
        let version = match e.head.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
        };
        let referer = e.head.header("referer").unwrap_or(b"");
        let agent = e.head.header("user-agent").unwrap_or(b"");
        match self.sink.format {
            AccessLogFormat::Combined => {
                // Piece by piece rather than through `fmt`: this runs once per request.
                let b = &mut self.buf;
                b.extend_from_slice(peer);
                b.extend_from_slice(b" - - [");
                b.extend_from_slice(&self.time);
                b.extend_from_slice(b"] \"");
                // A method is a token (the codec checks): nothing in it to escape.
                b.extend_from_slice(e.head.method.as_bytes());
                b.push(b' ');
                escape_into(b, e.head.target.as_bytes());
                b.push(b' ');
                b.extend_from_slice(version.as_bytes());
                b.extend_from_slice(b"\" ");
                push_status(b, e.status);
                b.push(b' ');
                push_decimal(b, e.body_bytes);
                b.extend_from_slice(b" \"");
                escape_or_dash(b, referer);
                b.extend_from_slice(b"\" \"");
                escape_or_dash(b, agent);
                b.push(b'"');
                if let Some(u) = &e.upstream {
                    b.extend_from_slice(b" rt=");
                    push_seconds(b, e.duration_us);
                    b.extend_from_slice(b" ua=\"");
                    escape_or_dash(b, u.addr.unwrap_or(b""));
                    b.extend_from_slice(b"\" us=\"");
                    match u.status {
                        Some(s) => push_status(b, s),
                        None => b.push(b'-'),
                    }
                    b.extend_from_slice(b"\" urt=\"");
                    match u.response_time_us {
                        Some(us) => push_seconds(b, us),
                        None => b.push(b'-'),
                    }
                    b.push(b'"');
                }
                b.push(b'\n');
            }
            AccessLogFormat::Json => {
                let mut line = serde_json::json!({
                    "time": String::from_utf8_lossy(&self.time),
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
                if let Some(u) = &e.upstream {
                    let secs = |us: u64| us as f64 / 1e6;
                    line["request_time"] = secs(e.duration_us).into();
                    line["upstream_addr"] = u.addr.map(|a| String::from_utf8_lossy(a)).into();
                    line["upstream_status"] = u.status.into();
                    line["upstream_response_time"] = u.response_time_us.map(secs).into();
                }
                let _ = serde_json::to_writer(&mut self.buf, &line);
                self.buf.push(b'\n');
            }
        }
        self.lines += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// A request the connection refused (malformed, too large): nginx's line for it, with
    /// the request line as it came (escaped; `-` when nothing came), no body bytes, and no
    /// referer or user agent. JSON: `request` carries that line, `method`, `uri` and
    /// `protocol` are empty.
    pub fn record_refused(&mut self, peer: &[u8], line: &[u8], status: u16, date: &[u8; 29]) {
        if *date != self.time_of {
            self.time_of = *date;
            self.time.clear();
            time_from_date(date, self.sink.format, &mut self.time);
        }
        let peer = or_dash(peer);
        match self.sink.format {
            AccessLogFormat::Combined => {
                let b = &mut self.buf;
                b.extend_from_slice(peer);
                b.extend_from_slice(b" - - [");
                b.extend_from_slice(&self.time);
                b.extend_from_slice(b"] \"");
                escape_or_dash(b, line);
                b.extend_from_slice(b"\" ");
                push_status(b, status);
                b.extend_from_slice(b" 0 \"-\" \"-\"\n");
            }
            AccessLogFormat::Json => {
                let mut escaped = Vec::new();
                escape_into(&mut escaped, line);
                let entry = serde_json::json!({
                    "time": String::from_utf8_lossy(&self.time),
                    "remote_addr": String::from_utf8_lossy(peer),
                    "request": String::from_utf8_lossy(&escaped),
                    "method": "",
                    "uri": "",
                    "protocol": "",
                    "status": status,
                    "body_bytes_sent": 0,
                    "referer": "",
                    "user_agent": "",
                    "request_time_us": 0,
                });
                let _ = serde_json::to_writer(&mut self.buf, &entry);
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
        let next =
            (self.spare.1.try_recv()).unwrap_or_else(|_| Vec::with_capacity(FLUSH_AT + 1024));
        let buf = std::mem::replace(&mut self.buf, next);
        let lines = Msg::Lines(buf, self.spare.0.clone());
        if let Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) =
            self.sink.tx.try_send(lines)
        {
            self.sink.dropped.fetch_add(self.lines, Ordering::Relaxed);
            if let Msg::Lines(mut buf, _) = m {
                buf.clear();
                self.buf = buf;
            }
        }
        self.lines = 0;
    }

    /// The last flush: waits for room in the queue (the worker is exiting).
    pub fn finish(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            let _ = self.sink.tx.send(Msg::Lines(buf, self.spare.0.clone()));
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

/// [`escape_into`], or `-` for an empty value (most requests have no `Referer`).
fn escape_or_dash(out: &mut Vec<u8>, v: &[u8]) {
    if v.is_empty() {
        out.push(b'-');
    } else {
        escape_into(out, v);
    }
}

/// nginx's escaping of logged variables: `"`, `\` and bytes outside printable ASCII as
/// `\xHH`, so a line can neither be split nor have a field forged.
fn escape_into(out: &mut Vec<u8>, v: &[u8]) {
    // One pass, copying plain runs whole (a logged field is nearly always one run).
    let mut run = 0;
    for (i, &b) in v.iter().enumerate() {
        if !PLAIN[b as usize] {
            out.extend_from_slice(&v[run..i]);
            out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            run = i + 1;
        }
    }
    out.extend_from_slice(&v[run..]);
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The bytes [`escape_into`] copies as they are: printable ASCII but `"` and `\`.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// A status is three digits (the codec and the handlers make nothing else).
fn push_status(out: &mut Vec<u8>, status: u16) {
    if (100..1000).contains(&status) {
        out.extend_from_slice(&[
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ]);
    } else {
        push_decimal(out, status.into());
    }
}

pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
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
    // Byte by byte: a memcpy call costs more than the few digits a log field has.
    out.reserve(digits.len() - i);
    for &d in &digits[i..] {
        out.push(d);
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `10/Oct/2000:13:55:36 +0000` (combined) or `2000-10-10T13:55:36Z` (json), from the
/// IMF-fixdate `Tue, 10 Oct 2000 13:55:36 GMT` the worker already made for `Date`.
fn time_from_date(date: &[u8; 29], format: AccessLogFormat, out: &mut Vec<u8>) {
    let (day, mon, year, hms) = (&date[5..7], &date[8..11], &date[12..16], &date[17..25]);
    match format {
        AccessLogFormat::Combined => {
            for part in [day, b"/", mon, b"/", year, b":", hms, b" +0000"] {
                out.extend_from_slice(part);
            }
        }
        AccessLogFormat::Json => {
            let m = MONTHS
                .iter()
                .position(|m| m.as_bytes() == mon)
                .map_or(0, |i| i + 1);
            let m = [b'0' + (m / 10) as u8, b'0' + (m % 10) as u8];
            for part in [year, b"-", &m, b"-", day, b"T", hms, b"Z"] {
                out.extend_from_slice(part);
            }
        }
    }
}

/// The same from the Unix time: what the test checks [`time_from_date`] against.
#[cfg(test)]
fn format_time(secs: u64, format: AccessLogFormat, out: &mut String) {
    use std::fmt::Write as _;
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
#[cfg(test)]
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
        line_with(format, req, None)
    }

    fn line_with(
        format: AccessLogFormat,
        req: &[u8],
        upstream: Option<UpstreamFields<'_>>,
    ) -> String {
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
            date: b"Tue, 10 Oct 2000 13:55:36 GMT",
            upstream,
        });
        w.flush();
        let Ok(Msg::Lines(b, _)) = rx.recv() else {
            panic!("no lines")
        };
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn proxied_lines_carry_the_upstream_fields() {
        let req = b"GET /app HTTP/1.1\r\nHost: x\r\n\r\n";
        let up = || UpstreamFields {
            addr: Some(b"127.0.0.1:8000"),
            status: Some(201),
            response_time_us: Some(1_234_567),
        };
        let l = line_with(AccessLogFormat::Combined, req, Some(up()));
        assert!(
            l.ends_with("\"-\" \"-\" rt=0.000 ua=\"127.0.0.1:8000\" us=\"201\" urt=\"1.234\"\n"),
            "{l}"
        );
        let none = UpstreamFields {
            addr: None,
            status: None,
            response_time_us: None,
        };
        let l = line_with(AccessLogFormat::Combined, req, Some(none));
        assert!(l.ends_with(" ua=\"-\" us=\"-\" urt=\"-\"\n"), "{l}");
        let j: serde_json::Value =
            serde_json::from_str(&line_with(AccessLogFormat::Json, req, Some(up()))).unwrap();
        assert_eq!(j["upstream_addr"], "127.0.0.1:8000");
        assert_eq!(j["upstream_status"], 201);
        assert_eq!(j["upstream_response_time"], 1.234567);
        assert_eq!(j["request_time"], 0.000007);
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
        assert_eq!(time, "10/Oct/2000:13:55:36 +0000");
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
        assert_eq!(v["time"], "2000-10-10T13:55:36Z");
    }

    #[test]
    fn escaping_is_nginx_s() {
        let mut out = Vec::new();
        escape_into(&mut out, b"a\"b\\c\x01 \xff~");
        assert_eq!(out, br#"a\x22b\x5Cc\x01 \xFF~"#);
        out.clear();
        escape_into(&mut out, b"/plain");
        assert_eq!(out, b"/plain");
    }

    /// The method is logged unescaped: only tokens get past the codec.
    #[test]
    fn a_method_that_would_need_escaping_never_parses() {
        for bad in [&b"G\"T"[..], b"G\\T", b"G\x01T", b"G\xffT", b"G T"] {
            let mut req = bad.to_vec();
            req.extend_from_slice(b" / HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut storage = new_header_storage();
            let r = parse_request(&req, &mut storage, &Limits::default());
            assert!(!matches!(r, Ok(Parsed::Complete(_))), "{bad:?}");
        }
    }

    #[test]
    fn decimals() {
        for (n, want) in [
            (0u64, "0"),
            (7, "7"),
            (13, "13"),
            (255, "255"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{want}").as_bytes());
        }
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

    /// The line's time comes from the worker's `Date`; every field must land where the
    /// Unix time says, in both formats, across months, leap days and years.
    #[test]
    fn times_from_the_date_header_match_the_clock() {
        let mut cache = uring_common::http::DateCache::new();
        let mut secs = 0u64;
        while secs < 4_200_000_000 {
            let date = *cache.get(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
            for format in [AccessLogFormat::Combined, AccessLogFormat::Json] {
                let (mut want, mut got) = (String::new(), Vec::new());
                format_time(secs, format, &mut want);
                time_from_date(&date, format, &mut got);
                assert_eq!(String::from_utf8(got).unwrap(), want, "{secs}");
            }
            secs += 86_400 * 17 + 3_607;
        }
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
        assert!(
            w.buf.is_empty() && w.lines == 0,
            "the dropped lines are gone"
        );
    }

    /// A written buffer comes back and is the next one filled (no allocation per flush).
    #[test]
    fn the_writer_gives_buffers_back() {
        let dir = std::env::temp_dir().join(format!("uring-al-{}", std::process::id()));
        let path = dir.with_extension("log");
        let mut log = AccessLog::open(
            &Some(AccessLogTarget::File(path.clone())),
            AccessLogFormat::Combined,
        )
        .unwrap()
        .unwrap();
        let mut w = AccessLogWriter::new(log.sink());
        w.buf.extend_from_slice(b"one\n");
        let first = w.buf.as_ptr();
        w.flush();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let back = loop {
            if let Ok(b) = w.spare.1.try_recv() {
                break b;
            }
            assert!(
                std::time::Instant::now() < end,
                "the buffer never came back"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert_eq!((back.as_ptr(), back.len()), (first, 0));
        w.spare.0.send(back).unwrap();
        w.buf.extend_from_slice(b"two\n");
        w.flush();
        assert_eq!(w.buf.as_ptr(), first, "the returned buffer is filled next");
        drop(w);
        log.close();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
        let _ = std::fs::remove_file(path);
    }
}
