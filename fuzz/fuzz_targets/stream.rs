//! Request and response streams: arbitrary bytes fed whole and in pieces (cut points
//! taken from the input) give the same messages and the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::http::testkit::{RequestStream, ResponseStream};
use uring_common::http::Limits;

fn pieces<'a>(data: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) * data.len() / 255)
        .collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in at {
        out.push(&data[start..c]);
        start = c;
    }
    out.push(&data[start..]);
    out
}

fuzz_target!(|input: &[u8]| {
    // Layout: [n_cuts][cuts...][payload]; the top bit of n_cuts picks responses.
    let Some((&head, rest)) = input.split_first() else {
        return;
    };
    let n = usize::from(head & 0x0f).min(rest.len());
    let (cuts, data) = rest.split_at(n);
    let limits = Limits {
        max_head_bytes: 1024,
        max_headers: 16,
        max_target_bytes: 256,
        max_body_bytes: 1 << 20,
    };
    if head & 0x80 == 0 {
        let mut whole = RequestStream::new(limits);
        whole.feed(data);
        whole.finish();
        let mut split = RequestStream::new(limits);
        for p in pieces(data, cuts) {
            split.feed(p);
        }
        split.finish();
        assert_eq!(whole.messages, split.messages);
        assert_eq!(whole.error, split.error);
    } else {
        let mut whole = ResponseStream::new(1024);
        whole.feed(data);
        whole.finish();
        let mut split = ResponseStream::new(1024);
        for p in pieces(data, cuts) {
            split.feed(p);
        }
        split.finish();
        assert_eq!(whole.messages, split.messages);
        assert_eq!(whole.error, split.error);
    }
});
