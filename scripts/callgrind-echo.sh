#!/usr/bin/env bash
# Instructions per echoed message in our server, counted by callgrind
# (valgrind): the server runs under callgrind in a process of its own
# (`snowsocket-bench --serve ours`) while `snowsocket-bench --attach` loads
# it for a few seconds. Built with the release profile, as the counts the
# README quotes were (PROFILE=bench-release for the benchmark's).
# Counts are steady where timings are not; the figure includes the warm-up
# and the server's start and stop, spread over the messages.
#
#   scripts/callgrind-echo.sh [SIZE]      # default 16 (bytes per message)
#   callgrind_annotate --inclusive=no callgrind.out.*   # then, where they go
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-16}"
if ! command -v valgrind >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
profile="${PROFILE:-release}"
debug_var="CARGO_PROFILE_$(echo "$profile" | tr 'a-z-' 'A-Z_')_DEBUG"
env "$debug_var=line-tables-only" \
  cargo build --profile "$profile" --locked -q -p snowsocket-bench
out_dir="$profile"; [ "$profile" = dev ] && out_dir=debug
load="${CARGO_TARGET_DIR:-target}/$out_dir/snowsocket-bench"
dir=$(mktemp -d)
mkfifo "$dir/in"
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
  "$load" --serve ours <"$dir/in" >"$dir/addr" 2>"$dir/valgrind.log" &
pid=$!
exec {keep}>"$dir/in" # the server runs until this end closes
for _ in $(seq 300); do [ -s "$dir/addr" ] && break; sleep 0.1; done
secs=3 warmup=0.5
out=$("$load" --attach "$(cut -d' ' -f1 "$dir/addr")" --servers ours --modes pipelined \
  --sizes "$size" --rounds 1 --seconds "$secs" --warmup "$warmup" 2>/dev/null)
exec {keep}>&-
wait "$pid" || true
# The first row of the first table: | server | echoes/s | ...
rate=$(echo "$out" | grep -E '^\| snow' | head -1 | awk -F'|' '{gsub(/[ ,]/,"",$3); print $3}')
ir=$(awk '/Collected :/ { print $NF }' "$dir/valgrind.log")
cp "$dir/callgrind.out" "callgrind.out.$size"
awk -v ir="$ir" -v r="$rate" -v t="$secs" -v w="$warmup" -v z="$size" 'BEGIN {
  n = r * (t + w);
  printf "%s B echo: %d instructions in the server for about %d messages: %d per message\n", z, ir, n, ir / n }'
echo "(callgrind.out.$size is the profile)"
rm -rf "$dir"
