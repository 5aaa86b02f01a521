#!/usr/bin/env python3
"""Medians over the rounds written by bench-static.sh, and nginx ÷ uring-server CPU ratios.

Usage: bench-static-medians.py OUT_DIR  (reads OUT_DIR/main-*/ and OUT_DIR/paths-*/compare.json)"""
import glob
import json
import statistics
import sys


def cells(out, kind):
    by = {}
    for path in sorted(glob.glob(f"{out}/{kind}-*/compare.json")):
        for c in json.load(open(path))["cells"]:
            if c["status"] != "ok":
                continue
            key = (c["workload"], c["tool"], c["server"])
            d = by.setdefault(key, {"rps": [], "us": []})
            d["rps"].append(c["rps"]["median"])
            d["us"].append(c["server_cpu_us"]["median"])
    return by


def med(v):
    return statistics.median(v) if v else float("nan")


def table(by, title):
    print(f"\n{title}\n")
    print("| workload | tool | server | rounds | req/s (median) | server µs/req (median) | µs/req min–max |")
    print("|---|---|---|--:|--:|--:|--:|")
    for key in sorted(by):
        d = by[key]
        print(f"| {key[0]} | {key[1]} | {key[2]} | {len(d['us'])} | {med(d['rps']):,.0f} "
              f"| {med(d['us']):.1f} | {min(d['us']):.1f}–{max(d['us']):.1f} |")


def main():
    out = sys.argv[1]
    m = cells(out, "main")
    table(m, "uring-server vs nginx")
    print("\n| workload | tool | CPU efficiency: nginx µs ÷ uring-server µs | req/s ratio |")
    print("|---|---|--:|--:|")
    for (w, t) in sorted({(k[0], k[1]) for k in m}):
        u, n = m.get((w, t, "uring-server")), m.get((w, t, "nginx"))
        if u and n:
            print(f"| {w} | {t} | {med(n['us']) / med(u['us']):.2f}× | {med(u['rps']) / med(n['rps']):.2f}× |")
    table(cells(out, "paths"), "body paths (uring-server variants, uring-load)")


if __name__ == "__main__":
    main()
