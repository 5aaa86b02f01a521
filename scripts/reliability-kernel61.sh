#!/usr/bin/env bash
# Prove the full tier on a real Linux 6.1 kernel (its minimum: multishot recv,
# SINGLE_ISSUER + DEFER_TASKRUN), not on whatever the machine runs.
#
# Boots Debian bookworm's linux-image-6.1.0-*-amd64 under qemu-system-x86_64 (TCG) with
# static builds of uring-server and uring-load. The console must show: the kernel is 6.1,
# both programs probed the full tier (not forced), `uring-load -n 2000 -c 8 -k` counted
# exactly 2000 successes and 0 errors, and uring-server, sent SIGTERM, drained and exited
# 0 within its drain timeout. Then kTLS for real: the package's tls.ko (and the AEAD
# modules) insmod'ed, `uring-server --ktls` hands every TLS session to the kernel
# (metrics and /proc/net/tls_stat), exact counts over TLS 1.3 and a byte-exact 2 MiB file
# over TLS 1.2 and 1.3 with each AEAD. See scripts/reliability-kernel.sh.
#
# Usage: scripts/reliability-kernel61.sh [--smoke]
# Env: KERNEL61_DIR, KERNEL61_TIMEOUT, KERNEL61_REQUESTS, KERNEL61_CONNS,
#      KERNEL61_SHARED_CACHE, KERNEL_STATIC_TARGET.
exec bash "$(dirname "$0")/reliability-kernel.sh" 61 "$@"
