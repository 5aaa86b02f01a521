#!/usr/bin/env bash
# Short, bounded fuzzing of every codec target (cargo-fuzz + libFuzzer).
#
# The toolchain here is stable; cargo-fuzz needs nightly flags (-Zsanitizer=address), so
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them. New corpus entries go to a temporary
# directory, never into fuzz/corpus/ (the committed seeds stay as they are).
#
# Overflow checks are on: an arithmetic overflow (a chunk size near u64::MAX added to a
# body length) must crash a target, not wrap as release code does. cargo-fuzz builds
# optimised without them unless asked, so `--debug-assertions` is passed here, and
# fuzz/Cargo.toml's release profile sets overflow-checks and debug-assertions as well.
#
# Usage: scripts/fuzz-smoke.sh [seconds-per-target]   (default 20)
#        FUZZ_TARGETS="chunked stream" scripts/fuzz-smoke.sh 5
#        scripts/fuzz-smoke.sh --build-only              (CI: just build the targets)
# Exits non-zero if any target crashes, leaks, times out or fails to build.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

build_only=0
secs=20
case "${1:-}" in
    --build-only) build_only=1 ;;
    "") ;;
    *) secs="$1" ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

cargo fuzz build --debug-assertions
if [ "$build_only" = 1 ]; then
    echo "fuzz-smoke: built: $(echo $targets)"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in $targets; do
    mkdir -p "$work/$t" "corpus/$t"
    echo "fuzz-smoke: $t for ${secs}s" >&2
    # -rss_limit_mb and -timeout turn memory blow-ups and hangs into failures too.
    if ! cargo fuzz run --debug-assertions "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$work/" >"$work/$t.log" 2>&1; then
        echo "fuzz-smoke: $t FAILED; last lines of its log:" >&2
        tail -n 40 "$work/$t.log" >&2
        for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
            [ -e "$a" ] || continue
            mkdir -p "$root/fuzz/artifacts/$t"
            cp "$a" "$root/fuzz/artifacts/$t/"
            echo "fuzz-smoke: reproducer kept in fuzz/artifacts/$t/$(basename "$a")" >&2
        done
        failed+=("$t")
    else
        grep -E "^Done|stat::number_of_executed_units" "$work/$t.log" | tail -n 1 >&2 || true
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz-smoke: failing targets: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz-smoke: all targets ran ${secs}s without a crash"
