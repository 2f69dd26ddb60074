#!/bin/sh
# On the server: run a container's own Docker healthcheck command in it (docker exec) until it
# passes. Docker runs it only every `interval` (30 s is common, and its first run waits that long);
# tagship runs the same check at its own pace, one round trip per batch of tries.
# $1: the container; $2: seconds between tries; $3: the most tries; $4: seconds one try may take;
# $5: whole seconds the batch may take; the rest: the check's argv (CMD-SHELL checks come as
# /bin/sh -c TEXT). The batch ends when its time is up (after one try at least): ten tries of a
# Python healthcheck on a busy server took tens of seconds, and the watch, which reads the
# container's state only between batches, saw a crash 30 s late.
container=$1 pause=$2 tries=$3 limit=$4 end=$(($(date +%s) + $5))
shift 5
if command -v timeout >/dev/null 2>&1; then bounded=yes; else bounded=; fi
check() {
  if [ -n "$bounded" ]; then
    timeout "$limit" docker exec "$container" "$@"
  else
    docker exec "$container" "$@"
  fi
}
i=0
while [ "$i" -lt "$tries" ]; do
  check "$@" >/dev/null 2>&1 && exit 0
  i=$((i + 1))
  [ "$(date +%s)" -ge "$end" ] && break
  if [ "$i" -lt "$tries" ]; then sleep "$pause"; fi
done
exit 1
