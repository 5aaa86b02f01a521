//! Criterion micro-benchmarks of the statistics path that runs once per response in
//! uring-load: recording a latency into the per-thread HdrHistogram, and merging the
//! threads' recorders at the end of a run.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use uring_common::stats::Recorder;

/// Latencies spread over four decades, as a loaded run produces; a fixed pseudo-random
/// sequence so that runs compare.
fn latencies(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            10 + x % 100_000 / (1 + x % 97)
        })
        .collect()
}

fn record(c: &mut Criterion) {
    let values = latencies(4096);
    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("record_latency_us", |b| {
        let mut r = Recorder::new();
        b.iter(|| {
            for &v in &values {
                r.record_latency_us(black_box(v));
            }
        })
    });
    g.bench_function("record_latency_corrected_us", |b| {
        let mut r = Recorder::new();
        b.iter(|| {
            for &v in &values {
                r.record_latency_corrected_us(black_box(v), 1000);
            }
        })
    });
    g.finish();
    let mut full = Recorder::new();
    for &v in &latencies(100_000) {
        full.record_latency_us(v);
    }
    c.bench_function("histogram/merge", |b| {
        b.iter(|| {
            let mut total = Recorder::new();
            total.merge(black_box(&full));
            total
        })
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
