#!/usr/bin/env bash
# Prove the 5.10 (basic) tier on a real Linux 5.10 kernel, not a forced flag on a new one.
#
# Boots Debian bullseye's linux-image-5.10 under qemu-system-x86_64 with software
# emulation (TCG), with an initramfs holding busybox and static builds of uring-server and
# uring-load. Inside, the server picks its tier by probing the kernel, and
# `uring-load -n 10000 -c 50 -k` runs against it over loopback. This script reads the
# serial console and asserts: the kernel is 5.10, the server logged the basic tier (not
# forced), and the load run counted exactly 10000 done, 10000 succeeded, 0 errors.
#
# Usage: scripts/reliability-kernel510.sh [--smoke]
#   --smoke   boot the kernel with busybox only and check the marker (no cargo build);
#             proves the harness itself.
# Env: KERNEL510_DIR (cache, default target/kernel510), KERNEL510_TIMEOUT (qemu seconds,
#      default 600), KERNEL510_REQUESTS (default 10000), KERNEL510_CONNS (default 50),
#      KERNEL510_SHARED_CACHE (machine-wide kernel copy, default
#      /var/cache/uring-toolkit/kernel510).
#
# The machine's own apt configuration (bookworm) is left untouched: bullseye is added as a
# separate source with its own sources list, lists and cache directories under the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=full
if [ "${1:-}" = "--smoke" ]; then MODE=smoke; fi

CACHE=${KERNEL510_DIR:-$ROOT/target/kernel510}
QEMU_TIMEOUT=${KERNEL510_TIMEOUT:-600}
REQUESTS=${KERNEL510_REQUESTS:-10000}
CONNS=${KERNEL510_CONNS:-50}
WANT_PKG=linux-image-5.10.0-32-amd64
mkdir -p "$CACHE"

log() { echo "kernel510: $*" >&2; }
die() {
  echo "kernel510: FAIL: $*" >&2
  exit 1
}

# --- host tools ---------------------------------------------------------------------
# A program interpreter (ld.so) means dynamic linking; static-pie has none. (ldd exits 0
# for static-pie too, so it cannot tell.)
is_dynamic() { readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }
command -v readelf >/dev/null 2>&1 || need_binutils=1
need=()
[ "${need_binutils:-0}" = 1 ] && need+=(binutils)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
# The initramfs needs a static busybox: the dynamic one would find no libc in the guest.
if [ ! -x /bin/busybox ] || is_dynamic /bin/busybox; then need+=(busybox-static); fi
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
BUSYBOX=/bin/busybox
is_dynamic "$BUSYBOX" && die "$BUSYBOX is dynamically linked; install busybox-static"

# --- the kernel, from Debian bullseye as a separate apt source ----------------------
KDIR=$CACHE/kernel
# A machine-wide copy outlives `cargo clean` and fresh clones (CI), and keeps working the
# day bullseye leaves the machine's Debian mirror.
SHARED_KDIR=${KERNEL510_SHARED_CACHE:-/var/cache/uring-toolkit/kernel510}
if [ ! -f "$KDIR/vmlinuz" ] && [ -f "$SHARED_KDIR/vmlinuz" ] && [ -f "$SHARED_KDIR/release" ]; then
  mkdir -p "$KDIR" && cp "$SHARED_KDIR"/{vmlinuz,release,package} "$KDIR/"
fi
if [ ! -f "$KDIR/vmlinuz" ]; then
  APTDIR=$CACHE/apt
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/etc" "$APTDIR/deb"
  # Use the Debian mirror this machine's own apt configuration already names (the first
  # URI that is not a security archive), so no host is written here.
  MIRROR=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
              grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                sed -E 's/\[[^]]*\] ?//' | awk '{print $2}'; } | grep -v -- '-security' | head -1)
  [ -n "$MIRROR" ] || die "no Debian mirror found in this machine's apt sources"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bullseye main" \
    >"$APTDIR/etc/sources.list"
  APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APTDIR/etc/sources.list"
    -o "Dir::Etc::sourceparts=$APTDIR/etc/none.d"
    -o "Dir::State::Lists=$APTDIR/lists"
    -o "Dir::Cache=$APTDIR/cache"
    -o "APT::Sandbox::User=root"
  )
  log "fetching bullseye package lists (separate apt dirs in $APTDIR)"
  apt-get "${APT_OPTS[@]}" update -qq >/dev/null ||
    die "cannot fetch bullseye's package lists from $MIRROR (has bullseye moved to Debian's archive?)"
  pkg=$WANT_PKG
  if ! apt-cache "${APT_OPTS[@]}" show "$pkg" >/dev/null 2>&1; then
    # The exact ABI may have been superseded: take the newest generic 5.10 amd64 image.
    pkg=$(apt-cache "${APT_OPTS[@]}" pkgnames linux-image-5.10.0- |
      grep -E '^linux-image-5\.10\.0-[0-9]+-amd64$' | sort -t- -k4,4n | tail -1)
    [ -n "$pkg" ] || die "no linux-image-5.10.0-*-amd64 in bullseye"
    log "$WANT_PKG is gone; using $pkg"
  fi
  log "downloading $pkg"
  (cd "$APTDIR/deb" && rm -f ./*.deb && apt-get "${APT_OPTS[@]}" download "$pkg" >/dev/null)
  deb=$(ls "$APTDIR"/deb/*.deb | head -1)
  rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp/x"
  dpkg-deb -x "$deb" "$KDIR.tmp/x"
  vmlinuz=$(ls "$KDIR.tmp"/x/boot/vmlinuz-* | head -1)
  [ -f "$vmlinuz" ] || die "no boot/vmlinuz-* in $deb"
  cp "$vmlinuz" "$KDIR.tmp/vmlinuz"
  basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$KDIR.tmp/release"
  basename "$deb" >"$KDIR.tmp/package"
  rm -rf "$KDIR.tmp/x" "$KDIR"
  mv "$KDIR.tmp" "$KDIR"
  (mkdir -p "$SHARED_KDIR" && cp "$KDIR"/{vmlinuz,release,package} "$SHARED_KDIR/") 2>/dev/null || true
fi
KREL=$(cat "$KDIR/release")
log "kernel $KREL ($(cat "$KDIR/package"))"

# --- static builds of both programs --------------------------------------------------
BINDIR=
if [ "$MODE" = full ]; then
  # A separate target dir: +crt-static must not invalidate the normal builds' artifacts.
  STATIC_TARGET=$CACHE/cargo-target
  log "building static uring-server and uring-load (release) into $STATIC_TARGET"
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
    --target x86_64-unknown-linux-gnu --target-dir "$STATIC_TARGET" \
    -p uring-server -p uring-load --bins
  BINDIR=$STATIC_TARGET/x86_64-unknown-linux-gnu/release
  for b in uring-server uring-load; do
    [ -x "$BINDIR/$b" ] || die "$BINDIR/$b missing after the build"
    is_dynamic "$BINDIR/$b" && die "$BINDIR/$b is not static"
  done
fi

# --- the initramfs ---------------------------------------------------------------------
IRD=$CACHE/initramfs-$MODE
rm -rf "$IRD" && mkdir -p "$IRD"/{bin,dev,proc,sys,tmp,etc}
cp "$BUSYBOX" "$IRD/bin/busybox"
echo "nobody:x:65534:65534:nobody:/:/bin/sh" >"$IRD/etc/passwd"
echo "nogroup:x:65534:" >"$IRD/etc/group"
if [ "$MODE" = full ]; then
  cp "$BINDIR/uring-server" "$BINDIR/uring-load" "$IRD/bin/"
fi
# Everything the guest prints for this script is prefixed `K510 ` so that kernel messages
# interleaved on the console cannot be mistaken for results.
cat >"$IRD/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
ip link set lo up
echo "K510 KERNEL \$(uname -r)"
MODE=$MODE
REQUESTS=$REQUESTS
CONNS=$CONNS
EOF
cat >>"$IRD/init" <<'EOF'
finish() {
  echo "K510 END"
  sync
  poweroff -f
}
if [ "$MODE" = smoke ]; then
  echo "K510 SMOKE ok"
  finish
fi
echo "K510 MEMLOCK $(ulimit -l)"
# Unprivileged and with no locked memory at all: 5.10 before 5.10.162 charged rings to
# RLIMIT_MEMLOCK (root's CAP_IPC_LOCK hides that). Later 5.10 stable kernels carry the
# 5.15 io_uring, which does not. Either way the server must work or say so in one line.
(ulimit -l 0; exec su -s /bin/sh -c "exec uring-server --listen 127.0.0.1:8081 -w 1" nobody) >/tmp/u.out 2>/tmp/u.err &
U=$!
i=0
while ! grep -q ':1F91 00000000:0000 0A' /proc/net/tcp && kill -0 $U 2>/dev/null && [ $i -lt 300 ]; do
  i=$((i + 1))
  sleep 0.1
done
if grep -q ':1F91 00000000:0000 0A' /proc/net/tcp && kill -0 $U 2>/dev/null; then
  # The listener is bound before the workers make their rings: give them a moment.
  sleep 1
  echo "K510 UNPRIV-UID $(awk '/^Uid:/ {print $2}' /proc/$U/status)"
  # (busybox nc, not wget: the static wget crashes in glibc's NSS once /etc/passwd exists)
  printf 'GET /plaintext HTTP/1.0\r\n\r\n' | timeout 10 nc 127.0.0.1 8081 >/tmp/u.resp 2>&1
  if grep -q '^HTTP/1.1 200' /tmp/u.resp; then
    echo "K510 UNPRIV-SERVED $(tail -c 13 /tmp/u.resp)"
  else
    sed 's/^/K510 UNPRIV-RESP /' /tmp/u.resp
  fi
  kill -TERM $U 2>/dev/null
fi
wait $U
echo "K510 UNPRIV-EXIT $?"
sed 's/^/K510 UNPRIV-ERR /' /tmp/u.err
uring-server --listen 127.0.0.1:8080 -w 1 >/tmp/server.out 2>/tmp/server.err &
SERVER=$!
# Wait for the listener: port 8080 = 1F90 in state 0A (LISTEN) in /proc/net/tcp.
i=0
while ! grep -q ':1F90 00000000:0000 0A' /proc/net/tcp; do
  i=$((i + 1))
  if [ $i -gt 600 ] || ! kill -0 $SERVER 2>/dev/null; then
    echo "K510 SERVER-NOT-LISTENING"
    sed 's/^/K510 SERVER-ERR /' /tmp/server.err
    sed 's/^/K510 SERVER-OUT /' /tmp/server.out
    finish
  fi
  sleep 0.1
done
echo "K510 SERVER-LISTENING"
# The generator, unprivileged with no locked memory: it works or says so in one line.
(ulimit -l 0; exec su -s /bin/sh -c "exec timeout 60 uring-load -n 100 -c 2 -k -q --json http://127.0.0.1:8080/plaintext" nobody) >/tmp/ml.out 2>/tmp/ml.err
echo "K510 UNPRIV-LOAD-EXIT $?"
sed 's/^/K510 UNPRIV-LOAD-ERR /' /tmp/ml.err
echo "K510 UNPRIV-LOAD-JSON $(tr -d '\n' </tmp/ml.out)"
uring-load -n "$REQUESTS" -c "$CONNS" -k --json http://127.0.0.1:8080/plaintext >/tmp/load.json 2>/tmp/load.err
echo "K510 LOAD-RC $?"
kill -TERM $SERVER
wait $SERVER
echo "K510 SERVER-RC $?"
sed 's/^/K510 SERVER-ERR /' /tmp/server.err
sed 's/^/K510 SERVER-OUT /' /tmp/server.out
sed 's/^/K510 LOAD-ERR /' /tmp/load.err
# One line, so the host can parse it even when kernel messages interleave.
echo "K510 LOAD-JSON $(tr -d '\n' </tmp/load.json)"
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
[ $qrc -eq 124 ] && die "qemu timed out after ${QEMU_TIMEOUT}s (tail of console below)
$(tail -30 "$CONSOLE")"

# --- verdict -------------------------------------------------------------------------
python3 - "$CONSOLE" "$MODE" "$REQUESTS" <<'PY'
import json, re, sys

console, mode, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(console, "rb").read().decode("utf-8", "replace").replace("\r", "")
# Firmware escape sequences may precede a marker on its line: look for it anywhere.
lines = [l[l.index("K510 ") + len("K510 "):] for l in text.split("\n") if "K510 " in l]
fail = []

def find(prefix):
    return [l[len(prefix):].strip() for l in lines if l.startswith(prefix)]

kernel = find("KERNEL ")
if not kernel or not kernel[0].startswith("5.10."):
    fail.append(f"guest kernel is {kernel!r}, want 5.10.*")
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
    # The tier must come from the probe: a log line naming the basic tier, and no sign
    # that it was forced by a flag.
    tier_lines = [l for l in server_log if re.search(r"\btier\b", l, re.I)]
    if not any(re.search(r"\bbasic\b", l, re.I) for l in tier_lines):
        fail.append(f"server did not log the basic tier; tier lines: {tier_lines!r}")
    if any(re.search(r"forced|--tier", l, re.I) for l in tier_lines):
        fail.append(f"the tier looks forced: {tier_lines!r}")
    if find("LOAD-RC ") != ["0"]:
        fail.append(f"uring-load exit status {find('LOAD-RC ')!r}, want 0")
    if find("SERVER-RC ") not in (["0"], ["143"]):
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
            # The generator probes the same kernel: it must land on basic too.
            "load tier": (report.get("tier"), "basic"),
        }
        for what, (got, exp) in want.items():
            if got != exp:
                fail.append(f"{what} = {got!r}, want {exp!r}")

if fail:
    print("kernel510: console tail:")
    print("\n".join(text.split("\n")[-40:]))
    for f in fail:
        print("kernel510: FAIL:", f)
    sys.exit(1)
print(f"kernel510: PASS ({mode}) on {kernel[0]}")
PY
