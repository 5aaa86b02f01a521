//! HPACK decoder: arbitrary blocks (the first byte splits the input into two blocks on
//! one connection) never panic, memory stays within the header list limit, and what
//! decodes, encoded again by our encoder, decodes to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::h2::hpack::{Decoder, Encoder, FieldSpan};

const LIST_LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) % (data.len() + 1);
    let mut decoder = Decoder::new(4096, LIST_LIMIT);
    let mut encoder = Encoder::new(4096);
    let mut echo = Decoder::new(4096, usize::MAX);
    for block in [&data[..cut], &data[cut..]] {
        let mut arena = Vec::new();
        let mut fields: Vec<FieldSpan> = Vec::new();
        let result = decoder.decode(block, &mut arena, &mut fields);
        let listed: usize = fields.iter().map(FieldSpan::list_size).sum();
        assert!(listed <= LIST_LIMIT);
        match result {
            Ok(()) => {}
            Err(e) if e.is_compression_error() => return,
            Err(_) => continue,
        }
        let mut out = Vec::new();
        encoder.start_block(&mut out);
        for f in &fields {
            encoder.field(
                &f.name(&arena).to_ascii_lowercase(),
                f.value(&arena),
                f.never_indexed,
                &mut out,
            );
        }
        let mut arena2 = Vec::new();
        let mut fields2 = Vec::new();
        echo.decode(&out, &mut arena2, &mut fields2)
            .expect("our own block decodes");
        assert_eq!(fields.len(), fields2.len());
        for (a, b) in fields.iter().zip(&fields2) {
            assert_eq!(a.name(&arena).to_ascii_lowercase(), b.name(&arena2));
            assert_eq!(a.value(&arena), b.value(&arena2));
            assert_eq!(a.never_indexed, b.never_indexed);
        }
    }
});
