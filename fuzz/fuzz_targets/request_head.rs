//! Request head parser: never panics; a complete head is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::http::{new_header_storage, parse_request, BodyFraming, Limits, Parsed};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head_bytes: 2048,
        max_headers: 32,
        max_target_bytes: 512,
        ..Limits::default()
    };
    let mut storage = new_header_storage();
    match parse_request(data, &mut storage, &limits) {
        Ok(Parsed::Complete(head)) => {
            assert!(head.head_len <= data.len() && head.head_len <= limits.max_head_bytes);
            assert!(head.target.len() <= limits.max_target_bytes);
            assert!(head.headers.len() <= limits.max_headers);
            // Bare LF is rejected, so every complete head ends with CRLF CRLF.
            assert!(data[..head.head_len].ends_with(b"\r\n\r\n"));
            if let BodyFraming::Length(n) = head.framing {
                assert!(n > 0);
            }
            // Never reads past the head: the same prefix gives the same head.
            let mut again = new_header_storage();
            let Ok(Parsed::Complete(h2)) =
                parse_request(&data[..head.head_len], &mut again, &limits)
            else {
                panic!("head did not parse on its own")
            };
            assert_eq!(h2.head_len, head.head_len);
            assert_eq!(h2.framing, head.framing);
        }
        Ok(Parsed::Partial) => assert!(data.len() < limits.max_head_bytes),
        Err(e) => {
            let status = e.status();
            assert!(matches!(status, 400 | 414 | 431 | 501 | 505));
        }
    }
});
