#!/usr/bin/env bash
# Run by `scripts/cluster.sh --example --instances 2 --run scripts/chat-across.sh`
# (the test suite's cluster stage): the chat example with --redis carries a
# message between instances. Alice joins room `across` on the first
# instance, Bob on the second; Bob's line must reach Alice through Redis,
# prefixed with his name, after the news that he joined. Uses the
# command-line client (cli/). Bounded: 20 s per wait.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r a b _ <<<"${CLUSTER_INSTANCES:?run me through scripts/cluster.sh --run}"
[ -n "$b" ] || { echo "chat-across: needs two instances" >&2; exit 2; }
cargo build --release --locked -q -p snowsocket-cli
cli=${CARGO_TARGET_DIR:-target}/release/snowsocket
dir=$(mktemp -d)
alice=
cleanup() {
  exec 3>&- 2>/dev/null || true
  [ -z "$alice" ] || { kill "$alice" 2>/dev/null || true; wait "$alice" 2>/dev/null || true; }
  rm -rf "$dir"
}
trap cleanup EXIT
# await FILE TEXT: waits until FILE has a line TEXT.
await() {
  local i
  for i in $(seq 200); do
    grep -qxF -- "$2" "$1" && return 0
    sleep 0.1
  done
  echo "chat-across: no line '$2' in $1 after 20 s; it has:" >&2
  cat "$1" >&2
  echo "chat-across: what the clients said on stderr, Bob's output:" >&2
  cat "$dir"/*.err "$dir/bob.out" >&2
  return 1
}
mkfifo "$dir/alice.in"
"$cli" "$a/room/across?name=alice" <"$dir/alice.in" >"$dir/alice.out" 2>"$dir/alice.err" &
alice=$!
exec 3>"$dir/alice.in" # Alice's standard input stays open until we are done
# The rooms tell a member when its room is live (subscribed in Redis).
for _ in $(seq 200); do grep -q '^\* joined room across on instance' "$dir/alice.out" && break; sleep 0.1; done
grep -q '^\* joined room across on instance a$' "$dir/alice.out" ||
  { echo "chat-across: alice was not told she joined on instance a:" >&2; cat "$dir/alice.out" "$dir/alice.err" >&2; exit 1; }
echo 'hello from b' | timeout 20 "$cli" "$b/room/across?name=bob" >"$dir/bob.out" 2>"$dir/bob.err"
await "$dir/alice.out" '* bob joined'
await "$dir/alice.out" 'bob: hello from b'
exec 3>&- # end of Alice's input: her client closes with 1000 and exits 0
wait "$alice"
alice=
echo "chat-across: bob (instance b) -> alice (instance a) through Redis: delivered"
