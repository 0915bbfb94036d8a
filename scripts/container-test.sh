#!/usr/bin/env bash
# Builds the production image (Containerfile) with podman and checks it end to
# end: the server starts as uid 10001, GET /api/health answers ok, the image's
# HEALTHCHECK passes, and `podman stop` (SIGTERM) ends it with exit code 0.
#   scripts/container-test.sh
# Works on a Debian 12 machine with no image registry: installs podman, buildah,
# debootstrap and runc if missing, and builds the base image
# docker.io/library/debian:bookworm-slim locally with debootstrap when absent.
# Uses a private containers.conf (runc, explicit ulimits) through CONTAINERS_CONF.
# Prints `container-test: 1 passed, 0 failed` on success; exits non-zero otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
IMAGE=localhost/parley:test
BASE=docker.io/library/debian:bookworm-slim
NAME=parley-ctest-$$
VOLUME=parley-ctest-data-$$
start=$SECONDS

log() { echo "container-test: $*"; }

fail() {
  log "FAIL: $*" >&2
  if [ -s "$tmp/podman.err" ]; then
    echo "---- podman stderr ----" >&2
    cat "$tmp/podman.err" >&2
  fi
  if podman container exists "$NAME" 2>/dev/null; then
    echo "---- podman logs $NAME ----" >&2
    podman logs "$NAME" >&2 || true
    echo "---- end of logs ----" >&2
  fi
  echo "container-test: 0 passed, 1 failed"
  exit 1
}

tmp=$(mktemp -d)
cleanup() {
  podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- tools -----------------------------------------------------------------
missing=()
for tool in podman:podman buildah:buildah debootstrap:debootstrap runc:runc curl:curl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q "${missing[@]}"
fi

# crun fails on hybrid cgroups here and the default ulimits are refused.
cat >"$tmp/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$tmp/containers.conf"
# podman 4.3 still tries to add systemd health-check timers despite
# --health-interval disable and logs errors when there is no systemd: keep the
# stderr of run/stop in a file, shown only on failure.
: >"$tmp/podman.err"

# ---- base image (no registry reachable: debootstrap it) --------------------
if ! podman image exists "$BASE"; then
  log "building base image $BASE with debootstrap"
  rootfs="$tmp/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" >"$tmp/debootstrap.log" 2>&1 \
    || { tail -n 20 "$tmp/debootstrap.log" >&2; fail "debootstrap failed"; }
  # Make it a stand-in for the official slim image: its apt sources (with
  # updates and security), its dpkg path excludes and apt clean-up, and no
  # package cache, lists, docs, man pages or locales.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
DPKG
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/{man,info,locale,groff}/*
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  tar --numeric-owner -C "$tmp/rootfs" -c . \
    | podman import -q --change 'CMD ["bash"]' - localhost/debian:bookworm-slim >/dev/null
  podman tag localhost/debian:bookworm-slim "$BASE"
  rm -rf "$tmp/rootfs"
fi

# ---- build -----------------------------------------------------------------
log "building $IMAGE"
podman build --pull=never --format docker -t "$IMAGE" -f Containerfile . >"$tmp/build.log" 2>&1 \
  || { tail -n 40 "$tmp/build.log" >&2; fail "podman build failed"; }

# ---- run -------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
  || shuf -i 20000-60000 -n 1)
podman volume create "$VOLUME" >/dev/null
podman run -d --name "$NAME" --health-interval disable \
  -p "127.0.0.1:$port:7575" -v "$VOLUME:/data" "$IMAGE" >/dev/null 2>>"$tmp/podman.err" \
  || fail "podman run failed"

url="http://127.0.0.1:$port/api/health"
body=""
for _ in $(seq 1 50); do
  if body=$(curl -fsS --max-time 2 "$url" 2>/dev/null); then break; fi
  [ "$(podman inspect -f '{{.State.Running}}' "$NAME")" = "true" ] || fail "container exited early"
  body=""
  sleep 0.2
done
[ -n "$body" ] || fail "no answer from $url after 10 s"
log "GET /api/health -> $body"

# ---- checks ----------------------------------------------------------------
python3 - "$body" <<'PY' || fail "unexpected /api/health answer: $body"
import json, sys
d = json.loads(sys.argv[1])
assert d["status"] == "healthy", d
assert isinstance(d["version"], str) and d["version"], d
assert isinstance(d["uptime_seconds"], int) and d["uptime_seconds"] >= 0, d
PY

podman healthcheck run "$NAME" >/dev/null || fail "podman healthcheck run reported unhealthy"
log "HEALTHCHECK healthy"

pid=$(podman inspect -f '{{.State.Pid}}' "$NAME")
uid=$(awk '/^Uid:/ {print $3}' "/proc/$pid/status")  # effective uid (no user namespace)
[ "$uid" = "10001" ] || fail "server runs as uid '$uid', expected 10001"
user=$(podman exec "$NAME" id -u)
[ "$user" = "10001" ] || fail "exec runs as uid '$user', expected 10001"
podman exec "$NAME" test -w /data || fail "/data is not writable by parley"
log "runs as uid $uid, /data writable"

# ---- stop (SIGTERM, graceful) ----------------------------------------------
t0=$SECONDS
podman stop -t 10 "$NAME" >/dev/null 2>>"$tmp/podman.err" || fail "podman stop failed"
took=$((SECONDS - t0))
code=$(podman inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = "0" ] || fail "exit code after SIGTERM is $code, expected 0"
[ "$took" -lt 8 ] || fail "podman stop took ${took}s (SIGTERM not handled?)"
log "stopped by SIGTERM in ${took}s, exit code 0"
podman rm "$NAME" >/dev/null 2>>"$tmp/podman.err"

log "image $(podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE" | head -n 1), total $((SECONDS - start))s"
echo "container-test: 1 passed, 0 failed"
