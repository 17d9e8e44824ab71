#!/usr/bin/env bash
# The chat example in a real browser (called by scripts/test.sh as the
# `browser` stage; runs on its own too): two headless Chromium pages open the
# page the example serves and talk through it, over ws:// and wss://
# (tests/browser/chat.mjs, with npm's playwright-core driving Debian's
# /usr/bin/chromium). It saves a screenshot of the wss:// conversation to
# $SNOWSOCKET_CHAT_SCREENSHOT (default target/browser/chat.png; the README's
# picture is examples/chat.png, refreshed with
# SNOWSOCKET_CHAT_SCREENSHOT=examples/chat.png scripts/browser.sh).
# Installs what it needs when missing: Debian's chromium (and nodejs, npm)
# with apt-get, through sudo only when not root; playwright-core from
# tests/browser/package-lock.json into tests/browser/node_modules.
# Bounded: the browser run stops itself after 120 s and is killed at 300 s.
# Honours CARGO_TARGET_DIR (default: target/).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR
SHOT=${SNOWSOCKET_CHAT_SCREENSHOT:-$TARGET_DIR/browser/chat.png}

step() { printf '\n==> %s\n' "$*"; }

step "browser: tools (Debian: chromium, nodejs, npm; npm: playwright-core)"
need_debian_packages "the browser test" chromium
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
  need_debian_packages "the browser test (playwright-core)" nodejs npm
[ -x /usr/bin/chromium ] || { echo "error: no /usr/bin/chromium after installing chromium" >&2; exit 1; }
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.snowsocket-lock 2>/dev/null; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  cp tests/browser/package-lock.json tests/browser/node_modules/.snowsocket-lock
fi
node --version
/usr/bin/chromium --version 2>/dev/null || true

step "browser: the chat example and a test certificate (rcgen)"
cargo build --locked -q -p snowsocket-examples --example chat
cargo build --locked -q -p snowsocket-tests --bin make_test_cert
mkdir -p "$TARGET_DIR/browser" "$(dirname "$SHOT")"
"$TARGET_DIR/debug/make_test_cert" "$TARGET_DIR/browser" >/dev/null

step "browser: two Chromium pages chat over ws:// and wss://"
timeout -k 10 300 node tests/browser/chat.mjs "$TARGET_DIR/debug/examples/chat" \
  "$TARGET_DIR/browser/cert.pem" "$TARGET_DIR/browser/key.pem" "$SHOT"
