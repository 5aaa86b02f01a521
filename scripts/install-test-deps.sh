#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine (idempotent; run as root).
set -euo pipefail
need=()
for pair in nginx:nginx-light gunicorn:gunicorn wrk:wrk h2load:nghttp2-client ab:apache2-utils curl:curl python3:python3 openssl:openssl script:bsdutils; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# gunicorn (Debian's, run by /usr/bin/python3): the proxy tests put uring-server in front
# of the seed's app (tests/tests/proxy_gunicorn.rs).
# The seed study's smoke (tests/tests/bench_smoke.rs) makes CPython and PyPy venvs.
# uring-load's reports: HdrHistogram's Java HistogramLogProcessor reads --latency-log files,
# headless Chromium renders the HTML report (tests/tests/load_over_time.rs).
# uring-load across machines (tests/tests/load_distributed.rs): pdsh over ssh into network
# namespaces, each with its own sshd; the Kubernetes manifest checked with the official
# client's models (Debian's python3-kubernetes, run by /usr/bin/python3).
# Deployment (tests/tests/server_deploy.rs): promtool (Debian's prometheus) checks the
# /metrics text; systemd-socket-activate (Debian's systemd) is the real socket activator, and
# systemd-analyze verify checks the shipped units (tests/tests/deploy_units.rs).
# App-server upstreams (uring-server/src/proxy/uwsgi.rs, fastcgi.rs): a real uWSGI with
# its python3 plugin, and fcgiwrap, started by tests/tests/proxy_appservers.rs.
# HTTP/2 codec interop (common/tests/h2_interop.rs): Python's h2 (Debian's python3-h2, run
# by /usr/bin/python3) as the independent peer; uring-load --http2 (tests/tests/load_http2.rs)
# also loads h2o (Debian's h2o) and scripted python3-h2 servers that misbehave. The HTTP/2
# conformance suite (tests/h2conformance) builds its frames with python3-hyperframe and
# python3-hpack and calibrates against h2o and nginx. httpx with HTTP/2 (Debian's
# python3-httpx; its http2 extra is python3-h2) is a client of tests/tests/server_http2.rs.
# WebSocket through the proxy (tests/tests/proxy_websocket.rs): Debian's python3-websockets,
# run by /usr/bin/python3, is both the echo server behind it and the client.
for pkg in python3-websockets python3-h2 python3-hyperframe python3-hpack python3-httpx h2o uwsgi-core uwsgi-plugin-python3 fcgiwrap pypy3 pypy3-venv python3-venv default-jre-headless libhdrhistogram-java chromium fonts-dejavu-core pdsh openssh-server openssh-client iproute2 python3-kubernetes python3-yaml prometheus systemd; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# openssh-server may start a system sshd on port 22 where an init system runs; the test
# starts its own, one per network namespace, with its own config and keys.
# nginx from the package starts a system instance on port 80 on some images; the tests
# start their own instances with their own configs and do not need it.
