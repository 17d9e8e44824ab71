#!/usr/bin/env bash
# Instructions per echoed message in our server, counted by callgrind
# (valgrind): the server runs under callgrind in a process of its own
# (`load --serve ours`) while `load --attach` loads it for a few seconds.
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
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release --locked -q -p snowsocket-examples --example load
load="${CARGO_TARGET_DIR:-target}/release/examples/load"
dir=$(mktemp -d)
mkfifo "$dir/in"
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
  "$load" --serve ours <"$dir/in" >"$dir/addr" 2>"$dir/valgrind.log" &
pid=$!
exec {keep}>"$dir/in" # the server runs until this end closes
for _ in $(seq 300); do [ -s "$dir/addr" ] && break; sleep 0.1; done
secs=3 warmup=0.5
out=$("$load" --attach "$(cut -d' ' -f1 "$dir/addr")" --servers ours --sizes "$size" \
  --no-idle --seconds "$secs" --warmup "$warmup" 2>/dev/null)
exec {keep}>&-
wait "$pid" || true
rate=$(echo "$out" | grep -E '^\| snow' | head -1 | awk -F'|' '{gsub(/[ ,]/,"",$3); print $3}')
ir=$(awk '/Collected :/ { print $NF }' "$dir/valgrind.log")
cp "$dir/callgrind.out" "callgrind.out.$size"
awk -v ir="$ir" -v r="$rate" -v t="$secs" -v w="$warmup" -v z="$size" 'BEGIN {
  n = r * (t + w);
  printf "%s B echo: %d instructions in the server for about %d messages: %d per message\n", z, ir, n, ir / n }'
echo "(callgrind.out.$size is the profile)"
rm -rf "$dir"
