#!/usr/bin/env python3
"""User and system CPU per request from /proc/PID/stat readings, for the split scripts
(scripts/bench-epoll-split.sh, scripts/bench-generator-split.sh).

  cpu-split.py cell ROUND NAME REQUESTS "UTIME STIME" "UTIME STIME" [EXTRA]
      prints one CSV row: ROUND,NAME,[EXTRA,]REQUESTS,user_us,sys_us,total_us
  cpu-split.py summary CSV KEY CHEAP DEAR
      per KEY value: median user/sys/total; then DEAR / CHEAP total per round (median),
      and DEAR total / CHEAP system: the ratio CHEAP would reach with no user time at all.
"""
import csv
import os
import statistics
import sys


def cell(round_, name, requests, before, after, *extra):
    hz = os.sysconf("SC_CLK_TCK")
    n = float(requests)
    (u0, s0), (u1, s1) = [map(int, x.split()) for x in (before, after)]
    user = (u1 - u0) / hz * 1e6 / n
    sys_ = (s1 - s0) / hz * 1e6 / n
    print(",".join([round_, name, *extra, f"{n:.0f}", f"{user:.3f}", f"{sys_:.3f}", f"{user + sys_:.3f}"]))


def summary(path, key, cheap, dear):
    rows = list(csv.DictReader(open(path)))
    for name in (cheap, dear):
        rs = [r for r in rows if r[key] == name]
        med = {k: statistics.median(float(r[k]) for r in rs) for k in ("user_us", "sys_us", "total_us")}
        reqs = statistics.median(float(r["requests"]) for r in rs)
        print(f"{name}: median user {med['user_us']:.2f} sys {med['sys_us']:.2f} "
              f"total {med['total_us']:.2f} us/req ({reqs:.0f} requests a cell)")
    ratios, bound = [], []
    for rnd in sorted({r["round"] for r in rows}, key=int):
        cells = {r[key]: r for r in rows if r["round"] == rnd}
        ratios.append(float(cells[dear]["total_us"]) / float(cells[cheap]["total_us"]))
        bound.append(float(cells[dear]["total_us"]) / float(cells[cheap]["sys_us"]))
    print(f"{dear} / {cheap}, median of per-round ratios: {statistics.median(ratios):.3f} "
          f"(rounds {', '.join(f'{x:.3f}' for x in ratios)})")
    print(f"bound with no user time in {cheap} ({dear} total / {cheap} system), median: "
          f"{statistics.median(bound):.3f}")


if __name__ == "__main__":
    if len(sys.argv) >= 7 and sys.argv[1] == "cell":
        cell(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "summary":
        summary(*sys.argv[2:])
    else:
        sys.exit(__doc__)
