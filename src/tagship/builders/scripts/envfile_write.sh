#!/bin/sh
# Replace a file atomically with stdin: a temporary file beside it, the old mode and owner, then a
# rename. A symlink is followed, so the link keeps pointing at the real file.
# $1: the file; $2: the octal mode for a new file.
set -eu
target=$1
if [ -L "$target" ]; then target=$(readlink -f -- "$target"); fi
dir=$(dirname -- "$target"); base=$(basename -- "$target")
mkdir -p -- "$dir"
tmp=$(mktemp "$dir/.$base.tagship.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
if [ -e "$target" ]; then
  chmod "$(stat -c %a -- "$target")" "$tmp"
  chown "$(stat -c %u:%g -- "$target")" "$tmp" 2>/dev/null || true
else
  chmod "$2" "$tmp"
fi
mv -f -- "$tmp" "$target"
trap - EXIT
