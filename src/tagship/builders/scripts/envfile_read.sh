#!/bin/sh
# Print a file; exit 3 if it does not exist. $1: the file.
[ -e "$1" ] || exit 3
cat -- "$1"
