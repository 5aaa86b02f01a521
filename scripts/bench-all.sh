#!/usr/bin/env bash
# One command for every table and chart: install the peers, build in release mode, run
# the side-by-side comparison and the seed study into bench-results/ (or $1).
# Takes about 30 minutes with the defaults; pass --quick through BENCH_ARGS for a smoke.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results}
bash scripts/bench-install.sh
# shellcheck disable=SC2086
target/release/compare --out "$out" ${BENCH_ARGS:-}
# shellcheck disable=SC2086
target/release/compare seed --out "$out" --cache "${BENCH_CACHE:-bench-results/cache}" ${BENCH_ARGS:-}
echo "results in $out/: compare.md compare.json compare-*.svg seed.md seed.json seed.svg"
