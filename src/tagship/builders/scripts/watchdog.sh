#!/bin/sh
# Run "$@" (a local helper such as the SSH transport's registry) for as long as tagship lives, even
# when tagship is killed with SIGKILL and cannot stop it: tagship holds the write end of this
# script's stdin and never writes to it, so end of file there means tagship is gone (however it
# ended); the helper is then sent SIGTERM. Exits with the helper's exit code.
exec 3<&0
"$@" 3<&- </dev/null &
child=$!
{ cat <&3 >/dev/null; kill "$child" 2>/dev/null; } &
exec 3<&-
wait "$child"
