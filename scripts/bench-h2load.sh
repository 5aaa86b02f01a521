#!/usr/bin/env bash
# uring-load --http2 against h2load: generator CPU per request, the same -c/-m for both,
# against one h2o worker (issue 22's "1.5x h2load's efficiency" goal).
#
#   ROUNDS=5 DURATION=5 bash scripts/bench-h2load.sh OUT_DIR
#
# h2o (one thread) runs on CPU 0 with an h2c and a TLS listener serving a 13-byte file; the
# generator runs on CPU 1 with one thread. Cells: h2c and TLS, `-c 8 -m 32` and
# `-c 8 -m 1`; every round runs every cell with both tools one after the other
# (interleaved). A tool's CPU is the user + system time of its whole process (from
# getrusage of the child; the 8 connects and handshakes are noise against DURATION
# seconds of traffic), divided by the requests it reports as done. Writes OUT_DIR/rounds.csv
# and prints the medians per cell and tool and the ratio h2load / uring-load (above 1:
# uring-load spends less CPU per request).
# Needs h2load (nghttp2-client), h2o and openssl (scripts/bench-install.sh), and
# `cargo build --release -p uring-load`.
set -euo pipefail
out=${1:?usage: bench-h2load.sh OUT_DIR}
rounds=${ROUNDS:-5}
duration=${DURATION:-5}
bin=${BIN:-target/release}
h2c_port=18191
tls_port=18192
mkdir -p "$out"
out=$(cd "$out" && pwd)
csv="$out/rounds.csv"
echo "round,cell,tool,requests,cpu_s,cpu_us_per_request" >"$csv"

for t in h2load h2o openssl; do
    command -v "$t" >/dev/null || { echo "$t missing (scripts/bench-install.sh)" >&2; exit 1; }
done
[ -x "$bin/uring-load" ] || { echo "$bin/uring-load missing: cargo build --release -p uring-load" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"
h2o_pid=""
cleanup() {
    [ -n "$h2o_pid" ] && kill "$h2o_pid" 2>/dev/null && wait "$h2o_pid" 2>/dev/null
    rm -rf "$work"
    return 0
}
trap cleanup EXIT
mkdir "$work/www"
printf 'Hello, World!' >"$work/www/hello.txt"
chmod -R a+rX "$work/www"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
chmod a+r "$work/key.pem" "$work/cert.pem"
cat >"$work/h2o.conf" <<CONF
num-threads: 1
listen:
  host: 127.0.0.1
  port: $h2c_port
listen:
  host: 127.0.0.1
  port: $tls_port
  ssl:
    certificate-file: $work/cert.pem
    key-file: $work/key.pem
error-log: $work/error.log
hosts:
  default:
    paths:
      /:
        file.dir: $work/www
CONF
taskset -c 0 h2o -c "$work/h2o.conf" >/dev/null 2>&1 &
h2o_pid=$!
for port in $h2c_port $tls_port; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
done

# CPU seconds (user + system) of a command and its children, printed after its output.
cpu_of() {
    /usr/bin/python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=False)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("cpu_s:", r.ru_utime + r.ru_stime)' "$@"
}

cell() {
    local round=$1 cell=$2 tool=$3 scheme port streams log
    case "$cell" in
        h2c-*) scheme=http port=$h2c_port ;;
        tls-*) scheme=https port=$tls_port ;;
    esac
    streams=${cell##*-m}
    url="$scheme://127.0.0.1:$port/hello.txt"
    log=$(mktemp)
    if [ "$tool" = h2load ]; then
        cpu_of taskset -c 1 h2load -t 1 -c 8 -m "$streams" -D "$duration" "$url" >"$log" 2>&1
    else
        cpu_of taskset -c 1 "$bin/uring-load" --http2 --streams "$streams" -t 1 -c 8 \
            -d "${duration}s" --insecure --no-pin -q "$url" >"$log" 2>&1
    fi
    local done cpu
    done=$(awk '/^requests:/{for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^done/) print $i}' "$log" | tr -d ,)
    cpu=$(awk '/^cpu_s:/{print $2}' "$log")
    if [ -z "$done" ] || [ "$done" = 0 ]; then
        echo "$tool $cell: no requests done:" >&2
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    echo "$round,$cell,$tool,$done,$cpu,$(/usr/bin/python3 -c "print(round($cpu * 1e6 / $done, 4))")" | tee -a "$csv"
}

for round in $(seq "$rounds"); do
    for c in h2c-m32 h2c-m1 tls-m32 tls-m1; do
        for tool in uring-load h2load; do
            cell "$round" "$c" "$tool"
        done
    done
done

/usr/bin/python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for cell in ["h2c-m32", "h2c-m1", "tls-m32", "tls-m1"]:
    for tool in ["uring-load", "h2load"]:
        xs = [float(r["cpu_us_per_request"]) for r in rows if r["cell"] == cell and r["tool"] == tool]
        med[cell, tool] = statistics.median(xs)
print(f"{'cell':10} {'uring-load us/req':>18} {'h2load us/req':>14} {'h2load/uring-load':>18}")
for cell in ["h2c-m32", "h2c-m1", "tls-m32", "tls-m1"]:
    u, h = med[cell, "uring-load"], med[cell, "h2load"]
    print(f"{cell:10} {u:18.3f} {h:14.3f} {h / u:18.2f}x")
PY
