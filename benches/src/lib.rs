//! Benchmark support code: the baseline servers' shared pieces (`peer`) and the
//! side-by-side comparison harness (`harness`) behind `src/bin/compare.rs`. The criterion
//! micro-benchmarks are in `benches/`.

pub mod harness;
pub mod peer;
