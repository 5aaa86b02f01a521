//! Codec micro-benchmarks: our request-head parse plus framing, side by side with bare
//! httparse on the same bytes; response heads; chunked decoding.
//!
//! Run: `cargo bench -p uring-benches --bench codec -- --warm-up-time 1 --measurement-time 3`
//! The goal (issue 2, item 7): our layer adds at most 20% over bare httparse.

use std::hint::black_box;
use std::mem::MaybeUninit;

use criterion::{criterion_group, Criterion, Throughput};
use uring_common::http::{
    new_header_storage, parse_request, parse_response, ChunkEvent, ChunkedDecoder, Limits, Parsed,
};

/// What Chrome sends for a page load (15 fields, 815 bytes).
const BROWSER: &[u8] = b"GET /docs/guide/index.html?lang=en&theme=dark HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/docs/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.1.1234567890.1700000000\r\n\r\n";

/// The TechEmpower plaintext request (as wrk sends it in their pipeline script).
const PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: server\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n\
Cookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\n\
Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Connection: keep-alive\r\n\r\n";

/// A short request of the kind load tools send (wrk, weighttp).
const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
Content-Type: text/plain\r\n\
Content-Length: 13\r\n\
Connection: keep-alive\r\n\r\nHello, World!";

fn bare_httparse_uninit(buf: &[u8]) -> usize {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 256];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut storage[..100]) {
        Ok(httparse::Status::Complete(n)) => n + req.headers.len(),
        _ => 0,
    }
}

fn bare_httparse(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n + req.headers.len(),
        _ => 0,
    }
}

fn ours(buf: &[u8], limits: &Limits) -> usize {
    let mut storage = new_header_storage();
    match parse_request(buf, &mut storage, limits) {
        Ok(Parsed::Complete(h)) => h.head_len + h.headers.len() + usize::from(h.keep_alive),
        _ => 0,
    }
}

fn requests(c: &mut Criterion) {
    let limits = Limits::default();
    for (name, buf) in [
        ("browser", BROWSER),
        ("plaintext", PLAINTEXT),
        ("minimal", MINIMAL),
    ] {
        assert_ne!(ours(buf, &limits), 0, "{name} must parse");
        let mut g = c.benchmark_group(format!("request_head/{name}"));
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function("httparse_uninit", |b| {
            b.iter(|| bare_httparse_uninit(black_box(buf)))
        });
        g.bench_function("httparse_parse", |b| {
            b.iter(|| bare_httparse(black_box(buf)))
        });
        g.bench_function("uring_common", |b| {
            b.iter(|| ours(black_box(buf), black_box(&limits)))
        });
        g.finish();
    }
}

fn responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("response_head");
    g.throughput(Throughput::Bytes(RESPONSE.len() as u64));
    g.bench_function("httparse_lenient", |b| {
        b.iter(|| bare_response(black_box(RESPONSE)))
    });
    g.bench_function("uring_common", |b| {
        b.iter(|| our_response(black_box(RESPONSE)))
    });
    g.finish();
}

fn chunked_body(chunk: usize, total: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let data = vec![b'x'; chunk];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&data[..n]);
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn decode_all(input: &[u8]) -> usize {
    let mut d = ChunkedDecoder::new();
    let mut at = 0;
    let mut body = 0;
    loop {
        match d.decode(&input[at..]) {
            Ok((n, ChunkEvent::Data(s))) => {
                at += n;
                body += s.len();
            }
            Ok((_, ChunkEvent::Done)) => return body,
            _ => return 0,
        }
    }
}

fn chunked(c: &mut Criterion) {
    for (name, chunk) in [("1KiB_chunks", 1024), ("16B_chunks", 16)] {
        let input = chunked_body(chunk, 64 * 1024);
        assert_eq!(decode_all(&input), 64 * 1024);
        let mut g = c.benchmark_group(format!("chunked/{name}"));
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("uring_common", |b| b.iter(|| decode_all(black_box(&input))));
        g.finish();
    }
}

/// Interleaved min-of-rounds comparison, printed after criterion's report. On a shared
/// 2-core machine criterion's sequential measurements drift with the load of other
/// processes by more than the difference being measured; alternating short rounds of
/// each variant and keeping each one's fastest round cancels most of that drift.
fn paired_report() {
    const ROUNDS: usize = 150;
    const ITERS: u32 = 20_000;
    fn round(f: &mut dyn FnMut() -> usize) -> f64 {
        let start = std::time::Instant::now();
        let mut sink = 0;
        for _ in 0..ITERS {
            sink += f();
        }
        black_box(sink);
        start.elapsed().as_nanos() as f64 / f64::from(ITERS)
    }
    let limits = Limits::default();
    println!("\npaired (min of {ROUNDS} interleaved rounds of {ITERS} parses, ns per parse):");
    println!(
        "{:<10} {:>16} {:>15} {:>13} {:>13} {:>13}",
        "request", "httparse_uninit", "httparse_parse", "uring_common", "vs uninit", "vs parse"
    );
    for (name, buf) in [
        ("browser", BROWSER),
        ("plaintext", PLAINTEXT),
        ("minimal", MINIMAL),
    ] {
        let (mut a, mut b, mut c) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            a = a.min(round(&mut || bare_httparse_uninit(black_box(buf))));
            b = b.min(round(&mut || bare_httparse(black_box(buf))));
            c = c.min(round(&mut || ours(black_box(buf), black_box(&limits))));
        }
        println!(
            "{name:<10} {a:>16.1} {b:>15.1} {c:>13.1} {:>+12.1}% {:>+12.1}%",
            (c / a - 1.0) * 100.0,
            (c / b - 1.0) * 100.0
        );
    }
    let (mut a, mut c) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        a = a.min(round(&mut || bare_response(black_box(RESPONSE))));
        c = c.min(round(&mut || our_response(black_box(RESPONSE))));
    }
    println!(
        "{:<10} {a:>16.1} {:>15} {c:>13.1} {:>+12.1}%   (httparse with the same lenient config)",
        "response",
        "-",
        (c / a - 1.0) * 100.0
    );
}

/// httparse with the lenient switches our response parser turns on.
fn bare_response(buf: &[u8]) -> usize {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 256];
    let mut res = httparse::Response::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    match config.parse_response_with_uninit_headers(&mut res, buf, &mut storage) {
        Ok(httparse::Status::Complete(n)) => n + res.headers.len(),
        _ => 0,
    }
}

fn our_response(buf: &[u8]) -> usize {
    let mut storage = new_header_storage();
    match parse_response(buf, &mut storage, false, 16 * 1024) {
        Ok(Parsed::Complete(h)) => h.head_len + h.headers.len(),
        _ => 0,
    }
}

criterion_group!(benches, requests, responses, chunked);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (which passes --bench), not when `cargo test` smoke-runs
    // the bench target.
    if std::env::args().any(|a| a == "--bench") {
        paired_report();
    }
}
