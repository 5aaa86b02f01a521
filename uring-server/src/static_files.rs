//! Static files under `--root`: GET and HEAD, `index.html` for directories, Content-Type
//! by extension, ETag / Last-Modified with conditional requests (304), one byte range
//! (206 / 416), and no way out of the root.
//!
//! Containment is enforced by the kernel, not by string checks alone: every file is
//! opened with `openat2(RESOLVE_BENEATH)` relative to the root's directory fd, so `..`
//! (literal or percent-encoded) and symlinks that lead outside fail with EXDEV. The string
//! checks in front of it only give clearer answers (400 for NUL, 404 for dot-dot).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use uring_common::http::DateCache;

use crate::handler::{FileBody, Request, ResponseWriter};

/// The root directory, held open so containment does not depend on its path.
#[derive(Clone)]
pub struct StaticFiles {
    root: Arc<OwnedFd>,
}

impl StaticFiles {
    pub fn new(root: &Path) -> io::Result<Self> {
        let c = CString::new(root.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: c is a valid C string; open returns a new fd or -1.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(StaticFiles {
            root: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
        })
    }

    pub fn serve(&self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        if resp.only_get_and_head(req.method()) {
            return;
        }
        let rel = match decode_path(req.path()) {
            Ok(r) => r,
            Err(status) => return error(resp, status),
        };
        let (file, meta, rel) = match self.open(rel, req.path().ends_with('/')) {
            Ok(x) => x,
            Err(301) => {
                // A directory named without its slash: relative links in its index.html
                // only resolve against the slashed URL, so send the client there.
                let mut location = req.path().to_string();
                location.push('/');
                if let Some(q) = req.query() {
                    location.push('?');
                    location.push_str(q);
                }
                return resp.respond(
                    301,
                    &[
                        ("Location", location.as_bytes()),
                        ("Content-Type", b"text/plain"),
                    ],
                    b"Moved Permanently\n",
                );
            }
            Err(status) => return error(resp, status),
        };
        let size = meta.len();
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let secs = mtime
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let mut etag_buf = [0u8; 40];
        let etag = format_etag(&mut etag_buf, secs, size);
        let mut dates = DateCache::new();
        let last_modified: [u8; 29] = *dates.get(UNIX_EPOCH + Duration::from_secs(secs));
        let ctype = content_type(&rel);

        if not_modified(req, etag, secs) {
            return resp.respond(
                304,
                &[("ETag", etag), ("Last-Modified", &last_modified)],
                b"",
            );
        }

        let range = match req.header("Range") {
            Some(r) if if_range_ok(req, etag, &last_modified) => parse_range(r, size),
            _ => RangeAnswer::Full,
        };
        let base: [(&str, &[u8]); 4] = [
            ("Content-Type", ctype),
            ("Last-Modified", &last_modified),
            ("ETag", etag),
            ("Accept-Ranges", b"bytes"),
        ];
        match range {
            RangeAnswer::Full => resp.respond_file(
                200,
                &base,
                FileBody {
                    file,
                    offset: 0,
                    len: size,
                },
            ),
            RangeAnswer::Partial(start, end) => {
                let cr = format!("bytes {start}-{end}/{size}");
                let mut h: [(&str, &[u8]); 5] = [("", b""); 5];
                h[..4].copy_from_slice(&base);
                h[4] = ("Content-Range", cr.as_bytes());
                resp.respond_file(
                    206,
                    &h,
                    FileBody {
                        file,
                        offset: start,
                        len: end - start + 1,
                    },
                )
            }
            RangeAnswer::Unsatisfiable => {
                let cr = format!("bytes */{size}");
                resp.respond(
                    416,
                    &[
                        ("Content-Range", cr.as_bytes()),
                        ("Content-Type", b"text/plain"),
                    ],
                    b"Range Not Satisfiable\n",
                )
            }
        }
    }

    /// Open `rel` beneath the root; directories answer with their `index.html`.
    /// Returns the file, its metadata and the path actually opened (for its type);
    /// `Err(301)` for a directory asked for without its trailing slash.
    fn open(&self, rel: Vec<u8>, slash: bool) -> Result<(File, std::fs::Metadata, Vec<u8>), u16> {
        let file = self.open_beneath(if rel.is_empty() { b"." } else { &rel })?;
        let meta = file.metadata().map_err(|_| 404u16)?;
        if meta.is_dir() {
            if !slash {
                return Err(301);
            }
            let mut index = rel;
            if !index.is_empty() {
                index.push(b'/');
            }
            index.extend_from_slice(b"index.html");
            let file = self.open_beneath(&index)?;
            let meta = file.metadata().map_err(|_| 404u16)?;
            if !meta.is_file() {
                return Err(404);
            }
            return Ok((file, meta, index));
        }
        if !meta.is_file() {
            return Err(404);
        }
        Ok((file, meta, rel))
    }

    fn open_beneath(&self, rel: &[u8]) -> Result<File, u16> {
        let c = CString::new(rel).map_err(|_| 400u16)?;
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
        const RESOLVE_BENEATH: u64 = 0x08;
        let how = OpenHow {
            flags: (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64,
            mode: 0,
            resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: openat2 reads `how` (size given) and the C string; returns an fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.root.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => 403,
                _ => 404,
            });
        }
        // SAFETY: a fresh fd we own.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }
}

fn error(resp: &mut ResponseWriter<'_>, status: u16) {
    let body: &[u8] = match status {
        400 => b"Bad Request\n",
        403 => b"Forbidden\n",
        _ => b"Not Found\n",
    };
    resp.respond(status, &[("Content-Type", b"text/plain")], body);
}

/// Percent-decode the path and reduce it to a relative path of plain segments. `..`
/// anywhere (after decoding) is refused; NUL is a 400.
fn decode_path(path: &str) -> Result<Vec<u8>, u16> {
    let raw = path.as_bytes();
    if raw.first() != Some(&b'/') {
        return Err(400);
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                raw.get(i + 1).and_then(|&c| hex(c)),
                raw.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => decoded.push((h * 16 + l) as u8),
                _ => return Err(400),
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    if decoded.contains(&0) {
        return Err(400);
    }
    let mut out = Vec::with_capacity(decoded.len());
    for seg in decoded.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => return Err(404),
            s => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(s);
            }
        }
    }
    Ok(out)
}

fn content_type(rel: &[u8]) -> &'static [u8] {
    let name = rel.rsplit(|&c| c == b'/').next().unwrap_or(b"");
    let ext = match name.iter().rposition(|&c| c == b'.') {
        Some(i) => &name[i + 1..],
        None => b"",
    };
    let lower: Vec<u8> = ext.to_ascii_lowercase();
    match &lower[..] {
        b"html" | b"htm" => b"text/html; charset=utf-8",
        b"css" => b"text/css; charset=utf-8",
        b"js" | b"mjs" => b"text/javascript; charset=utf-8",
        b"json" => b"application/json",
        b"txt" => b"text/plain; charset=utf-8",
        b"xml" => b"application/xml",
        b"svg" => b"image/svg+xml",
        b"png" => b"image/png",
        b"jpg" | b"jpeg" => b"image/jpeg",
        b"gif" => b"image/gif",
        b"webp" => b"image/webp",
        b"ico" => b"image/x-icon",
        b"wasm" => b"application/wasm",
        b"pdf" => b"application/pdf",
        b"woff" => b"font/woff",
        b"woff2" => b"font/woff2",
        b"mp4" => b"video/mp4",
        b"webm" => b"video/webm",
        b"mp3" => b"audio/mpeg",
        b"gz" => b"application/gzip",
        b"zip" => b"application/zip",
        b"tar" => b"application/x-tar",
        b"csv" => b"text/csv; charset=utf-8",
        b"md" => b"text/markdown; charset=utf-8",
        _ => b"application/octet-stream",
    }
}

fn format_etag(buf: &mut [u8; 40], secs: u64, size: u64) -> &[u8] {
    use std::io::Write;
    let mut cur = io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "\"{secs:x}-{size:x}\"");
    let n = cur.position() as usize;
    &buf[..n]
}

/// RFC 9110 13.1.2: If-None-Match wins over If-Modified-Since; weak comparison.
fn not_modified(req: &Request<'_>, etag: &[u8], mtime_secs: u64) -> bool {
    if let Some(inm) = req.header("If-None-Match") {
        return etag_list_matches(inm, etag);
    }
    if let Some(ims) = req.header("If-Modified-Since") {
        if let Some(t) = parse_http_date(ims) {
            return mtime_secs <= t;
        }
    }
    false
}

fn etag_list_matches(list: &[u8], etag: &[u8]) -> bool {
    list.split(|&c| c == b',').any(|item| {
        let item = item.trim_ascii();
        let item = item.strip_prefix(b"W/").unwrap_or(item);
        item == b"*" || item == etag
    })
}

fn if_range_ok(req: &Request<'_>, etag: &[u8], last_modified: &[u8]) -> bool {
    match req.header("If-Range") {
        None => true,
        Some(v) => {
            let v = v.trim_ascii();
            v == etag || v == last_modified
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    Full,
    /// Inclusive byte positions.
    Partial(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 14.1.2). Several ranges or another unit: ignore the
/// header and send the whole file, which the RFC allows.
fn parse_range(value: &[u8], size: u64) -> RangeAnswer {
    let Some(spec) = value.trim_ascii().strip_prefix(b"bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(&b',') {
        return RangeAnswer::Full;
    }
    let Some(dash) = spec.iter().position(|&c| c == b'-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (spec[..dash].trim_ascii(), spec[dash + 1..].trim_ascii());
    let num = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let Some(n) = num(last) else {
            return RangeAnswer::Full;
        };
        if n == 0 || size == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Partial(size.saturating_sub(n), size - 1);
    }
    let Some(start) = num(first) else {
        return RangeAnswer::Full;
    };
    let end = if last.is_empty() {
        size.saturating_sub(1)
    } else {
        match num(last) {
            Some(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return RangeAnswer::Full,
        }
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial(start, end)
}

/// Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into seconds since the epoch.
// TODO(common): a date parser belongs beside DateCache in common::http::date.
fn parse_http_date(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.len() != 29 || &v[3..5] != b", " || &v[25..] != b" GMT" {
        return None;
    }
    let n = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u64)
        })
    };
    let day = n(&v[5..7])?;
    let month = match &v[8..11] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let year = n(&v[12..16])? as i64;
    let (h, m, s) = (n(&v[17..19])?, n(&v[20..22])?, n(&v[23..25])?);
    if h > 23 || m > 59 || s > 60 || day == 0 || day > 31 {
        return None;
    }
    // Days from civil (proleptic Gregorian), Howard Hinnant's well-known formula.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    if days < 0 {
        return None;
    }
    Some(days as u64 * 86400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_escapes() {
        assert_eq!(decode_path("/a/b.txt").unwrap(), b"a/b.txt");
        assert_eq!(decode_path("/").unwrap(), b"");
        assert_eq!(decode_path("/a%20b").unwrap(), b"a b");
        assert_eq!(decode_path("/../etc/passwd"), Err(404));
        assert_eq!(decode_path("/%2e%2e/etc/passwd"), Err(404));
        assert_eq!(decode_path("/a/%2E%2E/%2e%2e/x"), Err(404));
        assert_eq!(decode_path("/a%00b"), Err(400));
        assert_eq!(decode_path("/a%zz"), Err(400));
        assert_eq!(decode_path("/./a//b").unwrap(), b"a/b");
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(b"bytes=0-9", 100), RangeAnswer::Partial(0, 9));
        assert_eq!(parse_range(b"bytes=90-", 100), RangeAnswer::Partial(90, 99));
        assert_eq!(parse_range(b"bytes=-10", 100), RangeAnswer::Partial(90, 99));
        assert_eq!(parse_range(b"bytes=-500", 100), RangeAnswer::Partial(0, 99));
        assert_eq!(
            parse_range(b"bytes=50-500", 100),
            RangeAnswer::Partial(50, 99)
        );
        assert_eq!(parse_range(b"bytes=100-", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-1,5-6", 100), RangeAnswer::Full);
        assert_eq!(parse_range(b"items=0-1", 100), RangeAnswer::Full);
        assert_eq!(parse_range(b"bytes=9-3", 100), RangeAnswer::Full);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn etag_lists() {
        assert!(etag_list_matches(b"\"a\", W/\"b\"", b"\"b\""));
        assert!(etag_list_matches(b"*", b"\"b\""));
        assert!(!etag_list_matches(b"\"a\"", b"\"b\""));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"x/index.HTML"), b"text/html; charset=utf-8");
        assert_eq!(content_type(b"noext"), b"application/octet-stream");
    }
}
