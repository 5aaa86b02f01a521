#!/usr/bin/env bash
# Issue 12: static files, uring-server vs nginx (sendfile on, tcp_nopush on,
# open_file_cache), 1 KiB / 64 KiB / 1 MiB keep-alive and 64 KiB with a new connection per
# request, uring-load and wrk; then the body paths one by one (uring-server-read, -splice
# (inline sendfile for cached pages), -splice-ring (always the ring's SPLICE), -memory). Each round runs every cell once, ROUNDS rounds interleaved, then the medians.
# Usage: scripts/bench-static.sh [OUT]   (ROUNDS default 5, DURATION default 3 s)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/static}
rounds=${ROUNDS:-5}
duration=${DURATION:-3}
bin=target/release
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  "$bin/compare" --servers uring-server,nginx --tools uring-load,wrk \
    --workloads file1k,file64k,file1m,file64k-close \
    --runs 1 --duration "$duration" --warmup 1 --out "$out/main-$r" >/dev/null
  "$bin/compare" --servers uring-server-read,uring-server-splice,uring-server-splice-ring,uring-server-memory \
    --tools uring-load --workloads file1k,file64k,file1m \
    --runs 1 --duration "$duration" --warmup 1 --out "$out/paths-$r" >/dev/null
done
python3 scripts/bench-static-medians.py "$out"
