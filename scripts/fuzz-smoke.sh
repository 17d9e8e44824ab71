#!/usr/bin/env bash
# A short fuzz run of every snowsocket-core target (core/fuzz), as CI does
# where a nightly toolchain is present; otherwise it says it is skipped.
#
#   scripts/fuzz-smoke.sh            # 10 s per target
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh
#
# The committed seeds (core/fuzz/corpus/<target>) are read, never written:
# new inputs go to a temporary corpus. A crash leaves its input under
# core/fuzz/artifacts/<target>/; add it to core/fuzz/regressions/<target>/
# so that the stable replay (tests/tests/core.rs, fuzz_replay) keeps it.
set -euo pipefail
cd "$(dirname "$0")/../core/fuzz"

seconds="${FUZZ_SECONDS:-10}"
targets=(frame_decoder server_connection client_connection handshake_request handshake_response deflate_connection deflate_negotiation)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz smoke: skipped (no nightly toolchain)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cargo +nightly fuzz build
failed=()
for t in "${targets[@]}"; do
  echo "==> $t (${seconds}s)"
  mkdir -p "$scratch/$t"
  set +e
  cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$scratch/$t.log" 2>&1
  status=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$scratch/$t.log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz smoke: $t FAILED (exit $status); input saved under core/fuzz/artifacts/$t/:" >&2
    grep -E 'panicked|ERROR|SUMMARY|artifact' "$scratch/$t.log" >&2 || tail -30 "$scratch/$t.log" >&2
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz smoke: failures in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz smoke: all targets ran ${seconds}s without a failure"
