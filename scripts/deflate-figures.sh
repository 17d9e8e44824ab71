#!/usr/bin/env bash
# permessage-deflate's figures (issue 11), reproduced:
#
# 1. Our overhead on top of compress + inflate, in instructions (callgrind,
#    valgrind): N and 2N echo round trips of JSON-like text (256 B, 4 KiB,
#    64 KiB) through zlib-rs alone (the core's compression crate, configured as
#    the core configures it) and through two core Connections
#    (send_compressed, then handle_read inflating and validating the text),
#    same level (3) and parameters (context takeover, 15-bit windows). The
#    difference between the 2N and N runs is the cost of N round trips,
#    start-up and message generation cancelled out. Instruction counts do
#    not move with the machine's load; timings do.
# 2. The same ratio in wall-clock time (deflate_figures, best of 5 windows
#    per run), over 3 runs: min / median / max, with the load average.
# 3. Over sockets (deflate_sockets): the echo_server example pinned to core
#    0, 64 connections from a load generator pinned to core 1: messages/s
#    and bytes on the wire per message with and without compression, and
#    the server's idle memory per connection with and without context
#    takeover.
#
#   scripts/deflate-figures.sh [deflate_sockets flags, e.g. --rounds 5]
#   callgrind_annotate --inclusive=yes target/deflate-figures/core.4096.out   # where it goes
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_debian_packages "callgrind's instruction counts" valgrind
need_debian_packages "pinning the server to a core (taskset)" util-linux
# The load benchmark's profile (thin LTO, one codegen unit); the symbols
# are enough for callgrind_annotate's per-function counts.
nice -n 10 cargo build --profile bench-release --locked -q -p snowsocket-bench \
  --bin deflate_figures --bin deflate_sockets -p snowsocket-examples --example echo_server
bin="${CARGO_TARGET_DIR:-target}/bench-release"
out="${CARGO_TARGET_DIR:-target}/deflate-figures"
mkdir -p "$out"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Instructions of one run of `deflate_figures count WHAT SIZE N`.
instructions() {
  local what=$1 size=$2 n=$3 log="$out/$1.$2.$3.log"
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out/$what.$size.$n.out" \
    "$bin/deflate_figures" count "$what" "$size" "$n" >/dev/null 2>"$log"
  awk '/Collected :/ { print $NF }' "$log"
}

echo
echo "| size | round trips counted | zlib-rs alone, instructions per round trip | through our Connection | our overhead |"
echo "|---:|---:|---:|---:|---:|"
for size in 256 4096 65536; do
  n=$(((1 << 20) / size))
  bare=$(($(instructions bare "$size" $((2 * n))) - $(instructions bare "$size" "$n")))
  core=$(($(instructions core "$size" $((2 * n))) - $(instructions core "$size" "$n")))
  cp "$out/core.$size.$((2 * n)).out" "$out/core.$size.out"
  cp "$out/bare.$size.$((2 * n)).out" "$out/bare.$size.out"
  awk -v s="$size" -v n="$n" -v b="$bare" -v c="$core" 'BEGIN {
    printf "| %d B | %d | %d | %d | %+.1f %% |\n", s, n, b / n, c / n, (c - b) * 100 / b }'
done

echo
echo "wall clock, deflate_figures pinned to core 1, 3 runs (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
for run in 1 2 3; do
  taskset -c 1 "$bin/deflate_figures" >"$out/wall.$run.txt"
done
echo "| size | our overhead over compress + inflate, min / median / max of 3 runs |"
echo "|---:|---:|"
for size in 256 4096 65536; do
  grep -h "^| $size B " "$out"/wall.[123].txt | awk -F'|' '{ gsub(/[ %+]/, "", $8); print $8 }' \
    | sort -g | paste -sd' ' | awk -v s="$size" '{ printf "| %d B | %+.1f %% / %+.1f %% / %+.1f %% |\n", s, $1, $2, $3 }'
done
echo "(load average after: $(cut -d' ' -f1-3 /proc/loadavg))"

echo
"$bin/deflate_sockets" --echo-server "$bin/examples/echo_server" "$@"
