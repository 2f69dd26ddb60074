#!/bin/sh
# Replace a file atomically with stdin: a temporary file beside it, the old mode and owner, then a
# rename (in place when the owner cannot be kept). A symlink is followed, so the link keeps pointing at the real file.
# $1: the file; $2: the octal mode for a new file; $3 (optional): "private": no access for group
# and others, whatever the old mode (the file now holds secrets).
set -eu
target=$1
private=${3:-}
if [ -L "$target" ]; then target=$(readlink -f -- "$target"); fi
dir=$(dirname -- "$target"); base=$(basename -- "$target")
mkdir -p -- "$dir"
tmp=$(mktemp "$dir/.$base.tagship.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
if [ -e "$target" ]; then
  chmod "$(stat -c %a -- "$target")" "$tmp"
  if ! chown "$(stat -c %u:%g -- "$target")" "$tmp" 2>/dev/null; then
    # Not allowed to give the new file the old one's owner (someone else's file, and we are not
    # root): write it in place, which keeps owner and mode (not atomic, but the owner never
    # changes behind the user's back).
    cat -- "$tmp" > "$target"
    if [ "$private" = private ]; then chmod go-rwx -- "$target"; fi
    exit 0
  fi
else
  chmod "$2" "$tmp"
fi
if [ "$private" = private ]; then chmod go-rwx -- "$tmp"; fi
mv -f -- "$tmp" "$target"
trap - EXIT
