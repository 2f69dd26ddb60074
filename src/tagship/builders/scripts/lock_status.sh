#!/bin/sh
# Print the lock's holder.json and then connection=alive or connection=gone (whether the holder's
# connection process, recorded by lock_acquire.sh, still exists); print nothing when unlocked.
# $1: the state directory (PROJECT/.tagship).
[ -d "$1/lock" ] || exit 0
cat -- "$1/lock/holder.json" 2>/dev/null; echo
pid=$(cat -- "$1/lock/connection" 2>/dev/null || echo 0)
if [ -d "/proc/$pid" ]; then echo "connection=alive"; else echo "connection=gone"; fi
