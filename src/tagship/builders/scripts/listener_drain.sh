#!/bin/sh
# Wait until a port listener has one HAProxy worker left: the ones its reloads replaced have finished
# every request and connection they held (each stops by hard-stop-after at the latest). Polls every
# 0.1 s for at most $1 seconds; exit 0 when drained, 1 if not by then.
workers() {
  n=0
  for d in /proc/[0-9]*; do
    read -r _ _ _ ppid _ < "$d/stat" 2>/dev/null || continue
    [ "$ppid" = 1 ] && n=$((n + 1))
  done
  echo "$n"
}
i=0
limit=$(($1 * 10))
while [ "$(workers)" -gt 1 ]; do
  [ "$i" -ge "$limit" ] && exit 1
  sleep 0.1
  i=$((i + 1))
done
exit 0
