//! uwsgi packets built from fuzzed request heads parse back (as uWSGI parses them) into
//! the variables of that request; a head the codec refuses gets 400 or 431, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};
use uring_server::proxy::cgi::CgiContext;
use uring_server::proxy::uwsgi::{parse_packet, write_request};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head_bytes: 1 << 20,
        max_headers: 256,
        max_target_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut storage = new_header_storage();
    let Ok(Parsed::Complete(head)) = parse_request(data, &mut storage, &limits) else {
        return;
    };
    let ctx = CgiContext {
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "[::1]:8080".parse().unwrap(),
        server_name: b"fuzz",
        tls: data.len() % 2 == 0,
        document_root: b"/srv",
    };
    let body = &data[head.head_len..];
    let mut out = Vec::new();
    match write_request(&head, &ctx, body, &mut out) {
        Err(e) => {
            assert!(out.is_empty());
            assert!(matches!(e.status(), 400 | 431));
        }
        Ok(()) => {
            let p = parse_packet(&out).expect("our own packet parses");
            assert_eq!(p.modifier1, 0);
            assert_eq!(&out[p.len..], body);
            let var = |n: &[u8]| p.vars.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
            assert_eq!(var(b"REQUEST_METHOD"), Some(head.method.as_bytes()));
            assert!(head
                .target
                .ends_with(std::str::from_utf8(var(b"REQUEST_URI").unwrap()).unwrap()));
            assert!(var(b"PATH_INFO").unwrap().starts_with(b"/"));
            assert_eq!(var(b"HTTPS").is_some(), ctx.tls);
            for (k, _) in &p.vars {
                assert!(k
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_'));
            }
        }
    }
});
