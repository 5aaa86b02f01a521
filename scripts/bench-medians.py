#!/usr/bin/env python3
"""Medians per cell over the rounds written by bench-before-after.sh, and B/A ratios.

Usage: bench-medians.py OUT_DIR A B  (reads OUT_DIR/A-*/compare.json and OUT_DIR/B-*/...)
Prints a Markdown table: req/s and CPU us/request (server and tool) per side, medians over
the rounds, and the B/A ratio of each."""
import glob
import json
import statistics
import sys


def cells(out, side):
    by = {}
    for path in sorted(glob.glob(f"{out}/{side}-*/compare.json")):
        for c in json.load(open(path))["cells"]:
            if c["status"] != "ok":
                continue
            key = (c["server"], c["tool"], c["workload"])
            for name, v in (("rps", c["rps"]["median"]),
                            ("server_us", c["server_cpu_us"]["median"]),
                            ("tool_us", (c.get("tool_cpu_us") or {}).get("median"))):
                if v is not None:
                    by.setdefault(key, {}).setdefault(name, []).append(v)
    return by


def main():
    out, a, b = sys.argv[1:4]
    ca, cb = cells(out, a), cells(out, b)
    print(f"| server | tool | workload | rounds | req/s {a} | req/s {b} | {b}/{a} "
          f"| server us/req {a} | {b} | {b}/{a} | tool us/req {a} | {b} | {b}/{a} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(set(ca) & set(cb)):
        row = list(key)
        n = min(len(ca[key]["rps"]), len(cb[key]["rps"]))
        row.append(str(n))
        for name, fmt in (("rps", "{:,.0f}"), ("server_us", "{:.2f}"), ("tool_us", "{:.2f}")):
            va, vb = ca[key].get(name), cb[key].get(name)
            if not va or not vb:
                row += ["", "", ""]
                continue
            ma, mb = statistics.median(va), statistics.median(vb)
            row += [fmt.format(ma), fmt.format(mb), f"{mb / ma:.3f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
