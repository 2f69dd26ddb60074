#!/bin/sh
# Inside the proxy container: succeed at the first 2xx from a URL; one exec per batch of tries
# instead of one per try, so the switch follows the app's boot closely.
# $1: the URL; $2: seconds between tries; $3: the most tries; $4: whole seconds the batch may take.
# The batch ends when its time is up (after one try at least), however long the tries took: on a
# busy server a count of tries alone can take many times the batch's time, and the caller checks
# the container's state only between batches.
end=$(($(date +%s) + $4))
i=0
while [ "$i" -lt "$3" ]; do
  wget -q -T 2 -O /dev/null "$1" 2>/dev/null && exit 0
  i=$((i + 1))
  [ "$(date +%s)" -ge "$end" ] && break
  sleep "$2"
done
exit 1
