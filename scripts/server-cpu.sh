#!/usr/bin/env bash
# The server's own CPU time per echoed message (user and system, from
# /proc/PID/stat), for our server and the raw TCP echo, each in a process of
# its own (`load --serve`) loaded by `load --attach`. This tells the server's
# cost apart from the load generator's, which `load` reports together.
#
#   scripts/server-cpu.sh [SIZE...]        # default: 16 1024 65536
#   SERVERS="ours raw" SECONDS_PER_CELL=4 scripts/server-cpu.sh 65536
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p snowsocket-examples --example load
load="${CARGO_TARGET_DIR:-target}/release/examples/load"
secs="${SECONDS_PER_CELL:-4}"
tck=$(getconf CLK_TCK)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 1024 65536)
echo "| server | size | messages/s | user µs/msg | system µs/msg | total µs/msg |"
echo "|---|---:|---:|---:|---:|---:|"
for size in "${sizes[@]}"; do
  for kind in ${SERVERS:-ours raw}; do
    fifo=$(mktemp -u) && mkfifo "$fifo"
    "$load" --serve "$kind" <"$fifo" >"$fifo.addr" 2>/dev/null &
    pid=$!
    exec {keep}>"$fifo" # the server runs until this end closes
    for _ in $(seq 100); do [ -s "$fifo.addr" ] && break; sleep 0.1; done
    addr=$(cut -d' ' -f1 "$fifo.addr")
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    out=$("$load" --attach "$addr" --servers "$kind" --sizes "$size" --no-idle \
      --seconds "$secs" --warmup 0.01 2>/dev/null)
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    exec {keep}>&-
    wait "$pid" || true
    rm -f "$fifo" "$fifo.addr"
    rate=$(echo "$out" | grep -E '^\| (snow|raw|tung)' | head -1 | awk -F'|' '{gsub(/[ ,]/,"",$3); print $3}')
    awk -v k="$kind" -v z="$size" -v r="$rate" -v t="$secs" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v hz="$tck" \
      'BEGIN { n = r * t; u = du / hz * 1e6 / n; s = ds / hz * 1e6 / n;
               printf "| %s | %d | %d | %.3f | %.3f | %.3f |\n", k, z, r, u, s, u + s }'
  done
done
