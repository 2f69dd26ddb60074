#!/bin/sh
# A port listener's entry point: write its fixed config ($1) and run Caddy on it. The config never
# changes while the container lives: a listener is never reloaded, so its clients' keep-alive
# connections never see a reload.
set -e
printf '%s\n' "$1" > /tmp/listener.caddyfile
exec caddy run --config /tmp/listener.caddyfile --adapter caddyfile
