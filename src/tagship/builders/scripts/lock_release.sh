#!/bin/sh
# Free the lock only if it is ours, so a late release never frees someone else's lock.
# $1: the state directory (PROJECT/.tagship); $2: the token in our holder.json. Always exits 0.
if grep -qF -- "$2" "$1/lock/holder.json" 2>/dev/null; then
  rm -rf -- "$1/lock" || true
fi
