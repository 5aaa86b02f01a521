#!/usr/bin/env bash
# Gateway (issue 23): uring-server --proxy with two upstreams and --balance least-conn
# against nginx proxy_pass to an upstream block of the same two (least_conn, keepalive
# 32); both upstreams are uring-server /plaintext (one worker each) on the load tool's
# CPU, so the proxy's CPU time is its own. ka64 with uring-load. ROUNDS (default 5)
# rounds, the two gateways interleaved (the order alternates), then the medians; about
# 2 minutes:
#   cargo build --release --workspace --bins && bash scripts/bench-gateway.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/gateway}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
mkdir -p "$OUT"
for i in $(seq 1 "$ROUNDS"); do
  order="uring-gateway,nginx-gateway"
  if (( i % 2 == 0 )); then order="nginx-gateway,uring-gateway"; fi
  target/release/compare --servers "$order" --tools uring-load --workloads ka64 \
    --runs 1 --duration "$DURATION" --warmup 1 --out "$OUT/round-$i" 2>/dev/null
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for i in range(1, rounds + 1):
    for c in json.load(open(f"{out}/round-{i}/compare.json"))["cells"]:
        if c["status"] == "ok":
            r = rows.setdefault(c["server"], {"rps": [], "cpu": [], "bad": 0})
            r["rps"].append(c["rps"]["median"])
            r["cpu"].append(c["server_cpu_us"]["median"])
            r["bad"] += c["failed"] + c["errored"]
lines = ["| gateway (2 upstreams, least-conn) | req/s (median) | min–max | proxy CPU µs/req (median) | min–max | failed+errored |",
         "|---|--:|--:|--:|--:|--:|"]
for name in ("uring-gateway", "nginx-gateway"):
    r = rows.get(name)
    if not r:
        lines.append(f"| {name} | failed | | | | |")
        continue
    lines.append(f"| {name} | {statistics.median(r['rps']):,.0f} | {min(r['rps']):,.0f}–{max(r['rps']):,.0f} "
                 f"| {statistics.median(r['cpu']):.2f} | {min(r['cpu']):.2f}–{max(r['cpu']):.2f} | {r['bad']} |")
if "uring-gateway" in rows and "nginx-gateway" in rows:
    u, n = rows["uring-gateway"], rows["nginx-gateway"]
    lines.append("")
    lines.append(f"Efficiency (nginx CPU µs/req over ours, median; goal >= 1.3x): {statistics.median(n['cpu']) / statistics.median(u['cpu']):.2f}x; "
                 f"req/s ratio {statistics.median(u['rps']) / statistics.median(n['rps']):.2f}x; {rounds} rounds.")
text = "\n".join(lines) + "\n"
open(f"{out}/gateway.md", "w").write(text)
print(text)
PY
