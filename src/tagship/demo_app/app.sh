#!/bin/sh
# Boot takes BOOT_SECONDS (default 2), like a real app loading; then serve /www on 8080.
# A broken release is simulated with BROKEN=1: the process stays up but never serves.
sleep "${BOOT_SECONDS:-2}"
if [ "${BROKEN:-0}" = 1 ] || [ -e /www/broken ]; then
  echo "app: broken release, not serving"
  exec sleep 100000
fi
httpd -f -p 8080 -h /www &
pid=$!
echo "app: serving version $(cat /www/version.txt) on :8080"
# PID 1 ignores SIGTERM by default: forward it so `docker stop` is graceful and quick.
trap 'kill "$pid"; wait "$pid"; exit 0' TERM INT
wait "$pid"
