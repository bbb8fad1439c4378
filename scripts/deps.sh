#!/usr/bin/env bash
# Installs the Debian packages gort's build, tests and benchmarks need, when
# they are missing.  Safe to run again: it installs only what is absent.
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh --ui     also Chromium, for the gortprof web UI tests
set -euo pipefail

# cmake: the CMake consumer in tests/install_check.sh; mandoc: make
# man-check; abigail-tools: make abi-check; debhelper and lintian: make deb.
pkgs=(build-essential pkg-config libunwind-dev libdw-dev libelf-dev
      libcunit1-dev zlib1g-dev golang-go gdb valgrind
      cmake mandoc abigail-tools debhelper lintian)
if [ "${1:-}" = "--ui" ] || [ "${GORT_DEPS_UI:-0}" = 1 ]; then
  pkgs+=(chromium)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
