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
echo "round,tool,requests,user_us,sys_us,total_us" >"$csv"

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
    python3 scripts/cpu-split.py cell "$round" "$tool" "$(python3 -c "print($rps * $window)")" "$before" "$after" >>"$csv"
    tail -1 "$csv"
}

for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="uring-load wrk"; else order="wrk uring-load"; fi
    for t in $order; do cell "$r" "$t"; done
done

python3 scripts/cpu-split.py summary "$csv" tool uring-load wrk
