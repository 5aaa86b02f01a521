#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine (idempotent; run as root).
set -euo pipefail
need=()
for pair in nginx:nginx-light wrk:wrk h2load:nghttp2-client ab:apache2-utils curl:curl python3:python3 openssl:openssl script:bsdutils; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# The seed study's smoke (tests/tests/bench_smoke.rs) makes CPython and PyPy venvs.
# uring-load's reports: HdrHistogram's Java HistogramLogProcessor reads --latency-log files,
# headless Chromium renders the HTML report (tests/tests/load_over_time.rs).
for pkg in pypy3 pypy3-venv python3-venv default-jre-headless libhdrhistogram-java chromium fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# nginx from the package starts a system instance on port 80 on some images; the tests
# start their own instances with their own configs and do not need it.
