# Helpers shared by the test scripts (sourced, not run): Debian packages
# installed only when missing, with sudo only when not root; the Python
# virtual environment under target/ that holds every Python package the
# tests use (stock Debian 12 and Ubuntu 24.04 refuse pip installs into the
# system interpreter: PEP 668, "externally-managed-environment").
# shellcheck shell=bash

# Runs a command as root: directly when root, through sudo when not.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# need_debian_packages WHY PACKAGE...: installs the packages not installed yet
# with apt-get, or says what to install (and fails) where that cannot be done.
need_debian_packages() {
  local why=$1 p missing=()
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $why needs ${missing[*]} (Debian package names), and there is no apt-get here:" \
      "install the equivalent with this system's package manager" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "error: $why needs ${missing[*]}; not root and no sudo: run" \
      "'apt-get install ${missing[*]}' as root" >&2
    return 1
  fi
  echo "installing ${missing[*]} (Debian) for $why"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# venv_python: prints the Python of the virtual environment
# ${CARGO_TARGET_DIR:-target}/venv, made first when missing (with python3's
# venv module, installed from Debian's python3-venv when it lacks one).
venv_python() {
  local venv=${CARGO_TARGET_DIR:-target}/venv
  if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    if ! command -v python3 >/dev/null 2>&1; then
      need_debian_packages "the Python virtual environment ($venv)" python3 >&2 || return 1
    fi
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian and Ubuntu ship the venv module's ensurepip separately.
      rm -rf "$venv"
      need_debian_packages "the Python virtual environment ($venv)" python3-venv >&2 || return 1
      python3 -m venv "$venv" >&2 || return 1
    fi
  fi
  (cd "$venv/bin" && printf '%s/python\n' "$PWD")
}

# pip_install PYTHON MODULE REQUIREMENT: pip-installs REQUIREMENT into the
# environment of PYTHON (a venv's) unless MODULE imports already.
pip_install() {
  if ! "$1" -c "import $2" >/dev/null 2>&1; then
    "$1" -m pip install --disable-pip-version-check -q "$3"
  fi
}

# rustup_targets TARGET...: adds the Rust targets not installed yet (the
# no_std, WASI and emulator builds need them), or says how to get them.
rustup_targets() {
  if command -v rustup >/dev/null 2>&1; then
    rustup -q target add "$@"
    return
  fi
  local t sysroot missing=()
  sysroot=$(rustc --print sysroot)
  for t in "$@"; do
    [ -d "$sysroot/lib/rustlib/$t" ] || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "error: the Rust targets ${missing[*]} are not installed and there is no rustup" \
    "to add them: install Rust with rustup (https://rustup.rs)" >&2
  return 1
}
