#!/usr/bin/env bash
# Autobahn|Testsuite, strict, both roles (called by scripts/test.sh; runs on
# its own too):
#  - server role: wstest's fuzzingclient against examples/echo_server;
#  - client role: wstest's fuzzingserver, with the command-line client
#    (cli/, `snowsocket --echo`) started once per case
#    (ws://127.0.0.1:PORT/runCase?case=N&agent=snowsocket);
#  - then both again for the async driver on tokio: examples/tokio_echo_server
#    and examples/tokio_echo_client (reports servers-tokio, clients-tokio).
# With both roles (the default) the two run at the same time, each over
# both drivers: about 2 minutes instead of 4 on two cores.
# Fails on any NON-STRICT, FAILED or UNIMPLEMENTED case outside the sections
# listed in NOT_IMPLEMENTED below, on a case missing from a report, and on a
# run that does not complete (server unreachable, timeout, no report).
# INFORMATIONAL is fine.
#
# wstest is a Python 2 program. It is installed (once; later runs reuse it)
# with pip --prefix into target/autobahn/ with the first Python 2.7 found:
# $AUTOBAHN_PYTHON, pyenv's newest 2.7.x, python2.7 on PATH. Where there is
# none, the script says so and exits 0 (skipped); AUTOBAHN_REQUIRE=1 makes
# that a failure. The pins and the two patches to fuzzing.py are explained
# where they are applied below.
#
# Both examples run with --deflate (permessage-deflate, sections 12 and 13).
# Those 216 cases per role send 1000 messages each, up to 128 KiB, about
# 11 GB per role through wstest's Python: hours on a shared 2-core machine
# (our side takes under 1 s of CPU per case; wstest the rest). By default a
# sample runs: every subsection (12.1-12.5: five data sets with the default
# offer; 13.1-13.7: seven offer/accept pairs of the four parameters) at
# 16 B, 4 KiB and 8 KiB in 256-byte frames, 36 cases per role (the 128 KiB
# cases are what takes wstest minutes each); AUTOBAHN_DEFLATE=full runs all.
# The async driver's examples (tokio) run with --deflate and the same cases.
#
# usage: scripts/autobahn.sh [--install-only] [--role server|client] [--cases 'GLOB ...']
#                            [--driver std|tokio]
# environment: AUTOBAHN_PYTHON, AUTOBAHN_REQUIRE, AUTOBAHN_TIMEOUT (seconds per
#   role, default 1800; 7200 with AUTOBAHN_DEFLATE=full), AUTOBAHN_CASE_TIMEOUT
#   (seconds per client-role case, default 300; 900 with AUTOBAHN_DEFLATE=full),
#   AUTOBAHN_DEFLATE (sample or full, default sample), CARGO_TARGET_DIR
#   (default target/).
# Reports (HTML and JSON): target/autobahn/reports/{servers,clients}/index.html
set -euo pipefail

# Sections whose UNIMPLEMENTED answers are expected (globs): none since
# permessage-deflate (12 and 13) is implemented.
NOT_IMPLEMENTED=""

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR
AB=$TARGET_DIR/autobahn
AGENT=snowsocket
DEFLATE=${AUTOBAHN_DEFLATE:-sample}
case "$DEFLATE" in
  sample)
    # 13.7.17 alone takes about a minute of wstest's time on a busy machine.
    ROLE_TIMEOUT=${AUTOBAHN_TIMEOUT:-1800}
    CASE_TIMEOUT=${AUTOBAHN_CASE_TIMEOUT:-300}
    DEFLATE_CASES=""
    for s in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
      DEFLATE_CASES="$DEFLATE_CASES $s.1 $s.5 $s.11"
    done
    DEFAULT_CASES="1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*$DEFLATE_CASES" ;;
  full)
    ROLE_TIMEOUT=${AUTOBAHN_TIMEOUT:-7200}
    CASE_TIMEOUT=${AUTOBAHN_CASE_TIMEOUT:-900}
    DEFAULT_CASES="*" ;;
  *) echo "autobahn: AUTOBAHN_DEFLATE is sample or full" >&2; exit 2 ;;
esac

INSTALL_ONLY=0
ROLES="server client"
DRIVERS="std tokio"
CASES=$DEFAULT_CASES
while [ $# -gt 0 ]; do
  case "$1" in
    --install-only) INSTALL_ONLY=1 ;;
    --role) ROLES=${2:?--role needs server or client}; shift ;;
    --cases) CASES=${2:?--cases needs globs, e.g. '1.* 2.*'}; shift ;;
    --driver) DRIVERS=${2:?--driver needs std or tokio}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "autobahn: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$ROLES" in server|client|"server client") ;; *) echo "autobahn: --role server|client" >&2; exit 2 ;; esac

say() { printf 'autobahn: %s\n' "$*"; }
die() { printf 'autobahn: ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

# ------------------------------------------------------------ Python 2.7
find_python2() {
  local p
  for p in ${AUTOBAHN_PYTHON:-} \
           $(command -v pyenv >/dev/null && ls -d "$(pyenv root)"/versions/2.7.*/bin/python 2>/dev/null | sort -V -r) \
           $(command -v python2.7 || true); do
    if "$p" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}
skip() {
  say "SKIPPED: $*"
  say "(wstest needs Python 2.7: install one, e.g. 'pyenv install 2.7.18', or set AUTOBAHN_PYTHON)"
  [ "${AUTOBAHN_REQUIRE:-0}" = 1 ] && die "AUTOBAHN_REQUIRE=1 and Autobahn cannot run"
  exit 0
}
PY2=$(find_python2) || skip "no Python 2.7 found (no \$AUTOBAHN_PYTHON, no pyenv 2.7.x, no python2.7 on PATH)"
"$PY2" -m pip --version >/dev/null 2>&1 || skip "$PY2 has no pip"

# ------------------------------------------------------------ install wstest
# autobahntestsuite 25.10.1 is the newest release and still Python 2 only; the
# versions below are its own requirements.txt pins (autobahn 0.10.9, Twisted
# 19.10.0, ...) plus, for Twisted's dependencies, the last releases that
# support Python 2. TLS packages (pyOpenSSL, cryptography) are left out: the
# runs here are ws:// only. wsaccel is autobahn's C UTF-8 validator and
# masker (section 9 is much slower without it).
PINS_BASE="six==1.16.0 incremental==16.10.1 constantly==15.1.0 attrs==21.4.0 Automat==20.2.0 idna==2.10 hyperlink==19.0.0"
PINS_ZOPE="zope.interface==4.6.0 PyHamcrest==1.10.1"
PINS_TWISTED="Twisted==19.10.0"
PINS_AUTOBAHN="txaio==2.1.0 autobahn==0.10.9 wsaccel==0.6.3 ujson==1.35 MarkupSafe==1.1.1 Jinja2==2.11.3 Werkzeug==1.0.1 klein==17.10.0 unittest2==1.1.0 traceback2==1.4.0 linecache2==1.0.0"
PINS_SUITE="autobahntestsuite==25.10.1"
WSTEST=$AB/bin/wstest
STAMP=$AB/installed
WANT_STAMP="$PY2 $PINS_BASE $PINS_ZOPE $PINS_TWISTED $PINS_AUTOBAHN $PINS_SUITE launcher-2"

install_wstest() {
  local t0 sp
  t0=$(now)
  say "installing wstest into $AB with $PY2 (about 2 minutes)"
  mkdir -p "$AB/bin"
  sp=$("$PY2" -E -s -c 'import sys, sysconfig; print(sysconfig.get_path("purelib", vars={"base": sys.argv[1], "platbase": sys.argv[1]}))' "$AB")
  [ "$sp" = "$("$PY2" -E -s -c 'import sys, sysconfig; print(sysconfig.get_path("platlib", vars={"base": sys.argv[1], "platbase": sys.argv[1]}))' "$AB")" ] \
    || die "this Python's purelib and platlib differ; the launcher assumes one site dir"
  mkdir -p "$sp"
  # - PIP_FIND_LINKS may point at a folder of wheels for other Pythons;
  # - --no-deps: pip 19's resolver would otherwise pick py3-only releases;
  # - --no-build-isolation: an isolated build would fetch the newest,
  #   py3-only setuptools;
  # - PYTHONPATH=site dir: what is already in the prefix counts as installed
  #   (re-runs are quick), and Twisted's setup_requires=incremental finds the
  #   incremental installed first instead of fetching the newest one.
  pipi() {
    env -u PIP_FIND_LINKS -u PIP_REQUIRE_VIRTUALENV -u PIP_USER -u PYTHONHOME \
      PYTHONPATH="$sp" PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONWARNINGS=ignore \
      "$PY2" -m pip install -q --no-deps --no-build-isolation --no-warn-script-location \
      --prefix "$AB" "$@" 2>&1 | { grep -v -e DEPRECATION -e 'Python 2.7' || true; }
    return "${PIPESTATUS[0]}"
  }
  # shellcheck disable=SC2086 # the pin lists are word lists
  { pipi $PINS_BASE && pipi $PINS_ZOPE && pipi $PINS_TWISTED && pipi $PINS_AUTOBAHN && pipi $PINS_SUITE; } \
    || die "pip install failed (see above)"

  # Two patches to autobahntestsuite/fuzzing.py, so that it runs without
  # pyOpenSSL: (1) it imports twisted.internet.ssl at module level, which
  # needs pyOpenSSL: make that import optional; (2) the fuzzing client makes
  # a TLS context factory for every server, ws:// too: only when ssl exists
  # (autobahn uses it only for wss://). Idempotent; the file's CRLF endings
  # are kept.
  "$PY2" -E -s - "$sp/autobahntestsuite/fuzzing.py" <<'EOF'
import sys
path = sys.argv[1]
text = open(path, "rb").read()
eol = "\r\n" if "\r\n" in text else "\n"
MARK = "  # snowsocket: pyOpenSSL is optional"
edits = [
    ("from twisted.internet import reactor, ssl" + eol,
     ["from twisted.internet import reactor",
      "try:" + MARK,
      "   from twisted.internet import ssl",
      "except ImportError:",
      "   ssl = None"]),
    ("self.contextFactory = ssl.ClientContextFactory()" + eol,
     ["self.contextFactory = ssl.ClientContextFactory() if ssl is not None else None" + MARK]),
]
for old, new in edits:
    if new[-1].strip() in text:
        continue  # already patched
    at = text.find(old)
    if at < 0 or text.find(old, at + 1) >= 0:
        sys.exit("fuzzing.py: expected exactly one line %r" % old.strip())
    indent = text[text.rfind("\n", 0, at) + 1:at]
    text = text[:at] + (eol + indent).join(new) + eol + text[at + len(old):]
open(path, "wb").write(text)
EOF
  # A .pyc written in the same second as the patch would look fresh to
  # Python 2 (1 s mtime resolution) and run the unpatched code.
  rm -f "$sp/autobahntestsuite/fuzzing.pyc"

  # The launcher: pip's own bin/wstest cannot see a --prefix site dir.
  # site.addsitedir (not PYTHONPATH) so zope's *-nspkg.pth is processed;
  # -E -s so that the caller's PYTHONPATH and user site stay out; -u so the
  # log shows progress as it happens. wstest listens on every interface;
  # the launcher makes a listener without an explicit interface bind
  # 127.0.0.1 instead.
  cat > "$AB/wstest_launcher.py" <<'EOF'
import site
import sys

site.addsitedir(sys.argv.pop(1))
sys.argv[0] = "wstest"
from autobahntestsuite import wstest  # installs the reactor
from twisted.internet import reactor

listen_tcp = reactor.listenTCP


def listen_tcp_loopback(port, factory, backlog=50, interface=""):
    return listen_tcp(port, factory, backlog, interface or "127.0.0.1")


reactor.listenTCP = listen_tcp_loopback
sys.exit(wstest.run())
EOF
  printf '#!/bin/sh\nexec "%s" -E -s -u "%s" "%s" "$@"\n' "$PY2" "$AB/wstest_launcher.py" "$sp" > "$WSTEST"
  chmod 755 "$WSTEST"
  "$WSTEST" --help >/dev/null 2>&1 || die "$WSTEST --help fails after the install"
  echo "$WANT_STAMP" > "$STAMP"
  say "wstest $("$WSTEST" --autobahnversion 2>/dev/null | tail -1) installed in $(($(now) - t0)) s"
}

if [ -x "$WSTEST" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT_STAMP" ]; then
  say "wstest already installed in $AB"
else
  rm -f "$STAMP"
  install_wstest
fi
[ "$INSTALL_ONLY" = 1 ] && exit 0

# ------------------------------------------------------------ run
say "building the echo servers and clients (release)"
cargo build --locked --release -p snowsocket-examples --example echo_server \
  --example tokio_echo_server --example tokio_echo_client
cargo build --locked --release -p snowsocket-cli --bin snowsocket
# Set per driver by the loop at the end: the binaries (the client with its
# arguments), and a suffix for the report folders and logs.
ECHO_SERVER=
ECHO_CLIENT=()
SUFFIX=
DEFLATE_FLAG=()
DRIVER_CASES=
DRIVER_NOT_IMPLEMENTED=

# One folder per role set, so that the roles can run at once.
WORK=$AB/run-${ROLES// /-}
REPORTS=$AB/reports
rm -rf "$WORK"
mkdir -p "$WORK" "$REPORTS"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for a background wstest, printing progress now and then; fails the
# role when it outlives DEADLINE. $1 pid, $2 log, $3 deadline (epoch s).
wait_wstest() {
  local pid=$1 log=$2 deadline=$3 last
  last=$(now)
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(now)" -ge "$deadline" ]; then
      kill "$pid" 2>/dev/null || true
      die "wstest still running after ${ROLE_TIMEOUT}s (AUTOBAHN_TIMEOUT); log: $log"
    fi
    if [ $(($(now) - last)) -ge 30 ]; then
      last=$(now)
      say "... $(grep -c '^Running test case ID' "$log" || true) cases started"
    fi
    sleep 1
  done
  wait "$pid" || die "wstest exited with status $?; log: $log"
}

# Prints one text message the fuzzing server sends on a control URL
# (/getCaseCount); a minimal WebSocket client, Python 2 and 3.
ws_text() {
  "$PY2" -E -s - "$@" <<'EOF'
import base64, os, socket, struct, sys
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
key = base64.b64encode(os.urandom(16)).decode("ascii")
s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode("ascii"))
buf = b""
def take(n):
    global buf
    while len(buf) < n:
        more = s.recv(65536)
        if not more:
            sys.exit("connection closed before a text message")
        buf += more
    out, buf = buf[:n], buf[n:]
    return out
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += take(1)
if b" 101 " not in head.split(b"\r\n")[0]:
    sys.exit("handshake refused: %r" % head[:200])
while True:
    b0, b1 = bytearray(take(2))
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", take(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", take(8))[0]
    payload = take(n)
    if b0 & 0x0F == 1:
        sys.stdout.write(payload.decode("utf-8") + "\n")
        break
    if b0 & 0x0F == 8:
        sys.exit("closed before a text message")
s.sendall(b"\x88\x80\x00\x00\x00\x00")  # Close, masked, empty
s.close()
EOF
}

# Prints the non-OK cases and the summary line of one role from its
# index.json; exits non-zero on a NON-STRICT, FAILED or UNIMPLEMENTED case
# outside NOT_IMPLEMENTED and on an expected case missing from the report.
# $1 role, $2 report dir, $3 expected number of cases.
summarize() {
  "$PY2" -E -s - "$1" "$2" "$3" "$AGENT" "$NOT_IMPLEMENTED $DRIVER_NOT_IMPLEMENTED" <<'EOF'
import fnmatch, json, os, sys
role, reports, expected, agent, not_implemented = sys.argv[1:6]
not_implemented = not_implemented.split()
BEHAVIOURS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
index_path = os.path.join(reports, "index.json")
try:
    cases = json.load(open(index_path))[agent]
except (IOError, ValueError, KeyError) as e:
    sys.exit("autobahn %s: no usable report %s (%s)" % (role, index_path, e))

def say(text):
    sys.stdout.write((u"autobahn %s: %s\n" % (role, text)).encode("utf-8"))

def one_line(text, limit=300):
    text = u" ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + u"..."

counts = dict((b, 0) for b in BEHAVIOURS)
not_allowed, not_yet = [], []
for case_id in sorted(cases, key=lambda c: tuple(int(p) for p in c.split("."))):
    case = cases[case_id]
    behaviour, close = case.get("behavior", "?"), case.get("behaviorClose", "?")
    counts[behaviour] = counts.get(behaviour, 0) + 1
    if behaviour == "UNIMPLEMENTED" and any(fnmatch.fnmatch(case_id, g) for g in not_implemented):
        not_yet.append(case_id)
        continue
    if behaviour not in ("OK", "INFORMATIONAL"):
        not_allowed.append(case_id)
    if behaviour == "OK" and close == "OK":
        continue
    try:
        detail = json.load(open(os.path.join(reports, case["reportfile"])))
    except (IOError, ValueError, KeyError):
        detail = {}
    reason = detail.get("result") or u"-"
    if close != "OK":
        reason += u" | close: %s" % (detail.get("resultClose") or u"-")
    say(u"%-8s behaviour %s, close %s: %s" % (case_id, behaviour, close, one_line(reason)))
if not_yet:
    say(u"UNIMPLEMENTED as expected (not implemented yet: %s): %d cases, %s .. %s"
        % (u" ".join(not_implemented), len(not_yet), not_yet[0], not_yet[-1]))
say(u" ".join(u"%s=%d" % (b, counts.pop(b)) for b in BEHAVIOURS)
    + u"".join(u" %s=%d" % kv for kv in sorted(counts.items())))
missing = int(expected) - len(cases)
if missing:
    say(u"FAILED: %d of %s cases are not in the report" % (missing, expected))
if not_allowed:
    say(u"FAILED: %d cases are not OK, INFORMATIONAL or an expected UNIMPLEMENTED: %s"
        % (len(not_allowed), u" ".join(not_allowed[:30]) + (u" ..." if len(not_allowed) > 30 else u"")))
sys.exit(1 if missing or not_allowed else 0)
EOF
}

# The JSON list of case globs for a spec.
cases_json() {
  local g out="" globs
  read -r -a globs <<< "$DRIVER_CASES"
  for g in "${globs[@]}"; do out="$out${out:+, }\"$g\""; done
  echo "[$out]"
}

run_server_role() {
  local t0 port log pid deadline total
  t0=$(now)
  say "server role: wstest fuzzingclient against $(basename "$ECHO_SERVER") ${DEFLATE_FLAG[*]}"
  : > "$WORK/echo_server$SUFFIX.log"
  "$ECHO_SERVER" --addr 127.0.0.1:0 "${DEFLATE_FLAG[@]}" > "$WORK/echo_server$SUFFIX.log" 2>&1 &
  PIDS+=("$!")
  pid=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9]*\)/$|\1|p' "$WORK/echo_server$SUFFIX.log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "${port:-}" ] || { cat "$WORK/echo_server$SUFFIX.log" >&2; die "echo_server did not print its address within 10 s"; }
  say "echo_server listening on ws://127.0.0.1:$port/"
  rm -rf "$REPORTS/servers$SUFFIX"
  cat > "$WORK/server-spec.json" <<EOF
{
  "outdir": "$REPORTS/servers$SUFFIX",
  "servers": [{"agent": "$AGENT", "url": "ws://127.0.0.1:$port"}],
  "cases": $(cases_json),
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
  log=$WORK/wstest-server$SUFFIX.log
  (cd "$WORK" && exec "$WSTEST" -m fuzzingclient -s server-spec.json) > "$log" 2>&1 < /dev/null &
  PIDS+=("$!")
  deadline=$(($(now) + ROLE_TIMEOUT))
  wait_wstest $! "$log" "$deadline"
  kill -0 "$pid" 2>/dev/null || die "echo_server died during the run; log: $WORK/echo_server$SUFFIX.log"
  kill "$pid"
  total=$(sed -n 's/^Ok, will run \([0-9]*\) test cases.*/\1/p' "$log" | head -1)
  [ -n "$total" ] || die "wstest did not say how many cases it runs; log: $log"
  say "server role: $total cases in $(($(now) - t0)) s; report $REPORTS/servers$SUFFIX/index.html"
  summarize "server$SUFFIX" "$REPORTS/servers$SUFFIX" "$total"
}

run_client_role() {
  local t0 port log pid deadline count n rc failed_exits=0 killed=0
  t0=$(now)
  say "client role: wstest fuzzingserver, ${ECHO_CLIENT[*]##*/} once per case"
  port=$("$PY2" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$REPORTS/clients$SUFFIX"
  cat > "$WORK/client-spec.json" <<EOF
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$REPORTS/clients$SUFFIX",
  "cases": $(cases_json),
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
  log=$WORK/wstest-client$SUFFIX.log
  # -u 0: no web server on port 8080.
  (cd "$WORK" && exec "$WSTEST" -m fuzzingserver -s client-spec.json -u 0) > "$log" 2>&1 < /dev/null &
  pid=$!
  PIDS+=("$pid")
  deadline=$(($(now) + ROLE_TIMEOUT))
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "wstest fuzzingserver exited at start"; }
    sleep 0.2
  done
  count=$(ws_text "$port" /getCaseCount) || die "getCaseCount failed; log: $log"
  say "fuzzingserver on ws://127.0.0.1:$port: $count cases"
  for n in $(seq 1 "$count"); do
    [ "$(now)" -lt "$deadline" ] || die "client role still running after ${ROLE_TIMEOUT}s (AUTOBAHN_TIMEOUT), at case $n of $count"
    echo "=== case $n" >> "$WORK/client$SUFFIX.log"
    rc=0
    timeout -k 5 "$CASE_TIMEOUT" "${ECHO_CLIENT[@]}" "${DEFLATE_FLAG[@]}" "ws://127.0.0.1:$port/runCase?case=$n&agent=$AGENT" \
      >> "$WORK/client$SUFFIX.log" 2>&1 < /dev/null || rc=$?
    case $rc in
      0) ;;
      124|137) killed=$((killed + 1)); echo "=== case $n: killed after ${CASE_TIMEOUT}s" >> "$WORK/client$SUFFIX.log" ;;
      *) failed_exits=$((failed_exits + 1)) ;;
    esac
    kill -0 "$pid" 2>/dev/null || die "wstest died at case $n; log: $log"
    [ $((n % 100)) -ne 0 ] || say "... $n/$count cases run"
  done
  # snowsocket exits non-zero where it fails the connection (the cases with
  # a misbehaving server) and where the server closes with a code other
  # than 1000; the report judges each case.
  say "${ECHO_CLIENT[0]##*/}: $failed_exits non-zero exits, $killed killed after ${CASE_TIMEOUT}s (log: $WORK/client$SUFFIX.log)"
  timeout 120 "${ECHO_CLIENT[@]}" "ws://127.0.0.1:$port/updateReports?agent=$AGENT" >/dev/null 2>&1 < /dev/null \
    || die "updateReports failed; log: $log"
  for _ in $(seq 1 100); do [ -f "$REPORTS/clients$SUFFIX/index.json" ] && break; sleep 0.1; done
  kill "$pid" 2>/dev/null || true
  say "client role: $count cases in $(($(now) - t0)) s; report $REPORTS/clients$SUFFIX/index.html"
  summarize "client$SUFFIX" "$REPORTS/clients$SUFFIX" "$count"
}

# run_role ROLE: that role for every driver in $DRIVERS.
run_role() {
  local role=$1 driver t_driver status=0
  for driver in $DRIVERS; do
    case $driver in
      std) ECHO_SERVER=$TARGET_DIR/release/examples/echo_server
           ECHO_CLIENT=("$TARGET_DIR/release/snowsocket" --echo --quiet)
           DEFLATE_FLAG=(--deflate)
           DRIVER_CASES=$CASES
           DRIVER_NOT_IMPLEMENTED=
           SUFFIX= ;;
      tokio) ECHO_SERVER=$TARGET_DIR/release/examples/tokio_echo_server
             ECHO_CLIENT=("$TARGET_DIR/release/examples/tokio_echo_client")
             DEFLATE_FLAG=(--deflate)
             DRIVER_CASES=$CASES
             DRIVER_NOT_IMPLEMENTED=
             SUFFIX=-tokio ;;
      *) die "--driver std|tokio" ;;
    esac
    t_driver=$(now)
    "run_${role}_role" || status=1
    say "$role role, driver $driver: $(($(now) - t_driver)) s"
  done
  return $status
}

status=0
t_all=$(now)
if [ "$ROLES" = "server client" ]; then
  # Both roles at once: each is mostly one wstest (one Python thread), so on
  # two cores this halves the time. Each role runs in a subshell with its
  # own cleanup, its output in a file printed when both are done.
  say "both roles at once; their output follows when both are done"
  for role in server client; do
    (
      PIDS=()
      trap cleanup EXIT
      trap 'exit 130' INT TERM
      run_role "$role"
    ) > "$WORK/$role-role.out" 2>&1 &
    PIDS+=($!)
  done
  for i in 0 1; do
    wait "${PIDS[$i]}" || status=1
  done
  cat "$WORK/server-role.out" "$WORK/client-role.out"
else
  run_role "$ROLES" || status=1
fi
say "$ROLES: $(($(now) - t_all)) s"
exit $status
