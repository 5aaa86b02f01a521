#!/usr/bin/env bash
# The generator's CPU per request with the CI features on (issue 24) against a plain run:
# templates ({SEQ}, {LINE:FILE}, {RAND:LO-HI} in the URL, {UUID} in a header), thresholds
# (four, judged at the end), and both. nginx (its own config, a free loopback port, no
# access log, pinned to the first CPU) answers; uring-load (pinned to the last CPU) runs N
# keep-alive requests on 64 connections.
#
# Usage: scripts/bench-loadci.sh BIN_DIR [N] [ROUNDS]
#        BIN_DIR holds a release build of uring-load (cargo build --release -p uring-load;
#        BIN_DIR=target/release); N defaults to 400000, ROUNDS to 9: 3-5 minutes on a
#        quiet 2-core machine (each round's time is printed as it ends).
#        CALLGRIND=1 counts user-space instructions per request instead (valgrind, N
#        defaults to 50000): each variant runs twice, with N/5 and N requests, and the
#        difference is divided by the requests between, so start-up and the report cancel
#        out. Repeatable on a busy machine.
# Timed mode: the four variants run interleaved, the order rotating every round; a run's
# CPU is its user + system time from wait4 (microseconds). Prints each round on stderr,
# then a markdown table on stdout: per variant the median CPU per request, the rounds'
# range, the ratio of the median to plain's, and the per-round ratio to that round's plain
# run (median and range; the pairing cancels drift between rounds). Exits 1 when a
# variant's median is more than 5% over plain's.
set -euo pipefail
bin=${1:?BIN_DIR (e.g. target/release)}
if [ -n "${CALLGRIND:-}" ]; then n=${2:-50000}; rounds=1; else n=${2:-400000}; rounds=${3:-9}; fi
load=$(realpath "$bin/uring-load")
nginx=$(command -v nginx || echo /usr/sbin/nginx)
dir=$(mktemp -d)
ngx_pid=
trap '[ -n "$ngx_pid" ] && kill "$ngx_pid" 2>/dev/null; rm -rf "$dir"' EXIT
port=$((20000 + RANDOM % 20000))
cpus=$(nproc)
cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server { listen 127.0.0.1:$port; location / { return 200 "ok"; } }
}
EOF
taskset -c 0 "$nginx" -p "$dir" -c "$dir/nginx.conf" &
ngx_pid=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
url="http://127.0.0.1:$port"
printf 'k%s\n' $(seq 1 1000) >"$dir/keys.txt"

LOAD="$load" URL="$url" N="$n" ROUNDS="$rounds" CPU=$((cpus - 1)) KEYS="$dir/keys.txt" \
  CALLGRIND="${CALLGRIND:-}" OUT="$dir" /usr/bin/python3 - <<'PY'
import os, re, statistics, subprocess, sys, time

load, url, n = os.environ["LOAD"], os.environ["URL"], int(os.environ["N"])
rounds, cpu, keys = int(os.environ["ROUNDS"]), os.environ["CPU"], os.environ["KEYS"]
callgrind, out = os.environ["CALLGRIND"], os.environ["OUT"]
thresholds = ["--threshold", "p99<10s", "--threshold", "errors<1%",
              "--threshold", "status5xx=0", "--threshold", "rps>1"]
templated = ["-H", "X-Request-Id: {UUID}",
             url + "/item/{SEQ}?k={LINE:" + keys + "}&r={RAND:1-1000000}"]
# The same request with fixed values: what differs is the expansion alone.
plain = ["-H", "X-Request-Id: 5f0c6a2e-8d1b-4c3a-9e7f-0a1b2c3d4e5f",
         url + "/item/1?k=k1&r=500000"]
variants = {
    "plain": plain,
    "templates": templated,
    "thresholds": thresholds + plain,
    "templates+thresholds": thresholds + templated,
}

def args(requests, variant):
    return ["-n", str(requests), "-c", "64", "-k", "--no-pin", "-q"] + variants[variant]

def cpu_seconds(argv):
    """Run uring-load pinned; its user + system CPU from wait4."""
    with open(f"{out}/stderr", "w+") as err:
        p = subprocess.Popen(["taskset", "-c", cpu, load] + argv,
                             stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"uring-load {argv} exited {p.returncode}: {err.read()}")
    return usage.ru_utime + usage.ru_stime

def instructions(name, argv):
    cg = f"{out}/cg.{name}"
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", load] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"uring-load under valgrind exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    m = re.search(r"^(?:summary|totals):\s+(\d+)", open(cg).read(), re.M)
    return int(m.group(1))

names = list(variants)
if callgrind:
    small = n // 5
    print(f"| variant | instructions per request (callgrind, uring-load user space, "
          f"runs of {small} and {n}) | to plain |")
    print("| --- | ---: | ---: |")
    base = None
    for name in names:
        a = instructions(f"{name}.small", args(small, name))
        b = instructions(f"{name}.large", args(n, name))
        per = (b - a) / (n - small)
        base = base or per
        print(f"| {name} | {per:.0f} | {per / base:.3f}x |")
    sys.exit(0)

per_request = {name: [] for name in names}
started = time.monotonic()
for r in range(rounds):
    t0 = time.monotonic()
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
        per_request[name].append(cpu_seconds(args(n, name)) / n * 1e6)
    print(f"round {r + 1}/{rounds} ({time.monotonic() - t0:.0f} s): "
          + ", ".join(f"{k} {v[-1]:.3f}" for k, v in per_request.items()) + " us CPU/request",
          file=sys.stderr)

plain_med = statistics.median(per_request["plain"])
print(f"uring-load CPU per request (user + system), {n} keep-alive requests on 64 "
      f"connections against nginx, {rounds} interleaved rounds, "
      f"{time.monotonic() - started:.0f} s in all:")
print()
print("| variant | median µs CPU/request | range | median / plain's | per-round ratio to plain: median (range) |")
print("| --- | ---: | ---: | ---: | ---: |")
worst = 0.0
for name in names:
    v = per_request[name]
    med = statistics.median(v)
    ratio = med / plain_med
    if name != "plain":
        worst = max(worst, ratio)
    paired = [x / p for x, p in zip(v, per_request["plain"])]
    print(f"| {name} | {med:.3f} | {min(v):.3f}-{max(v):.3f} | {ratio:.3f} | "
          f"{statistics.median(paired):.3f} ({min(paired):.3f}-{max(paired):.3f}) |")
print()
verdict = "PASS" if worst <= 1.05 else "FAIL"
print(f"{verdict}: the CI features cost at most {(worst - 1) * 100:+.1f}% CPU per request (bound 5%)")
sys.exit(0 if verdict == "PASS" else 1)
PY
