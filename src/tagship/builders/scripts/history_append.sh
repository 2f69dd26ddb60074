#!/bin/sh
# Append stdin to a state file (releases.jsonl, audit.log), creating the directory if needed, and
# print the file's size after it. $1: the state directory (PROJECT/.tagship); $2: the file's name in it;
# $3: rotate at this many bytes (0: never here): a file at least that big becomes $2.1 first.
mkdir -p -- "$1" || exit
if [ "$3" -gt 0 ] && [ -f "$1/$2" ] && [ "$(wc -c < "$1/$2")" -ge "$3" ]; then
  mv -f -- "$1/$2" "$1/$2.1" || exit
fi
cat >> "$1/$2" && wc -c < "$1/$2"
