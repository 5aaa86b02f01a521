//! Content codings: which one a request accepts (`Accept-Encoding`, RFC 9110 12.5.3),
//! which responses are worth compressing, and gzip/zstd compression of a whole body.
//!
//! Two users: precompressed siblings of static files (`a.js.br`, `.zst`, `.gz`, nginx's
//! `gzip_static`) chosen in `static_files.rs`, and on-the-fly compression (`--compress`)
//! of in-memory bodies, done by the [`ResponseWriter`](crate::response::ResponseWriter)
//! for built-in answers and by the file opener thread, once per file version, for static
//! files. A body is compressed whole, so the response keeps its `Content-Length` (and
//! HTTP/1.1 keep-alive without chunking, HTTP/2 a known length); streamed file bodies
//! above [`Compression::max_length`] go out as they are.

use std::io::Write as _;

/// A content coding the server can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br = 0,
    Zstd = 1,
    Gzip = 2,
}

impl Coding {
    /// In order of preference when a client accepts several equally (smallest first).
    pub const PREFERENCE: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The file name suffix of a precompressed sibling.
    pub fn suffix(self) -> &'static [u8] {
        match self {
            Coding::Br => b".br",
            Coding::Zstd => b".zst",
            Coding::Gzip => b".gz",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of codings (what is available for a response, or configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Codings(u8);

impl Codings {
    pub const NONE: Codings = Codings(0);

    pub fn with(self, c: Coding) -> Codings {
        Codings(self.0 | c.bit())
    }

    pub fn contains(self, c: Coding) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `gzip,zstd` (the `--compress` value): only the codings we compress on the fly.
    pub fn parse_list(s: &str) -> Result<Codings, String> {
        let mut set = Codings::NONE;
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            set = set.with(match item {
                "gzip" => Coding::Gzip,
                "zstd" => Coding::Zstd,
                _ => {
                    return Err(format!(
                        "'{item}': on-the-fly compression is gzip or zstd (brotli only as \
                         precompressed .br files)"
                    ))
                }
            });
        }
        if set.is_empty() {
            return Err("name gzip, zstd or both, e.g. gzip,zstd".into());
        }
        Ok(set)
    }
}

/// What a request's `Accept-Encoding` says, as q-values in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// br, zstd, gzip (by [`Coding`] index).
    q: [u16; 3],
    /// `identity`'s q-value; `None` when not named (then `*`'s, else acceptable).
    identity: Option<u16>,
}

impl Accepted {
    /// Parse the field (`None`: absent, which accepts identity only in practice: RFC 9110
    /// allows any coding then, but every server sends identity).
    pub fn parse(field: Option<&[u8]>) -> Accepted {
        let mut q = [0u16; 3];
        let mut named = [false; 3];
        let (mut identity, mut star) = (None, None);
        for item in field.unwrap_or_default().split(|&c| c == b',') {
            let mut parts = item.split(|&c| c == b';');
            let token = parts.next().unwrap_or_default().trim_ascii();
            if token.is_empty() {
                continue;
            }
            let mut weight = 1000;
            for p in parts {
                let p = p.trim_ascii();
                if let Some(v) = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")) {
                    weight = parse_qvalue(v).unwrap_or(0);
                }
            }
            let coding = if token.eq_ignore_ascii_case(b"br") {
                Some(Coding::Br)
            } else if token.eq_ignore_ascii_case(b"zstd") {
                Some(Coding::Zstd)
            } else if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
                Some(Coding::Gzip)
            } else if token.eq_ignore_ascii_case(b"identity") {
                identity = Some(weight);
                None
            } else if token == b"*" {
                star = Some(weight);
                None
            } else {
                None
            };
            if let Some(c) = coding {
                q[c as usize] = weight;
                named[c as usize] = true;
            }
        }
        if let Some(s) = star {
            for (i, n) in named.iter().enumerate() {
                if !n {
                    q[i] = s;
                }
            }
        }
        Accepted {
            q,
            identity: identity.or(star),
        }
    }

    /// The coding to send among `available`, or `None` for the identity: the highest
    /// q-value wins, identity named with a higher q beats the codings, and ties go to the
    /// codings in [`Coding::PREFERENCE`] order.
    pub fn choose(&self, available: Codings) -> Option<Coding> {
        let best = Coding::PREFERENCE
            .iter()
            .copied()
            .filter(|&c| available.contains(c) && self.q[c as usize] > 0)
            .max_by_key(|&c| (self.q[c as usize], std::cmp::Reverse(c as u8)))?;
        match self.identity {
            Some(id) if id > self.q[best as usize] => None,
            _ => Some(best),
        }
    }

    /// Whether the client said it takes no unencoded answer (`identity;q=0`, or `*;q=0`
    /// without naming identity). Then compression ignores its size floor.
    pub fn refuses_identity(&self) -> bool {
        self.identity == Some(0)
    }

    /// Whether any coding at all is accepted (q > 0).
    pub fn any(&self) -> bool {
        self.q.iter().any(|&q| q > 0)
    }
}

/// RFC 9110 12.4.2: `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let v = v.trim_ascii();
    let (int, frac) = match v.iter().position(|&c| c == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| (d - b'0') as u16);
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `--compress`: what on-the-fly compression does (off unless codings are named).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub codings: Codings,
    /// Bodies shorter than this go out as they are (nginx's `gzip_min_length`).
    pub min_length: u64,
    /// Static files larger than this are not compressed on the fly (they stream).
    pub max_length: u64,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            codings: Codings::NONE,
            min_length: 256,
            max_length: 1024 * 1024,
        }
    }
}

impl Compression {
    pub fn is_on(&self) -> bool {
        !self.codings.is_empty()
    }

    /// What a response writer needs to compress the answer to a request with this
    /// `Accept-Encoding`.
    pub fn negotiate(&self, accept_encoding: Option<&[u8]>) -> Negotiated {
        Negotiated {
            accepted: Accepted::parse(accept_encoding),
            codings: self.codings,
            min_length: self.min_length,
        }
    }
}

/// Compression settings met with one request's `Accept-Encoding` (see
/// `ResponseWriter::compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub accepted: Accepted,
    pub codings: Codings,
    pub min_length: u64,
}

impl Negotiated {
    /// Whether an answer of this status, type and length is compressed when the client
    /// accepts it, and so varies by `Accept-Encoding`.
    pub fn applies(&self, status: u16, content_type: &[u8], len: u64) -> bool {
        status == 200
            && len > 0
            && (len >= self.min_length || self.accepted.refuses_identity())
            && compressible(content_type)
    }
}

/// Whether a body of this `Content-Type` is worth compressing: text, JSON, JavaScript,
/// XML, SVG and a few other textual types; never images, video, archives or fonts that
/// are compressed already.
pub fn compressible(content_type: &[u8]) -> bool {
    let t = content_type
        .split(|&c| c == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let lower = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
    let ends = |s: &[u8]| t.len() >= s.len() && t[t.len() - s.len()..].eq_ignore_ascii_case(s);
    lower(b"text/")
        || ends(b"+json")
        || ends(b"+xml")
        || [
            &b"application/json"[..],
            b"application/javascript",
            b"application/x-javascript",
            b"application/xml",
            b"application/wasm",
            b"application/manifest+json",
            b"image/svg+xml",
            b"image/x-icon",
            b"font/ttf",
            b"font/otf",
        ]
        .iter()
        .any(|m| t.eq_ignore_ascii_case(m))
}

/// How hard to try: per response (the worker waits) or once per file version (the
/// opener thread compresses, every later request reuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    PerResponse,
    Cached,
}

/// `body` compressed with `coding` (gzip or zstd; br is only ever precompressed).
pub fn compress(coding: Coding, body: &[u8], effort: Effort) -> Option<Vec<u8>> {
    match coding {
        Coding::Gzip => {
            // nginx's gzip_comp_level defaults to 1; once per file, 6 costs nothing later.
            let level = match effort {
                Effort::PerResponse => 1,
                Effort::Cached => 6,
            };
            let out = Vec::with_capacity(body.len() / 3 + 64);
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
            enc.write_all(body).ok()?;
            enc.finish().ok()
        }
        Coding::Zstd => {
            let level = match effort {
                Effort::PerResponse => 1,
                Effort::Cached => 6,
            };
            zstd::bulk::compress(body, level).ok()
        }
        Coding::Br => None,
    }
}

/// The weak form of an entity tag (`W/"..."`): a compressed body is not byte-identical
/// across compressor versions or levels, so its validator is weak (as nginx does).
pub fn weak_etag(etag: &[u8]) -> Vec<u8> {
    if etag.starts_with(b"W/") {
        return etag.to_vec();
    }
    let mut w = Vec::with_capacity(etag.len() + 2);
    w.extend_from_slice(b"W/");
    w.extend_from_slice(etag);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Codings = Codings(0b111);

    fn choose(field: &str, available: Codings) -> Option<Coding> {
        Accepted::parse(Some(field.as_bytes())).choose(available)
    }

    #[test]
    fn preference_and_q_values() {
        use Coding::*;
        assert_eq!(choose("gzip, deflate, br, zstd", ALL), Some(Br));
        assert_eq!(choose("gzip, zstd", ALL), Some(Zstd));
        assert_eq!(choose("gzip", ALL), Some(Gzip));
        assert_eq!(choose("x-gzip", ALL), Some(Gzip));
        assert_eq!(choose("br;q=0.5, gzip", ALL), Some(Gzip));
        assert_eq!(choose("br;q=0.5, gzip;q=0.4", ALL), Some(Br));
        assert_eq!(choose("br;q=0, gzip;q=0.1", ALL), Some(Gzip));
        assert_eq!(choose("BR;Q=1.000", ALL), Some(Br));
        assert_eq!(choose("*", ALL), Some(Br));
        assert_eq!(choose("*;q=0.5, br;q=0", ALL), Some(Zstd));
        assert_eq!(
            choose("gzip;q=0.5, identity", ALL),
            None,
            "identity q=1 wins"
        );
        assert_eq!(choose("gzip;q=0.5, identity;q=0.5", ALL), Some(Gzip), "tie");
        assert_eq!(choose("gzip;q=0.5", ALL), Some(Gzip), "identity not named");
        assert_eq!(choose("identity", ALL), None);
        assert_eq!(choose("", ALL), None);
        assert_eq!(choose("deflate", ALL), None);
        assert_eq!(choose("gzip;q=2", ALL), None, "a bad q-value counts as 0");
        assert_eq!(choose("br, gzip", Codings::NONE.with(Gzip)), Some(Gzip));
        assert_eq!(choose("br", Codings::NONE.with(Gzip)), None);
        assert_eq!(Accepted::parse(None).choose(ALL), None);
        assert!(Accepted::parse(Some(b"gzip, identity;q=0")).refuses_identity());
        assert!(Accepted::parse(Some(b"gzip, *;q=0")).refuses_identity());
        assert!(!Accepted::parse(Some(b"gzip, *;q=0, identity")).refuses_identity());
        assert!(!Accepted::parse(Some(b"gzip")).refuses_identity());
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_qvalue(b"1"), Some(1000));
        assert_eq!(parse_qvalue(b"1.000"), Some(1000));
        assert_eq!(parse_qvalue(b"0.5"), Some(500));
        assert_eq!(parse_qvalue(b"0.001"), Some(1));
        assert_eq!(parse_qvalue(b"0"), Some(0));
        assert_eq!(parse_qvalue(b"1.5"), None);
        assert_eq!(parse_qvalue(b"0.0001"), None);
        assert_eq!(parse_qvalue(b"x"), None);
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html; charset=utf-8",
            "application/json",
            "text/javascript; charset=utf-8",
            "application/xml",
            "image/svg+xml",
            "application/ld+json",
            "TEXT/PLAIN",
        ] {
            assert!(compressible(t.as_bytes()), "{t}");
        }
        for t in [
            "image/png",
            "application/gzip",
            "video/mp4",
            "font/woff2",
            "",
        ] {
            assert!(!compressible(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn round_trips() {
        use std::io::Read;
        let body = b"hello hello hello hello hello hello hello".repeat(20);
        for effort in [Effort::PerResponse, Effort::Cached] {
            let gz = compress(Coding::Gzip, &body, effort).unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, body);
            let zs = compress(Coding::Zstd, &body, effort).unwrap();
            assert_eq!(zstd::bulk::decompress(&zs, body.len()).unwrap(), body);
            assert!(gz.len() < body.len() / 4 && zs.len() < body.len() / 4);
        }
        assert_eq!(compress(Coding::Br, &body, Effort::Cached), None);
        assert_eq!(weak_etag(b"\"a\""), b"W/\"a\"");
        assert_eq!(weak_etag(b"W/\"a\""), b"W/\"a\"");
    }

    #[test]
    fn coding_lists() {
        let both = Codings::parse_list("gzip,zstd").unwrap();
        assert!(both.contains(Coding::Gzip) && both.contains(Coding::Zstd));
        assert!(!both.contains(Coding::Br));
        assert!(Codings::parse_list("br").is_err());
        assert!(Codings::parse_list("").is_err());
    }
}
