#!/usr/bin/env bash
# Run every test: install the peers the tests start, build the binaries, run the suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
