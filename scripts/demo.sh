#!/usr/bin/env bash
# Set up this machine (Debian 12, root) and run `tagship demo`: installs Docker, Compose v2 and
# busybox-static if missing, starts a Docker engine if none answers, installs tagship, runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system.sh
if ! docker info >/dev/null 2>&1; then
  echo "demo: starting a Docker engine (log: /var/log/tagship-dockerd.log)" >&2
  setsid dockerd >/var/log/tagship-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "demo: the Docker engine did not start" >&2; tail -20 /var/log/tagship-dockerd.log >&2; exit 1; }
fi
python3 -m pip install -q -e .
# No image hub is reachable here: stand in for caddy:2-alpine and haproxy:lts-alpine with images built locally.
proxy_image="caddy:2-alpine"
if ! docker image inspect "$proxy_image" >/dev/null 2>&1; then
  echo "demo: building a local Caddy image (no hub to pull caddy:2-alpine from; ~1 min once)" >&2
  proxy_image="$(python3 -m lab caddy-image)"
fi
listener_image="haproxy:lts-alpine"
if ! docker image inspect "$listener_image" >/dev/null 2>&1; then
  echo "demo: building a local HAProxy image (no hub to pull haproxy:lts-alpine from; ~1 min once)" >&2
  listener_image="$(python3 -m lab haproxy-image)"
fi
exec tagship demo --proxy-image "$proxy_image" --listener-image "$listener_image" "$@"
