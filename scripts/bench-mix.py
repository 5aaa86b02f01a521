#!/usr/bin/env python3
"""The cost of a request mix, and uring-load against wrk, in interleaved rounds.

Usage: scripts/bench-mix.py [BIN_DIR] [ROUNDS] [DURATION]
(defaults target/release, 5 rounds, 3 s). Each round, in an order that alternates:

- `compare --servers floor --tools uring-load,wrk --workloads ka64 --runs 1` (the
  harness: floor pinned on CPU 0, the tool on CPU 1, 64 keep-alive connections);
- uring-load against its own floor (CPU 0) with one URL, and with a 10-target mix
  (`--urls`, ten paths of the same length on that floor), pinned on CPU 1, 64 keep-alive
  connections, `-d DURATION` after a 1 s warm-up run; CPU from wait4's rusage (the whole
  process, start-up included, over the responses of the run).

Prints medians over the rounds (and each round's figures) as Markdown."""
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

bins = sys.argv[1] if len(sys.argv) > 1 else "target/release"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
duration = int(sys.argv[3]) if len(sys.argv) > 3 else 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def load(args):
    """uring-load on CPU 1 with `args`; (req/s, CPU us per request)."""
    cmd = ["taskset", "-c", "1", f"{bins}/uring-load", "-q", "--json", "--no-pin"] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd} failed: {p.stderr.read().decode()}")
    v = json.loads(out)
    done = v["requests"]["done"]
    return v["rps"], (ru.ru_utime + ru.ru_stime) * 1e6 / done


def mix_cells(tmp):
    port = free_port()
    floor = subprocess.Popen(["taskset", "-c", "0", f"{bins}/floor", "--listen",
                              f"127.0.0.1:{port}", "-w", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        urls = os.path.join(tmp, "ten.txt")
        with open(urls, "w") as f:
            for i in range(10):
                f.write(f"{url}/plaintex{i}\n")
        base = ["-c", "64", "-k"]
        load(base + ["-d", "1s", f"{url}/plaintext"])  # warm-up, not counted
        base += ["-d", f"{duration}s"]
        single = load(base + [f"{url}/plaintext"])
        mix = load(base + ["--urls", urls])
        return single, mix
    finally:
        floor.kill()
        floor.wait()


def harness(tmp, r):
    out = os.path.join(tmp, f"compare-{r}")
    subprocess.run([f"{bins}/compare", "--servers", "floor", "--tools", "uring-load,wrk",
                    "--workloads", "ka64", "--runs", "1", "--duration", str(duration),
                    "--warmup", "1", "--bin-dir", bins, "--out", out],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = json.load(open(os.path.join(out, "compare.json")))["cells"]
    got = {}
    for c in cells:
        if c["status"] == "ok":
            got[c["tool"]] = (c["rps"]["median"], c["tool_cpu_us"]["median"])
    return got


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            if r % 2 == 0:
                h = harness(tmp, r)
                single, mix = mix_cells(tmp)
            else:
                single, mix = mix_cells(tmp)
                h = harness(tmp, r)
            rows.append({"uring-load": h["uring-load"], "wrk": h["wrk"],
                         "single": single, "mix10": mix,
                         "load": os.getloadavg()[0]})
            print(f"round {r + 1}: {rows[-1]}", file=sys.stderr)
    med = lambda k, i: statistics.median(row[k][i] for row in rows)
    print("| cell | req/s (median) | tool µs/req (median) | per round µs/req |")
    print("|---|--:|--:|---|")
    for k, name in (("uring-load", "harness ka64: uring-load"), ("wrk", "harness ka64: wrk"),
                    ("single", "uring-load, one URL"), ("mix10", "uring-load, 10-target mix")):
        per = ", ".join(f"{row[k][1]:.2f}" for row in rows)
        print(f"| {name} | {med(k, 0):,.0f} | {med(k, 1):.2f} | {per} |")
    wrk_ratio = statistics.median(row["wrk"][1] / row["uring-load"][1] for row in rows)
    mix_ratio = statistics.median(row["mix10"][1] / row["single"][1] for row in rows)
    print(f"\nwrk µs/req ÷ uring-load µs/req (median of per-round ratios): {wrk_ratio:.2f}x")
    print(f"10-target mix ÷ one URL, CPU per request (median of per-round ratios): {mix_ratio:.3f}")
    loads = ", ".join("%.1f" % row["load"] for row in rows)
    print(f"load average during the rounds: {loads}")


if __name__ == "__main__":
    main()
