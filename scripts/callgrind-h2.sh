#!/usr/bin/env bash
# Instructions per request of the HTTP/2 codec, counted by callgrind (repeatable on a busy
# machine, unlike timings). Runs benches' h2-rounds twice, with N and 2N requests, and
# prints the difference divided by N, so set-up cost cancels out:
#   server: a server connection answering GETs fed 32 per recv (decode the HEADERS,
#           check the request, encode a 200 with 4 fields and a 13-byte DATA frame);
#           only `serve` is counted (--toggle-collect), not the generation of the input.
#   pair:   a client and a server connection, one request/response round at a time
#           (both sides' work, request encode to response decode).
#
# Usage: scripts/callgrind-h2.sh [N]   (default 20000; builds h2-rounds in release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n=${1:-20000}
cd "$root"
cargo build --release -q -p uring-benches --bin h2-rounds
bin="$root/target/release/h2-rounds"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # mode n [valgrind args...]
    local mode=$1 k=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$mode.$k" "$@" \
        "$bin" "$mode" "$k" >/dev/null 2>"$out/log.$mode.$k"
    grep -E '^(summary|totals):' "$out/cg.$mode.$k" | awk '{print $2}' | head -1
}
a=$(count server "$n" --toggle-collect='*h2work*serve*')
b=$(count server "$((2 * n))" --toggle-collect='*h2work*serve*')
echo "server: $(((b - a) / n)) instructions per request"
a=$(count pair "$n")
b=$(count pair "$((2 * n))")
echo "pair (client + server): $(((b - a) / n)) instructions per round"
