#!/usr/bin/env bash
# The chat as a cluster on this machine: Redis and nginx from Debian's
# packages (installed with apt-get when missing, through sudo only when not
# root), N chat-cluster instances (2-4, default 3) fanning out through Redis,
# nginx in front of them (pubsub/nginx/cluster.conf: WebSocket upgrades,
# least_conn). Every port is a free loopback port chosen at run time; every
# file is under target/cluster/; Ctrl-C (or the end of --run's command)
# stops every process it started and removes the files.
#
#   scripts/cluster.sh                     # prints the URL; Ctrl-C stops
#   scripts/cluster.sh --instances 4
#   scripts/cluster.sh --run 'websocat "$CLUSTER_URL/room/lobby"'
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

usage() {
  cat <<EOF2
usage: scripts/cluster.sh [--instances N] [--example] [--ports LO-HI] [--run COMMAND]

  --instances N   chat instances behind nginx, 2 to 4 (default 3)
  --example       the instances are the chat example (its page and rooms,
                  --redis and --instance), not snowsocket-pubsub's chat-cluster
  --ports LO-HI   where Redis's and nginx's ports are picked (default
                  20000-59999; the instances take ports the kernel picks)
  --run COMMAND   run COMMAND (bash -c) with CLUSTER_URL=ws://127.0.0.1:PORT
                  (nginx) and CLUSTER_INSTANCES (each instance's ws:// URL,
                  space-separated) in its environment, then stop everything;
                  without it, wait
                  for Ctrl-C
  -h, --help      this text

Clients join room NAME at \$CLUSTER_URL/room/NAME. Logs: target/cluster/run-PID/.
EOF2
}

n=3
run=
example=
ports=20000-59999
while [ $# -gt 0 ]; do
  case $1 in
    --instances) n=${2:?--instances needs a number}; shift ;;
    --ports) ports=${2:?--ports needs LO-HI}; shift ;;
    --run) run=${2:?--run needs a command}; shift ;;
    --example) example=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $n in 2|3|4) ;; *) echo "cluster.sh: --instances must be 2, 3 or 4" >&2; exit 2 ;; esac
lo=${ports%-*} hi=${ports#*-}
[[ $lo =~ ^[0-9]+$ && $hi =~ ^[0-9]+$ && $lo -ge 1024 && $hi -le 65535 && $lo -le $hi ]] ||
  { echo "cluster.sh: --ports wants LO-HI within 1024-65535" >&2; exit 2; }

need_debian_packages "the chat cluster" redis-server nginx
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [ -n "$example" ]; then
  cargo build --release --locked -p snowsocket-examples --example chat
  bin=${CARGO_TARGET_DIR:-target}/release/examples/chat
else
  cargo build --release --locked -p snowsocket-pubsub --bin chat-cluster
  bin=${CARGO_TARGET_DIR:-target}/release/chat-cluster
fi

dir=${CARGO_TARGET_DIR:-target}/cluster/run-$$
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pids=()
nginx_started=
cleanup() {
  local status=$? p
  trap - EXIT INT TERM
  # nginx's master stops its workers; the others are single processes.
  if [ -n "$nginx_started" ]; then
    "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -s stop 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on (bash's /dev/tcp tries to connect).
free_port() {
  local p tries=0
  while [ $tries -lt 100 ]; do
    p=$((lo + RANDOM % (hi - lo + 1)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
    tries=$((tries + 1))
  done
  echo "cluster.sh: no free port found" >&2
  return 1
}
# await_port PORT WHAT: waits (at most 20 s) until 127.0.0.1:PORT accepts.
await_port() {
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster.sh: $2 did not listen on 127.0.0.1:$1" >&2
  return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
await_port "$redis_port" redis-server
redis_url=redis://127.0.0.1:$redis_port/

names=(a b c d)
servers=
instances=
for i in $(seq "$n"); do
  name=${names[i - 1]}
  # Made here: the background process opens its own copy later.
  : >"$dir/$name.out"
  "$bin" --addr 127.0.0.1:0 --redis "$redis_url" --instance "$name" \
    >"$dir/$name.out" 2>"$dir/$name.log" &
  pids+=($!)
  addr=
  for _ in $(seq 200); do
    # chat-cluster: "listening on ws://ADDR/"; the chat example:
    # "listening on http://ADDR/ (the page; ...)".
    addr=$(sed -n 's|^listening on [a-z]*://\([^/]*\)/.*$|\1|p' "$dir/$name.out")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "cluster.sh: instance $name did not start:" >&2; cat "$dir/$name.log" >&2; exit 1; }
  echo "instance $name on ws://$addr/ (log: $dir/$name.log)"
  servers+="        server $addr;"$'\n'
  instances+="${instances:+ }ws://$addr"
done

nginx_port=$(free_port)
while IFS= read -r line; do
  case $line in
    @SERVERS@) printf '%s' "$servers" ;;
    *) line=${line//@DIR@/$dir}; printf '%s\n' "${line//@LISTEN@/127.0.0.1:$nginx_port}" ;;
  esac
done <pubsub/nginx/cluster.conf >"$dir/nginx.conf"
# -e: the error log nginx opens before reading its configuration.
"$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
pids+=($!)
nginx_started=1
await_port "$nginx_port" nginx

export CLUSTER_URL=ws://127.0.0.1:$nginx_port CLUSTER_INSTANCES=$instances
echo "redis on $redis_url; nginx on $CLUSTER_URL: clients join $CLUSTER_URL/room/NAME"
if [ -n "$run" ]; then
  bash -c "$run"
else
  echo "Ctrl-C stops the cluster"
  wait "${pids[0]}"
fi
