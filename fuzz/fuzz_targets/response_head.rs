//! Response head parser: never panics; a complete head is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::http::{new_header_storage, parse_response, Parsed, ResponseFraming};

fuzz_target!(|data: &[u8]| {
    let (head_request, data) = match data.split_first() {
        Some((&flag, rest)) => (flag & 1 == 1, rest),
        None => (false, data),
    };
    let mut storage = new_header_storage();
    if let Ok(Parsed::Complete(head)) = parse_response(data, &mut storage, head_request, 4096) {
        assert!(head.head_len <= data.len() && head.head_len <= 4096);
        assert!((100..=599).contains(&head.status));
        if head_request || head.status == 204 || head.status == 304 || head.status < 200 {
            assert_eq!(head.framing, ResponseFraming::NoBody);
        }
        if head.framing == ResponseFraming::UntilClose {
            assert!(!head.keep_alive);
        }
    }
});
