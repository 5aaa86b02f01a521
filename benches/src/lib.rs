//! Benchmark support code: the baseline servers' shared pieces (`peer`) and the
//! side-by-side comparison harness (`harness`) behind `src/bin/compare.rs`. The criterion
//! micro-benchmarks are in `benches/`; `h2work` holds the HTTP/2 codec workloads they
//! share with `src/bin/h2-rounds.rs`.

pub mod h2work;
pub mod harness;
pub mod peer;
