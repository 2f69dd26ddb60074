#!/bin/sh
# Every app's front snippet, each after a line "== NAME.caddy". $1: the config directory.
for f in "$1"/front/*.caddy; do
  [ -e "$f" ] && echo "== ${f##*/}" && cat "$f"
done
true
