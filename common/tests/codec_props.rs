//! Property tests for the codec: any valid message, or pipelined sequence of messages,
//! parses to what was generated, and splitting the bytes at every boundary or into
//! random pieces gives exactly the same result as feeding them whole.

use proptest::prelude::*;
use uring_common::http::testkit::{
    write_body, write_owned_request, OwnedRequest, OwnedResponse, RequestStream, ResponseStream,
};
use uring_common::http::{BodyFraming, Limits, ResponseFraming, Version};

const FRAMING_NAMES: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "expect",
];

fn extra_header() -> impl Strategy<Value = (String, Vec<u8>)> {
    ("[A-Za-z][A-Za-z0-9-]{0,15}", "[!-~]([ \t!-~]{0,30}[!-~])?")
        .prop_filter("framing headers are generated on purpose", |(n, _)| {
            !FRAMING_NAMES.iter().any(|f| n.eq_ignore_ascii_case(f))
        })
        .prop_map(|(n, v)| (n, v.into_bytes()))
}

#[derive(Debug, Clone)]
struct GenRequest {
    expected: OwnedRequest,
    chunk_sizes: Vec<usize>,
}

fn request() -> impl Strategy<Value = GenRequest> {
    (
        prop_oneof!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "M-SEARCH"],
        "/[A-Za-z0-9/._~%?=&-]{0,40}",
        any::<bool>(),
        proptest::collection::vec(extra_header(), 0..6),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..120)),
        any::<bool>(),
        0u8..3,
        any::<bool>(),
        proptest::collection::vec(1usize..40, 1..6),
        // Non-empty: an empty Host with an origin-form target is a 400 (see check_host).
        "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
    )
        .prop_map(
            |(method, target, http11, extras, body, chunked, conn, expect, chunk_sizes, host)| {
                let version = if http11 {
                    Version::Http11
                } else {
                    Version::Http10
                };
                let chunked = chunked && http11 && body.is_some();
                let mut headers = Vec::new();
                if http11 {
                    headers.push(("Host".to_string(), host.clone().into_bytes()));
                }
                headers.extend(extras);
                match conn {
                    1 => headers.push(("Connection".into(), b"close".to_vec())),
                    2 => headers.push(("connection".into(), b"Keep-Alive".to_vec())),
                    _ => {}
                }
                let expect = expect && http11 && body.is_some();
                if expect {
                    headers.push(("Expect".into(), b"100-continue".to_vec()));
                }
                let framing = match &body {
                    None => BodyFraming::None,
                    Some(_) if chunked => {
                        headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                        BodyFraming::Chunked
                    }
                    Some(b) => {
                        headers.push(("Content-Length".into(), b.len().to_string().into_bytes()));
                        if b.is_empty() {
                            BodyFraming::None
                        } else {
                            BodyFraming::Length(b.len() as u64)
                        }
                    }
                };
                let keep_alive = conn != 1 && (http11 || conn == 2);
                GenRequest {
                    expected: OwnedRequest {
                        method: method.to_string(),
                        target,
                        version,
                        headers,
                        framing,
                        keep_alive,
                        expect_continue: expect,
                        host: http11.then(|| host.into_bytes()),
                        body: body.unwrap_or_default(),
                    },
                    chunk_sizes,
                }
            },
        )
}

fn requests() -> impl Strategy<Value = (Vec<OwnedRequest>, Vec<u8>)> {
    proptest::collection::vec(request(), 1..5).prop_map(|reqs| {
        let mut bytes = Vec::new();
        for r in &reqs {
            write_owned_request(&mut bytes, &r.expected, &r.chunk_sizes);
        }
        (reqs.into_iter().map(|r| r.expected).collect(), bytes)
    })
}

fn run_requests(pieces: &[&[u8]]) -> (Vec<OwnedRequest>, Option<String>) {
    let mut s = RequestStream::new(Limits::default());
    for p in pieces {
        s.feed(p);
    }
    s.finish();
    (s.messages, s.error.map(|e| format!("{e:?}")))
}

/// Cut `bytes` at the given (unsorted, possibly repeated) offsets.
fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&bytes[start..c]);
        start = c;
    }
    out.push(&bytes[start..]);
    out
}

#[derive(Debug, Clone)]
struct GenResponse {
    expected: OwnedResponse,
    bytes: Vec<u8>,
}

fn response(last: bool) -> impl Strategy<Value = GenResponse> {
    (
        prop_oneof![
            Just(200u16),
            Just(201),
            Just(204),
            Just(304),
            Just(100),
            Just(404),
            Just(500),
            Just(299)
        ],
        any::<bool>(),
        proptest::collection::vec(extra_header(), 0..5),
        proptest::collection::vec(any::<u8>(), 0..120),
        0u8..3,
        any::<bool>(),
        proptest::collection::vec(1usize..40, 1..6),
        any::<bool>(),
    )
        .prop_map(
            move |(status, http11, extras, body, framing_pick, close, chunk_sizes, reason)| {
                let version = if http11 {
                    Version::Http11
                } else {
                    Version::Http10
                };
                let reason_text = if reason {
                    uring_common::http::serialize::reason_phrase(status).to_string()
                } else {
                    String::new()
                };
                let mut headers = extras;
                if close {
                    headers.push(("Connection".into(), b"close".to_vec()));
                } else if !http11 {
                    headers.push(("Connection".into(), b"keep-alive".to_vec()));
                }
                let no_body = (100..200).contains(&status) || status == 204 || status == 304;
                // Until-close framing only makes sense for the last response.
                let pick = if last { framing_pick } else { framing_pick % 2 };
                let (framing, body, chunked) = if no_body {
                    (ResponseFraming::NoBody, Vec::new(), false)
                } else {
                    match pick {
                        0 => {
                            headers.push((
                                "Content-Length".into(),
                                body.len().to_string().into_bytes(),
                            ));
                            (ResponseFraming::Length(body.len() as u64), body, false)
                        }
                        1 if http11 => {
                            headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                            (ResponseFraming::Chunked, body, true)
                        }
                        1 => {
                            headers.push((
                                "Content-Length".into(),
                                body.len().to_string().into_bytes(),
                            ));
                            (ResponseFraming::Length(body.len() as u64), body, false)
                        }
                        _ => (ResponseFraming::UntilClose, body, false),
                    }
                };
                let keep_alive = !close && framing != ResponseFraming::UntilClose;
                let mut bytes = Vec::new();
                bytes.extend_from_slice(if http11 { b"HTTP/1.1 " } else { b"HTTP/1.0 " });
                bytes.extend_from_slice(status.to_string().as_bytes());
                if reason {
                    bytes.push(b' ');
                    bytes.extend_from_slice(reason_text.as_bytes());
                }
                bytes.extend_from_slice(b"\r\n");
                for (n, v) in &headers {
                    bytes.extend_from_slice(n.as_bytes());
                    bytes.extend_from_slice(b": ");
                    bytes.extend_from_slice(v);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"\r\n");
                write_body(&mut bytes, chunked, &body, &chunk_sizes);
                GenResponse {
                    expected: OwnedResponse {
                        version,
                        status,
                        reason: reason_text,
                        headers,
                        framing,
                        keep_alive,
                        body,
                    },
                    bytes,
                }
            },
        )
}

fn responses() -> impl Strategy<Value = (Vec<OwnedResponse>, Vec<u8>)> {
    (
        proptest::collection::vec(response(false), 0..4),
        response(true),
    )
        .prop_map(|(mut init, last)| {
            init.push(last);
            let mut bytes = Vec::new();
            for r in &init {
                bytes.extend_from_slice(&r.bytes);
            }
            (init.into_iter().map(|r| r.expected).collect(), bytes)
        })
}

fn run_responses(pieces: &[&[u8]]) -> (Vec<OwnedResponse>, Option<String>) {
    let mut s = ResponseStream::new(16 * 1024);
    for p in pieces {
        s.feed(p);
    }
    s.finish();
    (s.messages, s.error.map(|e| format!("{e:?}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn requests_parse_to_what_was_sent((expected, bytes) in requests()) {
        let (got, err) = run_requests(&[&bytes]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn requests_split_at_every_boundary((_expected, bytes) in requests()) {
        let whole = run_requests(&[&bytes]);
        for cut in 0..=bytes.len() {
            let split = run_requests(&[&bytes[..cut], &bytes[cut..]]);
            prop_assert_eq!(&split, &whole, "cut at {}", cut);
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(run_requests(&bytewise), whole);
    }

    #[test]
    fn requests_split_into_random_pieces(
        (_expected, bytes) in requests(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = run_requests(&[&bytes]);
        prop_assert_eq!(run_requests(&pieces(&bytes, &cuts)), whole);
    }

    #[test]
    fn responses_parse_to_what_was_sent((expected, bytes) in responses()) {
        let (got, err) = run_responses(&[&bytes]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn responses_split_at_every_boundary((_expected, bytes) in responses()) {
        let whole = run_responses(&[&bytes]);
        for cut in 0..=bytes.len() {
            let split = run_responses(&[&bytes[..cut], &bytes[cut..]]);
            prop_assert_eq!(&split, &whole, "cut at {}", cut);
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(run_responses(&bytewise), whole);
    }

    #[test]
    fn responses_split_into_random_pieces(
        (_expected, bytes) in responses(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = run_responses(&[&bytes]);
        prop_assert_eq!(run_responses(&pieces(&bytes, &cuts)), whole);
    }

    /// Arbitrary bytes: whatever the outcome (messages or an error), splitting never
    /// changes it. This covers the error paths the valid generators never reach.
    #[test]
    fn arbitrary_bytes_split_consistently(
        prefix in requests(),
        noise in proptest::collection::vec(prop_oneof![
            Just(b'\r'), Just(b'\n'), Just(b' '), Just(b':'), Just(b'0'), Just(b'a'),
            any::<u8>()
        ], 0..60),
        cut in any::<usize>(),
    ) {
        let mut bytes = prefix.1;
        bytes.extend_from_slice(&noise);
        let whole = run_requests(&[&bytes]);
        let c = cut % (bytes.len() + 1);
        prop_assert_eq!(run_requests(&[&bytes[..c], &bytes[c..]]), whole);
    }
}
