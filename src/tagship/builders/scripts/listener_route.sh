#!/bin/sh
# Give a port listener a new route: check the config ($2) with HAProxy, put it at $1, and reload
# seamlessly (SIGUSR2 to the master, PID 1). The old worker finishes what it holds: with
# idle-close-on-response each idle keep-alive connection gets one more answer, then a close, and
# never a reset. Exit 0 once a new worker runs; 1 if the config was refused (nothing changed); 3 if
# no new worker appeared within 10 s.
workers() {
  for d in /proc/[0-9]*; do
    read -r _ _ _ ppid _ < "$d/stat" 2>/dev/null || continue
    [ "$ppid" = 1 ] && echo "${d#/proc/}"
  done
  return 0
}
newest() { workers | sort -n | tail -n 1; }
new="$1.new"
printf '%s\n' "$2" > "$new" || exit 1
if ! out=$(haproxy -c -q -f "$new" 2>&1); then
  echo "$out" >&2
  rm -f "$new"
  exit 1
fi
before=$(newest)
mv "$new" "$1" || exit 1
kill -USR2 1 || exit 1
i=0
while [ "$i" -lt 200 ]; do
  now=$(newest)
  if [ -n "$now" ] && [ "$now" != "$before" ]; then
    exit 0
  fi
  sleep 0.05
  i=$((i + 1))
done
echo "no new HAProxy worker 10 s after the reload" >&2
exit 3
