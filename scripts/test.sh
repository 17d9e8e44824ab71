#!/usr/bin/env bash
# The whole test suite: the one command a newcomer (and CI, via .ci/run) runs.
# Stages run in the order below; `--help` lists them. It installs what it
# needs itself, where it can: rustup targets and components; Debian packages
# (qemu-system-arm, ARM binutils, python3-venv, redis-server, nginx) with apt-get, through sudo
# only when not root; PyPI packages into the virtual environment target/venv
# (never the system's Python); npm packages into tests/interop/node_modules
# and tests/browser (playwright-core, with Debian's chromium);
# Autobahn|Testsuite into target/autobahn;
# cargo-fuzz (crates.io) where a nightly toolchain exists. What it cannot
# install it names, and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STAGES=(fmt clippy docs nostd msrv package test interop load browser cluster wasi qemu footprint fuzz autobahn)
QUICK=(fmt clippy docs nostd test)
describe() {
  case $1 in
    fmt) echo "cargo fmt --check" ;;
    clippy) echo "cargo clippy, all targets, warnings denied" ;;
    docs) echo "cargo doc, warnings denied" ;;
    nostd) echo "the core's no_std builds (thumbv7em, thumbv6m, riscv32imc, wasm32-wasip1) and no std in its dependency graph" ;;
    msrv) echo "the published crates built with the declared rust-version (rustup installs it)" ;;
    package) echo "cargo publish --dry-run of every published crate (packaged and built alone)" ;;
    test) echo "cargo test: unit, integration and doc tests" ;;
    interop) echo "interop tests with Python websockets and Node ws (installs them: scripts/interop-setup.sh)" ;;
    load) echo "load benchmark smoke run (every server echoes correctly)" ;;
    browser) echo "the chat example in two headless Chromium pages, ws:// and wss:// (chromium, playwright-core)" ;;
    cluster) echo "the chat as 3 instances behind nginx through Redis (Debian's redis-server, nginx)" ;;
    wasi) echo "the core's tests under wasmtime, the wasip2 echo server, the embedded-tls client build" ;;
    qemu) echo "core self-tests on an emulated Cortex-M4F (qemu-system-arm)" ;;
    footprint) echo "flash/RAM footprint beside embedded-websocket" ;;
    fuzz) echo "7 s fuzz run per target (where a nightly toolchain exists)" ;;
    autobahn) echo "Autobahn|Testsuite, server and client roles (where a Python 2.7 exists)" ;;
  esac
}

usage() {
  cat <<EOF
usage: scripts/test.sh [--quick] [--skip STAGES] [--only STAGES]

With no option every stage runs (what CI runs). STAGES is a comma- or
space-separated list of stage names; SNOWSOCKET_SKIP=STAGES in the
environment works like --skip.

  --quick          only ${QUICK[*]} (a few minutes on a warm build)
  --skip STAGES    leave these stages out, e.g. --skip qemu,wasi,footprint,fuzz,autobahn
  --only STAGES    run just these stages
  -h, --help       this text

stages, in the order they run:
EOF
  local s
  for s in "${STAGES[@]}"; do printf '  %-10s %s\n' "$s" "$(describe "$s")"; done
}

die() { echo "test.sh: $*" >&2; exit 2; }
# add_stages ARRAY LIST: appends the stage names of LIST (comma- or
# space-separated) to ARRAY, refusing unknown names.
add_stages() {
  local -n into=$1
  local s names
  read -r -a names <<<"${2//,/ }"
  for s in "${names[@]}"; do
    [ -n "$(describe "$s")" ] || die "unknown stage '$s' (see --help)"
    into+=("$s")
  done
}

selected=("${STAGES[@]}")
skipped=()
add_stages skipped "${SNOWSOCKET_SKIP:-}"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) selected=("${QUICK[@]}") ;;
    --skip) [ $# -ge 2 ] || die "--skip needs a list of stages"; add_stages skipped "$2"; shift ;;
    --skip=*) add_stages skipped "${1#--skip=}" ;;
    --only) [ $# -ge 2 ] || die "--only needs a list of stages"; selected=(); add_stages selected "$2"; shift ;;
    --only=*) selected=(); add_stages selected "${1#--only=}" ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
in_list() { # word word...: whether the first word is among the others
  local x=$1 y
  shift
  for y in "$@"; do [ "$x" = "$y" ] && return 0; done
  return 1
}
run=()
left_out=()
for s in "${STAGES[@]}"; do
  if in_list "$s" "${selected[@]}" && ! in_list "$s" "${skipped[@]}"; then
    run+=("$s")
  else
    left_out+=("$s")
  fi
done
will_run() { in_list "$1" "${run[@]}"; }

step() { printf '\n==> %s\n' "$*"; }

# ------------------------------------------------------------ stages
stage_fmt() {
  cargo fmt --all -- --check
}

stage_clippy() {
  cargo clippy --workspace --all-targets --locked -- -D warnings
  step "snowsocket-server without its default features (ws:// only, no rustls)"
  cargo clippy -p snowsocket-server --no-default-features --all-targets --locked -- -D warnings
}

stage_docs() {
  RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked
}

stage_nostd() {
  cargo build -p snowsocket-core --locked --target thumbv7em-none-eabihf
  cargo build -p snowsocket-core --locked --target thumbv7em-none-eabihf --features alloc
  cargo build -p snowsocket-core --locked --target thumbv7em-none-eabihf --features deflate
  cargo build -p snowsocket-core --locked --target wasm32-wasip1
  step "the smaller targets: Cortex-M0 (no atomics beyond load/store) and RISC-V rv32imc"
  local t
  for t in thumbv6m-none-eabi riscv32imc-unknown-none-elf; do
    cargo build -p snowsocket-core --locked --target "$t"
    cargo build -p snowsocket-core --locked --target "$t" --features async,embassy-time,deflate
  done
  step "nothing in the core's dependency graph enables std"
  # The thumbv7em build above cannot link std at all; this host-side check also
  # catches a dependency whose "std" feature a future change turns on.
  local graph
  graph=$(cargo tree -p snowsocket-core -e normal --prefix none -f '{p} [{f}]' --locked | sort -u)
  echo "$graph"
  if grep -E '\[([^]]*,)?std(,[^]]*)?\]' <<<"$graph"; then
    echo "a dependency of snowsocket-core has its std feature enabled" >&2
    return 1
  fi
}

# The published crates, the workspace's rust-version (one source of truth).
PUBLISHED=(snowsocket-core snowsocket-embedded-tls snowsocket-server snowsocket-cli)

stage_msrv() {
  local msrv
  msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
  [ -n "$msrv" ] || { echo "no rust-version in Cargo.toml" >&2; return 1; }
  command -v rustup >/dev/null 2>&1 ||
    { echo "the msrv stage needs rustup to install Rust $msrv (https://rustup.rs)" >&2; return 1; }
  rustup toolchain install "$msrv" --profile minimal --no-self-update
  local p args=()
  for p in "${PUBLISHED[@]}"; do args+=(-p "$p"); done
  # Its own target directory: another compiler version shares nothing.
  cargo "+$msrv" build --locked "${args[@]}" --target-dir target/msrv
  cargo "+$msrv" build --locked -p snowsocket-core --all-features --target-dir target/msrv
}

stage_package() {
  local p args=()
  for p in "${PUBLISHED[@]}"; do args+=(-p "$p"); done
  # Packages each crate as crates.io would get it and builds it alone,
  # the workspace's crates standing in for their not yet published versions
  # (a local registry overlay). Cargo takes a registry crate's version as
  # immutable: it would reuse the sources it extracted, and what it built,
  # from an earlier run of this stage. Both go first.
  local home=${CARGO_HOME:-$HOME/.cargo} name
  for name in "${PUBLISHED[@]}"; do
    rm -rf "$home"/registry/src/*/"$name"-[0-9]*
  done
  rm -rf target/package-verify
  cargo publish --dry-run --locked --target-dir target/package-verify "${args[@]}"
}

stage_test() {
  # The interop tests need their peers installed: the interop stage runs them.
  SNOWSOCKET_SKIP_INTEROP=1 cargo test --workspace --locked
  step "snowsocket-server without its default features (ws:// only, no rustls)"
  cargo test -p snowsocket-server --no-default-features --lib --locked
}

stage_interop() {
  ./scripts/interop-setup.sh
  cargo test --locked -p snowsocket-tests --test interop
  step "permessage-deflate against Python websockets (tests/tests/deflate.rs)"
  ./scripts/python-peers.sh
}

stage_load() {
  cargo run --locked -p snowsocket-bench -- --quick
}

stage_browser() {
  ./scripts/browser.sh
}

stage_cluster() {
  need_debian_packages "the cluster tests" redis-server nginx
  cargo test --locked -p snowsocket-pubsub --test cluster -- --ignored --test-threads 1
  step "the chat example with --redis: a message from one instance to another"
  ./scripts/cluster.sh --example --instances 2 --run scripts/chat-across.sh
}

stage_wasi() {
  bash scripts/wasi.sh
}

stage_qemu() {
  ./scripts/qemu-selftest.sh
}

stage_footprint() {
  ./scripts/footprint.sh
}

stage_fuzz() {
  # 7 s per target here (the script's default is 10): the suite stays
  # under 20 minutes on the project's slower days.
  FUZZ_SECONDS="${FUZZ_SECONDS:-7}" ./scripts/fuzz-smoke.sh
}

stage_autobahn() {
  ./scripts/autobahn.sh
}

# ------------------------------------------------------------ the run
# The time each stage took, printed at the end (also when a stage fails).
timings=()
report() {
  local status=$? line name secs result total=0
  [ ${#timings[@]} -gt 0 ] || return 0
  printf '\n%-10s %8s  %s\n' stage seconds result
  for line in "${timings[@]}"; do
    read -r name secs result <<<"$line"
    printf '%-10s %8s  %s\n' "$name" "$secs" "$result"
    total=$((total + secs))
  done
  printf '%-10s %8s\n' total "$total"
  [ ${#left_out[@]} -eq 0 ] || echo "not selected: ${left_out[*]}"
  [ "$status" -eq 0 ] && echo "test.sh: all ${#run[@]} stages passed" || echo "test.sh: FAILED"
}
trap report EXIT

# timed NAME COMMAND...: runs COMMAND in a subshell with errexit on and
# records its time. Call it as a plain command, never in a condition (`if`,
# `||`): bash turns errexit off inside a condition, subshells included.
timed() {
  local name=$1 t0 status
  shift
  t0=$(date +%s)
  set +e
  (
    set -e
    "$@"
  )
  status=$?
  set -e
  timings+=("$name $(($(date +%s) - t0)) $([ "$status" -eq 0 ] && echo ok || echo FAILED)")
  return "$status"
}

setup() {
  command -v cargo >/dev/null 2>&1 ||
    { echo "error: no cargo: install Rust with rustup (https://rustup.rs)" >&2; return 1; }
  # ring (under rustls) and the fuzz targets compile C.
  if ! command -v cc >/dev/null 2>&1; then
    need_debian_packages "building ring (rustls) and the fuzz targets: a C compiler" gcc libc6-dev
  fi
  if command -v rustup >/dev/null 2>&1; then
    rustup -q component add rustfmt clippy
  else
    echo "note: no rustup; using $(rustc --version) as it is (https://rustup.rs adds targets and components)"
  fi
  if will_run nostd; then
    rustup_targets thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imc-unknown-none-elf wasm32-wasip1
  fi
}

echo "test.sh: stages ${run[*]:-(none)}"
step "setup: toolchain, targets, C compiler"
timed setup setup
for s in "${run[@]}"; do
  step "$s: $(describe "$s")"
  timed "$s" "stage_$s"
done
