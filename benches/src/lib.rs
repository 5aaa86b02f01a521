//! Benchmark support code; see `benches/` and `src/bin/`.
