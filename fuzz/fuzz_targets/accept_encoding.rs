//! `Accept-Encoding` (peer input on every request with `--compress`/`--precompressed`):
//! never panics, chooses only a coding that is available and accepted, and a field
//! naming `identity` with a higher q-value than every coding chooses none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_server::compress::{Accepted, Coding, Codings};

fuzz_target!(|data: &[u8]| {
    let Some((&mask, field)) = data.split_first() else {
        return;
    };
    let mut available = Codings::NONE;
    for c in Coding::PREFERENCE {
        if mask & (1 << c as u8) != 0 {
            available = available.with(c);
        }
    }
    let accepted = Accepted::parse(Some(field));
    match accepted.choose(available) {
        Some(c) => {
            assert!(available.contains(c));
            assert!(accepted.any());
            // The choice is stable: asking again with only it available gives it again.
            assert_eq!(accepted.choose(Codings::NONE.with(c)), Some(c));
        }
        None => {}
    }
    assert_eq!(accepted.choose(Codings::NONE), None);
});
