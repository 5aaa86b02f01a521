#!/usr/bin/env bash
# Boot a real Debian kernel under QEMU with uring-server and uring-load inside, and check
# that the tier the programs probe is the tier that kernel is meant to give.
#
# Usage: scripts/reliability-kernel.sh PROFILE [--smoke]
#   PROFILE   510  Debian bullseye's linux-image-5.10.0-*-amd64: the basic tier (5.10).
#             61   Debian bookworm's linux-image-6.1.0-*-amd64: the full tier (6.1).
#   --smoke   boot the kernel with busybox only and check the marker (no cargo build);
#             proves the harness itself.
# (scripts/reliability-kernel510.sh and scripts/reliability-kernel61.sh call this.)
#
# Both profiles: the kernel .deb comes from Debian's package registry through apt
# (`apt-get download`, the suite added as a separate source beside the machine's own, on
# the mirror the machine's apt configuration already names), `vmlinuz` is extracted with
# `dpkg-deb -x` and cached in the checkout and machine-wide. Static release builds of
# both programs go into an initramfs with busybox; qemu-system-x86_64 boots it with
# software emulation (TCG); inside, only `lo` is up. The host reads the serial console
# and asserts (all lines the guest prints for it carry the profile's tag, e.g. `K61 `):
#   - the guest kernel is the profile's series (5.10.* / 6.1.*);
#   - uring-server logged the profile's tier (probed, not forced by --tier);
#   - the generator's report says the same tier;
#   - `uring-load -n N -c C -k --json` counted exactly N done, N succeeded, 0 failed,
#     0 errored, status codes {"200": N}, and exited 0;
#   - uring-server, then sent SIGTERM: exit 0 (510 also accepts 143, as it always has);
#     61 also requires the "drained, exiting" line within its --drain-timeout;
#   - uring-server and uring-load as `nobody` with RLIMIT_MEMLOCK 0: served, or failed
#     with one line naming RLIMIT_MEMLOCK;
#   - kTLS: the package's tls.ko and the AEAD modules it needs (gcm, ghash, ctr,
#     chacha20poly1305, with their dependencies from each module's `depends=`) are
#     insmod'ed, `tls` appears in tcp_available_ulp, and `uring-server --ktls` (test
#     certificate made here with openssl) says once that kTLS is on; uring-load https://
#     --insecure counts exactly (TLS 1.3, keep-alive and a connection per request, so the
#     switch runs many times), examples/tls_get fetches a 2 MiB static file byte-exact
#     (sha256) over TLS 1.2 and 1.3 with each of AES-128-GCM, AES-256-GCM and
#     CHACHA20-POLY1305 and ends with close_notify; the server's metrics count every TLS
#     connection as handed to the kernel with no failure and the close_notify closes, /proc/net/tls_stat (6.1; 5.10 has none)
#     shows software kTLS sessions in both directions and no decrypt error, and the
#     server exits 0 on SIGTERM; then the same on the basic tier (single-shot receive)
#     and on epoll, lighter (80 requests on 20 connections, the file over TLS 1.2 and
#     1.3): exact, byte-exact, every session handed over. (510: Debian's 5.10 is built without CONFIG_TLS, so
#     the same runs check the fallback instead: one "unavailable" line, all served by
#     rustls, no session handed over.)
#
# Env (P is KERNEL510 or KERNEL61): P_DIR (cache, default target/kernel510 or
# target/kernel61), P_TIMEOUT (qemu seconds, default 600), P_REQUESTS, P_CONNS (510:
# 10000/50, 61: 2000/8), P_SHARED_CACHE (machine-wide kernel copy, default
# /var/cache/uring-toolkit/kernel510 or .../kernel61), KERNEL_STATIC_TARGET (cargo target
# dir of the static build, shared by both profiles; default target/kernel-static).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PROFILE=${1:-}
MODE=full
if [ "${2:-}" = "--smoke" ]; then MODE=smoke; fi

case "$PROFILE" in
510)
  TAG=K510
  SUITE=bullseye
  # 5.10.223; the newest image matching PKG_RE if Debian has dropped it.
  WANT_PKG=linux-image-5.10.0-32-amd64
  PKG_RE='^linux-image-5\.10\.0-[0-9]+-amd64$'
  KSERIES=5.10.
  TIER=basic
  DEF_REQUESTS=10000
  DEF_CONNS=50
  STRICT_SHUTDOWN=0
  # Debian's 5.10 is built without CONFIG_TLS: --ktls must fall back, saying so once.
  KTLS_EXPECT=off
  ;;
61)
  TAG=K61
  SUITE=bookworm
  # Bookworm's point-release kernel (the suite proper, not -security or -updates, whose
  # images come and go); the newest one there. Not linux-image-6.12.*+deb12: those are
  # bookworm's backported 6.12, and the point is 6.1, the full tier's minimum.
  WANT_PKG=
  PKG_RE='^linux-image-6\.1\.0-[0-9]+-amd64$'
  KSERIES=6.1.
  TIER=full
  DEF_REQUESTS=2000
  DEF_CONNS=8
  STRICT_SHUTDOWN=1
  KTLS_EXPECT=on
  ;;
*)
  echo "usage: $0 510|61 [--smoke]" >&2
  exit 2
  ;;
esac
NAME=kernel$PROFILE
envv() { local v="KERNEL${PROFILE}_$1"; echo "${!v:-$2}"; }

CACHE=$(envv DIR "$ROOT/target/$NAME")
QEMU_TIMEOUT=$(envv TIMEOUT 600)
REQUESTS=$(envv REQUESTS "$DEF_REQUESTS")
CONNS=$(envv CONNS "$DEF_CONNS")
SHARED_KDIR=$(envv SHARED_CACHE "/var/cache/uring-toolkit/$NAME")
STATIC_TARGET=${KERNEL_STATIC_TARGET:-$ROOT/target/kernel-static}
DRAIN_SECS=10
mkdir -p "$CACHE"

log() { echo "$NAME: $*" >&2; }
die() {
  echo "$NAME: FAIL: $*" >&2
  exit 1
}
T0=$(date +%s)
TLAST=$T0
TIMES=()
phase_done() {
  local now
  now=$(date +%s)
  TIMES+=("$1 $((now - TLAST))s")
  TLAST=$now
}

# --- host tools ---------------------------------------------------------------------
# A program interpreter (ld.so) means dynamic linking; static-pie has none. (ldd exits 0
# for static-pie too, so it cannot tell.)
is_dynamic() { readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }
need=()
command -v readelf >/dev/null 2>&1 || need+=(binutils)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
# The initramfs needs a static busybox: the dynamic one would find no libc in the guest.
if [ ! -x /bin/busybox ] || is_dynamic /bin/busybox; then need+=(busybox-static); fi
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
BUSYBOX=/bin/busybox
is_dynamic "$BUSYBOX" && die "$BUSYBOX is dynamically linked; install busybox-static"
phase_done tools

# --- the kernel, from Debian's registry with the suite as a separate apt source -------
# The machine's own apt configuration is left untouched: the suite gets its own sources
# list, lists and cache directories under the cache.
KDIR=$CACHE/kernel
# The modules kernel TLS needs beyond the kernel image: the ULP and the AEAD templates
# the kernel instantiates for each suite (AES itself is built in). Their dependencies
# come from each module's `depends=`; a name with no .ko in the package is built in.
KTLS_MODULES="tls gcm ghash-generic ctr chacha20poly1305 chacha_generic poly1305_generic"
have_kernel() { [ -f "$1/vmlinuz" ] && [ -f "$1/release" ] && [ -f "$1/ktls/order" ]; }
# A machine-wide copy outlives `cargo clean` and fresh clones (CI), and keeps working the
# day the suite or the package leaves the machine's Debian mirror.
if ! have_kernel "$KDIR" && have_kernel "$SHARED_KDIR"; then
  rm -rf "$KDIR" && mkdir -p "$KDIR" && cp -r "$SHARED_KDIR"/{vmlinuz,release,package,ktls} "$KDIR/"
fi
# Copy the modules in `order` into $2 (dependencies first) from the extracted package $1.
collect_ktls() {
  local tree=$1 out=$2 seen=" " order=()
  add() {
    local m=${1//-/_} f deps d
    case "$seen" in *" $m "*) return 0 ;; esac
    seen="$seen$m "
    f=$(find "$tree"/lib/modules/*/kernel -name "$m.ko" -o -name "${m//_/-}.ko" | head -1) || true
    [ -n "$f" ] || return 0
    deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -1) || true
    for d in ${deps//,/ }; do add "$d"; done
    cp "$f" "$out/"
    order+=("$(basename "$f")")
  }
  mkdir -p "$out"
  for m in $KTLS_MODULES; do add "$m"; done
  printf '%s\n' "${order[@]}" >"$out/order"
}
if ! have_kernel "$KDIR"; then
  APTDIR=$CACHE/apt
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/etc" "$APTDIR/deb"
  # Use the Debian mirror this machine's own apt configuration already names (the first
  # URI that is not a security archive), so no host is written here.
  # (Either file kind may be absent: grep then exits 2, which pipefail and set -e would
  # turn into a silent exit of this script, hence the `|| true`.)
  MIRROR=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
              grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                sed -E 's/\[[^]]*\] ?//' | awk '{print $2}'; } | grep -v -- '-security' | head -1) || true
  [ -n "$MIRROR" ] || die "no Debian mirror found in this machine's apt sources"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" \
    >"$APTDIR/etc/sources.list"
  APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APTDIR/etc/sources.list"
    -o "Dir::Etc::sourceparts=$APTDIR/etc/none.d"
    -o "Dir::State::Lists=$APTDIR/lists"
    -o "Dir::Cache=$APTDIR/cache"
    -o "APT::Sandbox::User=root"
  )
  log "fetching $SUITE package lists (separate apt dirs in $APTDIR)"
  timeout 600 apt-get "${APT_OPTS[@]}" update -qq >/dev/null ||
    die "cannot fetch $SUITE's package lists from $MIRROR (has $SUITE moved to Debian's archive?)"
  pkg=$WANT_PKG
  # A kernel cached before the modules were: the same build again, so image and modules
  # agree (name=version from the cached .deb's name).
  cached=$(cat "$KDIR/package" "$SHARED_KDIR/package" 2>/dev/null | head -1) || true
  if [ -n "$cached" ]; then
    exact=$(echo "$cached" | awk -F_ '{print $1 "=" $2}')
    if apt-cache "${APT_OPTS[@]}" show "$exact" >/dev/null 2>&1; then pkg=$exact; fi
  fi
  if [ -z "$pkg" ] || ! apt-cache "${APT_OPTS[@]}" show "$pkg" >/dev/null 2>&1; then
    # No preference, or the exact ABI has been superseded: the newest matching image.
    newest=$(apt-cache "${APT_OPTS[@]}" pkgnames linux-image- | grep -E "$PKG_RE" | sort -V | tail -1) || true
    [ -n "$newest" ] || die "no package matching $PKG_RE in $SUITE"
    [ -n "$pkg" ] && log "$pkg is gone; using $newest"
    pkg=$newest
  fi
  log "downloading $pkg"
  (cd "$APTDIR/deb" && rm -f ./*.deb && timeout 1200 apt-get "${APT_OPTS[@]}" download "$pkg" >/dev/null) ||
    die "apt-get download $pkg failed"
  deb=$(ls "$APTDIR"/deb/*.deb | head -1)
  rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp/x"
  dpkg-deb -x "$deb" "$KDIR.tmp/x"
  vmlinuz=$(ls "$KDIR.tmp"/x/boot/vmlinuz-* 2>/dev/null | head -1) || true
  [ -f "$vmlinuz" ] || die "no boot/vmlinuz-* in $deb"
  cp "$vmlinuz" "$KDIR.tmp/vmlinuz"
  basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$KDIR.tmp/release"
  basename "$deb" >"$KDIR.tmp/package"
  collect_ktls "$KDIR.tmp/x" "$KDIR.tmp/ktls"
  if [ "$KTLS_EXPECT" = on ] && ! grep -q '^tls\.ko$' "$KDIR.tmp/ktls/order"; then
    die "no tls.ko in $deb"
  fi
  rm -rf "$KDIR.tmp/x" "$KDIR"
  mv "$KDIR.tmp" "$KDIR"
  rm -f "$APTDIR"/deb/*.deb
  # Written to a temporary name and renamed, so a concurrent run never reads half a file.
  # (ktls first: have_kernel looks for ktls/order, so a reader never takes a new image
  # with old modules.)
  (mkdir -p "$SHARED_KDIR" && rm -rf "$SHARED_KDIR/.ktls.$$" && cp -r "$KDIR/ktls" "$SHARED_KDIR/.ktls.$$" &&
    rm -rf "$SHARED_KDIR/ktls" && mv "$SHARED_KDIR/.ktls.$$" "$SHARED_KDIR/ktls" &&
    for f in vmlinuz release package; do
      cp "$KDIR/$f" "$SHARED_KDIR/.$f.$$" && mv -f "$SHARED_KDIR/.$f.$$" "$SHARED_KDIR/$f"
    done) 2>/dev/null || true
fi
KREL=$(cat "$KDIR/release")
log "kernel $KREL ($(cat "$KDIR/package")); kTLS modules: $(tr '\n' ' ' <"$KDIR/ktls/order")"
phase_done kernel

# --- static builds of both programs --------------------------------------------------
BINDIR=
if [ "$MODE" = full ]; then
  # A separate target dir: +crt-static must not invalidate the normal builds' artifacts.
  # Shared by the profiles, so the second boot in CI builds nothing.
  log "building static uring-server and uring-load (release) into $STATIC_TARGET"
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
    --target x86_64-unknown-linux-gnu --target-dir "$STATIC_TARGET" \
    -p uring-server -p uring-load --bins --example tls_get
  BINDIR=$STATIC_TARGET/x86_64-unknown-linux-gnu/release
  cp "$BINDIR/examples/tls_get" "$BINDIR/tls_get"
  for b in uring-server uring-load tls_get; do
    [ -x "$BINDIR/$b" ] || die "$BINDIR/$b missing after the build"
    is_dynamic "$BINDIR/$b" && die "$BINDIR/$b is not static"
  done
fi
phase_done build

# --- the initramfs ---------------------------------------------------------------------
IRD=$CACHE/initramfs-$MODE
rm -rf "$IRD" && mkdir -p "$IRD"/{bin,dev,proc,sys,tmp,etc}
cp "$BUSYBOX" "$IRD/bin/busybox"
echo "nobody:x:65534:65534:nobody:/:/bin/sh" >"$IRD/etc/passwd"
echo "nogroup:x:65534:" >"$IRD/etc/group"
BIG_SHA=
if [ "$MODE" = full ]; then
  cp "$BINDIR/uring-server" "$BINDIR/uring-load" "$BINDIR/tls_get" "$IRD/bin/"
  # kTLS: the modules, a test certificate (ECDSA P-256, self-signed), a static file.
  cp -r "$KDIR/ktls" "$IRD/ktls"
  mkdir -p "$IRD/etc/tls" "$IRD/www"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext basicConstraints=critical,CA:FALSE \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$IRD/etc/tls/key.pem" -out "$IRD/etc/tls/cert.pem" 2>/dev/null ||
    die "openssl could not make the test certificate"
  head -c $((2 * 1024 * 1024)) /dev/urandom >"$IRD/www/big.bin"
  BIG_SHA=$(sha256sum "$IRD/www/big.bin" | cut -d' ' -f1)
fi
# Everything the guest prints for this script is prefixed with the tag (`K510 `, `K61 `)
# so that kernel messages interleaved on the console cannot be mistaken for results.
cat >"$IRD/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
ip link set lo up
T=$TAG
echo "\$T KERNEL \$(uname -r)"
MODE=$MODE
REQUESTS=$REQUESTS
CONNS=$CONNS
DRAIN=$DRAIN_SECS
EOF
cat >>"$IRD/init" <<'EOF'
finish() {
  echo "$T END"
  sync
  poweroff -f
}
# Seconds since boot with centiseconds, for the drain time.
now() { cut -d' ' -f1 /proc/uptime; }
# Wait (at most 30 s) until port $1 (hex) listens, or process $2 has gone.
wait_listening() {
  i=0
  while ! grep -q ":$1 00000000:0000 0A" /proc/net/tcp && kill -0 $2 2>/dev/null && [ $i -lt 300 ]; do
    i=$((i + 1))
    sleep 0.1
  done
}
if [ "$MODE" = smoke ]; then
  echo "$T SMOKE ok"
  finish
fi
echo "$T MEMLOCK $(ulimit -l)"
# Unprivileged and with no locked memory at all: 5.10 before 5.10.162 charged rings to
# RLIMIT_MEMLOCK (root's CAP_IPC_LOCK hides that). Later 5.10 stable kernels carry the
# 5.15 io_uring, which does not. Either way the server must work or say so in one line.
(ulimit -l 0; exec su -s /bin/sh -c "exec uring-server --listen 127.0.0.1:8081 -w 1" nobody) >/tmp/u.out 2>/tmp/u.err &
U=$!
wait_listening 1F91 $U
if grep -q ':1F91 00000000:0000 0A' /proc/net/tcp && kill -0 $U 2>/dev/null; then
  # The listener is bound before the workers make their rings: give them a moment.
  sleep 1
  echo "$T UNPRIV-UID $(awk '/^Uid:/ {print $2}' /proc/$U/status)"
  # (busybox nc, not wget: the static wget crashes in glibc's NSS once /etc/passwd exists)
  printf 'GET /plaintext HTTP/1.0\r\n\r\n' | timeout 10 nc 127.0.0.1 8081 >/tmp/u.resp 2>&1
  if grep -q '^HTTP/1.1 200' /tmp/u.resp; then
    echo "$T UNPRIV-SERVED $(tail -c 13 /tmp/u.resp)"
  else
    sed "s/^/$T UNPRIV-RESP /" /tmp/u.resp
  fi
  kill -TERM $U 2>/dev/null
fi
wait $U
echo "$T UNPRIV-EXIT $?"
sed "s/^/$T UNPRIV-ERR /" /tmp/u.err
uring-server --listen 127.0.0.1:8080 -w 1 --drain-timeout "${DRAIN}s" >/tmp/server.out 2>/tmp/server.err &
SERVER=$!
# Wait for the listener: port 8080 = 1F90 in state 0A (LISTEN) in /proc/net/tcp.
i=0
while ! grep -q ':1F90 00000000:0000 0A' /proc/net/tcp; do
  i=$((i + 1))
  if [ $i -gt 600 ] || ! kill -0 $SERVER 2>/dev/null; then
    echo "$T SERVER-NOT-LISTENING"
    sed "s/^/$T SERVER-ERR /" /tmp/server.err
    sed "s/^/$T SERVER-OUT /" /tmp/server.out
    finish
  fi
  sleep 0.1
done
echo "$T SERVER-LISTENING"
# The generator, unprivileged with no locked memory: it works or says so in one line.
(ulimit -l 0; exec su -s /bin/sh -c "exec timeout 60 uring-load -n 100 -c 2 -k -q --json http://127.0.0.1:8080/plaintext" nobody) >/tmp/ml.out 2>/tmp/ml.err
echo "$T UNPRIV-LOAD-EXIT $?"
sed "s/^/$T UNPRIV-LOAD-ERR /" /tmp/ml.err
echo "$T UNPRIV-LOAD-JSON $(tr -d '\n' </tmp/ml.out)"
timeout 300 uring-load -n "$REQUESTS" -c "$CONNS" -k --json http://127.0.0.1:8080/plaintext >/tmp/load.json 2>/tmp/load.err
echo "$T LOAD-RC $?"
# SIGTERM, then wait for the exit: at most the drain timeout plus 5 s, then SIGKILL.
t0=$(now)
kill -TERM $SERVER
i=0
while kill -0 $SERVER 2>/dev/null && [ $i -lt $(((DRAIN + 5) * 10)) ]; do
  # (a zombie still answers kill -0: look at its state)
  grep -q '^State:.*Z' /proc/$SERVER/status 2>/dev/null && break
  i=$((i + 1))
  sleep 0.1
done
t1=$(now)
if kill -0 $SERVER 2>/dev/null && ! grep -q '^State:.*Z' /proc/$SERVER/status 2>/dev/null; then
  echo "$T SERVER-HUNG"
  kill -KILL $SERVER
fi
wait $SERVER
echo "$T SERVER-RC $?"
echo "$T SERVER-STOP-SECS $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
sed "s/^/$T SERVER-ERR /" /tmp/server.err
sed "s/^/$T SERVER-OUT /" /tmp/server.out
sed "s/^/$T LOAD-ERR /" /tmp/load.err
# One line, so the host can parse it even when kernel messages interleave.
echo "$T LOAD-JSON $(tr -d '\n' </tmp/load.json)"
# --- kTLS: load the modules, serve with --ktls, fetch over TLS 1.3 and TLS 1.2 ---------
for f in $(cat /ktls/order); do
  insmod /ktls/$f 2>&1 | sed "s/^/$T KTLS-INSMOD $f: /"
done
echo "$T KTLS-ULP $(cat /proc/sys/net/ipv4/tcp_available_ulp)"
uring-server --tls-listen 127.0.0.1:8443 --tls-cert /etc/tls/cert.pem --tls-key /etc/tls/key.pem \
  --ktls --root /www --metrics 127.0.0.1:9090 -w 1 --drain-timeout 5s >/tmp/ktls.out 2>/tmp/ktls.err &
KS=$!
# Port 8443 = 20FB.
wait_listening 20FB $KS
sleep 1
U=https://127.0.0.1:8443
# TLS 1.3 (rustls client): keep-alive on a few connections, then two requests on each of
# 40 (a switch each; a connection per request would not switch: `Connection: close`).
timeout 120 uring-load -n 1000 -c 4 -k --insecure --json $U/plaintext >/tmp/k1.json 2>/tmp/k1.err
echo "$T KTLS-LOAD-KA-RC $?"
echo "$T KTLS-LOAD-KA-JSON $(tr -d '\n' </tmp/k1.json)"
timeout 120 uring-load -n 80 -c 40 -k --insecure --json $U/plaintext >/tmp/k2.json 2>/tmp/k2.err
echo "$T KTLS-LOAD-CONN-RC $?"
echo "$T KTLS-LOAD-CONN-JSON $(tr -d '\n' </tmp/k2.json)"
timeout 120 uring-load -n 6 -c 2 -k --insecure --json $U/big.bin >/tmp/k3.json 2>/tmp/k3.err
echo "$T KTLS-LOAD-FILE-RC $?"
echo "$T KTLS-LOAD-FILE-JSON $(tr -d '\n' </tmp/k3.json)"
cat /tmp/k1.err /tmp/k2.err /tmp/k3.err | sed "s/^/$T KTLS-LOAD-ERR /"
# Both versions and all three AEADs: a static file, byte-exact (examples/tls_get.rs; its
# first request rides with the handshake, the file comes after the switch).
for v in 1.2 1.3; do
  for c in aes128 aes256 chacha; do
    timeout 60 tls_get 127.0.0.1:8443 /big.bin /etc/tls/cert.pem $v $c >/tmp/big.got 2>/tmp/get.err
    echo "$T KTLS-GET $v-$c $? $(sha256sum /tmp/big.got | cut -d' ' -f1) $(tr -d '\n' </tmp/get.err)"
  done
done
printf 'GET /metrics HTTP/1.0\r\n\r\n' | timeout 10 nc 127.0.0.1 9090 | grep '^uring_server_ktls' |
  sed "s/^/$T KTLS-METRIC /"
[ -f /proc/net/tls_stat ] && sed "s/^/$T KTLS-STAT /" /proc/net/tls_stat
kill -TERM $KS
wait $KS
echo "$T KTLS-SERVER-RC $?"
sed "s/^/$T KTLS-ERR /" /tmp/ktls.err
# The other backends switch too: the basic tier's single-shot receive and epoll's reads.
for tier in basic epoll; do
  uring-server --tls-listen 127.0.0.1:8443 --tls-cert /etc/tls/cert.pem --tls-key /etc/tls/key.pem \
    --ktls --root /www --metrics 127.0.0.1:9090 -w 1 --tier $tier >/dev/null 2>/tmp/kt.err &
  KS=$!
  wait_listening 20FB $KS
  sleep 1
  timeout 120 uring-load -n 80 -c 20 -k --insecure --json $U/plaintext >/tmp/kt.json 2>/dev/null
  r=$?
  timeout 60 tls_get 127.0.0.1:8443 /big.bin /etc/tls/cert.pem 1.2 aes128 2>/dev/null | sha256sum >/tmp/kt.sha
  timeout 60 tls_get 127.0.0.1:8443 /big.bin /etc/tls/cert.pem 1.3 aes256 2>/dev/null | sha256sum >>/tmp/kt.sha
  m=$(printf 'GET /metrics HTTP/1.0\r\n\r\n' | timeout 10 nc 127.0.0.1 9090 | grep '^uring_server_ktls_connections_total ' | cut -d' ' -f2)
  kill -TERM $KS
  wait $KS
  echo "$T KTLS-TIER $tier rc=$r exit=$? handed=$m sha=$(cut -d' ' -f1 /tmp/kt.sha | tr '\n' ,) load=$(tr -d '\n' </tmp/kt.json)"
  sed "s/^/$T KTLS-TIER-ERR $tier /" /tmp/kt.err
done
finish
EOF
chmod +x "$IRD/init"
INITRD=$CACHE/initramfs-$MODE.cpio.gz
(cd "$IRD" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$INITRD"

# --- boot ----------------------------------------------------------------------------
CONSOLE=$CACHE/console-$MODE.log
log "booting under qemu (TCG, timeout ${QEMU_TIMEOUT}s); console in $CONSOLE"
start=$(date +%s)
set +e
timeout --kill-after=10 "$QEMU_TIMEOUT" qemu-system-x86_64 \
  -accel tcg -cpu max -smp 1 -m 512 -nographic -no-reboot -net none \
  -kernel "$KDIR/vmlinuz" -initrd "$INITRD" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" \
  </dev/null >"$CONSOLE" 2>&1
qrc=$?
set -e
log "qemu exited $qrc after $(($(date +%s) - start))s"
phase_done boot
log "times: ${TIMES[*]}; total $(($(date +%s) - T0))s"
[ $qrc -eq 124 ] && die "qemu timed out after ${QEMU_TIMEOUT}s (tail of console below)
$(tail -30 "$CONSOLE")"

# --- verdict -------------------------------------------------------------------------
python3 - "$CONSOLE" "$MODE" "$REQUESTS" "$TAG" "$NAME" "$KSERIES" "$TIER" "$STRICT_SHUTDOWN" "$DRAIN_SECS" "$BIG_SHA" "$KTLS_EXPECT" <<'PY'
import json, re, sys

console, mode, requests, tag, name, kseries, tier, strict, drain, big_sha, ktls = sys.argv[1:]
requests, strict, drain = int(requests), strict == "1", float(drain)
text = open(console, "rb").read().decode("utf-8", "replace").replace("\r", "")
# Firmware escape sequences may precede a marker on its line: look for it anywhere.
mark = tag + " "
lines = [l[l.index(mark) + len(mark):] for l in text.split("\n") if mark in l]
fail = []

def find(prefix):
    return [l[len(prefix):].strip() for l in lines if l.startswith(prefix)]

kernel = find("KERNEL ")
if not kernel or not kernel[0].startswith(kseries):
    fail.append(f"guest kernel is {kernel!r}, want {kseries}*")
if not find("END"):
    fail.append("the guest never reached its END marker")

if mode == "smoke":
    if find("SMOKE ") != ["ok"]:
        fail.append("no SMOKE ok marker")
else:
    server_log = find("SERVER-ERR ") + find("SERVER-OUT ")
    for l in server_log:
        print("  server:", l)
    for l in find("LOAD-ERR "):
        print("  load:", l)
    if find("SERVER-NOT-LISTENING"):
        fail.append("uring-server never listened on 127.0.0.1:8080")
    # The tier must come from the probe: a log line naming the tier, and no sign that it
    # was forced by a flag.
    tier_lines = [l for l in server_log if re.search(r"\btier\b", l, re.I)]
    if not any(re.search(rf"\btier {tier}\b", l, re.I) for l in tier_lines):
        fail.append(f"server did not log the {tier} tier; tier lines: {tier_lines!r}")
    if any(re.search(r"forced|--tier", l, re.I) for l in tier_lines):
        fail.append(f"the tier looks forced: {tier_lines!r}")
    if find("LOAD-RC ") != ["0"]:
        fail.append(f"uring-load exit status {find('LOAD-RC ')!r}, want 0")
    if strict:
        # Clean shutdown: SIGTERM -> drained -> exit 0, within the drain timeout.
        secs = find("SERVER-STOP-SECS ")
        print(f"  server: exited {find('SERVER-RC ')} {secs[0] if secs else '?'} s after SIGTERM")
        if find("SERVER-HUNG"):
            fail.append(f"uring-server still running {drain + 5:.0f} s after SIGTERM (killed)")
        if find("SERVER-RC ") != ["0"]:
            fail.append(f"uring-server exit status after SIGTERM {find('SERVER-RC ')!r}, want 0")
        if not any("drained, exiting" in l for l in server_log):
            fail.append("uring-server did not log 'drained, exiting' after SIGTERM")
        try:
            if float(secs[0]) > drain:
                fail.append(f"uring-server took {secs[0]} s to exit, over its {drain:.0f} s drain timeout")
        except (IndexError, ValueError):
            fail.append(f"no time from SIGTERM to exit: {secs!r}")
    elif find("SERVER-RC ") not in (["0"], ["143"]):
        fail.append(f"uring-server exit status after SIGTERM {find('SERVER-RC ')!r}")
    # Unprivileged: served, or one line naming RLIMIT_MEMLOCK and a non-zero exit.
    unpriv_err = find("UNPRIV-ERR ")
    for l in unpriv_err:
        print("  unprivileged server:", l)
    served = find("UNPRIV-SERVED ")
    unpriv_exit = find("UNPRIV-EXIT ")
    if served:
        if find("UNPRIV-UID ") != ["65534"]:
            fail.append(f"the unprivileged server ran as uid {find('UNPRIV-UID ')!r}, want 65534")
        if served != ["Hello, World!"]:
            fail.append(f"unprivileged server answered {served!r}")
        print("  unprivileged server: served under RLIMIT_MEMLOCK 0 (root's limit:", find("MEMLOCK "), "KiB)")
    else:
        said = [l for l in unpriv_err if re.search(r"memlock", l, re.I)]
        if unpriv_exit in (["0"], ["101"], []) or int(unpriv_exit[0]) >= 128:
            fail.append(f"unprivileged server neither served nor failed cleanly: exit {unpriv_exit!r}")
        if len(said) != 1 or any("panicked" in l for l in unpriv_err):
            fail.append(f"unprivileged server failure does not name RLIMIT_MEMLOCK in one line: {unpriv_err!r}")
    # The generator, unprivileged, RLIMIT_MEMLOCK 0: 100 requests done, or one clean line.
    ex = find("UNPRIV-LOAD-EXIT ")
    err = [l for l in find("UNPRIV-LOAD-ERR ") if l]
    if ex == ["0"]:
        try:
            r = json.loads(find("UNPRIV-LOAD-JSON ")[0])
            ok = r["requests"]["succeeded"] == 100 and r["requests"]["errored"] == 0
        except Exception as e:  # noqa: BLE001
            ok, r = False, e
        if not ok:
            fail.append(f"unprivileged uring-load (RLIMIT_MEMLOCK 0) ran but: {r!r:.300}")
        else:
            print("  unprivileged uring-load: 100 requests under RLIMIT_MEMLOCK 0")
    elif not ex or ex[0] in ("101", "124") or int(ex[0]) >= 128:
        fail.append(f"unprivileged uring-load exited {ex!r}: {err!r}")
    elif len(err) != 1 or not re.search(r"memlock", err[0], re.I):
        fail.append(f"unprivileged uring-load failed without one memlock line: {err!r}")
    raw = find("LOAD-JSON ")
    try:
        report = json.loads(raw[0])
    except Exception as e:  # noqa: BLE001 - any parse failure is a verdict
        report = None
        fail.append(f"uring-load --json output unreadable ({e}): {raw[:1]!r}")
    if report is not None:
        shown = {k: v for k, v in report.items() if k != "histogram"}
        print("  load json (histogram left out):", json.dumps(shown))

        # Schema: uring-load's docs/report-schema.md.
        req = report.get("requests", {})
        errs = report.get("errors", {})
        by_code = report.get("status_codes", {}).get("by_code", {})
        want = {
            "requests.done": (req.get("done"), requests),
            "requests.succeeded": (req.get("succeeded"), requests),
            "requests.failed": (req.get("failed"), 0),
            "requests.errored": (req.get("errored"), 0),
            "sum of errors.*": (sum(errs.values()) if errs else None, 0),
            "status_codes.by_code": (by_code, {"200": requests}),
            # The generator probes the same kernel: it must land on the same tier.
            "load tier": (report.get("tier"), tier),
        }
        for what, (got, exp) in want.items():
            if got != exp:
                fail.append(f"{what} = {got!r}, want {exp!r}")

if mode != "smoke":
    # kTLS: modules in, ULP there, one log line saying it is on, exact counts over TLS 1.3,
    # a byte-exact file and /plaintext over TLS 1.2, every connection in the kernel.
    for l in find("KTLS-INSMOD "):
        print("  ktls insmod:", l)
    ktls_log = find("KTLS-ERR ")
    for l in ktls_log:
        print("  ktls server:", l)
    ulp = (find("KTLS-ULP ") or [""])[0].split()
    said = [l for l in ktls_log if "--ktls" in l]
    if ktls == "on":
        if "tls" not in ulp:
            fail.append(f"tls is not in tcp_available_ulp after insmod: {ulp!r}")
        if len(said) != 1 or "kernel TLS after the handshake" not in said[0]:
            fail.append(f"the --ktls server did not say once that kTLS is on: {said!r}")
    elif len(said) != 1 or "unavailable" not in said[0]:
        fail.append(f"the --ktls server did not say once that it falls back: {said!r}")
    for l in find("KTLS-LOAD-ERR "):
        print("  ktls load:", l)
    conns = 0
    for what, n, c, ka in (("KA", 1000, 4, True), ("CONN", 80, 40, True), ("FILE", 6, 2, True)):
        rc = find(f"KTLS-LOAD-{what}-RC ")
        try:
            r = json.loads(find(f"KTLS-LOAD-{what}-JSON ")[0])
            got = (r["requests"]["succeeded"], r["requests"]["errored"], r["requests"]["failed"])
        except Exception as e:  # noqa: BLE001
            got = repr(e)
        print(f"  ktls uring-load {what}: rc {rc} (succeeded, errored, failed) = {got}")
        if rc != ["0"] or got != (n, 0, 0):
            fail.append(f"uring-load over kTLS ({what}): rc {rc!r}, got {got!r}, want ({n}, 0, 0)")
        conns += c if ka else n
    gets = find("KTLS-GET ")
    for g in gets:
        print("  ktls tls_get:", g)
        parts = g.split()
        if len(parts) < 4 or parts[1] != "0" or parts[2] != big_sha or not parts[3].startswith("200"):
            fail.append(f"tls_get over kTLS: {g!r}, want exit 0, sha256 {big_sha}, 200")
    if len(gets) != 6:
        fail.append(f"tls_get ran {len(gets)} times, want 6 (TLS 1.2 and 1.3 x 3 AEADs)")
    # A suite the kernel refuses (5.10 has no CHACHA20-POLY1305 kTLS) stays in rustls,
    # as the server's line says: those connections are served, not handed over.
    refused = said[0].partition("stays in user space for")[2] if said else ""
    names = {"aes128": "AES-128-GCM", "aes256": "AES-256-GCM", "chacha": "CHACHA20-POLY1305"}
    for g in gets:
        v, _, c = g.split()[0].partition("-")
        if f"TLS {v} {names.get(c, c)}" not in refused:
            conns += 1
    metrics = {}
    for l in find("KTLS-METRIC "):
        k, _, v = l.partition(" ")
        metrics[k] = int(float(v))
    print("  ktls metrics:", metrics)
    if ktls == "off":
        # Everything above was served by rustls in user space, and said so once.
        conns = 0
    if ktls == "off" and metrics.get("uring_server_ktls_connections_total") != 0:
        fail.append(f"sessions handed to a kernel without kTLS: {metrics!r}")
    if metrics.get("uring_server_ktls_connections_total", 0) < conns:
        fail.append(f"sessions handed to the kernel: {metrics!r}, want >= {conns}")
    if metrics.get("uring_server_ktls_failures_total", 1) != 0:
        fail.append(f"kTLS switches failed: {metrics!r}")
    # tls_get ends with close_notify: a kTLS socket reports that record as EIO.
    if ktls == "on" and metrics.get("uring_server_ktls_control_record_closes_total", 0) < 1:
        fail.append(f"no connection closed on a control record (close_notify -> EIO): {metrics!r}")
    stat = {}
    for l in find("KTLS-STAT "):
        parts = l.split()
        if len(parts) == 2:
            stat[parts[0]] = int(parts[1])
    if stat:
        print("  /proc/net/tls_stat:", stat)
        if stat.get("TlsTxSw", 0) < conns or stat.get("TlsRxSw", 0) < conns:
            fail.append(f"/proc/net/tls_stat shows fewer kTLS sessions than connections ({conns}): {stat!r}")
        if stat.get("TlsDecryptError", 0) != 0:
            fail.append(f"kTLS decrypt errors: {stat!r}")
    elif kseries != "5.10.":
        fail.append("no /proc/net/tls_stat on a kernel that has it")
    if find("KTLS-SERVER-RC ") != ["0"]:
        fail.append(f"--ktls server exit status after SIGTERM {find('KTLS-SERVER-RC ')!r}, want 0")
    for l in find("KTLS-TIER-ERR "):
        print("  ktls server (other tier):", l)
    tiers = find("KTLS-TIER ")
    if len(tiers) != 2:
        fail.append(f"the basic and epoll kTLS runs did not both report: {tiers!r}")
    for l in tiers:
        t, rest = l.split(" ", 1)
        f = dict(kv.split("=", 1) for kv in rest.split(" load=")[0].split())
        try:
            r = json.loads(rest.split(" load=", 1)[1])
            got = (r["requests"]["succeeded"], r["requests"]["errored"], r["requests"]["failed"])
        except Exception as e:  # noqa: BLE001
            got = repr(e)
        want_handed = 22 if ktls == "on" else 0
        print(f"  ktls on tier {t}: load {got}, {f}")
        if f.get("rc") != "0" or f.get("exit") != "0" or got != (80, 0, 0):
            fail.append(f"kTLS on tier {t}: {l[:300]}")
        if f.get("sha") != f"{big_sha},{big_sha},":
            fail.append(f"kTLS on tier {t}: the file is not byte-exact: {f.get('sha')!r}")
        if f.get("handed") != str(want_handed):
            fail.append(f"kTLS on tier {t}: {f.get('handed')!r} sessions handed over, want {want_handed}")

if fail:
    print(f"{name}: console tail:")
    print("\n".join(text.split("\n")[-40:]))
    for f in fail:
        print(f"{name}: FAIL:", f)
    sys.exit(1)
print(f"{name}: PASS ({mode}) on {kernel[0]}")
PY
