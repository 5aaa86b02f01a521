#!/bin/bash
# Issue 14's benchmark: 5 interleaved rounds, each running every server and tool once.
# Usage: docs/bench/2026-11-30-epoll/rounds.sh [OUT]; then python3 medians.py OUT
set -euo pipefail
out=${1:-bench-results/epoll}
cd "$(dirname "$0")/../../.."
for r in 1 2 3 4 5; do
  target/release/compare --servers uring-server-epoll,nginx,uring-server --tools uring-load \
    --workloads ka64,pipe16,file64k,close --runs 1 --duration 3 --warmup 1 --out "$out/srv-$r"
  target/release/compare --servers nginx --tools uring-load-epoll,wrk,uring-load \
    --workloads ka64,pipe16 --runs 1 --duration 3 --warmup 1 --out "$out/tool-$r"
done
