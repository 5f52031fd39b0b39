#!/usr/bin/env bash
# Prepare this machine to run the Molecule scenarios offline:
#   1. a running Docker daemon (started here when none answers; no systemd needed),
#   2. the Debian 13 systemd base image, built with debootstrap when it is missing;
# and, for the proxy's contract test (tests/test_reverse_proxy_contract.py):
#   3. `caddy`: the caddy binary from this machine's Debian archive, extracted from the package
#      (apt-get download + dpkg-deb -x) into the cache, never installed (the package would
#      start a service on port 80). Prints the binary's path.
# Idempotent: a second call finds both and returns within a second.
# Needs root for apt-get and dockerd; does nothing that a converged CI host would undo.
set -euo pipefail

GLASSBOX_IMAGE="${GLASSBOX_IMAGE:-glassbox/debian-systemd:trixie}"
GLASSBOX_SUITE="${GLASSBOX_SUITE:-trixie}"
CACHE_DIR="${GLASSBOX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/glassbox}"
STATE_DIR="${GLASSBOX_STATE_DIR:-/var/lib/glassbox-test-host}"

log() { printf '[test-host] %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "this step needs root: $1"
    exit 1
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  need_root "apt-get install ${missing[*]}"
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The first Debian mirror this machine's apt already uses (deb822 or one-line format).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in /etc/apt; set GLASSBOX_MIRROR"; exit 1; }
  printf '%s\n' "$uri"
}

# True when the kernel's capability bounding set lacks CAP_SYS_RESOURCE (bit 24), as on
# the sandboxed CI VMs: runc then cannot apply the full privileged capability set.
lacks_cap_sys_resource() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( (16#$bnd >> 24 & 1) == 0 ))
}

write_runc_wrapper() {
  # Drops CAP_SYS_RESOURCE from the OCI spec before handing over to the real runc.
  local wrapper="$STATE_DIR/runc-drop-sys-resource"
  mkdir -p "$STATE_DIR"
  cat >"$wrapper" <<'WRAP'
#!/usr/bin/env python3
"""runc shim for hosts whose capability bounding set lacks CAP_SYS_RESOURCE."""
import json, os, sys

REAL = "/usr/sbin/runc" if os.path.exists("/usr/sbin/runc") else "/usr/bin/runc"
CAP = "CAP_SYS_RESOURCE"

def scrub(path):
    try:
        with open(path) as fh:
            spec = json.load(fh)
    except (OSError, ValueError):
        return
    caps = (spec.get("process", spec) or {}).get("capabilities") or {}
    dirty = False
    for kind, values in caps.items():
        if isinstance(values, list) and CAP in values:
            caps[kind] = [c for c in values if c != CAP]
            dirty = True
    if dirty:
        with open(path, "w") as fh:
            json.dump(spec, fh)

args = sys.argv[1:]
for i, arg in enumerate(args):
    if arg in ("--bundle", "-b") and i + 1 < len(args):
        scrub(os.path.join(args[i + 1], "config.json"))
    elif arg == "--process" and i + 1 < len(args):
        scrub(args[i + 1])
os.execv(REAL, [REAL] + args)
WRAP
  chmod 0755 "$wrapper"
  printf '%s\n' "$wrapper"
}

docker_up() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  apt_install docker.io
  need_root "start dockerd"
  local args=(--host unix:///var/run/docker.sock)
  if lacks_cap_sys_resource; then
    local wrapper
    wrapper=$(write_runc_wrapper)
    args+=(--add-runtime "glassbox-runc=$wrapper" --default-runtime glassbox-runc)
    log "CAP_SYS_RESOURCE is not in the bounding set: dockerd uses $wrapper"
  fi
  mkdir -p "$STATE_DIR"
  log "starting dockerd (log: $STATE_DIR/dockerd.log)"
  nohup dockerd "${args[@]}" >"$STATE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not answer within 60 s; last log lines:"
  tail -n 20 "$STATE_DIR/dockerd.log" >&2
  exit 1
}

image_up() {
  if docker image inspect "$GLASSBOX_IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  local tarball="$CACHE_DIR/debian-$GLASSBOX_SUITE-rootfs.tar"
  if [ ! -s "$tarball" ]; then
    apt_install debootstrap
    need_root "debootstrap $GLASSBOX_SUITE"
    local mirror rootfs
    mirror="${GLASSBOX_MIRROR:-$(debian_mirror)}"
    rootfs=$(mktemp -d)
    mkdir -p "$CACHE_DIR"
    log "debootstrap $GLASSBOX_SUITE from the machine's Debian mirror (about 2 minutes)"
    debootstrap --variant=minbase \
      --include=python3,python3-apt,systemd,systemd-sysv,dbus,sudo,ca-certificates,iproute2,procps \
      "$GLASSBOX_SUITE" "$rootfs" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1 \
      || { tail -n 30 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  log "importing $tarball as $GLASSBOX_IMAGE"
  docker import --change 'CMD ["/sbin/init"]' --change 'ENV container=docker' \
    "$tarball" "$GLASSBOX_IMAGE-base" >/dev/null
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$GLASSBOX_IMAGE-base" \
    | docker build -q -t "$GLASSBOX_IMAGE" - >/dev/null
}

caddy_up() {
  local dir="$CACHE_DIR/caddy"
  if [ -x "$dir/root/usr/bin/caddy" ]; then
    printf '%s\n' "$dir/root/usr/bin/caddy"
    return 0
  fi
  local work
  work=$(mktemp -d)
  chmod 0755 "$work"  # apt's _apt user writes the download here
  log "downloading the caddy package from the machine's Debian archive (not installed)"
  if ! (cd "$work" && apt-get download -qq caddy >/dev/null 2>&1); then
    need_root "apt-get update (no package lists for caddy yet)"
    apt-get update -qq
    (cd "$work" && apt-get download -qq caddy >/dev/null)
  fi
  mkdir -p "$dir"
  rm -rf "$dir/root.tmp"
  dpkg-deb -x "$work"/caddy_*.deb "$dir/root.tmp"
  dpkg-deb -f "$work"/caddy_*.deb Version >"$dir/root.tmp/VERSION"
  rm -rf "$dir/root" "$work"
  mv "$dir/root.tmp" "$dir/root"
  printf '%s\n' "$dir/root/usr/bin/caddy"
}

case "${1:-all}" in
  docker) docker_up ;;
  image) docker_up; image_up ;;
  caddy) caddy_up ;;
  all) docker_up; image_up; caddy_up >/dev/null ;;
  *) echo "usage: $0 [docker|image|caddy|all]" >&2; exit 2 ;;
esac
