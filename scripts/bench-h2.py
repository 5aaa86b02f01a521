#!/usr/bin/python3
"""HTTP/2 servers side by side: uring-server, h2o and nginx under h2load (issue 21).

Each server gets one worker pinned to CPU 0; h2load runs pinned to CPU 1. For every round
(default 5) and every cell, the three servers are measured one after the other
(interleaved), each cell a warm-up then a timed run; server CPU per request comes from
/proc/PID/stat (utime + stime of the server's process tree) divided by the requests h2load
counts as succeeded. The medians over the rounds and their ratios are printed, and the
raw rounds written as JSON.

Cells: h2c and TLS, `-c 8 -m 32` and `-c 8 -m 1`, a 13-byte file and a 64 KiB file. Every
server serves the same files from one directory (the same work for all three: nginx and
h2o have no built-in /plaintext), with access logs off.

Usage: scripts/bench-h2.py [--rounds 5] [--duration 5] [--bin target/release/uring-server]
       [--cells h2c-m32,tls-m32,...] [--out bench-results/h2]
Needs h2load (nghttp2-client), h2o, nginx and openssl (scripts/bench-install.sh).
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")

CELLS = {
    # name: (tls, streams, path)
    "h2c-m32": (False, 32, "/hello.txt"),
    "h2c-m1": (False, 1, "/hello.txt"),
    "tls-m32": (True, 32, "/hello.txt"),
    "tls-m1": (True, 1, "/hello.txt"),
    "tls-64k-m32": (True, 32, "/file64k.bin"),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_ticks(pid):
    """utime + stime of pid and its children (nginx's worker is a child)."""
    total = 0
    pids = [pid]
    try:
        kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def wait_port(port, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench-h2: nothing listens on {port}")


def start(name, work, args, ports):
    plain, tls = ports
    www, cert, key = f"{work}/www", f"{work}/cert.pem", f"{work}/key.pem"
    if name == "uring-server":
        cmd = [args.bin, "-w", "1", "--listen", f"127.0.0.1:{plain}",
               "--tls-listen", f"127.0.0.1:{tls}", "--tls-cert", cert, "--tls-key", key,
               "--root", www]
    elif name == "h2o":
        conf = f"{work}/h2o.conf"
        with open(conf, "w") as f:
            f.write(f"""listen:
  host: 127.0.0.1
  port: {plain}
listen:
  host: 127.0.0.1
  port: {tls}
  ssl:
    certificate-file: {cert}
    key-file: {key}
num-threads: 1
error-log: {work}/h2o.err
hosts:
  "*":
    paths:
      "/":
        file.dir: {www}
""")
        cmd = ["h2o", "-c", conf]
    else:
        conf = f"{work}/nginx.conf"
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  open_file_cache max=1000;
  client_body_temp_path {work}/nb; proxy_temp_path {work}/np; fastcgi_temp_path {work}/nf;
  uwsgi_temp_path {work}/nu; scgi_temp_path {work}/ns;
  server {{
    listen 127.0.0.1:{plain} http2;
    listen 127.0.0.1:{tls} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {www};
  }}
}}
""")
        cmd = ["nginx", "-c", conf, "-p", work]
    p = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.DEVNULL,
                         stderr=open(f"{work}/{name}.stderr", "w"))
    wait_port(plain)
    wait_port(tls)
    return p


def h2load(cell, ports, seconds):
    tls, streams, path = CELLS[cell]
    port = ports[1] if tls else ports[0]
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}"
    # -D counts only its own seconds; the CPU is read around this call, so a warm-up
    # inside it (--warm-up-time) would be CPU without requests: the caller warms up apart.
    cmd = ["taskset", "-c", "1", "h2load", "-c", "8", "-m", str(streams), "-t", "1",
           "-D", str(seconds), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not m:
        raise SystemExit(f"bench-h2: h2load said:\n{out}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--bin", default="target/release/uring-server")
    ap.add_argument("--servers", default="uring-server,h2o,nginx")
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--out", default="bench-results/h2")
    args = ap.parse_args()
    servers = args.servers.split(",")
    cells = args.cells.split(",")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-h2-")
    # h2o run as root serves as nobody: the files and its error log must be reachable.
    os.chmod(work, 0o777)
    os.makedirs(f"{work}/www")
    with open(f"{work}/www/hello.txt", "wb") as f:
        f.write(b"Hello, World!")
    with open(f"{work}/www/file64k.bin", "wb") as f:
        f.write(bytes(i * 7 % 251 for i in range(64 * 1024)))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem"],
                   check=True, capture_output=True)
    rows = []
    for r in range(1, args.rounds + 1):
        for name in servers:
            ports = (free_port(), free_port())
            p = start(name, work, args, ports)
            try:
                for cell in cells:
                    h2load(cell, ports, 1)  # warm-up, not measured
                    t0 = tree_ticks(p.pid)
                    n = h2load(cell, ports, args.duration)
                    t1 = tree_ticks(p.pid)
                    us = (t1 - t0) * 1e6 / TICK / max(n, 1)
                    rows.append({"round": r, "server": name, "cell": cell, "requests": n,
                                 "rps": n / args.duration, "cpu_us_per_req": us})
                    print(f"round {r} {name:12} {cell:12} {n / args.duration:>10.0f} req/s "
                          f"{us:6.2f} us/req", file=sys.stderr)
            finally:
                p.terminate()
                p.wait(timeout=10)
    json.dump(rows, open(f"{args.out}/rounds.json", "w"), indent=1)
    print(f"\n| cell | " + " | ".join(f"{s} µs/req" for s in servers) +
          " | h2o ÷ ours | nginx ÷ ours |")
    print("|---|" + "--:|" * (len(servers) + 2))
    for cell in cells:
        med = {s: statistics.median(x["cpu_us_per_req"] for x in rows
                                    if x["server"] == s and x["cell"] == cell)
               for s in servers}
        ours = med.get("uring-server")
        ratio = lambda s: f"{med[s] / ours:.2f}x" if ours and s in med else "-"
        print(f"| {cell} | " + " | ".join(f"{med[s]:.2f}" for s in servers) +
              f" | {ratio('h2o')} | {ratio('nginx')} |")


if __name__ == "__main__":
    main()
