//! Incremental, zero-copy decoder for the chunked transfer coding (RFC 9112 section 7.1).
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! ```
//!
//! The decoder is a byte-at-a-time state machine for the framing and hands out chunk data
//! as slices of the caller's input. It is strict: no `0x`, sign or leading whitespace in
//! a size, CRLF only (a bare LF or CR anywhere in the framing is an error, unlike
//! httparse's `parse_chunk_size`), extensions and trailers bounded in length. Extensions
//! are checked against their grammar (a name is a token; a value a token or a
//! quoted-string) and skipped; trailer lines must have field-line syntax (RFC 9112
//! section 7.1.2: trailers are parsed like header fields) but are not returned. Any
//! error is terminal: every later call returns the same error, because resynchronising
//! after a framing error is how request smuggling works.

/// Longest chunk extension (everything between the size and the CRLF) on one chunk line.
pub const MAX_CHUNK_EXT_BYTES: usize = 4 * 1024;
/// Longest trailer section (all trailer field lines together).
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// What one call to [`ChunkedDecoder::decode`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEvent<'b> {
    /// Body bytes (a slice of the input).
    Data(&'b [u8]),
    /// All input was consumed without a complete event; feed more.
    NeedMore,
    /// The last chunk and the trailer section are complete.
    Done,
}

/// A framing error; the connection must be closed, never resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    InvalidSize,
    SizeOverflow,
    InvalidExtension,
    ExtensionTooLong,
    TrailerTooLong,
    InvalidLineEnding,
    /// A trailer line that is not `field-name ":" field-value` (empty name, obs-fold,
    /// whitespace before the colon, control bytes): RFC 9112 section 7.1.2 says trailer
    /// fields are parsed like header fields, so what a header would be rejected for, a
    /// trailer is too.
    InvalidTrailer,
}

impl std::fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkedError::InvalidSize => "invalid chunk size",
            ChunkedError::SizeOverflow => "chunk size overflows 64 bits",
            ChunkedError::InvalidExtension => "invalid chunk extension",
            ChunkedError::ExtensionTooLong => "chunk extension too long",
            ChunkedError::TrailerTooLong => "trailer section too long",
            ChunkedError::InvalidLineEnding => "invalid line ending in chunked framing",
            ChunkedError::InvalidTrailer => "invalid trailer field line",
        })
    }
}

impl std::error::Error for ChunkedError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Before the first hex digit of a size.
    #[default]
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the digits: only `;` may follow (BWS belongs to chunk-ext).
    SizeWs,
    /// Inside a chunk extension, up to the CR; see [`ExtState`].
    Ext(ExtState),
    /// Saw the CR ending a size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    /// Inside a trailer field name, before the colon.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// Saw the CR ending a trailer line.
    TrailerLf,
    /// Saw the CR of the final empty line.
    FinalLf,
    Done,
    Failed(ChunkedError),
}

/// Where in `*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )` the decoder
/// is. Names are tokens; values are tokens or quoted-strings (RFC 9112 section 7.1.1).
/// Extensions are checked, not kept: a nameless `5;` or a name like `bad[` is a framing
/// error, because a proxy in front of us may split such a line differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtState {
    /// After `;` (and optional whitespace): a name must start.
    NameStart,
    /// Inside a name.
    Name,
    /// Whitespace after a name: `=` or another `;` must follow.
    NameWs,
    /// After `=` (and optional whitespace): a value must start.
    ValueStart,
    /// Inside a token value.
    Token,
    /// Inside a quoted-string value.
    Quoted,
    /// After a backslash inside a quoted-string.
    QuotedPair,
    /// Right after a complete value (or closing quote): `;`, whitespace or CR.
    ValueEnd,
    /// Whitespace after a value: only another `;` may follow.
    ValueWs,
}

/// Decoder state machine; one per message, reusable after `reset`.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being read, then the data bytes still to come in the current chunk.
    remaining: u64,
    /// Bytes of extension on the current size line.
    ext_len: usize,
    /// Bytes of trailer section so far.
    trailer_len: usize,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Back to the start state for the next message.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The whole chunked body (with trailers) has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes still owed by the current chunk: the declared size right after a size
    /// line, counting down as data is yielded; 0 between chunks. Lets a server refuse a
    /// chunk larger than its body limit (413) as soon as the size line is read, before
    /// any of the data arrives.
    pub fn chunk_remaining(&self) -> u64 {
        if self.state == State::Data {
            self.remaining
        } else {
            0
        }
    }

    /// The error this decoder stopped at, if any.
    pub fn error(&self) -> Option<ChunkedError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Consume a prefix of `input`; returns the bytes consumed and the event. Call again
    /// with the rest of the input until `NeedMore` or `Done`.
    ///
    /// `Data` may follow framing bytes: the consumed count covers both. After `Done`,
    /// calls return `(0, Done)`; after an error, calls return that error.
    pub fn decode<'b>(&mut self, input: &'b [u8]) -> Result<(usize, ChunkEvent<'b>), ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Data => {
                    let available = (input.len() - i) as u64;
                    let take = self.remaining.min(available) as usize;
                    self.remaining -= take as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok((i + take, ChunkEvent::Data(&input[i..i + take])));
                }
                State::Done => return Ok((i, ChunkEvent::Done)),
                State::Failed(e) => return Err(e),
                // Fast paths for the common shapes, `<hex>\r\n` and the CRLF after data;
                // anything else (extensions, split input, errors) goes byte by byte.
                State::SizeStart => {
                    if let Some((size, len)) = plain_size_line(&input[i..]) {
                        self.remaining = size;
                        self.ext_len = 0;
                        self.state = if size == 0 {
                            State::TrailerStart
                        } else {
                            State::Data
                        };
                        i += len;
                        continue;
                    }
                }
                State::DataCr if input[i..].starts_with(b"\r\n") => {
                    self.state = State::SizeStart;
                    i += 2;
                    continue;
                }
                _ => {}
            }
            if let Err(e) = self.step(b) {
                self.state = State::Failed(e);
                return Err(e);
            }
            i += 1;
            if self.state == State::Done {
                return Ok((i, ChunkEvent::Done));
            }
        }
        match self.state {
            State::Done => Ok((i, ChunkEvent::Done)),
            State::Failed(e) => Err(e),
            // A zero-length chunk body cannot happen (size 0 is the last chunk), so Data
            // with nothing left never sits here; NeedMore is right for every other state.
            _ => Ok((i, ChunkEvent::NeedMore)),
        }
    }

    /// Advance the framing state by one byte (never called in `Data`, `Done`, `Failed`).
    #[inline]
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        match self.state {
            State::SizeStart => {
                let d = hex_value(b).ok_or(ChunkedError::InvalidSize)?;
                self.remaining = u64::from(d);
                self.ext_len = 0;
                self.state = State::Size;
            }
            State::Size => {
                if let Some(d) = hex_value(b) {
                    if self.remaining > u64::MAX >> 4 {
                        return Err(ChunkedError::SizeOverflow);
                    }
                    self.remaining = (self.remaining << 4) | u64::from(d);
                } else {
                    self.size_end(b)?;
                }
            }
            State::SizeWs => match b {
                b' ' | b'\t' => self.count_ext()?,
                b';' => {
                    self.count_ext()?;
                    self.state = State::Ext(ExtState::NameStart);
                }
                _ => return Err(ChunkedError::InvalidSize),
            },
            State::Ext(ext) => self.step_ext(ext, b)?,
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                if self.remaining == 0 {
                    self.state = State::TrailerStart;
                } else {
                    self.state = State::Data;
                }
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                self.state = State::SizeStart;
            }
            State::TrailerStart => match b {
                b'\r' => self.state = State::FinalLf,
                b'\n' => return Err(ChunkedError::InvalidLineEnding),
                // A field name starts with a tchar: this rejects obs-fold (SP/HT), an
                // empty name (`:`), and a request line hidden where a trailer would be
                // only once it fails the field syntax below.
                _ if is_tchar(b) => {
                    self.count_trailer()?;
                    self.state = State::TrailerName;
                }
                _ => return Err(ChunkedError::InvalidTrailer),
            },
            State::TrailerName => {
                self.count_trailer()?;
                match b {
                    b':' => self.state = State::TrailerValue,
                    _ if is_tchar(b) => {}
                    // Includes whitespace before the colon (RFC 9112 section 5.1).
                    _ => return Err(ChunkedError::InvalidTrailer),
                }
            }
            State::TrailerValue => match b {
                b'\r' => self.state = State::TrailerLf,
                b'\n' => return Err(ChunkedError::InvalidLineEnding),
                b'\t' | 0x20..=0x7e | 0x80..=0xff => self.count_trailer()?,
                _ => return Err(ChunkedError::InvalidTrailer),
            },
            State::TrailerLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                self.count_trailer()?;
                self.state = State::TrailerStart;
            }
            State::FinalLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                self.state = State::Done;
            }
            State::Data | State::Done | State::Failed(_) => {
                unreachable!("step is not called in {:?}", self.state)
            }
        }
        Ok(())
    }

    /// First non-hex byte after the size digits.
    #[inline]
    fn size_end(&mut self, b: u8) -> Result<(), ChunkedError> {
        match b {
            b'\r' => self.state = State::SizeLf,
            b'\n' => return Err(ChunkedError::InvalidLineEnding),
            b';' => {
                self.count_ext()?;
                self.state = State::Ext(ExtState::NameStart);
            }
            b' ' | b'\t' => {
                self.count_ext()?;
                self.state = State::SizeWs;
            }
            _ => return Err(ChunkedError::InvalidSize),
        }
        Ok(())
    }

    /// One byte of a chunk extension.
    fn step_ext(&mut self, ext: ExtState, b: u8) -> Result<(), ChunkedError> {
        use ExtState::*;
        let next = match (ext, b) {
            // httparse's chunk-size parser would take a bare LF here; we must not.
            (Quoted | QuotedPair, b'\n' | b'\r') | (_, b'\n') => {
                return Err(ChunkedError::InvalidLineEnding)
            }
            // The line may end only after a complete name or value.
            (Name | Token | ValueEnd, b'\r') => {
                self.state = State::SizeLf;
                return Ok(());
            }
            (NameStart | ValueStart, b' ' | b'\t') => ext,
            (NameStart, _) if is_tchar(b) => Name,
            (Name, _) if is_tchar(b) => Name,
            (Name | NameWs, b' ' | b'\t') => NameWs,
            (Name | NameWs, b'=') => ValueStart,
            (ValueStart, b'"') => Quoted,
            (ValueStart | Token, _) if is_tchar(b) => Token,
            (Quoted, b'"') => ValueEnd,
            (Quoted, b'\\') => QuotedPair,
            // qdtext and quoted-pair: HTAB, SP, visible ASCII, obs-text.
            (Quoted | QuotedPair, b'\t' | b' '..=b'~' | 0x80..=0xff) => Quoted,
            (Token | ValueEnd | ValueWs, b' ' | b'\t') => ValueWs,
            (Name | NameWs | Token | ValueEnd | ValueWs, b';') => NameStart,
            _ => return Err(ChunkedError::InvalidExtension),
        };
        self.count_ext()?;
        self.state = State::Ext(next);
        Ok(())
    }

    #[inline]
    fn count_ext(&mut self) -> Result<(), ChunkedError> {
        self.ext_len += 1;
        if self.ext_len > MAX_CHUNK_EXT_BYTES {
            return Err(ChunkedError::ExtensionTooLong);
        }
        Ok(())
    }

    #[inline]
    fn count_trailer(&mut self) -> Result<(), ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILER_BYTES {
            return Err(ChunkedError::TrailerTooLong);
        }
        Ok(())
    }
}

/// A complete size line of 1 to 16 hex digits and CRLF at the start of `input`: the size
/// and the line's length. Sixteen digits always fit in a u64, so no overflow check.
#[inline]
fn plain_size_line(input: &[u8]) -> Option<(u64, usize)> {
    let mut size = 0u64;
    for (n, &b) in input.iter().take(17).enumerate() {
        match hex_value(b) {
            Some(d) if n < 16 => size = (size << 4) | u64::from(d),
            Some(_) => return None,
            None if n > 0 && b == b'\r' && input.get(n + 1) == Some(&b'\n') => {
                return Some((size, n + 2))
            }
            None => return None,
        }
    }
    None
}

#[inline]
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode all of `input` in one buffer: (body, bytes consumed up to Done) or error.
    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Option<usize>), ChunkedError> {
        let mut d = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let (n, ev) = d.decode(&input[at..])?;
            at += n;
            match ev {
                ChunkEvent::Data(s) => body.extend_from_slice(s),
                ChunkEvent::NeedMore => return Ok((body, None)),
                ChunkEvent::Done => return Ok((body, Some(at))),
            }
        }
    }

    /// Decode `input` fed one byte at a time.
    fn decode_bytewise(input: &[u8]) -> Result<(Vec<u8>, Option<usize>), ChunkedError> {
        let mut d = ChunkedDecoder::new();
        let mut body = Vec::new();
        for (at, byte) in input.iter().enumerate() {
            let piece = std::slice::from_ref(byte);
            let mut off = 0;
            loop {
                let (n, ev) = d.decode(&piece[off..])?;
                off += n;
                match ev {
                    ChunkEvent::Data(s) => body.extend_from_slice(s),
                    ChunkEvent::NeedMore => break,
                    ChunkEvent::Done => return Ok((body, Some(at + off))),
                }
            }
        }
        Ok((body, None))
    }

    /// Size lines: the line (with its CRLF) followed by enough data and the end of the
    /// body, and what decoding must give.
    #[test]
    fn size_line_table() {
        use ChunkedError::*;
        let ok: &[(&[u8], u64)] = &[
            (b"1\r\n", 1),
            (b"a\r\n", 10),
            (b"A\r\n", 10),
            (b"0010\r\n", 16),
            (b"1;ext\r\n", 1),
            (b"1;ext=val\r\n", 1),
            (b"1;a=b;c=\"d e\"\r\n", 1),
            (b"1 ;ext\r\n", 1),
            (b"1\t; ext\r\n", 1),
            (b"ff\r\n", 255),
            (b"1;a;b\r\n", 1),
            (b"1; a = b ;c\r\n", 1),
            (b"1;a=\"\"\r\n", 1),
            (b"1;a=\"x\\\"y;z\"\r\n", 1),
            (b"1;a=\"\xc3\xa9\"\r\n", 1),
        ];
        for (line, size) in ok {
            let mut input = line.to_vec();
            input.extend_from_slice(&vec![b'x'; *size as usize]);
            input.extend_from_slice(b"\r\n0\r\n\r\n");
            let (body, done) = decode_all(&input)
                .unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(line)));
            assert_eq!(
                body.len() as u64,
                *size,
                "{:?}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(done, Some(input.len()));
        }
        let bad: &[(&[u8], ChunkedError)] = &[
            (b"\r\n", InvalidSize),
            (b"0x1\r\n", InvalidSize),
            (b"+1\r\n", InvalidSize),
            (b"-1\r\n", InvalidSize),
            (b" 1\r\n", InvalidSize),
            (b"\t1\r\n", InvalidSize),
            (b"1 \r\n", InvalidSize),
            (b"1 2\r\n", InvalidSize),
            (b"g\r\n", InvalidSize),
            (b"1g\r\n", InvalidSize),
            (b";ext\r\n", InvalidSize),
            (b"1\n", InvalidLineEnding),
            (b"1\rx", InvalidLineEnding),
            (b"1;ext\n", InvalidLineEnding),
            (b"1;e\nxt\r\n", InvalidLineEnding),
            (b"1;e\0xt\r\n", InvalidExtension),
            (b"1;e\x7fxt\r\n", InvalidExtension),
            // Issue 9: an extension without a name, or with a name that is no token.
            (b"1;\r\n", InvalidExtension),
            (b"1; \r\n", InvalidExtension),
            (b"1;;a\r\n", InvalidExtension),
            (b"1;=x\r\n", InvalidExtension),
            (b"1;bad[=x\r\n", InvalidExtension),
            (b"1;a=\r\n", InvalidExtension),
            (b"1;a=b c\r\n", InvalidExtension),
            (b"1;a \r\n", InvalidExtension),
            (b"1;a=b \r\n", InvalidExtension),
            (b"1;a=\"open\r\n", InvalidLineEnding),
            (b"1;a=\"x\"y\r\n", InvalidExtension),
            (b"1;a=[\r\n", InvalidExtension),
            (b"1;\xc3\xa9\r\n", InvalidExtension),
            (b"10000000000000000\r\n", SizeOverflow),
            (b"fffffffffffffffff\r\n", SizeOverflow),
        ];
        for (line, want) in bad {
            let mut input = line.to_vec();
            input.extend_from_slice(b"x\r\n0\r\n\r\n");
            assert_eq!(
                decode_all(&input).err(),
                Some(*want),
                "{:?}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(
                decode_bytewise(&input).err(),
                Some(*want),
                "bytewise {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn largest_size_is_accepted() {
        let mut d = ChunkedDecoder::new();
        let (n, ev) = d.decode(b"ffffffffffffffff\r\nabc").unwrap();
        assert_eq!((n, ev), (21, ChunkEvent::Data(b"abc")));
        assert_eq!(d.remaining, u64::MAX - 3);
    }

    #[test]
    fn data_is_zero_copy_slices() {
        let input = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT";
        let mut d = ChunkedDecoder::new();
        let (n, ev) = d.decode(input).unwrap();
        let ChunkEvent::Data(s) = ev else { panic!() };
        assert_eq!(s, b"hello");
        assert_eq!(s.as_ptr(), input[3..].as_ptr());
        assert_eq!(n, 8);
        let (n2, ev) = d.decode(&input[n..]).unwrap();
        assert_eq!(ev, ChunkEvent::Data(b" world"));
        let (n3, ev) = d.decode(&input[n + n2..]).unwrap();
        assert_eq!(ev, ChunkEvent::Done);
        assert_eq!(&input[n + n2 + n3..], b"NEXT");
        assert!(d.is_done());
        assert_eq!(d.decode(b"more").unwrap(), (0, ChunkEvent::Done));
    }

    #[test]
    fn trailers_are_skipped_and_bounded() {
        let input = b"1\r\nx\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n";
        assert_eq!(
            decode_all(input).unwrap(),
            (b"x".to_vec(), Some(input.len()))
        );
        assert_eq!(
            decode_bytewise(input).unwrap(),
            (b"x".to_vec(), Some(input.len()))
        );

        let mut long = b"0\r\nX: ".to_vec();
        long.extend_from_slice(&vec![b'a'; MAX_TRAILER_BYTES]);
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(decode_all(&long).err(), Some(ChunkedError::TrailerTooLong));

        let mut fits = b"0\r\nX: ".to_vec();
        fits.extend_from_slice(&vec![b'a'; MAX_TRAILER_BYTES - 5]);
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(decode_all(&fits).unwrap().1, Some(fits.len()));

        assert_eq!(
            decode_all(b"0\r\nX: 1\n\r\n").err(),
            Some(ChunkedError::InvalidLineEnding)
        );
        assert_eq!(
            decode_all(b"0\r\n\n").err(),
            Some(ChunkedError::InvalidLineEnding)
        );
        assert_eq!(
            decode_all(b"0\r\n\rx").err(),
            Some(ChunkedError::InvalidLineEnding)
        );
    }

    #[test]
    fn trailer_lines_are_field_lines() {
        use ChunkedError::*;
        let cases: &[(&[u8], Option<ChunkedError>)] = &[
            (b"0\r\nX-T: 1\r\n\r\n", None),
            (b"0\r\nX-T:\r\n\r\n", None),
            (b"0\r\nX-T: a\tb \r\n\r\n", None),
            (b"0\r\n: x\r\n\r\n", Some(InvalidTrailer)),
            (b"0\r\nX-T: a\r\n b\r\n\r\n", Some(InvalidTrailer)),
            (b"0\r\nX-T: a\r\n\tb\r\n\r\n", Some(InvalidTrailer)),
            (b"0\r\nX-T : a\r\n\r\n", Some(InvalidTrailer)),
            (b"0\r\nX-T\r\n\r\n", Some(InvalidTrailer)),
            (b"0\r\nX-T: a\x00\r\n\r\n", Some(InvalidTrailer)),
            (
                b"0\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                Some(InvalidTrailer),
            ),
        ];
        for (input, want) in cases {
            let got = decode_all(input);
            match want {
                None => assert_eq!(
                    got.unwrap().1,
                    Some(input.len()),
                    "{:?}",
                    String::from_utf8_lossy(input)
                ),
                Some(e) => {
                    assert_eq!(got.err(), Some(*e), "{:?}", String::from_utf8_lossy(input));
                    assert_eq!(decode_bytewise(input).err(), Some(*e));
                }
            }
        }
    }

    #[test]
    fn chunk_remaining_is_known_before_the_data() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(
            d.decode(b"ffffffffffffffff\r\n"),
            Ok((18, ChunkEvent::NeedMore))
        );
        assert_eq!(d.chunk_remaining(), u64::MAX);
        assert_eq!(d.decode(b"ab"), Ok((2, ChunkEvent::Data(b"ab"))));
        assert_eq!(d.chunk_remaining(), u64::MAX - 2);
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"2\r\nab"), Ok((5, ChunkEvent::Data(b"ab"))));
        assert_eq!(d.chunk_remaining(), 0);
    }

    #[test]
    fn extension_length_bound() {
        let mut fits = b"1;".to_vec();
        fits.extend_from_slice(&vec![b'e'; MAX_CHUNK_EXT_BYTES - 1]);
        fits.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(decode_all(&fits).unwrap().1, Some(fits.len()));

        let mut long = b"1;".to_vec();
        long.extend_from_slice(&vec![b'e'; MAX_CHUNK_EXT_BYTES]);
        long.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(
            decode_all(&long).err(),
            Some(ChunkedError::ExtensionTooLong)
        );
        // The bound is per line, not per message.
        let mut many = Vec::new();
        for _ in 0..4 {
            many.extend_from_slice(b"1;");
            many.extend_from_slice(&vec![b'e'; MAX_CHUNK_EXT_BYTES - 1]);
            many.extend_from_slice(b"\r\nx\r\n");
        }
        many.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(decode_all(&many).unwrap().0, b"xxxx");
    }

    #[test]
    fn missing_crlf_after_data() {
        assert_eq!(
            decode_all(b"1\r\nxy\r\n").err(),
            Some(ChunkedError::InvalidLineEnding)
        );
        assert_eq!(
            decode_all(b"1\r\nx\n0\r\n\r\n").err(),
            Some(ChunkedError::InvalidLineEnding)
        );
        assert_eq!(
            decode_all(b"1\r\nx\rx").err(),
            Some(ChunkedError::InvalidLineEnding)
        );
    }

    #[test]
    fn errors_are_terminal() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"z\r\n"), Err(ChunkedError::InvalidSize));
        // Valid input afterwards does not resynchronise.
        assert_eq!(d.decode(b"0\r\n\r\n"), Err(ChunkedError::InvalidSize));
        assert_eq!(d.decode(b""), Err(ChunkedError::InvalidSize));
        assert_eq!(d.error(), Some(ChunkedError::InvalidSize));
        d.reset();
        assert_eq!(d.decode(b"0\r\n\r\n"), Ok((5, ChunkEvent::Done)));
    }

    #[test]
    fn partial_input_needs_more() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b""), Ok((0, ChunkEvent::NeedMore)));
        assert_eq!(d.decode(b"1"), Ok((1, ChunkEvent::NeedMore)));
        assert_eq!(d.decode(b"0\r"), Ok((2, ChunkEvent::NeedMore)));
        assert_eq!(d.decode(b"\n"), Ok((1, ChunkEvent::NeedMore)));
        assert_eq!(d.decode(b"abc"), Ok((3, ChunkEvent::Data(b"abc"))));
        assert_eq!(d.decode(b""), Ok((0, ChunkEvent::NeedMore)));
        let rest = [b'y'; 13];
        assert_eq!(d.decode(&rest), Ok((13, ChunkEvent::Data(&rest[..]))));
        assert_eq!(d.decode(b"\r\n0\r\n\r"), Ok((6, ChunkEvent::NeedMore)));
        assert_eq!(d.decode(b"\n"), Ok((1, ChunkEvent::Done)));
    }

    #[test]
    fn every_split_gives_the_same_body() {
        let input = b"3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
        let whole = decode_all(input).unwrap();
        assert_eq!(whole.0, b"abc0123456789abcdef");
        assert_eq!(decode_bytewise(input).unwrap(), whole);
        for cut in 0..=input.len() {
            let mut d = ChunkedDecoder::new();
            let mut body = Vec::new();
            let mut done = None;
            let mut base = 0;
            'outer: for part in [&input[..cut], &input[cut..]] {
                let mut off = 0;
                loop {
                    let (n, ev) = d.decode(&part[off..]).unwrap();
                    off += n;
                    match ev {
                        ChunkEvent::Data(s) => body.extend_from_slice(s),
                        ChunkEvent::NeedMore => break,
                        ChunkEvent::Done => {
                            done = Some(base + off);
                            break 'outer;
                        }
                    }
                }
                base += part.len();
            }
            assert_eq!((body, done), whole, "cut at {cut}");
        }
    }
}
