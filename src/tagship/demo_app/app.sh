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
# A release that passes its health check and then dies (tests of rollout.watch): /www/crash_after
# holds the seconds it serves first.
if [ -e /www/crash_after ]; then
  (sleep "$(cat /www/crash_after)"; echo "app: crashing"; kill "$pid") &
fi
# PID 1 ignores SIGTERM by default: forward it so `docker stop` is graceful and quick.
trap 'kill "$pid"; wait "$pid"; exit 0' TERM INT
wait "$pid"
