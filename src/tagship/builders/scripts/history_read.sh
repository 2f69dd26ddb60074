#!/bin/sh
# Print a state file; nothing (and exit 0) if it does not exist yet.
# $1: the state directory (PROJECT/.tagship); $2: the file's name in it.
cat -- "$1/$2" 2>/dev/null || true
