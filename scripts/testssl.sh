#!/usr/bin/env bash
# `make testssl`: Debian's testssl.sh against Parley's TLS port on loopback.
# A CA and an ECDSA P-256 server certificate are made for the run
# (tests/e2e/tls_certs.py, certtool), a server is started on a free port with
# them (--tls-cert/--tls-key, a temporary data directory), and testssl checks
# protocols, cipher categories, forward secrecy, the server's preferences and
# defaults, and the known vulnerabilities. The full report goes to
# build/testssl.txt (and .json); the run fails when testssl finds an offered
# protocol or cipher it rates weak (severity MEDIUM or worse in its JSON).
# Long (minutes): not part of `make test`. docs/operations.md ("TLS") keeps
# the summary.
#   TESTSSL_CHECKS  testssl's checks (default: -p -s -f -P -S -E -U)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PARLEY_BIN:-bin/parley}
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 - "$work" <<'PY'
import sys
sys.path.insert(0, "tests/e2e")
from tls_certs import CertAuthority
import os
CertAuthority(sys.argv[1]).issue(int.from_bytes(os.urandom(8), "big") >> 1, name="server")
PY
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --bind 127.0.0.1 --port "$port" --data-dir "$work/data" --rate-limit 0 \
  --tls-cert "$work/server.pem" --tls-key "$work/server.key" >"$work/server.log" 2>&1 &
pid=$!
# Poll (every 0.1 s, for at most 20 s) until the server answers over TLS.
up=0
for _ in $(seq 200); do
  if curl -sf --cacert "$work/ca.pem" "https://127.0.0.1:$port/api/health" >/dev/null; then
    up=1
    break
  fi
  sleep 0.1
done
if [ "$up" != 1 ]; then
  echo "testssl: the server did not answer over TLS within 20 s" >&2
  cat "$work/server.log" >&2
  exit 1
fi
mkdir -p build
rm -f build/testssl.json
# shellcheck disable=SC2086
testssl --quiet --color 0 --warnings off --jsonfile build/testssl.json \
  ${TESTSSL_CHECKS:--p -s -f -P -S -E -U} "127.0.0.1:$port" | tee build/testssl.txt
/usr/bin/python3 - build/testssl.json <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
# The test certificate is self-made, so its trust, chain and lifetime
# findings say nothing about the server's configuration.
cert = ("cert_", "intermediate_", "chain_of_trust", "OCSP", "DNS_CAA", "certificate")
bad = [f for f in findings if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL")
       and not f["id"].startswith(cert)]
for f in bad:
    print("testssl: %s %s: %s" % (f["severity"], f["id"], f["finding"]))
print("testssl: %d weak findings" % len(bad))
sys.exit(1 if bad else 0)
PY
