#!/usr/bin/env bash
# Python `websockets` as an independent peer (permessage-deflate, RFC 7692):
# tests/tests/deflate.rs's ignored tests, its client against our server and
# our client against its server (and tests/tests/asynch/deflate.rs's, the
# same with the async driver), with all four parameters and messages of
# 0 B to 16 MiB both ways. websockets is pip-installed into the virtual
# environment target/venv (see scripts/lib.sh), at the version the interop
# tests pin (tests/interop/requirements.txt): one venv, one version.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
PY=$(venv_python)
"$PY" -m pip install --disable-pip-version-check -q -r tests/interop/requirements.txt
SNOWSOCKET_PYTHON=$PY \
  cargo test -p snowsocket-tests --locked --test deflate -- --ignored python "$@"
# The same peer against the async driver's server and client (tokio).
SNOWSOCKET_PYTHON=$PY \
  cargo test -p snowsocket-tests --locked --test asynch -- --ignored python "$@"
