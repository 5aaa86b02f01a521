//! FastCGI response decoder: never panics, answers the same whatever the cut, and what it
//! calls a complete response is one that our strict HTTP response parser reads whole.
//! Byte 0: bit 0 = HEAD request, bit 1 = the rest is a CGI response (STDOUT content) to be
//! wrapped in records, else raw records; byte 1: where the input is cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::http::testkit::ResponseStream;
use uring_common::http::{new_header_storage, parse_response, Parsed};
use uring_server::proxy::fastcgi::{response_records, EndRequest, Progress, ResponseDecoder};

fn decode(wire: &[u8], at: usize, head_only: bool) -> (Vec<u8>, Vec<u8>, Result<Progress, String>) {
    let mut d = ResponseDecoder::new(head_only);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut last = Ok(Progress::Pending);
    for piece in [&wire[..at], &wire[at..]] {
        last = d.feed(piece, &mut out, &mut err);
        if last.is_err() {
            break;
        }
    }
    (out, err, last.map_err(|e| e.to_string()))
}

fuzz_target!(|data: &[u8]| {
    let [flags, cut, rest @ ..] = data else {
        return;
    };
    let head_only = flags & 1 == 1;
    let wire = if flags & 2 == 2 {
        let end = EndRequest {
            app_status: 0,
            protocol_status: 0,
        };
        response_records(rest, b"e", usize::from(*cut).max(1), end)
    } else {
        rest.to_vec()
    };
    let at = usize::from(*cut).min(wire.len());
    let (out, err, res) = decode(&wire, wire.len(), head_only);
    let (_, cut_err, cut_res) = decode(&wire, at, head_only);
    assert_eq!((&err, &res), (&cut_err, &cut_res));
    if let Ok(Progress::Done(_)) = res {
        if head_only {
            let mut st = new_header_storage();
            match parse_response(&out, &mut st, true, 1 << 20) {
                Ok(Parsed::Complete(h)) => assert_eq!(h.head_len, out.len()),
                other => panic!("{other:?}"),
            }
        } else {
            let mut s = ResponseStream::new(1 << 20);
            s.feed(&out);
            s.finish();
            assert_eq!(s.error, None);
            assert_eq!(s.messages.len(), 1);
        }
    }
});
