#!/usr/bin/env bash
# Where a generator's CPU goes at ka64 against the raw floor server: user and system CPU
# per request of uring-load and of wrk, interleaved rounds (issue 13's "2x wrk" goal).
#
#   ROUNDS=5 bash scripts/bench-generator-split.sh OUT_DIR
#
# The floor server runs on CPU 0, the generator on CPU 1 (one thread, 64 keep-alive
# connections). The generator's utime/stime are read from /proc over the middle of its run
# (after 0.5 s of warm-up, for DURATION-1 seconds) and divided by the requests it ended in
# that window, taken from its request rate. Writes OUT_DIR/rounds.csv, prints the medians.
set -euo pipefail
out=${1:?usage: bench-generator-split.sh OUT_DIR}
rounds=${ROUNDS:-5}
duration=${DURATION:-4}
bin=${BIN:-target/release}
port=18094
mkdir -p "$out"
csv="$out/rounds.csv"
echo "round,tool,requests_per_s,user_us,sys_us,total_us" >"$csv"

command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
for b in floor uring-load; do
    [ -x "$bin/$b" ] || { echo "$bin/$b missing: cargo build --release --workspace --bins" >&2; exit 1; }
done

floor=""
cleanup() {
    [ -n "$floor" ] && kill "$floor" 2>/dev/null && wait "$floor" 2>/dev/null
    return 0
}
trap cleanup EXIT
taskset -c 0 "$bin/floor" --listen "127.0.0.1:$port" -w 1 >/dev/null 2>&1 &
floor=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

cell() {
    local round=$1 tool=$2 pid log before after window
    log=$(mktemp)
    url="http://127.0.0.1:$port/plaintext"
    if [ "$tool" = wrk ]; then
        taskset -c 1 wrk -t1 -c64 -d"${duration}s" "$url" >"$log" 2>&1 &
    else
        taskset -c 1 "$bin/uring-load" -c 64 -k -d "${duration}s" "$url" >"$log" 2>&1 &
    fi
    pid=$!
    sleep 0.5
    before=$(awk '{print $14, $15}' "/proc/$pid/stat")
    window=$((duration - 1))
    sleep "$window"
    after=$(awk '{print $14, $15}' "/proc/$pid/stat")
    wait "$pid"
    local rps
    rps=$(awk '/^Requests\/sec:/{print $2}' "$log")
    rm -f "$log"
    python3 - "$round" "$tool" "$rps" "$window" "$before" "$after" >>"$csv" <<'PY'
import os, sys
round_, tool, rps, window, before, after = sys.argv[1:]
hz = os.sysconf("SC_CLK_TCK")
n = float(rps) * float(window)
(u0, s0), (u1, s1) = [map(int, x.split()) for x in (before, after)]
user = (u1 - u0) / hz * 1e6 / n
sys_ = (s1 - s0) / hz * 1e6 / n
print(f"{round_},{tool},{float(rps):.0f},{user:.3f},{sys_:.3f},{user + sys_:.3f}")
PY
    tail -1 "$csv"
}

for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="uring-load wrk"; else order="wrk uring-load"; fi
    for t in $order; do cell "$r" "$t"; done
done

python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["tool"], []).append(r)
for t, rs in by.items():
    med = {k: statistics.median(float(r[k]) for r in rs) for k in ("user_us", "sys_us", "total_us")}
    print(f"{t}: median user {med['user_us']:.2f} sys {med['sys_us']:.2f} total {med['total_us']:.2f} us/req")
ratios, bound = [], []
for rnd in sorted({r["round"] for r in rows}):
    cells = {r["tool"]: r for r in rows if r["round"] == rnd}
    ratios.append(float(cells["wrk"]["total_us"]) / float(cells["uring-load"]["total_us"]))
    bound.append(float(cells["wrk"]["total_us"]) / float(cells["uring-load"]["sys_us"]))
print("wrk / uring-load, median of per-round ratios: %.3f (rounds %s)"
      % (statistics.median(ratios), ", ".join("%.3f" % x for x in ratios)))
print("upper bound with no user time at all (wrk total / uring-load system): %.3f" % statistics.median(bound))
PY
