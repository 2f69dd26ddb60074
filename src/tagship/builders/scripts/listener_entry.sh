#!/bin/sh
# A port listener's entry point: HAProxy in master-worker mode on the config at $1, written from $2
# on the container's first start only (a restarted listener keeps the route its last switch gave it).
# A switch rewrites the file and signals the master (listener_route.sh): a seamless reload.
set -e
if [ ! -s "$1" ]; then
  mkdir -p "$(dirname "$1")"
  printf '%s\n' "$2" > "$1"
fi
exec haproxy -W -db -f "$1"
