//! Request templates: `{SEQ}`, `{RAND:LO-HI}`, `{UUID}` and `{LINE:FILE}` in a request's
//! bytes (URL, headers, body; built, from a targets file or raw), so that every request
//! can differ (cache-busting, unique keys for write benchmarks).
//!
//! A request with placeholders is compiled once at start into segments: literal ranges
//! of the serialized request and the placeholders between them, and the most bytes one
//! expansion can take. Each send grows the connection's send buffer once by that bound
//! and writes the segments straight into it (digits, hex and lines by table and copy,
//! no formatting machinery), then cuts it to what was written: nothing is allocated and
//! nothing is checked per segment. A body with placeholders is written after the head in
//! place, and its length patched into `Content-Length`'s slot, sized at compile time for
//! the longest body: when the body is shorter by a digit, the rest of the request moves
//! back by that digit. Requests without placeholders are not templates and are copied as
//! before.
//!
//! Values: `{SEQ}` is the request's sequence number, distinct across the threads of a run
//! (thread `i` of `t` numbers `i, i + t, i + 2t, ...`; with `-n N` the `N` requests get `N`
//! distinct numbers) and across the shards of a run on several machines (shard `s` of
//! `S` multiplies by `S` and adds `s`); `{RAND:LO-HI}` a uniform integer in `LO..=HI`;
//! `{UUID}` a random version-4 UUID; `{LINE:FILE}` the line of FILE at the sequence
//! number, modulo the line count (read once at start). Braces
//! that do not open one of these are sent as written (JSON bodies keep theirs).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::shard::Shard;

/// A file's lines for `{LINE:FILE}`: all in one buffer, with where each ends (the buffer
/// runs [`CHUNK`] bytes past the last line, for [`put_chunked`]).
#[derive(Debug)]
pub struct Lines {
    text: Vec<u8>,
    ends: Vec<u32>,
}

impl Lines {
    fn parse(path: &Path, text: Vec<u8>) -> Result<Lines, String> {
        let mut kept = Vec::with_capacity(text.len());
        let mut ends = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            kept.extend_from_slice(line);
            ends.push(kept.len() as u32);
        }
        if ends.is_empty() {
            return Err(format!("{{LINE:{}}}: the file has no line", path.display()));
        }
        kept.resize(kept.len() + CHUNK, 0);
        Ok(Lines { text: kept, ends })
    }

    /// Line `k` (modulo the count): where it starts in `text`, and its length.
    #[inline(always)]
    fn at(&self, k: u64) -> (usize, usize) {
        let i = (k % self.ends.len() as u64) as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        (start, self.ends[i] as usize - start)
    }

    fn get(&self, k: u64) -> &[u8] {
        let (start, len) = self.at(k);
        &self.text[start..start + len]
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends.len() as u64).map(|k| self.get(k))
    }

    fn longest(&self) -> usize {
        self.iter().map(<[u8]>::len).max().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(Range<usize>),
    Seq,
    /// `lo + (a random value below count)`; `count` 0 stands for all 2^64 values.
    Rand {
        lo: u64,
        count: u64,
    },
    Uuid,
    Line(Arc<Lines>),
    /// The expanded body's length (the value of `Content-Length`).
    BodyLength,
}

/// A request with placeholders, compiled.
#[derive(Debug, Clone)]
pub struct Template {
    /// The request as written, and [`CHUNK`] bytes more (for [`put_chunked`]).
    text: Vec<u8>,
    /// The files of `{LINE:FILE}` placeholders ([`Value::Line`] indexes them).
    lines: Vec<Arc<Lines>>,
    head: Vec<Step>,
    /// Empty when the body has no placeholder (it is then a literal in `head`).
    body: Vec<Step>,
    /// The most bytes one expansion writes (head and body) and the room its copies run
    /// past the end ([`SLACK`]).
    room: usize,
    /// The digits of `Content-Length`'s slot: those of the longest body.
    length_digits: usize,
}

/// A literal run of the request, then a value: what the expansion does per step.
#[derive(Debug, Clone, Copy)]
struct Step {
    start: u32,
    len: u32,
    value: Value,
}

/// A placeholder's value as [`Step`] writes it.
#[derive(Debug, Clone, Copy)]
enum Value {
    Nothing,
    Seq,
    /// `lo + (a random value below count)`; `count` 0 stands for all 2^64 values.
    Rand {
        lo: u64,
        count: u64,
    },
    Uuid,
    Line(u32),
    BodyLength,
}

/// The literals as steps, each with the placeholder after it (literals in a row are one
/// step when they touch, as `Content-Length`'s split leaves them).
fn steps(segments: &[Segment], lines: &mut Vec<Arc<Lines>>) -> Vec<Step> {
    let mut out = Vec::with_capacity(segments.len());
    let mut literal: Option<Range<usize>> = None;
    for s in segments {
        let value = match s {
            Segment::Literal(r) => {
                literal = match literal.take() {
                    Some(l) if l.end == r.start => Some(l.start..r.end),
                    Some(l) => {
                        out.push(step(l, Value::Nothing));
                        Some(r.clone())
                    }
                    None => Some(r.clone()),
                };
                continue;
            }
            Segment::Seq => Value::Seq,
            Segment::Rand { lo, count } => Value::Rand {
                lo: *lo,
                count: *count,
            },
            Segment::Uuid => Value::Uuid,
            Segment::Line(l) => {
                let i = match lines.iter().position(|x| Arc::ptr_eq(x, l)) {
                    Some(i) => i,
                    None => {
                        lines.push(l.clone());
                        lines.len() - 1
                    }
                };
                Value::Line(i as u32)
            }
            Segment::BodyLength => Value::BodyLength,
        };
        out.push(step(literal.take().unwrap_or(0..0), value));
    }
    if let Some(l) = literal {
        out.push(step(l, Value::Nothing));
    }
    out
}

fn step(literal: Range<usize>, value: Value) -> Step {
    Step {
        start: literal.start as u32,
        len: literal.len() as u32,
        value,
    }
}

/// Files read for `{LINE:FILE}`, once each however many requests name them.
pub type LineFiles = HashMap<PathBuf, Arc<Lines>>;

/// Whether `bytes` has a placeholder at all (the cheap check before compiling).
pub fn has_placeholder(bytes: &[u8]) -> bool {
    [&b"{SEQ}"[..], b"{UUID}", b"{RAND:", b"{LINE:"]
        .iter()
        .any(|p| bytes.windows(p.len()).any(|w| w == *p))
}

/// Compile a whole serialized request (head and body). `None`: no placeholder, send the
/// bytes as they are. Errors name the placeholder and what is wrong with it.
pub fn compile(bytes: &[u8], files: &mut LineFiles) -> Result<Option<Template>, String> {
    if !has_placeholder(bytes) {
        return Ok(None);
    }
    let head_end = find(bytes, b"\r\n\r\n").map_or(bytes.len(), |i| i + 4);
    let (head_bytes, body_bytes) = bytes.split_at(head_end);
    let body_segments = segments(body_bytes, head_end, files)?;
    let body_templated = body_segments
        .iter()
        .any(|s| !matches!(s, Segment::Literal(_)));
    let request_line_end = find(head_bytes, b"\r\n").unwrap_or(head_bytes.len());
    let mut head = segments(head_bytes, 0, files)?;
    for s in &head {
        if let Segment::Line(lines) = s {
            check_head_lines(lines)?;
        }
    }
    // In the request line a value may not hold a space (it would split the line).
    let mut at = 0;
    for s in &head {
        let spaced = |lines: &Lines| {
            lines
                .iter()
                .any(|l| l.iter().any(|&b| b == b' ' || b == b'\t'))
        };
        match s {
            Segment::Literal(r) => at = r.end,
            Segment::Line(lines) if at < request_line_end && spaced(lines) => {
                return Err(
                    "{LINE:FILE} in the request line: a line of the file holds a space or tab"
                        .into(),
                );
            }
            _ => {}
        }
    }
    if body_templated {
        head = with_body_length(bytes, head)?;
    } else {
        // The body is a literal: keep it in the head's segments.
        head.push(Segment::Literal(head_end..bytes.len()));
    }
    let body = if body_templated {
        body_segments
    } else {
        Vec::new()
    };
    let body_max = max_len(&body);
    let length_digits = decimal_len(body_max as u64);
    let mut text = bytes.to_vec();
    text.resize(text.len() + CHUNK, 0);
    let mut lines = Vec::new();
    Ok(Some(Template {
        text,
        room: max_len(&head) + length_digits + body_max + SLACK,
        head: steps(&head, &mut lines),
        body: steps(&body, &mut lines),
        lines,
        length_digits,
    }))
}

/// The most bytes `segments` write (`BodyLength` counted by the caller).
fn max_len(segments: &[Segment]) -> usize {
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(r) => r.len(),
            Segment::Seq => decimal_len(u64::MAX),
            Segment::Rand { lo, count } => decimal_len(lo.wrapping_add(count.wrapping_sub(1))),
            Segment::Uuid => UUID_LEN,
            Segment::Line(lines) => lines.longest(),
            Segment::BodyLength => 0,
        })
        .sum()
}

/// A header value may not hold CR, LF or NUL: a line that does would split the head.
fn check_head_lines(lines: &Lines) -> Result<(), String> {
    if lines
        .iter()
        .any(|l| l.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0))
    {
        return Err("{LINE:FILE} in the head: a line holds CR, LF or NUL".into());
    }
    Ok(())
}

/// Replace the literal digits of `Content-Length` in the head by the body's length.
fn with_body_length(bytes: &[u8], head: Vec<Segment>) -> Result<Vec<Segment>, String> {
    let lower: Vec<u8> = bytes.to_ascii_lowercase();
    let Some(name) = find(&lower, b"\r\ncontent-length:") else {
        return Err(
            "placeholders in the body need a Content-Length body (not chunked, not empty)".into(),
        );
    };
    let mut value = name + b"\r\ncontent-length:".len();
    while bytes.get(value) == Some(&b' ') {
        value += 1;
    }
    let mut value_end = value;
    while bytes.get(value_end).is_some_and(u8::is_ascii_digit) {
        value_end += 1;
    }
    let mut out = Vec::with_capacity(head.len() + 2);
    for s in head {
        match s {
            Segment::Literal(r) if r.start <= value && value_end <= r.end => {
                if r.start < value {
                    out.push(Segment::Literal(r.start..value));
                }
                out.push(Segment::BodyLength);
                if value_end < r.end {
                    out.push(Segment::Literal(value_end..r.end));
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Split `part` (at `offset` in the request) into literals and placeholders.
fn segments(part: &[u8], offset: usize, files: &mut LineFiles) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut lit = 0;
    let mut i = 0;
    while i < part.len() {
        if part[i] != b'{' {
            i += 1;
            continue;
        }
        let rest = &part[i..];
        let close = rest.iter().position(|&b| b == b'}');
        let parsed = match close {
            Some(c) => placeholder(&rest[1..c], files)?,
            None => None,
        };
        match (parsed, close) {
            (Some(seg), Some(c)) => {
                if lit < i {
                    out.push(Segment::Literal(offset + lit..offset + i));
                }
                out.push(seg);
                i += c + 1;
                lit = i;
            }
            _ => i += 1,
        }
    }
    if lit < part.len() {
        out.push(Segment::Literal(offset + lit..offset + part.len()));
    }
    Ok(out)
}

/// The placeholder between braces, `None` for text that is not one.
fn placeholder(inner: &[u8], files: &mut LineFiles) -> Result<Option<Segment>, String> {
    let inner = match std::str::from_utf8(inner) {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    if inner == "SEQ" {
        return Ok(Some(Segment::Seq));
    }
    if inner == "UUID" {
        return Ok(Some(Segment::Uuid));
    }
    if let Some(range) = inner.strip_prefix("RAND:") {
        let bad =
            || format!("{{{inner}}}: expected {{RAND:LO-HI}} with LO <= HI, e.g. {{RAND:1-1000}}");
        let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
        let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(bad());
        }
        return Ok(Some(Segment::Rand {
            lo,
            count: (hi - lo).wrapping_add(1),
        }));
    }
    if let Some(file) = inner.strip_prefix("LINE:") {
        if file.is_empty() {
            return Err("{LINE:}: name the file, e.g. {LINE:keys.txt}".into());
        }
        let path = PathBuf::from(file);
        if let Some(lines) = files.get(&path) {
            return Ok(Some(Segment::Line(lines.clone())));
        }
        let text = std::fs::read(&path)
            .map_err(|e| format!("{{LINE:{file}}}: cannot read {file}: {e}"))?;
        let lines = Arc::new(Lines::parse(&path, text)?);
        files.insert(path, lines.clone());
        return Ok(Some(Segment::Line(lines)));
    }
    Ok(None)
}

/// One thread's placeholder values: its sequence numbers and its random generator.
#[derive(Debug)]
pub struct Expander {
    next_seq: u64,
    stride: u64,
    rng: u64,
    /// A whole request, for writers that take one slice (rustls).
    whole: Vec<u8>,
}

impl Expander {
    /// Thread `thread` of `threads` of `shard`; `seed` varies the random values (a run
    /// seeds it from the clock, so cache-busting values differ from run to run).
    pub fn new(thread: usize, threads: usize, shard: Shard, seed: u64) -> Expander {
        let shards = u64::from(shard.count.max(1));
        Expander {
            next_seq: u64::from(shard.index) + shards * thread as u64,
            stride: shards * threads.max(1) as u64,
            rng: seed ^ (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            whole: Vec::new(),
        }
    }

    fn random(&mut self) -> u64 {
        crate::rng::splitmix64(&mut self.rng)
    }

    /// Append one request of `t` to `out`, with fresh values.
    pub fn write(&mut self, t: &Template, out: &mut Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += self.stride;
        let start = out.len();
        // One bound for the whole request: no step checks for room, and nothing zeroed
        // first (every byte kept is written; what runs past is never read).
        out.reserve(t.room);
        let buf = &mut out.spare_capacity_mut()[..t.room];
        let mut at = 0;
        let mut slot = None;
        for step in &t.head {
            at = put_chunked(buf, at, &t.text, step.start as usize, step.len as usize);
            if let Value::BodyLength = step.value {
                slot = Some(at);
                at += t.length_digits;
            } else {
                at = self.value(t, step.value, seq, buf, at);
            }
        }
        let body_start = at;
        for step in &t.body {
            at = put_chunked(buf, at, &t.text, step.start as usize, step.len as usize);
            at = self.value(t, step.value, seq, buf, at);
        }
        if let Some(slot) = slot {
            let body_len = (at - body_start) as u64;
            let digits = decimal_len(body_len);
            let short = t.length_digits - digits;
            if short > 0 {
                buf.copy_within(slot + t.length_digits..at, slot + digits);
                at -= short;
            }
            // A number's copy runs past its digits, here over the head's rest: exact here.
            let mut number = [MaybeUninit::uninit(); 20];
            let end = put_decimal(&mut number, 0, body_len);
            buf[slot..slot + digits].copy_from_slice(&number[..end]);
        }
        // SAFETY: every byte of `buf[..at]` was written above: each step writes from where
        // the last one ended up to where it ends (copies and numbers run past, never
        // short), the body length's slot is written last, and a shorter body length moves
        // written bytes back over the slot's rest. `buf` is `out`'s spare capacity from
        // `start`, so `start + at` is within the capacity.
        unsafe { out.set_len(start + at) };
    }

    /// One request of `t` with fresh values, in a buffer reused from call to call.
    pub fn expand(&mut self, t: &Template) -> &[u8] {
        let mut whole = std::mem::take(&mut self.whole);
        whole.clear();
        self.write(t, &mut whole);
        self.whole = whole;
        &self.whole
    }

    /// Write `v` at `buf[at..]` (room is there: `Template::room`); where it ends.
    #[inline(always)]
    fn value(&mut self, t: &Template, v: Value, seq: u64, buf: &mut Spare, at: usize) -> usize {
        match v {
            Value::Nothing | Value::BodyLength => at,
            Value::Seq => put_decimal(buf, at, seq),
            Value::Rand { lo, count } => {
                let x = self.random();
                let v = match count {
                    0 => x,
                    n => lo + ((u128::from(x) * u128::from(n)) >> 64) as u64,
                };
                put_decimal(buf, at, v)
            }
            Value::Uuid => {
                let (hi, lo) = (self.random(), self.random());
                put_uuid(buf, at, (u128::from(hi) << 64) | u128::from(lo))
            }
            Value::Line(i) => {
                let lines = &t.lines[i as usize];
                let (start, len) = lines.at(seq);
                put_chunked(buf, at, &lines.text, start, len)
            }
        }
    }
}

/// The copies' unit: literals and lines go over in 16-byte moves, the last one running
/// past their end into what the next step overwrites (or the cut at the end drops).
const CHUNK: usize = 16;

/// How far past what it keeps an expansion may write: a chunk, or a number's 20 bytes.
const SLACK: usize = 32;

/// Where an expansion writes: the send buffer's capacity past its end (not zeroed first).
type Spare = [MaybeUninit<u8>];

/// Copy `src[start..start + len]` to `buf[at..]` in [`CHUNK`]s (`src` has a chunk's bytes
/// past it, `buf` the [`SLACK`]); where the copy ends.
#[inline(always)]
fn put_chunked(buf: &mut Spare, at: usize, src: &[u8], start: usize, len: usize) -> usize {
    let mut i = 0;
    while i < len {
        let to: &mut [MaybeUninit<u8>; CHUNK] =
            (&mut buf[at + i..at + i + CHUNK]).try_into().unwrap();
        let from: [u8; CHUNK] = src[start + i..start + i + CHUNK].try_into().unwrap();
        *to = from.map(MaybeUninit::new);
        i += CHUNK;
    }
    at + len
}

/// `00`, `01`, ..., `99`: two decimal digits per lookup.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// How many decimal digits `v` has.
#[inline(always)]
fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// `v` in decimal at `buf[at..]`, built from its last digit pair back on the stack and
/// moved in one 20-byte copy (the [`SLACK`] takes what runs past); where it ends.
#[inline]
fn put_decimal(buf: &mut Spare, at: usize, v: u64) -> usize {
    // The bytes after the digits go along unwritten; only the digits are kept.
    let mut digits = [MaybeUninit::<u8>::uninit(); 40];
    let mut n = v;
    let mut i = 20;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i] = MaybeUninit::new(DIGIT_PAIRS[pair]);
        digits[i + 1] = MaybeUninit::new(DIGIT_PAIRS[pair + 1]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i] = MaybeUninit::new(DIGIT_PAIRS[pair]);
        digits[i + 1] = MaybeUninit::new(DIGIT_PAIRS[pair + 1]);
    } else {
        i -= 1;
        digits[i] = MaybeUninit::new(b'0' + n as u8);
    }
    buf[at..at + 20].copy_from_slice(&digits[i..i + 20]);
    at + 20 - i
}

/// Each byte's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [HEX[b >> 4], HEX[b & 15]];
        b += 1;
    }
    t
};

const UUID_LEN: usize = 36;

/// Where each byte's two hex digits go in a UUID's text (dashes at 8, 13, 18 and 23).
const UUID_DIGITS_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// A version-4 (random) UUID from 128 random bits in RFC 9562's text form, at
/// `buf[at..]`; where it ends.
#[inline]
fn put_uuid(buf: &mut Spare, at: usize, random: u128) -> usize {
    const VERSION_MASK: u128 = 0xf << 76;
    const VARIANT_MASK: u128 = 0b11 << 62;
    let v = (random & !VERSION_MASK & !VARIANT_MASK) | (0x4 << 76) | (0b10 << 62);
    let text = &mut buf[at..at + UUID_LEN];
    for (&b, &i) in v.to_be_bytes().iter().zip(&UUID_DIGITS_AT) {
        let [high, low] = HEX_PAIRS[usize::from(b)];
        text[i] = MaybeUninit::new(high);
        text[i + 1] = MaybeUninit::new(low);
    }
    for i in [8, 13, 18, 23] {
        text[i] = MaybeUninit::new(b'-');
    }
    at + UUID_LEN
}

/// A template written once with the first values, for checks made at start.
pub fn sample(t: &Template) -> Vec<u8> {
    let mut out = Vec::new();
    Expander::new(0, 1, Shard::WHOLE, 0).write(t, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer of `n` bytes, all `fill`: written, so [`bytes`] may read it back.
    fn filled(fill: u8, n: usize) -> Vec<MaybeUninit<u8>> {
        vec![MaybeUninit::new(fill); n]
    }

    fn bytes(buf: &[MaybeUninit<u8>]) -> Vec<u8> {
        // SAFETY: every buffer here starts as `filled`: all its bytes are initialized.
        buf.iter().map(|b| unsafe { b.assume_init() }).collect()
    }

    fn compiled(bytes: &[u8]) -> Template {
        compile(bytes, &mut LineFiles::new())
            .unwrap()
            .expect("has placeholders")
    }

    fn expand(t: &Template, x: &mut Expander) -> String {
        let mut out = Vec::new();
        x.write(t, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_requests_are_not_templates() {
        let r = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{\"a\": {}}";
        assert!(compile(r, &mut LineFiles::new()).unwrap().is_none());
    }

    #[test]
    fn seq_in_the_url_counts_per_thread_interleaved() {
        let t = compiled(b"GET /item/{SEQ} HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut x0 = Expander::new(0, 2, Shard::WHOLE, 7);
        let mut x1 = Expander::new(1, 2, Shard::WHOLE, 7);
        assert_eq!(
            expand(&t, &mut x0),
            "GET /item/0 HTTP/1.1\r\nHost: a\r\n\r\n"
        );
        assert_eq!(
            expand(&t, &mut x0),
            "GET /item/2 HTTP/1.1\r\nHost: a\r\n\r\n"
        );
        assert_eq!(
            expand(&t, &mut x1),
            "GET /item/1 HTTP/1.1\r\nHost: a\r\n\r\n"
        );
        assert_eq!(
            expand(&t, &mut x1),
            "GET /item/3 HTTP/1.1\r\nHost: a\r\n\r\n"
        );
    }

    #[test]
    fn body_placeholders_rewrite_content_length_and_keep_json_braces() {
        let body = br#"{"id": "{UUID}", "n": {RAND:5-5}, "seq": {SEQ}}"#;
        let mut req = format!(
            "POST /k HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let t = compiled(&req);
        let mut x = Expander::new(0, 1, Shard::WHOLE, 1);
        for seq in 0..12u64 {
            let got = expand(&t, &mut x);
            let (head, body) = got.split_once("\r\n\r\n").unwrap();
            let cl: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(cl, body.len(), "{got}");
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["n"], 5);
            assert_eq!(v["seq"], seq);
            let id = v["id"].as_str().unwrap();
            assert_eq!(id.len(), 36);
            for (i, ch) in id.char_indices() {
                let dash = matches!(i, 8 | 13 | 18 | 23);
                assert_eq!(ch == '-', dash, "{id}");
                assert!(dash || ch.is_ascii_hexdigit(), "{id}");
            }
            assert_eq!(&id[14..15], "4", "version 4: {id}");
            assert!("89ab".contains(&id[19..20]), "variant: {id}");
        }
    }

    #[test]
    fn rand_stays_in_range_and_covers_it() {
        let t = compiled(b"GET /?x={RAND:10-13} HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut x = Expander::new(0, 1, Shard::WHOLE, 3);
        let mut seen = [0u32; 4];
        for _ in 0..400 {
            let s = expand(&t, &mut x);
            let v: u64 = s[8..10].parse().unwrap();
            assert!((10..=13).contains(&v), "{s}");
            seen[(v - 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        let full = compiled(b"GET /?x={RAND:0-18446744073709551615} HTTP/1.1\r\n\r\n");
        expand(&full, &mut x);
    }

    #[test]
    fn lines_go_in_turn_and_bad_placeholders_say_why() {
        let dir = std::env::temp_dir().join(format!("uring-load-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("keys.txt");
        std::fs::write(&keys, "alpha\r\nbeta\n\ngamma\n").unwrap();
        let spaced = dir.join("spaced.txt");
        std::fs::write(&spaced, "a b\n").unwrap();
        let req = format!(
            "GET /{{LINE:{}}} HTTP/1.1\r\nHost: a\r\n\r\n",
            keys.display()
        );
        let t = compiled(req.as_bytes());
        let mut x = Expander::new(0, 1, Shard::WHOLE, 1);
        let got: Vec<String> = (0..4).map(|_| expand(&t, &mut x)).collect();
        assert!(got[0].starts_with("GET /alpha "));
        assert!(got[1].starts_with("GET /beta "));
        assert!(got[2].starts_with("GET /gamma "));
        assert!(got[3].starts_with("GET /alpha "));
        let mut files = LineFiles::new();
        for (req, why) in [
            ("GET /{RAND:9-1} HTTP/1.1\r\n\r\n".to_string(), "LO <= HI"),
            ("GET /{RAND:x} HTTP/1.1\r\n\r\n".to_string(), "{RAND:LO-HI}"),
            ("GET /{LINE:} HTTP/1.1\r\n\r\n".to_string(), "name the file"),
            (
                "GET /{LINE:/nonexistent} HTTP/1.1\r\n\r\n".to_string(),
                "cannot read",
            ),
            (
                format!("GET /{{LINE:{}}} HTTP/1.1\r\n\r\n", spaced.display()),
                "space",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{SEQ}".to_string(),
                "Content-Length",
            ),
        ] {
            let e = compile(req.as_bytes(), &mut files).unwrap_err();
            assert!(e.contains(why), "{req:?}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_braces_are_literal() {
        let t = compiled(b"GET /{SEQ}/{seq}/{RANDOM} HTTP/1.1\r\n\r\n");
        let mut x = Expander::new(0, 1, Shard::WHOLE, 1);
        assert_eq!(expand(&t, &mut x), "GET /0/{seq}/{RANDOM} HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn decimal_digits() {
        for v in [
            0u64,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            12345,
            123_456,
            u64::MAX,
        ] {
            let mut buf = filled(b'x', 1 + 20);
            let end = put_decimal(&mut buf, 1, v);
            let buf = bytes(&buf);
            assert_eq!(&buf[1..end], v.to_string().as_bytes());
            assert_eq!(decimal_len(v), v.to_string().len());
            assert_eq!(buf[0], b'x', "{v}: wrote before");
        }
    }

    #[test]
    fn uuid_text_version_and_variant() {
        for (random, want) in [
            (0u128, "00000000-0000-4000-8000-000000000000"),
            (u128::MAX, "ffffffff-ffff-4fff-bfff-ffffffffffff"),
            (
                0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
                "01234567-89ab-4def-bedc-ba9876543210",
            ),
        ] {
            let mut buf = filled(b'x', 38);
            assert_eq!(put_uuid(&mut buf, 1, random), 37);
            let buf = bytes(&buf);
            assert_eq!(std::str::from_utf8(&buf[1..37]).unwrap(), want);
            assert_eq!((buf[0], buf[37]), (b'x', b'x'));
        }
    }

    #[test]
    fn chunked_copies_keep_every_length() {
        let mut src: Vec<u8> = (0..40).collect();
        src.resize(src.len() + CHUNK, 0);
        for start in [0, 3] {
            for len in 0..=37 {
                let mut buf = filled(0xff, 1 + 37 + CHUNK);
                assert_eq!(put_chunked(&mut buf, 1, &src, start, len), 1 + len);
                let buf = bytes(&buf);
                assert_eq!(&buf[1..1 + len], &src[start..start + len], "{len}");
                assert_eq!(buf[0], 0xff);
            }
        }
    }

    #[test]
    fn body_length_slot_shrinks_when_the_body_has_fewer_digits() {
        // Lines of 5 and 12 bytes: a slot of two digits, one of them left over every
        // other request.
        let dir = std::env::temp_dir().join(format!("uring-load-bodylen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lines.txt");
        std::fs::write(&file, "aaaaa\nbbbbbbbbbbbb\n").unwrap();
        let body = format!("{{LINE:{}}}", file.display());
        let req = format!(
            "PUT /k HTTP/1.1\r\nContent-Length: {}\r\nX-After: 1\r\n\r\n{body}",
            body.len()
        );
        let t = compiled(req.as_bytes());
        let mut x = Expander::new(0, 1, Shard::WHOLE, 1);
        let mut out = b"before|".to_vec();
        x.write(&t, &mut out);
        x.write(&t, &mut out);
        x.write(&t, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "before|PUT /k HTTP/1.1\r\nContent-Length: 5\r\nX-After: 1\r\n\r\naaaaa\
             PUT /k HTTP/1.1\r\nContent-Length: 12\r\nX-After: 1\r\n\r\nbbbbbbbbbbbb\
             PUT /k HTTP/1.1\r\nContent-Length: 5\r\nX-After: 1\r\n\r\naaaaa"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
