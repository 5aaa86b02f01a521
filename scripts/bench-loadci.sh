#!/usr/bin/env bash
# The generator's CPU per request with the CI features on (issue 24): templates in the
# URL and a header, and thresholds, against a plain run. nginx (its own config, a free
# loopback port, no access log) answers; uring-load runs N keep-alive requests.
#
# Usage: scripts/bench-loadci.sh BIN_DIR [N] [ROUNDS]
#        BIN_DIR holds a release build of uring-load (cargo build --release -p uring-load;
#        BIN_DIR=target/release); N defaults to 1000000, ROUNDS to 7.
#        CALLGRIND=1 counts user-space instructions per request instead (valgrind; N
#        defaults to 50000, one round): repeatable on a busy machine.
# Timed mode: the variants run interleaved (the order rotates every round), the generator
# pinned to the last CPU and nginx to the first; each run's CPU is utime + stime from
# /proc/PID/stat, read when it has exited and before it is reaped. Prints the median CPU
# per request of each variant over the rounds and its ratio to the plain run, and exits 1
# when a variant costs more than 5% over the plain one.
set -euo pipefail
bin=${1:?BIN_DIR (e.g. target/release)}
if [ -n "${CALLGRIND:-}" ]; then n=${2:-50000}; rounds=1; else n=${2:-1000000}; rounds=${3:-7}; fi
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
import os, re, statistics, subprocess, sys

load, url, n = os.environ["LOAD"], os.environ["URL"], int(os.environ["N"])
rounds, cpu, keys = int(os.environ["ROUNDS"]), os.environ["CPU"], os.environ["KEYS"]
callgrind, out = os.environ["CALLGRIND"], os.environ["OUT"]
common = ["-n", str(n), "-c", "64", "-k", "--no-pin", "-q"]
thresholds = ["--threshold", "p99<10s", "--threshold", "errors<1%",
              "--threshold", "status5xx=0", "--threshold", "rps>1"]
variants = {
    "plain": common + [url + "/item"],
    "seq": common + [url + "/item/{SEQ}"],
    "templates": common + ["-H", "X-Request-Id: {UUID}",
                           url + "/item/{SEQ}?k={LINE:" + keys + "}&r={RAND:1-1000000}"],
    "templates+thresholds": common + thresholds + ["--json", "-H", "X-Request-Id: {UUID}",
                           url + "/item/{SEQ}?k={LINE:" + keys + "}&r={RAND:1-1000000}"],
}

def cpu_seconds(args):
    """Run uring-load pinned; its utime + stime from /proc/PID/stat after it exited."""
    p = subprocess.Popen(["taskset", "-c", cpu, load] + args,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Wait for the exit without reaping, so /proc/PID/stat still holds the totals.
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
    with open(f"/proc/{p.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    p.wait()
    if p.returncode != 0:
        sys.exit(f"uring-load {args} exited {p.returncode}: {p.stderr.read().decode()}")
    return ticks / os.sysconf("SC_CLK_TCK")

def instructions(name, args):
    cg = f"{out}/cg.{name}"
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", load] + args,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"uring-load under valgrind exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    text = open(cg).read()
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    return int(m.group(1))

names = list(variants)
if callgrind:
    base = None
    for name in names:
        total = instructions(name, variants[name])
        per = total / n
        base = base or per
        print(f"{name:22s} {total:>14d} instructions, {per:10.1f} per request, {per / base:.3f}x plain")
    sys.exit(0)

per_request = {name: [] for name in names}
for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
        per_request[name].append(cpu_seconds(variants[name]) / n * 1e6)
    print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}us" for k, v in per_request.items()),
          file=sys.stderr)
plain = statistics.median(per_request["plain"])
worst = 1.0
for name in names:
    med = statistics.median(per_request[name])
    ratio = med / plain
    worst = max(worst, ratio)
    print(f"{name:22s} median {med:.3f} us CPU per request over {rounds} rounds, {ratio:.3f}x plain")
verdict = "PASS" if worst <= 1.05 else "FAIL"
print(f"{verdict}: the CI features cost at most {(worst - 1) * 100:.1f}% (bound 5%)")
sys.exit(0 if verdict == "PASS" else 1)
PY
