#!/usr/bin/env bash
# Where the epoll tier's and nginx's CPU goes under wrk at ka64: user and system CPU per
# request, interleaved rounds, optionally with both servers held to the same CPU budget so
# that wrk (one thread, one core) saturates them instead of being the limit itself.
#
#   ROUNDS=5 QUOTA_PCT=50 bash scripts/bench-epoll-split.sh OUT_DIR
#
# QUOTA_PCT=0 (the default) runs without a budget. The budget is a cgroup CPU quota (v2
# cpu.max or v1 cpu.cfs_quota_us, 4 ms period) around the serving process; needs root.
# Prints one line per cell and the medians; writes OUT_DIR/rounds.csv.
set -euo pipefail
out=${1:?usage: bench-epoll-split.sh OUT_DIR}
rounds=${ROUNDS:-5}
quota=${QUOTA_PCT:-0}
duration=${DURATION:-3}
bin=${BIN:-target/release}
port=18093
mkdir -p "$out"
csv="$out/rounds.csv"
echo "round,server,quota_pct,requests,user_us,sys_us,total_us" >"$csv"

command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx missing (apt-get install nginx)" >&2; exit 1; }
[ -x "$bin/uring-server" ] || { echo "$bin/uring-server missing: cargo build --release -p uring-server" >&2; exit 1; }

cg=""
if [ "$quota" != 0 ]; then
    period=4000
    limit=$((period * quota / 100))
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        cg=/sys/fs/cgroup/bench-epoll-split
        mkdir -p "$cg"
        echo "$limit $period" >"$cg/cpu.max"
    else
        cg=/sys/fs/cgroup/cpu/bench-epoll-split
        mkdir -p "$cg"
        echo "$period" >"$cg/cpu.cfs_period_us"
        echo "$limit" >"$cg/cpu.cfs_quota_us"
    fi
fi

conf_dir=$(mktemp -d)
cat >"$conf_dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $conf_dir/nginx.pid;
error_log $conf_dir/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    keepalive_requests 100000000;
    tcp_nodelay on;
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        location = /plaintext { default_type text/plain; return 200 "Hello, World!"; }
    }
}
EOF

started=""
cleanup() {
    [ -n "$started" ] && kill "$started" 2>/dev/null && wait "$started" 2>/dev/null
    rm -rf "$conf_dir"
    return 0
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $port" >&2
    exit 1
}

# One cell: start the server on CPU 0, drive it with wrk on CPU 1, read the serving
# process's utime/stime before and after.
cell() {
    local round=$1 server=$2 serving
    if [ "$server" = nginx ]; then
        taskset -c 0 nginx -c "$conf_dir/nginx.conf" -p "$conf_dir" &
        started=$!
        wait_port
        serving=$(pgrep -P "$started" | head -1)
    else
        taskset -c 0 "$bin/uring-server" -w 1 --tier epoll --listen "127.0.0.1:$port" >/dev/null 2>&1 &
        started=$!
        wait_port
        serving=$started
    fi
    if [ -n "$cg" ]; then
        for t in /proc/"$serving"/task/*; do echo "${t##*/}" >"$cg/tasks" 2>/dev/null || echo "${t##*/}" >"$cg/cgroup.threads"; done
    fi
    local before after requests
    before=$(awk '{print $14, $15}' "/proc/$serving/stat")
    requests=$(taskset -c 1 wrk -t1 -c64 -d"${duration}s" "http://127.0.0.1:$port/plaintext" | awk '/requests in/{print $1}')
    after=$(awk '{print $14, $15}' "/proc/$serving/stat")
    kill "$started"
    wait "$started" 2>/dev/null || true
    started=""
    python3 scripts/cpu-split.py cell "$round" "$server" "$requests" "$before" "$after" "$quota" >>"$csv"
    tail -1 "$csv"
}

for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="uring-server-epoll nginx"; else order="nginx uring-server-epoll"; fi
    for s in $order; do cell "$r" "$s"; done
done

python3 scripts/cpu-split.py summary "$csv" server uring-server-epoll nginx
