#!/usr/bin/env python3
"""Cargo runner for wasm32-wasip1: runs a .wasm (a test binary) under the
`wasmtime` Python package with WASI, the given arguments, inherited stdio and
environment, and exits with the module's exit code.

Use: CARGO_TARGET_WASM32_WASIP1_RUNNER=scripts/wasmtime-runner.py
(scripts/wasi.sh sets it; `pip install wasmtime` provides the module).
"""
import sys

import wasmtime


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: wasmtime-runner.py FILE.wasm [ARGS...]", file=sys.stderr)
        return 2
    path = sys.argv[1]
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, path)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    wasi = wasmtime.WasiConfig()
    wasi.argv = [path, *sys.argv[2:]]
    wasi.inherit_env()
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except wasmtime.ExitTrap as e:
        return e.code
    except wasmtime.Trap as e:
        # A trap (e.g. a panic, which aborts on wasm) is a failure.
        print(f"wasm trap: {e}", file=sys.stderr)
        return 101
    return 0


if __name__ == "__main__":
    sys.exit(main())
