#!/usr/bin/env bash
# Proxy overhead: uring-server --proxy against nginx proxy_pass (upstream keepalive 32), both
# in front of one uring-server /plaintext upstream on the load tool's CPU; ka64 with
# uring-load. ROUNDS (default 5) rounds, the two proxies interleaved (the order alternates),
# then the medians. The proxy rows of BENCHMARKS.md come from here:
#   cargo build --release --workspace --bins && bash scripts/bench-proxy.sh [OUT]
# FRONTS names the two compare servers (ours first): scripts/bench-uwsgi-front.sh sets
# uring-uwsgi,nginx-uwsgi (the same in front of one uWSGI process).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/proxy}
ROUNDS=${ROUNDS:-5}
FRONTS=${FRONTS:-uring-proxy,nginx-proxy}
OURS=${FRONTS%%,*}
THEIRS=${FRONTS##*,}
mkdir -p "$OUT"
for i in $(seq 1 "$ROUNDS"); do
  order="$OURS,$THEIRS"
  if (( i % 2 == 0 )); then order="$THEIRS,$OURS"; fi
  target/release/compare --servers "$order" --tools uring-load --workloads ka64 \
    --runs 1 --duration 5 --warmup 1 --out "$OUT/round-$i" 2>/dev/null
done
python3 - "$OUT" "$ROUNDS" "$OURS" "$THEIRS" <<'PY'
import json, statistics, sys
out, rounds, ours, theirs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = {}
for i in range(1, rounds + 1):
    for c in json.load(open(f"{out}/round-{i}/compare.json"))["cells"]:
        if c["status"] == "ok":
            r = rows.setdefault(c["server"], {"rps": [], "cpu": [], "bad": 0})
            r["rps"].append(c["rps"]["median"])
            r["cpu"].append(c["server_cpu_us"]["median"])
            r["bad"] += c["failed"] + c["errored"]
lines = ["| proxy | req/s (median) | min–max | proxy CPU µs/req (median) | min–max | failed+errored | rounds |",
         "|---|--:|--:|--:|--:|--:|--:|"]
for name in (ours, theirs):
    r = rows.get(name)
    if not r:
        lines.append(f"| {name} | failed | | | | | |")
        continue
    lines.append(f"| {name} | {statistics.median(r['rps']):,.0f} | {min(r['rps']):,.0f}–{max(r['rps']):,.0f} "
                 f"| {statistics.median(r['cpu']):.2f} | {min(r['cpu']):.2f}–{max(r['cpu']):.2f} | {r['bad']} | {len(r['rps'])} |")
if ours in rows and theirs in rows:
    u, n = rows[ours], rows[theirs]
    lines.append("")
    lines.append(f"Efficiency (nginx CPU µs/req over ours, median): {statistics.median(n['cpu']) / statistics.median(u['cpu']):.2f}x; "
                 f"req/s ratio {statistics.median(u['rps']) / statistics.median(n['rps']):.2f}x; {rounds} rounds.")
text = "\n".join(lines) + "\n"
open(f"{out}/proxy.md", "w").write(text)
print(text)
PY
