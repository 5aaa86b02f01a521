//! Chunked decoder: never panics, yields only input slices, and feeding the input in two
//! pieces (cut chosen by the first byte) decodes exactly what feeding it whole does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::http::{ChunkEvent, ChunkedDecoder, ChunkedError};

type Outcome = (Vec<u8>, Option<Result<usize, ChunkedError>>);

fn decode(pieces: &[&[u8]]) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut base = 0;
    for piece in pieces {
        let mut at = 0;
        loop {
            match d.decode(&piece[at..]) {
                Err(e) => {
                    // Terminal: the same error again, whatever follows.
                    assert_eq!(d.decode(b"0\r\n\r\n"), Err(e));
                    return (body, Some(Err(e)));
                }
                Ok((n, ev)) => {
                    assert!(n <= piece.len() - at);
                    let start = at;
                    at += n;
                    match ev {
                        ChunkEvent::Data(s) => {
                            assert!(!s.is_empty());
                            // Zero-copy: the slice ends where consumption ended.
                            assert_eq!(s.as_ptr_range().end, piece[..at].as_ptr_range().end);
                            assert!(s.len() <= at - start);
                            body.extend_from_slice(s);
                        }
                        ChunkEvent::NeedMore => {
                            assert_eq!(at, piece.len());
                            break;
                        }
                        ChunkEvent::Done => return (body, Some(Ok(base + at))),
                    }
                }
            }
        }
        base += piece.len();
    }
    (body, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let whole = decode(&[data]);
    let cut = usize::from(cut) % (data.len() + 1);
    let split = decode(&[&data[..cut], &data[cut..]]);
    // An error found in the first piece is found with the same body as whole input.
    assert_eq!(whole, split);
});
