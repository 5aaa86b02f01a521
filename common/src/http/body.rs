//! Reading a response body as its head framed it: a length, chunked, or until the peer
//! closes. Shared by the load tool (which counts body bytes) and the server's proxy (which
//! forwards them); one piece of code per framing rule, over [`ChunkedDecoder`].

use super::chunked::{ChunkEvent, ChunkedDecoder, ChunkedError};
use super::response::ResponseFraming;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked,
    UntilClose,
    Done,
}

/// The body of one response; reusable for the next with [`BodyReader::start`].
#[derive(Debug, Clone)]
pub struct BodyReader {
    state: State,
    chunked: ChunkedDecoder,
}

impl Default for BodyReader {
    fn default() -> Self {
        BodyReader {
            state: State::Done,
            chunked: ChunkedDecoder::new(),
        }
    }
}

impl BodyReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Begin the body of a response framed as `framing` (done at once when it has none).
    pub fn start(&mut self, framing: ResponseFraming) {
        self.state = match framing {
            ResponseFraming::NoBody | ResponseFraming::Length(0) => State::Done,
            ResponseFraming::Length(n) => State::Length(n),
            ResponseFraming::Chunked => {
                self.chunked.reset();
                State::Chunked
            }
            ResponseFraming::UntilClose => State::UntilClose,
        };
    }

    /// The body is complete (a close-delimited one never is: its end is the peer's EOF).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The body ends when the peer closes.
    pub fn until_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Consume a prefix of `input`: the bytes used (framing included) and the body bytes
    /// among them. Call again with the rest while [`BodyReader::is_done`] is false and
    /// something was used; `(0, [])` means more input is needed.
    pub fn read<'b>(&mut self, input: &'b [u8]) -> Result<(usize, &'b [u8]), ChunkedError> {
        match self.state {
            State::Done => Ok((0, &[])),
            State::Length(left) => {
                let take = (input.len() as u64).min(left);
                self.state = if take == left {
                    State::Done
                } else {
                    State::Length(left - take)
                };
                Ok((take as usize, &input[..take as usize]))
            }
            State::UntilClose => Ok((input.len(), input)),
            State::Chunked => {
                let (used, event) = self.chunked.decode(input)?;
                match event {
                    ChunkEvent::Data(d) => Ok((used, d)),
                    ChunkEvent::NeedMore => Ok((used, &[])),
                    ChunkEvent::Done => {
                        self.state = State::Done;
                        Ok((used, &[]))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `wire` in pieces of `step` bytes; the body read and whether it ended.
    fn read_all(framing: ResponseFraming, wire: &[u8], step: usize) -> (Vec<u8>, bool, usize) {
        let mut r = BodyReader::new();
        r.start(framing);
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut used_total = 0;
        for piece in wire.chunks(step) {
            pending.extend_from_slice(piece);
            let mut off = 0;
            while off < pending.len() && !r.is_done() {
                let (used, data) = r.read(&pending[off..]).unwrap();
                body.extend_from_slice(data);
                off += used;
                if used == 0 {
                    break;
                }
            }
            used_total += off;
            pending.drain(..off);
        }
        (body, r.is_done(), used_total)
    }

    #[test]
    fn each_framing_at_every_step() {
        let chunked = b"5\r\nhello\r\n1;x=y\r\n!\r\n0\r\nT: v\r\n\r\nNEXT";
        for step in 1..chunked.len() {
            let (b, done, used) = read_all(ResponseFraming::Chunked, chunked, step);
            assert_eq!((b.as_slice(), done), (&b"hello!"[..], true), "step {step}");
            assert_eq!(used, chunked.len() - 4, "step {step}");
            let (b, done, used) = read_all(ResponseFraming::Length(5), b"helloNEXT", step);
            assert_eq!((b.as_slice(), done, used), (&b"hello"[..], true, 5));
            let (b, done, _) = read_all(ResponseFraming::UntilClose, b"hello", step);
            assert_eq!((b.as_slice(), done), (&b"hello"[..], false));
        }
        assert!(read_all(ResponseFraming::NoBody, b"x", 1).1);
        assert!(read_all(ResponseFraming::Length(0), b"x", 1).1);
    }

    #[test]
    fn broken_chunk_is_an_error() {
        let mut r = BodyReader::new();
        r.start(ResponseFraming::Chunked);
        assert!(r.read(b"zz\r\n").is_err());
    }
}
