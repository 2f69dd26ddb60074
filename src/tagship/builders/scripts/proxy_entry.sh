#!/bin/sh
# The proxy container's entry point: write the main Caddyfiles (tagship's own: the apps' snippets
# live in front/ and back/), run the back Caddy (if it ever exits, the container stops, so Docker's
# restart policy starts both again), then the front one. $1: the config directory; $2, $3: the
# front and back main Caddyfiles' text; $4: the back tier's socket (a stale one is removed).
set -e
mkdir -p "$1/front" "$1/back" "$(dirname "$4")"
rm -f -- "$4"
cd "$1"
printf '%s\n' "$2" > front.caddyfile
printf '%s\n' "$3" > back.caddyfile
(caddy run --config back.caddyfile --adapter caddyfile; kill 1) &
exec caddy run --config front.caddyfile --adapter caddyfile
