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
# The web client is bundled at build time by esbuild, which needs node (18 or
# later: Debian 12 has 18) and npm; they are taken from Debian only when the
# commands are missing (a node from elsewhere, e.g. NodeSource, ships its own
# npm and conflicts with Debian's npm package).
web_build_pkgs=(nodejs npm)
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
  chromium  # the browser tests (tests/web/) drive Debian's chromium with playwright-core
  fonts-dejavu-core  # a font for the pages that chromium renders and screenshots
  fonts-noto-color-emoji  # the emoji of reactions and the picker, in screenshots
)

bench_pkgs=(
  wrk curl redis-server redis-tools python3 python3-pytest python3-requests
  gnutls-bin  # certtool: P11 makes its certificate
  chromium fonts-dejavu-core  # W2: the first paint of the web client
  gnuplot-nox  # scripts/bench/plots.py: the SVG plots of docs/bench/
)

want=("${build_pkgs[@]}")
case "${1:-}" in
  "") ;;
  --test) want+=("${test_pkgs[@]}") ;;
  --bench) want+=("${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [--test|--bench]" >&2; exit 2 ;;
esac

check_node() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 18 ]; then
    echo "install-deps: node $(node --version 2>/dev/null) is too old: the web client's build needs node 18 or later" >&2
    exit 1
  fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  want+=("${web_build_pkgs[@]}")
fi

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages are installed"
  check_node
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
check_node
