#!/usr/bin/env bash
# The server's own CPU time per echoed message, split into user and system
# time (from /proc/PID/stat), for our server and the event-loop raw TCP
# echo, each in a process of its own (`snowsocket-bench --serve`, pinned to
# core 1) loaded by `snowsocket-bench --attach` (pinned to core 0). The
# benchmark itself reports the total per echo; this splits it.
#
#   scripts/server-cpu.sh [SIZE...]        # default: 16 1024 65536
#   SERVERS="ours raw-mio" SECONDS_PER_CELL=4 scripts/server-cpu.sh 65536
#   PROFILE=release scripts/server-cpu.sh  # default: bench-release, as the benchmark
#   SERVE_FLAGS="--read-buffer 524288" SERVERS=ours scripts/server-cpu.sh 65536
#   SERVERS="ours-tls raw-mio-tls" scripts/server-cpu.sh 1024   # wss://
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-bench-release}"
cargo build --profile "$profile" --locked -q -p snowsocket-bench
dir="$profile"; [ "$profile" = dev ] && dir=debug
load="${CARGO_TARGET_DIR:-target}/$dir/snowsocket-bench"
core=(); [ "$(nproc)" -ge 2 ] && core=(--core 1)
secs="${SECONDS_PER_CELL:-4}"
tck=$(getconf CLK_TCK)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 1024 65536)
echo "| server | size | messages/s | user µs/msg | system µs/msg | total µs/msg |"
echo "|---|---:|---:|---:|---:|---:|"
for size in "${sizes[@]}"; do
  for kind in ${SERVERS:-ours raw-mio}; do
    fifo=$(mktemp -u) && mkfifo "$fifo"
    # shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
    "$load" --serve "$kind" "${core[@]}" ${SERVE_FLAGS:-} <"$fifo" >"$fifo.addr" 2>/dev/null &
    pid=$!
    exec {keep}>"$fifo" # the server runs until this end closes
    for _ in $(seq 100); do [ -s "$fifo.addr" ] && break; sleep 0.1; done
    addr=$(cut -d' ' -f1 "$fifo.addr")
    # A wss:// server prints its certificate after its address.
    cert=(); [ -n "$(cut -s -d' ' -f2 "$fifo.addr")" ] && cert=(--attach-cert "$(cut -d' ' -f2 "$fifo.addr")")
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    out=$("$load" --attach "$addr" "${cert[@]}" --servers "$kind" --modes pipelined --sizes "$size" \
      --rounds 1 --seconds "$secs" --warmup 0.01 2>/dev/null)
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    exec {keep}>&-
    wait "$pid" || true
    rm -f "$fifo" "$fifo.addr"
    # The first row of the first table: | server | echoes/s | ...
    rate=$(echo "$out" | grep -E '^\| ' | grep -vE '^\| server |^\|---' | head -1 |
      awk -F'|' '{gsub(/[ ,]/,"",$3); print $3}')
    awk -v k="$kind" -v z="$size" -v r="$rate" -v t="$secs" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v hz="$tck" \
      'BEGIN { n = r * t; u = du / hz * 1e6 / n; s = ds / hz * 1e6 / n;
               printf "| %s | %d | %d | %.3f | %.3f | %.3f |\n", k, z, r, u, s, u + s }'
  done
done
