#!/usr/bin/env bash
# uring-server vs nginx as the front of one uWSGI hello-world process (issue 25): our
# `--proxy /plaintext=uwsgi://` against nginx's `uwsgi_pass` (Debian's uwsgi_params), the
# uWSGI process (--processes 1, the seed's app) on the load tool's CPU, so the front's CPU
# per request is its own; ka64 with uring-load, ROUNDS (default 7) interleaved rounds of
# 5 s, medians. About 2.5 minutes:
#   cargo build --release --workspace --bins && bash scripts/bench-uwsgi-front.sh [OUT]
# Needs nginx and uwsgi with its python3 plugin (scripts/bench-install.sh). Goal: nginx's
# CPU per request at least 1.3x ours.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7} FRONTS=uring-uwsgi,nginx-uwsgi \
  exec bash scripts/bench-proxy.sh "${1:-bench-results/uwsgi-front}"
