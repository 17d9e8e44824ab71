#!/usr/bin/env bash
# Installs the peers of the interop tests (tests/tests/interop.rs), at the
# versions pinned in tests/interop/: Python `websockets`
# (requirements.txt) into the virtual environment target/venv (never the
# system's Python), and Node's `ws` (package.json, package-lock.json) into
# tests/interop/node_modules with `npm ci`. Debian's python3-venv, nodejs
# and npm are installed when missing (see scripts/lib.sh). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

py=$(venv_python)
"$py" -m pip install --disable-pip-version-check -q -r tests/interop/requirements.txt
echo "interop: $("$py" -c 'import websockets; print("websockets", websockets.__version__)') in $(dirname "$(dirname "$py")")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  need_debian_packages "the interop tests' Node peer" nodejs npm
fi
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "interop: ws $(node -p 'require("./tests/interop/node_modules/ws/package.json").version') under node $(node --version)"
