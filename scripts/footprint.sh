#!/usr/bin/env bash
# Flash and RAM of a WebSocket echo firmware for thumbv7em-none-eabihf
# (Cortex-M4F), snowsocket-core side by side with embedded-websocket, built in
# the same run with the same profile (opt-level "z", LTO, panic = "abort",
# codegen-units = 1), the same transport, RNG and buffer sizes.
# See examples/footprint. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
cd examples/footprint

rustup_targets thumbv7em-none-eabihf

# Tools: LLVM's (Debian package llvm) or GNU's for ARM
# (binutils-arm-none-eabi); installed from Debian if neither is there.
pick() {
    for t in "llvm-$1" "arm-none-eabi-$1"; do
        if command -v "$t" >/dev/null 2>&1; then echo "$t"; return; fi
    done
}
if [ -z "$(pick size)" ]; then
    need_debian_packages "the footprint stage (size, nm, objdump for ARM)" binutils-arm-none-eabi >&2
fi
SIZE=$(pick size)
NM=$(pick nm)
OBJDUMP=$(pick objdump)

dir="${CARGO_TARGET_DIR:-target}/thumbv7em-none-eabihf/release"
# First with snowsocket-core's default `reasons` feature (the texts in the
# Closes and HTTP error answers it sends), kept aside; then every firmware
# with both libraries' default features off.
cargo build --release --bin snowsocket_server --bin snowsocket_client --features snowsocket-core/reasons >&2
for b in snowsocket_server snowsocket_client; do cp "$dir/$b" "$dir/$b.reasons"; done
cargo build --release --bins >&2

# Bytes of the named sections (`size -A` format: name size addr).
sections() { "$SIZE" -A "$1" | awk -v re="$2" '$1 ~ re { s += $2 } END { print s + 0 }'; }
flash() { sections "$1" '^\.(vector_table|text|rodata|data)$'; }
ram() { sections "$1" '^\.(data|bss|uninit)$'; }
# The value of the 4-byte FOOTPRINT_STATE_BYTES static (little-endian).
state() {
    local addr
    addr=$("$NM" "$1" | awk '$3 == "FOOTPRINT_STATE_BYTES" { print $1 }')
    [ -n "$addr" ] || { echo "?"; return; }
    # The hex dump's lines: address, then up to four 4-byte words.
    local want=$((16#$addr)) at line hex w
    while read -r at line; do
        [[ $at =~ ^[0-9a-f]+$ ]] || continue
        if ((want >= 16#$at && want + 4 <= 16#$at + 16)); then
            hex=$(echo "$line" | awk '{ print $1 $2 $3 $4 }')
            w=${hex:$((2 * (want - 16#$at))):8}
            echo $((16#${w:6:2}${w:4:2}${w:2:2}${w:0:2}))
            return
        fi
    done < <("$OBJDUMP" -s -j .rodata "$1")
    echo "?"
}

base=$(flash "$dir/baseline")
# Worst-case stack from the call graph, buffers on the stack included
# (scripts/stack-depth.py).
stack() { python3 ../../scripts/stack-depth.py "$OBJDUMP" "$1" main 2>/dev/null || echo "?"; }
row() { # bin, label, buffers text
    local f
    f=$(flash "$dir/$1")
    printf '| %s | %s | %s | %s | %s B state + %s | %s |\n' "$2" "$f" "$((f - base))" "$(ram "$dir/$1")" "$(state "$dir/$1")" "$3" "$(stack "$dir/$1")"
}

echo "| firmware (thumbv7em-none-eabihf, opt-level z, LTO) | flash, bytes | flash minus baseline | static RAM (data+bss) | RAM the caller provides | peak stack, buffers included |"
echo "|---|---:|---:|---:|---|---:|"
row snowsocket_server "snowsocket-core server echo (handshake, framing, reassembly, strict UTF-8, close codes, heartbeat)" "read 1024 + write 1024 + message 1024"
row snowsocket_server.reasons "snowsocket-core server echo with its default features (the \`reasons\` texts)" "read 1024 + write 1024 + message 1024"
row ew_server "embedded-websocket $(cargo tree -e normal -i embedded-websocket --prefix none 2>/dev/null | head -1 | awk '{print $2}') server echo (handshake, framing, reassembly; no heartbeat)" "read 1024 + write 1024 + frame 1024"
row snowsocket_async_server "snowsocket-core server echo, async driver (same features; polled by a minimal block_on)" "read 1024 + write 1024 + message 1024"
row ew_async_server "embedded-websocket server echo, its async framer (futures Stream and Sink over the same transport; the same block_on)" "read chunk 1024 + write 1024 + frame 1024"
row snowsocket_client "snowsocket-core client echo (same features)" "read 1024 + write 1024 + message 1024"
row snowsocket_client.reasons "snowsocket-core client echo with its default features (the \`reasons\` texts)" "read 1024 + write 1024 + message 1024"
row ew_client "embedded-websocket client echo" "read 1024 + write 1024 + frame 1024"
printf '| baseline (cortex-m-rt, transport, RNG, no WebSocket) | %s | 0 | %s | — | %s |\n' "$base" "$(ram "$dir/baseline")" "$(stack "$dir/baseline")"
echo
echo "Where it goes (each part alone, minus baseline):"
echo
echo "| part | snowsocket-core | embedded-websocket |"
echo "|---|---:|---:|"
printf '| server handshake (HTTP parse, SHA-1, base64, 101 answer) | %s | %s |\n' \
    "$(($(flash "$dir/part_snowsocket_handshake") - base))" "$(($(flash "$dir/part_ew_handshake") - base))"
printf '| framing and echo, server role (no handshake) | %s | %s |\n' \
    "$(($(flash "$dir/part_snowsocket_connection") - base))" "$(($(flash "$dir/part_ew_connection") - base))"
echo
echo "flash = .vector_table + .text + .rodata + .data; sizes from $SIZE -A."
