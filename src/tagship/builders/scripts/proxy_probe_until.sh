#!/bin/sh
# Inside the proxy container: succeed at the first 2xx from a URL; one exec per batch of tries
# instead of one per try, so the switch follows the app's boot closely.
# $1: the URL; $2: seconds between tries; $3: the most tries.
i=0
while [ "$i" -lt "$3" ]; do
  wget -q -T 2 -O /dev/null "$1" 2>/dev/null && exit 0
  i=$((i + 1))
  sleep "$2"
done
exit 1
