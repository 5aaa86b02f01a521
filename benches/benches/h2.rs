//! HTTP/2 codec micro-benchmarks: HPACK decode of a typical GET (first on a connection,
//! and repeated, when the encoder's table makes it a few bytes), HPACK encode of a 200
//! response, a server answering batches of requests, and a full request/response round
//! between two connections in memory.
//!
//! Run: `cargo bench -p uring-benches --bench h2 -- --warm-up-time 1 --measurement-time 3`
//! Instruction counts (repeatable on a busy machine): scripts/callgrind-h2.sh.

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use uring_benches::h2work::{request_batches, serve, Pair, REQUEST, RESPONSE};
use uring_common::h2::hpack::{Decoder, Encoder};

fn encoded_request(repeat: bool) -> (Encoder, Vec<u8>) {
    let mut enc = Encoder::new(4096);
    let mut block = Vec::new();
    for _ in 0..=usize::from(repeat) {
        block.clear();
        enc.encode(REQUEST.iter().copied(), &mut block);
    }
    (enc, block)
}

fn hpack(c: &mut Criterion) {
    let mut g = c.benchmark_group("hpack");
    g.throughput(Throughput::Elements(1));
    for (name, repeat) in [("decode_get_first", false), ("decode_get_repeat", true)] {
        let (_, first) = encoded_request(false);
        let (_, block) = encoded_request(repeat);
        let mut arena = Vec::with_capacity(4096);
        let mut fields = Vec::with_capacity(32);
        g.bench_function(name, |b| {
            b.iter(|| {
                // A fresh table per iteration would measure allocation; instead the
                // first block is decoded again for the repeat case's table state.
                let mut dec = Decoder::new(4096, 1 << 16);
                if repeat {
                    dec.decode(&first, &mut arena, &mut fields).unwrap();
                }
                arena.clear();
                fields.clear();
                dec.decode(black_box(&block), &mut arena, &mut fields)
                    .unwrap();
                black_box(fields.len())
            })
        });
    }
    let mut enc = Encoder::new(4096);
    let mut out = Vec::with_capacity(256);
    enc.encode(RESPONSE.iter().copied(), &mut out);
    g.bench_function("encode_200_indexed", |b| {
        b.iter(|| {
            out.clear();
            enc.start_block(&mut out);
            enc.field(b":status", b"200", false, &mut out);
            for &(n, v) in RESPONSE {
                enc.field(n, v, false, &mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

fn connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("h2_conn");
    let n = 1024;
    let batches = request_batches(n, 32);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("server_1024_requests_32_per_recv", |b| {
        b.iter(|| black_box(serve(&batches)))
    });
    g.throughput(Throughput::Elements(1));
    let mut pair = Pair::new();
    g.bench_function("round_client_and_server", |b| {
        b.iter(|| black_box(pair.round()))
    });
    g.finish();
}

criterion_group!(benches, hpack, connection);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
