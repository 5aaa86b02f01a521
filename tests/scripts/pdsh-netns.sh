#!/usr/bin/env bash
# A run of uring-load across three "machines", started with pdsh over ssh, on this host.
#
# Each machine is a network namespace running Debian's sshd on its own address; the
# server under test (uring-server) runs in a fourth; a fifth ("ctl") holds the bridge that
# joins them and runs pdsh. Nothing is routed out of the bridge: the only addresses any
# traffic goes to are the namespaces' own (10.231.0.0/24 inside ctl's bridge).
#
#   pdsh -R exec -w 10.231.0.[11-13] ssh ... %h JOB_COMPLETION_INDEX=%n uring-load ARGS
#
# ARGS is the Kubernetes manifest's container argument list (deploy/k8s/), given by the
# caller, with its $(REQUESTS), $(START_AT), $(RUN_ID) and $(TARGET_URL) replaced here as
# Kubernetes replaces them from the pod's env; JOB_COMPLETION_INDEX=%n (pdsh's rank) plays
# the Indexed Job's part.
#
# Phase 1: every shard runs; their reports and the server's access log are left in OUT.
# Phase 2: shard 2's sshd is stopped first; pdsh fails for that host, and the reports of
# the other two are left in OUT/lost for the caller's merge to name the missing shard.
#
# Usage: pdsh-netns.sh OUT URING_LOAD URING_SERVER REQUESTS ARGS
# Root only. Every wait is bounded; a trap tears everything down, on failure too.
set -euo pipefail

out=$(realpath "$1") load=$(realpath "$2") server=$(realpath "$3") requests=$4 args=$5
shards=3
net=10.231.0
tag="ul$$"
ctl="$tag-ctl" srv="$tag-srv"
hosts=()
for i in $(seq 0 $((shards - 1))); do hosts+=("$tag-s$i"); done
work=$(mktemp -d "/tmp/uring-pdsh-$tag.XXXXXX")
pids=()

teardown() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  # Whatever still runs inside our namespaces was started by this script (sshd's
  # children, a shard that outlived its pdsh): end it by pid.
  for ns in "$ctl" "$srv" "${hosts[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "$ctl" "$srv" "${hosts[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
  exit $rc
}
trap teardown EXIT INT TERM

for tool in ip pdsh ssh ssh-keygen /usr/sbin/sshd; do
  command -v "$tool" >/dev/null || {
    echo "pdsh-netns: $tool is missing: run scripts/install-test-deps.sh" >&2
    exit 3
  }
done
[ "$(id -u)" = 0 ] || { echo "pdsh-netns: needs root (network namespaces, sshd)" >&2; exit 3; }

# --- network: a bridge in ctl, one veth per namespace --------------------------------
ip netns add "$ctl"
ip -n "$ctl" link set lo up
ip -n "$ctl" link add br0 type bridge
ip -n "$ctl" addr add "$net.1/24" dev br0
ip -n "$ctl" link set br0 up
attach() { # namespace, last octet
  local ns=$1 ip=$2
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ctl" link add "v$ip" type veth peer name eth0 netns "$ns"
  ip -n "$ctl" link set "v$ip" master br0 up
  ip -n "$ns" addr add "$net.$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
}
attach "$srv" 20
for i in "${!hosts[@]}"; do attach "${hosts[$i]}" $((11 + i)); done

# --- ssh: one key pair, one host key, one sshd per machine ---------------------------
ssh-keygen -q -t ed25519 -N '' -f "$work/id" -C uring-pdsh-test
ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey" -C uring-pdsh-host
cp "$work/id.pub" "$work/authorized_keys"
chmod 600 "$work/authorized_keys"
mkdir -p /run/sshd
cat >"$work/sshd_config" <<EOF
Port 22
HostKey $work/hostkey
AuthorizedKeysFile $work/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
EOF
for i in "${!hosts[@]}"; do
  ip netns exec "${hosts[$i]}" /usr/sbin/sshd -D -e -f "$work/sshd_config" \
    -o "ListenAddress=$net.$((11 + i))" -o "PidFile=$work/sshd$i.pid" 2>>"$work/sshd.log" &
  pids+=($!)
  echo $! >"$work/sshd$i.launcher"
done

# --- the server under test ------------------------------------------------------------
ip netns exec "$srv" "$server" --listen "$net.20:8080" --workers 1 \
  --access-log "$out/access.log" 2>"$work/server.log" &
server_pid=$!
pids+=($server_pid)

wait_port() { # address port: bounded to 10 s
  for _ in $(seq 100); do
    ip netns exec "$ctl" bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "pdsh-netns: nothing listening on $1:$2 after 10s" >&2
  cat "$work/sshd.log" "$work/server.log" >&2
  return 1
}
wait_port "$net.20" 8080
for i in "${!hosts[@]}"; do wait_port "$net.$((11 + i))" 22; done

ssh_cmd=(ssh -i "$work/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -l root)

# One run: pdsh starts one shard per host, each writing its report to DIR/shard-N.json.
run_shards() { # dir run-id hostlist
  local dir=$1 run_id=$2 list=$3
  mkdir -p "$dir"
  # Time for pdsh to log in everywhere (ssh is quick here, but CI runs tests in parallel).
  local start_at=$(($(date +%s) + 6))
  local cmd=$args
  # The manifest's $(VAR) references, replaced as Kubernetes does (quoted: literal).
  cmd=${cmd//'$(REQUESTS)'/$requests}
  cmd=${cmd//'$(START_AT)'/$start_at}
  cmd=${cmd//'$(RUN_ID)'/$run_id}
  cmd=${cmd//'$(TARGET_URL)'/http://$net.20:8080/plaintext}
  case $cmd in *'$('*) echo "pdsh-netns: unreplaced reference in: $cmd" >&2; return 1 ;; esac
  # -S: exit with the largest remote status; -u: kill a command that outlives 90 s;
  # -f: all hosts at once.
  ip netns exec "$ctl" timeout 120 pdsh -S -R exec -f 16 -u 90 -w "$list" \
    "${ssh_cmd[@]}" %h \
    "JOB_COMPLETION_INDEX=%n $load $cmd > $dir/shard-%n.json" \
    >"$dir/pdsh.out" 2>"$dir/pdsh.err" &
  # In the background and waited for, so that a TERM runs the trap at once.
  local p=$!
  pids+=("$p")
  wait "$p"
}

# Phase 1: every shard.
set +e
run_shards "$out/all" "pdsh-$tag" "$net.[11-13]"
echo $? >"$out/all/pdsh.rc"
set -e

# The server's own count: stop it gracefully so that its access log is flushed.
kill -TERM "$server_pid"
for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
wait "$server_pid" 2>/dev/null || true

# Phase 2: shard 2's machine is gone (its sshd stopped); the other two still run.
kill "$(cat "$work/sshd2.pid")" 2>/dev/null || kill "$(cat "$work/sshd2.launcher")"
for _ in $(seq 50); do
  ip netns exec "$ctl" bash -c "exec 3<>/dev/tcp/$net.13/22" 2>/dev/null || break
  sleep 0.1
done
ip netns exec "$srv" "$server" --listen "$net.20:8080" --workers 1 2>>"$work/server.log" &
pids+=($!)
wait_port "$net.20" 8080
set +e
run_shards "$out/lost" "pdsh-lost-$tag" "$net.[11-13]"
echo $? >"$out/lost/pdsh.rc"
set -e
# pdsh names the host it could not reach; an empty report file is left for it.
[ -s "$out/lost/shard-2.json" ] || rm -f "$out/lost/shard-2.json"
echo "pdsh-netns: done"
