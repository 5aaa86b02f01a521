#!/usr/bin/env bash
# User-space instructions per request of uring-server, counted by callgrind: repeatable
# whatever else the machine is doing (a timing benchmark on this machine swings by 10-20%).
# The server runs under valgrind with one worker; uring-load sends N keep-alive requests
# (64 connections) to /plaintext; the counters are zeroed before and dumped after the load.
#
# Usage: scripts/callgrind-per-request.sh BIN_DIR [N] [SERVER_ARG...]   (BIN_DIR holds
#        release builds of uring-server and uring-load; N defaults to 50000; the rest goes to
#        the server, e.g. `--tier epoll`, or `--access-log FILE --metrics 127.0.0.1:0`)
#        KEEP_CG=DIR copies the callgrind output to DIR; CLOSE=1 sends
#        every request on its own connection instead of keep-alive; PIPELINE=N keeps N
#        requests in flight per keep-alive connection. GENERATOR=1 counts uring-load instead:
#        the server runs natively, uring-load (one thread) under valgrind twice, with N/5
#        and N requests, and the difference per request is printed (start-up cancels out).
# Prints: instructions in the server (or generator) per request. Kernel work is not counted.
set -euo pipefail
bin=${1:?BIN_DIR}; n=${2:-50000}
shift $(($# < 2 ? $# : 2))
out=$(mktemp -d)
trap '[ -n "${KEEP_CG:-}" ] && cp "$out"/cg.out* "$KEEP_CG" ; rm -rf "$out"' EXIT
ka=-k; [ -n "${CLOSE:-}" ] && ka=
[ -n "${PIPELINE:-}" ] && ka="-k -K $PIPELINE"
port=$((20000 + RANDOM % 20000))
if [ -n "${GENERATOR:-}" ]; then
  "$bin/uring-server" --listen "127.0.0.1:$port" -w 1 --no-pin "$@" >"$out/server.log" 2>&1 &
  sp=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/plaintext" && break
    sleep 0.1
  done
  count() { # requests -> instructions of one uring-load run
    valgrind --tool=callgrind --callgrind-out-file="$out/gen.$1" "$bin/uring-load" -n "$1" \
      -c 64 -t 1 $ka --no-pin -q "http://127.0.0.1:$port/plaintext" >"$out/load.$1.txt" 2>&1
    grep -E '^(summary|totals):' "$out/gen.$1" | awk '{print $2}' | head -1
  }
  small=$((n / 5))
  a=$(count "$small")
  b=$(count "$n")
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
  echo "$bin: generator $a instructions for $small requests, $b for $n: $(((b - a) / (n - small))) per request"
  exit 0
fi
valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
  "$bin/uring-server" --listen "127.0.0.1:$port" -w 1 --no-pin "$@" >"$out/server.log" 2>&1 &
vp=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/plaintext" && break
  sleep 0.2
done
callgrind_control -z "$vp" >/dev/null
"$bin/uring-load" -n "$n" -c 64 $ka --no-pin -q "http://127.0.0.1:$port/plaintext" >"$out/load.txt"
callgrind_control -d "$vp" >/dev/null
sleep 1
# Under valgrind the server does not always see its SIGTERM; the dump above is what counts.
kill -9 "$vp" 2>/dev/null || true
wait "$vp" 2>/dev/null || true
f=$(ls -t "$out"/cg.out* | head -1)
total=$(grep -E '^(summary|totals):' "$f" | awk '{print $2}' | head -1)
echo "$bin: $total instructions for $n requests: $((total / n)) per request"
