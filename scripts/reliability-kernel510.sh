#!/usr/bin/env bash
# Prove the 5.10 (basic) tier on a real Linux 5.10 kernel, not a forced flag on a new one.
#
# Boots Debian bullseye's linux-image-5.10 under qemu-system-x86_64 with software
# emulation (TCG), with an initramfs holding busybox and static builds of uring-server and
# uring-load. Inside, the server picks its tier by probing the kernel, and
# `uring-load -n 10000 -c 50 -k` runs against it over loopback. The console must show:
# the kernel is 5.10, the server logged the basic tier (not forced), and the load run
# counted exactly 10000 done, 10000 succeeded, 0 errors. Debian's 5.10 has no kTLS
# (CONFIG_TLS unset): `uring-server --ktls` must say so once and serve everything through
# rustls. See scripts/reliability-kernel.sh.
#
# Usage: scripts/reliability-kernel510.sh [--smoke]
# Env: KERNEL510_DIR, KERNEL510_TIMEOUT, KERNEL510_REQUESTS, KERNEL510_CONNS,
#      KERNEL510_SHARED_CACHE, KERNEL_STATIC_TARGET.
exec bash "$(dirname "$0")/reliability-kernel.sh" 510 "$@"
