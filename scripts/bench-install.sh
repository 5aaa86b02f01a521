#!/usr/bin/env bash
# Install the benchmarks' peers on a fresh Debian machine (idempotent; run as root):
# nginx, wrk, h2load, ab, CPython and PyPy with venv support, uWSGI with its python3
# plugin (Debian packages none for PyPy), then gunicorn and tornado (its tornado worker)
# into one venv per interpreter under bench-results/cache (where `compare seed` looks; it also
# makes them itself if they are missing), oha (built from crates.io), and the release
# binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${BENCH_CACHE:-bench-results/cache}
need=()
# Any nginx package will do (the harness writes its own config).
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
for pkg in wrk nghttp2-client apache2-utils python3 python3-venv pypy3 pypy3-venv uwsgi-core uwsgi-plugin-python3 h2o; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
mkdir -p "$cache"
for pair in cpython:/usr/bin/python3 pypy:pypy3; do
  name=${pair%%:*}; python=${pair#*:}
  venv="$cache/venv-$name"
  if [ ! -x "$venv/bin/gunicorn" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c "import gunicorn, tornado" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check gunicorn tornado
  fi
  "$venv/bin/gunicorn" --version
done
# oha (a Rust HTTP/1.1 and HTTP/2 load generator) for scripts/bench-h2load.sh's oha column:
# Debian has no package, so it is built from crates.io at a pinned version (a large build:
# niced, once; bench-h2load.sh finds it here).
if [ ! -x "$cache/oha/bin/oha" ]; then
  nice cargo install oha --locked --version 1.16.0 --root "$cache/oha"
fi
"$cache/oha/bin/oha" --version
cargo build --release --workspace --bins
