#!/usr/bin/env bash
# Before/after: two builds of the workspace measured side by side in interleaved rounds
# by the harness (each round runs build A's cells, then build B's, each with its own
# uring-server, uring-load and floor; nginx and wrk are the same in both), then the
# medians per cell and the ratios. Usage:
#   scripts/bench-before-after.sh BIN_DIR_A BIN_DIR_B [OUT] 
# with BIN_DIR_* holding release builds (`cargo build --release --workspace --bins` in two
# worktrees). ROUNDS (default 5), SERVERS, TOOLS, WORKLOADS, DURATION override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?BIN_DIR_A}; b=${2:?BIN_DIR_B}; out=${3:-bench-results/before-after}
rounds=${ROUNDS:-5}
servers=${SERVERS:-uring-server,floor,nginx}
tools=${TOOLS:-uring-load,wrk}
workloads=${WORKLOADS:-ka64,pipe16}
duration=${DURATION:-5}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    dir=$a; [ "$side" = B ] && dir=$b
    "$b/compare" --servers "$servers" --tools "$tools" --workloads "$workloads" \
      --runs 1 --duration "$duration" --warmup 1 --bin-dir "$dir" --out "$out/$side-$r" >/dev/null
  done
done
python3 scripts/bench-medians.py "$out" A B
