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
# uring-load spends less CPU per request). With oha (`OHA=/path/to/oha`, else
# bench-results/cache/oha/bin/oha or oha on PATH; scripts/bench-install.sh builds it from
# crates.io) each cell also runs `oha --http2 -c 8 -p M --worker-threads 1`, and the table
# adds its column and oha / uring-load.
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
tools=(uring-load h2load)
oha=${OHA:-}
if [ -z "$oha" ]; then
    if [ -x bench-results/cache/oha/bin/oha ]; then
        oha=bench-results/cache/oha/bin/oha
    else
        oha=$(command -v oha || true)
    fi
fi
if [ -n "$oha" ]; then
    tools+=(oha)
else
    echo "oha not found (OHA=..., or scripts/bench-install.sh): running without it" >&2
fi

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

# CPU seconds (user + system) of a command and its children, printed on a line of its own
# after its output (oha's JSON ends without a newline).
cpu_of() {
    /usr/bin/python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=False)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("\ncpu_s:", r.ru_utime + r.ru_stime)' "$@"
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
    local done cpu
    case "$tool" in
        h2load)
            cpu_of taskset -c 1 h2load -t 1 -c 8 -m "$streams" -D "$duration" "$url" >"$log" 2>&1
            ;;
        oha)
            # One runtime thread, as the others; JSON so that the count is exact.
            cpu_of taskset -c 1 "$oha" --http2 -c 8 -p "$streams" -z "${duration}s" \
                --worker-threads 1 --insecure --no-tui --output-format json "$url" >"$log" 2>&1
            ;;
        *)
            cpu_of taskset -c 1 "$bin/uring-load" --http2 --streams "$streams" -t 1 -c 8 \
                -d "${duration}s" --insecure --no-pin -q "$url" >"$log" 2>&1
            ;;
    esac
    if [ "$tool" = oha ]; then
        # Responses of any status (oha counts errors apart, in errorDistribution).
        done=$(/usr/bin/python3 -c '
import json, sys
text = open(sys.argv[1]).read()
report = json.loads(text[text.index("{"):text.rindex("}") + 1])
print(sum(report["statusCodeDistribution"].values()))' "$log" 2>/dev/null || true)
    else
        done=$(awk '/^requests:/{for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^done/) print $i}' "$log" | tr -d ,)
    fi
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
        for tool in "${tools[@]}"; do
            cell "$round" "$c" "$tool"
        done
    done
done

/usr/bin/python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cells = ["h2c-m32", "h2c-m1", "tls-m32", "tls-m1"]
tools = [t for t in ["uring-load", "h2load", "oha"] if any(r["tool"] == t for r in rows)]
med = {
    (cell, tool): statistics.median(
        float(r["cpu_us_per_request"]) for r in rows if r["cell"] == cell and r["tool"] == tool
    )
    for cell in cells
    for tool in tools
}
head = f"{'cell':10}" + "".join(f"{t + ' us/req':>18}" for t in tools)
head += "".join(f"{t + '/uring-load':>18}" for t in tools[1:])
print(head)
for cell in cells:
    u = med[cell, "uring-load"]
    line = f"{cell:10}" + "".join(f"{med[cell, t]:18.3f}" for t in tools)
    line += "".join(f"{med[cell, t] / u:17.2f}x" for t in tools[1:])
    print(line)
PY
