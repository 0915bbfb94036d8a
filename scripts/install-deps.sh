#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages Parley needs that are not installed yet.
#   scripts/install-deps.sh          build and run dependencies
#   scripts/install-deps.sh --test   the same plus what the test suites need
#   scripts/install-deps.sh --bench  the same plus the load generators of make bench
# Idempotent: when everything is present it says so and touches nothing.
set -euo pipefail

build_pkgs=(
  gcc make libc6-dev
  libulfius-dev liborcania-dev libyder-dev libmicrohttpd-dev
  libjansson-dev libjwt-dev libgnutls28-dev libzstd-dev libmagic-dev
  libargon2-dev libwslay-dev
)
test_pkgs=(
  clang libclang-rt-14-dev
  python3 python3-pytest python3-requests python3-websocket
  python3-crc32c python3-zstandard
  python3-cryptography  # tests/e2e/test_encryption.py reads sealed files from the documented format
  strace
  mount
  prometheus  # promtool: tests/e2e/test_metrics.py runs `promtool check metrics`
  gnutls-bin  # certtool, gnutls-cli: tests/e2e/test_tls.py makes its CA and checks ciphers
  testssl.sh  # make testssl
)

bench_pkgs=(
  wrk curl redis-server redis-tools python3 python3-pytest python3-requests
  gnutls-bin  # certtool: P11 makes its certificate
)

want=("${build_pkgs[@]}")
case "${1:-}" in
  "") ;;
  --test) want+=("${test_pkgs[@]}") ;;
  --bench) want+=("${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [--test|--bench]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages are installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: not root and no sudo; install these packages: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them once before installing.
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
