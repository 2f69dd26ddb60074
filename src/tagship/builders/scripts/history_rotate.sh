#!/bin/sh
# Replace a state file with stdin; the old file stays as $2.1 (one older generation).
# $1: the state directory (PROJECT/.tagship); $2: the file's name in it.
# The hard link keeps the old file as .1 and the rename swaps the new one in whole: a reader sees the
# old file or the new one, never none.
cat > "$1/$2.new" && ln -f -- "$1/$2" "$1/$2.1" && mv -f -- "$1/$2.new" "$1/$2"
