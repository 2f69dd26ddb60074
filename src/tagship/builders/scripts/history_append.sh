#!/bin/sh
# Append stdin to a state file (releases.jsonl, audit.log), creating the directory if needed.
# $1: the state directory (PROJECT/.tagship); $2: the file's name in it.
mkdir -p -- "$1" && cat >> "$1/$2"
