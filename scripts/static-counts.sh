#!/usr/bin/env bash
# Issue 12: countable costs of a static file response, per request, for each body path and
# tier: context switches, io-wq hand-offs (io_uring_queue_async_work) and syscalls of the
# server's whole process (perf stat follows the io-wq threads it starts), io_uring SQEs
# submitted and CQEs posted, while uring-load fetches one file N times. Counts do not depend on the machine's load the way times do.
# Usage: scripts/static-counts.sh [N] [FILE_BYTES...]   (after cargo build --release)
#   MODES="splice splice-ring read" TIERS="basic multishot full" CLOSE=1 (new connection
#   per request) BIN=DIR (uring-server and uring-load from DIR) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
shift || true
sizes=${*:-65536 1048576}
modes=${MODES:-splice splice-ring}
tiers=${TIERS:-basic multishot full}
bin=${BIN:-target/release}
root=$(mktemp -d "$PWD/target/static-counts.XXXXXX")
trap 'rm -rf "$root"' EXIT
for size in $sizes; do head -c "$size" /dev/urandom >"$root/f$size"; done
port=18$((RANDOM % 900 + 100))
keep=-k
[ "${CLOSE:-0}" = 1 ] && keep=
printf '%-8s %-10s %-12s %8s %8s %8s %8s %8s %8s %8s\n' bytes tier mode req/s cpu-us/req ctxsw/req iowq/req sysc/req sqe/req cqe/req
for size in $sizes; do
  for tier in $tiers; do
    for mode in $modes; do
      out=$(mktemp)
      perf stat -x, -o "$out" \
        -e task-clock,context-switches,io_uring:io_uring_queue_async_work,raw_syscalls:sys_enter \
        -e io_uring:io_uring_submit_req,io_uring:io_uring_complete -- \
        taskset -c 0 "$bin/uring-server" --workers 1 --listen "127.0.0.1:$port" \
        --root "$root" --tier "$tier" --file-body "$mode" --file-memory-max 16384 &
      perf_pid=$!
      for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/f$size" && break
        sleep 0.05
      done
      rps=$(taskset -c 1 "$bin/uring-load" -n "$n" -c 64 $keep --json \
        "http://127.0.0.1:$port/f$size" 2>/dev/null |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r.get("requests_per_sec", r.get("rps", 0))))' || echo ?)
      kill -TERM $(pgrep -P "$perf_pid") 2>/dev/null || true
      wait "$perf_pid" || true
      python3 - "$out" "$n" "$size" "$tier" "$mode" "$rps" <<'EOF'
import sys
out, n, size, tier, mode, rps = sys.argv[1:]
n = int(n)
c = {}
for line in open(out):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        c[f[2]] = float(f[0])
g = lambda k: c.get(k, 0) / n
print(f"{size:<8} {tier:<10} {mode:<12} {rps:>8} {g('task-clock')*1000:8.1f} {g('context-switches'):8.2f} "
      f"{g('io_uring:io_uring_queue_async_work'):8.2f} {g('raw_syscalls:sys_enter'):8.2f} "
      f"{g('io_uring:io_uring_submit_req'):8.2f} {g('io_uring:io_uring_complete'):8.2f}")
EOF
      rm -f "$out"
    done
  done
done
