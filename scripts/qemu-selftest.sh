#!/usr/bin/env bash
# Runs snowsocket-core's self-tests on an emulated Cortex-M4F: builds
# examples/firmware for thumbv7em-none-eabihf and runs it under QEMU's
# mps2-an386 board, reporting over semihosting; then the same for
# examples/embassy-firmware (the async driver on embassy: a server task and a
# client task over embassy-sync pipes). Exits with 0 when every firmware
# passed.
#
# Installs what it needs: qemu-system-arm (Debian package, if missing) and
# the rustup target.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if ! command -v qemu-system-arm >/dev/null 2>&1; then
    need_debian_packages "the emulator stage" qemu-system-arm
fi
rustup_targets thumbv7em-none-eabihf

# run_firmware DIR ELF: builds examples/DIR and runs it; its status.
run_firmware() {
echo "==> building examples/$1 (release, thumbv7em-none-eabihf)"
(cd "examples/$1" && cargo build --release)
target_dir="${CARGO_TARGET_DIR:-examples/$1/target}"
elf="$target_dir/thumbv7em-none-eabihf/release/$2"

echo "==> running it on qemu-system-arm -machine mps2-an386"
log=$(mktemp)
set +e
timeout 120 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf" </dev/null | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ]; then
    echo "qemu-selftest: timed out after 120 s" >&2
fi
# The firmware's exit status decides; the summary line must be there too.
if [ "$status" -eq 0 ] && ! grep -Eq '^[0-9]+ passed, 0 failed$' "$log"; then
    echo "qemu-selftest: no '<N> passed, 0 failed' line" >&2
    status=1
fi
rm -f "$log"
return "$status"
}

status=0
run_firmware firmware snowsocket-firmware || status=1
run_firmware embassy-firmware snowsocket-embassy-firmware || status=1
exit "$status"
